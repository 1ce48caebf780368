//! OTLP/HTTP logs (`POST /v1/logs`), as the OpenTelemetry Collector's `otlphttp` exporter
//! and the SDKs' OTLP HTTP exporters send them: an `ExportLogsServiceRequest` in protobuf (their
//! default) or in OTLP/JSON. Either becomes a line of OTLP/JSON per `ResourceLogs`, which the
//! `otel` format reads, so a record is the same whichever way it came.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::protobuf::{self, fields, Wire, WireError, MAX_DEPTH};

/// The request's log records, each as one compact OTLP/JSON line `{"resourceLogs":[…]}` with its
/// resource and scope (a batch is not one line: it could pass the longest line read).
pub fn protobuf_lines(body: &[u8]) -> Result<Vec<String>, WireError> {
    let mut lines = Vec::new();
    for field in fields(body) {
        if let (1, Wire::Bytes(resource_logs)) = field? {
            record_lines(resource_logs_json(resource_logs)?, &mut lines);
        }
    }
    Ok(lines)
}

/// An OTLP/JSON request as the same lines, or `None` when the body is not one.
pub fn json_lines(body: &[u8]) -> Option<Vec<String>> {
    let mut request: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let Value::Array(all) = request.remove("resourceLogs")? else {
        return None;
    };
    let mut lines = Vec::new();
    for resource_logs in all {
        record_lines(resource_logs, &mut lines);
    }
    Some(lines)
}

/// A line per log record of one `ResourceLogs` (nothing for what is not an object).
fn record_lines(resource_logs: Value, lines: &mut Vec<String>) {
    let Value::Object(mut resource_logs) = resource_logs else {
        return;
    };
    let resource = resource_logs.remove("resource");
    let Some(Value::Array(scopes)) = resource_logs.remove("scopeLogs") else {
        return;
    };
    for scope_logs in scopes {
        let Value::Object(mut scope_logs) = scope_logs else {
            continue;
        };
        let scope = scope_logs.remove("scope");
        let Some(Value::Array(records)) = scope_logs.remove("logRecords") else {
            continue;
        };
        for record in records {
            let mut one_scope = Map::new();
            if let Some(scope) = &scope {
                one_scope.insert("scope".into(), scope.clone());
            }
            one_scope.insert("logRecords".into(), json!([record]));
            let mut one_resource = Map::new();
            if let Some(resource) = &resource {
                one_resource.insert("resource".into(), resource.clone());
            }
            one_resource.insert("scopeLogs".into(), json!([one_scope]));
            lines.push(json!({ "resourceLogs": [one_resource] }).to_string());
        }
    }
}

/// An `ExportLogsServiceResponse` in protobuf whose `partial_success` says how many records
/// were refused and why.
pub fn partial_success(rejected: u64, why: &str) -> Vec<u8> {
    let mut partial = Vec::new();
    protobuf::put_uint(&mut partial, 1, rejected);
    protobuf::put_bytes(&mut partial, 2, why.as_bytes());
    let mut response = Vec::new();
    protobuf::put_bytes(&mut response, 1, &partial);
    response
}

fn resource_logs_json(bytes: &[u8]) -> Result<Value, WireError> {
    let mut out = Map::new();
    let mut scopes = Vec::new();
    for field in fields(bytes) {
        match field? {
            (1, Wire::Bytes(resource)) => {
                out.insert(
                    "resource".into(),
                    json!({ "attributes": attributes(resource, 1)? }),
                );
            }
            (2, Wire::Bytes(scope_logs)) => scopes.push(scope_logs_json(scope_logs)?),
            (3, wire) => put_text(&mut out, "schemaUrl", wire),
            _ => {}
        }
    }
    out.insert("scopeLogs".into(), Value::Array(scopes));
    Ok(Value::Object(out))
}

fn scope_logs_json(bytes: &[u8]) -> Result<Value, WireError> {
    let mut out = Map::new();
    let mut logs = Vec::new();
    for field in fields(bytes) {
        match field? {
            (1, Wire::Bytes(scope)) => {
                out.insert("scope".into(), scope_json(scope)?);
            }
            (2, Wire::Bytes(record)) => logs.push(log_record_json(record)?),
            (3, wire) => put_text(&mut out, "schemaUrl", wire),
            _ => {}
        }
    }
    out.insert("logRecords".into(), Value::Array(logs));
    Ok(Value::Object(out))
}

fn scope_json(bytes: &[u8]) -> Result<Value, WireError> {
    let mut out = Map::new();
    for field in fields(bytes) {
        match field? {
            (1, wire) => put_text(&mut out, "name", wire),
            (2, wire) => put_text(&mut out, "version", wire),
            _ => {}
        }
    }
    out.insert("attributes".into(), attributes(bytes, 3)?);
    Ok(Value::Object(out))
}

