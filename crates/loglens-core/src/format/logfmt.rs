//! logfmt: `key=value key2="quoted \"value\"" flag` pairs, as written by Heroku, Go's
//! `log/slog` text handler and logrus. Well-known keys become the record's fields, the rest attrs.

use std::borrow::Cow;

use memchr::memchr2;

use super::fields::{role, Role};
use super::jsonl::parse_epoch;
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{write_rfc3339, Fraction, Timestamp};

/// Parses logfmt lines.
///
/// - time: the first present of `ts`, `time`, `timestamp` (RFC 3339, or epoch digits); required.
/// - level: `level`, `lvl`, `severity`, when a known level name (otherwise it stays an attr).
/// - message: `msg`, `message`; service: `service`, `app`; host: `host`.
/// - every other pair becomes an attr; a bare `flag` an attr with an empty value.
///
/// The first token must be a `key=value` pair. Quoted values undo `\"`, `\\`, `\n`, `\r`, `\t`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogfmtParser;

const LAYOUT: ParseError = ParseError::Layout("logfmt");

impl LineParser for LogfmtParser {
    fn name(&self) -> &str {
        "logfmt"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        parse_pairs(line, ctx, &role, &|text| text.parse().ok())
    }
}

/// Parses a logfmt line: per role, the best-ranked key (by `role_of`) whose value fits fills
/// the record's field; every other pair becomes an attr. Generic over the lookups, not `dyn`,
/// so the built-in `logfmt` format keeps its inlined key match.
pub(crate) fn parse_pairs<'a>(
    line: &'a str,
    ctx: &ParseContext,
    role_of: &impl Fn(&str) -> Option<(Role, u8)>,
    level_of: &impl Fn(&str) -> Option<Level>,
) -> Result<Record<'a>, ParseError> {
    {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::with_capacity(12);
        let mut chosen: [Option<(u8, usize)>; 5] = [None; 5];
        let b = line.as_bytes();
        let mut pos = 0;
        loop {
            while matches!(b.get(pos), Some(b' ' | b'\t')) {
                pos += 1;
            }
            if pos >= b.len() {
                break;
            }
            let start = pos;
            while !matches!(b.get(pos), None | Some(b' ' | b'\t' | b'=')) {
                pos += 1;
            }
            let key = &line[start..pos];
            let value = if b.get(pos) == Some(&b'=') {
                if key.is_empty() {
                    return Err(if pairs.is_empty() {
                        LAYOUT
                    } else {
                        invalid("a pair has no key")
                    });
                }
                pos += 1;
                if b.get(pos) == Some(&b'"') {
                    let (value, used) = quoted(&line[pos + 1..])?;
                    pos += 1 + used;
                    if !matches!(b.get(pos), None | Some(b' ' | b'\t')) {
                        return Err(invalid("text right after a closing quote"));
                    }
                    value
                } else {
                    let vstart = pos;
                    while !matches!(b.get(pos), None | Some(b' ' | b'\t')) {
                        pos += 1;
                    }
                    Cow::Borrowed(&line[vstart..pos])
                }
            } else if pairs.is_empty() {
                return Err(LAYOUT);
            } else {
                Cow::Borrowed("")
            };
            if let Some((role, rank)) = role_of(key) {
                let fits = match role {
                    Role::Level => level_of(&value).is_some(),
                    _ => true,
                };
                let slot = &mut chosen[role as usize];
                if fits && slot.is_none_or(|(best, _)| rank < best) {
                    *slot = Some((rank, pairs.len()));
                }
            }
            pairs.push((Cow::Borrowed(key), value));
        }

        let (_, ts_at) = chosen[Role::Time as usize].ok_or(ParseError::Missing("timestamp"))?;
        let ts_text = &pairs[ts_at].1;
        let ts = Timestamp::parse_rfc3339(ts_text, ctx.zone)
            .or_else(|e| parse_epoch(ts_text).ok_or(ParseError::Time(e)))?;
        let level = chosen[Role::Level as usize].and_then(|(_, i)| level_of(&pairs[i].1));
        // Take the chosen pairs out, last first so the other indices stay valid.
        let mut taken: [Option<Cow<'a, str>>; 5] = Default::default();
        let mut order: Vec<(usize, usize)> = chosen
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.map(|(_, i)| (i, slot)))
            .collect();
        order.sort_unstable_by(|a, b| b.cmp(a));
        for (i, slot) in order {
            taken[slot] = Some(pairs.remove(i).1);
        }
        let [_, _, message, service, host] = taken;
        Ok(Record {
            ts,
            host,
            service,
            level,
            message: message.unwrap_or(Cow::Borrowed("")),
            access: None,
            attrs: pairs,
        })
    }
}

fn invalid(reason: &'static str) -> ParseError {
    ParseError::Invalid {
        field: "logfmt pair",
        reason,
    }
}

/// A quoted value's contents (after the opening quote) up to the closing quote: the value,
/// borrowed unless it had escapes, and the bytes used including the closing quote.
fn quoted(s: &str) -> Result<(Cow<'_, str>, usize), ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    loop {
        let at = memchr2(b'"', b'\\', b.get(i..).unwrap_or_default())
            .ok_or(invalid("unterminated quoted value"))?
            + i;
        if b[at] == b'"' {
            let raw = &s[..at];
            let value = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            return Ok((value, at + 1));
        }
        escaped = true;
        i = at + 2;
    }
}

