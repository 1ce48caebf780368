//! Formats as data: a regular expression with named groups, declared in a TOML format file
//! (the built-in log4j, glog, HAProxy… files, or a user's `[[format]]`). Named groups map onto
//! the record (`ts`, `level`, `host`, `service`, `message`, typed access fields); every other
//! named group becomes an attr.

use std::borrow::Cow;

use chrono::format::{Item, Parsed, StrftimeItems};
use regex::Regex;

use super::jsonl::parse_epoch;
use super::multiline::Continuation;
use super::syslog3164::parse_bsd_time;
use super::{LineParser, ParseContext, ParseError};
use crate::record::{Access, Level, Record};
use crate::time::{month_from_abbr, Civil, TimeError, Timestamp};
use crate::zone::LocalZone;

/// Why a user format could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexFormatError {
    /// The pattern is not a valid regular expression (with the regex crate's explanation).
    #[error("invalid regex: {0}")]
    BadRegex(String),
    /// The pattern has no `(?P<ts>…)` group: every record needs a time.
    #[error("the pattern has no named group `ts` for the timestamp")]
    MissingTimestamp,
    /// The `timestamp` layout is not a valid strftime layout.
    #[error("invalid timestamp layout {layout:?}: {reason}")]
    BadLayout {
        /// The layout as configured.
        layout: String,
        /// chrono's explanation.
        reason: String,
    },
}

/// A user format: a regex whose named groups fill the record.
///
/// - `ts` (required): read with the `timestamp` layout (strftime, chrono syntax) when one is
///   given — a layout without `%z` is in the context's default zone, one without a year gets
///   the year inferred as for syslog — else auto-detected: RFC 3339 / ISO 8601 (also with a
///   space and comma milliseconds), Common Log Format (brackets optional), syslog
///   `Mmm dd hh:mm:ss`, or epoch seconds / milliseconds / microseconds.
/// - `level` (a known name; otherwise it stays an attr), `host`, `service`, `message` (the whole
///   line when the pattern has no such group).
/// - `status` makes the record an access record, filled from `client_ip`, `user`, `method`,
///   `path`, `protocol`, `status`, `bytes`, `latency_ms`, `referer`, `user_agent` (`-` is
///   none for user, bytes, referer and user agent); its level then defaults to the status's.
///   Without a `status` group those names are ordinary attrs.
/// - every other named group becomes an attr when it matched.
///
/// The regex is used as written: anchor it (`^…$`) to reject lines it only partly matches.
#[derive(Debug, Clone)]
pub struct RegexFormat {
    name: String,
    regex: Regex,
    layout: Option<Layout>,
    groups: Groups,
    /// Level words of this format (`I`, `W` for glog), tried before the usual names.
    levels: Vec<(String, Level)>,
    description: Option<String>,
    example: Option<String>,
    continuation: Continuation,
}

/// A parsed strftime layout.
#[derive(Debug, Clone)]
struct Layout {
    items: Vec<Item<'static>>,
}

/// Capture-group indices of the names with a meaning.
#[derive(Debug, Clone, Default)]
struct Groups {
    ts: usize,
    level: Option<usize>,
    host: Option<usize>,
    service: Option<usize>,
    message: Option<usize>,
    client_ip: Option<usize>,
    user: Option<usize>,
    method: Option<usize>,
    path: Option<usize>,
    protocol: Option<usize>,
    status: Option<usize>,
    bytes: Option<usize>,
    latency_ms: Option<usize>,
    referer: Option<usize>,
    user_agent: Option<usize>,
    /// Groups that become attrs; the typed access groups are also listed here, in case the
    /// line has no status.
    other: Vec<(usize, String, bool)>,
}

const ACCESS_GROUPS: [&str; 9] = [
    "client_ip",
    "user",
    "method",
    "path",
    "protocol",
    "bytes",
    "latency_ms",
    "referer",
    "user_agent",
];

