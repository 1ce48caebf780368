//! The fallback format `generic`: a line whose first tokens hold a recognizable timestamp
//! (one of [`SHAPES`], or epoch seconds), then optional pid/thread fields, a level word and the
//! message. Detection tries it only when no specific format reads the sample.

use std::borrow::Cow;

use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{digits, month_from_abbr, Civil, Timestamp};
use crate::zone::LocalZone;

/// Parses any line that starts (within its first [`MAX_PREFIX_TOKENS`] tokens) with a known
/// timestamp shape. Year-less shapes take the year from the context's reference time,
/// zone-less ones the context's zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericParser;

const LAYOUT: ParseError = ParseError::Layout("a line starting with a timestamp");

/// How many leading tokens (a file name, an alert flag, a record id) may precede the
/// timestamp: real logs (OpenStack, BGL, HPC) put a few labels first.
const MAX_PREFIX_TOKENS: usize = 4;

/// How many tokens after the timestamp are searched for a level word.
const LEVEL_WINDOW: usize = 8;

/// Timestamp shapes, most specific first. Letters: `yyyy`/`yy` year, `MM` month, `Mon` month
/// abbreviation, `dd` day (`_d` day that may be space-padded), `Day` weekday abbreviation,
/// `HH`/`mm`/`ss` time, `.f` optional fraction after `.` or `,`, `Z` optional zone
/// (`Z`, `±hh:mm`, `±hhmm`, or ` ±hhmm`); any other byte is literal.
pub const SHAPES: &[&str] = &[
    "yyyy-MM-ddTHH:mm:ss.fZ",       // ISO 8601 / RFC 3339
    "yyyy-MM-dd HH:mm:ss.fZ",       // log4j, Python, Hadoop, OpenStack, Windows CBS
    "yyyy-MM-dd-HH.mm.ss.f",        // BGL
    "yyyy/MM/dd HH:mm:ss.fZ",       // nginx error log
    "yyyy/MM/dd-HH:mm:ss.f",        // Ceph-style
    "yyyy.MM.dd HH:mm:ss.f",        // dotted date
    "yyyyMMddTHHmmss.fZ",           // ISO 8601 basic
    "yyyyMMdd HH:mm:ss.f",          // compact date
    "dd/Mon/yyyy:HH:mm:ssZ",        // Common Log Format
    "[dd/Mon/yyyy:HH:mm:ssZ]",      // CLF, bracketed
    "dd-Mon-yyyy HH:mm:ss.f",       // Tomcat
    "dd Mon yyyy HH:mm:ss.f",       // log4j DATE
    "MM/dd/yyyy HH:mm:ss.f",        // US date
    "[Day Mon _d HH:mm:ss.f yyyy]", // Apache error log
    "Day Mon _d HH:mm:ss.f yyyy",   // ctime
    "Mon _d yyyy HH:mm:ss.f",       // syslog with year
    "Mon _d HH:mm:ss.f",            // BSD syslog
    "yy/MM/dd HH:mm:ss.f",          // Spark
    "yyMMdd HHmmss",                // HDFS
    "MM-dd HH:mm:ss.f",             // Android logcat
    "[MM.dd HH:mm:ss]",             // Proxifier
    "[yyyy-MM-dd HH:mm:ss.fZ]",     // bracketed ISO
];

impl LineParser for GenericParser {
    fn name(&self) -> &str {
        "generic"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let mut start = 0;
        for _ in 0..=MAX_PREFIX_TOKENS {
            let rest = &line[start..];
            if let Some((ts, used, glog_level)) = timestamp_at(rest, ctx) {
                let prefix = line[..start].trim_end();
                return Ok(record(ts, prefix, &rest[used..], glog_level));
            }
            // Skip one token and the white space after it.
            let token_end = rest.find(char::is_whitespace).ok_or(LAYOUT)?;
            let after = &rest[token_end..];
            start += token_end + (after.len() - after.trim_start().len());
        }
        Err(LAYOUT)
    }
}

/// The timestamp at the start of `s`: its instant, the bytes used, and the level a glog
/// prefix letter (`I0101 ...`) names.
fn timestamp_at(s: &str, ctx: &ParseContext) -> Option<(Timestamp, usize, Option<Level>)> {
    let b = s.as_bytes();
    // glog: `Lmmdd hh:mm:ss.uuuuuu`, the level letter glued to the date.
    if let (Some(level), Some(b'0'..=b'9')) = (b.first().and_then(|&c| letter_level(c)), b.get(1)) {
        if let Some((civil, used, _)) = match_shape(&b[1..], "MMdd HH:mm:ss.f") {
            return Some((zoned(civil, false, None, ctx)?, used + 1, Some(level)));
        }
    }
    for shape in SHAPES {
        if let Some((civil, used, offset)) = match_shape(b, shape) {
            if ends_token(b, used) {
                let has_year = shape.contains("yy");
                return Some((zoned(civil, has_year, offset, ctx)?, used, None));
            }
        }
    }
    epoch_at(b)
}

