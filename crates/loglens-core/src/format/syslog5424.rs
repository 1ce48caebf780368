//! IETF syslog, RFC 5424: `<PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID [SD…] MSG`, with `-`
//! for absent header fields. Structured-data parameters land in attrs as `sdid.param`.

use std::borrow::Cow;
use std::fmt::Write as _;

use memchr::{memchr, memchr2};

use super::syslog3164::{attr, facility_code, parse_pri, push_one_line, push_token, FACILITIES};
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Level, Record};
use crate::time::{write_rfc3339, Fraction, Timestamp};

/// Parses RFC 5424 lines. PROCID and MSGID land in attrs `pid` and `msgid`, the facility in
/// `facility`, each structured-data parameter in `sdid.param` (unescaped); a UTF-8 BOM before
/// the message is dropped. A NILVALUE timestamp is an error: the record needs a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syslog5424Parser;

const LAYOUT: ParseError = ParseError::Layout("syslog5424");

type Attrs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

impl LineParser for Syslog5424Parser {
    fn name(&self) -> &str {
        "syslog5424"
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let (pri, used) = parse_pri(line.as_bytes()).map_err(|e| match e {
            ParseError::Missing(_) => LAYOUT,
            e => e,
        })?;
        let mut c = Cursor { line, pos: used };
        let version = c.word().ok_or(LAYOUT)?;
        if version.len() > 2 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(LAYOUT);
        }
        let time = c.word().ok_or(ParseError::Missing("timestamp"))?;
        if time == "-" {
            return Err(ParseError::Missing("timestamp"));
        }
        let ts = Timestamp::parse_rfc3339(time, ctx.zone)?;
        let host = nil(c.word().ok_or(ParseError::Missing("hostname"))?);
        let app = nil(c.word().ok_or(ParseError::Missing("app-name"))?);
        let procid = nil(c.word().ok_or(ParseError::Missing("procid"))?);
        let msgid = nil(c.word().ok_or(ParseError::Missing("msgid"))?);
        let mut attrs: Attrs<'a> = Vec::new();
        let facility = FACILITIES.get(usize::from(pri >> 3)).copied().unwrap_or("?");
        attrs.push((Cow::Borrowed("facility"), Cow::Borrowed(facility)));
        if let Some(pid) = procid {
            attrs.push((Cow::Borrowed("pid"), Cow::Borrowed(pid)));
        }
        if let Some(msgid) = msgid {
            attrs.push((Cow::Borrowed("msgid"), Cow::Borrowed(msgid)));
        }
        match c.rest().first() {
            Some(b'-') => c.pos += 1,
            Some(b'[') => c.structured_data(&mut attrs)?,
            _ => return Err(ParseError::Missing("structured data")),
        }
        let message = match c.rest().first() {
            None => "",
            Some(b' ') => {
                let msg = &line[c.pos + 1..];
                msg.strip_prefix('\u{feff}').unwrap_or(msg)
            }
            Some(_) => return Err(sd_error("no space after structured data")),
        };
        Ok(Record {
            ts,
            host: host.map(Cow::Borrowed),
            service: app.map(Cow::Borrowed),
            level: Level::from_syslog_severity(pri & 7),
            message: Cow::Borrowed(message),
            access: None,
            attrs,
        })
    }
}

fn nil(field: &str) -> Option<&str> {
    (field != "-").then_some(field)
}

fn sd_error(reason: &'static str) -> ParseError {
    ParseError::Invalid {
        field: "structured data",
        reason,
    }
}

