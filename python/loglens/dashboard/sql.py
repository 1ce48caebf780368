"""Every query the dashboard runs: plain functions over a DuckDB connection and a data directory.

No Streamlit here. Filtering, aggregation and LIMITs happen in DuckDB so only small results reach
pandas; the tests and bench/dashboard_load.py call these functions too. Datasets follow
docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

# Dataset name -> directory inside the data directory (docs/datasets.md).
DATASETS = {
    "records": "records",
    "unparsed": "unparsed",
    "templates": "templates",
    "metrics": "metrics",
    "anomalies": "anomalies",
    "incidents": "incidents",
    "alerts": "alerts/history",
}

# The same definition of an error as `loglens detect` uses for its `errors` metric.
ERROR_SQL = "(status >= 500 OR lower(level) IN ('error', 'critical', 'alert', 'emergency'))"

# Bucket widths offered to time series, smallest first; the first giving <= MAX_BUCKETS wins.
BUCKET_SECS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400)
MAX_BUCKETS = 300

# Explorer: fields a user may match on, with the SQL that reads them.
FIELDS = {
    "status": "CAST(status AS VARCHAR)",
    "method": "method",
    "path": "path",
    "client_ip": "client_ip",
    "host": "host",
    "service": "service",
    "level": "level",
    "format": "format",
    "source": "source",
    "template_id": "CAST(template_id AS VARCHAR)",
    "user_agent": "user_agent",
}


class DatasetError(Exception):
    """A dataset could not be read: missing, malformed, or not matching docs/datasets.md."""

    def __init__(self, dataset: str, path: Path, reason: str) -> None:
        self.dataset = dataset
        self.path = path
        self.reason = reason
        super().__init__(f"{dataset} dataset at {path}: {reason}")


class SearchError(Exception):
    """The user's search cannot run (an invalid regex, an unknown field)."""


@dataclass(frozen=True)
class Filters:
    """The time range [start, end) and label filters shared by every page; empty tuple = all."""

    start: datetime
    end: datetime
    services: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def previous(self) -> Filters:
        """The equal-length period just before this one, with the same label filters."""
        length = self.end - self.start
        return dataclasses.replace(self, start=self.start - length, end=self.start)

    def bucket_secs(self) -> int:
        """A bucket width that draws the range in at most MAX_BUCKETS points."""
        span = max((self.end - self.start).total_seconds(), 1.0)
        for secs in BUCKET_SECS:
            if span / secs <= MAX_BUCKETS:
                return secs
        return BUCKET_SECS[-1]


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that shows timestamps in UTC and caches Parquet footers."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET parquet_metadata_cache = true")
    con.execute("SET enable_progress_bar = false")  # it would print into the server's terminal
    return con


def dataset_dir(data_dir: Path, dataset: str) -> Path:
    return data_dir / DATASETS[dataset]


def dataset_present(data_dir: Path, dataset: str) -> bool:
    """True when the dataset directory holds at least one Parquet file."""
    root = dataset_dir(data_dir, dataset)
    return root.is_dir() and next(root.rglob("*.parquet"), None) is not None


def scan(data_dir: Path, dataset: str) -> str:
    """The read_parquet() call for a dataset, as docs/datasets.md says to open it."""
    pattern = str(dataset_dir(data_dir, dataset) / "**" / "*.parquet").replace("'", "''")
    return f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)"


def _run(
    con: duckdb.DuckDBPyConnection, data_dir: Path, dataset: str, query: str, params: Sequence[Any]
) -> pd.DataFrame:
    """Runs a query, turning any DuckDB failure into a DatasetError naming the dataset and path."""
    try:
        return con.execute(query, list(params)).df()
    except duckdb.Error as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatasetError(dataset, dataset_dir(data_dir, dataset), reason) from err


def _in(column: str, values: tuple[str, ...], params: list[Any]) -> str | None:
    if not values:
        return None
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def record_where(f: Filters) -> tuple[str, list[Any]]:
    """WHERE for records: time range (also on `date`, so DuckDB prunes files), labels."""
    last_day = (f.end - timedelta(microseconds=1)).date()
    params: list[Any] = [f.start, f.end, f.start.date(), last_day]
    clauses = ["ts >= ?", "ts < ?", "date >= ?", "date <= ?"]
    for column, values in (
        ("service", f.services),
        ("host", f.hosts),
        ("level", f.levels),
        ("source", f.sources),
    ):
        clause = _in(column, values, params)
        if clause:
            clauses.append(clause)
    return " AND ".join(clauses), params


