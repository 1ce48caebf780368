//! nginx/Apache access logs: the Combined Log Format and the NCSA Common Log Format.
//!
//! `client ident user [10/Oct/2026:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326 "referer" "agent"`,
//! optionally followed (combined only) by nginx's `$request_time` in seconds and by further
//! `key=value` fields, which land in `attrs` (`rt=`/`request_time=` also give the latency).
//! Hand-written rather than a regex: this is the format the throughput bar is set on.

use std::borrow::Cow;
use std::fmt::Write as _;

use memchr::{memchr, memrchr};

use super::{LineParser, ParseContext, ParseError};
use crate::record::{Access, Level, Record};
use crate::time::{write_clf, Timestamp};

/// Parses combined (`with_agent`) or common access log lines.
#[derive(Debug, Clone, Copy)]
pub struct CombinedParser {
    with_agent: bool,
}

impl CombinedParser {
    /// The combined format: common plus referer, user agent and optional request time.
    pub fn combined() -> Self {
        CombinedParser { with_agent: true }
    }

    /// The common format: nothing after the byte count.
    pub fn common() -> Self {
        CombinedParser { with_agent: false }
    }

    fn layout(&self) -> ParseError {
        ParseError::Layout(if self.with_agent { "combined" } else { "common" })
    }
}

/// A cursor over the line's bytes; every slice it hands out ends on an ASCII delimiter, so
/// slicing the `&str` at those positions is always on a char boundary.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.line.as_bytes()[self.pos..]
    }

    /// The text up to the next space, consuming the space.
    fn word(&mut self) -> Option<&'a str> {
        let end = memchr(b' ', self.rest())?;
        let word = &self.line[self.pos..self.pos + end];
        self.pos += end + 1;
        Some(word)
    }

    /// The text up to the next space or the end of the line.
    fn last_word(&mut self) -> &'a str {
        let end = memchr(b' ', self.rest()).unwrap_or(self.rest().len());
        let word = &self.line[self.pos..self.pos + end];
        self.pos = (self.pos + end + 1).min(self.line.len());
        word
    }

    /// A `"…"` field with backslash escapes left as written; consumes a following space.
    fn quoted(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let mut i = 1;
        loop {
            let q = memchr(b'"', &rest[i..])? + i;
            // A quote preceded by an odd number of backslashes is escaped.
            let backslashes = rest[..q].iter().rev().take_while(|&&c| c == b'\\').count();
            if backslashes % 2 == 0 {
                let field = &self.line[self.pos + 1..self.pos + q];
                self.pos += q + 1;
                if self.rest().first() == Some(&b' ') {
                    self.pos += 1;
                }
                return Some(field);
            }
            i = q + 1;
        }
    }

    fn bracketed(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'[') {
            return None;
        }
        let end = memchr(b']', rest)?;
        let field = &self.line[self.pos + 1..self.pos + end];
        self.pos += end + 1;
        if self.rest().first() == Some(&b' ') {
            self.pos += 1;
        }
        Some(field)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }
}

