//! OpenTelemetry logs as JSON: the OTLP/JSON encoding (what the Collector's file exporter
//! writes, one `{"resourceLogs": …}` batch per line, each of its log records a record), a bare
//! OTLP `LogRecord` object per line, and the log data model's flat form (`Timestamp`,
//! `SeverityText`, `Body`, `Resource`, `Attributes`).
//!
//! Resource `service.name` and `host.name` become the service and host; other resource
//! attributes are attrs named `resource.<key>`; log attributes keep their key; the scope name,
//! trace and span ids are attrs `scope`, `trace_id`, `span_id`.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::jsonl::parse_epoch;
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::Timestamp;

/// Parses OpenTelemetry JSON log lines (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct OtelParser;

const LAYOUT: ParseError =
    ParseError::Layout("an OpenTelemetry JSON log (resourceLogs, a LogRecord or the data model)");

impl LineParser for OtelParser {
    fn name(&self) -> &str {
        "otel"
    }

    /// The line's first record (a batch's others come from [`LineParser::parse_each`]).
    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        let mut first = None;
        self.parse_each(line, ctx, &mut |record| {
            if first.is_none() {
                first = Some(record);
            }
        })?;
        first.ok_or(ParseError::Missing("logRecords"))
    }

    fn parse_each<'a>(
        &self,
        line: &'a str,
        _: &ParseContext,
        each: &mut dyn FnMut(Record<'a>),
    ) -> Result<(), ParseError> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Err(ParseError::Empty);
        }
        if !trimmed.starts_with('{') {
            return Err(LAYOUT);
        }
        let value: Value = serde_json::from_str(trimmed).map_err(|e| ParseError::Json(e.to_string()))?;
        let object = value.as_object().ok_or(LAYOUT)?;
        if let Some(batch) = object.get("resourceLogs") {
            return batch_records(batch, each);
        }
        if object.contains_key("timeUnixNano") || object.contains_key("observedTimeUnixNano") {
            each(otlp_record(object, &Resource::default(), None)?);
            return Ok(());
        }
        if object.contains_key("Timestamp") || object.contains_key("ObservedTimestamp") {
            each(data_model_record(object)?);
            return Ok(());
        }
        Err(LAYOUT)
    }
}

/// What a record takes from its resource.
#[derive(Default)]
struct Resource {
    service: Option<String>,
    host: Option<String>,
    attrs: Vec<(String, String)>,
}

impl Resource {
    fn of(pairs: Vec<(String, String)>) -> Resource {
        let mut resource = Resource::default();
        for (key, value) in pairs {
            match key.as_str() {
                "service.name" => resource.service = Some(value),
                "host.name" => resource.host = Some(value),
                _ => resource.attrs.push((format!("resource.{key}"), value)),
            }
        }
        resource
    }
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn batch_records<'a>(batch: &Value, each: &mut dyn FnMut(Record<'a>)) -> Result<(), ParseError> {
    let mut records = 0;
    for resource_logs in array(Some(batch)) {
        let resource = Resource::of(key_values(resource_logs.pointer("/resource/attributes")));
        for scope_logs in array(resource_logs.get("scopeLogs")) {
            let scope = scope_logs.pointer("/scope/name").and_then(Value::as_str);
            for log_record in array(scope_logs.get("logRecords")) {
                let object = log_record.as_object().ok_or(ParseError::Invalid {
                    field: "logRecords",
                    reason: "not an object",
                })?;
                each(otlp_record(object, &resource, scope)?);
                records += 1;
            }
        }
    }
    if records == 0 {
        return Err(ParseError::Missing("logRecords"));
    }
    Ok(())
}

/// An OTLP/JSON `LogRecord`.
fn otlp_record<'a>(
    object: &Map<String, Value>,
    resource: &Resource,
    scope: Option<&str>,
) -> Result<Record<'a>, ParseError> {
    let time = |key| object.get(key).and_then(nanos).filter(|ts| ts.0 != 0);
    let ts = time("timeUnixNano")
        .or_else(|| time("observedTimeUnixNano"))
        .ok_or(ParseError::Missing("timeUnixNano"))?;
    let level = severity(object.get("severityText"), object.get("severityNumber"));
    let message = object.get("body").map(any_value_text).unwrap_or_default();
    let mut record = Record::new(ts, message);
    record.level = level;
    record.service = resource.service.clone().map(Cow::Owned);
    record.host = resource.host.clone().map(Cow::Owned);
    let mut attrs: Vec<(String, String)> = resource.attrs.clone();
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        attrs.push(("scope".to_owned(), scope.to_owned()));
    }
    attrs.extend(key_values(object.get("attributes")));
    record.attrs = with_trace(attrs, object, ["traceId", "spanId"]);
    Ok(record)
}

/// `attrs` and the trace and span ids under `keys` (when not empty), as the record's attrs.
fn with_trace<'a>(
    mut attrs: Vec<(String, String)>,
    object: &Map<String, Value>,
    keys: [&str; 2],
) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    for (key, name) in keys.into_iter().zip(["trace_id", "span_id"]) {
        if let Some(id) = object
            .get(key)
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        {
            attrs.push((name.to_owned(), id.to_owned()));
        }
    }
    attrs
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
        .collect()
}