impl RegexFormat {
    /// Builds a user format named `name` from `pattern` and an optional strftime `timestamp`
    /// layout for the `ts` group.
    pub fn new(name: String, pattern: &str, timestamp: Option<String>) -> Result<Self, RegexFormatError> {
        let regex = Regex::new(pattern).map_err(|e| RegexFormatError::BadRegex(e.to_string()))?;
        let mut groups = Groups::default();
        let mut ts = None;
        for (i, group) in regex.capture_names().enumerate() {
            let Some(group) = group else { continue };
            let slot = match group {
                "ts" => &mut ts,
                "level" => &mut groups.level,
                "host" => &mut groups.host,
                "service" => &mut groups.service,
                "message" => &mut groups.message,
                "status" => &mut groups.status,
                "client_ip" => &mut groups.client_ip,
                "user" => &mut groups.user,
                "method" => &mut groups.method,
                "path" => &mut groups.path,
                "protocol" => &mut groups.protocol,
                "bytes" => &mut groups.bytes,
                "latency_ms" => &mut groups.latency_ms,
                "referer" => &mut groups.referer,
                "user_agent" => &mut groups.user_agent,
                other => {
                    groups.other.push((i, other.to_owned(), false));
                    continue;
                }
            };
            *slot = Some(i);
            if ACCESS_GROUPS.contains(&group) {
                groups.other.push((i, group.to_owned(), true));
            }
        }
        groups.ts = ts.ok_or(RegexFormatError::MissingTimestamp)?;
        let layout = match timestamp {
            None => None,
            Some(layout) => match StrftimeItems::new(&layout).parse_to_owned() {
                Ok(items) => Some(Layout { items }),
                Err(e) => {
                    return Err(RegexFormatError::BadLayout {
                        reason: e.to_string(),
                        layout,
                    })
                }
            },
        };
        Ok(RegexFormat {
            name,
            regex,
            layout,
            groups,
            levels: Vec::new(),
            description: None,
            example: None,
            continuation: Continuation::default(),
        })
    }

    /// The format with its rule for lines that continue a record.
    pub fn with_continuation(mut self, continuation: Continuation) -> Self {
        self.continuation = continuation;
        self
    }

    /// The format with its own level words (`("W", Level::Warn)`), matched exactly before the
    /// usual names.
    pub fn with_levels(mut self, levels: Vec<(String, Level)>) -> Self {
        self.levels = levels;
        self
    }

    /// The format with what `loglens formats list` says about it.
    pub fn with_about(mut self, description: Option<String>, example: Option<String>) -> Self {
        self.description = description;
        self.example = example;
        self
    }

    fn level(&self, text: &str) -> Option<Level> {
        match self.levels.iter().find(|(word, _)| word == text) {
            Some((_, level)) => Some(*level),
            None => text.parse().ok(),
        }
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        self.regex.as_str()
    }

    fn parse_ts(&self, text: &str, ctx: &ParseContext) -> Result<Timestamp, ParseError> {
        match &self.layout {
            Some(layout) => layout.parse(text, ctx),
            None => auto_timestamp(text, ctx),
        }
    }
}

impl Layout {
    fn parse(&self, text: &str, ctx: &ParseContext) -> Result<Timestamp, ParseError> {
        const MISMATCH: ParseError = ParseError::Time(TimeError::Layout("the format's timestamp layout"));
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).map_err(|_| MISMATCH)?;
        if parsed.timestamp().is_some() {
            // Epoch seconds name an instant; an offset beside them changes nothing.
            if parsed.offset().is_none() {
                parsed.set_offset(0).map_err(|_| MISMATCH)?;
            }
            let dt = parsed.to_datetime().map_err(|_| MISMATCH)?;
            return Ok(Timestamp(dt.timestamp_micros()));
        }
        let year_missing = parsed.year().is_none() && parsed.year_mod_100().is_none();
        if year_missing {
            // A stand-in year to read the rest; the zone picks the real one below.
            let leap_year = 2024;
            parsed.set_year(leap_year).map_err(|_| MISMATCH)?;
        }
        let local = parsed.to_naive_datetime_with_offset(0).map_err(|_| MISMATCH)?;
        let mut civil = civil_of(local);
        let zone = match parsed.offset() {
            Some(offset) => LocalZone::Fixed(offset),
            None => ctx.zone,
        };
        if year_missing {
            civil.year = zone.infer_year(civil, ctx.reference);
        }
        Ok(zone.to_timestamp(civil)?)
    }
}

