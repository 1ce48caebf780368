//! The systemd journal as exported by `journalctl -o json`: one object per entry whose
//! fields are strings (`__REALTIME_TIMESTAMP`, `PRIORITY`, `_HOSTNAME`, `SYSLOG_IDENTIFIER`,
//! `MESSAGE`, …). `journalctl -o short-iso` lines are BSD syslog with an ISO time: `syslog3164`.

use super::jsonl::{compact, json_str, push_json_str, Entries};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::Timestamp;

/// Parses journal JSON entries.
///
/// - time: `__REALTIME_TIMESTAMP`, microseconds since the epoch as a decimal string; required.
/// - level: `PRIORITY` (syslog severity 0–7); host: `_HOSTNAME`; service: `SYSLOG_IDENTIFIER`.
/// - message: `MESSAGE` (a byte array when not UTF-8 is kept as its JSON text).
/// - every other field becomes an attr (`_PID`, `_SYSTEMD_UNIT`, `__CURSOR`, …).
#[derive(Debug, Clone, Copy, Default)]
pub struct JournaldParser;

const TIME_KEY: &str = "__REALTIME_TIMESTAMP";

impl LineParser for JournaldParser {
    fn name(&self) -> &str {
        "journald"
    }

    fn parse<'a>(&self, line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Err(ParseError::Empty);
        }
        if !trimmed.starts_with('{') {
            return Err(ParseError::Layout("journal JSON object"));
        }
        let Entries(entries) =
            serde_json::from_str::<Entries<'a>>(trimmed).map_err(|e| ParseError::Json(e.to_string()))?;
        let mut record = Record::new(crate::time::Timestamp(0), "");
        let mut ts = None;
        for (key, value) in entries {
            let text = json_str(value);
            match (key.as_ref(), text) {
                (TIME_KEY, Some(t)) => {
                    let micros = t.parse::<i64>().map_err(|_| ParseError::Invalid {
                        field: TIME_KEY,
                        reason: "not a number of microseconds",
                    })?;
                    ts = Some(Timestamp(micros));
                }
                ("PRIORITY", Some(p)) => {
                    record.level = p.parse::<u8>().ok().and_then(Level::from_syslog_severity);
                    if record.level.is_none() {
                        return Err(ParseError::Invalid {
                            field: "PRIORITY",
                            reason: "not 0-7",
                        });
                    }
                }
                ("_HOSTNAME", Some(h)) => record.host = Some(h),
                ("SYSLOG_IDENTIFIER", Some(s)) => record.service = Some(s),
                ("MESSAGE", text) => record.message = text.unwrap_or_else(|| compact(value.get())),
                (_, text) => record
                    .attrs
                    .push((key, text.unwrap_or_else(|| compact(value.get())))),
            }
        }
        record.ts = ts.ok_or(ParseError::Missing(TIME_KEY))?;
        Ok(record)
    }
}

/// Renders a record as a journal JSON entry: `__REALTIME_TIMESTAMP`, `PRIORITY` (when a
/// level; trace is written as debug), `_HOSTNAME`, `SYSLOG_IDENTIFIER`, `MESSAGE`, then the
/// attrs, every value a string.
pub fn render(record: &Record<'_>, out: &mut String) {
    out.push_str("{\"__REALTIME_TIMESTAMP\":\"");
    out.push_str(&record.ts.0.to_string());
    out.push('"');
    if let Some(level) = record.level {
        out.push_str(",\"PRIORITY\":\"");
        out.push(char::from(b'0' + level.syslog_severity()));
        out.push('"');
    }
    let fields = [
        ("_HOSTNAME", &record.host),
        ("SYSLOG_IDENTIFIER", &record.service),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            push_json_str(out, value);
        }
    }
    out.push_str(",\"MESSAGE\":");
    push_json_str(out, &record.message);
    for (key, value) in &record.attrs {
        out.push(',');
        push_json_str(out, key);
        out.push(':');
        push_json_str(out, value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        JournaldParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_journal_fields() {
        let r = parse(r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1704067200123456","PRIORITY":"3","_HOSTNAME":"web-1","SYSLOG_IDENTIFIER":"sshd","_PID":"42","MESSAGE":"error: kex failed"}"#)
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-01-01T00:00:00.123456Z");
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(
            (r.host.as_deref(), r.service.as_deref()),
            (Some("web-1"), Some("sshd"))
        );
        assert_eq!(r.message, "error: kex failed");
        assert_eq!(r.attrs.len(), 2);
        let r = parse(r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105]}"#).expect("byte message");
        assert_eq!(r.message, "[104,105]");
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(" "), ParseError::Empty);
        assert_eq!(err(r#"{"MESSAGE":"x"}"#), ParseError::Missing(TIME_KEY));
        assert_eq!(err(r#"{"__REALTIME_TIMESTAMP":"soon"}"#).kind(), TIME_KEY);
        assert_eq!(
            err(r#"{"__REALTIME_TIMESTAMP":"1","PRIORITY":"9"}"#).kind(),
            "PRIORITY"
        );
        assert!(matches!(err("{"), ParseError::Json(_)));
    }
}
