"""Ingest throughput of `loglens serve` over HTTP, beside `loglens process` on the same lines.

    bench/serve-load [--lines 1000000] [--batch 5000] [--clients 2]

Generates nginx combined lines with `loglens generate`, starts `loglens serve --http` on a free
loopback port with a fresh data directory, POSTs the lines to /ingest in batches from several
client threads (each answer means the lines are on disk in the spool), then stops serve with
SIGTERM (it flushes and commits) and counts the records in Parquet. Prints lines/s and MB/s
acknowledged, the time until everything was committed, and `loglens process` on the same file
in the same run. The record counts must match the lines sent; the script stops otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
LOGLENS = str(REPO / "target" / "release" / "loglens")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"serve exited: {server.stderr.read() if server.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("serve did not answer /health within 30 s")


def post_all(port: int, batches: list[bytes], retries: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for body in batches:
        while True:
            conn.request("POST", "/ingest?format=combined", body, {"Content-Type": "text/plain"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                break
            if response.status != 429:
                sys.exit(f"/ingest answered {response.status}")
            retries[0] += 1  # backpressure: wait as Retry-After asks, then send again
            time.sleep(float(response.getheader("Retry-After") or 1))


def records(data: Path) -> int:
    files = f"{data}/records/**/*.parquet"
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}')").fetchall()[0][0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--clients", type=int, default=2)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loglens-serve-load-"))
    generate = [LOGLENS, "generate", "--out", str(root / "gen"), "--lines", str(args.lines)]
    subprocess.run(
        [
            *generate,
            "--formats",
            "combined",
            "--duration",
            "1d",
            "--seed",
            "3",
            "--corrupt-rate",
            "0",
        ],
        check=True,
        capture_output=True,
    )
    log = root / "access.log"  # every host's file, one after another
    with log.open("wb") as out:
        for part in sorted((root / "gen" / "logs").rglob("*.log")):
            out.write(part.read_bytes())
    lines = log.read_bytes().splitlines(keepends=True)
    size = sum(len(line) for line in lines)
    batches = [b"".join(lines[i : i + args.batch]) for i in range(0, len(lines), args.batch)]
    port = free_port()
    data = root / "serve-data"
    server = subprocess.Popen(
        [LOGLENS, "serve", "--data-dir", str(data), "--http", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_healthy(port, server)
    retries = [0]
    started = time.monotonic()
    shares = [batches[i :: args.clients] for i in range(args.clients)]
    clients = [threading.Thread(target=post_all, args=(port, s, retries)) for s in shares]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    acked = time.monotonic() - started
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=300)
    committed = time.monotonic() - started
    stored = records(data)
    started = time.monotonic()
    batch_data = root / "process-data"
    subprocess.run(
        [LOGLENS, "process", str(log), "--data-dir", str(batch_data)],
        check=True,
        capture_output=True,
    )
    batch_secs = time.monotonic() - started
    if stored != len(lines) or records(batch_data) != len(lines):
        sys.exit(f"sent {len(lines)} lines, serve stored {stored}, process {records(batch_data)}")
    print(
        f"{len(lines):,} combined lines, {size / 1e6:.0f} MB, {args.clients} clients x "
        f"{args.batch}-line POSTs ({retries[0]} answered 429 and were resent)"
    )
    print(
        f"serve   acknowledged in {acked:6.2f} s: {len(lines) / acked:>10,.0f} lines/s "
        f"{size / 1e6 / acked:6.1f} MB/s; all committed after {committed:.2f} s"
    )
    print(
        f"process (same lines, one file) {batch_secs:6.2f} s: {len(lines) / batch_secs:>10,.0f} "
        f"lines/s {size / 1e6 / batch_secs:6.1f} MB/s"
    )


if __name__ == "__main__":
    main()
