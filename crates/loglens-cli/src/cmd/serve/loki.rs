//! Loki's push API (`POST /loki/api/v1/push`), so Promtail, Grafana Alloy, Vector's and Fluent
//! Bit's `loki` outputs can ship to serve unchanged: snappy-compressed protobuf (Promtail's and
//! Alloy's encoding) or JSON. Each entry becomes a JSON line for the `json` format with the
//! entry's time (Loki's own rule: the entry's timestamp is the event's), its line as the message,
//! or the line's fields when it is a JSON object, and the stream's labels as attributes.

use serde_json::{Map, Value};

use super::protobuf::{fields, Wire, WireError};

/// Why a push cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("snappy body decompresses to {0} bytes, over the limit")]
    TooLarge(usize),
    #[error("not a Loki push request: {0}")]
    Json(String),
    #[error("entry timestamp {0:?} is not nanoseconds since the epoch")]
    Timestamp(String),
    #[error("stream labels {0:?} are not {{name=\"value\", ...}}")]
    Labels(String),
}

/// An entry: `(unix nanoseconds, line, structured metadata)`.
type Entry = (i64, String, Vec<(String, String)>);

/// One stream of a push: its labels and entries.
#[derive(Debug, PartialEq)]
pub struct PushStream {
    labels: Vec<(String, String)>,
    entries: Vec<Entry>,
}

impl PushStream {
    /// A JSON line per entry for the `json` format (see [`push_lines`]).
    pub fn json_lines(self) -> Vec<String> {
        let mut lines = Vec::with_capacity(self.entries.len());
        push_lines(&self.labels, self.entries, &mut lines);
        lines
    }

    /// The entries' lines as sent, for a format the client named.
    pub fn raw_lines(self) -> Vec<String> {
        self.entries.into_iter().map(|(_, line, _)| line).collect()
    }

    /// The service the labels name, if any.
    pub fn service(&self) -> Option<String> {
        self.label(&SERVICE_LABELS)
    }

    /// The host the labels name, if any.
    pub fn host(&self) -> Option<String> {
        self.label(&HOST_LABELS)
    }

    fn label(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|n| self.labels.iter().find(|(k, _)| k == n))
            .map(|(_, v)| v.clone())
    }
}

/// A protobuf push (`logproto.PushRequest`, snappy block-compressed).
pub fn protobuf_streams(body: &[u8], max_bytes: usize) -> Result<Vec<PushStream>, PushError> {
    let length = snap::raw::decompress_len(body).map_err(|e| PushError::Snappy(e.to_string()))?;
    if length > max_bytes {
        return Err(PushError::TooLarge(length));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| PushError::Snappy(e.to_string()))?;
    let mut streams = Vec::new();
    for field in fields(&raw) {
        if let (1, Wire::Bytes(stream)) = field? {
            streams.push(protobuf_stream(stream)?);
        }
    }
    Ok(streams)
}

/// `StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; }`
fn protobuf_stream(bytes: &[u8]) -> Result<PushStream, PushError> {
    let mut labels = Vec::new();
    let mut entries = Vec::new();
    for field in fields(bytes) {
        match field? {
            (1, wire) => labels = label_set(&wire.text().unwrap_or_default())?,
            (2, Wire::Bytes(entry)) => entries.push(protobuf_entry(entry)?),
            _ => {}
        }
    }
    Ok(PushStream { labels, entries })
}

/// `EntryAdapter { Timestamp timestamp = 1; string line = 2; repeated LabelPairAdapter
/// structuredMetadata = 3; }`
fn protobuf_entry(bytes: &[u8]) -> Result<Entry, PushError> {
    let (mut ns, mut line, mut metadata) = (0i64, String::new(), Vec::new());
    for field in fields(bytes) {
        match field? {
            (1, Wire::Bytes(timestamp)) => {
                let (mut seconds, mut nanos) = (0i64, 0i64);
                for part in fields(timestamp) {
                    match part? {
                        (1, Wire::Varint(s)) => seconds = s as i64,
                        (2, Wire::Varint(n)) => nanos = i64::from(n as i32),
                        _ => {}
                    }
                }
                ns = seconds.saturating_mul(1_000_000_000).saturating_add(nanos);
            }
            (2, wire) => line = wire.text().unwrap_or_default(),
            (3, Wire::Bytes(pair)) => {
                let (mut name, mut value) = (String::new(), String::new());
                for part in fields(pair) {
                    match part? {
                        (1, wire) => name = wire.text().unwrap_or_default(),
                        (2, wire) => value = wire.text().unwrap_or_default(),
                        _ => {}
                    }
                }
                metadata.push((name, value));
            }
            _ => {}
        }
    }
    Ok((ns, line, metadata))
}

