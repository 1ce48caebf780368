"""Python's own logging, unmodified, pointed at `loglens serve`: SysLogHandler over UDP and TCP
and HTTPHandler land as records with the logger's level (issue #14)."""

import logging
import logging.handlers
import signal
import socket
import subprocess
import time
import urllib.request

import duckdb
from conftest import loglens_bin


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_logging_handlers_land_with_their_levels(tmp_path):
    http, udp, tcp = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    data = tmp_path / "data"
    listen = ["--http", f"127.0.0.1:{http}", "--syslog-udp", f"127.0.0.1:{udp}"]
    listen += ["--syslog-tcp", f"127.0.0.1:{tcp}", "--flush-interval", "1"]
    serve = subprocess.Popen(
        [loglens_bin(), "serve", "--data-dir", str(data), *listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert serve.poll() is None, serve.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        log = logging.getLogger("loglens.test.payments")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        handlers = [
            logging.handlers.SysLogHandler(address=("127.0.0.1", udp)),
            logging.handlers.SysLogHandler(address=("127.0.0.1", tcp), socktype=socket.SOCK_STREAM),
            logging.handlers.HTTPHandler(f"127.0.0.1:{http}", "/ingest", method="POST"),
        ]
        for h in handlers:
            log.addHandler(h)
        log.error("card declined for order 42")
        log.warning("slow query 1200 ms")
        log.info("checkout done")
        for h in handlers:
            log.removeHandler(h)
            h.close()
        time.sleep(0.5)  # UDP has no acknowledgement: let the datagrams arrive
    finally:
        serve.send_signal(signal.SIGTERM)  # flushes and commits, exits 0
        assert serve.wait(timeout=30) == 0, serve.stderr.read()
    files = f"{data}/records/**/*.parquet"
    got = duckdb.sql(
        f"SELECT source, level, message FROM read_parquet('{files}') ORDER BY ALL"
    ).fetchall()
    expected = [
        (source, level, message)
        for source in ("http", "syslog_tcp", "syslog_udp")
        for level, message in (
            ("error", "card declined for order 42"),
            ("info", "checkout done"),
            ("warn", "slow query 1200 ms"),
        )
    ]
    assert got == expected