/// A `LogRecord` in OTLP/JSON's mapping: 64-bit numbers as decimal strings, trace and span
/// ids as hex, fields at their default value left out.
fn log_record_json(bytes: &[u8]) -> Result<Value, WireError> {
    let mut out = Map::new();
    for field in fields(bytes) {
        match field? {
            (1, Wire::Fixed64(ns)) => _ = out.insert("timeUnixNano".into(), json!(ns.to_string())),
            (11, Wire::Fixed64(ns)) => {
                out.insert("observedTimeUnixNano".into(), json!(ns.to_string()));
            }
            (2, Wire::Varint(n)) => _ = out.insert("severityNumber".into(), json!(n)),
            (3, wire) => put_text(&mut out, "severityText", wire),
            (5, Wire::Bytes(body)) => _ = out.insert("body".into(), any_value(body, 1)?),
            (7, Wire::Varint(n)) => _ = out.insert("droppedAttributesCount".into(), json!(n)),
            (8, Wire::Fixed32(n)) => _ = out.insert("flags".into(), json!(n)),
            (9, Wire::Bytes(id)) => _ = out.insert("traceId".into(), json!(hex(id))),
            (10, Wire::Bytes(id)) => _ = out.insert("spanId".into(), json!(hex(id))),
            (12, wire) => put_text(&mut out, "eventName", wire),
            _ => {}
        }
    }
    out.insert("attributes".into(), attributes(bytes, 6)?);
    Ok(Value::Object(out))
}

/// The `KeyValue`s in field `number` of a message, as `[{"key":…,"value":…}]`.
fn attributes(message: &[u8], number: u32) -> Result<Value, WireError> {
    attributes_at(message, number, 1)
}

fn attributes_at(message: &[u8], number: u32, depth: usize) -> Result<Value, WireError> {
    let mut list = Vec::new();
    for field in fields(message) {
        if let (n, Wire::Bytes(key_value)) = field? {
            if n == number {
                list.push(key_value_json(key_value, depth)?);
            }
        }
    }
    Ok(Value::Array(list))
}

fn key_value_json(bytes: &[u8], depth: usize) -> Result<Value, WireError> {
    let mut out = Map::new();
    for field in fields(bytes) {
        match field? {
            (1, wire) => put_text(&mut out, "key", wire),
            (2, Wire::Bytes(value)) => _ = out.insert("value".into(), any_value(value, depth + 1)?),
            _ => {}
        }
    }
    Ok(Value::Object(out))
}

/// An `AnyValue` (its `oneof`, the last one set winning as protobuf says).
fn any_value(bytes: &[u8], depth: usize) -> Result<Value, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    let mut out = json!({});
    for field in fields(bytes) {
        out = match field? {
            (1, wire) => json!({ "stringValue": wire.text().unwrap_or_default() }),
            (2, Wire::Varint(b)) => json!({ "boolValue": b != 0 }),
            (3, Wire::Varint(n)) => json!({ "intValue": (n as i64).to_string() }),
            (4, Wire::Fixed64(bits)) => json!({ "doubleValue": f64::from_bits(bits) }),
            (5, Wire::Bytes(array)) => {
                let mut values = Vec::new();
                for item in fields(array) {
                    if let (1, Wire::Bytes(value)) = item? {
                        values.push(any_value(value, depth + 1)?);
                    }
                }
                json!({ "arrayValue": { "values": values } })
            }
            (6, Wire::Bytes(list)) => {
                json!({ "kvlistValue": { "values": attributes_at(list, 1, depth + 1)? } })
            }
            (7, Wire::Bytes(b)) => {
                json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(b) })
            }
            _ => out,
        };
    }
    Ok(out)
}

fn put_text(out: &mut Map<String, Value>, key: &str, wire: Wire<'_>) {
    if let Some(text) = wire.text() {
        out.insert(key.into(), Value::String(text));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What `opentelemetry-proto` 1.45 (Python) serializes for a request with two resources
    /// (see `otlp_logs.py` beside it).
    const REQUEST: &[u8] = include_bytes!("testdata/otlp_logs.binpb");

    #[test]
    fn a_protobuf_request_becomes_the_json_the_otel_format_reads() {
        let lines = protobuf_lines(REQUEST).unwrap();
        // The request in OTLP/JSON as the specification maps it, written by hand.
        let expected = include_bytes!("testdata/otlp_logs.expected.json");
        assert_eq!(json_lines(expected), Some(lines.clone()));
        assert_eq!(lines.len(), 3, "a line per record");
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        let resource = &second["resourceLogs"][0];
        assert_eq!(
            resource["resource"]["attributes"][0]["value"]["stringValue"],
            "checkout"
        );
        assert_eq!(resource["scopeLogs"][0]["scope"]["name"], "com.example.checkout");
        assert_eq!(
            resource["scopeLogs"][0]["logRecords"],
            json!([{"observedTimeUnixNano":"1772600768000000000","severityNumber":9,
                "body":{"kvlistValue":{"values":[{"key":"event","value":{"stringValue":"login"}}]}},
                "attributes":[]}])
        );
    }

    #[test]
    fn bad_requests_are_errors_not_records() {
        assert_eq!(protobuf_lines(b"\x0a\x05ab"), Err(WireError::Truncated));
        assert_eq!(json_lines(b"{\"resourceLogs\":{}}"), None);
        assert_eq!(json_lines(b"[1]"), None);
        // Values nested a thousand deep in a few kilobytes stop at the bound.
        let mut value = Vec::new();
        protobuf::put_bytes(&mut value, 1, b"leaf");
        for _ in 0..1000 {
            let mut array = Vec::new();
            protobuf::put_bytes(&mut array, 1, &value);
            value.clear();
            protobuf::put_bytes(&mut value, 5, &array);
        }
        let mut record = Vec::new();
        protobuf::put_bytes(&mut record, 5, &value);
        let mut scope = Vec::new();
        protobuf::put_bytes(&mut scope, 2, &record);
        let mut resource = Vec::new();
        protobuf::put_bytes(&mut resource, 2, &scope);
        let mut request = Vec::new();
        protobuf::put_bytes(&mut request, 1, &resource);
        assert_eq!(protobuf_lines(&request), Err(WireError::TooDeep));
    }
}
