"""Python's own logging, unmodified, pointed at `loglens serve`: SysLogHandler over UDP and TCP
and HTTPHandler land as records with the logger's level (issue #14), and with the same message:
HTTPHandler posts `msg` and `args` apart, and serve applies them as `getMessage()` does."""

import logging
import logging.handlers
import socket
import time

import duckdb
from conftest import free_port, serve_http


def test_python_logging_handlers_land_with_their_levels(tmp_path):
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
    data = tmp_path / "data"
    syslog = ["--syslog-udp", f"127.0.0.1:{udp}", "--syslog-tcp", f"127.0.0.1:{tcp}"]
    with serve_http(data, *syslog, "--flush-interval", "1") as url:
        log = logging.getLogger("loglens.test.payments")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        handlers = [
            logging.handlers.SysLogHandler(address=("127.0.0.1", udp)),
            logging.handlers.SysLogHandler(address=("127.0.0.1", tcp), socktype=socket.SOCK_STREAM),
            logging.handlers.HTTPHandler(url.removeprefix("http://"), "/ingest", method="POST"),
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
