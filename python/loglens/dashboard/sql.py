"""Every query the dashboard runs: plain functions over a DuckDB connection and a data directory.

No Streamlit here. Filtering, aggregation and LIMITs happen in DuckDB so only small results reach
pandas; the tests and bench/dashboard_load.py call these functions too. Datasets follow
docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from loglens import _engine

# Dataset name -> directory inside the data directory (docs/datasets.md).
DATASETS = {
    "records": "records",
    "unparsed": "unparsed",
    "templates": "templates",
    "metrics": "metrics",
    "anomalies": "anomalies",
    "incidents": "incidents",
    "rollup_counts": "rollups/counts",
    "rollup_templates": "rollups/templates",
    "rollup_latency": "rollups/latency",
    "alerts": "alerts/history",
}

# The engine's one definition of an error (what `loglens detect` counts in its `errors` metric),
# as SQL. Levels are stored lowercase (docs/datasets.md): no lower() on every record.
ERROR_SQL = _engine.error_sql()
# Metrics whose buckets without records metrics/ leaves out (they are 0).
DENSE_METRICS = frozenset(_engine.dense_metrics())

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
    # Database-wide settings, so that cursors (one per query, see data.cursor) have them too: a
    # SET is per session, and a cursor without the metadata cache re-reads every Parquet footer
    # (cold queries 3-6x slower on 10M records).
    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    return quiet(con)


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """No progress bar (a per-session setting): it would print into the server's terminal."""
    con.execute("SET enable_progress_bar = false")
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


def has_aliases(data_dir: Path) -> bool:
    """Whether templates/ maps template ids to their current template (`canonical_id`).

    Records keep the id their template had when they were written; `process` since one-pass
    mining writes `canonical_id` for every id, older data directories list current ids only.
    """
    return has_column(data_dir, "templates", "canonical_id")


def has_column(data_dir: Path, dataset: str, column: str) -> bool:
    """Whether any file of the dataset has the column (older data directories lack newer ones)."""
    if not dataset_present(data_dir, dataset):
        return False
    pattern = str(dataset_dir(data_dir, dataset) / "**" / "*.parquet").replace("'", "''")
    try:
        names = duckdb.sql(f"SELECT name FROM parquet_schema('{pattern}')").fetchall()
    except duckdb.Error:
        return False  # unreadable files: the dataset's own query reports them, naming it
    return (column,) in names


def resolved_records(data_dir: Path) -> str:
    """records/ with `template_id` resolved to the template it belongs to now."""
    records = scan(data_dir, "records")
    if not has_aliases(data_dir):
        return records
    aliases = f"SELECT template_id AS alias_id, canonical_id FROM {scan(data_dir, 'templates')}"
    return f"""(SELECT r.* REPLACE (coalesce(a.canonical_id, r.template_id) AS template_id)
               FROM {records} r LEFT JOIN ({aliases}) a ON r.template_id = a.alias_id)"""


LEVEL_RANK_SQL = """CASE level WHEN 'trace' THEN 0 WHEN 'debug' THEN 1 WHEN 'info' THEN 2
    WHEN 'notice' THEN 3 WHEN 'warn' THEN 4 WHEN 'error' THEN 5 WHEN 'critical' THEN 6
    WHEN 'alert' THEN 7 WHEN 'emergency' THEN 8 END"""


def current_templates(data_dir: Path) -> str:
    """templates/ as one row per current template, the ids that generalized into it counted in
    its totals (count, first and last seen, worst level, earliest example and its service)."""
    table = scan(data_dir, "templates")
    if not has_aliases(data_dir):
        return table
    return f"""(SELECT canonical_id AS template_id,
                   any_value(template) FILTER (WHERE template_id = canonical_id) AS template,
                   CAST(sum(count) AS UBIGINT) AS count,
                   coalesce(min(first_seen) FILTER (WHERE count > 0), min(first_seen))
                       AS first_seen,
                   max(last_seen) AS last_seen,
                   arg_max(level, {LEVEL_RANK_SQL}) AS level,
                   arg_min(service, first_seen) FILTER (WHERE count > 0) AS service,
                   arg_min(example, first_seen) FILTER (WHERE count > 0) AS example
               FROM {table} GROUP BY canonical_id)"""


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


