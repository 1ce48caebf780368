//! Zeek (formerly Bro) TSV logs: a header of `#separator`, `#unset_field`, `#empty_field`,
//! `#path` and `#fields` directives, then one tab-separated line per event whose first column
//! `ts` is epoch seconds. `http.log` lines become access records; every column is kept in the
//! attrs under its Zeek name (`id.orig_h`, `conn_state`…).
//!
//! The parser is fitted to a file by its header ([`LineParser::for_file`]); without one it
//! assumes the columns of `conn.log`.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{header_value, LineParser, ParseContext, ParseError};
use crate::record::{Access, Level, Record};
use crate::time::Timestamp;

/// The columns of Zeek's `conn.log`, used when a file has no `#fields` header.
pub const CONN_FIELDS: [&str; 21] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
];

/// Parses Zeek TSV lines with the columns and markers of one header.
#[derive(Debug, Clone)]
pub struct ZeekParser {
    fields: Vec<String>,
    /// The log's stream (`conn`, `http`, `dns`), stored as the service.
    path: Option<String>,
    separator: char,
    unset: String,
    empty: String,
    http: Option<HttpColumns>,
}

/// Where `http.log`'s request columns are.
#[derive(Debug, Clone, Copy)]
struct HttpColumns {
    client: Option<usize>,
    method: Option<usize>,
    uri: Option<usize>,
    status: usize,
    bytes: Option<usize>,
    referer: Option<usize>,
    user_agent: Option<usize>,
}

impl Default for ZeekParser {
    fn default() -> Self {
        ZeekParser::new(CONN_FIELDS.iter().map(|f| (*f).to_owned()).collect(), None, '\t')
    }
}

impl ZeekParser {
    fn new(fields: Vec<String>, path: Option<String>, separator: char) -> ZeekParser {
        let at = |name: &str| fields.iter().position(|f| f == name);
        let http = at("status_code").map(|status| HttpColumns {
            client: at("id.orig_h"),
            method: at("method"),
            uri: at("uri"),
            status,
            bytes: at("response_body_len"),
            referer: at("referrer"),
            user_agent: at("user_agent"),
        });
        ZeekParser {
            fields,
            path,
            separator,
            unset: "-".to_owned(),
            empty: "(empty)".to_owned(),
            http,
        }
    }
}

const LAYOUT: ParseError =
    ParseError::Layout("a Zeek TSV line (tab-separated `#fields` columns, `ts` first)");

impl LineParser for ZeekParser {
    fn name(&self) -> &str {
        "zeek"
    }

    fn parse<'a>(&self, line: &'a str, _: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        if line.starts_with('#') {
            return Err(ParseError::Header);
        }
        let values: Vec<&str> = line.split(self.separator).collect();
        if values.len() != self.fields.len() {
            return Err(if values.len() == 1 {
                LAYOUT
            } else {
                ParseError::Invalid {
                    field: "fields",
                    reason: "not as many values as the #fields header names",
                }
            });
        }
        let value = |i: usize| {
            values
                .get(i)
                .copied()
                .filter(|v| *v != self.unset && *v != self.empty)
        };
        let ts_column = self
            .fields
            .iter()
            .position(|f| f == "ts")
            .ok_or(ParseError::Missing("ts"))?;
        let ts = epoch_seconds(value(ts_column).ok_or(ParseError::Missing("ts"))?)?;
        let mut message = String::new();
        let mut attrs = Vec::with_capacity(values.len());
        for (i, name) in self.fields.iter().enumerate() {
            let Some(v) = value(i).filter(|_| i != ts_column) else {
                continue;
            };
            if name != "uid" {
                if !message.is_empty() {
                    message.push(' ');
                }
                message.push_str(v);
            }
            attrs.push((Cow::Owned(name.clone()), Cow::Borrowed(v)));
        }
        let mut record = Record::new(ts, message);
        record.service = self.path.clone().map(Cow::Owned);
        record.attrs = attrs;
        if let Some(http) = &self.http {
            self.add_access(&mut record, http, &value)?;
        } else if matches!(self.path.as_deref(), Some("notice" | "weird")) {
            record.level = Some(Level::Warn);
        }
        Ok(record)
    }

    fn has_header(&self) -> bool {
        true
    }

    fn for_file(&self, head: &[&str]) -> Option<Box<dyn LineParser>> {
        let mut separator = '\t';
        let (mut path, mut unset, mut empty) = (None, None, None);
        for line in head.iter().take_while(|l| l.starts_with('#')) {
            if let Some(sep) = line.strip_prefix("#separator ") {
                separator = unescape(sep.trim())?;
                continue;
            }
            let directive = |name: &str| {
                let rest = line.strip_prefix(name)?;
                rest.strip_prefix(separator).or_else(|| header_value(line, name))
            };
            if let Some(fields) = directive("#fields") {
                let fields = fields.split(separator).map(str::to_owned).collect();
                let mut parser = ZeekParser::new(fields, path.clone(), separator);
                parser.unset = unset.clone().unwrap_or(parser.unset);
                parser.empty = empty.clone().unwrap_or(parser.empty);
                return Some(Box::new(parser));
            }
            if let Some(p) = directive("#path") {
                path = Some(p.to_owned());
            } else if let Some(u) = directive("#unset_field") {
                unset = Some(u.to_owned());
            } else if let Some(e) = directive("#empty_field") {
                empty = Some(e.to_owned());
            }
        }
        None
    }
}

