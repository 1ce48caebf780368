"""Writes otlp_logs.binpb: an OTLP ExportLogsServiceRequest serialized by the OpenTelemetry
project's own protobuf classes (`pip install opentelemetry-proto==1.45.2`), the golden input of
serve's protobuf reader. Run from this directory: `python otlp_logs.py`."""

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource


def kv(key, **value):
    return KeyValue(key=key, value=AnyValue(**value))


checkout = ResourceLogs(
    resource=Resource(
        attributes=[
            kv("service.name", string_value="checkout"),
            kv("host.name", string_value="web-1"),
            kv("process.pid", int_value=4242),
        ]
    ),
    scope_logs=[
        ScopeLogs(
            scope=InstrumentationScope(name="com.example.checkout", version="1.2.0"),
            log_records=[
                LogRecord(
                    time_unix_nano=1772600767123456789,
                    observed_time_unix_nano=1772600767200000000,
                    severity_number=17,
                    severity_text="ERROR",
                    body=AnyValue(string_value="payment failed"),
                    attributes=[
                        kv("order.id", int_value=-42),
                        kv("amount", double_value=12.5),
                        kv("retry", bool_value=True),
                        kv("tags", array_value=ArrayValue(values=[AnyValue(string_value="a")])),
                        kv("raw", bytes_value=b"\x00\xff"),
                    ],
                    trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
                    span_id=bytes.fromhex("eee19b7ec3c1b174"),
                    flags=1,
                ),
                LogRecord(
                    observed_time_unix_nano=1772600768000000000,
                    severity_number=9,
                    body=AnyValue(
                        kvlist_value=KeyValueList(values=[kv("event", string_value="login")])
                    ),
                ),
            ],
        )
    ],
)
worker = ResourceLogs(
    resource=Resource(attributes=[kv("service.name", string_value="worker")]),
    scope_logs=[
        ScopeLogs(
            log_records=[
                LogRecord(
                    time_unix_nano=1772600769000000000,
                    severity_text="WARN",
                    body=AnyValue(string_value="queue deep"),
                )
            ]
        )
    ],
)
request = ExportLogsServiceRequest(resource_logs=[checkout, worker])
with open("otlp_logs.binpb", "wb") as f:
    f.write(request.SerializeToString())
