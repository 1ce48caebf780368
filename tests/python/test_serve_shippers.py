"""Shippers' own client libraries, unmodified, pointed at `loglens serve`: OpenTelemetry's
Python SDK and OTLP/HTTP exporter at `POST /v1/logs` (protobuf, the exporter's only encoding,
gzipped or not), and python-logging-loki's handler at Loki's push API. Their records land with
service, host, level, message and attributes."""

import json
import logging
import subprocess
import urllib.request

import duckdb
import logging_loki
import pytest
from conftest import free_port, loglens_bin, stop, wait_until_up
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")
@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_opentelemetry_exporter_lands_records(tmp_path, compression):
    http = free_port()
    data = tmp_path / "data"
    serve = subprocess.Popen(
        [loglens_bin(), "serve", "--data-dir", str(data), "--http", f"127.0.0.1:{http}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(serve, f"http://127.0.0.1:{http}/health", seconds=30)
        resource = Resource.create({"service.name": "checkout", "host.name": "web-1"})
        provider = LoggerProvider(resource=resource)
        exporter = OTLPLogExporter(
            endpoint=f"http://127.0.0.1:{http}/v1/logs", compression=compression
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log = logging.getLogger("shop.payments")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
        log.addHandler(handler)
        log.error("card declined for order %d", 42, extra={"order.id": 42})
        log.warning("slow query")
        log.removeHandler(handler)
        provider.shutdown()  # exports synchronously: a failed export would be logged, not raised
        # Every export was answered 200: the counters say both records are in.
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/health") as answer:
            health = json.load(answer)
        source = next(s for s in health["sources"] if s["kind"] == "http")
        assert (source["lines_in"], source["rejected"]) == (2, 0), health
    finally:
        status = stop(serve)
    assert status == 0, serve.stderr.read()
    files = f"{data}/records/**/*.parquet"
    got = duckdb.sql(
        f"""SELECT service, host, level, message, attrs['scope'], attrs['order.id'],
                   attrs['resource.telemetry.sdk.name']
            FROM read_parquet('{files}') ORDER BY message"""
    ).fetchall()
    assert got == [
        (
            "checkout",
            "web-1",
            "error",
            "card declined for order 42",
            "shop.payments",
            "42",
            "opentelemetry",
        ),
        ("checkout", "web-1", "warn", "slow query", "shop.payments", None, "opentelemetry"),
    ]
    assert not list(data.glob("unparsed/**/*.parquet")), "every record parsed"


def test_a_loki_client_lands_records_with_its_labels(tmp_path):
    http = free_port()
    data = tmp_path / "data"
    serve = subprocess.Popen(
        [loglens_bin(), "serve", "--data-dir", str(data), "--http", f"127.0.0.1:{http}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(serve, f"http://127.0.0.1:{http}/health", seconds=30)
        handler = logging_loki.LokiHandler(
            url=f"http://127.0.0.1:{http}/loki/api/v1/push",
            tags={"application": "billing"},
            version="1",
        )
        log = logging.getLogger("billing.invoices")
        log.propagate = False
        log.setLevel(logging.DEBUG)
        log.addHandler(handler)
        log.error("invoice %s failed", "INV-7", extra={"tags": {"host": "bill-01"}})
        log.info("invoice sent")
        log.removeHandler(handler)
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/health") as answer:
            health = json.load(answer)
        source = next(s for s in health["sources"] if s["kind"] == "http")
        assert (source["lines_in"], source["rejected"]) == (2, 0), health
    finally:
        status = stop(serve)
    assert status == 0, serve.stderr.read()
    got = duckdb.sql(
        f"""SELECT service, host, level, message, attrs['logger']
            FROM read_parquet('{data}/records/**/*.parquet') ORDER BY message"""
    ).fetchall()
    assert got == [
        ("billing", "bill-01", "error", "invoice INV-7 failed", "billing.invoices"),
        ("billing", None, "info", "invoice sent", "billing.invoices"),
    ]
