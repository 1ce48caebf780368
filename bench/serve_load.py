"""Ingest throughput of `loglens serve` over HTTP and syslog, beside `loglens process` on the
same lines.

    bench/serve-load [--lines 1000000] [--batch 5000] [--clients 2] [--syslog-clients 1]

Generates nginx combined and RFC 3164 syslog lines with `loglens generate`, starts `loglens
serve --http --syslog-tcp` on free loopback ports with a fresh data directory, and sends from
separate client processes: the access lines POSTed to /ingest in batches (each answer means the
lines are on disk in the spool), the syslog lines over TCP with newline framing. Then it waits
until serve's own flushes committed every line, times probe lines to queryable, stops serve
with SIGTERM and counts the records in Parquet. Prints lines/s and MB/s until everything was
sent and until it was committed, and `loglens process` on the same files in the same run. The
record counts must match the lines sent; the script stops otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
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


def stop(server: subprocess.Popen, timeout: float) -> None:
    """SIGTERM (serve flushes and commits), then SIGKILL if it has not exited within `timeout`:
    a failed run must not leave serve behind."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def post_all(port: int, batches: list[bytes], retries) -> None:
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
            with retries.get_lock():
                retries.value += 1  # backpressure: wait as Retry-After asks, then send again
            time.sleep(float(response.getheader("Retry-After") or 1))


def send_syslog(port: int, chunks: list[bytes]) -> None:
    """Newline-framed syslog over one TCP connection; serve stops reading when its spool is
    full, so `sendall` waits rather than anything being dropped."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as conn:
        for chunk in chunks:
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)


def probe_latency(port: int, data: Path, probes: int) -> list[float]:
    """Sends `probes` single lines, 5 a second, and times each until DuckDB reads it from
    the Parquet records (line to queryable: spool, flush interval, commit)."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    files = f"{data}/records/**/*.parquet"

    def send() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(probes):
            name = f"probe-{n}"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            body = f'{{"ts":"{stamp}","level":"info","msg":"{name}"}}\n'.encode()
            sent[name] = time.monotonic()
            conn.request("POST", "/ingest", body, {"Content-Type": "application/x-ndjson"})
            conn.getresponse().read()
            time.sleep(0.2)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + probes * 0.2 + 60
    query = f"SELECT message FROM read_parquet('{files}') WHERE message LIKE 'probe-%'"
    while len(seen) < probes and time.monotonic() < deadline:
        try:
            found = duckdb.sql(query).fetchall()
        except duckdb.Error:
            found = []  # a part renamed while listed: read again
        now = time.monotonic()
        for (name,) in found:
            seen.setdefault(name, now)
        time.sleep(0.1)
    sender.join()
    if len(seen) < probes:
        sys.exit(f"only {len(seen)} of {probes} probe lines became queryable within the deadline")
    return sorted(seen[name] - sent[name] for name in seen)