impl ZeekParser {
    fn add_access<'a>(
        &self,
        record: &mut Record<'a>,
        http: &HttpColumns,
        value: &dyn Fn(usize) -> Option<&'a str>,
    ) -> Result<(), ParseError> {
        let Some(status) = value(http.status) else {
            // A request without a reply (the connection closed first).
            return Ok(());
        };
        let status = status.parse::<u16>().map_err(|_| ParseError::Invalid {
            field: "status_code",
            reason: "not an HTTP status",
        })?;
        let at = |i: Option<usize>| i.and_then(value);
        let (method, uri) = (at(http.method), at(http.uri));
        if let (Some(m), Some(u)) = (method, uri) {
            record.message = Cow::Owned(format!("{m} {u}"));
        }
        record.level = Some(Level::from_http_status(status));
        record.access = Some(Access {
            client_ip: at(http.client).unwrap_or("-"),
            user: None,
            method,
            path: uri,
            protocol: None,
            status,
            bytes: at(http.bytes).and_then(|b| b.parse().ok()),
            latency_ms: None,
            referer: at(http.referer),
            user_agent: at(http.user_agent),
        });
        Ok(())
    }
}

/// `\x09` (Zeek writes its separator escaped) or a literal character.
fn unescape(text: &str) -> Option<char> {
    match text.strip_prefix("\\x") {
        Some(hex) => u8::from_str_radix(hex, 16).ok().map(char::from),
        None => {
            let mut chars = text.chars();
            let c = chars.next()?;
            chars.next().is_none().then_some(c)
        }
    }
}

/// `1331901000.123456`: seconds since the epoch with up to six decimals.
fn epoch_seconds(text: &str) -> Result<Timestamp, ParseError> {
    let invalid = ParseError::Invalid {
        field: "ts",
        reason: "not epoch seconds",
    };
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    let secs: i64 = secs.parse().map_err(|_| invalid.clone())?;
    let micros: i64 = format!("{frac:0<6}")[..6].parse().map_err(|_| invalid.clone())?;
    secs.checked_mul(1_000_000)
        .and_then(|s| s.checked_add(micros))
        .map(Timestamp)
        .ok_or(invalid)
}

