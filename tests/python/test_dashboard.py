"""The dashboard driven by Streamlit's AppTest: every page on generated data, numbers checked.

Each figure the app shows is recomputed here with DuckDB straight from the Parquet files, without
the dashboard's own query module, so a wrong filter or aggregate shows up as a mismatch.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))  # as dashboard/app.py does: no install needed
TIMEOUT = 120  # seconds per script run; generous for a loaded CI machine, never a speed assertion
# loglens_core::sketch::RELATIVE_ACCURACY: latency rollups hold the sketch's bins, and every
# quantile read off them lies within this of the exact one.
SKETCH_ACCURACY = 0.00995

ERRORS = "(status >= 500 OR lower(level) IN ('error', 'critical', 'alert', 'emergency'))"
# duckdb 2.0's .df() trips a pandas 3.1 deprecation inside duckdb itself; nothing to fix here.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop")


def records(data: Path) -> str:
    """Records, each template id resolved to the template it belongs to now (templates/
    `canonical_id`): records keep the id their template had when they were written."""
    raw = f"read_parquet('{data}/records/**/*.parquet', hive_partitioning = true)"
    texts = data / "templates" / "templates.parquet"
    if not texts.exists():
        return raw
    aliases = f"SELECT template_id AS alias_id, canonical_id FROM '{texts}'"
    return f"""(SELECT r.* REPLACE (coalesce(a.canonical_id, r.template_id) AS template_id)
                FROM {raw} r LEFT JOIN ({aliases}) a ON r.template_id = a.alias_id)"""


def current_templates(data: Path) -> str:
    """templates/ as one row per current template: its text and its ids' first sighting."""
    texts = data / "templates" / "templates.parquet"
    return f"""(SELECT canonical_id AS template_id,
                       any_value(template) FILTER (WHERE template_id = canonical_id) AS template,
                       min(first_seen) FILTER (WHERE count > 0) AS first_seen
                FROM '{texts}' GROUP BY canonical_id)"""


def scalar(query: str, params: list | None = None):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(query, params or []).fetchone()[0]