fn dash_to_none(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

impl LineParser for CombinedParser {
    fn name(&self) -> &str {
        if self.with_agent {
            "combined"
        } else {
            "common"
        }
    }

    fn parse<'a>(&self, line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let mut c = Cursor { line, pos: 0 };
        let client_ip = c.word().ok_or_else(|| self.layout())?;
        let _ident = c.word().ok_or_else(|| self.layout())?;
        let user = c.word().ok_or_else(|| self.layout())?;
        let time = c.bracketed().ok_or(ParseError::Missing("[time]"))?;
        let ts = Timestamp::parse_clf(time)?;
        let request = c.quoted().ok_or(ParseError::Missing("\"request\""))?;
        let status_text = c.word().ok_or_else(|| self.layout())?;
        let status = parse_status(status_text)?;
        let bytes_text = if self.with_agent {
            c.word().ok_or(ParseError::Missing("referer"))?
        } else {
            c.last_word()
        };
        let bytes = match bytes_text {
            "-" => None,
            b => Some(b.parse::<u64>().map_err(|_| ParseError::Invalid {
                field: "bytes",
                reason: "not a number",
            })?),
        };
        let (mut referer, mut user_agent, mut latency_ms) = (None, None, None);
        let mut attrs = Vec::new();
        if self.with_agent {
            referer = dash_to_none(c.quoted().ok_or(ParseError::Missing("referer"))?);
            user_agent = dash_to_none(c.quoted().ok_or(ParseError::Missing("user agent"))?);
            let mut position = 0;
            while !c.at_end() {
                let (extra, quoted) = match c.rest().first() {
                    Some(b'"') => (c.quoted().ok_or(ParseError::Missing("closing quote"))?, true),
                    _ => (c.last_word(), false),
                };
                if extra.is_empty() && !quoted {
                    continue;
                }
                position += 1;
                trailing_field(extra, quoted, position, &mut latency_ms, &mut attrs);
            }
        } else if !c.at_end() {
            return Err(ParseError::Layout("common (text after the byte count)"));
        }
        let (method, path, protocol) = split_request(request);
        Ok(Record {
            ts,
            host: None,
            service: None,
            level: Some(Level::from_http_status(status)),
            message: Cow::Borrowed(request),
            access: Some(Access {
                client_ip,
                user: dash_to_none(user),
                method,
                path,
                protocol,
                status,
                bytes,
                latency_ms,
                referer,
                user_agent,
            }),
            attrs,
        })
    }
}

/// `METHOD PATH PROTOCOL`; the path may itself hold spaces, so the protocol is cut at the last
/// space. `HTTP/0.9`-style `METHOD PATH` has no protocol; anything else has no parts at all.
fn split_request(request: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    // memchr rather than `split_once(' ')`: the char searcher cost 2% of `process` here.
    let Some(space) = memchr(b' ', request.as_bytes()) else {
        return (None, None, None);
    };
    let (method, rest) = (&request[..space], &request[space + 1..]);
    if method.is_empty() || rest.is_empty() {
        return (None, None, None);
    }
    match memrchr(b' ', rest.as_bytes()).map(|last| (&rest[..last], &rest[last + 1..])) {
        Some((path, protocol)) if !path.is_empty() && protocol.starts_with("HTTP/") => {
            (Some(method), Some(path), Some(protocol))
        }
        _ => (Some(method), Some(rest), None),
    }
}

fn parse_status(text: &str) -> Result<u16, ParseError> {
    let invalid = ParseError::Invalid {
        field: "status",
        reason: "not a 3-digit code",
    };
    if text.len() != 3 {
        return Err(invalid);
    }
    match text.parse::<u16>() {
        Ok(code @ 100..=999) => Ok(code),
        _ => Err(invalid),
    }
}

/// A field after the user agent (`position` counts them from 1). The first number, bare or
/// quoted, is nginx's `$request_time` in seconds; a bare `key=value` goes to attrs (and
/// `rt`/`request_time` also give the latency); anything else (`"$http_x_forwarded_for"`, an
/// upstream time) is kept as `extra_<position>`, unless it is `-`.
fn trailing_field<'a>(
    field: &'a str,
    quoted: bool,
    position: usize,
    latency_ms: &mut Option<f64>,
    attrs: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) {
    let key_value = memchr(b'=', field.as_bytes())
        .map(|eq| (&field[..eq], &field[eq + 1..]))
        .filter(|(k, _)| {
            !quoted && !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        });
    if let Some((key, value)) = key_value {
        let value = value.trim_matches('"');
        attrs.push((Cow::Borrowed(key), Cow::Borrowed(value)));
        if matches!(key, "rt" | "request_time") && latency_ms.is_none() {
            *latency_ms = seconds_to_ms(value);
        }
        return;
    }
    if latency_ms.is_none() {
        if let Some(ms) = seconds_to_ms(field) {
            *latency_ms = Some(ms);
            return;
        }
    }
    if field != "-" {
        attrs.push((Cow::Owned(format!("extra_{position}")), Cow::Borrowed(field)));
    }
}

