//! JSON lines: one object per line, as written by structured loggers (bunyan, pino, zap, slog,
//! ECS). Well-known keys become the record's fields, every other key an attr. The object is read
//! into borrowed `(key, RawValue)` pairs, so values are sliced from the line unless unescaped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::fields::{role, Role};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{write_rfc3339, Fraction, Timestamp};

/// Parses one JSON object per line.
///
/// - time: the first present of `ts`, `timestamp`, `time`, `@timestamp`, `datetime`, `date`; an RFC
///   3339 string or a number of epoch seconds (milliseconds above 1e11, microseconds above
///   1e14, nanoseconds above 1e17); required.
/// - level: `level`, `severity`, `lvl`, `log.level`, when a known level name (otherwise the
///   key stays an attr).
/// - message: `msg`, `message`, `log`; service: `service`, `app`, `logger`, `service.name`;
///   host: `host`, `hostname`, `host.name` — each when a string.
/// - every other key becomes an attr: strings unescaped, other values as compact JSON text.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

impl LineParser for JsonParser {
    fn name(&self) -> &str {
        "json"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        parse_object(line, ctx, &role, &|text| text.parse().ok())
    }
}

/// Parses a JSON object line: per role, the best-ranked key (by `role_of`) whose value fits
/// fills the record's field; every other key becomes an attr.
///
/// Generic over the lookups, not `dyn`, so the built-in `json` format keeps its inlined key match.
pub(crate) fn parse_object<'a>(
    line: &'a str,
    ctx: &ParseContext,
    role_of: &impl Fn(&str) -> Option<(Role, u8)>,
    level_of: &impl Fn(&str) -> Option<Level>,
) -> Result<Record<'a>, ParseError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err(ParseError::Empty);
    }
    if !trimmed.starts_with('{') {
        return Err(ParseError::Layout("json object"));
    }
    let Entries(entries) =
        serde_json::from_str::<Entries<'a>>(trimmed).map_err(|e| ParseError::Json(e.to_string()))?;

    // Pick, per role, the best-ranked key whose value fits; the level must be a known name.
    let mut chosen: [Option<(u8, usize)>; 5] = [None; 5];
    for (i, (key, value)) in entries.iter().enumerate() {
        let Some((role, rank)) = role_of(key) else {
            continue;
        };
        let slot = &mut chosen[role as usize];
        if slot.is_some_and(|(best, _)| best <= rank) {
            continue;
        }
        let first = value.get().as_bytes().first().copied();
        let fits = match role {
            Role::Time => matches!(first, Some(b'"' | b'-' | b'0'..=b'9')),
            Role::Level => level_text(value).is_some_and(|s| level_of(&s).is_some()),
            _ => first == Some(b'"'),
        };
        if fits {
            *slot = Some((rank, i));
        }
    }
    let pick = |role: Role| chosen[role as usize].and_then(|(_, i)| json_str(entries[i].1));
    let (_, ts_at) = chosen[Role::Time as usize].ok_or(ParseError::Missing("timestamp"))?;
    let ts = parse_time_value(entries[ts_at].1, ctx)?;
    let level = chosen[Role::Level as usize]
        .and_then(|(_, i)| level_text(entries[i].1))
        .and_then(|s| level_of(&s));
    let message = pick(Role::Message).unwrap_or(Cow::Borrowed(""));
    let service = pick(Role::Service);
    let host = pick(Role::Host);
    let mut attrs = Vec::with_capacity(entries.len());
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if chosen.iter().any(|c| c.is_some_and(|(_, j)| j == i)) {
            continue;
        }
        let value = json_str(value).unwrap_or_else(|| compact(value.get()));
        attrs.push((key, value));
    }
    Ok(Record {
        ts,
        host,
        service,
        level,
        message,
        access: None,
        attrs,
    })
}

/// A level value as text: a string's contents, or a number as written (pino's `30`).
fn level_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    json_str(raw).or_else(|| {
        let text = raw.get();
        text.bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(Cow::Borrowed(text))
    })
}

/// The time from a JSON string (RFC 3339, or epoch digits) or number (epoch).
fn parse_time_value(raw: &RawValue, ctx: &ParseContext) -> Result<Timestamp, ParseError> {
    match json_str(raw) {
        Some(s) => Timestamp::parse_rfc3339(&s, ctx.zone).or_else(|e| parse_epoch(&s).ok_or(e.into())),
        None => parse_epoch(raw.get()).ok_or(ParseError::Invalid {
            field: "timestamp",
            reason: "not an epoch number in range",
        }),
    }
}

