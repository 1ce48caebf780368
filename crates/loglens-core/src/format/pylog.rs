//! Python logging's common layout `%(asctime)s - %(name)s - %(levelname)s - %(message)s`,
//! e.g. `2026-11-01 12:00:00,123 - worker.tasks - ERROR - Task failed: timeout`.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::multiline::Continuation;
use super::syslog3164::push_one_line;
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{parse_iso_prefix, TimeError};

/// Parses Python logging lines: asctime (ISO, comma before the milliseconds, zone-less times
/// in the context's default zone), logger name (the service), level name (must be known), and
/// the message, which may itself contain ` - `.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonLoggingParser;

const LAYOUT: ParseError = ParseError::Layout("pylog");
const SEP: &str = " - ";

impl LineParser for PythonLoggingParser {
    fn name(&self) -> &str {
        "pylog"
    }

    /// A message logged with newlines (`log.info("query:\n%s", sql)`) continues unindented.
    fn continuation(&self) -> Continuation {
        Continuation::Any
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let (ts, rest) = parse_iso_prefix(line.as_bytes(), ctx.zone).map_err(|e| match e {
            TimeError::Layout(_) => LAYOUT,
            e => ParseError::Time(e),
        })?;
        // The timestamp ends on an ASCII byte, so this is a char boundary.
        let rest = line[line.len() - rest.len()..].strip_prefix(SEP).ok_or(LAYOUT)?;
        let (name, rest) = rest.split_once(SEP).ok_or(ParseError::Missing("levelname"))?;
        let (levelname, message) = match rest.split_once(SEP) {
            Some(split) => split,
            // Trailing white space of an empty message may have been trimmed.
            None => (rest.strip_suffix(" -").unwrap_or(rest), ""),
        };
        let level = levelname.parse::<Level>().map_err(|_| ParseError::Invalid {
            field: "level",
            reason: "unknown level name",
        })?;
        Ok(Record {
            ts,
            host: None,
            service: (!name.is_empty()).then_some(Cow::Borrowed(name)),
            level: Some(level),
            message: Cow::Borrowed(message),
            access: None,
            attrs: Vec::new(),
        })
    }
}

/// Renders a record as `YYYY-MM-DD HH:MM:SS,mmm - name - LEVELNAME - message` in UTC wall
/// time. A record without service is written as Python's `root` logger, one without level as
/// `INFO`.
pub fn render(record: &Record<'_>, out: &mut String) {
    let c = record.ts.to_civil(0);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03} - ",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.micros / 1000
    );
    out.push_str(
        record
            .service
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("root"),
    );
    out.push_str(" - ");
    out.push_str(level_name(record.level.unwrap_or(Level::Info)));
    out.push_str(" - ");
    push_one_line(out, &record.message);
}

/// The name Python logging (or a custom level) would print for a level.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Notice => "NOTICE",
        Level::Warn => "WARNING",
        Level::Error => "ERROR",
        Level::Critical => "CRITICAL",
        Level::Alert => "ALERT",
        Level::Emergency => "EMERGENCY",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        PythonLoggingParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_with_separator_in_message() {
        let r = parse("2026-11-01 12:00:00,123 - worker.tasks - ERROR - Task failed: timeout - retrying in 5s - attempt 2")
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T12:00:00.123Z");
        assert_eq!(r.service.as_deref(), Some("worker.tasks"));
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message, "Task failed: timeout - retrying in 5s - attempt 2");
        assert!(r.attrs.is_empty() && r.host.is_none());
    }

    #[test]
    fn levels_zones_and_empty_messages() {
        let ctx = ParseContext {
            zone: crate::zone::LocalZone::Fixed(-5 * 3600),
            ..ParseContext::default()
        };
        let r = PythonLoggingParser
            .parse("2026-11-01 12:00:00,000 - root - WARNING - disk 91% full", &ctx)
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T17:00:00Z");
        assert_eq!(r.level, Some(Level::Warn));
        let r = parse("2026-11-01 12:00:00,999 - app - CRITICAL - ").expect("parses");
        assert_eq!((r.level, r.message.as_ref()), (Some(Level::Critical), ""));
        let r = parse("2026-11-01 12:00:00,999 - app - DEBUG -").expect("trimmed line parses");
        assert_eq!((r.level, r.message.as_ref()), (Some(Level::Debug), ""));
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("Traceback (most recent call last):"), LAYOUT);
        assert_eq!(err("2026-11-01 12:00:00,123 worker INFO hi"), LAYOUT);
        assert_eq!(
            err("2026-11-01 12:00:00,123 - worker"),
            ParseError::Missing("levelname")
        );
        assert_eq!(
            err("2026-11-01 12:00:00,123 - worker - CHATTY - hi"),
            ParseError::Invalid {
                field: "level",
                reason: "unknown level name"
            }
        );
        assert!(matches!(
            err("2026-02-30 12:00:00,123 - w - INFO - hi"),
            ParseError::Time(_)
        ));
    }

    #[test]
    fn render_round_trips() {
        let line = "2026-11-01 12:00:00,123 - worker.tasks - WARNING - Task slow - 5s";
        let r = parse(line).expect("parses");
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(out, line);
        let mut out = String::new();
        render(&Record::new(Timestamp(1_500), "x"), &mut out);
        assert_eq!(out, "1970-01-01 00:00:00,001 - root - INFO - x");
    }
}
