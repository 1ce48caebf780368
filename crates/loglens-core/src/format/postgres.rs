//! PostgreSQL server logs with the default `log_line_prefix = '%m [%p] '`:
//! `2024-01-01 12:00:00.123 UTC [4711] LOG:  database system is ready to accept connections`.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::syslog3164::{attr, push_one_line};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{parse_iso_prefix, TimeError};
use crate::zone::LocalZone;

/// Parses PostgreSQL log lines: `%m` (time with milliseconds and a zone: `UTC`, `GMT`, a
/// numeric `+01`/`-0530`, or another abbreviation read in the context's zone), `[%p]` (the
/// `pid` attr), and `SEVERITY:  message` (the `severity` attr; `DETAIL`, `HINT`, `STATEMENT`
/// and the other secondary lines keep no level).
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresParser;

const LAYOUT: ParseError = ParseError::Layout("PostgreSQL `%m [%p] SEVERITY:  message`");

/// Severities and the level each one means; `None` for the lines that belong to a record.
const SEVERITIES: [(&str, Option<Level>); 19] = [
    ("LOG", Some(Level::Info)),
    ("ERROR", Some(Level::Error)),
    ("WARNING", Some(Level::Warn)),
    ("FATAL", Some(Level::Critical)),
    ("PANIC", Some(Level::Emergency)),
    ("INFO", Some(Level::Info)),
    ("NOTICE", Some(Level::Notice)),
    ("DEBUG", Some(Level::Debug)),
    ("DEBUG1", Some(Level::Debug)),
    ("DEBUG2", Some(Level::Debug)),
    ("DEBUG3", Some(Level::Debug)),
    ("DEBUG4", Some(Level::Debug)),
    ("DEBUG5", Some(Level::Debug)),
    ("DETAIL", None),
    ("HINT", None),
    ("QUERY", None),
    ("CONTEXT", None),
    ("LOCATION", None),
    ("STATEMENT", None),
];

impl LineParser for PostgresParser {
    fn name(&self) -> &str {
        "postgres"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        // `%m` is zone-less up to the abbreviation that follows it.
        let (local, rest) = parse_iso_prefix(line.as_bytes(), LocalZone::Fixed(0)).map_err(|e| match e {
            TimeError::Layout(_) => LAYOUT,
            e => ParseError::Time(e),
        })?;
        let rest = line[line.len() - rest.len()..].strip_prefix(' ').ok_or(LAYOUT)?;
        let (zone, rest) = rest.split_once(' ').ok_or(LAYOUT)?;
        let ts = match zone_offset(zone)? {
            Some(offset) => crate::time::Timestamp(local.0 - i64::from(offset) * 1_000_000),
            // An abbreviation such as `CET`: the configured zone tells what it means.
            None => parse_iso_prefix(line.as_bytes(), ctx.zone)?.0,
        };
        let rest = rest.strip_prefix('[').ok_or(LAYOUT)?;
        let (pid, rest) = rest.split_once("] ").ok_or(ParseError::Missing("[pid]"))?;
        let (severity, message) = rest.split_once(':').ok_or(ParseError::Missing("severity"))?;
        let level = SEVERITIES
            .iter()
            .find(|(name, _)| *name == severity)
            .ok_or(ParseError::Invalid {
                field: "severity",
                reason: "not a PostgreSQL severity",
            })?
            .1;
        let mut record = Record::new(
            ts,
            Cow::Borrowed(message.strip_prefix("  ").unwrap_or(message.trim_start())),
        );
        record.level = level;
        record.attrs.push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
        record
            .attrs
            .push((Cow::Borrowed("severity"), Cow::Borrowed(severity)));
        Ok(record)
    }
}

/// Seconds east of UTC for the `%m` zone field; `None` for an abbreviation other than UTC.
fn zone_offset(zone: &str) -> Result<Option<i32>, ParseError> {
    const BAD: ParseError = ParseError::Invalid {
        field: "zone",
        reason: "not an abbreviation or +hh[mm]",
    };
    match zone.as_bytes() {
        b"UTC" | b"GMT" | b"Z" => Ok(Some(0)),
        [sign @ (b'+' | b'-'), digits @ ..] => {
            let n = |s: &[u8]| crate::time::digits(s).map(|n| n as i32);
            let (h, m) = match digits.len() {
                2 => (n(digits).ok_or(BAD)?, 0),
                4 => (n(&digits[..2]).ok_or(BAD)?, n(&digits[2..]).ok_or(BAD)?),
                _ => return Err(BAD),
            };
            let secs = h * 3600 + m * 60;
            Ok(Some(if *sign == b'-' { -secs } else { secs }))
        }
        b if !b.is_empty() && b.iter().all(u8::is_ascii_alphabetic) => Ok(None),
        _ => Err(BAD),
    }
}

/// Renders a record as a PostgreSQL line in UTC; `pid` and `severity` come from the attrs
/// (else `0` and the severity of the level).
pub fn render(record: &Record<'_>, out: &mut String) {
    let c = record.ts.to_civil(0);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC [{}] ",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.micros / 1000,
        attr(record, "pid").unwrap_or("0")
    );
    let severity = attr(record, "severity").unwrap_or_else(|| {
        SEVERITIES
            .iter()
            .find(|(_, level)| *level == record.level)
            .map_or("LOG", |(name, _)| name)
    });
    out.push_str(severity);
    out.push_str(":  ");
    push_one_line(out, &record.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        PostgresParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_prefix_severity_and_zones() {
        let r = parse(
            "2024-01-01 12:00:00.123 UTC [4711] ERROR:  relation \"users\" does not exist at character 15",
        )
        .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-01-01T12:00:00.123Z");
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message, "relation \"users\" does not exist at character 15");
        let r = parse("2024-01-01 12:00:00.000 +0530 [1] STATEMENT:  SELECT 1").expect("parses");
        assert_eq!(
            (r.ts.to_rfc3339().as_str(), r.level),
            ("2024-01-01T06:30:00Z", None)
        );
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("\tat org.Foo"), LAYOUT);
        assert_eq!(err("2024-01-01 12:00:00.123 UTC 4711 LOG:  x"), LAYOUT);
        assert_eq!(
            err("2024-01-01 12:00:00.123 UTC [4711] LOUD:  x").kind(),
            "severity"
        );
        assert_eq!(err("2024-01-01 12:00:00.123 +9 [4711] LOG:  x").kind(), "zone");
    }
}