def filter_options(
    con: duckdb.DuckDBPyConnection, data_dir: Path, rollup_secs: int = 0
) -> pd.DataFrame:
    """Distinct values of each filterable label, as (label, value) rows.

    From detect's count rollups when current (`rollup_secs` > 0, see rollup_bucket_secs): they
    hold every label value in thousands of rows, and this runs on every cold page load.
    """
    counts = _counts(data_dir, rollup_secs)
    query = f"""
        SELECT CASE WHEN grouping(service) = 0 THEN 'service'
                    WHEN grouping(host) = 0 THEN 'host'
                    WHEN grouping(level) = 0 THEN 'level' ELSE 'source' END AS label,
               coalesce(service, host, level, source) AS value
        FROM (SELECT service, host, level, source FROM {counts.table})
        GROUP BY GROUPING SETS ((service), (host), (level), (source))
        HAVING value IS NOT NULL
        ORDER BY label, value"""
    return _run(con, data_dir, counts.dataset, query, [])


# ---------------------------------------------------------------- overview
#
# The Overview sums counts. `loglens detect` writes them per bucket, by every label the filters
# use (rollups/counts: service, host, level, source, status class) and as latency histograms in
# the sketch's bins (rollups/latency: service, host); whenever those describe exactly the records
# there are and the range is made of whole rollup buckets, the Overview reads them, else
# records/. One query text serves both sources (`Counts`), so both give equal numbers (tested),
# latency quantiles within the sketch's 1%.


@dataclass(frozen=True)
class Counts:
    """Where counts come from: records/ (a row per record) or rollups (a row per combination)."""

    dataset: str
    table: str
    records: str
    errors: str
    status_class: str
    first: str = "min(ts)"
    last: str = "max(ts)"


def _counts(data_dir: Path, rollup_secs: int) -> Counts:
    if rollup_secs > 0:
        table = scan(data_dir, "rollup_counts")
        return Counts("rollup_counts", table, "sum(records)", "sum(errors)", "status_class")
    errors = f"count(*) FILTER (WHERE {ERROR_SQL})"
    return Counts("records", scan(data_dir, "records"), "count(*)", errors, "status // 100")


def rollup_bucket_secs(con: duckdb.DuckDBPyConnection, data_dir: Path) -> int:
    """The rollups' bucket width when they count exactly the records there are, else 0.

    Why the count check: rollups are written by `detect`; after a later `process` they lag the
    records, and the Overview must then read records rather than show stale sums.
    """
    if not dataset_present(data_dir, "rollup_counts"):
        return 0
    query = f"""
        SELECT (SELECT count(*) FROM {scan(data_dir, "records")}) AS records,
               sum(records) AS counted, min(bucket_secs) AS low, max(bucket_secs) AS high
        FROM {scan(data_dir, "rollup_counts")}"""
    row = _run(con, data_dir, "rollup_counts", query, []).iloc[0]
    if pd.isna(row["counted"]) or pd.isna(row["low"]) or row["low"] != row["high"]:
        return 0
    return int(row["low"]) if int(row["counted"]) == int(row["records"]) else 0


def whole_buckets(f: Filters, secs: int) -> bool:
    """Whether data pre-summed in `secs` buckets (rollups, metrics) answers for this range
    exactly: whole buckets at both ends of the range and of the previous period, and in every
    chart bucket."""
    if secs <= 0 or f.bucket_secs() % secs:
        return False
    edges = (f.start, f.end, f.previous().start)
    return all(int(t.timestamp()) % secs == 0 and t.microsecond == 0 for t in edges)


def _quantile(q: float) -> str:
    """quantile_cont's interpolation, read off cumulative counts `upto` of sorted values `v`.

    Position (n - 1) * q; the values at its floor and the next index; linear in between.
    """
    pos = f"(n - 1) * {q}"
    low = f"min(v) FILTER (WHERE upto > floor({pos}))"
    high = f"coalesce(min(v) FILTER (WHERE upto > floor({pos}) + 1), {low})"
    return f"{low} + (any_value({pos}) - any_value(floor({pos}))) * ({high} - {low})"


