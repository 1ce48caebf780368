//! Redis server logs (3.0 and later):
//! `1:M 01 Jan 2024 12:00:00.123 * Ready to accept connections tcp`, i.e. `pid:role`, local
//! time with milliseconds, a level mark (`.` debug, `-` verbose, `*` notice, `#` warning).

use std::borrow::Cow;
use std::fmt::Write as _;

use super::syslog3164::{attr, push_one_line};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{digits, month_from_abbr, Civil, TimeError};

/// Parses Redis log lines: `pid` and `role` attrs (`M` master, `S` replica, `C` child,
/// `X` sentinel), `dd Mon yyyy hh:mm:ss.mmm` in the context's zone, the level mark, message.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedisParser;

const LAYOUT: ParseError = ParseError::Layout("Redis `pid:role dd Mon yyyy hh:mm:ss.mmm <.-*#> message`");
const TIME: TimeError = TimeError::Layout("dd Mon yyyy hh:mm:ss.mmm");
const MARKS: [(u8, Level); 4] = [
    (b'.', Level::Debug),
    (b'-', Level::Info),
    (b'*', Level::Notice),
    (b'#', Level::Warn),
];

impl LineParser for RedisParser {
    fn name(&self) -> &str {
        "redis"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let (pid, rest) = line.split_once(':').ok_or(LAYOUT)?;
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LAYOUT);
        }
        let b = rest.as_bytes();
        let role = match b.first() {
            Some(b'M' | b'S' | b'C' | b'X') if b.get(1) == Some(&b' ') => &rest[..1],
            _ => return Err(LAYOUT),
        };
        // `dd Mon yyyy hh:mm:ss.mmm` is 24 bytes, then ` <mark>`.
        let t = b.get(2..26).ok_or(ParseError::Time(TIME))?;
        let num = |r: std::ops::Range<usize>| digits(&t[r]).ok_or(TIME);
        if [2, 6, 11].iter().any(|&i| t[i] != b' ') || t[14] != b':' || t[17] != b':' || t[20] != b'.' {
            return Err(ParseError::Time(TIME));
        }
        let civil = Civil {
            year: num(7..11)? as i32,
            month: month_from_abbr(&t[3..6]).ok_or(TIME)?,
            day: num(0..2)? as u8,
            hour: num(12..14)? as u8,
            minute: num(15..17)? as u8,
            second: num(18..20)? as u8,
            micros: num(21..24)? * 1000,
        };
        let ts = ctx.zone.to_timestamp(civil)?;
        let level = match (b.get(26), b.get(27)) {
            (Some(b' '), Some(mark)) => MARKS.iter().find(|(m, _)| m == mark).map(|(_, l)| *l),
            _ => None,
        }
        .ok_or(ParseError::Invalid {
            field: "level",
            reason: "not one of . - * #",
        })?;
        let message = rest.get(29..).unwrap_or("");
        if !matches!(b.get(28), None | Some(b' ')) {
            return Err(LAYOUT);
        }
        let mut record = Record::new(ts, Cow::Borrowed(message));
        record.level = Some(level);
        record.attrs.push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
        record.attrs.push((Cow::Borrowed("role"), Cow::Borrowed(role)));
        Ok(record)
    }
}

/// Renders a record as a Redis line in UTC; `pid` and `role` from the attrs (else `1`, `M`);
/// levels map to the nearest mark (trace as `.`, error and above as `#`).
pub fn render(record: &Record<'_>, out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = record.ts.to_civil(0);
    let mark = match record.level {
        Some(Level::Trace | Level::Debug) => '.',
        Some(Level::Info) => '-',
        None | Some(Level::Notice) => '*',
        Some(_) => '#',
    };
    let _ = write!(
        out,
        "{}:{} {:02} {} {:04} {:02}:{:02}:{:02}.{:03} {mark} ",
        attr(record, "pid").unwrap_or("1"),
        attr(record, "role").unwrap_or("M"),
        c.day,
        MONTHS[usize::from(c.month - 1)],
        c.year,
        c.hour,
        c.minute,
        c.second,
        c.micros / 1000
    );
    push_one_line(out, &record.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        RedisParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_fields() {
        let r =
            parse("6:C 02 Feb 2024 03:04:05.678 # WARNING overcommit_memory is set to 0!").expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2024-02-02T03:04:05.678Z");
        assert_eq!(r.level, Some(Level::Warn));
        assert_eq!(r.message, "WARNING overcommit_memory is set to 0!");
        assert_eq!((&*r.attrs[0].1, &*r.attrs[1].1), ("6", "C"));
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("x:M 02 Feb 2024 03:04:05.678 * hi"), LAYOUT);
        assert_eq!(err("1:Q 02 Feb 2024 03:04:05.678 * hi"), LAYOUT);
        assert!(matches!(
            err("1:M 02 Fob 2024 03:04:05.678 * hi"),
            ParseError::Time(_)
        ));
        assert!(matches!(err("1:M 02 Feb 2024 03:04"), ParseError::Time(_)));
        assert_eq!(err("1:M 02 Feb 2024 03:04:05.678 ! hi").kind(), "level");
    }
}