/// Undoes `\"`, `\\`, `\n`, `\r` and `\t`; other backslashes stay as written.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(e @ ('"' | '\\')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Renders a record as logfmt: `ts=<RFC 3339> level=… service=… host=… msg=…` then the attrs.
/// Values are quoted when they are empty or contain white space, `=` or `"`, with `"`, `\`
/// and line breaks escaped; keys have such characters replaced by `_`.
pub fn render(record: &Record<'_>, out: &mut String) {
    out.push_str("ts=");
    write_rfc3339(out, record.ts, 0, Fraction::Auto);
    if let Some(level) = record.level {
        out.push_str(" level=");
        out.push_str(level.as_str());
    }
    if let Some(service) = &record.service {
        out.push_str(" service=");
        push_value(out, service);
    }
    if let Some(host) = &record.host {
        out.push_str(" host=");
        push_value(out, host);
    }
    out.push_str(" msg=");
    push_value(out, &record.message);
    for (key, value) in &record.attrs {
        out.push(' ');
        if key.is_empty() {
            out.push('_');
        }
        for c in key.chars() {
            out.push(if c <= ' ' || c == '=' || c == '"' || c.is_whitespace() {
                '_'
            } else {
                c
            });
        }
        out.push('=');
        push_value(out, value);
    }
}

/// Writes a logfmt value, quoted and escaped when needed.
fn push_value(out: &mut String, value: &str) {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c.is_whitespace() || c == '\u{7f}');
    if !needs_quotes {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        LogfmtParser.parse(line, &ParseContext::default())
    }

    fn attrs<'r>(r: &'r Record<'_>) -> Vec<(&'r str, &'r str)> {
        r.attrs.iter().map(|(k, v)| (&**k, &**v)).collect()
    }

    #[test]
    fn parses_fields_and_attrs() {
        let line = r#"time=2026-11-01T12:00:00.5+01:00 level=WARN app=api host=web-1 msg="slow request" path=/a?b=c status=200 dur=1.2ms"#;
        let r = parse(line).expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T11:00:00.500Z");
        assert_eq!(r.level, Some(Level::Warn));
        assert_eq!(
            (r.service.as_deref(), r.host.as_deref()),
            (Some("api"), Some("web-1"))
        );
        assert_eq!(r.message, "slow request");
        assert_eq!(
            attrs(&r),
            [("path", "/a?b=c"), ("status", "200"), ("dur", "1.2ms")]
        );
    }

    #[test]
    fn quoting_escapes_and_bare_keys() {
        let line = r#"ts=2026-11-01T12:00:00Z msg="say \"hi\" \\ ok\n" empty="" flag  	lvl=loud ts2=x"#;
        let r = parse(line).expect("parses");
        assert_eq!(r.message, "say \"hi\" \\ ok\n");
        assert!(matches!(r.message, Cow::Owned(_)));
        assert_eq!(r.level, None);
        assert_eq!(
            attrs(&r),
            [("empty", ""), ("flag", ""), ("lvl", "loud"), ("ts2", "x")]
        );
    }

    #[test]
    fn key_priority() {
        let r = parse("timestamp=2020-01-01T00:00:00Z ts=2026-11-01T12:00:00Z message=b msg=a severity=error level=info")
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T12:00:00Z");
        assert_eq!((r.message.as_ref(), r.level), ("a", Some(Level::Info)));
        assert_eq!(
            attrs(&r),
            [
                ("timestamp", "2020-01-01T00:00:00Z"),
                ("message", "b"),
                ("severity", "error")
            ]
        );
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(" "), ParseError::Empty);
        assert_eq!(err("hello world ts=2026-11-01T12:00:00Z"), LAYOUT);
        assert_eq!(err("=x ts=2026-11-01T12:00:00Z"), LAYOUT);
        assert_eq!(err("level=info msg=hi"), ParseError::Missing("timestamp"));
        assert!(matches!(err("ts=yesterday msg=hi"), ParseError::Time(_)));
        assert_eq!(
            err(r#"ts=2026-11-01T12:00:00Z msg="unterminated"#).kind(),
            "logfmt pair"
        );
        assert_eq!(err(r#"ts=2026-11-01T12:00:00Z msg="a"b"#).kind(), "logfmt pair");
        assert_eq!(err("ts=2026-11-01T12:00:00Z =v").kind(), "logfmt pair");
    }

    #[test]
    fn render_quotes_only_when_needed() {
        let mut r = Record::new(Timestamp(1_793_534_400_000_000), "a=b \"c\" \\ d");
        r.level = Some(Level::Error);
        r.host = Some(Cow::Borrowed("web-1"));
        r.attrs.push((Cow::Borrowed("empty"), Cow::Borrowed("")));
        r.attrs.push((Cow::Borrowed("path"), Cow::Borrowed(r"/a\b")));
        r.attrs.push((Cow::Borrowed("multi"), Cow::Borrowed("x\ny")));
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(
            out,
            r#"ts=2026-11-01T12:00:00Z level=error host=web-1 msg="a=b \"c\" \\ d" empty="" path=/a\b multi="x\ny""#
        );
        assert_eq!(parse(&out).expect("parses"), r);
    }
}