def peak_rss(pid: int) -> float:
    """The process's peak resident set (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def safe_records(data: Path) -> int:
    """Records committed so far (0 while no part exists or one is being renamed)."""
    try:
        return records(data)
    except duckdb.Error:
        return 0


def records(data: Path) -> int:
    files = f"{data}/records/**/*.parquet"
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{files}')").fetchall()[0][0]


def send_all(ports: tuple[int, int], batches, chunks, args, retries) -> None:
    """The access batches from `args.clients` HTTP client processes and the syslog chunks from
    `args.syslog_clients` TCP client processes, all at once; returns when every one is sent."""
    port, syslog_port = ports
    clients = [
        multiprocessing.Process(target=post_all, args=(port, batches[i :: args.clients], retries))
        for i in range(args.clients)
    ] + [
        multiprocessing.Process(
            target=send_syslog, args=(syslog_port, chunks[i :: args.syslog_clients])
        )
        for i in range(args.syslog_clients)
    ]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
        if c.exitcode != 0:
            sys.exit(f"a client process exited {c.exitcode}")


def generate_inputs(root: Path, lines: int) -> tuple[Path, Path]:
    """`lines` generated combined and syslog lines, as one access log and one syslog file (every
    host's file, one after another)."""
    gen = root / "gen"
    options = ["--formats", "combined,syslog3164", "--duration", "1d", "--seed", "3"]
    options += ["--corrupt-rate", "0"]
    subprocess.run(
        [LOGLENS, "generate", "--out", str(gen), "--lines", str(lines), *options],
        check=True,
        capture_output=True,
    )
    log, syslog = root / "access.log", root / "syslog.log"
    for name, out_path in (("access.log", log), ("syslog", syslog)):
        with out_path.open("wb") as out:
            for part in sorted((gen / "logs").rglob(name)):
                out.write(part.read_bytes())
    return log, syslog


def batched(lines: list[bytes], size: int) -> list[bytes]:
    return [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--clients", type=int, default=2, help="HTTP client processes")
    p.add_argument("--syslog-clients", type=int, default=1, help="syslog TCP client processes")
    p.add_argument("--probes", type=int, default=100, help="lines timed to queryable, 5 a second")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loglens-serve-load-"))
    log, syslog = generate_inputs(root, args.lines)
    access_lines = log.read_bytes().splitlines(keepends=True)
    syslog_lines = syslog.read_bytes().splitlines(keepends=True)
    total = len(access_lines) + len(syslog_lines)
    size = log.stat().st_size + syslog.stat().st_size
    batches, chunks = batched(access_lines, args.batch), batched(syslog_lines, args.batch)
    port, syslog_port = free_port(), free_port()
    data = root / "serve-data"
    listen = ["--http", f"127.0.0.1:{port}", "--syslog-tcp", f"127.0.0.1:{syslog_port}"]
    server = subprocess.Popen(
        [LOGLENS, "serve", "--data-dir", str(data), *listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(port, server)
        retries = multiprocessing.Value("i", 0)
        started = time.monotonic()
        send_all((port, syslog_port), batches, chunks, args, retries)
        acked = time.monotonic() - started
        while safe_records(data) < total:  # committed by serve's own flushes (every 5 s)
            if time.monotonic() - started > 600:
                sys.exit("serve did not commit every line within 600 s")
            time.sleep(0.2)
        committed = time.monotonic() - started
        latencies = probe_latency(port, data, args.probes)
        peak_rss_mb = peak_rss(server.pid)
    finally:
        stop(server, timeout=300)
    stored = records(data)
    started = time.monotonic()
    batch_data = root / "process-data"
    subprocess.run(
        [LOGLENS, "process", str(log), str(syslog), "--data-dir", str(batch_data)],
        check=True,
        capture_output=True,
    )
    batch_secs = time.monotonic() - started
    stored -= len(latencies)  # the probe lines
    if stored != total or records(batch_data) != total:
        sys.exit(f"sent {total} lines, serve stored {stored}, process {records(batch_data)}")
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{len(access_lines):,} combined lines from {args.clients} HTTP client processes x "
        f"{args.batch}-line POSTs ({retries.value} answered 429 and were resent), "
        f"{len(syslog_lines):,} syslog lines from {args.syslog_clients} TCP client process(es); "
        f"{size / 1e6:.0f} MB"
    )
    print(
        f"serve   sent and acknowledged in {acked:6.2f} s: {total / acked:>10,.0f} lines/s "
        f"{size / 1e6 / acked:6.1f} MB/s; all committed after {committed:.2f} s "
        f"({total / committed:,.0f} lines/s sustained)"
    )
    print(
        f"process (same lines, two files) {batch_secs:6.2f} s: {total / batch_secs:>10,.0f} "
        f"lines/s {size / 1e6 / batch_secs:6.1f} MB/s"
    )
    print(
        f"line to queryable ({len(latencies)} probe lines, 5/s, default 5 s flush): "
        f"p50 {p50:.2f} s, p99 {p99:.2f} s; serve peak RSS {peak_rss_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
