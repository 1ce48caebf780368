//! Container logs in the CRI layout written by containerd and CRI-O under `/var/log/pods`
//! (Kubernetes): `2024-01-01T00:00:00.000000000Z stdout F message`, where `F` marks a full
//! line and `P` a partial one the runtime split.

use std::borrow::Cow;

use super::syslog3164::push_one_line;
use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;
use crate::time::{write_rfc3339, Fraction, Timestamp};

/// Parses CRI lines: RFC 3339 time (nanoseconds are cut to microseconds), stream (`stdout` or
/// `stderr`, kept as the `stream` attr), tag (`F` or `P`, kept as `logtag`), and the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct CriParser;

const LAYOUT: ParseError = ParseError::Layout("CRI `<time> <stream> <F|P> <message>`");

impl LineParser for CriParser {
    fn name(&self) -> &str {
        "cri"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let (time, rest) = line.split_once(' ').ok_or(LAYOUT)?;
        if !time.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return Err(LAYOUT);
        }
        let ts = Timestamp::parse_rfc3339(time, ctx.zone)?;
        let (stream, rest) = rest.split_once(' ').ok_or(LAYOUT)?;
        if stream != "stdout" && stream != "stderr" {
            return Err(ParseError::Invalid {
                field: "stream",
                reason: "not stdout or stderr",
            });
        }
        // The message may be empty and its separating space trimmed.
        let (tag, message) = rest.split_once(' ').unwrap_or((rest, ""));
        if !tag.split(':').all(|t| t == "F" || t == "P") {
            return Err(ParseError::Invalid {
                field: "logtag",
                reason: "not F or P",
            });
        }
        let mut record = Record::new(ts, Cow::Borrowed(message));
        record
            .attrs
            .push((Cow::Borrowed("stream"), Cow::Borrowed(stream)));
        record.attrs.push((Cow::Borrowed("logtag"), Cow::Borrowed(tag)));
        Ok(record)
    }
}

/// Renders a record as a CRI line with nanosecond time; `stream` and `logtag` come from the
/// attrs (default `stdout` and `F`), other fields are not carried.
pub fn render(record: &Record<'_>, out: &mut String) {
    let mut time = String::with_capacity(32);
    write_rfc3339(&mut time, record.ts, 0, Fraction::Micros);
    // Runtimes write nanoseconds: append three zeros before the `Z`.
    time.insert_str(time.len() - 1, "000");
    out.push_str(&time);
    out.push(' ');
    let attr = |key: &str| super::syslog3164::attr(record, key);
    out.push_str(if attr("stream") == Some("stderr") {
        "stderr"
    } else {
        "stdout"
    });
    out.push(' ');
    out.push_str(if attr("logtag") == Some("P") { "P" } else { "F" });
    out.push(' ');
    push_one_line(out, &record.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        CriParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_full_and_partial_lines() {
        let r = parse("2024-01-01T00:00:00.123456789Z stderr F panic: boom now").expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-01-01T00:00:00.123456Z");
        assert_eq!(r.message, "panic: boom now");
        assert_eq!(r.attrs[0].1, "stderr");
        let r = parse("2024-01-01T01:00:00.5+01:00 stdout P").expect("empty partial parses");
        assert_eq!(
            (r.ts.to_rfc3339().as_str(), r.message.as_ref()),
            ("2024-01-01T00:00:00.500Z", "")
        );
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("hello"), LAYOUT);
        assert_eq!(err("2024-01-01T00:00:00Z stdin F x").kind(), "stream");
        assert_eq!(err("2024-01-01T00:00:00Z stdout X x").kind(), "logtag");
        assert!(matches!(
            err("2024-13-01T00:00:00Z stdout F x"),
            ParseError::Time(_)
        ));
        assert_eq!(err("Jan stdout F x"), LAYOUT);
    }

    #[test]
    fn render_round_trips() {
        let line = "2024-01-01T00:00:00.123456000Z stderr P half a line";
        let r = parse(line).expect("parses");
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(out, line);
    }
}