/// A cursor over the line; every position it stops at is next to an ASCII delimiter.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.line.as_bytes()[self.pos..]
    }

    /// A non-empty header field ending at a space, consuming the space.
    fn word(&mut self) -> Option<&'a str> {
        let end = memchr(b' ', self.rest())?;
        let word = &self.line[self.pos..self.pos + end];
        self.pos += end + 1;
        (!word.is_empty()).then_some(word)
    }

    /// An SD-NAME (SD-ID or PARAM-NAME): up to a space, `=`, `]` or `"`.
    fn sd_name(&mut self) -> Result<&'a str, ParseError> {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| !matches!(b, b' ' | b'=' | b']' | b'"'))
            .count();
        if n == 0 {
            return Err(sd_error("empty name"));
        }
        let name = &self.line[self.pos..self.pos + n];
        self.pos += n;
        Ok(name)
    }

    /// One or more `[id name="value" …]` elements; each parameter becomes an `id.name` attr.
    fn structured_data(&mut self, attrs: &mut Attrs<'a>) -> Result<(), ParseError> {
        while self.rest().first() == Some(&b'[') {
            self.pos += 1;
            let id = self.sd_name()?;
            loop {
                match self.rest().first() {
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b' ') => self.pos += 1,
                    _ => return Err(sd_error("unterminated element")),
                }
                let name = self.sd_name()?;
                match self.rest().get(..2) {
                    Some(b"=\"") => {}
                    None => return Err(sd_error("unterminated element")),
                    Some(_) => return Err(sd_error("parameter without =\"value\"")),
                }
                self.pos += 2;
                let value = self.sd_value()?;
                let mut key = String::with_capacity(id.len() + 1 + name.len());
                key.push_str(id);
                key.push('.');
                key.push_str(name);
                attrs.push((Cow::Owned(key), value));
            }
        }
        Ok(())
    }

    /// A parameter value after its opening quote, consuming the closing quote; unescaped (and
    /// so owned) only when it contains a backslash.
    fn sd_value(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let rest = self.rest();
        let mut i = 0;
        let mut escaped = false;
        loop {
            let at = memchr2(b'"', b'\\', rest.get(i..).unwrap_or_default())
                .ok_or(sd_error("unterminated value"))?
                + i;
            if rest[at] == b'"' {
                let raw = &self.line[self.pos..self.pos + at];
                self.pos += at + 1;
                return Ok(if escaped {
                    Cow::Owned(unescape_sd(raw))
                } else {
                    Cow::Borrowed(raw)
                });
            }
            escaped = true;
            i = at + 2;
        }
    }
}