/// The log data model's flat form.
fn data_model_record<'a>(object: &Map<String, Value>) -> Result<Record<'a>, ParseError> {
    let time = |key| object.get(key).and_then(|v| nanos(v).or_else(|| rfc3339(v)));
    let ts = time("Timestamp")
        .or_else(|| time("ObservedTimestamp"))
        .ok_or(ParseError::Invalid {
            field: "Timestamp",
            reason: "not nanoseconds since the epoch or RFC 3339",
        })?;
    let level = severity(object.get("SeverityText"), object.get("SeverityNumber"));
    let message = object.get("Body").map(plain_text).unwrap_or_default();
    let mut record = Record::new(ts, message);
    record.level = level;
    let flat = |key| -> Vec<(String, String)> {
        object
            .get(key)
            .and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), plain_text(v))).collect())
            .unwrap_or_default()
    };
    let resource = Resource::of(flat("Resource"));
    record.service = resource.service.map(Cow::Owned);
    record.host = resource.host.map(Cow::Owned);
    let mut attrs = resource.attrs;
    attrs.extend(flat("Attributes"));
    record.attrs = with_trace(attrs, object, ["TraceId", "SpanId"]);
    Ok(record)
}

/// Nanoseconds since the epoch, as OTLP/JSON writes them (a decimal string, or a number).
fn nanos(value: &Value) -> Option<Timestamp> {
    let n: i128 = match value {
        Value::String(s) => s.parse().ok()?,
        Value::Number(n) => i128::from(n.as_u64()?),
        _ => return None,
    };
    i64::try_from(n / 1000).ok().map(Timestamp)
}

fn rfc3339(value: &Value) -> Option<Timestamp> {
    let text = value.as_str()?;
    Timestamp::parse_rfc3339(text, 0)
        .ok()
        .or_else(|| parse_epoch(text))
}

/// The level from the severity text, else from the severity number's range (OTel log data
/// model: 1–4 trace, 5–8 debug, 9–12 info, 13–16 warn, 17–20 error, 21–24 fatal).
fn severity(text: Option<&Value>, number: Option<&Value>) -> Option<Level> {
    if let Some(level) = text.and_then(Value::as_str).and_then(|t| t.parse().ok()) {
        return Some(level);
    }
    match number.and_then(Value::as_u64)? {
        1..=4 => Some(Level::Trace),
        5..=8 => Some(Level::Debug),
        9..=12 => Some(Level::Info),
        13..=16 => Some(Level::Warn),
        17..=20 => Some(Level::Error),
        21..=24 => Some(Level::Critical),
        _ => None,
    }
}

/// OTLP `KeyValue`s (`[{"key": k, "value": AnyValue}]`) as text pairs.
fn key_values(list: Option<&Value>) -> Vec<(String, String)> {
    array(list)
        .iter()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?;
            Some((
                key.to_owned(),
                kv.get("value").map(any_value_text).unwrap_or_default(),
            ))
        })
        .collect()
}

/// An OTLP `AnyValue` as text: a string as itself, a number or bool as written, an array or
/// a key-value list as the compact JSON of its plain values (`{"event":"login"}`).
fn any_value_text(value: &Value) -> String {
    plain_text(&plain_value(value))
}

