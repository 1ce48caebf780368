"""Error burst to webhook: how long `loglens serve` takes, at its default settings, from the
first line of an injected error burst to the alert about it reaching a webhook.

    bench/alert-latency [--history-lines 100000] [--burst-secs 120] [--timeout 300]

1. `loglens generate` two days of the demo's mixed logs ending now, and `loglens process
   --detect` them: the detectors' history, as a service that has run for two days has it.
2. A webhook receiver (an HTTP server in this process) and `loglens serve --http` on that data
   directory, with one incident rule at its defaults (`group_wait` 30 s; serve: flush 5 s,
   detect every 60 s, 1-minute buckets).
3. Once serve is up, live traffic: the records of the same minutes a day earlier, replayed a
   day later as JSON lines (service, host, level, message) at their time, so the service looks
   as busy as it was; after `--calm-secs`, the burst on top: the payments service logs "Payment
   declined … processing_error" 5 times a second, over HTTP `POST /ingest`, for `--burst-secs`.
4. Prints the seconds from the burst's first line to the first firing notification whose
   alerts are about the payments service and started at or after the burst's minute, with the
   detector and metric behind it. Exits 1 when none arrives within `--timeout`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
from serve_load import LOGLENS, free_port, stop, wait_healthy

SERVICE = "payments"


class Receiver:
    """Records every POST with its arrival time (monotonic) and JSON body."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.seen.append((time.monotonic(), json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing_about(self, service: str, since: float, burst: datetime) -> tuple | None:
        """The first firing notification received after `since` (monotonic) with an alert on
        `service` still anomalous at `burst` or later: (arrival, notification, alert). A Poisson
        scan may date the incident's start a few minutes before the burst (where its window
        starts), so the start is not what tells the burst's incident from older ones."""
        with self.lock:
            seen = list(self.seen)
        for at, body in seen:
            if at < since or body.get("status") != "firing":
                continue
            for alert in body.get("alerts", []):
                end = datetime.fromisoformat(alert["end"].replace("Z", "+00:00"))
                if alert["labels"].get("service") == service and end > burst:
                    return at, body, alert
        return None


def line(ts: datetime, level: str, msg: str, service: str = SERVICE, host: str = "pay-01") -> str:
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record = {"ts": stamp, "level": level, "service": service, "host": host, "msg": msg}
    return json.dumps(record)


def burst_lines(now: datetime, n: int) -> list[str]:
    """One second of the burst: `n` declined payments."""
    return [
        line(
            now,
            "error",
            f"Payment declined for order ORD-X{int(now.timestamp())}{i}: processing_error",
        )
        for i in range(n)
    ]


class Replay:
    """The records of `[since - 1 day, since - 1 day + secs)`, due a day later."""

    def __init__(self, data: Path, since: datetime, secs: int) -> None:
        query = f"""
            SELECT epoch_ms(ts) / 1000 + 86400, coalesce(service, 'unknown'),
                   coalesce(host, 'unknown'), lower(coalesce(level, 'info')), message
            FROM read_parquet('{data}/records/**/*.parquet', hive_partitioning = true)
            WHERE ts >= ?::TIMESTAMPTZ - INTERVAL 1 DAY
              AND ts < ?::TIMESTAMPTZ - INTERVAL 1 DAY + ? * INTERVAL 1 SECOND
            ORDER BY ts"""
        with duckdb.connect() as db:
            db.execute("SET TimeZone = 'UTC'")
            stamp = since.isoformat()
            rows = db.execute(query, [stamp, stamp, secs]).fetchall()
        self.rows = [(datetime.fromtimestamp(due, UTC), *rest) for due, *rest in rows]
        self.next = 0

    def due(self, now: datetime) -> list[str]:
        out = []
        while self.next < len(self.rows) and self.rows[self.next][0] <= now:
            due, service, host, level, msg = self.rows[self.next]
            out.append(line(due, level, msg, service, host))
            self.next += 1
        return out


def post(port: int, lines: list[str]) -> None:
    if not lines:
        return
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = ("\n".join(lines) + "\n").encode()
    conn.request("POST", "/ingest?format=json", body, {"Content-Type": "text/plain"})
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"POST /ingest answered {response.status}")