/// Undoes `\"`, `\\` and `\]`; any other backslash stays, as RFC 5424 asks.
fn unescape_sd(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('"' | '\\' | ']')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Renders a record as an RFC 5424 line. The PRI takes the `facility` attr (else `user`) and
/// the level (else `info`); `pid` and `msgid` attrs fill PROCID and MSGID; attrs named
/// `sdid.param` become structured data (grouped by SD-ID, values escaped); other attrs are
/// left out.
pub fn render(record: &Record<'_>, out: &mut String) {
    let facility = attr(record, "facility").and_then(facility_code).unwrap_or(1);
    let severity = record.level.map_or(6, Level::syslog_severity);
    let _ = write!(out, "<{}>1 ", u16::from(facility) * 8 + u16::from(severity));
    write_rfc3339(out, record.ts, 0, Fraction::Auto);
    out.push(' ');
    push_token(out, record.host.as_deref(), b"");
    out.push(' ');
    push_token(out, record.service.as_deref(), b"");
    out.push(' ');
    push_token(out, attr(record, "pid"), b"");
    out.push(' ');
    push_token(out, attr(record, "msgid"), b"");
    out.push(' ');
    let mut ids: Vec<&str> = Vec::new();
    for (key, _) in &record.attrs {
        if let Some((id, _)) = key.split_once('.') {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if ids.is_empty() {
        out.push('-');
    }
    for id in ids {
        out.push('[');
        push_token(out, Some(id), SD_NAME_FORBIDDEN);
        for (key, value) in &record.attrs {
            let Some((kid, param)) = key.split_once('.') else {
                continue;
            };
            if kid != id {
                continue;
            }
            out.push(' ');
            push_token(out, Some(param), SD_NAME_FORBIDDEN);
            out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '"' | '\\' | ']' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\n' | '\r' => out.push(' '),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push(']');
    }
    if !record.message.is_empty() {
        out.push(' ');
        push_one_line(out, &record.message);
    }
}

/// Bytes an SD-ID or PARAM-NAME may not contain (besides white space).
const SD_NAME_FORBIDDEN: &[u8] = b"=]\"";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        Syslog5424Parser.parse(line, &ParseContext::default())
    }

    fn attrs<'r>(r: &'r Record<'_>) -> Vec<(&'r str, &'r str)> {
        r.attrs.iter().map(|(k, v)| (&**k, &**v)).collect()
    }

    #[test]
    fn parses_rfc_example_with_bom_and_nil_sd() {
        let line = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8";
        let r = parse(line).expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2003-10-11T22:14:15.003Z");
        assert_eq!(r.host.as_deref(), Some("mymachine.example.com"));
        assert_eq!(r.service.as_deref(), Some("su"));
        assert_eq!(r.level, Some(Level::Critical));
        assert_eq!(r.message, "'su root' failed for lonvick on /dev/pts/8");
        assert_eq!(attrs(&r), [("facility", "auth"), ("msgid", "ID47")]);
    }

    #[test]
    fn structured_data_becomes_attrs() {
        let line = r#"<165>1 2003-10-11T22:14:15.003000-07:00 mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] An application event log entry..."#;
        let r = parse(line).expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2003-10-12T05:14:15.003Z");
        assert_eq!(r.level, Some(Level::Notice));
        assert_eq!(
            attrs(&r),
            [
                ("facility", "local4"),
                ("pid", "1234"),
                ("msgid", "ID47"),
                ("exampleSDID@32473.iut", "3"),
                ("exampleSDID@32473.eventSource", "Application"),
                ("exampleSDID@32473.eventID", "1011"),
                ("examplePriority@32473.class", "high"),
            ]
        );
        assert_eq!(r.message, "An application event log entry...");
    }

    #[test]
    fn sd_escapes_are_undone_and_only_then_owned() {
        let line = r#"<14>1 2026-11-01T12:00:00Z h app - - [x@1 q="say \"hi\"" b="a\\b" br="[1\]" other="c:\d" plain="ok"] m"#;
        let r = parse(line).expect("parses");
        let a = attrs(&r);
        assert_eq!(
            a[1..],
            [
                ("x@1.q", r#"say "hi""#),
                ("x@1.b", r"a\b"),
                ("x@1.br", "[1]"),
                ("x@1.other", r"c:\d"),
                ("x@1.plain", "ok")
            ]
        );
        assert!(matches!(r.attrs[5].1, Cow::Borrowed(_)));
        assert!(matches!(r.attrs[1].1, Cow::Owned(_)));
        // An element without parameters, and no message at all.
        let r = parse("<14>1 2026-11-01T12:00:00Z h app - - [meta@1]").expect("parses");
        assert_eq!(r.message, "");
        assert_eq!(attrs(&r), [("facility", "user")]);
    }

    #[test]
    fn nil_values_are_none() {
        let r = parse("<0>1 2026-11-01T12:00:00.000001+00:00 - - - - -").expect("parses");
        assert_eq!(
            (&r.host, &r.service, r.level),
            (&None, &None, Some(Level::Emergency))
        );
        assert_eq!(r.message, "");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T12:00:00.000001Z");
        assert_eq!(attrs(&r), [("facility", "kern")]);
    }

    #[test]
    fn rejects_with_reasons() {
        let err = |line| parse(line).expect_err(line);
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("Oct  9 13:55:36 h t: m"), LAYOUT);
        assert_eq!(err("<34>Oct 11 22:14:15 mymachine su: hi"), LAYOUT);
        assert_eq!(err("<34>1 - h app - - - m"), ParseError::Missing("timestamp"));
        assert!(matches!(
            err("<34>1 2026-11-01T25:00:00Z h app - - - m"),
            ParseError::Time(_)
        ));
        assert_eq!(
            err("<34>1 2026-11-01T12:00:00Z h app - -"),
            ParseError::Missing("msgid")
        );
        assert_eq!(
            err(r#"<34>1 2026-11-01T12:00:00Z h app - - [x@1 a="b" m"#).kind(),
            "structured data"
        );
        assert_eq!(
            err(r#"<34>1 2026-11-01T12:00:00Z h app - - [x@1 a=b] m"#).kind(),
            "structured data"
        );
        assert_eq!(
            err(r#"<34>1 2026-11-01T12:00:00Z h app - - [x@1 a="b"]m"#).kind(),
            "structured data"
        );
        assert_eq!(
            err("<34>1 2026-11-01T12:00:00Z h app - - x m"),
            ParseError::Missing("structured data")
        );
    }

    #[test]
    fn render_round_trips() {
        let line = r#"<165>1 2026-11-01T12:00:00.5Z web-1 billing 77 INV [ex@32473 q="a \"b\" \] \\ c" n="1"][meta@1 k="v"] charged card"#;
        let r = parse(line).expect("parses");
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(out, line.replace(".5Z", ".500Z"));
        let line = "<14>1 2026-11-01T12:00:00Z - - - - -";
        let r = parse(line).expect("parses");
        let mut out = String::new();
        render(&r, &mut out);
        assert_eq!(out, line);
    }
}