/// An epoch number as seconds, or milliseconds when above 1e11, or microseconds above 1e14
/// (in magnitude), or nanoseconds above 1e17. Integers are exact (nanoseconds truncated to the
/// microsecond); fractions are rounded to the microsecond.
pub(crate) fn parse_epoch(text: &str) -> Option<Timestamp> {
    const MILLIS_ABOVE: f64 = 1e11;
    const MICROS_ABOVE: f64 = 1e14;
    const NANOS_ABOVE: f64 = 1e17;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    if !digits.is_empty() && digits.len() <= 19 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = digits.parse().ok()?;
        let micros = if n as f64 > NANOS_ABOVE {
            n / 1000
        } else if n as f64 > MICROS_ABOVE {
            n
        } else if n as f64 > MILLIS_ABOVE {
            n * 1000
        } else {
            n * 1_000_000
        };
        return Some(Timestamp(if negative { -micros } else { micros }));
    }
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    let scale = if v.abs() > NANOS_ABOVE {
        1e-3
    } else if v.abs() > MICROS_ABOVE {
        1.0
    } else if v.abs() > MILLIS_ABOVE {
        1e3
    } else {
        1e6
    };
    let micros = (v * scale).round();
    (micros.is_finite() && micros.abs() < 9e18).then_some(Timestamp(micros as i64))
}

/// The contents of a JSON string value: borrowed unless it has escapes; `None` for non-strings.
pub(crate) fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        Some(Cow::Borrowed(inner))
    } else {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    }
}

