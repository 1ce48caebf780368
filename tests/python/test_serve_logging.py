"""Python's own logging, unmodified, pointed at `loglens serve`: SysLogHandler over UDP and TCP
and HTTPHandler land as records with the logger's level (issue #14), and with the same message:
HTTPHandler posts `msg` and `args` apart, and serve applies them as `getMessage()` does."""

import logging
import logging.handlers
import socket
import subprocess
import time

import duckdb
from conftest import free_port, loglens_bin, stop, wait_until_up


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
        wait_until_up(serve, f"http://127.0.0.1:{http}/health", seconds=30)
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
        log.error("card declined for order %d", 42)
        log.warning("slow query %s ms (%.1f%% of budget)", 1200, 120.0)
        log.info("checkout %(state)s", {"state": "done"})
        for h in handlers:
            log.removeHandler(h)
            h.close()
        time.sleep(0.5)  # UDP has no acknowledgement: let the datagrams arrive
    finally:
        status = stop(serve)  # SIGTERM flushes and commits, exits 0
    assert status == 0, serve.stderr.read()
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
            ("warn", "slow query 1200 ms (120.0% of budget)"),
        )
    ]
    assert got == expected