def open_app(monkeypatch, data: Path, page: str = "overview", time_range: str | None = "All data"):
    """Runs the app on `data`, picks a time range, then switches to `page`."""
    monkeypatch.setenv("LOGLENS_DATA_DIR", str(data))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    if time_range and at.selectbox:
        at.selectbox(key="flt_range").set_value(time_range).run()
    if page != "overview":
        at.switch_page(f"../python/loglens/dashboard/pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def last_day_bounds(data: Path):
    """The 'Last 24 hours' range: ends at the minute after the newest record."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    newest = con.sql(f"SELECT max(ts) AS m FROM {records(data)}").df()["m"].iloc[0]
    end = newest.to_pydatetime().astimezone(UTC).replace(second=0, microsecond=0)
    end += timedelta(minutes=1)
    return end - timedelta(hours=24), end


# ------------------------------------------------------------------------------- overview


def test_overview_kpis_over_all_data_match_duckdb(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data)
    total = scalar(f"SELECT count(*) FROM {records(dashboard_data)}")
    errors = scalar(f"SELECT count(*) FILTER (WHERE {ERRORS}) FROM {records(dashboard_data)}")
    p95 = scalar(f"SELECT quantile_cont(latency_ms, 0.95) FROM {records(dashboard_data)}")
    hosts = scalar(f"SELECT count(DISTINCT host) FROM {records(dashboard_data)}")
    shown = metrics(at)
    assert shown["Records"] == f"{total:,}"
    assert shown["Errors"] == f"{errors:,}"
    assert shown["Error rate"] == f"{errors / total:.2%}"
    # Read off the latency rollups' sketch bins: within the sketch's accuracy (and the rounding).
    shown_p95 = float(shown["Latency p95"].removesuffix(" ms").replace(",", ""))
    assert shown_p95 == pytest.approx(p95, rel=SKETCH_ACCURACY, abs=0.05)
    assert shown["Hosts"] == f"{hosts:,}"
    assert total > 19_000  # the 20k generated lines, minus the damaged ones
    # Every chart of the page rendered: volume, error rate, latency, 4 donuts, 2 bar charts.
    assert len(at.get("plotly_chart")) == 9
    # ... and the figures came from detect's rollups, not from a scan of every record.
    assert any("the `rollups/` of `loglens detect`" in c.value for c in at.caption)


def overview_filters(data: Path):
    from loglens.dashboard import sql  # noqa: PLC0415

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    bounds = con.sql(f"SELECT min(ts) AS first, max(ts) AS last FROM {records(data)}").df()
    first = bounds["first"].iloc[0].to_pydatetime().replace(second=0, microsecond=0)
    end = bounds["last"].iloc[0].to_pydatetime().replace(second=0, microsecond=0)
    end += timedelta(minutes=1)
    day = end - timedelta(hours=24)
    return [
        sql.Filters(first, end),
        sql.Filters(day, end),
        sql.Filters(end - timedelta(hours=3), end),  # 1-minute buckets
        sql.Filters(first, end, services=("web", "checkout")),
        sql.Filters(first, end, hosts=("web-01", "shop-02")),
        sql.Filters(day, end, services=("web",), hosts=("web-01", "web-02")),
        sql.Filters(first, end, levels=("error", "warn")),
        sql.Filters(day, end, services=("worker", "postgres"), levels=("info", "error")),
        sql.Filters(day, end, sources=(sql_sources(data)[0],)),  # latency from records
        sql.Filters(first + timedelta(seconds=30), end),  # not whole buckets: records
    ]


def sql_sources(data: Path) -> list[str]:
    return [
        r[0]
        for r in duckdb.sql(f"SELECT DISTINCT source FROM {records(data)} ORDER BY 1").fetchall()
    ]


@pytest.mark.parametrize(
    "query", ["kpis", "volume_by_level", "health_series", "breakdown", "latency_profile"]
)
def test_overview_from_rollups_equals_overview_from_records(dashboard_data, query):
    """Every Overview figure read from detect's rollups/ equals the same figure from records/."""
    from loglens.dashboard import sql  # noqa: PLC0415

    con = sql.connect()
    rollup_secs = sql.rollup_bucket_secs(con, dashboard_data)
    assert rollup_secs == 60
    compared = 0
    for f in overview_filters(dashboard_data):
        from_records = getattr(sql, query)(con, dashboard_data, f, 0).reset_index(drop=True)
        from_rollups = getattr(sql, query)(con, dashboard_data, f, rollup_secs).reset_index(
            drop=True
        )
        compared += len(from_records) > 0
        # Latencies are rolled up in the sketch's bins: quantiles within its stated accuracy.
        latency = [c for c in from_records.columns if c.startswith("latency_")]
        pd.testing.assert_frame_equal(
            from_records.drop(columns=latency),
            from_rollups.drop(columns=latency),
            check_dtype=False,
            obj=f"{query} {f}",
        )
        pd.testing.assert_frame_equal(
            from_records[latency],
            from_rollups[latency],
            check_dtype=False,
            check_exact=False,
            rtol=SKETCH_ACCURACY,
            obj=f"{query} {f} latencies",
        )
    # Every filter selects records; only worker and postgres have no latencies.
    assert compared == len(overview_filters(dashboard_data)) - (query == "latency_profile")


def test_latency_profile_equals_duckdb_quantiles(dashboard_data):
    """The quantiles read off (latency, count) histograms are quantile_cont's, per period and
    per bucket, from rollups as from records."""
    from loglens.dashboard import sql  # noqa: PLC0415

    con = sql.connect()
    f = overview_filters(dashboard_data)[1]
    where, params = sql.record_where(f)
    expected = con.execute(
        f"SELECT quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FROM {records(dashboard_data)} "
        f"WHERE {where}",
        params,
    ).fetchone()[0]
    # From records exactly; from the rollups' sketch bins within the sketch's accuracy.
    for rollup_secs, rel in [(0, 1e-12), (60, SKETCH_ACCURACY)]:
        profile = sql.latency_profile(con, dashboard_data, f, rollup_secs)
        current = profile[(profile["period"] == "current") & profile["bucket"].isna()].iloc[0]
        got = [current["latency_p50"], current["latency_p95"], current["latency_p99"]]
        assert got == pytest.approx(expected, rel=rel)
        assert profile["bucket"].notna().sum() > 100


@pytest.mark.parametrize("query", ["template_coverage", "top_templates", "template_trends"])
def test_templates_from_rollups_equal_those_from_records(dashboard_data, query):
    """Template counts, errors and first/last times from rollups/templates equal records'."""
    from loglens.dashboard import sql  # noqa: PLC0415

    con = sql.connect()
    ids = tuple(
        int(r[0])
        for r in duckdb.sql(
            f"SELECT template_id FROM {records(dashboard_data)} GROUP BY 1 ORDER BY count(*) DESC "
            "LIMIT 5"
        ).fetchall()
    )
    args = {"template_coverage": (), "top_templates": (20,), "template_trends": (ids,)}[query]
    for f in overview_filters(dashboard_data):
        from_records = getattr(sql, query)(con, dashboard_data, f, *args, 0)
        from_rollups = getattr(sql, query)(con, dashboard_data, f, *args, 60)
        # The 5 busiest templates overall need not occur under every filter.
        assert len(from_records) > 0 or query == "template_trends", f
        if query == "top_templates":
            assert from_records["records"].sum() > 0, f
        pd.testing.assert_frame_equal(
            from_records, from_rollups, check_dtype=False, obj=f"{query} {f}"
        )


def test_filter_options_from_rollups_equal_those_from_records(dashboard_data):
    from loglens.dashboard import sql  # noqa: PLC0415

    con = sql.connect()
    from_records = sql.filter_options(con, dashboard_data)
    assert set(from_records["label"]) == {"service", "host", "level", "source"}
    pd.testing.assert_frame_equal(from_records, sql.filter_options(con, dashboard_data, 60))
    assert len(from_records[from_records["label"] == "source"]) > 1


def test_rollups_lagging_the_records_are_not_used(dashboard_data, tmp_path):
    from loglens.dashboard import sql  # noqa: PLC0415

    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    con = sql.connect()
    assert sql.rollup_bucket_secs(con, data) == 60
    # As if records were added after detect ran: sums no longer match.
    shutil.rmtree(sorted((data / "rollups" / "counts").glob("date=*"))[0])
    assert sql.rollup_bucket_secs(con, data) == 0
    shutil.rmtree(data / "rollups")
    assert sql.rollup_bucket_secs(con, data) == 0


def test_overview_without_rollups_shows_the_same_numbers(monkeypatch, dashboard_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    shutil.rmtree(data / "rollups")
    with_rollups = metrics(open_app(monkeypatch, dashboard_data, time_range="Last 24 hours"))
    at = open_app(monkeypatch, data, time_range="Last 24 hours")
    from_records = metrics(at)
    # Latency quantiles from the rollups' sketch bins are within the sketch's accuracy.
    p95 = [float(m.pop("Latency p95").removesuffix(" ms")) for m in (from_records, with_rollups)]
    assert p95[1] == pytest.approx(p95[0], rel=SKETCH_ACCURACY, abs=0.05)
    assert from_records == with_rollups
    assert any("Figures read from `records/`" in c.value for c in at.caption)


def test_overview_last_day_has_deltas_against_the_day_before(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, time_range="Last 24 hours")
    start, end = last_day_bounds(dashboard_data)
    count = f"SELECT count(*) FROM {records(dashboard_data)} WHERE ts >= ? AND ts < ?"
    current = scalar(count, [start, end])
    previous = scalar(count, [start - timedelta(hours=24), start])
    records_metric = next(m for m in at.metric if m.label == "Records")
    assert records_metric.value == f"{current:,}"
    assert records_metric.delta == f"{current - previous:+,.0f}"
    assert 0 < current < scalar(f"SELECT count(*) FROM {records(dashboard_data)}")


def test_overview_service_filter_applies_to_kpis_and_tables(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data)
    at.multiselect(key="flt_service").set_value(["web"]).run()
    assert not at.exception
    web = scalar(f"SELECT count(*) FROM {records(dashboard_data)} WHERE service = 'web'")
    assert metrics(at)["Records"] == f"{web:,}"
    top_services = next(df.value for df in at.dataframe if "service" in df.value.columns)
    assert top_services["service"].tolist() == ["web"]
    assert int(top_services["records"].iloc[0]) == web


# ------------------------------------------------------------------------------- templates


def test_templates_page_counts_and_sparklines(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, page="templates", time_range="Last 24 hours")
    start, end = last_day_bounds(dashboard_data)
    where = f"FROM {records(dashboard_data)} WHERE ts >= ? AND ts < ?"
    in_range = scalar(f"SELECT count(*) {where}", [start, end])
    distinct = scalar(f"SELECT count(DISTINCT template_id) {where}", [start, end])
    shown = metrics(at)
    assert shown["Records in range"] == f"{in_range:,}"
    assert shown["With a template"] == f"{in_range:,}"
    assert shown["Distinct templates"] == f"{distinct:,}"

    top = at.dataframe[0].value
    assert len(top) == min(25, distinct)
    best_id, best = (
        duckdb.connect()
        .execute(
            f"SELECT template_id, count(*) {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
            [start, end],
        )
        .fetchone()
    )
    assert int(top["template_id"].iloc[0]) == best_id
    assert int(top["records"].iloc[0]) == best
    assert sum(top["trend"].iloc[0]) == best  # the sparkline covers every record of the range

    new = at.dataframe[1].value
    expected_new = scalar(
        f"""SELECT count(*) FROM {current_templates(dashboard_data)}
            WHERE first_seen >= ? AND first_seen < ?""",
        [start, end],
    )
    assert len(new) == min(expected_new, 200)
    assert (new["first_seen"] >= start).all()


def test_templates_page_on_what_process_wrote(monkeypatch, demo):
    """Straight on `loglens process` output: its template ids and templates/ texts."""
    data = demo["data"]
    at = open_app(monkeypatch, data, page="templates")
    shown = metrics(at)
    if shown["With a template"] == "0":  # a binary without template mining: the page says why
        assert any("template_id" in i.value for i in at.info)
        return
    assert shown["With a template"] == shown["Records in range"]
    texts = data / "templates" / "templates.parquet"
    if not texts.exists():
        pytest.skip("this loglens process writes template ids but no templates/ dataset")
    top_text = scalar(
        f"""SELECT t.template FROM (SELECT template_id, count(*) AS n FROM {records(data)}
                                   GROUP BY 1 ORDER BY n DESC, template_id LIMIT 1) r
            JOIN {current_templates(data)} t USING (template_id)"""
    )
    assert at.dataframe[0].value["template"].iloc[0] == top_text


# ------------------------------------------------------------------------------- explorer


def test_explorer_text_search_pages_and_counts(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, page="explorer")
    at.text_input(key="ex_text").set_value("FAILED").run()
    assert not at.exception
    matches = scalar(
        f"SELECT count(*) FROM {records(dashboard_data)} WHERE contains(lower(message), 'failed')"
    )
    assert matches > 50
    assert any(f"{matches:,} matching records" in c.value for c in at.caption)
    rows = at.dataframe[0].value
    assert len(rows) == 50
    assert rows["raw"].str.lower().str.contains("failed").all()
    newest = scalar(
        f"""SELECT source || ':' || line FROM {records(dashboard_data)}
            WHERE contains(lower(message), 'failed') ORDER BY ts DESC, source, line DESC LIMIT 1"""
    )
    assert rows["location"].iloc[0] == newest

    at.number_input(key="ex_page").set_value(2).run()
    second = at.dataframe[0].value
    assert len(second) == min(50, matches - 50)
    assert set(second["location"]).isdisjoint(rows["location"])


def test_explorer_regex_and_field_search(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, page="explorer")
    at.radio(key="ex_mode").set_value("Regex").run()
    at.text_input(key="ex_text").set_value(r"^(GET|POST) /api/v\d").run()
    expected = scalar(
        f"""SELECT count(*) FROM {records(dashboard_data)}
            WHERE regexp_matches(message, '^(GET|POST) /api/v\\d')"""
    )
    assert expected > 0
    assert any(f"{expected:,} matching records" in c.value for c in at.caption)

    at.text_input(key="ex_text").set_value("([unclosed").run()
    assert not at.exception
    assert any("invalid regular expression" in e.value for e in at.error)

    at.radio(key="ex_mode").set_value("Field").run()
    at.selectbox(key="ex_field").set_value("status").run()
    at.text_input(key="ex_text").set_value("503").run()
    status = scalar(f"SELECT count(*) FROM {records(dashboard_data)} WHERE status = 503")
    assert any(f"{status:,} matching records" in c.value for c in at.caption)
    assert (at.dataframe[0].value["status"] == 503).all()


def test_explorer_csv_download_holds_the_matches(monkeypatch, dashboard_data):
    from loglens.dashboard import sql  # noqa: PLC0415

    at = open_app(monkeypatch, dashboard_data, page="explorer")
    at.text_input(key="ex_text").set_value("timed out").run()
    matches = scalar(
        f"""SELECT count(*) FROM {records(dashboard_data)}
            WHERE contains(lower(message), 'timed out')"""
    )
    assert matches > 0
    button = at.get("download_button")[0]
    assert f"Download {matches:,} matching records as CSV" in button.proto.label
    # What the button's deferred callable writes: the same query, every match, newest first.
    f = at.session_state[filters_key()].filters
    frame = sql.search_export(sql.connect(), dashboard_data, f, ("text", "timed out", ""), 100_000)
    assert len(frame) == matches
    assert frame["ts"].is_monotonic_decreasing
    assert frame["message"].str.lower().str.contains("timed out").all()
    assert list(frame.columns)[:6] == ["ts", "level", "service", "host", "source", "line"]


def filters_key() -> str:
    from loglens.dashboard.filters import CONTEXT_KEY  # noqa: PLC0415

    return CONTEXT_KEY


def test_custom_window_to_the_minute(monkeypatch, dashboard_data):
    from datetime import date, time  # noqa: PLC0415

    at = open_app(monkeypatch, dashboard_data, time_range="Custom window")
    day = scalar(f"SELECT max(ts)::DATE FROM {records(dashboard_data)}")
    at.date_input(key="flt_from_day").set_value(day).run()
    at.time_input(key="flt_from_time").set_value(time(9, 30)).run()
    at.date_input(key="flt_to_day").set_value(day).run()
    at.time_input(key="flt_to_time").set_value(time(11, 45)).run()
    assert not at.exception
    start = datetime.combine(day, time(9, 30), tzinfo=UTC)
    end = datetime.combine(day, time(11, 45), tzinfo=UTC)
    count = scalar(
        f"SELECT count(*) FROM {records(dashboard_data)} WHERE ts >= ? AND ts < ?", [start, end]
    )
    assert count > 0
    assert metrics(at)["Records"] == f"{count:,}"
    assert isinstance(day, date)


# ------------------------------------------------------------------------------- anomalies


def incidents_of(data: Path) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.sql(
        f"""SELECT * FROM '{data}/incidents/*.parquet'
            ORDER BY start DESC, score DESC, incident_id"""
    ).df()


def window_records(data: Path, incident: dict, template_id: int) -> pd.DataFrame:
    """Records of the incident's template (and service) in its window, straight from Parquet."""
    service = incident["service"] if isinstance(incident["service"], str) else None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(
        f"""SELECT message FROM {records(data)} WHERE ts >= ? AND ts < ? AND template_id = ?
            AND (? IS NULL OR service = ?)""",
        [incident["start"], incident["end"], template_id, service, service],
    ).df()


def test_metric_series_puts_back_the_zeros_metrics_does_not_store(dashboard_data):
    """metrics/ keeps no row for a bucket where a count series had no records: the chart's
    series has them as 0 again, also at the range's edges, exactly as counted from the records."""
    from loglens.dashboard import sql  # noqa: PLC0415

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    metrics = f"read_parquet('{dashboard_data}/metrics/**/*.parquet', hive_partitioning = false)"
    service, level, series = con.execute(
        f"""SELECT service, level, series FROM {metrics}
            WHERE metric = 'volume' AND level IS NOT NULL AND host IS NULL
            GROUP BY ALL HAVING count(*) >= 20 ORDER BY count(*), series LIMIT 1"""
    ).fetchone()
    counted = f"""
        WITH c AS (SELECT time_bucket(INTERVAL 60 SECOND, ts) AS b, count(*) AS n
                   FROM {records(dashboard_data)} WHERE service = ? AND level = ? GROUP BY 1),
        g AS (SELECT unnest(generate_series(min(b), max(b), INTERVAL 60 SECOND)) AS b FROM c)
        SELECT b AS ts, coalesce(n, 0)::DOUBLE AS value FROM g LEFT JOIN c USING (b)
        WHERE b >= ? AND b < ? ORDER BY 1"""
    bounds = con.execute(
        f"SELECT min(ts) AS first, max(ts) AS last FROM {metrics}"
        " WHERE metric = 'volume' AND series = ?",
        [series],
    ).df()
    first, last = bounds["first"].iloc[0], bounds["last"].iloc[0]
    middle = first + (last - first) / 3
    for start, end in [
        (first - timedelta(hours=1), last + timedelta(hours=1)),
        (middle + timedelta(seconds=30), middle + timedelta(hours=5, seconds=30)),
    ]:
        chart = sql.metric_series(
            sql.connect(), dashboard_data, sql.Filters(start, end), "volume", series
        )
        expected = con.execute(counted, [service, level, start, end]).df()
        assert (chart["value"] == 0).sum() > len(chart) / 2, "the series should have gaps"
        assert chart["ts"].tolist() == expected["ts"].tolist()
        assert chart["value"].tolist() == expected["value"].tolist()
    stored = scalar(f"SELECT count(*) FROM {metrics} WHERE metric = 'volume' AND value = 0")
    assert stored == 0


def test_anomalies_page_series_incidents_and_detail(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, page="anomalies")
    assert at.selectbox(key="an_metric").value == "volume"
    assert at.selectbox(key="an_series").value == "total"
    anomalies = scalar(
        f"""SELECT count(*) FROM '{dashboard_data}/anomalies/*.parquet'
            WHERE metric = 'volume' AND series = 'total'"""
    )
    assert any(f"{anomalies:,} anomalous buckets" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1

    incidents = incidents_of(dashboard_data)
    assert len(incidents) >= 3  # the generator injects incidents; detect found (and merged) them
    shown = metrics(at)
    assert shown["Critical incidents"] == str((incidents["severity"] == "critical").sum())
    assert shown["Warning incidents"] == str((incidents["severity"] == "warning").sum())
    table = at.dataframe[0].value
    assert table["incident_id"].tolist() == incidents["incident_id"].tolist()[:500]
    assert table["members"].tolist() == [len(m) for m in incidents["member_ids"]][:500]
    assert (table["members"] > 1).any()  # one failure seen by several series is one incident

    # The incident with the most members: its members, explaining template and examples.
    merged = incidents.iloc[incidents["member_ids"].map(len).argmax()].to_dict()
    at.selectbox(key="inc_pick").set_value(merged["incident_id"]).run()
    assert not at.exception
    assert any(f"members** ({len(merged['member_ids'])})" in m.value for m in at.markdown)
    members = at.dataframe[1].value  # the incidents correlated into this one
    assert members["incident"].tolist() == list(merged["member_ids"])
    assert members["series"].tolist() == list(merged["member_series"])
    assert members["detector"].tolist() == list(merged["member_detectors"])
    code = [c.value for c in at.code]
    assert code[0] == merged["template"]
    assert code[1:] == list(merged["examples"])


def test_value_incident_shows_records_of_its_explaining_template(monkeypatch, dashboard_data):
    """Ensemble incidents name their template by text only: the page finds its id in templates/."""
    at = open_app(monkeypatch, dashboard_data, page="anomalies")
    incidents = incidents_of(dashboard_data)
    ensemble = incidents[incidents["template_id"].isna() & incidents["template"].notna()]
    assert len(ensemble) > 0
    incident = ensemble.iloc[0].to_dict()
    template_id = scalar(
        f"SELECT min(template_id) FROM {current_templates(dashboard_data)} WHERE template = ?",
        [incident["template"]],
    )
    at.selectbox(key="inc_pick").set_value(incident["incident_id"]).run()
    assert not at.exception
    lines = at.dataframe[2].value
    expected = window_records(dashboard_data, incident, template_id)
    assert len(lines) == min(20, len(expected)) > 0
    assert set(lines["raw"]) <= set(expected["message"])


def test_incident_opens_explorer_on_its_window_and_template(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, page="anomalies")
    incidents = incidents_of(dashboard_data)
    incident = incidents[incidents["template"].notna()].iloc[0].to_dict()
    template_id = scalar(
        f"SELECT min(template_id) FROM {current_templates(dashboard_data)} WHERE template = ?",
        [incident["template"]],
    )
    at.selectbox(key="inc_pick").set_value(incident["incident_id"]).run()
    at.button(key="inc_explore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Explorer"
    assert at.selectbox(key="flt_range").value == "Custom window"
    assert at.text_input(key="ex_text").value == str(template_id)
    expected = window_records(dashboard_data, incident, template_id)
    assert any(f"{len(expected):,} matching records" in c.value for c in at.caption)
    rows = at.dataframe[0].value
    assert len(rows) == min(50, len(expected)) > 0
    assert set(rows["raw"]) <= set(expected["message"])


def test_anomalies_page_says_which_command_fills_missing_datasets(monkeypatch, demo):
    at = open_app(monkeypatch, demo["data"], page="anomalies")
    infos = " ".join(i.value for i in at.info)
    assert "metrics" in infos
    assert "incidents" in infos
    assert "loglens detect" in infos


# ------------------------------------------------------------------------------- alerts, pipeline


def test_alerts_page_delivery_status_and_retries(monkeypatch, dashboard_data):
    """History written by `loglens alert run` against a local receiver (dashboard_fixtures)."""
    at = open_app(monkeypatch, dashboard_data, page="alerts")
    # Rows are stamped when sent (now), far from the generated logs' range: all history shows.
    assert at.radio(key="al_scope").value == "All history"
    per_key = duckdb.sql(
        f"""SELECT idempotency_key, arg_max(result, ts) AS result, max(attempts) AS attempts
            FROM '{dashboard_data}/alerts/history/*.parquet' GROUP BY 1"""
    ).df()
    shown = metrics(at)
    assert shown["Notifications"] == str(len(per_key))
    assert shown["Delivered"] == str((per_key["result"] == "delivered").sum())
    assert shown["Failed"] == str((per_key["result"] == "failed").sum())
    assert shown["Retrying"] == str((per_key["result"] == "retrying").sum())
    assert shown["Retries"] == str(int((per_key["attempts"] - 1).sum()))
    # The fixture's receivers: one answers 503 once (delivered on its second attempt), one is
    # unreachable (2 attempts, still retrying: a later run tries again until give_up_after).
    assert int(shown["Delivered"]) > 0 and int(shown["Retrying"]) > 0
    assert int(shown["Retries"]) >= 1 + int(shown["Retrying"])
    assert len(at.dataframe[0].value) == len(per_key)

    at.radio(key="al_scope").set_value("Sent in the selected range").run()
    assert metrics(at)["Notifications"] == "0"


def test_pipeline_page_shows_the_process_run_summary(monkeypatch, dashboard_data, demo):
    at = open_app(monkeypatch, dashboard_data, page="pipeline")
    summary = demo["summary"]
    shown = metrics(at)
    runs = list((dashboard_data / "state" / "runs").glob("*.json"))
    assert shown["Runs"] == str(len(runs))
    assert shown["Last run: lines"] == f"{summary['lines']:,}"
    assert shown["Last run: records"] == f"{summary['records_written']:,}"
    assert shown["Last run: unparsed"] == f"{summary['unparsed_written']:,}"
    assert shown["Last run: lines/s"] == f"{summary['lines'] / summary['elapsed_secs']:,.0f}"
    files = next(t.value for t in at.dataframe if "lag_bytes" in t.value.columns)
    assert len(files) == summary["files"] == int(shown["Files"])
    assert shown["Files behind"] == "0"  # nothing appended since the run
    assert shown["Checkpoint lag"] == "0 bytes"
    per_file = duckdb.sql(
        f"SELECT source, count(*) AS n FROM '{dashboard_data}/unparsed/*.parquet' GROUP BY 1"
    ).df()
    unparsed = files.set_index("file")["unparsed"]
    assert {k: int(v) for k, v in unparsed[unparsed > 0].items()} == dict(
        zip(per_file["source"], per_file["n"], strict=True)
    )
    assert shown["Files with unparsed lines"] == str(len(per_file))
    assert (files["format"] == files["file"].map(summary["file_formats"])).all()
    reasons = next(t.value for t in at.dataframe if "reason" in t.value.columns)
    assert int(reasons["lines"].sum()) == summary["unparsed_written"]
    infos = " ".join(i.value for i in at.info)
    assert "`loglens serve` is **not running**" in infos


def test_pipeline_page_shows_checkpoint_lag_of_a_grown_file(monkeypatch, dashboard_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    state = json.loads((data / "state" / "checkpoints.json").read_text())
    plain = [e for e in state["files"] if not e.get("compressed")]
    entry = min(plain, key=lambda e: e["path"])
    name = entry["path"]
    grown = tmp_path / "logs" / Path(name).name
    grown.parent.mkdir()
    shutil.copyfile(name, grown)  # a copy: the shared demo logs stay as they are
    appended = b"one more line\nand another\n"
    with grown.open("ab") as out:
        out.write(appended)
    entry["path"] = str(grown)  # checkpoints are per content; the path is where it was read
    (data / "state" / "checkpoints.json").write_text(json.dumps(state))
    at = open_app(monkeypatch, data, page="pipeline")
    shown = metrics(at)
    assert shown["Files behind"] == "1"
    assert shown["Checkpoint lag"] == f"{len(appended):,} bytes"
    files = next(t.value for t in at.dataframe if "lag_bytes" in t.value.columns)
    row = files[files["file"] == str(grown)].iloc[0]
    assert (row["state"], int(row["lag_bytes"]), int(row["bytes_read"])) == (
        "behind",
        len(appended),
        entry["offset"],
    )


def test_pipeline_page_shows_serve_stats_when_published(monkeypatch, dashboard_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    (data / "state" / "serve.json").write_text(json.dumps({"lines_per_s": 1234.0, "lag_s": 2}))
    at = open_app(monkeypatch, data, page="pipeline")
    assert metrics(at)["lines_per_s"] == "1,234"
    assert metrics(at)["lag_s"] == "2"


def test_pipeline_page_shows_what_a_running_serve_publishes(monkeypatch, dashboard_data, tmp_path):
    """The shape `loglens serve` writes (crates/loglens-cli/tests/serve.rs checks the writer)."""
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    now = datetime.now(UTC)
    status = {
        "status": "ok",
        "pid": 4242,
        "lines_in_total": 125000,
        "lines_out_total": 124000,
        "queue_depth_lines": 1000,
        "rejected_total": 3,
        "sources": [{"name": "http", "kind": "http", "lines_in": 125000, "lines_out": 124000}],
    }
    path = data / "state" / "serve.json"
    path.write_text(json.dumps(status | {"updated": now.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    at = open_app(monkeypatch, data, page="pipeline")
    shown = metrics(at)
    assert (shown["lines_in_total"], shown["lines_out_total"]) == ("125,000", "124,000")
    assert "pid" not in shown
    assert any("is running (pid 4242)" in s.value for s in at.success)
    sources = next(d.value for d in at.dataframe if "kind" in d.value.columns)
    assert sources["lines_out"].tolist() == [124000]
    # Left behind by a serve killed with -9: the page says the counters are stale.
    old = now - timedelta(minutes=10)
    path.write_text(json.dumps(status | {"updated": old.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    at = open_app(monkeypatch, data, page="pipeline")
    assert any("stopped without cleaning up or is stuck" in w.value for w in at.warning)


# ------------------------------------------------------------------------------- bad data


@pytest.mark.parametrize("exists", [True, False])
def test_empty_or_missing_data_dir_says_what_fills_it(monkeypatch, tmp_path, exists):
    data = tmp_path / "loglens-data"
    if exists:
        data.mkdir()
    at = open_app(monkeypatch, data, time_range=None)
    warning = " ".join(w.value for w in at.warning)
    assert ("has no records yet" if exists else "does not exist") in warning
    text = " ".join(m.value for m in at.markdown)
    assert "loglens process" in text
    assert "make demo" in text


def test_malformed_incidents_give_a_message_naming_the_dataset(
    monkeypatch, dashboard_data, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    (data / "incidents" / "part-0.parquet").write_bytes(b"this is not parquet")
    at = open_app(monkeypatch, data, page="anomalies")
    errors = [e.value for e in at.error]
    assert any("incidents" in e and str(data / "incidents") in e for e in errors), errors
    assert len(at.get("plotly_chart")) == 1  # the metric chart still renders


def test_metrics_with_a_wrong_schema_give_a_message(monkeypatch, dashboard_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    shutil.rmtree(data / "metrics")
    bad = pa.table({"ts": [1], "value": [1.0]})
    (data / "metrics").mkdir()
    pq.write_table(bad, data / "metrics" / "part-0.parquet")
    at = open_app(monkeypatch, data, page="anomalies")
    assert any("metrics" in e.value for e in at.error)


def test_malformed_records_stop_with_a_message(monkeypatch, tmp_path):
    data = tmp_path / "data"
    (data / "records" / "date=2026-01-01" / "hour=00").mkdir(parents=True)
    (data / "records" / "date=2026-01-01" / "hour=00" / "part.parquet").write_bytes(b"garbage")
    at = open_app(monkeypatch, data, time_range=None)
    assert any("records" in e.value and str(data / "records") in e.value for e in at.error)


def test_data_dir_comes_from_argument_then_environment(monkeypatch):
    from loglens.dashboard.filters import data_dir_from_args  # noqa: PLC0415

    monkeypatch.setenv("LOGLENS_DATA_DIR", "/from/env")
    assert data_dir_from_args(["--data-dir", "/from/arg"]) == Path("/from/arg")
    assert data_dir_from_args(["--data-dir=/eq"]) == Path("/eq")
    assert data_dir_from_args([]) == Path("/from/env")
    monkeypatch.delenv("LOGLENS_DATA_DIR")
    assert data_dir_from_args([]) == Path("loglens-data")


def test_auto_refresh_polls_when_enabled(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data)
    assert not any("Watching for new data" in c.value for c in at.caption)
    at.toggle(key="flt_refresh").set_value(True).run()
    assert not at.exception
    assert any("Watching for new data every 5 s" in c.value for c in at.caption)


def test_change_token_moves_when_a_partition_file_lands(tmp_path):
    import os  # noqa: PLC0415

    from loglens.dashboard.data import change_token  # noqa: PLC0415

    hour = tmp_path / "records" / "date=2026-01-01" / "hour=00"
    hour.mkdir(parents=True)
    for path in (tmp_path, tmp_path / "records", hour.parent, hour):
        os.utime(path, (1_000_000, 1_000_000))  # an old, known mtime: no clock granularity issue
    assert change_token(tmp_path) == 1_000_000
    (hour / "part-1.parquet").write_bytes(b"x")  # a writer renaming its file into place
    assert change_token(tmp_path) > 1_000_000
    assert change_token(tmp_path / "missing") == 0.0
