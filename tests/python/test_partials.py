"""The engine's metric partials and detectors from Python: `MetricPartial` built from the
batches `parse_lines` gives, merged in any order, saved as the engine saves its own, and
`detect_series` over a plain series."""

import datetime as dt
import itertools
import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loglens import _engine
from loglens._engine import MetricPartial

BASE = dt.datetime(2026, 3, 4, 5, 0, tzinfo=dt.UTC)
BASE_SECS = int(BASE.timestamp())


def access_line(secs: int, status: int, size: int, latency_ms: int) -> str:
    """An nginx combined line `secs` after BASE, with its request time (seconds) at the end."""
    stamp = (BASE + dt.timedelta(seconds=secs)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    request = f"GET /item/{size % 5} HTTP/1.1"
    agent = '"-" "curl/8.5.0"'
    return f'203.0.113.7 - - [{stamp}] "{request}" {status} {size} {agent} {latency_ms / 1000:.3f}'


def json_line(secs: int, service: str, host: str, level: str, user: int) -> str:
    """A JSON line `secs` after BASE."""
    ts = (BASE + dt.timedelta(seconds=secs)).isoformat()
    fields = {
        "ts": ts,
        "level": level,
        "service": service,
        "host": host,
        "msg": f"user {user} logged in",
    }
    return json.dumps(fields)


def with_templates(batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with the template ids the engine's template stage gives its messages."""
    ids = _engine.TemplateStage().assign(batch.column("message").to_pylist())
    at = batch.schema.get_field_index("template_id")
    return batch.set_column(at, batch.schema.field(at), pa.array(ids, pa.uint64()))


def records_of(access: list[str], app: list[str]) -> pa.RecordBatch:
    """Both kinds of lines parsed (every one must parse), in one batch, with template ids."""
    a = _engine.parse_lines("combined", access, source="access.log")
    b = _engine.parse_lines("json", app, source="app.log")
    assert (a.num_rows, b.num_rows) == (len(access), len(app))
    return with_templates(pa.concat_batches([a, b]))


def rows(partial: MetricPartial) -> list[dict]:
    return partial.series().to_pylist()


access_lines = st.builds(
    access_line,
    secs=st.integers(0, 599),
    status=st.sampled_from([200, 200, 304, 404, 500, 503]),
    size=st.integers(0, 5000),
    latency_ms=st.integers(1, 3000),
)
json_lines = st.builds(
    json_line,
    secs=st.integers(0, 599),
    service=st.sampled_from(["api", "db", "auth"]),
    host=st.sampled_from(["h1", "h2"]),
    level=st.sampled_from(["debug", "info", "warn", "error"]),
    user=st.integers(0, 3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    access=st.lists(access_lines, max_size=40),
    app=st.lists(json_lines, max_size=40),
    data=st.data(),
)
def test_partials_of_any_split_merged_in_any_order_equal_the_whole(access, app, data):
    whole_batch = records_of(access, app)
    n = whole_batch.num_rows
    whole = MetricPartial.from_records(whole_batch)
    assert whole.records == n
    # Contiguous batches at arbitrary cuts (some may be empty), a partial each.
    cuts = sorted(set(data.draw(st.lists(st.integers(0, n), max_size=6))))
    bounds = [0, *cuts, n]
    parts = [
        MetricPartial.from_records(whole_batch.slice(a, b - a))
        for a, b in itertools.pairwise(bounds)
    ]
    # Merged pairwise in an arbitrary order and tree shape.
    while len(parts) > 1:
        a = parts.pop(data.draw(st.integers(0, len(parts) - 1)))
        i = data.draw(st.integers(0, len(parts) - 1))
        if data.draw(st.booleans()):
            parts[i].merge(a)
        else:
            a.merge(parts[i])
            parts[i] = a
    (merged,) = parts
    assert merged == whole
    assert merged.records == n
    assert merged.span == whole.span
    assert merged.series().equals(whole.series())
    # The total series counts every record once, and errors as the engine defines them.
    total = [r for r in rows(whole) if r["series"] == "total"]
    assert sum(r["records"] for r in total) == n
    statuses = whole_batch.column("status").to_pylist()
    levels = whole_batch.column("level").to_pylist()
    errors = sum(
        (s or 0) >= 500 or lvl in ("error", "critical", "alert", "emergency")
        for s, lvl in zip(statuses, levels, strict=True)
    )
    assert sum(r["errors"] for r in total) == errors
    assert sum(r["latency_count"] for r in total) == len(access)


def test_three_access_lines_in_a_minute_one_an_error():
    lines = [
        access_line(5, 200, 100, 10),
        access_line(20, 503, 50, 30),
        access_line(59, 404, 7, 20),
    ]
    batch = _engine.parse_lines("combined", lines, source="access.log")
    partial = MetricPartial.from_records(batch)
    minute = BASE_SECS  # BASE is on a minute
    assert (partial.records, partial.span, partial.bucket_secs) == (3, (minute, minute), 60)
    # No service, host or template: the total series and one per level (200 info, 404 warn).
    got = [(r["series"], r["records"], r["errors"], r["bytes"]) for r in rows(partial)]
    assert got == [
        ("total", 3, 1, 157),
        ("level=info", 1, 0, 100),
        ("level=warn", 1, 0, 7),
        ("level=error", 1, 1, 50),
    ]
    row = rows(partial)[0]
    assert row["ts"] == BASE
    assert (row["records"], row["errors"], row["bytes"], row["latency_count"]) == (3, 1, 157, 3)
    assert row["service"] is None and row["template_id"] is None
    assert row["latency_p50"] == pytest.approx(20, rel=0.01)
    assert row["latency_p99"] == pytest.approx(30, rel=0.01)
    assert row["latency_gmean"] == pytest.approx((10 * 20 * 30) ** (1 / 3), rel=0.01)
    # A line of the next minute is a second bucket; 5-minute buckets hold both.
    more = _engine.parse_lines("combined", [access_line(61, 200, 1, 1)])
    partial.add_records(more)
    assert [(r["ts"], r["records"]) for r in rows(partial) if r["series"] == "total"] == [
        (BASE, 3),
        (BASE + dt.timedelta(minutes=1), 1),
    ]
    five = MetricPartial.from_records(pa.concat_batches([batch, more]), bucket_secs=300)
    assert [(r["records"], r["errors"]) for r in rows(five) if r["series"] == "total"] == [(4, 1)]


def test_series_per_service_host_level_and_template():
    app = [
        json_line(1, "api", "h1", "info", 1),
        json_line(2, "api", "h1", "info", 2),
        json_line(3, "api", "h2", "error", 3),
        json_line(70, "db", "h1", "warn", 1),
    ]
    partial = MetricPartial.from_records(records_of([], app))
    got = [(r["series"], r["ts"].minute, r["records"], r["errors"]) for r in rows(partial)]
    template = f"template={partial.series().column('template_id').drop_null()[0].as_py():016x}"
    assert got == [
        ("total", 0, 3, 1),
        ("total", 1, 1, 0),
        (template, 0, 3, 0),  # template series count records only
        (template, 1, 1, 0),
        ("service=api", 0, 3, 1),
        ("service=api,level=info", 0, 2, 0),
        ("service=api,level=error", 0, 1, 1),
        ("service=api,host=h1", 0, 2, 0),
        ("service=api,host=h2", 0, 1, 1),
        ("service=db", 1, 1, 0),
        ("service=db,level=warn", 1, 1, 0),
        ("service=db,host=h1", 1, 1, 0),
    ]
    # `source` counts every record as read from it, and needs no source column.
    sourced = MetricPartial.from_records(
        records_of([], app).drop_columns(["source"]), source="x.log"
    )
    assert sourced.series().equals(partial.series())
    assert sourced != partial  # the sources differ, which the rollups keep


def test_bytes_round_trip():
    batch = records_of(
        [access_line(s, 200 + s, s, s + 1) for s in range(0, 300, 7)],
        [json_line(9, "api", "h1", "info", 1)],
    )
    partial = MetricPartial.from_records(batch, bucket_secs=120)
    data = partial.to_bytes()
    restored = MetricPartial.from_bytes(data)
    assert restored == partial
    assert restored.bucket_secs == 120 and restored.records == batch.num_rows
    assert restored.series().equals(partial.series())
    assert restored.to_bytes() == data
    assert MetricPartial.from_bytes(MetricPartial().to_bytes()) == MetricPartial()
    with pytest.raises(_engine.LoglensError, match="not a metric partial"):
        MetricPartial.from_bytes(data[: len(data) // 2])


def test_the_engines_saved_partials_are_what_the_records_make(tmp_path):
    """The partial files `process` saves read back with `from_bytes`, and equal the partial of
    the records it wrote (template ids as written)."""
    log = tmp_path / "app.log"
    log.write_text(
        "".join(json_line(s * 13, f"svc{s % 3}", "h1", "info", s % 4) + "\n" for s in range(60))
    )
    data_dir = tmp_path / "data"
    _engine.process([str(log)], data_dir=str(data_dir))
    saved = sorted((data_dir / "state" / "partials").glob("*.bin"))
    assert saved
    merged = MetricPartial()
    for path in saved:
        merged.merge(MetricPartial.from_bytes(path.read_bytes()))
    records = pq.read_table(data_dir / "records", partitioning=None).combine_chunks()
    assert records.num_rows == 60
    from_records = MetricPartial()
    for batch in records.to_batches():
        from_records.add_records(batch)
    assert from_records == merged


def test_merging_other_bucket_widths_fails_with_the_cores_message():
    a, b = MetricPartial(60), MetricPartial(300)
    with pytest.raises(
        _engine.LoglensError, match="cannot merge metric partials with 60 s and 300 s buckets"
    ):
        a.merge(b)
    with pytest.raises(ValueError, match="bucket_secs"):
        MetricPartial(0)


def test_a_batch_without_a_needed_column_names_it():
    batch = _engine.parse_lines("combined", [access_line(5, 200, 100, 10)]).drop_columns(["status"])
    with pytest.raises(_engine.InputError, match="column `status` is missing"):
        MetricPartial.from_records(batch)
    assert MetricPartial().merge(MetricPartial()) is None


def test_batches_of_other_arrow_types_count_as_the_engines_own():
    """What polars or pandas hand over (large strings, int64 status, nanosecond times) is cast
    to the records schema; a value that does not fit names its column."""
    lines = [access_line(5, 200, 100, 10), access_line(65, 503, 7, 900)]
    batch = with_templates(_engine.parse_lines("combined", lines, source="a.log"))
    other = {
        "ts": pa.timestamp("ns"),
        "source": pa.large_string(),
        "host": pa.large_string(),
        "level": pa.string_view(),
        "status": pa.int64(),
        "bytes": pa.int64(),
        "template_id": pa.int64(),
    }
    fields = [pa.field(f.name, other.get(f.name, f.type)) for f in batch.schema]
    foreign = batch.cast(pa.schema(fields))
    assert foreign.schema.field("source").type == pa.large_string()
    assert MetricPartial.from_records(foreign) == MetricPartial.from_records(batch)
    zoned = batch.cast(
        pa.schema([pa.field("ts", pa.timestamp("ns", tz="Europe/Paris")), *fields[1:]])
    )
    assert MetricPartial.from_records(zoned) == MetricPartial.from_records(batch)  # same instants
    too_big = foreign.set_column(
        foreign.schema.get_field_index("status"), "status", pa.array([200, 70_000], pa.int64())
    )
    with pytest.raises(_engine.InputError, match=r"column `status` \(Int64\) does not convert"):
        MetricPartial.from_records(too_big)


def test_merging_a_partial_with_itself_doubles_it():
    batch = _engine.parse_lines("combined", [access_line(5, 500, 100, 10)])
    partial = MetricPartial.from_records(batch)
    partial.merge(partial)
    assert [(r["series"], r["records"], r["errors"]) for r in rows(partial)] == [
        ("total", 2, 2),
        ("level=error", 2, 2),
    ]


def noisy(n: int) -> list[float]:
    return [10.0 + i % 3 for i in range(n)]


def test_detect_series_flags_a_spike_and_nothing_in_a_flat_series():
    spiked = noisy(120)
    spiked[100] = 60.0
    verdicts = _engine.detect_series(spiked, start=BASE_SECS).to_pylist()
    assert [i for i, v in enumerate(verdicts) if v["anomalous"]] == [100]
    spike = verdicts[100]
    assert spike["detector"] == "ensemble" and spike["severity"] == "critical"
    assert spike["score"] > 0.5 and spike["value"] == 60.0 and spike["ready"]
    assert spike["ts"] == BASE + dt.timedelta(minutes=100)
    assert not verdicts[0]["ready"] and verdicts[0]["score"] == 0.0
    assert max(v["score"] for i, v in enumerate(verdicts) if i != 100) < 0.5
    for flat in ([10.0] * 120, noisy(120)):
        assert not any(_engine.detect_series(flat).column("anomalous").to_pylist())
    # One detector alone: the same spike, under its own name.
    (alone,) = [
        v for v in _engine.detect_series(spiked, detector="zscore").to_pylist() if v["anomalous"]
    ]
    assert alone["detector"] == "zscore" and alone["ts"].minute == 40  # minute 100 from 0
    with pytest.raises(_engine.ConfigError, match="unknown detector"):
        _engine.detect_series(spiked, detector="prophet")


def test_detect_series_applies_a_metrics_overrides_as_detect_does(tmp_path):
    """`metric=` picks the settings `detect` uses for that metric: here the latency metric's
    Z-score threshold is raised so far that the spike no longer fires, other metrics keep the
    global one."""
    config = tmp_path / "loglens.toml"
    config.write_text("[detect.metric.latency_p95.zscore]\nthreshold = 1000.0\ncritical = 2000.0\n")
    spiked = noisy(120)
    spiked[100] = 60.0

    def fired(**options: object) -> list[int]:
        verdicts = _engine.detect_series(spiked, detector="zscore", config=config, **options)
        return [i for i, v in enumerate(verdicts.to_pylist()) if v["anomalous"]]

    assert fired() == [100]
    assert fired(metric="volume") == [100]
    assert fired(metric="latency_p95") == []
    with pytest.raises(_engine.ConfigError, match='unknown metric "p95"'):
        fired(metric="p95")


def partial_of(lines: list[str]) -> MetricPartial:
    """A Dask task: the partial of some access lines (returned pickled, as Dask ships it)."""
    return MetricPartial.from_records(_engine.parse_lines("combined", lines, source="a.log"))


def merged(a: MetricPartial, b: MetricPartial) -> MetricPartial:
    """A Dask task: two partials merged."""
    a.merge(b)
    return a


def test_partials_built_and_merged_on_a_dask_cluster_equal_the_whole():
    """Partials pickle as their bytes, so workers of a real Dask cluster build them from
    their share of the lines and merge them in a tree: the result is the whole's partial."""
    from dask.distributed import Client, LocalCluster  # noqa: PLC0415 (only this test)

    lines = [access_line(i * 7, [200, 404, 503][i % 3], i, i % 50) for i in range(3000)]
    whole = partial_of(lines)
    assert pickle.loads(pickle.dumps(whole)) == whole
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        parts = [client.submit(partial_of, lines[i : i + 500]) for i in range(0, 3000, 500)]
        while len(parts) > 1:
            pairs = zip(parts[::2], parts[1::2], strict=False)
            parts = [client.submit(merged, a, b) for a, b in pairs] + parts[len(parts) // 2 * 2 :]
        result = parts[0].result()
    assert result == whole
    assert result.records == 3000
    assert rows(result) == rows(whole)
