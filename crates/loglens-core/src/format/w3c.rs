//! W3C Extended Log File Format (IIS, and the CDNs that follow it): `#Software:`, `#Version:`,
//! `#Date:` and `#Fields:` directives, then space-separated lines whose columns the `#Fields:`
//! directive names, `-` for a value that is absent. Times are UTC, as the W3C draft says.
//!
//! The parser is fitted to a file by its `#Fields:` line ([`LineParser::for_file`]); without
//! one it assumes IIS's default field set.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{header_value, LineParser, ParseContext, ParseError};
use crate::record::{Access, Level, Record};
use crate::time::{digits, Civil, TimeError};

/// The fields IIS logs by default (IIS 8.5 and later), used when a file has no `#Fields:`.
pub const IIS_DEFAULT_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken";

/// A column the record has a typed place for; any other goes to the attrs under its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Date,
    Time,
    ClientIp,
    User,
    Method,
    UriStem,
    UriQuery,
    Protocol,
    Status,
    Bytes,
    TimeTaken,
    UserAgent,
    Referer,
    Host,
    Other(String),
}

impl Field {
    fn of(name: &str) -> Field {
        match name {
            "date" => Field::Date,
            "time" => Field::Time,
            "c-ip" => Field::ClientIp,
            "cs-username" => Field::User,
            "cs-method" => Field::Method,
            "cs-uri-stem" => Field::UriStem,
            "cs-uri-query" => Field::UriQuery,
            "cs-version" => Field::Protocol,
            "sc-status" => Field::Status,
            "sc-bytes" => Field::Bytes,
            "time-taken" => Field::TimeTaken,
            "cs(User-Agent)" => Field::UserAgent,
            "cs(Referer)" | "cs(Referrer)" => Field::Referer,
            "s-computername" => Field::Host,
            other => Field::Other(other.to_owned()),
        }
    }
}

/// Parses W3C extended lines with the columns of one `#Fields:` directive.
#[derive(Debug, Clone)]
pub struct W3cParser {
    fields: Vec<Field>,
}

impl Default for W3cParser {
    fn default() -> Self {
        W3cParser::with_fields(IIS_DEFAULT_FIELDS)
    }
}

const TIME: TimeError = TimeError::Layout("date YYYY-MM-DD and time HH:MM:SS");

impl W3cParser {
    /// A parser for the space-separated field names of a `#Fields:` directive.
    pub fn with_fields(names: &str) -> W3cParser {
        W3cParser {
            fields: names.split_whitespace().map(Field::of).collect(),
        }
    }
}

impl LineParser for W3cParser {
    fn name(&self) -> &str {
        "w3c"
    }

    fn parse<'a>(&self, line: &'a str, _: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        if line.starts_with('#') {
            return Err(ParseError::Header);
        }
        let values: Vec<&str> = line.split(' ').collect();
        if values.len() != self.fields.len() {
            return Err(ParseError::Invalid {
                field: "fields",
                reason: "not as many values as the #Fields: directive names",
            });
        }
        let mut w = W3cLine::default();
        let mut attrs = Vec::new();
        for (field, &value) in self.fields.iter().zip(&values) {
            let value = (value != "-").then_some(value);
            match field {
                Field::Date => w.date = value,
                Field::Time => w.time = value,
                Field::ClientIp => w.client_ip = value,
                Field::User => w.user = value,
                Field::Method => w.method = value,
                Field::UriStem => w.stem = value,
                Field::UriQuery => w.query = value,
                Field::Protocol => w.protocol = value,
                Field::Status => w.status = value,
                Field::Bytes => w.bytes = value,
                Field::TimeTaken => w.time_taken = value,
                Field::UserAgent => w.user_agent = value,
                Field::Referer => w.referer = value,
                Field::Host => w.host = value,
                Field::Other(name) => {
                    if let Some(value) = value {
                        attrs.push((Cow::Owned(name.clone()), Cow::Borrowed(value)));
                    }
                }
            }
        }
        let mut record = w.record()?;
        if let Some(query) = w.query {
            attrs.insert(0, (Cow::Borrowed("query"), Cow::Borrowed(query)));
        }
        record.attrs = attrs;
        Ok(record)
    }

    fn has_header(&self) -> bool {
        true
    }

    fn for_file(&self, head: &[&str]) -> Option<Box<dyn LineParser>> {
        let fields = head.iter().find_map(|line| header_value(line, "#Fields:"))?;
        Some(Box::new(W3cParser::with_fields(fields)))
    }
}

/// The typed columns of one line, as written (`None` for `-` or absent).
#[derive(Default)]
struct W3cLine<'a> {
    date: Option<&'a str>,
    time: Option<&'a str>,
    client_ip: Option<&'a str>,
    user: Option<&'a str>,
    method: Option<&'a str>,
    stem: Option<&'a str>,
    query: Option<&'a str>,
    protocol: Option<&'a str>,
    status: Option<&'a str>,
    bytes: Option<&'a str>,
    time_taken: Option<&'a str>,
    user_agent: Option<&'a str>,
    referer: Option<&'a str>,
    host: Option<&'a str>,
}