/// A non-negative number of seconds as milliseconds, rounded to the microsecond so `0.258`
/// reads as 258 ms, not 258.00000000000003.
fn seconds_to_ms(text: &str) -> Option<f64> {
    if let Some(micros) = exact_micros(text) {
        return Some(micros as f64 / 1e3);
    }
    let secs = text.parse::<f64>().ok()?;
    // `parse` also reads `inf` and `NaN`; a request time is digits.
    (secs.is_finite() && secs >= 0.0 && text.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
        .then(|| (secs * 1e6).round() / 1e3)
}

/// The usual request time (`0.258`: up to nine digits, a point and up to six more) as whole
/// microseconds, read as integers. The float path gives the same value (below 2^51 µs its
/// rounding error stays under half a microsecond; a test checks it) for a tenth of the cost,
/// which was 3% of `process` on an nginx log. `None` sends anything else down the float path.
fn exact_micros(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || whole.len() > 9 || fraction.len() > 6 {
        return None;
    }
    let number = |digits: &str| {
        digits.bytes().try_fold(0u64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
        })
    };
    let scale = 10u64.pow(6 - fraction.len() as u32);
    Some(number(whole)? * 1_000_000 + number(fraction)? * scale)
}

/// Renders an access record; `with_agent` selects combined over common.
/// The zone is UTC; the request time is written in seconds with millisecond precision.
pub fn render(record: &Record<'_>, out: &mut String, with_agent: bool) {
    let empty = Access {
        client_ip: "-",
        user: None,
        method: None,
        path: None,
        protocol: None,
        status: 0,
        bytes: None,
        latency_ms: None,
        referer: None,
        user_agent: None,
    };
    let a = record.access.as_ref().unwrap_or(&empty);
    out.push_str(a.client_ip);
    out.push_str(" - ");
    out.push_str(a.user.unwrap_or("-"));
    out.push_str(" [");
    write_clf(out, record.ts, 0);
    out.push_str("] \"");
    out.push_str(&record.message);
    let _ = write!(out, "\" {} ", a.status);
    match a.bytes {
        Some(b) => {
            let _ = write!(out, "{b}");
        }
        None => out.push('-'),
    }
    if with_agent {
        let _ = write!(
            out,
            " \"{}\" \"{}\"",
            a.referer.unwrap_or("-"),
            a.user_agent.unwrap_or("-")
        );
        if let Some(ms) = a.latency_ms {
            let _ = write!(out, " {:.3}", ms / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Record<'_>, ParseError> {
        CombinedParser::combined().parse(line, &ParseContext::default())
    }

    #[test]
    fn parses_nginx_combined_with_request_time() {
        let line = r#"203.0.113.9 - alice [10/Oct/2026:13:55:36 -0700] "GET /api/v1/items?id=3 HTTP/1.1" 503 2326 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 0.250"#;
        let r = parse(line).expect("parses");
        let a = r.access.expect("access fields");
        assert_eq!(r.ts.to_rfc3339(), "2026-10-10T20:55:36Z");
        assert_eq!(a.client_ip, "203.0.113.9");
        assert_eq!(a.user, Some("alice"));
        assert_eq!(
            (a.method, a.path, a.protocol),
            (Some("GET"), Some("/api/v1/items?id=3"), Some("HTTP/1.1"))
        );
        assert_eq!((a.status, a.bytes), (503, Some(2326)));
        assert_eq!(a.referer, Some("https://example.com/"));
        assert_eq!(a.user_agent, Some("Mozilla/5.0 (X11; Linux x86_64)"));
        assert_eq!(a.latency_ms, Some(250.0));
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.message, "GET /api/v1/items?id=3 HTTP/1.1");
    }

    #[test]
    fn escaped_quotes_and_key_value_extras() {
        let line = r#"::1 - - [01/Jan/2026:00:00:00 +0000] "GET /q?\"x\" HTTP/1.1" 200 - "-" "a \"quoted\" agent" rt=0.004 upstream=10.0.0.1:80"#;
        let r = parse(line).expect("parses");
        let a = r.access.expect("access");
        assert_eq!(a.path, Some(r#"/q?\"x\""#));
        assert_eq!(a.user_agent, Some(r#"a \"quoted\" agent"#));
        assert_eq!((a.bytes, a.referer), (None, None));
        assert_eq!(a.latency_ms, Some(4.0));
        assert_eq!(r.attrs.len(), 2);
        assert_eq!(
            r.attrs[1],
            (Cow::Borrowed("upstream"), Cow::Borrowed("10.0.0.1:80"))
        );
    }

    #[test]
    fn malformed_request_line_keeps_the_record() {
        let line = r#"198.51.100.7 - - [10/Oct/2026:13:55:36 +0000] "\x16\x03\x01" 400 157 "-" "-""#;
        let r = parse(line).expect("a garbage request is still a logged request");
        assert_eq!(r.access.expect("access").method, None);
    }

    #[test]
    fn rejects_with_reasons() {
        let p = |l| parse(l).expect_err("must fail");
        assert_eq!(p(""), ParseError::Empty);
        assert_eq!(p("hello world"), ParseError::Layout("combined"));
        assert_eq!(
            p(r#"1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 2x0 1 "-" "-""#).kind(),
            "status"
        );
        assert!(matches!(
            p(r#"1.2.3.4 - - [10/Oct/2026:25:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-""#),
            ParseError::Time(_)
        ));
    }

    #[test]
    fn common_rejects_combined_and_accepts_its_own() {
        let common = CombinedParser::common();
        let ctx = ParseContext::default();
        let line = r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let r = common.parse(line, &ctx).expect("common parses");
        assert_eq!(r.access.expect("access").user, Some("frank"));
        let combined_line = format!("{line} \"-\" \"curl\"");
        assert!(common.parse(&combined_line, &ctx).is_err());
        assert!(CombinedParser::combined().parse(line, &ctx).is_err());
    }

    #[test]
    fn request_path_with_spaces_keeps_protocol() {
        let line =
            r#"1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET /search?q=red shoes HTTP/1.1" 200 1 "-" "-""#;
        let a = parse(line).expect("parses").access.expect("access");
        assert_eq!(
            (a.method, a.path, a.protocol),
            (Some("GET"), Some("/search?q=red shoes"), Some("HTTP/1.1"))
        );
        let old = r#"1.2.3.4 - - [10/Oct/2026:13:55:36 +0000] "GET /" 200 1 "-" "-""#;
        let a = parse(old).expect("parses").access.expect("access");
        assert_eq!((a.method, a.path, a.protocol), (Some("GET"), Some("/"), None));
    }

    #[test]
    fn render_round_trips() {
        let line = r#"10.1.2.3 - - [26/Nov/2026:08:00:01 +0000] "POST /login HTTP/2.0" 302 0 "-" "Go-http-client/2.0" 0.017"#;
        let r = parse(line).expect("parses");
        let mut out = String::new();
        render(&r, &mut out, true);
        assert_eq!(out, line);
    }

    /// What the float path alone gives (the function before its integer fast path).
    fn float_path(text: &str) -> Option<f64> {
        let secs = text.parse::<f64>().ok()?;
        (secs.is_finite() && secs >= 0.0 && text.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
            .then(|| (secs * 1e6).round() / 1e3)
    }

    #[test]
    fn request_times_read_as_integers_equal_the_float_path() {
        for text in [
            "0.258",
            "0",
            "5.",
            "999999999.999999",
            "000.000001",
            "12.5",
            "3.1000000",
        ] {
            assert_eq!(seconds_to_ms(text), float_path(text), "{text:?}");
        }
        for text in ["", ".", ".5", "1.2.3", "+1", "-0.1", "1e3", "inf", "NaN", "0x1"] {
            assert_eq!(seconds_to_ms(text), float_path(text), "{text:?}");
        }
        assert_eq!(seconds_to_ms("0.258"), Some(258.0));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn any_request_time_reads_as_the_float_path_reads_it(text in "[0-9]{0,11}(\\.[0-9]{0,8})?") {
            proptest::prop_assert_eq!(seconds_to_ms(&text), float_path(&text));
        }
    }
}