def latency_profile(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, rollup_secs: int = 0
) -> pd.DataFrame:
    """Latency quantiles (ms, records with a latency): per `period` (`current`, `previous`;
    `bucket` null) for the KPIs, and p50/p95/p99 per bucket of the range for the chart.

    Records are counted per (period, bucket, latency) and the quantiles read off the cumulative
    counts, which gives quantile_cont's results (tested). The latency rollups hold those counts
    per rollup bucket, service and host in the latency sketch's bins, so quantiles read from them
    are within 1% of the exact ones; level and source filters need records.
    """
    both = dataclasses.replace(f, start=f.previous().start)
    where, params = record_where(both)
    secs = f.bucket_secs()
    dataset, count = "records", "count(*)"
    if whole_buckets(f, rollup_secs) and not (f.levels or f.sources):
        dataset, count = "rollup_latency", "sum(records)"
    query = f"""
        WITH h AS (
            SELECT ts >= ? AS cur, {_bucket_key(secs)} AS k, latency_ms AS v, {count} AS c
            FROM {scan(data_dir, dataset)} WHERE {where} AND latency_ms IS NOT NULL
            GROUP BY ALL),
        g AS (SELECT cur, NULL::BIGINT AS k, v, sum(c) AS c FROM h GROUP BY cur, v
              UNION ALL SELECT cur, k, v, c FROM h WHERE cur),
        cum AS (SELECT cur, k, v, sum(c) OVER (PARTITION BY cur, k ORDER BY v) AS upto,
                       sum(c) OVER (PARTITION BY cur, k) AS n
                FROM g)
        SELECT CASE WHEN cur THEN 'current' ELSE 'previous' END AS period,
               CASE WHEN k IS NOT NULL THEN {_bucket_ts(secs)} END AS bucket,
               {_quantile(0.5)} AS latency_p50, {_quantile(0.95)} AS latency_p95,
               {_quantile(0.99)} AS latency_p99
        FROM cum GROUP BY cur, k ORDER BY period, bucket NULLS FIRST"""
    return _run(con, data_dir, dataset, query, [f.start, *params])


def _overview_counts(data_dir: Path, f: Filters, rollup_secs: int) -> Counts:
    return _counts(data_dir, rollup_secs if whole_buckets(f, rollup_secs) else 0)