/// A JSON push: `{"streams":[{"stream":{labels},"values":[["<ns>","line",{metadata}]]}]}`.
pub fn json_streams(body: &[u8]) -> Result<Vec<PushStream>, PushError> {
    #[derive(serde::Deserialize)]
    struct Push {
        streams: Vec<Stream>,
    }
    #[derive(serde::Deserialize)]
    struct Stream {
        #[serde(default)]
        stream: Map<String, Value>,
        values: Vec<Vec<Value>>,
    }
    let push: Push = serde_json::from_slice(body).map_err(|e| PushError::Json(e.to_string()))?;
    let mut streams = Vec::new();
    for stream in push.streams {
        let labels = stream
            .stream
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect::<Vec<_>>();
        let mut entries = Vec::with_capacity(stream.values.len());
        for value in stream.values {
            let [ts, line, rest @ ..] = value.as_slice() else {
                return Err(PushError::Json("an entry is not [\"<ns>\", \"<line>\"]".into()));
            };
            let ts_text = ts.as_str().map_or_else(|| ts.to_string(), str::to_owned);
            let ns = ts_text
                .parse::<i64>()
                .map_err(|_| PushError::Timestamp(ts_text.clone()))?;
            let line = line
                .as_str()
                .ok_or_else(|| PushError::Json("an entry's line is not a string".into()))?;
            let metadata = rest
                .first()
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                        .collect()
                })
                .unwrap_or_default();
            entries.push((ns, line.to_owned(), metadata));
        }
        streams.push(PushStream { labels, entries });
    }
    Ok(streams)
}

/// Keys the record's own fields use; labels of these names are kept as `label.<name>`.
const RESERVED: [&str; 9] = [
    "ts",
    "timestamp",
    "time",
    "@timestamp",
    "datetime",
    "date",
    "msg",
    "message",
    "attrs",
];
/// Labels that name the service and the host, first found first.
const SERVICE_LABELS: [&str; 7] = [
    "service",
    "service_name",
    "app",
    "application",
    "job",
    "container",
    "component",
];
const HOST_LABELS: [&str; 5] = ["host", "hostname", "instance", "node", "nodename"];
const LEVEL_LABELS: [&str; 4] = ["level", "detected_level", "severity", "lvl"];

/// A JSON line per entry: the line's own fields when it is a JSON object (else `message`),
/// `ts` the entry's nanoseconds, then labels and structured metadata for what the line leaves
/// unnamed, and `service`, `host`, `level` from the labels Loki users set for them.
fn push_lines(labels: &[(String, String)], entries: Vec<Entry>, lines: &mut Vec<String>) {
    for (ns, line, metadata) in entries {
        let mut record = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::from_iter([("message".to_owned(), Value::String(line))]),
        };
        record.insert("ts".into(), Value::from(ns));
        for (name, value) in labels.iter().chain(&metadata) {
            let key = if RESERVED.contains(&name.as_str()) {
                format!("label.{name}")
            } else {
                name.clone()
            };
            record.entry(key).or_insert_with(|| Value::String(value.clone()));
        }
        for (field, names) in [
            ("service", &SERVICE_LABELS[..]),
            ("host", &HOST_LABELS[..]),
            ("level", &LEVEL_LABELS[..]),
        ] {
            let named = names
                .iter()
                .find_map(|n| labels.iter().chain(&metadata).find(|(k, _)| k == n));
            if let Some((_, value)) = named {
                record
                    .entry(field)
                    .or_insert_with(|| Value::String(value.clone()));
            }
        }
        lines.push(Value::Object(record).to_string());
    }
}