/// Whether the timestamp ends where a token does (so `2026-01-01 10:00:00abc` is no timestamp).
fn ends_token(b: &[u8], used: usize) -> bool {
    b.get(used)
        .is_none_or(|&c| !c.is_ascii_alphanumeric() || c == b'Z')
}

/// Epoch seconds (10 digits, 2001–2286, optional fraction) or milliseconds (13 digits) as a
/// whole token.
fn epoch_at(b: &[u8]) -> Option<(Timestamp, usize, Option<Level>)> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let whole: i64 = std::str::from_utf8(&b[..n]).ok()?.parse().ok()?;
    let (mut micros, mut used) = match n {
        10 => (whole.checked_mul(1_000_000)?, n),
        13 => (whole.checked_mul(1_000)?, n),
        _ => return None,
    };
    if n == 10 && b.get(n) == Some(&b'.') {
        let frac = b[n + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let mut scaled = 0i64;
        for i in 0..6 {
            let d = b.get(n + 1 + i).filter(|_| i < frac).map_or(0, |c| c - b'0');
            scaled = scaled * 10 + i64::from(d);
        }
        micros += scaled;
        used += 1 + frac;
    }
    if b.get(used).is_some_and(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    Some((Timestamp(micros), used, None))
}

/// The instant of a wall-clock time: its own offset, else the context's zone; a year-less
/// time takes the year that puts it at or before the reference.
fn zoned(mut civil: Civil, has_year: bool, offset: Option<i32>, ctx: &ParseContext) -> Option<Timestamp> {
    if !has_year {
        civil.year = ctx.zone.infer_year(civil, ctx.reference);
    }
    match offset {
        Some(offset) => LocalZone::Fixed(offset).to_timestamp(civil).ok(),
        None => ctx.zone.to_timestamp(civil).ok(),
    }
}

/// Matches `shape` (see [`SHAPES`]) at the start of `b`: the civil time, bytes used, and the
/// zone offset when the text has one.
fn match_shape(b: &[u8], shape: &str) -> Option<(Civil, usize, Option<i32>)> {
    let mut civil = Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        micros: 0,
    };
    let mut offset = None;
    let (mut i, mut p) = (0usize, shape.as_bytes());
    let num = |i: usize, n: usize| digits(b.get(i..i + n)?);
    while !p.is_empty() {
        if let Some(tail) = p.strip_prefix(b"yyyy") {
            civil.year = num(i, 4)? as i32;
            (i, p) = (i + 4, tail);
        } else if let Some(tail) = p.strip_prefix(b"yy") {
            civil.year = 2000 + num(i, 2)? as i32;
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b"MM") {
            civil.month = num(i, 2)? as u8;
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b"Mon") {
            civil.month = month_from_abbr(b.get(i..i + 3)?)?;
            (i, p) = (i + 3, tail);
        } else if let Some(tail) = p.strip_prefix(b"Day") {
            b.get(i..i + 3)?
                .iter()
                .all(u8::is_ascii_alphabetic)
                .then_some(())?;
            (i, p) = (i + 3, tail);
        } else if let Some(tail) = p.strip_prefix(b"dd") {
            civil.day = num(i, 2)? as u8;
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b"_d") {
            let day = b.get(i..i + 2)?;
            civil.day = match day {
                [b' ', d] => digits(&[*d])? as u8,
                _ => digits(day)? as u8,
            };
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b"HH") {
            civil.hour = num(i, 2)? as u8;
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b"mm") {
            civil.minute = num(i, 2)? as u8;
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b"ss") {
            civil.second = num(i, 2)? as u8;
            (i, p) = (i + 2, tail);
        } else if let Some(tail) = p.strip_prefix(b".f") {
            if let Some(b'.' | b',') = b.get(i) {
                let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n > 0 {
                    civil.micros = fraction_micros(&b[i + 1..i + 1 + n]);
                    i += 1 + n;
                }
            }
            p = tail;
        } else if let Some(tail) = p.strip_prefix(b"Z") {
            if let Some((off, used)) = zone_at(&b[i..]) {
                offset = Some(off);
                i += used;
            }
            p = tail;
        } else {
            (*b.get(i)? == p[0]).then_some(())?;
            (i, p) = (i + 1, &p[1..]);
        }
    }
    Some((civil, i, offset))
}