/// An OTLP `AnyValue` as the JSON value it stands for: `{"kvlistValue":{"values":[{"key":"a",
/// "value":{"intValue":"1"}}]}}` is `{"a":1}`. What is not an `AnyValue` is kept as it is.
fn plain_value(value: &Value) -> Value {
    let Some((kind, inner)) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return value.clone();
    };
    match kind.as_str() {
        "stringValue" | "doubleValue" | "boolValue" | "bytesValue" => inner.clone(),
        // 64-bit integers are strings in OTLP/JSON.
        "intValue" => inner
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or_else(|| inner.clone(), Value::from),
        "arrayValue" => Value::Array(array(inner.get("values")).iter().map(plain_value).collect()),
        "kvlistValue" => Value::Object(
            array(inner.get("values"))
                .iter()
                .filter_map(|kv| {
                    let key = kv.get("key")?.as_str()?.to_owned();
                    Some((key, kv.get("value").map_or(Value::Null, plain_value)))
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

/// A JSON value as text: strings unquoted, anything else as compact JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders a record as a one-record OTLP/JSON batch (`service` and `host` as resource
/// attributes, every attr a string attribute).
pub fn render(record: &Record<'_>, out: &mut String) {
    let string = |k: &str, v: &str| serde_json::json!({ "key": k, "value": { "stringValue": v } });
    let mut resource = Vec::new();
    if let Some(service) = &record.service {
        resource.push(string("service.name", service));
    }
    if let Some(host) = &record.host {
        resource.push(string("host.name", host));
    }
    let mut log_record = serde_json::json!({
        "timeUnixNano": (i128::from(record.ts.0) * 1000).to_string(),
        "body": { "stringValue": record.message },
        "attributes": record.attrs.iter().map(|(k, v)| string(k, v)).collect::<Vec<_>>(),
    });
    if let (Some(level), Some(object)) = (record.level, log_record.as_object_mut()) {
        object.insert("severityText".into(), level.as_str().to_uppercase().into());
    }
    let batch = serde_json::json!({
        "resourceLogs": [{
            "resource": { "attributes": resource },
            "scopeLogs": [{ "scope": {}, "logRecords": [log_record] }],
        }]
    });
    out.push_str(&batch.to_string());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A Collector file-exporter line (OTLP/JSON, as in the OTLP specification's examples):
    /// two records of one resource.
    const BATCH: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},{"key":"host.name","value":{"stringValue":"web-1"}},{"key":"deployment.environment","value":{"stringValue":"prod"}}]},"scopeLogs":[{"scope":{"name":"com.example.checkout"},"logRecords":[{"timeUnixNano":"1772600767123456789","observedTimeUnixNano":"1772600767200000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"payment failed"},"attributes":[{"key":"order.id","value":{"intValue":"42"}}],"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},{"timeUnixNano":"0","observedTimeUnixNano":"1772600768000000000","severityNumber":9,"body":{"kvlistValue":{"values":[]}}}]}]}]}"#;

    #[test]
    fn a_batch_line_gives_every_record() {
        let mut records = Vec::new();
        OtelParser
            .parse_each(BATCH, &ParseContext::default(), &mut |r| records.push(r))
            .unwrap();
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(r.ts.to_rfc3339(), "2026-03-04T05:06:07.123456Z");
        assert_eq!(
            (r.level, r.message.as_ref()),
            (Some(Level::Error), "payment failed")
        );
        assert_eq!(
            (r.service.as_deref(), r.host.as_deref()),
            (Some("checkout"), Some("web-1"))
        );
        let attrs: Vec<(&str, &str)> = r.attrs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            attrs,
            [
                ("resource.deployment.environment", "prod"),
                ("scope", "com.example.checkout"),
                ("order.id", "42"),
                ("trace_id", "5b8efff798038103d269b633813fc60c"),
                ("span_id", "eee19b7ec3c1b174"),
            ]
        );
        // No event time: the observed time; severity from its number; a structured body as JSON.
        let r = &records[1];
        assert_eq!(r.ts.to_rfc3339(), "2026-03-04T05:06:08Z");
        assert_eq!((r.level, r.message.as_ref()), (Some(Level::Info), "{}"));
        assert_eq!(
            OtelParser.parse(BATCH, &ParseContext::default()).unwrap().message,
            "payment failed"
        );
    }

    #[test]
    fn data_model_and_bare_records() {
        let ctx = ParseContext::default();
        let r = OtelParser
            .parse(
                r#"{"Timestamp":"1772600767123456789","SeverityText":"WARN","Body":"disk almost full","Resource":{"service.name":"db","host.name":"db-1"},"Attributes":{"disk.used":0.93}}"#,
                &ctx,
            )
            .unwrap();
        assert_eq!(
            (r.level, r.service.as_deref(), r.message.as_ref()),
            (Some(Level::Warn), Some("db"), "disk almost full")
        );
        assert_eq!(r.attrs[0], (Cow::Borrowed("disk.used"), Cow::Borrowed("0.93")));
        let r = OtelParser
            .parse(r#"{"timeUnixNano":1772600767000000000,"severityNumber":21,"body":{"stringValue":"out of memory"}}"#, &ctx)
            .unwrap();
        assert_eq!(
            (r.level, r.ts.to_rfc3339().as_str()),
            (Some(Level::Critical), "2026-03-04T05:06:07Z")
        );
    }

    #[test]
    fn structured_bodies_and_attributes_read_as_plain_json() {
        let line = r#"{"timeUnixNano":"1772600767000000000","body":{"kvlistValue":{"values":[
            {"key":"user","value":{"stringValue":"ana"}},
            {"key":"tries","value":{"arrayValue":{"values":[{"intValue":"3"},{"doubleValue":0.5}]}}},
            {"key":"ok","value":{"boolValue":false}}]}},
            "attributes":[{"key":"ids","value":{"arrayValue":{"values":[{"intValue":"-1"}]}}}]}"#;
        let record = OtelParser.parse(line, &ParseContext::default()).unwrap();
        assert_eq!(record.message, r#"{"ok":false,"tries":[3,0.5],"user":"ana"}"#);
        assert_eq!(record.attrs, vec![("ids".into(), "[-1]".into())]);
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| OtelParser.parse(line, &ParseContext::default()).unwrap_err();
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("plain text"), LAYOUT);
        assert_eq!(err(r#"{"msg":"not otel"}"#), LAYOUT);
        assert_eq!(err(r#"{"resourceLogs":[]}"#), ParseError::Missing("logRecords"));
        assert_eq!(
            err(r#"{"timeUnixNano":"0","body":{"stringValue":"x"}}"#),
            ParseError::Missing("timeUnixNano")
        );
        assert_eq!(err("{\"resourceLogs\": [").kind(), "invalid JSON");
    }
}