impl<'a> W3cLine<'a> {
    fn record(&self) -> Result<Record<'a>, ParseError> {
        let ts = timestamp(
            self.date.ok_or(ParseError::Missing("date"))?,
            self.time.ok_or(ParseError::Missing("time"))?,
        )?;
        let message = match (self.method, self.stem, self.query) {
            (Some(m), Some(s), Some(q)) => format!("{m} {s}?{q}"),
            (Some(m), Some(s), None) => format!("{m} {s}"),
            (None, Some(s), _) => s.to_owned(),
            _ => String::new(),
        };
        let mut record = Record::new(ts, message);
        record.host = self.host.map(Cow::Borrowed);
        if let Some(status) = self.status {
            let status = status.parse::<u16>().map_err(|_| ParseError::Invalid {
                field: "sc-status",
                reason: "not an HTTP status",
            })?;
            record.level = Some(Level::from_http_status(status));
            record.access = Some(Access {
                client_ip: self.client_ip.unwrap_or("-"),
                user: self.user,
                method: self.method,
                path: self.stem,
                protocol: self.protocol,
                status,
                bytes: self.bytes.and_then(|b| b.parse().ok()),
                latency_ms: self.time_taken.map(latency_ms).transpose()?,
                referer: self.referer,
                user_agent: self.user_agent,
            });
        }
        Ok(record)
    }
}

/// `time-taken`: IIS writes whole milliseconds; the W3C draft (and CDNs) seconds with a
/// fraction. A value with a decimal point is read as seconds.
fn latency_ms(text: &str) -> Result<f64, ParseError> {
    let invalid = ParseError::Invalid {
        field: "time-taken",
        reason: "not a number",
    };
    let value: f64 = text.parse().map_err(|_| invalid.clone())?;
    if !value.is_finite() || value < 0.0 {
        return Err(invalid);
    }
    Ok(if text.contains('.') { value * 1000.0 } else { value })
}

fn timestamp(date: &str, time: &str) -> Result<crate::time::Timestamp, ParseError> {
    let (d, t) = (date.as_bytes(), time.as_bytes());
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' || t.len() < 8 || t[2] != b':' || t[5] != b':' {
        return Err(ParseError::Time(TIME));
    }
    let micros = match t.get(8) {
        None => 0,
        Some(b'.') => {
            let frac = &t[9..];
            if frac.is_empty() || frac.len() > 6 {
                return Err(ParseError::Time(TIME));
            }
            digits(frac).ok_or(TIME)? * 10u32.pow(6 - frac.len() as u32)
        }
        Some(_) => return Err(ParseError::Time(TIME)),
    };
    let civil = Civil {
        year: digits(&d[0..4]).ok_or(TIME)? as i32,
        month: digits(&d[5..7]).ok_or(TIME)? as u8,
        day: digits(&d[8..10]).ok_or(TIME)? as u8,
        hour: digits(&t[0..2]).ok_or(TIME)? as u8,
        minute: digits(&t[3..5]).ok_or(TIME)? as u8,
        second: digits(&t[6..8]).ok_or(TIME)? as u8,
        micros,
    };
    Ok(civil.to_timestamp(0)?)
}

