"""The dashboard driven by Streamlit's AppTest: every page on generated data, numbers checked.

Each figure the app shows is recomputed here with DuckDB straight from the Parquet files, without
the dashboard's own query module, so a wrong filter or aggregate shows up as a mismatch.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))  # as dashboard/app.py does: no install needed
TIMEOUT = 120  # seconds per script run; generous for a loaded CI machine, never a speed assertion
ERRORS = "(status >= 500 OR lower(level) IN ('error', 'critical', 'alert', 'emergency'))"
# duckdb 2.0's .df() trips a pandas 3.1 deprecation inside duckdb itself; nothing to fix here.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop")


def records(data: Path) -> str:
    return f"read_parquet('{data}/records/**/*.parquet', hive_partitioning = true)"


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
    assert shown["Latency p95"] == f"{p95:,.1f} ms"
    assert shown["Hosts"] == f"{hosts:,}"
    assert total > 19_000  # the 20k generated lines, minus the damaged ones
    # Every chart of the page rendered: volume, error rate, latency, 4 donuts, 2 bar charts.
    assert len(at.get("plotly_chart")) == 9


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
        f"""SELECT count(*) FROM '{dashboard_data}/templates/templates.parquet'
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
            JOIN '{texts}' t USING (template_id)"""
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


# ------------------------------------------------------------------------------- anomalies


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

    incidents = duckdb.sql(
        f"SELECT * FROM '{dashboard_data}/incidents/*.parquet' ORDER BY start DESC"
    ).df()
    shown = metrics(at)
    assert shown["Critical incidents"] == str((incidents["severity"] == "critical").sum())
    assert shown["Warning incidents"] == str((incidents["severity"] == "warning").sum())
    table = at.dataframe[0].value
    assert table["incident_id"].tolist() == incidents["incident_id"].tolist()

    oldest = incidents.iloc[-1]
    at.selectbox(key="inc_pick").set_value(oldest["incident_id"]).run()
    assert not at.exception
    code = [c.value for c in at.code]
    assert code[0] == oldest["template"]
    assert code[1:] == list(oldest["examples"])
    lines = at.dataframe[1].value
    assert 0 < len(lines) <= 20
    assert set(lines["raw"]) >= set(oldest["examples"])


def test_anomalies_page_says_which_command_fills_missing_datasets(monkeypatch, demo):
    at = open_app(monkeypatch, demo["data"], page="anomalies")
    infos = " ".join(i.value for i in at.info)
    assert "metrics" in infos
    assert "incidents" in infos
    assert "loglens detect" in infos


# ------------------------------------------------------------------------------- alerts, pipeline


def test_alerts_page_delivery_status_and_retries(monkeypatch, dashboard_data):
    at = open_app(monkeypatch, dashboard_data, page="alerts")
    per_key = duckdb.sql(
        f"""SELECT idempotency_key, arg_max(result, ts) AS result, max(attempts) AS attempts
            FROM '{dashboard_data}/alerts/history/*.parquet' GROUP BY 1"""
    ).df()
    shown = metrics(at)
    assert shown["Notifications"] == str(len(per_key))
    assert shown["Delivered"] == str((per_key["result"] == "delivered").sum())
    assert shown["Failed"] == str((per_key["result"] == "failed").sum())
    assert shown["Retries"] == str(int((per_key["attempts"] - 1).sum()))
    assert shown["Failed"] == "1"  # the fixture's third notification gives up after 3 attempts
    assert len(at.dataframe[0].value) == len(per_key)


def test_pipeline_page_shows_the_process_run_summary(monkeypatch, dashboard_data, demo):
    at = open_app(monkeypatch, dashboard_data, page="pipeline")
    summary = demo["summary"]
    shown = metrics(at)
    runs = list((dashboard_data / "state" / "runs").glob("*.json"))
    assert shown["Runs"] == str(len(runs))
    assert shown["Last run: lines"] == f"{summary['lines']:,}"
    assert shown["Last run: records"] == f"{summary['records_written']:,}"
    assert shown["Last run: unparsed"] == f"{summary['unparsed_written']:,}"
    reasons = at.dataframe[1].value
    assert int(reasons["lines"].sum()) == summary["unparsed_written"]


def test_pipeline_page_shows_serve_stats_when_published(monkeypatch, dashboard_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dashboard_data, data)
    (data / "state" / "serve.json").write_text(json.dumps({"lines_per_s": 1234.0, "lag_s": 2}))
    at = open_app(monkeypatch, data, page="pipeline")
    assert metrics(at)["lines_per_s"] == "1,234"
    assert metrics(at)["lag_s"] == "2"


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
