"""Shippers' own client libraries, unmodified, pointed at `loglens serve`: OpenTelemetry's
Python SDK and OTLP/HTTP exporter at `POST /v1/logs` (protobuf, the exporter's only encoding,
gzipped or not), python-logging-loki's handler at Loki's push API, Elastic's Python client at
the bulk and index APIs, splunk-handler at the Splunk HTTP Event Collector's, and graypy's GELF
handlers over UDP (compressed, chunked) and HTTP. Their records land with service, host,
level, message and attributes."""

import http.client
import json
import logging
import random
import socket
import string
import time
import urllib.request

import duckdb
import elasticsearch
import graypy
import logging_loki
import pytest
from conftest import TLS, free_port, serve_http, trusting_test_ca
from elasticsearch import helpers
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from splunk_handler import SplunkHandler


def stored(data, columns, order="message"):
    """`columns` (SQL) of each record serve committed under `data`, ordered by `order`."""
    files = f"{data}/records/**/*.parquet"
    return duckdb.sql(f"SELECT {columns} FROM read_parquet('{files}') ORDER BY {order}").fetchall()


def http_counts(url, kind="http"):
    """(lines in, rejected) of serve's source of `kind`, from `/health`."""
    with urllib.request.urlopen(f"{url}/health", context=trusting_test_ca(url)) as answer:
        health = json.load(answer)
    source = next(s for s in health["sources"] if s["kind"] == kind)
    return source["lines_in"], source["rejected"]


def logger(name, handler):
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.handlers = [handler]
    return log


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")
@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_opentelemetry_exporter_lands_records(tmp_path, compression):
    data = tmp_path / "data"
    with serve_http(data) as url:
        resource = Resource.create({"service.name": "checkout", "host.name": "web-1"})
        provider = LoggerProvider(resource=resource)
        exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", compression=compression)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log = logger("shop.payments", LoggingHandler(logger_provider=provider))
        log.error("card declined for order %d", 42, extra={"order.id": 42})
        log.warning("slow query")
        log.handlers = []
        provider.shutdown()  # exports synchronously: a failed export would be logged, not raised
        assert http_counts(url) == (2, 0)
    attrs = "attrs['scope'], attrs['order.id'], attrs['resource.telemetry.sdk.name']"
    got = stored(data, f"service, host, level, message, {attrs}")
    assert got == [
        ("checkout", "web-1", "error", "card declined for order 42", "shop.payments", "42",
         "opentelemetry"),
        ("checkout", "web-1", "warn", "slow query", "shop.payments", None, "opentelemetry"),
    ]  # fmt: skip
    assert not list(data.glob("unparsed/**/*.parquet")), "every record parsed"


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")
def test_the_opentelemetry_exporter_ships_over_https(tmp_path, monkeypatch):
    data = tmp_path / "data"
    # requests lets these variables override the CA file the exporter gives its session.
    for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(bundle, raising=False)
    with serve_http(data, tls=True) as url:
        provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
        exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", certificate_file=str(TLS / "ca.pem"))
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log = logger("shop.tls", LoggingHandler(logger_provider=provider))
        log.error("card declined over TLS")
        log.handlers = []
        provider.shutdown()
        assert http_counts(url) == (1, 0)
        # Plain HTTP on the HTTPS port is not answered as HTTP.
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(url.replace("https", "http") + "/health", timeout=5)
    got = stored(data, "service, level, message")
    assert got == [("checkout", "error", "card declined over TLS")]


def test_a_loki_client_lands_records_with_its_labels(tmp_path):
    data = tmp_path / "data"
    with serve_http(data) as url:
        handler = logging_loki.LokiHandler(
            url=f"{url}/loki/api/v1/push", tags={"application": "billing"}, version="1"
        )
        log = logger("billing.invoices", handler)
        log.error("invoice %s failed", "INV-7", extra={"tags": {"host": "bill-01"}})
        log.info("invoice sent")
        log.handlers = []
        assert http_counts(url) == (2, 0)
    got = stored(data, "service, host, level, message, attrs['logger']")
    assert got == [
        ("billing", "bill-01", "error", "invoice INV-7 failed", "billing.invoices"),
        ("billing", None, "info", "invoice sent", "billing.invoices"),
    ]


