"""Replays alerting over a processed week: how many notifications would page someone.

    bench/alert-replay --gen DIR --data DATA [--step 5m]

Runs `loglens alert run --now T` every --step from the first record to an hour after the last,
with one incident rule (severity warning and up, grouped by the incident's root series) that
sends to a webhook served by this script, as an on-call setup would. Prints the firing and
resolved notifications received, the injected incidents in DIR/ground_truth.json, and firing
notifications per injected incident (issue #16's bar: at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
LOGLENS = str(REPO / "target" / "release" / "loglens")

RULES = """
[alerting]
resolve_after = "5m"

[[receiver]]
name = "oncall"
kind = "webhook"
url = "http://127.0.0.1:{port}/hook"

[[rule]]
name = "incidents"
kind = "incident"
min_severity = "warning"
receivers = ["oncall"]
group_by = ["root"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "4h"
send_resolved = true
"""


def step_of(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600}
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gen", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--step", default="5m")
    args = p.parse_args()
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # A copy of the data directory: alert state (outbox, history, groups) starts empty and the
    # original is left as it was.
    data = Path(tempfile.mkdtemp(prefix="loglens-alert-replay-")) / "data"
    shutil.copytree(args.data, data)
    config = data.parent / "alert-replay.toml"
    config.write_text(RULES.format(port=server.server_address[1]))
    files = f"{args.data}/records/**/*.parquet"
    span = f"SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM read_parquet('{files}')"
    first_us, last_us = duckdb.sql(span).fetchall()[0]
    first = datetime.fromtimestamp(first_us // 1_000_000, UTC).replace(second=0)
    last = datetime.fromtimestamp(last_us // 1_000_000, UTC)
    now, end, step = first, last + timedelta(hours=1), step_of(args.step)
    command = [LOGLENS, "alert", "run", "--config", str(config), "--data-dir", str(data)]
    runs = 0
    while now <= end:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        out = subprocess.run(
            [*command, "--now", stamp],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            sys.exit(f"alert run --now {stamp} exited {out.returncode}: {out.stderr}")
        runs += 1
        now += step
    server.shutdown()
    shutil.rmtree(data.parent, ignore_errors=True)
    firing = sum(1 for n in received if n.get("status") == "firing")
    resolved = sum(1 for n in received if n.get("status") == "resolved")
    truth = json.loads((args.gen / "ground_truth.json").read_text())
    injected = len(truth["incidents"] if isinstance(truth, dict) else truth)
    print(f"{runs} runs of `alert run --now` every {args.step} from {first} to {last} + 1 h")
    print(f"notifications: {firing} firing, {resolved} resolved; injected incidents: {injected}")
    print(f"firing notifications per injected incident: {firing / injected:.2f} (bar: <= 1.2)")


if __name__ == "__main__":
    main()
