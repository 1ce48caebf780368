//! Apache httpd error logs, 2.4 (`[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35:tid 4]
//! [client 10.0.0.1:5] AH00124: message`) and 2.2 (`[Wed Oct 11 14:32:52 2000] [error] msg`).

use std::borrow::Cow;
use std::fmt::Write as _;

use super::syslog3164::{attr, push_one_line};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{digits, month_from_abbr, Civil, TimeError};

/// Parses Apache error log lines: the bracketed local time (microseconds optional), then the
/// bracketed fields the default `ErrorLogFormat` writes, in any order: `[module:level]` or
/// `[level]` (the service is the module), `[pid N:tid M]` (`pid`, `tid` attrs) and
/// `[client addr]` (`client` attr); the rest is the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApacheErrorParser;

const LAYOUT: ParseError =
    ParseError::Layout("Apache error log `[Www Mmm dd hh:mm:ss yyyy] [level] message`");
const TIME: TimeError = TimeError::Layout("Www Mmm dd hh:mm:ss[.ffffff] yyyy");
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl LineParser for ApacheErrorParser {
    fn name(&self) -> &str {
        "apache_error"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let (time, mut rest) = line
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .ok_or(LAYOUT)?;
        if !time.get(..3).is_some_and(|d| DAYS.contains(&d)) {
            return Err(LAYOUT);
        }
        let ts = ctx.zone.to_timestamp(parse_time(time.as_bytes())?)?;
        let mut record = Record::new(ts, "");
        let mut level_seen = false;
        while let Some((inner, tail)) = rest
            .strip_prefix(' ')
            .unwrap_or(rest)
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
        {
            if let Some(ids) = inner.strip_prefix("pid ") {
                let (pid, tid) = match ids.split_once(":tid ") {
                    Some((pid, tid)) => (pid, Some(tid)),
                    None => (ids, None),
                };
                record.attrs.push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
                if let Some(tid) = tid {
                    record.attrs.push((Cow::Borrowed("tid"), Cow::Borrowed(tid)));
                }
            } else if let Some(client) = inner.strip_prefix("client ") {
                record
                    .attrs
                    .push((Cow::Borrowed("client"), Cow::Borrowed(client)));
            } else if !level_seen {
                let (module, level) = match inner.rsplit_once(':') {
                    Some((module, level)) => (Some(module), level),
                    None => (None, inner),
                };
                record.level = Some(level_of(level)?);
                record.service = module.filter(|m| !m.is_empty()).map(Cow::Borrowed);
                level_seen = true;
            } else {
                break;
            }
            rest = tail;
        }
        if !level_seen {
            return Err(ParseError::Missing("[level]"));
        }
        record.message = Cow::Borrowed(rest.strip_prefix(' ').unwrap_or(rest));
        Ok(record)
    }
}

/// Apache's level names: syslog's, plus `trace1`–`trace8`.
fn level_of(name: &str) -> Result<Level, ParseError> {
    if name
        .strip_prefix("trace")
        .is_some_and(|n| matches!(n, "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8"))
    {
        return Ok(Level::Trace);
    }
    name.parse::<Level>().map_err(|_| ParseError::Invalid {
        field: "level",
        reason: "not an Apache log level",
    })
}

/// `Www Mmm dd hh:mm:ss[.ffffff] yyyy`.
fn parse_time(t: &[u8]) -> Result<Civil, TimeError> {
    if t.len() < 24 || t[3] != b' ' || t[7] != b' ' || t[10] != b' ' || t[13] != b':' || t[16] != b':' {
        return Err(TIME);
    }
    let num = |s: &[u8]| digits(s).ok_or(TIME);
    let day = match t[8] {
        b' ' => num(&t[9..10])?,
        _ => num(&t[8..10])?,
    };
    let (micros, year_at) = match t[19] {
        b'.' => (num(t.get(20..26).ok_or(TIME)?)?, 27),
        b' ' => (0, 20),
        _ => return Err(TIME),
    };
    let year = t.get(year_at..).filter(|y| y.len() == 4).ok_or(TIME)?;
    Ok(Civil {
        year: num(year)? as i32,
        month: month_from_abbr(&t[4..7]).ok_or(TIME)?,
        day: day as u8,
        hour: num(&t[11..13])? as u8,
        minute: num(&t[14..16])? as u8,
        second: num(&t[17..19])? as u8,
        micros,
    })
}

/// Renders a record as an Apache 2.4 error line in UTC with microseconds; the service as
/// module (else `core`), `pid`/`tid`/`client` from the attrs.
pub fn render(record: &Record<'_>, out: &mut String) {
    let c = record.ts.to_civil(0);
    let weekday = (record.ts.0.div_euclid(86_400_000_000) + 4).rem_euclid(7) as usize;
    let _ = write!(
        out,
        "[{} {} {:02} {:02}:{:02}:{:02}.{:06} {:04}] [{}:{}]",
        DAYS[weekday],
        MONTHS[usize::from(c.month - 1)],
        c.day,
        c.hour,
        c.minute,
        c.second,
        c.micros,
        c.year,
        record.service.as_deref().unwrap_or("core"),
        match record.level.unwrap_or(Level::Info) {
            Level::Warn => "warn",
            Level::Critical => "crit",
            Level::Emergency => "emerg",
            Level::Trace => "trace1",
            other => other.as_str(),
        }
    );
    if let Some(pid) = attr(record, "pid") {
        let _ = write!(out, " [pid {pid}");
        if let Some(tid) = attr(record, "tid") {
            let _ = write!(out, ":tid {tid}");
        }
        out.push(']');
    }
    if let Some(client) = attr(record, "client") {
        let _ = write!(out, " [client {client}]");
    }
    out.push(' ');
    push_one_line(out, &record.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        ApacheErrorParser.parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_24_and_22_layouts() {
        let r = parse("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:3344] AH00124: Request exceeded the limit")
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2000-10-11T14:32:52.123456Z");
        assert_eq!(
            (r.level, r.service.as_deref()),
            (Some(Level::Error), Some("core"))
        );
        assert_eq!(r.message, "AH00124: Request exceeded the limit");
        assert_eq!(r.attrs.len(), 3);
        let r = parse("[Sun Mar  7 16:02:00 2004] [notice] Apache/1.3.29 configured").expect("2.2 parses");
        assert_eq!((r.level, r.service), (Some(Level::Notice), None));
        assert_eq!(r.ts.to_rfc3339(), "2004-03-07T16:02:00Z");
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("[client 1.2.3.4] x"), LAYOUT);
        assert!(matches!(
            err("[Wed Oct 11 14:32 2000] [error] x"),
            ParseError::Time(_)
        ));
        assert_eq!(
            err("[Wed Oct 11 14:32:52 2000] x"),
            ParseError::Missing("[level]")
        );
        assert_eq!(err("[Wed Oct 11 14:32:52 2000] [core:loud] x").kind(), "level");
    }
}
