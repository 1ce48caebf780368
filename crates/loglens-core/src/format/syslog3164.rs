//! BSD syslog, RFC 3164: `<PRI>Mmm dd hh:mm:ss host tag[pid]: message`, as written by
//! rsyslog and syslog-ng into `/var/log/*` (where the PRI is usually left out). The line has no
//! year (it is inferred from the reference time) and no zone (the context's default applies).

use std::borrow::Cow;
use std::fmt::Write as _;

use memchr::memchr;

use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{
    digits, month_from_abbr, parse_iso_prefix, write_syslog_3164, Civil, TimeError, Timestamp,
};

/// Parses RFC 3164 lines. The PRI is optional (it gives the level and a `facility` attr); the
/// BSD timestamp may also be an RFC 3339 one (rsyslog's high-precision template). The host is
/// left out when the word after the time is already the `tag:`; `-` is no host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syslog3164Parser;

const LAYOUT: ParseError = ParseError::Layout("syslog3164");
const BSD_TIME: TimeError = TimeError::Layout("Mmm dd hh:mm:ss");

impl LineParser for Syslog3164Parser {
    fn name(&self) -> &str {
        "syslog3164"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let b = line.as_bytes();
        let mut pos = 0;
        let mut level = None;
        let mut attrs = Vec::new();
        if b[0] == b'<' {
            let (pri, used) = parse_pri(b)?;
            level = Level::from_syslog_severity(pri & 7);
            attrs.push((Cow::Borrowed("facility"), Cow::Borrowed(facility_name(pri >> 3))));
            pos = used;
        }
        let (ts, used) = if b.get(pos).is_some_and(u8::is_ascii_digit) {
            let rest = &b[pos..];
            // rsyslog's high-precision stamp always has the `T`; a space there is another
            // format (Python logging's asctime), which must not be mistaken for syslog.
            if rest.get(10) != Some(&b'T') {
                return Err(LAYOUT);
            }
            let (ts, tail) = parse_iso_prefix(rest, ctx.zone).map_err(|e| match e {
                TimeError::Layout(_) => LAYOUT,
                e => ParseError::Time(e),
            })?;
            (ts, rest.len() - tail.len())
        } else {
            parse_bsd_time(&b[pos..], ctx)?
        };
        pos += used;
        match b.get(pos) {
            None => return Ok(record(ts, None, None, level, "", attrs)),
            Some(b' ') => pos += 1,
            Some(_) => return Err(ParseError::Time(BSD_TIME)),
        }
        let mut host = None;
        let first = word_at(line, pos);
        if !first.ends_with(':') {
            host = (first != "-").then_some(first);
            pos = (pos + first.len() + 1).min(line.len());
        }
        let tag_word = word_at(line, pos);
        let (service, message) = match split_tag(tag_word) {
            Some((tag, pid)) => {
                if let Some(pid) = pid {
                    attrs.push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
                }
                let service = (!tag.is_empty() && tag != "-").then_some(tag);
                (service, line.get(pos + tag_word.len() + 1..).unwrap_or(""))
            }
            None => (None, &line[pos..]),
        };
        Ok(record(ts, host, service, level, message, attrs))
    }
}

fn record<'a>(
    ts: Timestamp,
    host: Option<&'a str>,
    service: Option<&'a str>,
    level: Option<Level>,
    message: &'a str,
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Record<'a> {
    Record {
        ts,
        host: host.map(Cow::Borrowed),
        service: service.map(Cow::Borrowed),
        level,
        message: Cow::Borrowed(message),
        access: None,
        attrs,
    }
}

