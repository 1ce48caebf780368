"""Stand-ins for datasets the real pipeline does not write yet, built from real records.

Every writer here follows docs/datasets.md column for column (names, order, Arrow types), so the
dashboard is tested against the contract. When `loglens process` mines templates and `loglens
detect` / `loglens alert` land, replace `build_data_dir` with those commands; the tests stay.
Records and templates already come from the real `loglens process` when it wrote them.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us", tz="UTC")

TEMPLATES_SCHEMA = pa.schema(
    [
        ("template_id", pa.uint64()),
        ("template", pa.utf8()),
        ("count", pa.uint64()),
        ("first_seen", TS),
        ("last_seen", TS),
        ("level", pa.utf8()),
        ("service", pa.utf8()),
        ("example", pa.utf8()),
    ]
)
METRICS_SCHEMA = pa.schema(
    [
        ("ts", TS),
        ("bucket_secs", pa.int32()),
        ("metric", pa.utf8()),
        ("series", pa.utf8()),
        ("service", pa.utf8()),
        ("host", pa.utf8()),
        ("level", pa.utf8()),
        ("template_id", pa.uint64()),
        ("value", pa.float64()),
    ]
)
ANOMALIES_SCHEMA = pa.schema(
    [
        ("ts", TS),
        ("metric", pa.utf8()),
        ("series", pa.utf8()),
        ("service", pa.utf8()),
        ("host", pa.utf8()),
        ("level", pa.utf8()),
        ("template_id", pa.uint64()),
        ("detector", pa.utf8()),
        ("observed", pa.float64()),
        ("expected", pa.float64()),
        ("lower", pa.float64()),
        ("upper", pa.float64()),
        ("score", pa.float64()),
        ("severity", pa.utf8()),
        ("incident_id", pa.utf8()),
    ]
)
INCIDENTS_SCHEMA = pa.schema(
    [
        ("incident_id", pa.utf8()),
        ("start", TS),
        ("end", TS),
        ("peak_ts", TS),
        ("detector", pa.utf8()),
        ("metric", pa.utf8()),
        ("series", pa.utf8()),
        ("service", pa.utf8()),
        ("host", pa.utf8()),
        ("level", pa.utf8()),
        ("template_id", pa.uint64()),
        ("observed", pa.float64()),
        ("expected", pa.float64()),
        ("lower", pa.float64()),
        ("upper", pa.float64()),
        ("score", pa.float64()),
        ("severity", pa.utf8()),
        ("buckets", pa.uint32()),
        ("template", pa.utf8()),
        ("examples", pa.list_(pa.utf8())),
    ]
)
ALERTS_SCHEMA = pa.schema(
    [
        ("ts", TS),
        ("idempotency_key", pa.utf8()),
        ("rule", pa.utf8()),
        ("receiver", pa.utf8()),
        ("receiver_kind", pa.utf8()),
        ("group_key", pa.utf8()),
        ("state", pa.utf8()),
        ("incident_ids", pa.list_(pa.utf8())),
        ("subject", pa.utf8()),
        ("attempts", pa.uint32()),
        ("result", pa.utf8()),
        ("error", pa.utf8()),
    ]
)

# A crude stand-in for the miner: every token holding a digit becomes <*>.
TEMPLATE_SQL = r"regexp_replace(message, '\S*[0-9]\S*', '<*>', 'g')"
ERROR_SQL = "(status >= 500 OR lower(level) IN ('error', 'critical', 'alert', 'emergency'))"
LEVELS = "['trace', 'debug', 'info', 'notice', 'warn', 'error', 'critical', 'alert', 'emergency']"
LEVEL_RANK = f"list_position({LEVELS}, level)"


def _records(data_dir: Path) -> str:
    return f"read_parquet('{data_dir}/records/**/*.parquet', hive_partitioning = true)"


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.rename(path)


def _table(con: duckdb.DuckDBPyConnection, query: str, schema: pa.Schema) -> pa.Table:
    return con.sql(query).to_arrow_table().select(schema.names).cast(schema)


def copy_mined_records(src: Path, dst: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Copies records, unparsed, templates and state/ from `src`, filling template_id where null.

    Once `loglens process` mines templates, its ids and templates/ are kept as they are.
    """
    con.execute(
        f"""COPY (SELECT * EXCLUDE (date, hour)
                           REPLACE (coalesce(template_id, hash({TEMPLATE_SQL})) AS template_id),
                         strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour
                  FROM read_parquet('{src}/records/**/*.parquet', hive_partitioning = true))
            TO '{dst}/records' (FORMAT parquet, PARTITION_BY (date, hour))"""
    )
    for name in ("unparsed", "state", "templates"):
        if (src / name).exists():
            shutil.copytree(src / name, dst / name)


