//! Android logcat in its default `threadtime` layout (`adb logcat -v threadtime`):
//! `01-01 12:00:00.123  1234  5678 I Tag     : message`; with `-v year` the date has a year.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::syslog3164::{attr, push_one_line};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{digits, Civil, TimeError};

/// Parses threadtime lines: `MM-DD` (year from the context's reference) or `YYYY-MM-DD`, local
/// time with milliseconds, `pid` and `tid` attrs, the priority letter (`V D I W E F A`), the
/// tag (the service; padded with spaces) and, after `: `, the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogcatParser;

const LAYOUT: ParseError =
    ParseError::Layout("logcat threadtime `MM-DD hh:mm:ss.mmm pid tid P tag: message`");
const TIME: TimeError = TimeError::Layout("MM-DD hh:mm:ss.mmm");

impl LineParser for LogcatParser {
    fn name(&self) -> &str {
        "logcat"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let b = line.as_bytes();
        let (year, at) = match b.get(4) {
            Some(b'-') => (Some(digits(&b[..4]).ok_or(LAYOUT)? as i32), 5),
            _ => (None, 0),
        };
        // `MM-DD hh:mm:ss.mmm` is 18 bytes.
        let t = b.get(at..at + 18).ok_or(LAYOUT)?;
        if t[2] != b'-' || t[5] != b' ' || t[8] != b':' || t[11] != b':' || t[14] != b'.' {
            return Err(LAYOUT);
        }
        let num = |r: std::ops::Range<usize>| digits(&t[r]).ok_or(TIME);
        let mut civil = Civil {
            year: year.unwrap_or(0),
            month: num(0..2)? as u8,
            day: num(3..5)? as u8,
            hour: num(6..8)? as u8,
            minute: num(9..11)? as u8,
            second: num(12..14)? as u8,
            micros: num(15..18)? * 1000,
        };
        if year.is_none() {
            if !(1..=12).contains(&civil.month) {
                return Err(ParseError::Time(TimeError::Range("month")));
            }
            civil.year = ctx.zone.infer_year(civil, ctx.reference);
        }
        let ts = ctx.zone.to_timestamp(civil)?;
        let mut words = line[at + 18..].split(' ').filter(|w| !w.is_empty());
        let (Some(pid), Some(tid), Some(priority)) = (words.next(), words.next(), words.next()) else {
            return Err(LAYOUT);
        };
        if !pid.bytes().chain(tid.bytes()).all(|c| c.is_ascii_digit()) {
            return Err(ParseError::Invalid {
                field: "pid",
                reason: "pid and tid must be numbers",
            });
        }
        let level = match priority {
            "V" => Level::Trace,
            "D" => Level::Debug,
            "I" => Level::Info,
            "W" => Level::Warn,
            "E" => Level::Error,
            "F" | "A" => Level::Critical,
            _ => {
                return Err(ParseError::Invalid {
                    field: "priority",
                    reason: "not one of V D I W E F A",
                })
            }
        };
        // The priority letter is a single byte; the tag starts after the space that follows.
        let tag_at = priority.as_ptr() as usize - line.as_ptr() as usize + 2;
        let tail = line.get(tag_at..).unwrap_or("");
        let (tag, message) = match tail.split_once(": ") {
            Some(split) => split,
            None => (tail.strip_suffix(':').ok_or(ParseError::Missing("tag: "))?, ""),
        };
        let mut record = Record::new(ts, Cow::Borrowed(message));
        record.level = Some(level);
        let tag = tag.trim_end();
        record.service = (!tag.is_empty()).then_some(Cow::Borrowed(tag));
        record.attrs.push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
        record.attrs.push((Cow::Borrowed("tid"), Cow::Borrowed(tid)));
        Ok(record)
    }
}

/// Renders a record as a year-less threadtime line in UTC; `pid`, `tid` from the attrs (else
/// 0), the service as tag padded to 8, levels to the nearest letter.
pub fn render(record: &Record<'_>, out: &mut String) {
    let c = record.ts.to_civil(0);
    let letter = match record.level.unwrap_or(Level::Info) {
        Level::Trace => 'V',
        Level::Debug => 'D',
        Level::Info | Level::Notice => 'I',
        Level::Warn => 'W',
        Level::Error => 'E',
        _ => 'F',
    };
    let _ = write!(
        out,
        "{:02}-{:02} {:02}:{:02}:{:02}.{:03} {:>5} {:>5} {letter} {:<8}: ",
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.micros / 1000,
        attr(record, "pid").unwrap_or("0"),
        attr(record, "tid").unwrap_or("0"),
        record.service.as_deref().unwrap_or(""),
    );
    push_one_line(out, &record.message);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn ctx() -> ParseContext {
        ParseContext {
            reference: Timestamp::parse_rfc3339("2024-06-01T00:00:00Z", 0).expect("valid"),
            ..ParseContext::default()
        }
    }

    #[test]
    fn parses_threadtime() {
        let r = LogcatParser
            .parse(
                "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs: a = b",
                &ctx(),
            )
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-03-17T16:13:38.811Z");
        assert_eq!(
            (r.level, r.service.as_deref()),
            (Some(Level::Debug), Some("WindowManager"))
        );
        assert_eq!(r.message, "printFreezingDisplayLogs: a = b");
        let r = LogcatParser
            .parse("2023-12-31 23:59:59.000   1   1 E Tag     :", &ctx())
            .expect("year form parses");
        assert_eq!(
            (r.ts.to_rfc3339().as_str(), r.message.as_ref()),
            ("2023-12-31T23:59:59Z", "")
        );
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| LogcatParser.parse(line, &ctx()).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("--------- beginning of main"), LAYOUT);
        assert_eq!(err("03-17 16:13:38.811  1702"), LAYOUT);
        assert_eq!(err("03-17 16:13:38.811  x  2395 D T: m").kind(), "pid");
        assert_eq!(err("03-17 16:13:38.811  1  2 Q T: m").kind(), "priority");
        assert!(matches!(
            err("13-17 16:13:38.811  1  2 D T: m"),
            ParseError::Time(_)
        ));
    }
}