/// A Prometheus label set as Loki's protobuf carries it: `{job="varlogs", host="web-1"}`,
/// values with Go's escapes (`\"`, `\\`, `\n`).
fn label_set(text: &str) -> Result<Vec<(String, String)>, PushError> {
    let bad = || PushError::Labels(text.to_owned());
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut labels = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(bad)?;
        let mut chars = after
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(bad)?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or_else(bad)? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or_else(bad)?.1 {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim().to_owned(), value));
        let after_value = &after.trim_start()[1 + end + 1..];
        rest = after_value.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(labels)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cmd::serve::protobuf::{put_bytes, put_uint};

    /// A push as Promtail sends it: `PushRequest` in protobuf, snappy-compressed.
    fn promtail_push(labels: &str, entries: &[(i64, u32, &str)]) -> Vec<u8> {
        let mut stream = Vec::new();
        put_bytes(&mut stream, 1, labels.as_bytes());
        for &(seconds, nanos, line) in entries {
            let mut timestamp = Vec::new();
            put_uint(&mut timestamp, 1, seconds as u64);
            put_uint(&mut timestamp, 2, u64::from(nanos));
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, &timestamp);
            put_bytes(&mut entry, 2, line.as_bytes());
            put_bytes(&mut stream, 2, &entry);
        }
        let mut request = Vec::new();
        put_bytes(&mut request, 1, &stream);
        snap::raw::Encoder::new().compress_vec(&request).unwrap()
    }

    fn json_lines(body: &[u8]) -> Result<Vec<String>, PushError> {
        Ok(json_streams(body)?
            .into_iter()
            .flat_map(PushStream::json_lines)
            .collect())
    }

    fn protobuf_lines(body: &[u8], max: usize) -> Result<Vec<String>, PushError> {
        Ok(protobuf_streams(body, max)?
            .into_iter()
            .flat_map(PushStream::json_lines)
            .collect())
    }

    #[test]
    fn label_sets_read_with_their_escapes() {
        assert_eq!(
            label_set(r#"{job="varlogs", filename="/var/log/a \"b\".log",x="1\\2"}"#).unwrap(),
            [
                ("job".into(), "varlogs".into()),
                ("filename".into(), "/var/log/a \"b\".log".into()),
                ("x".into(), "1\\2".into())
            ]
        );
        assert_eq!(label_set("{}").unwrap(), []);
        assert!(label_set(r#"{job="x}"#).is_err());
        assert!(label_set("job=x").is_err());
    }

    #[test]
    fn the_documented_json_push_gives_json_lines() {
        // The example of Loki's HTTP API documentation, with a second, JSON, line.
        let body = br#"{"streams": [{ "stream": { "foo": "bar2", "job": "api", "time": "x" },
            "values": [ [ "1570818238000000000", "fizzbuzz" ],
                        [ "1570818239000000001", "{\"msg\":\"slow\",\"level\":\"warn\"}", {"trace_id": "abc"} ] ] }]}"#;
        let lines = json_lines(body).unwrap();
        let values: Vec<Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            values[0],
            serde_json::json!({"ts": 1570818238000000000i64, "message": "fizzbuzz", "foo": "bar2",
                "job": "api", "service": "api", "label.time": "x"})
        );
        assert_eq!(
            values[1],
            serde_json::json!({"ts": 1570818239000000001i64, "msg": "slow", "level": "warn",
                "foo": "bar2", "job": "api", "service": "api", "label.time": "x", "trace_id": "abc"})
        );
        assert!(matches!(
            json_lines(b"{\"streams\":[{\"values\":[[\"x\",\"a\"]]}]}"),
            Err(PushError::Timestamp(_))
        ));
        assert!(matches!(
            json_lines(b"{\"streams\":[{\"values\":[[\"1\"]]}]}"),
            Err(PushError::Json(_))
        ));
    }

    #[test]
    fn a_promtail_push_gives_the_same_lines_as_json() {
        let body = promtail_push(r#"{host="web-1", job="nginx"}"#, &[(1570818238, 5, "GET / 200")]);
        let lines = protobuf_lines(&body, 1 << 20).unwrap();
        let json = br#"{"streams":[{"stream":{"host":"web-1","job":"nginx"},"values":[["1570818238000000005","GET / 200"]]}]}"#;
        assert_eq!(lines, json_lines(json).unwrap());
        assert!(matches!(
            protobuf_lines(b"not snappy", 1 << 20),
            Err(PushError::Snappy(_))
        ));
        assert_eq!(
            protobuf_lines(&body, 10),
            Err(PushError::TooLarge(body_len(&body)))
        );
    }

    fn body_len(body: &[u8]) -> usize {
        snap::raw::decompress_len(body).unwrap()
    }
}