/// Renders a record as a `conn.log` line: `ts`, then each column from the attrs of its name
/// (`-` when absent).
pub fn render(record: &Record<'_>, out: &mut String) {
    let _ = write!(out, "{}.{:06}", record.ts.secs(), record.ts.subsec_micros());
    for name in &CONN_FIELDS[1..] {
        out.push('\t');
        let value = record
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref());
        out.push_str(value.filter(|v| !v.is_empty()).unwrap_or("-"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The header and lines of Zeek's documented `http.log` example (Zeek book, "Logs").
    const HTTP_LOG: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\thttp
#open\t2026-10-11-22-14-15
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\tversion\tuser_agent\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg
#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tstring\tstring\tcount\tcount\tcount\tstring
1791756855.003417\tCHhAvVGS1DHFjwGM9\t192.168.1.10\t52345\t93.184.216.34\t80\t1\tGET\texample.com\t/index.html\t-\t1.1\tcurl/8.5.0\t0\t1256\t200\tOK
1791756856.5\tC4J4Th3PJpwUYZZ6gc\t192.168.1.11\t52346\t93.184.216.34\t80\t1\tPOST\texample.com\t/login\thttp://example.com/\t1.1\tMozilla/5.0 (X11; Linux x86_64)\t42\t(empty)\t503\tService Unavailable
#close\t2026-10-11-23-00-00";

    fn fitted(file: &str) -> Box<dyn LineParser> {
        let head: Vec<&str> = file.lines().collect();
        ZeekParser::default().for_file(&head).unwrap()
    }

    #[test]
    fn http_log_lines_are_access_records() {
        let parser = fitted(HTTP_LOG);
        let ctx = ParseContext::default();
        let lines: Vec<&str> = HTTP_LOG.lines().collect();
        assert_eq!(parser.parse(lines[0], &ctx), Err(ParseError::Header));
        let r = parser.parse(lines[8], &ctx).unwrap();
        assert_eq!(r.ts.to_rfc3339(), "2026-10-11T22:14:15.003417Z");
        assert_eq!(r.service.as_deref(), Some("http"));
        assert_eq!(r.message, "GET /index.html");
        let a = r.access.as_ref().unwrap();
        assert_eq!(
            (a.client_ip, a.method, a.path, a.status, a.bytes),
            ("192.168.1.10", Some("GET"), Some("/index.html"), 200, Some(1256))
        );
        assert_eq!((a.referer, a.user_agent), (None, Some("curl/8.5.0")));
        assert_eq!(
            r.attrs[0],
            (Cow::Borrowed("uid"), Cow::Borrowed("CHhAvVGS1DHFjwGM9"))
        );
        let r = parser.parse(lines[9], &ctx).unwrap();
        assert_eq!(r.ts.to_rfc3339(), "2026-10-11T22:14:16.500Z");
        assert_eq!(r.level, Some(Level::Error));
        let a = r.access.as_ref().unwrap();
        assert_eq!((a.bytes, a.referer), (None, Some("http://example.com/")));
        assert_eq!(a.user_agent, Some("Mozilla/5.0 (X11; Linux x86_64)"));
        assert_eq!(parser.parse(lines[10], &ctx), Err(ParseError::Header));
    }

    #[test]
    fn conn_lines_without_a_header_use_the_conn_columns() {
        let r = ZeekParser::default()
            .parse(super::super::Format::Zeek.example(), &ParseContext::default())
            .unwrap();
        assert_eq!(r.service, None);
        assert!(
            r.message
                .starts_with("192.168.1.10 52345 93.184.216.34 443 tcp ssl"),
            "{}",
            r.message
        );
        let attr = |k: &str| {
            r.attrs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.to_string())
        };
        assert_eq!(attr("conn_state").as_deref(), Some("SF"));
        assert_eq!(attr("tunnel_parents"), None);
    }

    #[test]
    fn rejects_with_reasons() {
        let parser = ZeekParser::default();
        let err = |line| parser.parse(line, &ParseContext::default()).unwrap_err();
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("#fields\tts"), ParseError::Header);
        assert_eq!(err("2026-10-11 22:14:15 something"), LAYOUT);
        assert_eq!(err("1.0\tC1\t10.0.0.1").kind(), "fields");
        let bad_ts = Format::Zeek
            .example()
            .replacen("1791756855.003417", "yesterday", 1);
        assert_eq!(err(&bad_ts).kind(), "ts");
        assert!(parser.for_file(&["no header"]).is_none());
    }

    use super::super::Format;
}