def test_elastics_client_lands_bulk_and_single_documents(tmp_path):
    data = tmp_path / "data"
    with serve_http(data) as url:
        # The client refuses any server whose answers lack Elasticsearch's product header.
        es = elasticsearch.Elasticsearch(url)
        assert es.info()["version"]["number"].startswith("8.")
        documents = [
            {
                "_index": "logs-shop",
                "@timestamp": f"2026-12-07T10:00:0{i}Z",
                "message": f"cart {i} checked out",
                "log": {"level": "info"},
                "service": {"name": "shop"},
                "host": {"name": "web-1"},
            }
            for i in range(3)
        ]
        assert helpers.bulk(es, documents) == (3, [])
        answer = es.index(
            index="logs-shop",
            document={"@timestamp": "2026-12-07T10:00:05Z", "message": "refund sent",
                      "log.level": "warn", "service.name": "payments"},
        )  # fmt: skip
        assert answer["result"] == "created"
        # A document that is not an object is refused, as Elasticsearch refuses it.
        with pytest.raises(elasticsearch.BadRequestError, match="document_parsing_exception"):
            es.index(index="logs-shop", document=[1])
        assert http_counts(url) == (4, 1)
    got = stored(data, "service, host, level, message, attrs['_index']")
    assert got == [
        *[("shop", "web-1", "info", f"cart {i} checked out", "logs-shop") for i in range(3)],
        ("payments", None, "warn", "refund sent", "logs-shop"),
    ]


def test_a_splunk_hec_client_lands_stacked_events(tmp_path):
    data = tmp_path / "data"
    with serve_http(data) as url:
        port = int(url.rsplit(":", 1)[1])
        handler = SplunkHandler(
            host="127.0.0.1",
            port=port,
            protocol="http",
            token="00000000-0000-0000-0000-000000000000",
            index="main",
            hostname="pay-01",
            sourcetype="payments",
            flush_interval=0.1,  # queued events go as one body of stacked objects
        )
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log = logger("payments", handler)
        for order in range(3):
            log.warning("order %d declined", order)
        handler.close()  # sends what is queued, then stops its timer
        assert http_counts(url) == (3, 0)
    got = stored(data, "host, message, attrs['sourcetype'], attrs['index']")
    assert got == [
        ("pay-01", f"WARNING order {order} declined", "payments", "main") for order in range(3)
    ]


def test_graypy_lands_gelf_over_udp_chunked_tcp_and_http(tmp_path):
    data = tmp_path / "data"
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port()
    # 3,000 random letters compress to about 2 KB: the UDP message goes in 7 or 8 chunks.
    detail = "".join(random.Random(1).choices(string.ascii_letters, k=3000))
    gelf = ["--gelf-udp", f"127.0.0.1:{udp}", "--gelf-tcp", f"127.0.0.1:{tcp}"]
    with serve_http(data, *gelf) as url:
        port = int(url.rsplit(":", 1)[1])
        handlers = [
            # zlib-compressed, and chunked: 300-byte chunks make the long message several.
            graypy.GELFUDPHandler(
                "127.0.0.1",
                udp,
                gelf_chunker=graypy.handler.GELFWarningChunker(chunk_size=300),
                localname="api-1",
            ),
            graypy.GELFTCPHandler("127.0.0.1", tcp, localname="api-1"),
            graypy.GELFHTTPHandler("127.0.0.1", port, localname="api-1"),
        ]
        for handler in handlers:
            log = logger("api.orders", handler)
            log.error("order %s failed: %s", "A-1", detail, extra={"order_id": 7})
            log.info("order %s sent", "A-2")
            handler.close()
        deadline = time.monotonic() + 10
        while any(http_counts(url, k)[0] < 2 for k in ("gelf_udp", "gelf_tcp")):
            assert time.monotonic() < deadline, "UDP and TCP have no acknowledgement: wait"
            time.sleep(0.1)
        assert http_counts(url, "gelf_udp") == (2, 0)
        assert http_counts(url, "gelf_tcp") == (2, 0)
        assert http_counts(url) == (2, 0)
    got = stored(data, "source, service, host, level, message, attrs['order_id']", order="ALL")
    assert got == [
        (source, "api.orders", "api-1", level, message, order)
        for source in ("gelf_tcp", "gelf_udp", "http")
        for level, message, order in (
            ("error", f"order A-1 failed: {detail}", "7"),
            ("info", "order A-2 sent", None),
        )
    ]