def kpis(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    f: Filters,
    rollup_secs: int = 0,
    latency: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Headline figures of the range and of the previous equal-length period (column `period`).

    The latency p95 comes from `latency` (latency_profile of `f`, which the page shares with
    health_series), computed here when not given.
    """
    both = dataclasses.replace(f, start=f.previous().start)
    where, params = record_where(both)
    c = _overview_counts(data_dir, f, rollup_secs)
    query = f"""
        SELECT CASE WHEN ts >= ? THEN 'current' ELSE 'previous' END AS period,
               CAST({c.records} AS BIGINT) AS records, CAST({c.errors} AS BIGINT) AS errors,
               {c.errors} / {c.records} AS error_rate, count(DISTINCT host) AS hosts
        FROM {c.table} WHERE {where} GROUP BY ALL ORDER BY period"""
    out = _run(con, data_dir, c.dataset, query, [f.start, *params])
    if latency is None:
        latency = latency_profile(con, data_dir, f, rollup_secs)
    p95 = latency[latency["bucket"].isna()].set_index("period")["latency_p95"]
    out.insert(4, "latency_p95", out["period"].map(p95).astype("float64"))
    return out


def _bucket_key(secs: int) -> str:
    """The bucket number of `ts`. Over millions of records, grouping on this integer and making
    the timestamp once per group (`_bucket_ts`) is a third cheaper than a timestamp per row."""
    return f"epoch_us(ts) // {secs * 1_000_000}"


def _bucket_ts(secs: int) -> str:
    return f"to_timestamp(k * {secs})"


def volume_by_level(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, rollup_secs: int = 0
) -> pd.DataFrame:
    """Records per bucket and level (level '(none)' for records without one)."""
    where, params = record_where(f)
    secs = f.bucket_secs()
    c = _overview_counts(data_dir, f, rollup_secs)
    query = f"""
        SELECT {_bucket_ts(secs)} AS bucket, coalesce(level, '(none)') AS level, records
        FROM (SELECT {_bucket_key(secs)} AS k, level, CAST({c.records} AS BIGINT) AS records
              FROM {c.table} WHERE {where} GROUP BY ALL)
        ORDER BY bucket, level"""
    return _run(con, data_dir, c.dataset, query, params)


def health_series(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    f: Filters,
    rollup_secs: int = 0,
    latency: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per bucket: records, errors, error rate and latency p50/p95/p99 (ms, access records only).

    The latency quantiles come from `latency` (as for kpis).
    """
    where, params = record_where(f)
    secs = f.bucket_secs()
    c = _overview_counts(data_dir, f, rollup_secs)
    query = f"""
        SELECT {_bucket_ts(secs)} AS bucket, records, errors, errors / records AS error_rate
        FROM (SELECT {_bucket_key(secs)} AS k, CAST({c.records} AS BIGINT) AS records,
                     CAST({c.errors} AS BIGINT) AS errors
              FROM {c.table} WHERE {where} GROUP BY ALL)
        ORDER BY bucket"""
    out = _run(con, data_dir, c.dataset, query, params)
    if latency is None:
        latency = latency_profile(con, data_dir, f, rollup_secs)
    per_bucket = latency[latency["bucket"].notna() & (latency["period"] == "current")]
    columns = ["bucket", "latency_p50", "latency_p95", "latency_p99"]
    return out.merge(per_bucket[columns], on="bucket", how="left")


# Breakdown dimensions: the label of a group (labels are built on the few groups, not on every
# record: a string per record costs more than the scan).
BREAKDOWN_LABELS = {
    "level": "coalesce(level, '(none)')",
    "service": "coalesce(service, '(none)')",
    "host": "coalesce(host, '(none)')",
    "status": "CASE WHEN status IS NULL THEN 'no status' ELSE CAST(status AS VARCHAR) || 'xx' END",
    "source": "coalesce(source, '(none)')",
}


def breakdown(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, rollup_secs: int = 0
) -> pd.DataFrame:
    """Records by level, service, host, status class and source as (dimension, key, records).

    Why not GROUPING SETS: counting the few distinct combinations once and summing them per
    dimension reads and hashes every record once instead of once per set (2-3x faster here).
    """
    where, params = record_where(f)
    c = _overview_counts(data_dir, f, rollup_secs)
    sums = " UNION ALL ".join(
        f"SELECT '{d}' AS dimension, {label} AS key, sum(n) AS records FROM combos GROUP BY ALL"
        for d, label in BREAKDOWN_LABELS.items()
    )
    query = f"""
        WITH combos AS (
            SELECT level, service, host, {c.status_class} AS status, source, {c.records} AS n
            FROM {c.table} WHERE {where} GROUP BY ALL)
        SELECT dimension, key, CAST(records AS BIGINT) AS records FROM ({sums})
        ORDER BY dimension, records DESC, key"""
    return _run(con, data_dir, c.dataset, query, params)


# ---------------------------------------------------------------- templates


def _template_counts(data_dir: Path, f: Filters, rollup_secs: int) -> Counts:
    """Per-template counts: detect's template rollups when they fit the range, else records."""
    if whole_buckets(f, rollup_secs):
        table = scan(data_dir, "rollup_templates")
        sums = ("sum(records)", "sum(errors)", "", "min(first_ts)", "max(last_ts)")
        return Counts("rollup_templates", table, *sums)
    errors = f"count(*) FILTER (WHERE {ERROR_SQL})"
    return Counts("records", resolved_records(data_dir), "count(*)", errors, "status // 100")


def template_coverage(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, rollup_secs: int = 0
) -> pd.DataFrame:
    """Records in range, those with a template_id, and how many templates."""
    where, params = record_where(f)
    c, t = _overview_counts(data_dir, f, rollup_secs), _template_counts(data_dir, f, rollup_secs)
    query = f"""
        SELECT (SELECT coalesce(CAST({c.records} AS BIGINT), 0) FROM {c.table} WHERE {where})
                   AS records,
               (SELECT coalesce(CAST({t.records} AS BIGINT), 0) FROM {t.table}
                WHERE {where} AND template_id IS NOT NULL) AS with_template,
               (SELECT count(DISTINCT template_id) FROM {t.table} WHERE {where}) AS templates"""
    return _run(con, data_dir, t.dataset, query, [*params, *params, *params])


def top_templates(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, limit: int, rollup_secs: int = 0
) -> pd.DataFrame:
    """The most frequent templates in range, with their text from templates/.

    Without templates/ (or for an id it lacks), one message of the template stands in for its
    text; it is read for the top ids only, as messages are the widest column by far.
    """
    with_texts = dataset_present(data_dir, "templates")
    where, params = record_where(f)
    t = _template_counts(data_dir, f, rollup_secs)
    counted = f"""
        SELECT template_id, CAST({t.records} AS BIGINT) AS records,
               {t.first} AS first_in_range, {t.last} AS last_in_range,
               CAST({t.errors} AS BIGINT) AS errors
        FROM {t.table} WHERE {where} AND template_id IS NOT NULL
        GROUP BY template_id ORDER BY records DESC, template_id LIMIT {int(limit)}"""
    texts = f"{current_templates(data_dir)} t" if with_texts else "(SELECT NULL::UBIGINT AS "
    if not with_texts:
        texts += "template_id, NULL AS template, NULL::TIMESTAMPTZ AS first_seen, "
        texts += "NULL AS level, NULL AS service) t"
    query = f"""
        WITH c AS ({counted}),
        examples AS (
            SELECT template_id, any_value(message) AS example FROM {resolved_records(data_dir)}
            WHERE {where} AND template_id IN (
                SELECT template_id FROM c LEFT JOIN {texts} USING (template_id)
                WHERE t.template IS NULL)
            GROUP BY template_id)
        SELECT c.template_id, coalesce(t.template, e.example) AS template, c.records, c.errors,
               c.first_in_range, c.last_in_range, t.first_seen, t.level, t.service
        FROM c LEFT JOIN {texts} USING (template_id) LEFT JOIN examples e USING (template_id)
        ORDER BY c.records DESC, c.template_id"""
    dataset = "templates" if with_texts else t.dataset
    return _run(con, data_dir, dataset, query, [*params, *params])


def template_trends(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    f: Filters,
    template_ids: Sequence[int],
    rollup_secs: int = 0,
) -> pd.DataFrame:
    """Records per bucket for the given templates (for sparklines)."""
    if not template_ids:
        return pd.DataFrame({"template_id": [], "bucket": [], "records": []})
    ids = ", ".join(str(int(t)) for t in template_ids)
    secs = f.bucket_secs()
    where, params = record_where(f)
    t = _template_counts(data_dir, f, rollup_secs)
    query = f"""
        SELECT template_id, {_bucket_ts(secs)} AS bucket, records
        FROM (SELECT template_id, {_bucket_key(secs)} AS k, CAST({t.records} AS BIGINT) AS records
              FROM {t.table} WHERE {where} AND template_id IN ({ids})
              GROUP BY ALL)
        ORDER BY template_id, bucket"""
    return _run(con, data_dir, t.dataset, query, params)


def new_templates(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters, limit: int = 200
) -> pd.DataFrame:
    """Templates whose first_seen falls in the range, newest first."""
    params: list[Any] = [f.start, f.end]
    service = _in("service", f.services, params)
    query = f"""
        SELECT template_id, template, first_seen, last_seen, count, level, service, example
        FROM {current_templates(data_dir)}
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


def _search_table(data_dir: Path, field: str) -> str:
    """Records, with template ids resolved when the search is by template (so an incident's
    template finds records written under the ids it generalized from)."""
    return resolved_records(data_dir) if field == "template_id" else scan(data_dir, "records")


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
    query = f"SELECT count(*) AS n FROM {_search_table(data_dir, field)} WHERE {where} AND {clause}"
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
        FROM {_search_table(data_dir, field)} WHERE {where} AND {clause}
        ORDER BY ts DESC, source, line DESC
        LIMIT {int(page_size)} OFFSET {int(page) * int(page_size)}"""
    return _run(con, data_dir, "records", query, params)


def search_export(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    f: Filters,
    search: tuple[str, str, str],
    limit: int,
) -> pd.DataFrame:
    """The newest `limit` matches with every scalar field, for a CSV download."""
    mode, text, field = search
    where, params = record_where(f)
    clause = _search_clause(mode, text, field, params)
    query = f"""
        SELECT ts, level, service, host, source, line, format, status, method, path, latency_ms,
               client_ip, template_id, message
        FROM {_search_table(data_dir, field)} WHERE {where} AND {clause}
        ORDER BY ts DESC, source, line DESC LIMIT {int(limit)}"""
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
    """The series' values with a display band: mean ± 3 sd of the preceding 60 buckets.

    A dense metric (`_engine.dense_metrics()`) is stored without the buckets between two of a
    series' points where it had no records; they are put back here as 0, as detect judged them,
    also at the edges of the range when the series has points beyond them.
    """
    if metric not in DENSE_METRICS:
        grid = "SELECT * FROM stored"
        params = [metric, series, f.start, f.end]
    else:
        grid = f"""
            SELECT g.ts, w AS bucket_secs, coalesce(s.value, 0) AS value
            FROM (
                SELECT unnest(generate_series(to_timestamp(lo), to_timestamp(hi), to_seconds(w)))
                    AS ts, w
                FROM (
                    SELECT w,
                        CASE WHEN before AND (first IS NOT NULL OR after)
                             THEN ceil(epoch(?::TIMESTAMPTZ) / w) * w ELSE first END AS lo,
                        CASE WHEN after AND (last IS NOT NULL OR before)
                             THEN ceil(epoch(?::TIMESTAMPTZ) / w) * w - w ELSE last END AS hi
                    FROM (
                        SELECT max(bucket_secs) AS w,
                            min(epoch(ts)) FILTER (WHERE ts >= ? AND ts < ?) AS first,
                            max(epoch(ts)) FILTER (WHERE ts >= ? AND ts < ?) AS last,
                            coalesce(bool_or(ts < ?), false) AS before,
                            coalesce(bool_or(ts >= ?), false) AS after
                        FROM {scan(data_dir, "metrics")} WHERE metric = ? AND series = ?))
                WHERE lo <= hi) g
            LEFT JOIN stored s USING (ts)"""
        bounds = [f.start, f.end, f.start, f.end, f.start, f.end, f.start, f.end]
        params = [metric, series, f.start, f.end, *bounds, metric, series]
    query = f"""
        WITH stored AS (
            SELECT ts, bucket_secs, value FROM {scan(data_dir, "metrics")}
            WHERE metric = ? AND series = ? AND ts >= ? AND ts < ?),
        points AS ({grid})
        SELECT ts, bucket_secs, value,
               avg(value) OVER w AS band_mean, stddev_samp(value) OVER w AS band_sd
        FROM points
        WINDOW w AS (ORDER BY ts ROWS BETWEEN 60 PRECEDING AND 1 PRECEDING)
        ORDER BY ts"""
    return _run(con, data_dir, "metrics", query, params)


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
    """Incidents overlapping the range, newest first. A correlated incident names its root
    series and lists its members (the incidents merged into it); data written before
    correlation shows each incident as its own root."""
    params: list[Any] = [f.end, f.start]
    labels = _label_where(f, params)
    correlation = (
        "root, len(member_ids) AS members, member_ids, member_detectors, member_series, "
        "member_severities"
        if has_column(data_dir, "incidents", "member_ids")
        else "series AS root, 1 AS members"
    )
    query = f"""
        SELECT incident_id, start, "end", peak_ts, severity, detector, metric, series,
               {correlation}, service, host, level, template_id, observed, expected, lower,
               upper, score, buckets, template, examples
        FROM {scan(data_dir, "incidents")}
        WHERE start < ? AND "end" > ? {labels}
        ORDER BY start DESC, score DESC, incident_id LIMIT {int(limit)}"""
    return _run(con, data_dir, "incidents", query, params)


def incident_template_id(
    con: duckdb.DuckDBPyConnection, data_dir: Path, incident: dict[str, Any]
) -> int | None:
    """The incident's template id; for value detectors, which record only the explaining
    template's text, the id of that text in templates/ (None when there is none)."""
    template_id = incident.get("template_id")
    if template_id is not None and not pd.isna(template_id):
        return int(template_id)
    text = incident.get("template")
    if not isinstance(text, str) or not dataset_present(data_dir, "templates"):
        return None
    query = f"""SELECT min(template_id) AS id FROM {current_templates(data_dir)}
                WHERE template = ?"""
    found = _run(con, data_dir, "templates", query, [text])["id"].iloc[0]
    return None if pd.isna(found) else int(found)


def incident_lines(
    con: duckdb.DuckDBPyConnection, data_dir: Path, incident: dict[str, Any], limit: int = 20
) -> pd.DataFrame:
    """Records behind an incident: its template (and service/host) during the incident window."""
    start, end = incident["start"], incident["end"]
    params: list[Any] = [start, end, start.date(), end.date()]
    clauses = ["ts >= ?", "ts < ?", "date >= ?", "date <= ?"]
    template_id = incident_template_id(con, data_dir, incident)
    if template_id is not None:
        clauses.append(f"template_id = {template_id}")
    for column in ("service", "host"):
        value = incident.get(column)
        if isinstance(value, str):
            clauses.append(f"{column} = ?")
            params.append(value)
    query = f"""
        SELECT ts, level, service, host, source || ':' || line AS location, message AS raw
        FROM {resolved_records(data_dir)} WHERE {" AND ".join(clauses)}
        ORDER BY {ERROR_SQL} DESC, ts LIMIT {int(limit)}"""
    return _run(con, data_dir, "records", query, params)


# ---------------------------------------------------------------- alerts


def _sent_where(f: Filters | None, params: list[Any]) -> str:
    """Delivery time in the range, or everything when `f` is None."""
    if f is None:
        return "TRUE"
    params.extend([f.start, f.end])
    return "ts >= ? AND ts < ?"


def alert_span(con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters) -> pd.DataFrame:
    """One row: delivery log rows in the range, in all, and the newest row's time.

    Alert history is stamped when a notification was sent, which for replayed or old logs is far
    from the records' time range: the page offers the whole history then.
    """
    query = f"""
        SELECT count(*) FILTER (WHERE ts >= ? AND ts < ?) AS in_range, count(*) AS total,
               max(ts) AS newest
        FROM {scan(data_dir, "alerts")}"""
    return _run(con, data_dir, "alerts", query, [f.start, f.end])


def notifications(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters | None
) -> pd.DataFrame:
    """One row per notification (idempotency key) with its latest result and attempts so far."""
    params: list[Any] = []
    query = f"""
        SELECT arg_max(subject, ts) AS subject, arg_max(result, ts) AS result,
               max(attempts) AS attempts, greatest(max(attempts) - 1, 0) AS retries,
               arg_max(error, ts) AS error, arg_max(rule, ts) AS rule,
               arg_max(receiver, ts) AS receiver, arg_max(receiver_kind, ts) AS receiver_kind,
               arg_max(state, ts) AS state, min(ts) AS first_ts, max(ts) AS last_ts,
               arg_max(group_key, ts) AS group_key, arg_max(incident_ids, ts) AS incident_ids,
               idempotency_key
        FROM {scan(data_dir, "alerts")} WHERE {_sent_where(f, params)}
        GROUP BY idempotency_key ORDER BY last_ts DESC, idempotency_key"""
    return _run(con, data_dir, "alerts", query, params)


def alert_history(
    con: duckdb.DuckDBPyConnection, data_dir: Path, f: Filters | None, limit: int = 500
) -> pd.DataFrame:
    """The delivery log itself, newest first."""
    params: list[Any] = []
    query = f"""
        SELECT ts, rule, receiver, receiver_kind, state, result, attempts, error, subject,
               group_key, idempotency_key
        FROM {scan(data_dir, "alerts")} WHERE {_sent_where(f, params)}
        ORDER BY ts DESC, idempotency_key LIMIT {int(limit)}"""
    return _run(con, data_dir, "alerts", query, params)


# ---------------------------------------------------------------- pipeline


def unparsed_reasons(con: duckdb.DuckDBPyConnection, data_dir: Path) -> pd.DataFrame:
    """Unparsed lines by format and reason, most frequent first."""
    query = f"""
        SELECT format, reason, count(*) AS lines FROM {scan(data_dir, "unparsed")}
        GROUP BY ALL ORDER BY lines DESC, format, reason LIMIT 100"""
    return _run(con, data_dir, "unparsed", query, [])


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DatasetError(what, path, f"unreadable: {err}") from err


def run_summaries(data_dir: Path, limit: int = 200) -> pd.DataFrame:
    """The newest `loglens process` run summaries (state/runs/*.json), oldest first."""
    runs_dir = data_dir / "state" / "runs"
    files = sorted(runs_dir.glob("*.json"))[-limit:] if runs_dir.is_dir() else []
    rows = []
    for path in files:
        run = _read_json(path, "state/runs")
        parsed = run.get("parsed") or {}
        unparsed = run.get("unparsed") or {}
        elapsed = float(run.get("elapsed_secs") or 0.0)
        lines = int(run.get("lines") or 0)
        size = int(run.get("bytes") or 0)
        rows.append(
            {
                "run_id": run.get("run_id", path.stem),
                "files": run.get("files"),
                "files_unchanged": run.get("files_unchanged"),
                "lines": lines,
                "parsed": sum(parsed.values()),
                "unparsed": sum(unparsed.values()),
                "records_written": run.get("records_written"),
                "templates_new": run.get("templates_new"),
                "mb": size / 1e6,
                "elapsed_s": elapsed,
                "lines_per_s": lines / elapsed if elapsed > 0 else None,
                "mb_per_s": size / 1e6 / elapsed if elapsed > 0 else None,
                "warnings": len(run.get("warnings") or []),
            }
        )
    return pd.DataFrame(rows)


def file_formats(data_dir: Path) -> dict[str, str]:
    """Each input file's format as the newest run summary that read it recorded."""
    runs_dir = data_dir / "state" / "runs"
    formats: dict[str, str] = {}
    for path in sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []:
        formats.update(_read_json(path, "state/runs").get("file_formats") or {})
    return formats


def checkpoints(data_dir: Path) -> pd.DataFrame:
    """Per input file: what the checkpoint says was read, the file's size now, and the lag.

    Lag is size now - bytes read: what the next `loglens process` run will read. A file smaller
    than what was read was truncated or rotated (the next run starts it over). Checkpoints are
    kept per file content (version 2: a list, each entry naming the path it was last read
    under); version 1 keyed them by path.
    """
    path = data_dir / "state" / "checkpoints.json"
    if not path.is_file():
        columns = ["file", "lines_read", "bytes_read", "size_now", "lag_bytes", "state"]
        return pd.DataFrame(columns=columns)
    files = _read_json(path, "state/checkpoints.json").get("files") or []
    entries = (
        [{**entry, "path": name} for name, entry in files.items()]
        if isinstance(files, dict)
        else list(files)
    )
    rows = []
    for entry in sorted(entries, key=lambda e: str(e.get("path", ""))):
        name = str(entry.get("path", ""))
        offset = int(entry.get("offset") or 0)
        try:
            size: int | None = Path(name).stat().st_size
        except OSError:
            size = None  # moved away or not readable here: the lag is unknown
        if entry.get("compressed"):
            # A gzip file's offset counts decompressed bytes: compare sizes on disk instead.
            state = "caught up" if size == int(entry.get("size") or -1) else _file_state(size, 0)
            lag = None if size is None or state != "caught up" else 0
        else:
            state = _file_state(size, offset)
            lag = None if size is None else max(size - offset, 0)
        rows.append(
            {
                "file": name,
                "lines_read": int(entry.get("lines") or 0),
                "bytes_read": offset,
                "size_now": size,
                "lag_bytes": lag,
                "state": state,
            }
        )
    return pd.DataFrame(rows)


def _file_state(size: int | None, offset: int) -> str:
    if size is None:
        return "missing"
    if size < offset:
        return "truncated or rotated"
    return "caught up" if size == offset else "behind"


def unparsed_by_source(con: duckdb.DuckDBPyConnection, data_dir: Path) -> pd.DataFrame:
    """Unparsed lines per input file, with the most frequent reason."""
    query = f"""
        SELECT source AS file, count(*) AS unparsed, mode(reason) AS top_reason
        FROM {scan(data_dir, "unparsed")} GROUP BY source ORDER BY unparsed DESC, file"""
    return _run(con, data_dir, "unparsed", query, [])
