//! Splunk's HTTP Event Collector (`POST /services/collector/event`), so Vector's and Fluent
//! Bit's `splunk` outputs and the OpenTelemetry Collector's `splunk_hec` exporter can ship to
//! serve: a body of stacked event objects (`{"time":…,"host":…,"event":…}{…}`), each a JSON
//! line for the `json` format. A body with an invalid event is refused whole, naming the event,
//! so a corrected resend stores nothing twice.

use serde_json::{json, Map, Value};

/// Why an event (0-based, as HEC's `invalid-event-number`) is refused, with HEC's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HecError {
    #[error("No data")]
    NoData,
    #[error("Invalid data format")]
    Format { event: usize },
    #[error("Event field is required")]
    MissingEvent { event: usize },
    #[error("Event field cannot be blank")]
    BlankEvent { event: usize },
}

impl HecError {
    /// The JSON HEC answers an error with.
    pub fn answer(&self) -> Value {
        let (code, event) = match *self {
            HecError::NoData => (5, None),
            HecError::Format { event } => (6, Some(event)),
            HecError::MissingEvent { event } => (12, Some(event)),
            HecError::BlankEvent { event } => (13, Some(event)),
        };
        let mut answer = json!({ "text": self.to_string(), "code": code });
        if let Some(event) = event {
            answer["invalid-event-number"] = json!(event);
        }
        answer
    }
}

/// HEC's answer to a request it took.
pub fn success() -> Value {
    json!({ "text": "Success", "code": 0 })
}

/// The events of a body as JSON lines: the event's own fields when it is an object (else
/// `message`), `ts` from `time` (epoch seconds) or the time of arrival, `host`, and `source`,
/// `sourcetype`, `index` and the indexed `fields` as attrs (`fields` may name the service).
pub fn event_lines(body: &[u8], now_micros: i64) -> Result<Vec<String>, HecError> {
    let mut lines = Vec::new();
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    for (number, event) in stream.enumerate() {
        let Ok(Value::Object(event)) = event else {
            return Err(HecError::Format { event: number });
        };
        lines.push(event_line(event, number, now_micros)?);
    }
    if lines.is_empty() {
        return Err(HecError::NoData);
    }
    Ok(lines)
}

fn event_line(mut envelope: Map<String, Value>, number: usize, now_micros: i64) -> Result<String, HecError> {
    let mut record = match envelope.remove("event") {
        None | Some(Value::Null) => return Err(HecError::MissingEvent { event: number }),
        Some(Value::String(text)) if text.trim().is_empty() => {
            return Err(HecError::BlankEvent { event: number })
        }
        Some(Value::String(text)) => Map::from_iter([("message".to_owned(), Value::String(text))]),
        Some(Value::Object(fields)) if fields.is_empty() => {
            return Err(HecError::BlankEvent { event: number })
        }
        Some(Value::Object(fields)) => fields,
        Some(other) => Map::from_iter([("message".to_owned(), Value::String(other.to_string()))]),
    };
    // HEC's time is epoch seconds, a number or a string of one.
    let seconds = match envelope.remove("time") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let ts = seconds.map_or(now_micros, |s| (s * 1e6).round() as i64);
    record.insert("ts".into(), json!(ts));
    if let Some(Value::Object(fields)) = envelope.remove("fields") {
        for (key, value) in fields {
            record.entry(key).or_insert(value);
        }
    }
    for key in ["host", "source", "sourcetype", "index"] {
        if let Some(value) = envelope.remove(key).filter(|v| !v.is_null()) {
            record.entry(key).or_insert(value);
        }
    }
    Ok(Value::Object(record).to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn values(lines: &[String]) -> Vec<Value> {
        lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn stacked_events_become_json_lines() {
        // The shapes of Splunk's "Format events for HTTP Event Collector" examples.
        let body = br#"{"time": 1426279439, "host": "localhost", "source": "random-data-generator", "sourcetype": "my_sample_data", "index": "main", "event": "Hello world!"}
{"event": {"message": "Something happened", "severity": "INFO"}, "fields": {"service": "checkout", "region": "eu"}, "time": "1426279439.500"}{"event": "no time"}"#;
        let lines = event_lines(body, 7_000_000).unwrap();
        assert_eq!(
            values(&lines),
            [
                json!({"ts": 1_426_279_439_000_000i64, "message": "Hello world!", "host": "localhost",
                    "source": "random-data-generator", "sourcetype": "my_sample_data", "index": "main"}),
                json!({"ts": 1_426_279_439_500_000i64, "message": "Something happened", "severity": "INFO",
                    "service": "checkout", "region": "eu"}),
                json!({"ts": 7_000_000, "message": "no time"}),
            ]
        );
    }

    #[test]
    fn an_invalid_event_refuses_the_body_naming_it() {
        assert_eq!(event_lines(b"  ", 0), Err(HecError::NoData));
        assert_eq!(
            event_lines(b"{\"event\":\"a\"}{\"time\":1}", 0),
            Err(HecError::MissingEvent { event: 1 })
        );
        assert_eq!(
            event_lines(b"{\"event\":\" \"}", 0),
            Err(HecError::BlankEvent { event: 0 })
        );
        assert_eq!(
            event_lines(b"{\"event\":\"a\"} [1]", 0),
            Err(HecError::Format { event: 1 })
        );
        assert_eq!(
            event_lines(b"{\"event\":\"a\"} {\"ev", 0),
            Err(HecError::Format { event: 1 })
        );
        assert_eq!(
            HecError::MissingEvent { event: 3 }.answer(),
            json!({"text": "Event field is required", "code": 12, "invalid-event-number": 3})
        );
    }
}