/// A chrono wall-clock time as the core's; chrono keeps a leap second in the nanoseconds.
fn civil_of(local: chrono::NaiveDateTime) -> Civil {
    use chrono::{Datelike, Timelike};
    let nanos = local.nanosecond();
    Civil {
        year: local.year(),
        month: local.month() as u8,
        day: local.day() as u8,
        hour: local.hour() as u8,
        minute: local.minute() as u8,
        second: local.second() as u8 + u8::from(nanos >= 1_000_000_000),
        micros: nanos % 1_000_000_000 / 1000,
    }
}

/// Reads a timestamp of any layout loglens knows.
fn auto_timestamp(text: &str, ctx: &ParseContext) -> Result<Timestamp, ParseError> {
    const UNKNOWN: ParseError = ParseError::Time(TimeError::Layout(
        "RFC 3339, CLF, syslog or epoch (set a timestamp layout)",
    ));
    let b = text.as_bytes();
    if b.len() >= 19 && b[4] == b'-' {
        return Ok(Timestamp::parse_rfc3339(text, ctx.zone)?);
    }
    let clf = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if clf.len() == 26 && clf.as_bytes()[2] == b'/' {
        return Ok(Timestamp::parse_clf(clf)?);
    }
    if b.get(..3).and_then(month_from_abbr).is_some() {
        let (ts, used) = parse_bsd_time(b, ctx)?;
        return if used == b.len() { Ok(ts) } else { Err(UNKNOWN) };
    }
    parse_epoch(text).ok_or(UNKNOWN)
}

impl LineParser for RegexFormat {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    fn example(&self) -> Option<&str> {
        self.example.as_deref()
    }

    fn continuation(&self) -> Continuation {
        self.continuation
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if line.trim().is_empty() {
            return Err(ParseError::Empty);
        }
        let caps = self
            .regex
            .captures(line)
            .ok_or(ParseError::Layout("a line the format's regex matches"))?;
        let g = &self.groups;
        let get = |i: Option<usize>| i.and_then(|i| caps.get(i)).map(|m| m.as_str());
        let ts = self.parse_ts(get(Some(g.ts)).ok_or(ParseError::Missing("timestamp"))?, ctx)?;
        let mut attrs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        let mut level = None;
        if let Some(text) = get(g.level) {
            match self.level(text) {
                Some(l) => level = Some(l),
                None => attrs.push((Cow::Borrowed("level"), Cow::Borrowed(text))),
            }
        }
        let access = match get(g.status) {
            Some(status) => Some(self.access(status, &get)?),
            None => None,
        };
        if let Some(a) = &access {
            level = level.or(Some(Level::from_http_status(a.status)));
        }
        for (i, name, is_access) in &g.other {
            if *is_access && access.is_some() {
                continue;
            }
            if let Some(m) = caps.get(*i) {
                attrs.push((Cow::Owned(name.clone()), Cow::Borrowed(m.as_str())));
            }
        }
        let message = match g.message {
            Some(i) => caps.get(i).map_or("", |m| m.as_str()),
            None => line,
        };
        Ok(Record {
            ts,
            host: get(g.host).map(Cow::Borrowed),
            service: get(g.service).map(Cow::Borrowed),
            level,
            message: Cow::Borrowed(message),
            access,
            attrs,
        })
    }
}