def _label_where(f: Filters, params: list[Any]) -> str:
    """Service/host filters for detect's datasets (a null label is a rollup: it is kept)."""
    clauses = []
    for column, values in (("service", f.services), ("host", f.hosts)):
        clause = _in(column, values, params)
        if clause:
            clauses.append(f"({column} IS NULL OR {clause})")
    return "".join(f" AND {c}" for c in clauses)


# ---------------------------------------------------------------- records: bounds and filters


def _edge_partitions(data_dir: Path) -> list[tuple[str, str]]:
    """(date, hour) of the first and last non-empty records partition; [] when not partitioned."""
    root = dataset_dir(data_dir, "records")
    parts = sorted(
        (day.name.removeprefix("date="), hour.name.removeprefix("hour="))
        for day in root.glob("date=*")
        for hour in day.glob("hour=*")
        if next(hour.glob("*.parquet"), None) is not None
    )
    return [parts[0], parts[-1]] if parts else []


def record_bounds(con: duckdb.DuckDBPyConnection, data_dir: Path) -> pd.DataFrame:
    """One row: first and last record time and the record count.

    Why not min/max over everything? The hourly partitions say where the edges are: reading two
    partitions instead of every `ts` makes this 10x cheaper, and it runs on every cold page load.
    """
    records = scan(data_dir, "records")
    edges = _edge_partitions(data_dir)
    if not edges:
        query = f"SELECT min(ts) AS first, max(ts) AS last, count(*) AS records FROM {records}"
        return _run(con, data_dir, "records", query, [])
    (first_day, first_hour), (last_day, last_hour) = edges
    query = f"""
        SELECT (SELECT min(ts) FROM {records} WHERE date = ? AND hour = ?) AS first,
               (SELECT max(ts) FROM {records} WHERE date = ? AND hour = ?) AS last,
               (SELECT count(*) FROM {records}) AS records"""
    params = [first_day, first_hour, last_day, last_hour]
    return _run(con, data_dir, "records", query, params)


def filter_options(con: duckdb.DuckDBPyConnection, data_dir: Path) -> pd.DataFrame:
    """Distinct values of each filterable label, as (label, value) rows, one scan."""
    query = f"""
        SELECT CASE WHEN grouping(service) = 0 THEN 'service' WHEN grouping(host) = 0 THEN 'host'
                    WHEN grouping(level) = 0 THEN 'level' ELSE 'source' END AS label,
               coalesce(service, host, level, source) AS value
        FROM (SELECT service, host, level, source FROM {scan(data_dir, "records")})
        GROUP BY GROUPING SETS ((service), (host), (level), (source))
        HAVING value IS NOT NULL
        ORDER BY label, value"""
    return _run(con, data_dir, "records", query, [])


# ---------------------------------------------------------------- overview