/// The text from `pos` to the next space or the end of the line (`pos` is after a space, so on
/// a char boundary).
fn word_at(line: &str, pos: usize) -> &str {
    let rest = line.get(pos..).unwrap_or("");
    match memchr(b' ', rest.as_bytes()) {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// Splits `tag[pid]:`, `tag:` or `tag[pid]` into tag and pid; `None` when the word is no tag.
fn split_tag(word: &str) -> Option<(&str, Option<&str>)> {
    let (body, colon) = match word.strip_suffix(':') {
        Some(body) => (body, true),
        None => (word, false),
    };
    if let Some(inner) = body.strip_suffix(']') {
        if let Some(open) = inner.find('[') {
            return Some((&inner[..open], Some(&inner[open + 1..])));
        }
    }
    colon.then_some((body, None))
}

/// Reads `<PRI>` at the start of `b`: the priority (0–191) and the bytes used.
pub(crate) fn parse_pri(b: &[u8]) -> Result<(u8, usize), ParseError> {
    let invalid = |reason| ParseError::Invalid {
        field: "priority",
        reason,
    };
    if b.first() != Some(&b'<') {
        return Err(ParseError::Missing("<priority>"));
    }
    let end = b
        .iter()
        .take(6)
        .position(|&c| c == b'>')
        .ok_or(invalid("not <0-191>"))?;
    match digits(&b[1..end]) {
        Some(pri) if pri <= 191 && end <= 4 => Ok((pri as u8, end + 1)),
        Some(_) => Err(invalid("greater than 191")),
        None => Err(invalid("not <0-191>")),
    }
}

/// Reads `Mmm dd hh:mm:ss[.fff]` (day padded with a space or zero, or not at all) at the start
/// of `b`: the instant, with the year inferred from `ctx.reference`, and the bytes used.
pub(crate) fn parse_bsd_time(b: &[u8], ctx: &ParseContext) -> Result<(Timestamp, usize), ParseError> {
    let month = b.get(..3).and_then(month_from_abbr).ok_or(LAYOUT)?;
    if b.get(3) != Some(&b' ') {
        return Err(LAYOUT);
    }
    let mut i = if b.get(4) == Some(&b' ') { 5 } else { 4 };
    let day_len = b[i.min(b.len())..]
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_digit())
        .count();
    let day = digits(&b[i..i + day_len]).ok_or(BSD_TIME)? as u8;
    i += day_len;
    let clock = b.get(i..i + 9).ok_or(BSD_TIME)?;
    if clock[0] != b' ' || clock[3] != b':' || clock[6] != b':' {
        return Err(ParseError::Time(BSD_TIME));
    }
    let two = |r: std::ops::Range<usize>| digits(&clock[r]).map(|n| n as u8).ok_or(BSD_TIME);
    let (hour, minute, second) = (two(1..3)?, two(4..6)?, two(7..9)?);
    i += 9;
    let mut micros = 0;
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(ParseError::Time(BSD_TIME));
        }
        micros = b[i + 1..i + 1 + n.min(6)]
            .iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
        micros *= 10u32.pow(6 - n.min(6) as u32);
        i += 1 + n;
    }
    let mut civil = Civil {
        year: 0,
        month,
        day,
        hour,
        minute,
        second,
        micros,
    };
    civil.year = ctx.zone.infer_year(civil, ctx.reference);
    Ok((ctx.zone.to_timestamp(civil)?, i))
}

/// The name of a facility code (0–23), or `"?"` beyond.
fn facility_name(code: u8) -> &'static str {
    FACILITIES.get(usize::from(code)).copied().unwrap_or("?")
}

/// Renders a record as a BSD syslog line: `<PRI>` only when the record has a level (facility
/// from the `facility` attr, else `user`), the time in UTC, the host (`-` if none), then
/// `tag[pid]: message` with the service as tag (`-` if none) and the `pid` attr.
pub fn render(record: &Record<'_>, out: &mut String) {
    if let Some(level) = record.level {
        let facility = attr(record, "facility").and_then(facility_code).unwrap_or(1);
        let _ = write!(
            out,
            "<{}>",
            u16::from(facility) * 8 + u16::from(level.syslog_severity())
        );
    }
    write_syslog_3164(out, record.ts, 0);
    out.push(' ');
    push_token(out, record.host.as_deref(), b" ");
    out.push(' ');
    push_token(out, record.service.as_deref(), b" [:");
    if let Some(pid) = attr(record, "pid") {
        out.push('[');
        push_token(out, Some(pid), b" ]");
        out.push(']');
    }
    out.push_str(": ");
    push_one_line(out, &record.message);
}

/// The facility names of syslog facility codes 0–23.
pub(crate) const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// The facility code of a facility name (`auth`) or number (`4`).
pub(crate) fn facility_code(name: &str) -> Option<u8> {
    match FACILITIES.iter().position(|f| *f == name) {
        Some(i) => Some(i as u8),
        None => name.parse::<u8>().ok().filter(|&n| n < 24),
    }
}

/// The first attr named `key`.
pub(crate) fn attr<'r>(record: &'r Record<'_>, key: &str) -> Option<&'r str> {
    record.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
}

/// Writes a space-free token: `-` for none or empty, and `_` for white space, control
/// characters and any of `forbidden`.
pub(crate) fn push_token(out: &mut String, value: Option<&str>, forbidden: &[u8]) {
    match value {
        None | Some("") => out.push('-'),
        Some(v) => {
            for c in v.chars() {
                let bad =
                    c.is_whitespace() || c.is_control() || (c.is_ascii() && forbidden.contains(&(c as u8)));
                out.push(if bad { '_' } else { c });
            }
        }
    }
}