/// Renders a record as a line of IIS's default fields (UTC; `-` for what it lacks; spaces in
/// values written as `+`, as IIS does). Columns without a typed place come from the attrs.
pub fn render(record: &Record<'_>, out: &mut String) {
    let c = record.ts.to_civil(0);
    let a = record.access.as_ref();
    let attr = |name: &str| {
        record
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_ref()))
    };
    for (i, name) in IIS_DEFAULT_FIELDS.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let value: Option<Cow<'_, str>> = match Field::of(name) {
            Field::Date => Some(format!("{:04}-{:02}-{:02}", c.year, c.month, c.day).into()),
            Field::Time => Some(format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second).into()),
            Field::ClientIp => a.map(|a| a.client_ip.into()),
            Field::User => a.and_then(|a| a.user).map(Cow::Borrowed),
            Field::Method => a.and_then(|a| a.method).map(Cow::Borrowed),
            Field::UriStem => a.and_then(|a| a.path).map(Cow::Borrowed),
            Field::UriQuery => attr("query"),
            Field::Protocol => a.and_then(|a| a.protocol).map(Cow::Borrowed),
            Field::Status => a.map(|a| a.status.to_string().into()),
            Field::Bytes => a.and_then(|a| a.bytes).map(|b| b.to_string().into()),
            Field::TimeTaken => a
                .and_then(|a| a.latency_ms)
                .map(|ms| (ms.round() as u64).to_string().into()),
            Field::UserAgent => a.and_then(|a| a.user_agent).map(Cow::Borrowed),
            Field::Referer => a.and_then(|a| a.referer).map(Cow::Borrowed),
            Field::Host => record.host.as_deref().map(Cow::Borrowed),
            Field::Other(name) => attr(&name).map(|v| Cow::Owned(v.into_owned())),
        };
        match value {
            Some(v) if !v.is_empty() => {
                let _ = write!(out, "{}", v.replace(' ', "+"));
            }
            _ => out.push('-'),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example of Microsoft's "W3C Extended Log File Format (IIS 6.0)" page, and IIS 10's
    /// default header.
    const IIS_FILE: &str = "#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2026-03-04 05:06:07
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2026-03-04 05:06:07 10.0.0.5 GET /default.htm - 80 - 192.0.2.10 Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 15
2026-03-04 05:06:08 10.0.0.5 POST /api/orders id=7 443 alice 192.0.2.11 curl/8.5.0 https://shop.example/ 503 0 64 1250";

    fn fitted(file: &str) -> Box<dyn LineParser> {
        let head: Vec<&str> = file.lines().collect();
        W3cParser::default().for_file(&head).unwrap()
    }

    #[test]
    fn parses_iis_lines_with_the_header_fields() {
        let parser = fitted(IIS_FILE);
        let ctx = ParseContext::default();
        let lines: Vec<&str> = IIS_FILE.lines().collect();
        assert_eq!(parser.parse(lines[0], &ctx), Err(ParseError::Header));
        let r = parser.parse(lines[4], &ctx).unwrap();
        assert_eq!(r.ts.to_rfc3339(), "2026-03-04T05:06:07Z");
        assert_eq!(r.message, "GET /default.htm");
        let a = r.access.as_ref().unwrap();
        assert_eq!(
            (a.client_ip, a.status, a.latency_ms),
            ("192.0.2.10", 200, Some(15.0))
        );
        assert_eq!(a.user_agent, Some("Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)"));
        assert_eq!((a.user, a.referer, a.bytes), (None, None, None));
        let r = parser.parse(lines[5], &ctx).unwrap();
        assert_eq!(r.message, "POST /api/orders?id=7");
        assert_eq!(r.level, Some(Level::Error));
        let a = r.access.as_ref().unwrap();
        assert_eq!(
            (a.user, a.referer, a.latency_ms),
            (Some("alice"), Some("https://shop.example/"), Some(1250.0))
        );
        let attr = |k: &str| {
            r.attrs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.to_string())
        };
        assert_eq!(attr("query").as_deref(), Some("id=7"));
        assert_eq!(attr("sc-win32-status").as_deref(), Some("64"));
        assert_eq!(attr("s-port").as_deref(), Some("443"));
    }

    #[test]
    fn other_field_sets_and_fractional_times() {
        // A CDN-style header: seconds with a fraction, bytes, host, protocol.
        let file = "#Version: 1.0\n#Fields: date time c-ip cs-method s-computername cs-uri-stem cs-version sc-status sc-bytes time-taken\n2026-03-04 05:06:07.250 198.51.100.4 GET edge-7 /img/a.png HTTP/2.0 404 512 0.004";
        let parser = fitted(file);
        let r = parser
            .parse(file.lines().nth(2).unwrap(), &ParseContext::default())
            .unwrap();
        assert_eq!(r.ts.to_rfc3339(), "2026-03-04T05:06:07.250Z");
        assert_eq!(r.host.as_deref(), Some("edge-7"));
        let a = r.access.as_ref().unwrap();
        assert_eq!(
            (a.protocol, a.status, a.bytes),
            (Some("HTTP/2.0"), 404, Some(512))
        );
        assert!((a.latency_ms.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(r.level, Some(Level::Warn));
    }

    #[test]
    fn rejects_with_reasons() {
        let parser = W3cParser::default();
        let err = |line| parser.parse(line, &ParseContext::default()).unwrap_err();
        assert_eq!(err(""), ParseError::Empty);
        assert_eq!(err("#Fields: date time"), ParseError::Header);
        assert_eq!(err("2026-03-04 05:06:07 10.0.0.5 GET").kind(), "fields");
        assert!(matches!(
            err("2026-13-04 05:06:07 10.0.0.5 GET /default.htm - 80 - 192.0.2.10 curl - 200 0 0 15"),
            ParseError::Time(_)
        ));
        assert_eq!(
            err("2026-03-04 05:06:07 10.0.0.5 GET /default.htm - 80 - 192.0.2.10 curl - OK 0 0 15").kind(),
            "sc-status"
        );
        assert!(W3cParser::default()
            .for_file(&["2026-03-04 05:06:07 a b"])
            .is_none());
    }
}
