"""The dashboard's test data directory, made by the real pipeline, and the dataset schemas.

`build_data_dir` copies a processed data directory, runs `loglens detect` on it and `loglens alert
run` against a real webhook receiver on loopback (one delivered after a retry, one unreachable), so
every page reads what the pipeline writes. The Arrow schemas follow docs/datasets.md column for
column; tests that need a hand-made or malformed dataset (alerts, detect scoring) write with them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa

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

# Alerting for the fixture: every critical incident to a receiver that answers 503 once (a retry,
# then delivered), and every incident to a port nothing listens on (2 attempts, still retrying),
# whichever severities detection gives the two generated days.
# resolve_after is long so that every incident of the two generated days is still firing at --now.
ALERT_CONFIG = """
[alerting]
resolve_after = "72h"
backoff_base = "20ms"
backoff_max = "50ms"

[[receiver]]
name = "hook"
kind = "webhook"
url = "{url}"

[[receiver]]
name = "down"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
max_attempts = 2

[[rule]]
name = "critical"
kind = "incident"
min_severity = "critical"
receivers = ["hook"]
group_by = ["service"]

[[rule]]
name = "everything"
kind = "incident"
min_severity = "warning"
receivers = ["down"]
group_by = ["service"]
"""


def _loglens(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=600)


def _checked(binary: str, *args: str) -> None:
    result = _loglens(binary, *args)
    if result.returncode != 0:
        raise RuntimeError(f"loglens {' '.join(args)} exited {result.returncode}: {result.stderr}")


def newest_incident_end(data_dir: Path) -> str:
    """RFC 3339 end of the newest incident: `alert run --now` there sees every incident firing."""
    query = f"""SELECT strftime(max("end"), '%Y-%m-%dT%H:%M:%SZ')
                FROM read_parquet('{data_dir}/incidents/**/*.parquet')"""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(query).fetchall()[0][0]


def run_alerts(binary: str, data_dir: Path) -> None:
    """`loglens alert run` at the newest incident's end, delivering to a local webhook receiver."""
    from alert_helpers import HttpServer, Script  # noqa: PLC0415 (alert_helpers imports this module)

    with HttpServer(Script(fail=1)) as http:
        config = data_dir.parent / "alerting.toml"
        config.write_text(ALERT_CONFIG.format(url=http.url))
        now = newest_incident_end(data_dir)
        args = ("alert", "run", "--config", str(config), "--data-dir", str(data_dir), "--now", now)
        result = _loglens(binary, *args)
        # Exit 1 means "some notification failed": the unreachable receiver, on purpose.
        if result.returncode not in (0, 1) or not (data_dir / "alerts" / "history").is_dir():
            raise RuntimeError(f"loglens alert run exited {result.returncode}: {result.stderr}")


def build_data_dir(binary: str, src: Path, dst: Path) -> Path:
    """A copy of the processed data directory `src` with every dataset of docs/datasets.md."""
    shutil.copytree(src, dst)
    _checked(binary, "detect", "--data-dir", str(dst))
    run_alerts(binary, dst)
    return dst
