//! The MySQL 8.0 error log (`log_sink_internal`):
//! `2024-01-01T12:00:00.123456Z 0 [System] [MY-010116] [Server] mysqld starting as process 1`.

use std::borrow::Cow;

use super::syslog3164::{attr, push_one_line};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{parse_iso_prefix, write_rfc3339, Fraction, TimeError};

/// Parses MySQL 8.0 error log lines: ISO time (`log_timestamps` UTC or SYSTEM), thread id (the
/// `thread` attr), `[Label]` (System, Note, Warning, Error: the level), `[MY-nnnnnn]` (the
/// `code` attr), `[Subsystem]` (the service: Server, InnoDB, Repl, …), and the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct MysqlParser;

const LAYOUT: ParseError =
    ParseError::Layout("MySQL `<time> <thread> [Label] [MY-code] [Subsystem] message`");
const LABELS: [(&str, Level); 4] = [
    ("System", Level::Info),
    ("Note", Level::Notice),
    ("Warning", Level::Warn),
    ("Error", Level::Error),
];

impl LineParser for MysqlParser {
    fn name(&self) -> &str {
        "mysql"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        if line.as_bytes().get(10) != Some(&b'T') {
            return Err(LAYOUT);
        }
        let (ts, rest) = parse_iso_prefix(line.as_bytes(), ctx.zone).map_err(|e| match e {
            TimeError::Layout(_) => LAYOUT,
            e => ParseError::Time(e),
        })?;
        let rest = line[line.len() - rest.len()..].strip_prefix(' ').ok_or(LAYOUT)?;
        let (thread, rest) = rest.split_once(' ').ok_or(LAYOUT)?;
        if thread.is_empty() || !thread.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LAYOUT);
        }
        let (label, rest) = bracketed(rest).ok_or(ParseError::Missing("[Label]"))?;
        let level = LABELS
            .iter()
            .find(|(name, _)| *name == label)
            .ok_or(ParseError::Invalid {
                field: "label",
                reason: "not System, Note, Warning or Error",
            })?
            .1;
        let (code, rest) = bracketed(rest).ok_or(ParseError::Missing("[MY-code]"))?;
        let (subsystem, message) = bracketed(rest).ok_or(ParseError::Missing("[Subsystem]"))?;
        let mut record = Record::new(ts, Cow::Borrowed(message));
        record.level = Some(level);
        record.service = Some(Cow::Borrowed(subsystem));
        record
            .attrs
            .push((Cow::Borrowed("thread"), Cow::Borrowed(thread)));
        record.attrs.push((Cow::Borrowed("code"), Cow::Borrowed(code)));
        Ok(record)
    }
}

/// `[inner] rest` → (inner, rest); the space after `]` may be the end of the line.
fn bracketed(s: &str) -> Option<(&str, &str)> {
    let (inner, rest) = s.strip_prefix('[')?.split_once(']')?;
    match rest.strip_prefix(' ') {
        Some(rest) => Some((inner, rest)),
        None => rest.is_empty().then_some((inner, rest)),
    }
}

/// Renders a record as a MySQL 8.0 line in UTC with microseconds; `thread` and `code` from the
/// attrs (else `0` and `MY-000000`), the service as subsystem (else `Server`).
pub fn render(record: &Record<'_>, out: &mut String) {
    write_rfc3339(out, record.ts, 0, Fraction::Micros);
    out.push(' ');
    out.push_str(attr(record, "thread").unwrap_or("0"));
    let label = LABELS
        .iter()
        .rev()
        .find(|(_, level)| Some(*level) <= record.level)
        .map_or("System", |(name, _)| name);
    out.push_str(" [");
    out.push_str(label);
    out.push_str("] [");
    out.push_str(attr(record, "code").unwrap_or("MY-000000"));
    out.push_str("] [");
    out.push_str(record.service.as_deref().unwrap_or("Server"));
    out.push_str("] ");
    push_one_line(out, &record.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        MysqlParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_fields() {
        let r = parse("2024-01-01T12:00:00.123456+01:00 8 [Warning] [MY-010055] [Server] IP address 'x' could not be resolved")
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-01-01T11:00:00.123456Z");
        assert_eq!(
            (r.level, r.service.as_deref()),
            (Some(Level::Warn), Some("Server"))
        );
        assert_eq!(r.message, "IP address 'x' could not be resolved");
        assert_eq!(r.attrs[1].1, "MY-010055");
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("2024-01-01 12:00:00 0 [Note] x"), LAYOUT);
        assert_eq!(err("2024-01-01T12:00:00Z t1 [Note] x"), LAYOUT);
        assert_eq!(
            err("2024-01-01T12:00:00Z 1 Note x"),
            ParseError::Missing("[Label]")
        );
        assert_eq!(
            err("2024-01-01T12:00:00Z 1 [Loud] [MY-1] [Server] x").kind(),
            "label"
        );
        assert_eq!(
            err("2024-01-01T12:00:00Z 1 [Note] [MY-1]"),
            ParseError::Missing("[Subsystem]")
        );
    }
}