/// Writes free text on one line: line breaks become spaces.
pub(crate) fn push_one_line(out: &mut String, text: &str) {
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_none() {
        out.push_str(text);
    } else {
        out.extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339, 0).expect("valid reference")
    }

    fn ctx() -> ParseContext {
        ParseContext {
            reference: at("2026-11-01T00:00:00Z"),
            zone: crate::zone::LocalZone::Unknown,
        }
    }

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        Syslog3164Parser.parse(line, &ctx())
    }

    fn attrs<'r>(r: &'r Record<'_>) -> Vec<(&'r str, &'r str)> {
        r.attrs.iter().map(|(k, v)| (&**k, &**v)).collect()
    }

    #[test]
    fn parses_rfc_example_with_pri() {
        let r = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8")
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-10-11T22:14:15Z");
        assert_eq!(r.host.as_deref(), Some("mymachine"));
        assert_eq!(r.service.as_deref(), Some("su"));
        assert_eq!(r.level, Some(Level::Critical));
        assert_eq!(r.message, "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(attrs(&r), [("facility", "auth")]);
    }

    #[test]
    fn parses_rsyslog_file_line_without_pri() {
        let r = parse(
            "Oct  9 13:55:36 web-1 sshd[4242]: Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2",
        )
        .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-10-09T13:55:36Z");
        assert_eq!(r.host.as_deref(), Some("web-1"));
        assert_eq!(r.service.as_deref(), Some("sshd"));
        assert_eq!(r.level, None);
        assert_eq!(attrs(&r), [("pid", "4242")]);
        assert_eq!(
            r.message,
            "Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2"
        );
        // A single space before the day, and a zero-padded day, read the same.
        for line in [
            "Oct 9 13:55:36 web-1 sshd[4242]: x",
            "Oct 09 13:55:36 web-1 sshd[4242]: x",
        ] {
            assert_eq!(parse(line).expect(line).ts, r.ts, "{line}");
        }
    }

    #[test]
    fn infers_the_year_across_new_year() {
        let ctx = ParseContext {
            reference: at("2027-01-01T00:00:30Z"),
            zone: crate::zone::LocalZone::Unknown,
        };
        let dec = Syslog3164Parser
            .parse("Dec 31 23:59:59 h cron[1]: tick", &ctx)
            .expect("parses");
        assert_eq!(dec.ts.to_rfc3339(), "2026-12-31T23:59:59Z");
        let jan = Syslog3164Parser
            .parse("Jan  1 00:00:10 h cron[1]: tock", &ctx)
            .expect("parses");
        assert_eq!(jan.ts.to_rfc3339(), "2027-01-01T00:00:10Z");
    }

    #[test]
    fn local_times_take_the_default_zone() {
        let ctx = ParseContext {
            reference: at("2026-11-01T00:00:00Z"),
            zone: crate::zone::LocalZone::Fixed(2 * 3600),
        };
        let r = Syslog3164Parser
            .parse("Oct  9 13:55:36 h app: m", &ctx)
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-10-09T11:55:36Z");
    }

    #[test]
    fn accepts_rfc3339_timestamps_and_fractions() {
        let r = parse("2026-10-09T13:55:36.123456+02:00 web-1 kernel: [    0.000000] Linux version 6.8")
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-10-09T11:55:36.123456Z");
        assert_eq!(r.service.as_deref(), Some("kernel"));
        assert_eq!(r.message, "[    0.000000] Linux version 6.8");
        let r = parse("Oct  9 13:55:36.250 web-1 app: m").expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-10-09T13:55:36.250Z");
    }

    #[test]
    fn tagless_and_hostless_lines() {
        let r = parse("Oct  9 13:55:36 web-1 -- MARK --").expect("parses");
        assert_eq!((r.host.as_deref(), r.service.as_deref()), (Some("web-1"), None));
        assert_eq!(r.message, "-- MARK --");
        let r = parse("<13>Oct  9 13:55:36 postfix/smtpd[77]: connect from unknown").expect("parses");
        assert_eq!(
            (r.host.as_deref(), r.service.as_deref()),
            (None, Some("postfix/smtpd"))
        );
        assert_eq!(r.level, Some(Level::Notice));
        assert_eq!(attrs(&r), [("facility", "user"), ("pid", "77")]);
        assert_eq!(r.message, "connect from unknown");
        let r = parse("<191>Oct  9 13:55:36 h t:").expect("empty message");
        assert_eq!((r.level, r.message.as_ref()), (Some(Level::Debug), ""));
        assert_eq!(attrs(&r), [("facility", "local7")]);
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(parse("  "), Err(ParseError::Empty));
        assert_eq!(parse("hello world"), Err(LAYOUT));
        assert_eq!(parse(r#"{"ts":1}"#), Err(LAYOUT));
        assert_eq!(
            parse("<192>Oct  9 13:55:36 h t: m").map_err(|e| e.to_string()),
            Err("invalid priority: greater than 191".into())
        );
        assert_eq!(
            parse("<1x>Oct  9 13:55:36 h t: m").map_err(|e| e.kind()),
            Err("priority")
        );
        assert!(matches!(
            parse("Oct 32 13:55:36 h t: m"),
            Err(ParseError::Time(_))
        ));
        assert!(matches!(
            parse("Oct  9 25:55:36 h t: m"),
            Err(ParseError::Time(_))
        ));
        assert!(matches!(parse("Oct  9 13:55 h t: m"), Err(ParseError::Time(_))));
    }

    #[test]
    fn render_round_trips() {
        let line = "<38>Oct  9 13:55:36 web-1 sshd[4242]: Accepted publickey for deploy";
        let r = parse(line).expect("parses");
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(out, line);
        let line = "Oct 19 01:02:03 - -: no level, host or tag";
        let r = parse(line).expect("parses");
        assert_eq!(
            (r.host.as_deref(), r.service.as_deref(), r.level),
            (None, None, None)
        );
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(out, line);
    }
}