/// JSON text without the white space between tokens (strings untouched); borrowed when it
/// already is compact.
pub(crate) fn compact(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
    if out.len() == text.len() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// The top-level object as `(key, raw value)` pairs in line order.
pub(crate) struct Entries<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// An object key, borrowed from the line unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Renders a record as one JSON object: `ts` (RFC 3339 with milliseconds), `level`,
/// `service`, `host`, `msg`, then every attr as a string, each key and value escaped by
/// serde_json.
pub fn render(record: &Record<'_>, out: &mut String) {
    out.push_str("{\"ts\":\"");
    write_rfc3339(out, record.ts, 0, Fraction::Millis);
    out.push('"');
    if let Some(level) = record.level {
        out.push_str(",\"level\":\"");
        out.push_str(level.as_str());
        out.push('"');
    }
    if let Some(service) = &record.service {
        out.push_str(",\"service\":");
        push_json_str(out, service);
    }
    if let Some(host) = &record.host {
        out.push_str(",\"host\":");
        push_json_str(out, host);
    }
    out.push_str(",\"msg\":");
    push_json_str(out, &record.message);
    for (key, value) in &record.attrs {
        out.push(',');
        push_json_str(out, key);
        out.push(':');
        push_json_str(out, value);
    }
    out.push('}');
}

/// Appends `s` as a JSON string literal, escaped by serde_json.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    /// Lets serde_json write into a `String`; it writes whole UTF-8 fragments.
    struct StrWriter<'o>(&'o mut String);
    impl std::io::Write for StrWriter<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let s = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
            self.0.push_str(s);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Writing a &str into a String cannot fail.
    let _ = serde_json::to_writer(StrWriter(out), s);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        JsonParser.parse(line, &ParseContext::default())
    }

    fn attrs<'r>(r: &'r Record<'_>) -> Vec<(&'r str, &'r str)> {
        r.attrs.iter().map(|(k, v)| (&**k, &**v)).collect()
    }

    #[test]
    fn parses_fields_and_stringifies_other_values() {
        let line = r#"{"ts":"2026-11-01T12:00:00.123Z","level":"ERROR","service":"api","host":"web-1","msg":"db timeout","user_id":42,"ratio":1.5e3,"retry":true,"ctx":{"a": [1, 2], "s": "x y"},"note":null}"#;
        let r = parse(line).expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T12:00:00.123Z");
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(
            (r.service.as_deref(), r.host.as_deref()),
            (Some("api"), Some("web-1"))
        );
        assert_eq!(r.message, "db timeout");
        assert_eq!(
            attrs(&r),
            [
                ("user_id", "42"),
                ("ratio", "1.5e3"),
                ("retry", "true"),
                ("ctx", r#"{"a":[1,2],"s":"x y"}"#),
                ("note", "null")
            ]
        );
        assert!(
            matches!(r.message, Cow::Borrowed(_)),
            "unescaped strings are borrowed"
        );
    }

    #[test]
    fn epoch_timestamps_by_magnitude() {
        let cases = [
            (r#"{"ts":1793534400}"#, "2026-11-01T12:00:00Z"),
            (r#"{"ts":1793534400.25}"#, "2026-11-01T12:00:00.250Z"),
            (r#"{"ts":1793534400.123456}"#, "2026-11-01T12:00:00.123456Z"),
            (r#"{"ts":1793534400123}"#, "2026-11-01T12:00:00.123Z"),
            (r#"{"ts":1793534400123456}"#, "2026-11-01T12:00:00.123456Z"),
            (r#"{"ts":1793534400123456789}"#, "2026-11-01T12:00:00.123456Z"),
            (r#"{"time":"1793534400123456789"}"#, "2026-11-01T12:00:00.123456Z"),
            (r#"{"ts":1.793534400123e12}"#, "2026-11-01T12:00:00.123Z"),
            (r#"{"ts":"1793534400"}"#, "2026-11-01T12:00:00Z"),
            (r#"{"ts":-1}"#, "1969-12-31T23:59:59Z"),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).expect(line).ts.to_rfc3339(), want, "{line}");
        }
    }

    #[test]
    fn fluent_bits_date_key_is_the_time_when_no_other_is_there() {
        // Fluent Bit's `format json` / `json_lines` with its defaults (`json_date_key date`).
        let record = parse(r#"{"date":1793534400.5,"log":"GET / 200"}"#).expect("parses");
        assert_eq!(record.ts.to_rfc3339(), "2026-11-01T12:00:00.500Z");
        assert_eq!(record.message, "GET / 200");
        let both = parse(r#"{"date":1,"time":"2026-11-01T12:00:00Z","msg":"m"}"#).expect("parses");
        assert_eq!(both.ts.to_rfc3339(), "2026-11-01T12:00:00Z", "`date` ranks last");
    }

    #[test]
    fn ecs_dotted_keys_name_the_level_service_and_host() {
        // As ecs-logging libraries write them, and serve's `_bulk` flattens nested documents.
        let line = r#"{"@timestamp":"2026-11-01T12:00:00Z","log.level":"error","message":"m","service.name":"shop","host.name":"web-1"}"#;
        let record = parse(line).expect("parses");
        assert_eq!(
            (record.level, record.service.as_deref(), record.host.as_deref()),
            (Some(Level::Error), Some("shop"), Some("web-1"))
        );
        let both = parse(r#"{"ts":1,"msg":"m","host.name":"a","hostname":"b"}"#).expect("parses");
        assert_eq!(
            both.host.as_deref(),
            Some("b"),
            "`host.name` ranks after `hostname`"
        );
    }

    #[test]
    fn key_priority_and_fallbacks() {
        let line = r#"{"time":"2026-01-01T00:00:00Z","@timestamp":"2027-01-01T00:00:00Z","ts":"2026-11-01T12:00:00Z","message":"second","msg":"first","lvl":"warn","level":"verbose","logger":"a.b","hostname":"h2"}"#;
        let r = parse(line).expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T12:00:00Z");
        assert_eq!(r.message, "first");
        assert_eq!(
            r.level,
            Some(Level::Warn),
            "an unknown `level` yields to a known `lvl`"
        );
        assert_eq!(
            (r.service.as_deref(), r.host.as_deref()),
            (Some("a.b"), Some("h2"))
        );
        assert_eq!(
            attrs(&r),
            [
                ("time", "2026-01-01T00:00:00Z"),
                ("@timestamp", "2027-01-01T00:00:00Z"),
                ("message", "second"),
                ("level", "verbose")
            ]
        );
        // Numeric levels (pino) and object hosts (ECS) stay attrs.
        let r = parse(r#"{"ts":1,"level":30,"host":{"name":"h"},"log.level":"info","service.name":"svc"}"#)
            .expect("parses");
        assert_eq!(
            (r.level, r.host.as_deref(), r.service.as_deref()),
            (Some(Level::Info), None, Some("svc"))
        );
        assert_eq!(attrs(&r), [("level", "30"), ("host", r#"{"name":"h"}"#)]);
        assert_eq!(r.message, "");
    }

    #[test]
    fn escapes_are_undone() {
        let r = parse(r#"{"ts":0,"msg":"say \"hi\"\n\u00e9","k\u0065y":"a\\b"}"#).expect("parses");
        assert_eq!(r.message, "say \"hi\"\né");
        assert!(matches!(r.message, Cow::Owned(_)));
        assert_eq!(attrs(&r), [("key", r"a\b")]);
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("[1,2]"), ParseError::Layout("json object"));
        assert_eq!(err("hello"), ParseError::Layout("json object"));
        assert_eq!(err(r#"{"msg":"no time"}"#), ParseError::Missing("timestamp"));
        assert_eq!(err(r#"{"ts":true}"#), ParseError::Missing("timestamp"));
        assert!(matches!(err(r#"{"ts":"yesterday"}"#), ParseError::Time(_)));
        assert_eq!(err(r#"{"ts":1e300}"#).kind(), "timestamp");
        assert_eq!(
            err(r#"{"ts":1,"msg":"x""#),
            ParseError::Json("EOF while parsing an object at line 1 column 17".into())
        );
        assert_eq!(
            err(r#"{"ts":1} x"#),
            ParseError::Json("trailing characters at line 1 column 10".into())
        );
    }

    #[test]
    fn render_round_trips_and_escapes() {
        let mut r = Record::new(Timestamp(1_793_534_400_123_000), "tab\there \"q\" \u{1}");
        r.level = Some(Level::Warn);
        r.service = Some(Cow::Borrowed("api"));
        r.attrs.push((Cow::Borrowed("user id"), Cow::Borrowed("ünï")));
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(
            out,
            r#"{"ts":"2026-11-01T12:00:00.123Z","level":"warn","service":"api","msg":"tab\there \"q\" \u0001","user id":"ünï"}"#
        );
        assert_eq!(parse(&out).expect("parses"), r);
    }

    #[test]
    fn compact_keeps_strings() {
        assert_eq!(compact("[1, 2]"), "[1,2]");
        assert_eq!(compact(r#"{ "a b" : "c \" d" }"#), r#"{"a b":"c \" d"}"#);
        assert!(matches!(compact(r#"{"a":"b c"}"#), Cow::Borrowed(_)));
    }
}