def run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr}")


def history(tmp: Path, lines: int) -> Path:
    """Two days of the demo's logs ending now, processed with --detect into `tmp/data`."""
    gen, data = tmp / "gen", tmp / "data"
    start = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:00Z")
    print(f"history: {lines} lines over the two days before now ...", flush=True)
    generate = ["generate", "--lines", str(lines), "--duration", "2d", "--seed", "11"]
    run([LOGLENS, *generate, "--start", start, "--out", str(gen)])
    config = str(gen / "loglens.toml")
    run([LOGLENS, "process", "--detect", "--config", config, "--data-dir", str(data)])
    return data


def alert_config(tmp: Path, hook_port: int) -> Path:
    """One incident rule at its defaults, sending to the receiver."""
    config = tmp / "alerts.toml"
    config.write_text(
        f"""[[receiver]]
name = "oncall"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"

[[rule]]
name = "incidents"
kind = "incident"
min_severity = "warning"
receivers = ["oncall"]
group_by = ["service"]
"""
    )
    return config


def drive(port: int, receiver: Receiver, live: Replay, args: argparse.Namespace):
    """Calm traffic, then the burst on top until a notification about it arrives; returns the
    notifications before the burst, the burst's first-line time and what was found."""
    calm_until = time.monotonic() + args.calm_secs
    while time.monotonic() < calm_until:
        post(port, live.due(datetime.now(UTC)))
        time.sleep(1)
    before = len(receiver.seen)
    first_line_at = time.monotonic()
    burst_start = datetime.now(UTC)
    print(f"burst: {args.per_sec} errors/s on {SERVICE} from {burst_start:%H:%M:%S}", flush=True)
    while time.monotonic() - first_line_at < args.timeout:
        now = datetime.now(UTC)
        lines = live.due(now)
        if time.monotonic() - first_line_at < args.burst_secs:
            lines += burst_lines(now, args.per_sec)
        post(port, lines)
        found = receiver.firing_about(SERVICE, first_line_at, burst_start)
        if found:
            return before, first_line_at, found
        time.sleep(1)
    return before, first_line_at, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history-lines", type=int, default=100_000)
    parser.add_argument("--calm-secs", type=int, default=120, help="traffic before the burst")
    parser.add_argument("--burst-secs", type=int, default=120)
    parser.add_argument("--per-sec", type=int, default=5, help="declined payments per second")
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args()
    if not Path(LOGLENS).exists():
        sys.exit(f"{LOGLENS} is missing: cargo build --release -p loglens-cli")
    with tempfile.TemporaryDirectory(prefix="loglens-alert-latency-") as name:
        tmp = Path(name)
        data = history(tmp, args.history_lines)
        history_end = datetime.now(UTC)
        receiver = Receiver()
        config = alert_config(tmp, receiver.port)
        port = free_port()
        serve_log = tmp / "serve.log"
        serve = [LOGLENS, "serve", "--http", f"127.0.0.1:{port}", "--config", str(config)]
        with serve_log.open("w") as log:
            server = subprocess.Popen(
                [*serve, "--data-dir", str(data)], stdout=subprocess.DEVNULL, stderr=log
            )
            try:
                wait_healthy(port, server)
                live = Replay(data, history_end, args.calm_secs + args.timeout + 60)
                print(f"live traffic: {len(live.rows)} records replayed from a day earlier")
                before, first_line_at, found = drive(port, receiver, live, args)
            finally:
                stop(server, timeout=30)
        print(f"notifications before the burst (history, calm traffic): {before}")
        if not found:
            print(serve_log.read_text()[-3000:], file=sys.stderr)
            sys.exit(f"no firing notification about {SERVICE} within {args.timeout} s")
        at, body, alert = found
        print(
            f"error burst -> webhook: {at - first_line_at:.1f} s "
            f"({alert['detector']} on {alert['metric']} {alert['series']}, {alert['severity']}, "
            f"incident from {alert['start']}; "
            f"subject: {body['subject']})"
        )


if __name__ == "__main__":
    main()