def kpis(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """Headline figures of the range and of the previous equal-length period (column `period`)."""
    where, params = record_where(dataclasses.replace(f, start=f.previous().start))
    query = f"""
        SELECT CASE WHEN ts >= ? THEN 'current' ELSE 'previous' END AS period,
               count(*) AS records,
               count(*) FILTER (WHERE {ERROR_SQL}) AS errors,
               count(*) FILTER (WHERE {ERROR_SQL}) / count(*) AS error_rate,
               quantile_cont(latency_ms, 0.95) AS latency_p95,
               count(DISTINCT host) AS hosts
        FROM {scan(data_dir, "records")} WHERE {where} GROUP BY ALL"""
    return _run(con, data_dir, "records", query, [f.start, *params])


def _bucket(secs: int) -> str:
    return f"to_timestamp(floor(epoch(ts) / {secs}) * {secs})"


def volume_by_level(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """Records per bucket and level (level '(none)' for records without one)."""
    where, params = record_where(f)
    query = f"""
        SELECT {_bucket(f.bucket_secs())} AS bucket, coalesce(level, '(none)') AS level,
               count(*) AS records
        FROM {scan(data_dir, "records")} WHERE {where} GROUP BY ALL ORDER BY bucket, level"""
    return _run(con, data_dir, "records", query, params)


def health_series(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """Per bucket: records, errors, error rate and latency p50/p95/p99 (ms, access records only)."""
    where, params = record_where(f)
    query = f"""
        SELECT bucket, records, errors, errors / records AS error_rate,
               q[1] AS latency_p50, q[2] AS latency_p95, q[3] AS latency_p99
        FROM (SELECT {_bucket(f.bucket_secs())} AS bucket, count(*) AS records,
                     count(*) FILTER (WHERE {ERROR_SQL}) AS errors,
                     quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q
              FROM {scan(data_dir, "records")} WHERE {where} GROUP BY ALL)
        ORDER BY bucket"""
    return _run(con, data_dir, "records", query, params)


def breakdown(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """Records by level, service, host, status class and source as (dimension, key, records)."""
    where, params = record_where(f)
    query = f"""
        SELECT CASE WHEN grouping(level) = 0 THEN 'level'
                    WHEN grouping(service) = 0 THEN 'service'
                    WHEN grouping(host) = 0 THEN 'host'
                    WHEN grouping(status_class) = 0 THEN 'status'
                    ELSE 'source' END AS dimension,
               coalesce(level, service, host, status_class, source) AS key,
               count(*) AS records
        FROM (SELECT coalesce(level, '(none)') AS level, coalesce(service, '(none)') AS service,
                     coalesce(host, '(none)') AS host, coalesce(source, '(none)') AS source,
                     CASE WHEN status IS NULL THEN 'no status'
                          ELSE CAST(status // 100 AS VARCHAR) || 'xx' END AS status_class
              FROM {scan(data_dir, "records")} WHERE {where})
        GROUP BY GROUPING SETS ((level), (service), (host), (status_class), (source))
        ORDER BY dimension, records DESC, key"""
    return _run(con, data_dir, "records", query, params)


# ---------------------------------------------------------------- templates


def template_coverage(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """Records in range with and without a template_id."""
    where, params = record_where(f)
    query = f"""
        SELECT count(*) AS records, count(template_id) AS with_template,
               count(DISTINCT template_id) AS templates
        FROM {scan(data_dir, "records")} WHERE {where}"""
    return _run(con, data_dir, "records", query, params)


def top_templates(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, limit: int, with_texts: bool
) -> pd.DataFrame:
    """The most frequent templates in range; their text from templates/ when `with_texts`."""
    where, params = record_where(f)
    counted = f"""
        SELECT template_id, count(*) AS records,
               min(ts) AS first_in_range, max(ts) AS last_in_range,
               count(*) FILTER (WHERE {ERROR_SQL}) AS errors, any_value(message) AS example
        FROM {scan(data_dir, "records")} WHERE {where} AND template_id IS NOT NULL
        GROUP BY template_id ORDER BY records DESC, template_id LIMIT {int(limit)}"""
    if not with_texts:
        query = f"""
            SELECT template_id, example AS template, * EXCLUDE (template_id, example)
            FROM ({counted})"""
        return _run(con, data_dir, "records", query, params)
    query = f"""
        SELECT c.template_id, coalesce(t.template, c.example) AS template, c.records, c.errors,
               c.first_in_range, c.last_in_range, t.first_seen, t.level, t.service
        FROM ({counted}) c LEFT JOIN {scan(data_dir, "templates")} t USING (template_id)
        ORDER BY c.records DESC, c.template_id"""
    return _run(con, data_dir, "templates", query, params)


def template_trends(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, template_ids: Sequence[int]
) -> pd.DataFrame:
    """Records per bucket for the given templates (for sparklines)."""
    if not template_ids:
        return pd.DataFrame({"template_id": [], "bucket": [], "records": []})
    where, params = record_where(f)
    ids = ", ".join(str(int(t)) for t in template_ids)
    query = f"""
        SELECT template_id, {_bucket(f.bucket_secs())} AS bucket, count(*) AS records
        FROM {scan(data_dir, "records")} WHERE {where} AND template_id IN ({ids})
        GROUP BY ALL ORDER BY template_id, bucket"""
    return _run(con, data_dir, "records", query, params)


def new_templates(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, limit: int = 200
) -> pd.DataFrame:
    """Templates whose first_seen falls in the range, newest first."""
    params: list[Any] = [f.start, f.end]
    service = _in("service", f.services, params)
    query = f"""
        SELECT template_id, template, first_seen, last_seen, count, level, service, example
        FROM {scan(data_dir, "templates")}
        WHERE first_seen >= ? AND first_seen < ? {f"AND {service}" if service else ""}
        ORDER BY first_seen DESC, template_id LIMIT {int(limit)}"""
    return _run(con, data_dir, "templates", query, params)


# ---------------------------------------------------------------- explorer


def _search_clause(mode: str, text: str, field: str, params: list[Any]) -> str:
    if not text:
        return "TRUE"
    if mode == "text":
        params.append(text.lower())
        return "contains(lower(message), ?)"
    if mode == "regex":
        params.append(text)
        return "regexp_matches(message, ?)"
    if field.startswith("attrs."):
        params.extend([field.removeprefix("attrs."), text])
        return "attrs[?] = ?"
    if field not in FIELDS:
        raise SearchError(f"unknown field {field!r}: use one of {', '.join(FIELDS)} or attrs.KEY")
    params.append(text)
    return f"{FIELDS[field]} = ?"


def check_regex(con: duckdb.DuckDBPyConnection, pattern: str) -> None:
    """Raises SearchError when DuckDB (RE2 syntax) rejects the pattern."""
    try:
        con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
    except duckdb.Error as err:
        raise SearchError(f"invalid regular expression {pattern!r}: {str(err).strip()}") from err


def search_count(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, search: tuple[str, str, str]
) -> int:
    """How many records in range match the search (mode, text, field)."""
    mode, text, field = search
    where, params = record_where(f)
    clause = _search_clause(mode, text, field, params)
    query = f"SELECT count(*) AS n FROM {scan(data_dir, 'records')} WHERE {where} AND {clause}"
    return int(_run(con, data_dir, "records", query, params)["n"].iloc[0])


def search_page(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    f: Filters,
    search: tuple[str, str, str],
    window: tuple[int, int],
) -> pd.DataFrame:
    """Page `window[0]` (from 0) of `window[1]` matches, newest first; `raw` is the message."""
    mode, text, field = search
    page, page_size = window
    where, params = record_where(f)
    clause = _search_clause(mode, text, field, params)
    query = f"""
        SELECT ts, level, service, host, status, message AS raw, source || ':' || line AS location
        FROM {scan(data_dir, "records")} WHERE {where} AND {clause}
        ORDER BY ts DESC, source, line DESC
        LIMIT {int(page_size)} OFFSET {int(page) * int(page_size)}"""
    return _run(con, data_dir, "records", query, params)


# ---------------------------------------------------------------- anomalies and incidents


def metric_names(con: duckdb.DuckDBPyConnection, data_dir: Path) -> pd.DataFrame:
    query = f"SELECT DISTINCT metric FROM {scan(data_dir, 'metrics')} ORDER BY metric"
    return _run(con, data_dir, "metrics", query, [])


def metric_series_names(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, metric: str
) -> pd.DataFrame:
    """Series of a metric in range: `total` first, then the largest."""
    params: list[Any] = [metric, f.start, f.end]
    labels = _label_where(f, params)
    query = f"""
        SELECT series, sum(value) AS total FROM {scan(data_dir, "metrics")}
        WHERE metric = ? AND ts >= ? AND ts < ? {labels}
        GROUP BY series ORDER BY series = 'total' DESC, total DESC, series LIMIT 500"""
    return _run(con, data_dir, "metrics", query, params)


def metric_series(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, metric: str, series: str
) -> pd.DataFrame:
    """The series' values with a display band: mean ± 3 sd of the preceding 60 buckets."""
    query = f"""
        SELECT ts, bucket_secs, value,
               avg(value) OVER w AS band_mean, stddev_samp(value) OVER w AS band_sd
        FROM {scan(data_dir, "metrics")}
        WHERE metric = ? AND series = ? AND ts >= ? AND ts < ?
        WINDOW w AS (ORDER BY ts ROWS BETWEEN 60 PRECEDING AND 1 PRECEDING)
        ORDER BY ts"""
    return _run(con, data_dir, "metrics", query, [metric, series, f.start, f.end])


def anomalies_of(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, metric: str, series: str
) -> pd.DataFrame:
    """Anomalous buckets of one series in range, with the detector's expected value and band."""
    query = f"""
        SELECT ts, observed, expected, lower, upper, score, severity, detector, incident_id
        FROM {scan(data_dir, "anomalies")}
        WHERE metric = ? AND series = ? AND ts >= ? AND ts < ? ORDER BY ts"""
    return _run(con, data_dir, "anomalies", query, [metric, series, f.start, f.end])


def incidents(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, limit: int = 500
) -> pd.DataFrame:
    """Incidents overlapping the range, newest first."""
    params: list[Any] = [f.end, f.start]
    labels = _label_where(f, params)
    query = f"""
        SELECT incident_id, start, "end", peak_ts, severity, detector, metric, series,
               service, host, level, template_id, observed, expected, lower, upper, score,
               buckets, template, examples
        FROM {scan(data_dir, "incidents")}
        WHERE start < ? AND "end" > ? {labels}
        ORDER BY start DESC, score DESC LIMIT {int(limit)}"""
    return _run(con, data_dir, "incidents", query, params)


def incident_lines(
    con: duckdb.DuckDBPyConnection, data_dir: Path, incident: dict[str, Any], limit: int = 20
) -> pd.DataFrame:
    """Records behind an incident: its template (or its service/host) during the incident window."""
    start, end = incident["start"], incident["end"]
    params: list[Any] = [start, end, start.date(), end.date()]
    clauses = ["ts >= ?", "ts < ?", "date >= ?", "date <= ?"]
    template_id = incident.get("template_id")
    if template_id is not None and not (isinstance(template_id, float) and math.isnan(template_id)):
        clauses.append(f"template_id = {int(template_id)}")
    for column in ("service", "host"):
        value = incident.get(column)
        if isinstance(value, str):
            clauses.append(f"{column} = ?")
            params.append(value)
    query = f"""
        SELECT ts, level, service, host, source || ':' || line AS location, message AS raw
        FROM {scan(data_dir, "records")} WHERE {" AND ".join(clauses)}
        ORDER BY {ERROR_SQL} DESC, ts LIMIT {int(limit)}"""
    return _run(con, data_dir, "records", query, params)


# ---------------------------------------------------------------- alerts


def notifications(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """One row per notification (idempotency key) with its latest result and attempts so far."""
    query = f"""
        SELECT arg_max(subject, ts) AS subject, arg_max(result, ts) AS result,
               max(attempts) AS attempts, greatest(max(attempts) - 1, 0) AS retries,
               arg_max(error, ts) AS error, arg_max(rule, ts) AS rule,
               arg_max(receiver, ts) AS receiver, arg_max(receiver_kind, ts) AS receiver_kind,
               arg_max(state, ts) AS state, min(ts) AS first_ts, max(ts) AS last_ts,
               idempotency_key
        FROM {scan(data_dir, "alerts")} WHERE ts >= ? AND ts < ?
        GROUP BY idempotency_key ORDER BY last_ts DESC, idempotency_key"""
    return _run(con, data_dir, "alerts", query, [f.start, f.end])


def alert_history(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, limit: int = 500
) -> pd.DataFrame:
    """The delivery log itself, newest first."""
    query = f"""
        SELECT ts, rule, receiver, receiver_kind, state, result, attempts, error, subject,
               group_key, idempotency_key
        FROM {scan(data_dir, "alerts")} WHERE ts >= ? AND ts < ?
        ORDER BY ts DESC, idempotency_key LIMIT {int(limit)}"""
    return _run(con, data_dir, "alerts", query, [f.start, f.end])


# ---------------------------------------------------------------- pipeline


def unparsed_reasons(con: duckdb.DuckDBPyConnection, data_dir: Path) -> pd.DataFrame:
    """Unparsed lines by format and reason, most frequent first."""
    query = f"""
        SELECT format, reason, count(*) AS lines FROM {scan(data_dir, "unparsed")}
        GROUP BY ALL ORDER BY lines DESC, format, reason LIMIT 100"""
    return _run(con, data_dir, "unparsed", query, [])


def run_summaries(data_dir: Path, limit: int = 200) -> pd.DataFrame:
    """The newest `loglens process` run summaries (state/runs/*.json), oldest first."""
    runs_dir = data_dir / "state" / "runs"
    files = sorted(runs_dir.glob("*.json"))[-limit:] if runs_dir.is_dir() else []
    rows = []
    for path in files:
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DatasetError("state/runs", path, f"unreadable run summary: {err}") from err
        parsed = run.get("parsed") or {}
        unparsed = run.get("unparsed") or {}
        elapsed = float(run.get("elapsed_secs") or 0.0)
        lines = int(run.get("lines") or 0)
        rows.append(
            {
                "run_id": run.get("run_id", path.stem),
                "files": run.get("files"),
                "lines": lines,
                "parsed": sum(parsed.values()),
                "unparsed": sum(unparsed.values()),
                "records_written": run.get("records_written"),
                "elapsed_s": elapsed,
                "lines_per_s": lines / elapsed if elapsed > 0 else None,
                "warnings": len(run.get("warnings") or []),
            }
        )
    return pd.DataFrame(rows)