/// Up to six fraction digits as microseconds.
fn fraction_micros(frac: &[u8]) -> u32 {
    (0..6).fold(0u32, |acc, i| {
        acc * 10 + frac.get(i).map_or(0, |c| u32::from(c - b'0'))
    })
}

/// A zone suffix: `Z`, `±hh:mm`, `±hhmm`, optionally after one space. Seconds east of UTC and
/// the bytes used.
fn zone_at(b: &[u8]) -> Option<(i32, usize)> {
    let (skip, b) = match b {
        [b' ', rest @ ..] if matches!(rest.first(), Some(b'+' | b'-')) => (1, rest),
        _ => (0, b),
    };
    let sign = match b.first()? {
        b'Z' => return Some((0, skip + 1)),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = digits(b.get(1..3)?)? as i32;
    let (m, used) = if b.get(3) == Some(&b':') {
        (digits(b.get(4..6)?)? as i32, 6)
    } else {
        (digits(b.get(3..5)?)? as i32, 5)
    };
    (h <= 23 && m <= 59).then_some((sign * (h * 3600 + m * 60), skip + used))
}

/// The level an Android/glog single letter names.
fn letter_level(c: u8) -> Option<Level> {
    Some(match c {
        b'V' => Level::Trace,
        b'D' => Level::Debug,
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' => Level::Error,
        b'F' | b'A' => Level::Critical,
        _ => return None,
    })
}

/// The level a token names: a level word, bracketed or followed by punctuation
/// (`[error]`, `INFO:`, `Info,`), or a single letter when `letters` allows it.
fn token_level(token: &str, letters: bool) -> Option<Level> {
    let word = token.trim_matches(|c: char| matches!(c, '[' | ']' | '<' | '>' | ':' | ',' | '(' | ')'));
    if word.len() == 1 {
        return if letters {
            letter_level(word.as_bytes()[0])
        } else {
            None
        };
    }
    // Lowercase message words such as "error" are too common to be a level unless bracketed.
    let shouted = word.bytes().any(|c| c.is_ascii_uppercase()) || token.starts_with('[');
    shouted.then(|| word.parse::<Level>().ok()).flatten()
}

/// Builds the record from what follows the timestamp: leading numbers are pid and thread
/// id, a bracketed token is the thread, then the level word, then the message. A token ending
/// in `:` right after the level is the component (the service).
fn record<'a>(ts: Timestamp, prefix: &'a str, rest: &'a str, glog_level: Option<Level>) -> Record<'a> {
    let mut attrs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
    if !prefix.is_empty() {
        attrs.push((Cow::Borrowed("prefix"), Cow::Borrowed(prefix)));
    }
    let mut level = glog_level;
    let mut message = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
    let mut cursor = message;
    let mut only_numbers = true;
    let mut numbers = 0;
    for _ in 0..LEVEL_WINDOW {
        if level.is_some() {
            break;
        }
        let trimmed = cursor.trim_start();
        let Some(token) = trimmed.split_whitespace().next() else {
            break;
        };
        let after = &trimmed[token.len()..];
        if let Some(found) = token_level(token, only_numbers && numbers > 0) {
            level = Some(found);
            message = after;
            break;
        }
        if token.bytes().all(|c| c.is_ascii_digit()) {
            let key = if numbers == 0 { "pid" } else { "tid" };
            if only_numbers && numbers < 2 {
                attrs.push((Cow::Borrowed(key), Cow::Borrowed(token)));
                numbers += 1;
            }
        } else if token != "-" && token != "|" {
            only_numbers = false;
        }
        cursor = after;
    }
    if level.is_none() {
        attrs.retain(|(k, _)| k == "prefix");
    }
    let mut message = message.trim_start();
    let mut service = None;
    if level.is_some() {
        // log4j's `[thread]` after the level.
        if let Some((first, tail)) = message.split_once(' ') {
            if first.len() > 2 && first.starts_with('[') && first.ends_with(']') {
                attrs.push((Cow::Borrowed("thread"), Cow::Borrowed(&first[1..first.len() - 1])));
                message = tail.trim_start();
            }
        }
        if let Some(m) = message.strip_prefix("- ") {
            message = m.trim_start();
        }
        if let Some((first, tail)) = message.split_once(' ') {
            let named = first.starts_with(|c: char| c.is_ascii_alphabetic());
            if named && first.len() > 1 && first.ends_with(':') && !first.contains("://") {
                service = Some(Cow::Borrowed(&first[..first.len() - 1]));
                message = tail.trim_start();
            }
        }
    }
    Record {
        ts,
        host: None,
        service,
        level,
        message: Cow::Borrowed(message),
        access: None,
        attrs,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2026-06-01T00:00:00Z: the files were last written then.
    const REFERENCE: Timestamp = Timestamp(1_780_272_000_000_000);

    fn ctx() -> ParseContext {
        ParseContext {
            reference: REFERENCE,
            ..ParseContext::default()
        }
    }

    /// (line, RFC 3339 time, level, message) for each shape, written in each system's style.
    const CASES: &[(&str, &str, Option<Level>, &str)] = &[
        (
            "2026-03-04T05:06:07.5+02:00 WARN low disk",
            "2026-03-04T03:06:07.500Z",
            Some(Level::Warn),
            "low disk",
        ),
        (
            "2026-03-04 05:06:07,123 INFO [main] org.example.App: started",
            "2026-03-04T05:06:07.123Z",
            Some(Level::Info),
            "started",
        ),
        (
            "2026-03-04 05:06:07,123 - WARN  [Peer@12] - link lost",
            "2026-03-04T05:06:07.123Z",
            Some(Level::Warn),
            "link lost",
        ),
        (
            "2026-03-04 05:06:07, Info                  CBS    Session started",
            "2026-03-04T05:06:07Z",
            Some(Level::Info),
            "CBS    Session started",
        ),
        (
            "api.log.1 2026-03-04 05:06:07.008 4242 ERROR nova.api [req-1] boom",
            "2026-03-04T05:06:07.008Z",
            Some(Level::Error),
            "nova.api [req-1] boom",
        ),
        (
            "- 1772600767 2026.03.04 R01-M0 2026-03-04-05.06.07.123456 R01-M0 RAS KERNEL FATAL machine check",
            "2026-03-04T05:06:07Z",
            Some(Level::Critical),
            "machine check",
        ),
        (
            "2026/03/04 05:06:07 [error] 12#0: *1 open() failed",
            "2026-03-04T05:06:07Z",
            Some(Level::Error),
            "12#0: *1 open() failed",
        ),
        (
            "2026/03/04-05:06:07.250 worker started",
            "2026-03-04T05:06:07.250Z",
            None,
            "worker started",
        ),
        (
            "2026.03.04 05:06:07 job done",
            "2026-03-04T05:06:07Z",
            None,
            "job done",
        ),
        (
            "20260304T050607Z DEBUG tick",
            "2026-03-04T05:06:07Z",
            Some(Level::Debug),
            "tick",
        ),
        (
            "20260304 05:06:07.1 tick",
            "2026-03-04T05:06:07.100Z",
            None,
            "tick",
        ),
        (
            "04/Mar/2026:05:06:07 +0100 something",
            "2026-03-04T04:06:07Z",
            None,
            "something",
        ),
        (
            "[04/Mar/2026:05:06:07 +0000] GET /",
            "2026-03-04T05:06:07Z",
            None,
            "GET /",
        ),
        (
            "04-Mar-2026 05:06:07.123 SEVERE [main] start failed",
            "2026-03-04T05:06:07.123Z",
            Some(Level::Error),
            "start failed",
        ),
        (
            "04 Mar 2026 05:06:07,123 ERROR x: y",
            "2026-03-04T05:06:07.123Z",
            Some(Level::Error),
            "y",
        ),
        (
            "03/04/2026 05:06:07 backup ok",
            "2026-03-04T05:06:07Z",
            None,
            "backup ok",
        ),
        (
            "[Wed Mar 04 05:06:07 2026] [notice] child pid 7 exit",
            "2026-03-04T05:06:07Z",
            Some(Level::Notice),
            "child pid 7 exit",
        ),
        (
            "[Wed Mar 04 05:06:07.902022 2026] [core:error] [pid 9] AH00037",
            "2026-03-04T05:06:07.902022Z",
            None,
            "[core:error] [pid 9] AH00037",
        ),
        (
            "Wed Mar  4 05:06:07 2026 cron ran",
            "2026-03-04T05:06:07Z",
            None,
            "cron ran",
        ),
        (
            "Mar  4 2026 05:06:07 router up",
            "2026-03-04T05:06:07Z",
            None,
            "router up",
        ),
        (
            "Mar  4 05:06:07 box sshd[1]: hi",
            "2026-03-04T05:06:07Z",
            None,
            "box sshd[1]: hi",
        ),
        (
            "26/03/04 05:06:07 INFO storage.BlockManager: Found block rdd_2_3 locally",
            "2026-03-04T05:06:07Z",
            Some(Level::Info),
            "Found block rdd_2_3 locally",
        ),
        (
            "260304 050607 148 INFO dfs.DataNode: Receiving block",
            "2026-03-04T05:06:07Z",
            Some(Level::Info),
            "Receiving block",
        ),
        (
            "03-04 05:06:07.811  1702  2395 D WindowManager: relayout",
            "2026-03-04T05:06:07.811Z",
            Some(Level::Debug),
            "relayout",
        ),
        (
            "I0304 05:06:07.123456 31 server.cc:42] listening",
            "2026-03-04T05:06:07.123456Z",
            Some(Level::Info),
            "31 server.cc:42] listening",
        ),
        (
            "[03.04 05:06:07] app.exe - host:80 open through proxy",
            "2026-03-04T05:06:07Z",
            None,
            "app.exe - host:80 open through proxy",
        ),
        (
            "[2026-03-04 05:06:07.5] WARNING retry",
            "2026-03-04T05:06:07.500Z",
            Some(Level::Warn),
            "retry",
        ),
        (
            "1772600767.25 worker tick",
            "2026-03-04T05:06:07.250Z",
            None,
            "worker tick",
        ),
        (
            "1772600767250 worker tick",
            "2026-03-04T05:06:07.250Z",
            None,
            "worker tick",
        ),
        (
            "4711 node-7 unix.hw state_change 1772600767 1 Component changed",
            "2026-03-04T05:06:07Z",
            None,
            "1 Component changed",
        ),
    ];

    #[test]
    fn every_shape_parses() {
        for &(line, ts, level, message) in CASES {
            let r = GenericParser
                .parse(line, &ctx())
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(r.ts.to_rfc3339(), ts, "{line}");
            assert_eq!(r.level, level, "{line}");
            assert_eq!(r.message, message, "{line}");
        }
        assert!(SHAPES.len() + 1 >= 20, "at least 20 shapes with epoch seconds");
    }

    #[test]
    fn extracts_pid_thread_and_component() {
        let r = GenericParser
            .parse(
                "03-04 05:06:07.811  1702  2395 W PowerManager: wake lock held",
                &ctx(),
            )
            .unwrap();
        assert_eq!(r.level, Some(Level::Warn));
        assert_eq!(r.service.as_deref(), Some("PowerManager"));
        let attrs: Vec<(&str, &str)> = r.attrs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(attrs, [("pid", "1702"), ("tid", "2395")]);
    }

    #[test]
    fn year_less_times_and_zones_follow_the_context() {
        // December lines read in January belong to the previous year.
        let january = ParseContext {
            reference: Timestamp(1_767_312_000_000_000), // 2026-01-02
            zone: LocalZone::Fixed(3600),
        };
        let r = GenericParser
            .parse("12-31 23:00:00.000 1 2 I Tag: x", &january)
            .unwrap();
        assert_eq!(r.ts.to_rfc3339(), "2025-12-31T22:00:00Z");
        let r = GenericParser
            .parse("2026-01-01 10:00:00 INFO x", &january)
            .unwrap();
        assert_eq!(r.ts.to_rfc3339(), "2026-01-01T09:00:00Z");
    }

    #[test]
    fn rejects_lines_without_a_timestamp() {
        for line in [
            "",
            "   ",
            "hello world",
            "at org.example.Main.run(Main.java:42)",
            "2026-13-04 05:06:07 bad month",
            "2026-03-04 05:06:07x glued",
            "12345 short number",
            "a b c d e f 2026-03-04 05:06:07 too far",
        ] {
            assert!(GenericParser.parse(line, &ctx()).is_err(), "{line:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,80}") {
            let _ = GenericParser.parse(&line, &ctx());
        }

        #[test]
        fn never_panics_near_timestamps(tail in "[0-9 :.,+\\-TZ/\\[\\]A-Za-z]{0,40}") {
            for head in ["2026-03-04", "03-04 05:", "[Wed Mar", "I0304 ", "1772600767", "260304 0"] {
                let _ = GenericParser.parse(&format!("{head}{tail}"), &ctx());
            }
        }
    }
}
