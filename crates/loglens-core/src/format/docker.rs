//! Docker's `json-file` logging driver (`/var/lib/docker/containers/*/*-json.log`): one object
//! per line, `{"log":"message\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`,
//! with an optional `attrs` object when `--log-opt labels/env` is set.

use std::borrow::Cow;

use super::jsonl::{compact, json_str, push_json_str, Entries};
use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;
use crate::time::{write_rfc3339, Fraction, Timestamp};

/// Parses json-file lines: `time` (RFC 3339), `log` (the message, its final newline removed),
/// `stream` (kept as an attr), and each key of `attrs` as an attr. Any other key means the
/// object is not a json-file line (the `json` format reads it instead).
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerParser;

const LAYOUT: ParseError = ParseError::Layout("docker json-file {\"log\",\"stream\",\"time\"}");

impl LineParser for DockerParser {
    fn name(&self) -> &str {
        "docker"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Err(ParseError::Empty);
        }
        if !trimmed.starts_with('{') {
            return Err(LAYOUT);
        }
        let Entries(entries) =
            serde_json::from_str::<Entries<'a>>(trimmed).map_err(|e| ParseError::Json(e.to_string()))?;
        let (mut log, mut stream, mut time, mut extra) = (None, None, None, Vec::new());
        for (key, value) in entries {
            let text = || {
                json_str(value).ok_or(ParseError::Invalid {
                    field: "docker field",
                    reason: "not a string",
                })
            };
            match key.as_ref() {
                "log" => {
                    log = Some(log_text(value).ok_or(ParseError::Invalid {
                        field: "log",
                        reason: "not a string",
                    })?)
                }
                "stream" => stream = Some(text()?),
                "time" => time = Some(text()?),
                "attrs" => {
                    let Entries(attrs) = serde_json::from_str::<Entries<'a>>(value.get()).map_err(|_| {
                        ParseError::Invalid {
                            field: "attrs",
                            reason: "not an object",
                        }
                    })?;
                    extra.extend(
                        attrs
                            .into_iter()
                            .map(|(k, v)| (k, json_str(v).unwrap_or_else(|| compact(v.get())))),
                    );
                }
                _ => return Err(LAYOUT),
            }
        }
        let time = time.ok_or(ParseError::Missing("time"))?;
        let ts = Timestamp::parse_rfc3339(&time, ctx.zone)?;
        let mut record = Record::new(ts, log.ok_or(ParseError::Missing("log"))?);
        record.attrs.push((
            Cow::Borrowed("stream"),
            stream.ok_or(ParseError::Missing("stream"))?,
        ));
        record.attrs.extend(extra);
        Ok(record)
    }
}

/// The `log` string without the newline the driver keeps at its end; borrowed from the line
/// when that newline is its only escape.
fn log_text(raw: &serde_json::value::RawValue) -> Option<Cow<'_, str>> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    if let Some(body) = inner.strip_suffix("\\n") {
        if memchr::memchr(b'\\', body.as_bytes()).is_none() {
            return Some(Cow::Borrowed(body));
        }
    }
    json_str(raw).map(strip_newline)
}

/// The message without the newline the driver keeps at the end of each `log`.
fn strip_newline(log: Cow<'_, str>) -> Cow<'_, str> {
    match log {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_suffix('\n').unwrap_or(s)),
        Cow::Owned(mut s) => {
            if s.ends_with('\n') {
                s.pop();
            }
            Cow::Owned(s)
        }
    }
}

/// Renders a record as a json-file line: the message plus a newline as `log`, the `stream`
/// attr (default `stdout`), nanosecond `time`, and the other attrs in `attrs`.
pub fn render(record: &Record<'_>, out: &mut String) {
    out.push_str("{\"log\":");
    let mut log = String::with_capacity(record.message.len() + 1);
    log.push_str(&record.message);
    log.push('\n');
    push_json_str(out, &log);
    out.push_str(",\"stream\":");
    push_json_str(out, super::syslog3164::attr(record, "stream").unwrap_or("stdout"));
    out.push_str(",\"time\":\"");
    let mut time = String::with_capacity(32);
    write_rfc3339(&mut time, record.ts, 0, Fraction::Micros);
    time.insert_str(time.len() - 1, "000");
    out.push_str(&time);
    out.push('"');
    let mut others = record.attrs.iter().filter(|(k, _)| k != "stream").peekable();
    if others.peek().is_some() {
        out.push_str(",\"attrs\":{");
        for (i, (key, value)) in others.enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(out, key);
            out.push(':');
            push_json_str(out, value);
        }
        out.push('}');
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        DockerParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_message_stream_and_attrs() {
        let r = parse(r#"{"log":"GET / 200\n","stream":"stdout","attrs":{"tag":"web"},"time":"2024-01-01T00:00:00.123456789Z"}"#)
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-01-01T00:00:00.123456Z");
        assert_eq!(r.message, "GET / 200");
        assert!(matches!(r.message, Cow::Borrowed(_)));
        let attrs: Vec<(&str, &str)> = r.attrs.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(attrs, [("stream", "stdout"), ("tag", "web")]);
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("log line"), LAYOUT);
        assert_eq!(
            err(r#"{"log":"x\n","stream":"stdout","time":"2024-01-01T00:00:00Z","level":"info"}"#),
            LAYOUT
        );
        assert_eq!(
            err(r#"{"log":"x\n","stream":"stdout"}"#),
            ParseError::Missing("time")
        );
        assert_eq!(
            err(r#"{"log":1,"stream":"stdout","time":"2024-01-01T00:00:00Z"}"#).kind(),
            "log"
        );
        assert!(matches!(err(r#"{"log":"x""#), ParseError::Json(_)));
    }
}
