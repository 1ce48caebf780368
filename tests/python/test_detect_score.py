"""bench/detect_score.py: matching rules and metrics on hand-made ground truth and incidents."""

import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dashboard_fixtures import INCIDENTS_SCHEMA

REPO = Path(__file__).resolve().parents[2]


def _load_module():
    spec = importlib.util.spec_from_file_location(
        "detect_score", REPO / "bench" / "detect_score.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["detect_score"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


ds = _load_module()

TRUTH = [
    {
        "kind": "error_burst",
        "start": "2026-11-01T10:00:00Z",
        "end": "2026-11-01T10:10:00Z",
        "service": "web",
        "host": None,
        "description": "web: about 20% of requests fail with 5xx",
    },
    {
        "kind": "latency_spike",
        "start": "2026-11-01T12:00:00Z",
        "end": "2026-11-01T12:15:00Z",
        "service": "api",
        "host": None,
        "description": "api: request latency multiplied by 9.0",
    },
    {
        "kind": "host_silent",
        "start": "2026-11-01T14:00:00Z",
        "end": "2026-11-01T14:30:00Z",
        "service": "checkout",
        "host": "shop-02",
        "description": "shop-02 emits no log lines at all (every file of the host)",
    },
]

# (detector, metric, series, start, end, observed, expected, severity)
ROWS = [
    # Matches the error burst, one minute after it began.
    ("zscore", "error_rate", "service=web", "10:01", "10:04", 0.3, 0.01, "critical"),
    # Matches the latency spike on one of its hosts, from the bucket before it began.
    (
        "seasonal",
        "latency_p95",
        "service=api,host=api-01",
        "11:59",
        "12:05",
        900.0,
        100.0,
        "warning",
    ),
    # A second match of the latency spike, after its end but inside the 300 s grace.
    ("robust_zscore", "latency_p99", "service=api", "12:18", "12:19", 1500.0, 200.0, "critical"),
    # A drop of web's volume two hours after anything happened: a false positive.
    ("zscore", "volume", "service=web", "16:00", "16:02", 5.0, 100.0, "warning"),
    # Below the default minimum severity: not scored at all.
    ("zscore", "volume", "service=checkout,host=shop-02", "14:05", "14:06", 0.0, 50.0, "info"),
]


def _ts(clock: str) -> datetime:
    hours, minutes = clock.split(":")
    return datetime(2026, 11, 1, int(hours), int(minutes), tzinfo=UTC)


def _labels(series: str) -> dict:
    return dict(pair.split("=", 1) for pair in series.split(","))


def incidents_table() -> pa.Table:
    """ROWS as an incidents/ table with the exact schema of docs/datasets.md."""
    records = []
    for number, (detector, metric, series, start, end, observed, expected, severity) in enumerate(
        ROWS
    ):
        labels = _labels(series)
        records.append(
            {
                "incident_id": f"{number:016x}",
                "start": _ts(start),
                "end": _ts(end),
                "peak_ts": _ts(start),
                "detector": detector,
                "metric": metric,
                "series": series,
                "service": labels.get("service"),
                "host": labels.get("host"),
                "level": None,
                "template_id": None,
                "observed": observed,
                "expected": expected,
                "lower": expected * 0.5,
                "upper": expected * 1.5,
                "score": 6.0,
                "severity": severity,
                "buckets": (_ts(end) - _ts(start)).seconds // 60,
                "template": None,
                "examples": ["GET /api/orders 500"],
            }
        )
    return pa.Table.from_pylist(records, schema=INCIDENTS_SCHEMA)


@pytest.fixture
def generated(tmp_path) -> Path:
    """A generated-set directory: ground_truth.json, manifest.json (2 days), data/incidents."""
    (tmp_path / "ground_truth.json").write_text(json.dumps(TRUTH))
    (tmp_path / "manifest.json").write_text(json.dumps({"options": {"duration_secs": 2 * 86400}}))
    incidents = tmp_path / "data" / "incidents"
    incidents.mkdir(parents=True)
    pq.write_table(incidents_table(), incidents / "part-0.parquet")
    return tmp_path


def test_reads_the_incidents_dataset(generated):
    detected = ds.load_incidents(generated / "data")
    assert len(detected) == 5
    first = detected[0]
    assert (first.detector, first.metric, first.service, first.host) == (
        "zscore",
        "error_rate",
        "web",
        None,
    )
    assert first.start == int(_ts("10:01").timestamp()) * 1_000_000
    assert ds.simulated_days(generated, generated / "data", []) == 2.0


def test_precision_recall_f1_and_delay(generated):
    report = ds.score(
        ds.load_truth(generated / "ground_truth.json"),
        ds.load_incidents(generated / "data"),
        grace_secs=300,
        days=2.0,
    )
    assert report["incidents_read"] == 5 and report["incidents_scored"] == 4
    overall = report["overall"]
    assert (overall["truth"], overall["found"], overall["detected"], overall["matched"]) == (
        3,
        2,
        4,
        3,
    )
    assert overall["precision"] == 0.75
    assert overall["recall"] == pytest.approx(2 / 3)
    assert overall["f1"] == pytest.approx(12 / 17)  # 2 * 3/4 * 2/3 / (3/4 + 2/3)
    assert overall["median_delay_secs"] == 0.0  # median of +60 and -60
    assert (overall["duplicates"], overall["false"]) == (1, 1)
    assert report["false_per_day"] == 0.5

    kinds = report["kinds"]
    assert kinds["error_burst"]["precision"] == 1.0 and kinds["error_burst"]["recall"] == 1.0
    assert kinds["error_burst"]["median_delay_secs"] == 60.0
    spike = kinds["latency_spike"]
    assert (spike["detected"], spike["matched"], spike["duplicates"], spike["f1"]) == (2, 2, 1, 1.0)
    assert spike["median_delay_secs"] == -60.0
    # The false volume drop is charged to traffic_drop, which has no ground truth.
    drop = kinds["traffic_drop"]
    assert (drop["detected"], drop["precision"], drop["recall"], drop["f1"]) == (1, 0.0, None, None)
    silent = kinds["host_silent"]
    assert (silent["truth"], silent["found"], silent["recall"], silent["f1"]) == (1, 0, 0.0, 0.0)
    assert [(m["kind"], m["host"], m["start"]) for m in report["missed"]] == [
        ("host_silent", "shop-02", "2026-11-01T14:00:00Z")
    ]
    assert [(f["kind"], f["metric"], f["series"]) for f in report["false"]] == [
        ("traffic_drop", "volume", "service=web")
    ]


def test_grace_and_min_severity_change_the_match(generated):
    truth = ds.load_truth(generated / "ground_truth.json")
    detected = ds.load_incidents(generated / "data")
    # Without grace the 12:18 latency incident falls outside the spike: a false positive.
    strict = ds.score(truth, detected, grace_secs=0, days=2.0)
    assert strict["overall"]["precision"] == 0.5
    assert strict["kinds"]["latency_spike"]["false"] == 1
    # With info incidents the shop-02 volume drop is scored and finds the silent host.
    everything = ds.score(truth, detected, min_severity="info", days=2.0)
    assert everything["overall"]["recall"] == 1.0
    assert everything["overall"]["precision"] == 0.8
    assert everything["kinds"]["host_silent"]["median_delay_secs"] == 300.0
    assert everything["missed"] == []


def _incident(**overrides) -> "ds.Detected":
    fields = {
        "incident_id": "x",
        "start": 0,
        "end": 60_000_000,
        "detector": "zscore",
        "metric": "volume",
        "series": "service=web",
        "service": "web",
        "host": None,
        "severity": "warning",
        "observed": 1.0,
        "expected": 10.0,
    }
    fields.update(overrides)
    return ds.Detected(**fields)


def test_explains_follows_detector_metric_and_direction():
    assert ds.explains(_incident()) == ("traffic_drop", "host_silent")
    # A volume rise: burst and new-error lines come on top of the traffic.
    assert ds.explains(_incident(observed=20.0)) == ("error_burst", "new_error")
    assert ds.explains(_incident(metric="error_rate", observed=0.5, expected=0.01)) == (
        "error_burst",
        "new_error",
    )
    assert ds.explains(_incident(metric="latency_p50", observed=1.0, expected=9.0)) == ()
    assert ds.explains(_incident(detector="silence", observed=None)) == (
        "host_silent",
        "traffic_drop",
    )
    new = {"detector": "new_template", "metric": "template_count"}
    assert ds.explains(_incident(**new, severity="critical")) == ("new_error",)
    assert ds.explains(_incident(**new, severity="info")) == ()


def test_labels_agree_on_service_host_and_total():
    silent = ds.Truth("host_silent", 0, 1, "checkout", "shop-02")
    assert ds.labels_agree(_incident(service="CRON", host="shop-02"), silent)
    assert ds.labels_agree(_incident(service="checkout", host=None), silent)
    assert not ds.labels_agree(_incident(service="checkout", host="shop-01"), silent)
    assert ds.labels_agree(_incident(service=None, host=None), silent)  # the total series
    drop = ds.Truth("traffic_drop", 0, 1, "web", None)
    assert ds.labels_agree(_incident(service="web", host="web-03"), drop)
    assert not ds.labels_agree(_incident(service="api", host=None), drop)


def test_cli_prints_json_and_explains_a_missing_dataset(generated, capsys):
    assert ds.main(["--gen", str(generated), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["simulated_days"] == 2.0
    assert report["overall"]["f1"] == pytest.approx(12 / 17)
    assert ds.main(["--gen", str(generated), "--data", str(generated / "nowhere")]) == 2
    assert "run `loglens detect --data-dir" in capsys.readouterr().err


def test_grouping_accuracy_counts_lines_of_exactly_matching_groups():
    ts = ds.template_score
    # Template a is mined as 1 and 2 (split), b and c share mined 3 (merged), d is exact.
    pairs = [("a", 1), ("a", 1), ("a", 2), ("b", 3), ("c", 3), ("c", 3), ("d", 4), ("d", 4)]
    result = ts.grouping(pairs, {"a": "A {x}", "d": "D"}, {3: "B or C <*>"})
    assert (result.lines, result.correct) == (8, 2)
    assert result.accuracy == pytest.approx(0.25)
    assert (result.true_templates, result.mined_templates) == (4, 4)
    assert result.split == [("A {x}", 3, 2)]
    assert result.merged == [("B or C <*>", 3, 2)]
    assert ts.grouping([], {}, {}).accuracy is None
    assert "NOT met (0.2500)" in ts.render(result)