impl RegexFormat {
    fn access<'a>(
        &self,
        status: &'a str,
        get: &impl Fn(Option<usize>) -> Option<&'a str>,
    ) -> Result<Access<'a>, ParseError> {
        let g = &self.groups;
        let dash = |i| get(i).filter(|s| *s != "-");
        let status = status.parse::<u16>().map_err(|_| ParseError::Invalid {
            field: "status",
            reason: "not a number",
        })?;
        let bytes = match dash(g.bytes) {
            None => None,
            Some(b) => Some(b.parse::<u64>().map_err(|_| ParseError::Invalid {
                field: "bytes",
                reason: "not a number",
            })?),
        };
        let latency_ms = match dash(g.latency_ms) {
            None => None,
            Some(l) => match l.parse::<f64>() {
                Ok(ms) if ms.is_finite() && ms >= 0.0 => Some(ms),
                _ => {
                    return Err(ParseError::Invalid {
                        field: "latency_ms",
                        reason: "not a number",
                    })
                }
            },
        };
        Ok(Access {
            client_ip: get(g.client_ip).unwrap_or("-"),
            user: dash(g.user),
            method: get(g.method),
            path: get(g.path),
            protocol: get(g.protocol),
            status,
            bytes,
            latency_ms,
            referer: dash(g.referer),
            user_agent: dash(g.user_agent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ParseContext {
        ParseContext {
            reference: Timestamp::parse_rfc3339("2026-11-01T00:00:00Z", 0).expect("valid"),
            zone: crate::zone::LocalZone::Fixed(3600),
        }
    }

    fn format(pattern: &str, layout: Option<&str>) -> RegexFormat {
        RegexFormat::new("custom".to_owned(), pattern, layout.map(str::to_owned)).expect("valid format")
    }

    fn attrs<'r>(r: &'r Record<'_>) -> Vec<(&'r str, &'r str)> {
        r.attrs.iter().map(|(k, v)| (&**k, &**v)).collect()
    }

    #[test]
    fn typed_access_groups() {
        let f = format(
            r"^(?P<client_ip>\S+) (?P<ts>\S+) (?P<method>\S+) (?P<path>\S+) (?P<status>\S+) (?P<bytes>\S+) (?P<latency_ms>\S+) (?P<trace_id>\w+)$",
            None,
        );
        assert_eq!(f.name(), "custom");
        let r = f
            .parse(
                "10.0.0.1 2026-11-01T12:00:00Z GET /health 503 - 12.5 abc123",
                &ctx(),
            )
            .expect("parses");
        let a = r.access.as_ref().expect("access");
        assert_eq!(
            (a.client_ip, a.method, a.path),
            ("10.0.0.1", Some("GET"), Some("/health"))
        );
        assert_eq!((a.status, a.bytes, a.latency_ms), (503, None, Some(12.5)));
        assert_eq!(
            (a.user, a.referer, a.user_agent, a.protocol),
            (None, None, None, None)
        );
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(
            r.message,
            "10.0.0.1 2026-11-01T12:00:00Z GET /health 503 - 12.5 abc123"
        );
        assert_eq!(attrs(&r), [("trace_id", "abc123")]);
        assert_eq!(
            f.parse("10.0.0.1 2026-11-01T12:00:00Z GET / 2xx 1 1 t", &ctx()),
            Err(ParseError::Invalid {
                field: "status",
                reason: "not a number"
            })
        );
        assert_eq!(
            f.parse("10.0.0.1 2026-11-01T12:00:00Z GET / 200 x 1 t", &ctx())
                .map_err(|e| e.kind()),
            Err("bytes")
        );
    }

    #[test]
    fn fields_and_other_groups() {
        let f = format(
            r"^\[(?P<ts>[^\]]+)\] (?P<level>\w+) (?P<host>\S+)/(?P<service>\S+)(?: user=(?P<user>\S+))?: (?P<message>.*)$",
            None,
        );
        let r = f
            .parse(
                "[2026-11-01 12:00:00,250] warn db-2/postgres user=bob: checkpoint slow",
                &ctx(),
            )
            .expect("parses");
        assert_eq!(
            r.ts.to_rfc3339(),
            "2026-11-01T11:00:00.250Z",
            "zone-less: default offset"
        );
        assert_eq!(r.level, Some(Level::Warn));
        assert_eq!(
            (r.host.as_deref(), r.service.as_deref()),
            (Some("db-2"), Some("postgres"))
        );
        assert_eq!(r.message, "checkpoint slow");
        assert_eq!(
            attrs(&r),
            [("user", "bob")],
            "without a status group, access names are attrs"
        );
        let r = f
            .parse("[2026-11-01 12:00:00] LOUD db-2/postgres: x", &ctx())
            .expect("parses");
        assert_eq!((r.level, attrs(&r)), (None, vec![("level", "LOUD")]));
    }

    #[test]
    fn auto_detected_timestamps() {
        let f = format(r"^(?P<ts>.+?) \| (?P<message>.*)$", None);
        let cases = [
            ("2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00Z"),
            ("[10/Oct/2026:13:55:36 -0700]", "2026-10-10T20:55:36Z"),
            ("10/Oct/2026:13:55:36 +0000", "2026-10-10T13:55:36Z"),
            ("Oct  9 13:55:36", "2026-10-09T12:55:36Z"),
            ("1793534400", "2026-11-01T12:00:00Z"),
            ("1793534400123", "2026-11-01T12:00:00.123Z"),
        ];
        for (ts, want) in cases {
            let line = format!("{ts} | hello");
            let r = f.parse(&line, &ctx()).expect(ts);
            assert_eq!(r.ts.to_rfc3339(), want, "{ts}");
            assert_eq!(r.message, "hello");
        }
        assert!(matches!(
            f.parse("yesterday | x", &ctx()),
            Err(ParseError::Time(_))
        ));
        assert!(matches!(
            f.parse("Oct  9 13:55:36 pm | x", &ctx()),
            Err(ParseError::Time(_))
        ));
    }

    #[test]
    fn layouts() {
        let zoned = format(
            r"^(?P<ts>\S+ \S+ \S+) (?P<message>.*)$",
            Some("%d.%m.%Y %H:%M:%S%.f %z"),
        );
        let r = zoned
            .parse("01.11.2026 12:00:00.5 -0300 hi", &ctx())
            .expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T15:00:00.500Z");
        let naive = format(r"^(?P<ts>\S+ \S+) (?P<message>.*)$", Some("%Y/%m/%d %H:%M:%S"));
        let r = naive.parse("2026/11/01 12:00:00 hi", &ctx()).expect("parses");
        assert_eq!(r.ts.to_rfc3339(), "2026-11-01T11:00:00Z");
        let yearless = format(r"^(?P<ts>\S+ \S+) (?P<message>.*)$", Some("%m-%d %H:%M:%S"));
        let r = yearless.parse("12-31 23:00:00 hi", &ctx()).expect("parses");
        assert_eq!(
            r.ts.to_rfc3339(),
            "2025-12-31T22:00:00Z",
            "year inferred before the reference"
        );
        let epoch = format(r"^(?P<ts>\d+) (?P<message>.*)$", Some("%s"));
        let r = epoch.parse("1793534400 hi", &ctx()).expect("parses");
        assert_eq!(
            r.ts.to_rfc3339(),
            "2026-11-01T12:00:00Z",
            "epoch is UTC whatever the default zone"
        );
        assert!(matches!(
            naive.parse("2026-11-01 12:00:00 hi", &ctx()),
            Err(ParseError::Time(_))
        ));
    }

    #[test]
    fn construction_errors() {
        let err = |pattern: &str, layout: Option<&str>| {
            RegexFormat::new("x".to_owned(), pattern, layout.map(str::to_owned)).expect_err(pattern)
        };
        assert!(
            matches!(err(r"(?P<ts>\S+", None), RegexFormatError::BadRegex(m) if m.contains("unclosed group"))
        );
        assert_eq!(
            err(r"(?P<time>\S+) (?P<message>.*)", None),
            RegexFormatError::MissingTimestamp
        );
        assert!(matches!(
            err(r"(?P<ts>\S+)", Some("%Y-%Q")),
            RegexFormatError::BadLayout { .. }
        ));
    }

    #[test]
    fn non_matching_and_empty_lines() {
        let f = format(r"^(?P<ts>\S+) (?P<message>.*)$", None);
        assert_eq!(f.parse("", &ctx()), Err(ParseError::Empty));
        assert_eq!(
            f.parse("single", &ctx()),
            Err(ParseError::Layout("a line the format's regex matches"))
        );
        let optional = format(r"^(?:(?P<ts>\d+) )?(?P<message>.*)$", None);
        assert_eq!(
            optional.parse("no time here", &ctx()),
            Err(ParseError::Missing("timestamp"))
        );
    }
}