def write_templates(data_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    query = f"""
        SELECT template_id, any_value({TEMPLATE_SQL}) AS template, count(*)::UBIGINT AS count,
               min(ts) AS first_seen, max(ts) AS last_seen,
               arg_max(level, {LEVEL_RANK}) AS level, any_value(service) AS service,
               any_value(message) AS example
        FROM {_records(data_dir)} GROUP BY template_id ORDER BY template_id"""
    _write(_table(con, query, TEMPLATES_SCHEMA), data_dir / "templates" / "templates.parquet")


def write_metrics(data_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Per-minute volume, errors, error_rate: total and per-service rollups, by date partition."""
    bucket = "to_timestamp(floor(epoch(ts) / 60) * 60)"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE m AS
            WITH per AS (
              SELECT {bucket} AS ts, service, count(*)::DOUBLE AS volume,
                     count(*) FILTER (WHERE {ERROR_SQL})::DOUBLE AS errors
              FROM {_records(data_dir)} GROUP BY GROUPING SETS (({bucket}), ({bucket}, service))),
            labelled AS (
              SELECT ts, service, CASE WHEN service IS NULL THEN 'total'
                                       ELSE 'service=' || service END AS series, volume, errors
              FROM per)
            SELECT ts, 60 AS bucket_secs, metric, series, service, NULL AS host, NULL AS level,
                   NULL::UBIGINT AS template_id, value
            FROM labelled UNPIVOT (value FOR metric IN (volume, errors))
            UNION ALL
            SELECT ts, 60, 'error_rate', series, service, NULL, NULL, NULL, errors / volume
            FROM labelled"""
    )
    for (day,) in con.execute(
        "SELECT DISTINCT strftime(ts, '%Y-%m-%d') FROM m ORDER BY 1"
    ).fetchall():
        query = (
            f"SELECT * FROM m WHERE strftime(ts, '%Y-%m-%d') = '{day}' ORDER BY ts, metric, series"
        )
        _write(
            _table(con, query, METRICS_SCHEMA),
            data_dir / "metrics" / f"date={day}" / "part-0.parquet",
        )


def write_anomalies_and_incidents(data_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    """The 3 buckets of total volume farthest from the mean, as anomalies and one incident each."""
    query = f"""
        WITH s AS (SELECT ts, value, avg(value) OVER () AS mean, stddev_samp(value) OVER () AS sd
                   FROM read_parquet('{data_dir}/metrics/**/*.parquet', hive_partitioning = true)
                   WHERE metric = 'volume' AND series = 'total')
        SELECT ts, 'volume' AS metric, 'total' AS series, NULL AS service, NULL AS host,
               NULL AS level, NULL::UBIGINT AS template_id, 'zscore' AS detector,
               value AS observed, mean AS expected, greatest(mean - 3 * sd, 0) AS lower,
               mean + 3 * sd AS upper, abs(value - mean) / sd AS score,
               CASE WHEN row_number() OVER (ORDER BY abs(value - mean) DESC, ts) = 1
                    THEN 'critical' ELSE 'warning' END AS severity,
               'inc-' || strftime(ts, '%Y%m%d%H%M') AS incident_id
        FROM s ORDER BY abs(value - mean) DESC, ts LIMIT 3"""
    anomalies = _table(con, query, ANOMALIES_SCHEMA)
    _write(anomalies, data_dir / "anomalies" / "part-0.parquet")
    con.register("anomalies_fx", anomalies)
    top_template = f"""
        (SELECT template_id FROM {_records(data_dir)} r
         WHERE r.ts >= a.ts AND r.ts < a.ts + INTERVAL 1 MINUTE
         GROUP BY template_id ORDER BY count(*) DESC, template_id LIMIT 1)"""
    query = f"""
        SELECT a.incident_id, a.ts AS start, a.ts + INTERVAL 1 MINUTE AS "end", a.ts AS peak_ts,
               a.detector, a.metric, a.series, a.service, a.host, a.level,
               {top_template} AS template_id, a.observed, a.expected, a.lower, a.upper, a.score,
               a.severity, 1::UINTEGER AS buckets, NULL AS template, NULL AS examples
        FROM anomalies_fx a"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE inc AS {query}")
    explained = f"""
        SELECT i.* REPLACE (t.template AS template,
               (SELECT list(message ORDER BY ts) FROM (
                   SELECT message, ts FROM {_records(data_dir)} r
                   WHERE r.template_id = i.template_id AND r.ts >= i.start AND r.ts < i."end"
                   ORDER BY ts LIMIT 5)) AS examples)
        FROM inc i
        LEFT JOIN read_parquet('{data_dir}/templates/templates.parquet') t USING (template_id)
        ORDER BY i.start"""
    _write(_table(con, explained, INCIDENTS_SCHEMA), data_dir / "incidents" / "part-0.parquet")


def write_alerts(data_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Per incident one notification: delivered first time, delivered after a retry, or failed."""
    incidents = con.sql(
        f"""SELECT incident_id, start, severity FROM
            read_parquet('{data_dir}/incidents/*.parquet') ORDER BY start"""
    ).to_arrow_table()
    outcomes = (
        [("delivered", None)],
        [("retrying", "HTTP 503"), ("delivered", None)],
        [("retrying", "timeout"), ("retrying", "timeout"), ("failed", "timeout after 3 attempts")],
    )
    rows = []
    for i, row in enumerate(incidents.to_pylist()):
        incident_id, start, severity = row["incident_id"], row["start"], row["severity"]
        for attempt, (result, error) in enumerate(outcomes[i % len(outcomes)], start=1):
            rows.append(
                {
                    "ts": start + timedelta(minutes=2, seconds=30 * attempt),
                    "idempotency_key": f"key-{incident_id}",
                    "rule": "volume-anomaly",
                    "receiver": "ops-webhook",
                    "receiver_kind": "webhook",
                    "group_key": "series=total",
                    "state": "firing",
                    "incident_ids": [incident_id],
                    "subject": f"[{severity}] volume anomaly {incident_id}",
                    "attempts": attempt,
                    "result": result,
                    "error": error,
                }
            )
    table = pa.Table.from_pylist(rows, schema=ALERTS_SCHEMA)
    _write(table, data_dir / "alerts" / "history" / "part-0.parquet")


def build_data_dir(src: Path, dst: Path) -> Path:
    """A full data directory: real records (template ids filled) plus every contract dataset."""
    dst.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    copy_mined_records(src, dst, con)
    if not (dst / "templates" / "templates.parquet").exists():
        write_templates(dst, con)
    write_metrics(dst, con)
    write_anomalies_and_incidents(dst, con)
    write_alerts(dst, con)
    return dst
