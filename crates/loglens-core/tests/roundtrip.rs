//! Property tests: for every built-in format, a record the format can carry, rendered with
//! `Format::render` and parsed back with `Format::parser()`, comes back equal on every field the
//! format carries.

use std::borrow::Cow;

use loglens_core::format::{Format, ParseContext};
use loglens_core::{Access, Level, Record, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// 2000-01-01 .. 2099-12-31, in microseconds.
const RANGE: std::ops::Range<i64> = 946_684_800_000_000..4_102_358_400_000_000;

fn ts_with_precision(unit: i64) -> impl Strategy<Value = Timestamp> {
    RANGE.prop_map(move |us| Timestamp(us - us.rem_euclid(unit)))
}

fn any_level() -> impl Strategy<Value = Level> {
    prop::sample::select(Level::ALL.to_vec())
}

/// Syslog has no trace: it renders as debug.
fn syslog_level() -> impl Strategy<Value = Level> {
    prop::sample::select(Level::ALL[1..].to_vec())
}

fn owned(s: String) -> Cow<'static, str> {
    Cow::Owned(s)
}

/// A host name or similar space-free ASCII token; never the NILVALUE `-`.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,19}"
}

/// Free text on one line: spaces, quotes, backslashes, brackets, separators and unicode.
fn one_line_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[^\r\n\u{feff}]{0,30}",
        "(ok|a - b|\"q\"|\\\\|]|=|ünïcødé|漢字| |\t|🦀|-){0,8}",
    ]
}

/// Any text at all, line breaks and control characters included (JSON and logfmt escape them).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,30}",
        ".{0,30}",
        "[\u{0}-\u{1f}\"\\\\ a\u{7f}\u{a0}é]{0,12}"
    ]
}

/// An attr key that no format reads as a record field.
fn attr_key() -> impl Strategy<Value = String> {
    "x_[a-z0-9_.]{0,10}"
}

fn round_trip(format: Format, record: &Record<'_>, ctx: &ParseContext) -> Result<(), TestCaseError> {
    let mut line = String::new();
    format.render(record, &mut line);
    let parsed = format
        .parser()
        .parse(&line, ctx)
        .map_err(|e| TestCaseError::fail(format!("{format}: {e} in {line:?}")))?;
    prop_assert_eq!(&parsed, record, "{} line {:?}", format, line);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// Owned access-log fields; the record borrows them.
#[derive(Debug, Clone)]
struct AccessSpec {
    client_ip: String,
    user: Option<String>,
    request: Request,
    status: u16,
    bytes: Option<u64>,
    latency_ms: Option<u32>,
    referer: Option<String>,
    user_agent: Option<String>,
}

#[derive(Debug, Clone)]
enum Request {
    Line {
        method: String,
        path: String,
        protocol: String,
    },
    Garbage(String),
}

/// Quoted access-log fields as the combined parser hands them out: escapes kept as written
/// (`\"`, `\\`), never a bare `"` or a lone trailing `\` (the renderer does not escape, and
/// the parser does not unescape); `-` alone means none.
fn quoted_text() -> impl Strategy<Value = String> {
    "([^\"\\\\\r\n]|\\\\\"|\\\\\\\\){0,30}".prop_filter("`-` is none", |s| s != "-")
}

fn access_spec() -> impl Strategy<Value = AccessSpec> {
    let ip = prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("::1".to_owned()),
        Just("2001:db8::7".to_owned()),
    ];
    let request = prop_oneof![
        4 => ("[A-Z]{3,7}", "/[A-Za-z0-9/?=&%._~-]{0,30}", "HTTP/(1\\.0|1\\.1|2\\.0)")
            .prop_map(|(method, path, protocol)| Request::Line { method, path, protocol }),
        1 => "[^ \"\\\\\r\n]{0,12}".prop_map(Request::Garbage),
    ];
    (
        ip,
        proptest::option::of("[a-z][a-z0-9_]{0,8}"),
        request,
        100u16..=599,
        proptest::option::of(0u64..10_000_000_000),
        proptest::option::of(0u32..600_000),
        proptest::option::of(quoted_text()),
        proptest::option::of(quoted_text()),
    )
        .prop_map(
            |(client_ip, user, request, status, bytes, latency_ms, referer, user_agent)| AccessSpec {
                client_ip,
                user,
                request,
                status,
                bytes,
                latency_ms,
                referer,
                user_agent,
            },
        )
}

fn access_record(ts: Timestamp, a: &AccessSpec, with_agent: bool) -> Record<'_> {
    let (message, method, path, protocol) = match &a.request {
        Request::Line {
            method,
            path,
            protocol,
        } => (
            Cow::Owned(format!("{method} {path} {protocol}")),
            Some(method.as_str()),
            Some(path.as_str()),
            Some(protocol.as_str()),
        ),
        Request::Garbage(g) => (Cow::Borrowed(g.as_str()), None, None, None),
    };
    Record {
        ts,
        host: None,
        service: None,
        level: Some(Level::from_http_status(a.status)),
        message,
        access: Some(Access {
            client_ip: &a.client_ip,
            user: a.user.as_deref(),
            method,
            path,
            protocol,
            status: a.status,
            bytes: a.bytes,
            latency_ms: if with_agent {
                a.latency_ms.map(f64::from)
            } else {
                None
            },
            referer: if with_agent { a.referer.as_deref() } else { None },
            user_agent: if with_agent { a.user_agent.as_deref() } else { None },
        }),
        attrs: Vec::new(),
    }
}

/// The property test covering each format; the exhaustive match makes a new format fail to
/// compile until it has one.
fn covered_by(format: Format) -> &'static str {
    match format {
        Format::Combined => "combined_round_trips",
        Format::Common => "common_round_trips",
        Format::Syslog3164 => "syslog3164_round_trips",
        Format::Syslog5424 => "syslog5424_round_trips",
        Format::Json => "json_round_trips",
        Format::Logfmt => "logfmt_round_trips",
        Format::PythonLogging => "pylog_round_trips",
        Format::Journald => "journald_round_trips",
        Format::Docker => "docker_round_trips",
        Format::Cri => "cri_round_trips",
        Format::Postgres => "postgres_round_trips",
        Format::Mysql => "mysql_round_trips",
        Format::Redis => "redis_round_trips",
        Format::ApacheError => "apache_error_round_trips",
        Format::Logcat => "logcat_round_trips",
        Format::W3c => "w3c_round_trips",
        Format::Zeek => "zeek_round_trips",
        Format::Otel => "otel_round_trips",
    }
}

#[test]
fn every_builtin_format_has_a_property_test() {
    let names: Vec<&str> = Format::ALL.iter().map(|f| covered_by(*f)).collect();
    assert_eq!(names.len(), 18);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn combined_round_trips(ts in ts_with_precision(1_000_000), a in access_spec()) {
        round_trip(Format::Combined, &access_record(ts, &a, true), &ParseContext::default())?;
    }

    #[test]
    fn w3c_round_trips(
        ts in ts_with_precision(1_000_000),
        a in access_spec(),
        token_fields in proptest::collection::vec(proptest::option::of(token()), 3),
        query in proptest::option::of("[a-z0-9=&%]{1,20}"),
        server in proptest::option::of(("[0-9]{1,3}", "[0-9]{1,5}")),
        substatus in proptest::option::of("[0-9]{1,3}"),
    ) {
        // IIS's default fields: no protocol, no bytes; values without spaces.
        let (method, path) = match &a.request {
            Request::Line { method, path, .. } => (method.clone(), format!("/{}", path.trim_start_matches('/').replace('?', "_"))),
            Request::Garbage(_) => ("GET".to_owned(), "/".to_owned()),
        };
        let message = match &query {
            Some(q) => format!("{method} {path}?{q}"),
            None => format!("{method} {path}"),
        };
        let mut record = Record::new(ts, message);
        record.level = Some(Level::from_http_status(a.status));
        record.access = Some(Access {
            client_ip: &a.client_ip,
            user: token_fields[0].as_deref(),
            method: Some(&method),
            path: Some(&path),
            protocol: None,
            status: a.status,
            bytes: None,
            latency_ms: a.latency_ms.map(f64::from),
            referer: token_fields[1].as_deref(),
            user_agent: token_fields[2].as_deref(),
        });
        if let Some(q) = &query {
            record.attrs.push((Cow::Borrowed("query"), owned(q.clone())));
        }
        if let Some((ip, port)) = &server {
            record.attrs.push((Cow::Borrowed("s-ip"), owned(ip.clone())));
            record.attrs.push((Cow::Borrowed("s-port"), owned(port.clone())));
        }
        if let Some(sub) = &substatus {
            record.attrs.push((Cow::Borrowed("sc-substatus"), owned(sub.clone())));
        }
        round_trip(Format::W3c, &record, &ParseContext::default())?;
    }

    #[test]
    fn otel_round_trips(
        ts in ts_with_precision(1),
        level in proptest::option::of(any_level()),
        message in any_text(),
        service in proptest::option::of(token()),
        host in proptest::option::of(token()),
        attrs in proptest::collection::vec((attr_key(), any_text()), 0..4),
    ) {
        let mut record = Record::new(ts, message);
        record.level = level;
        record.service = service.map(owned);
        record.host = host.map(owned);
        record.attrs = attrs.into_iter().map(|(k, v)| (owned(k), owned(v))).collect();
        round_trip(Format::Otel, &record, &ParseContext::default())?;
    }

    #[test]
    fn zeek_round_trips(
        ts in ts_with_precision(1),
        values in proptest::collection::vec(proptest::option::of("[A-Za-z0-9.:/_-]{1,12}"), 20),
    ) {
        // conn.log's columns after `ts`, from the attrs; a missing one is `-`.
        let names = &loglens_core::format::zeek::CONN_FIELDS[1..];
        let values: Vec<Option<String>> = values.into_iter().map(|v| v.filter(|v| v != "-" && v != "(empty)")).collect();
        let message: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(name, _)| **name != "uid")
            .filter_map(|(_, v)| v.as_deref())
            .collect();
        let mut record = Record::new(ts, message.join(" "));
        for (name, value) in names.iter().zip(&values) {
            if let Some(v) = value {
                record.attrs.push((Cow::Borrowed(*name), owned(v.clone())));
            }
        }
        round_trip(Format::Zeek, &record, &ParseContext::default())?;
    }

    #[test]
    fn common_round_trips(ts in ts_with_precision(1_000_000), a in access_spec()) {
        round_trip(Format::Common, &access_record(ts, &a, false), &ParseContext::default())?;
    }

    #[test]
    fn syslog3164_round_trips(
        ts in ts_with_precision(1_000_000),
        level in proptest::option::of(syslog_level()),
        facility in 0usize..24,
        host in proptest::option::of(token()),
        service in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_./-]{0,15}"),
        pid in proptest::option::of("[0-9]{1,7}"),
        message in one_line_text(),
    ) {
        const FACILITIES: [&str; 24] = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
            "local2", "local3", "local4", "local5", "local6", "local7",
        ];
        let mut record = Record::new(ts, message);
        record.level = level;
        record.host = host.map(owned);
        record.service = service.map(owned);
        if level.is_some() {
            record.attrs.push((Cow::Borrowed("facility"), Cow::Borrowed(FACILITIES[facility])));
        }
        if let Some(pid) = pid {
            record.attrs.push((Cow::Borrowed("pid"), owned(pid)));
        }
        // The line has no year: the reader's reference time (here: the event itself) gives it.
        let ctx = ParseContext { reference: ts, zone: loglens_core::zone::LocalZone::Unknown };
        round_trip(Format::Syslog3164, &record, &ctx)?;
    }

    #[test]
    fn syslog5424_round_trips(
        ts in ts_with_precision(1),
        level in syslog_level(),
        facility in prop::sample::select(vec!["kern", "user", "daemon", "auth", "local0", "local7"]),
        host in proptest::option::of(token()),
        service in proptest::option::of(token()),
        pid in proptest::option::of("[0-9]{1,7}"),
        msgid in proptest::option::of("[A-Z][A-Z0-9_]{0,10}"),
        sd in proptest::collection::vec(
            ("[a-zA-Z]{1,8}@[0-9]{1,5}", proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9_-]{0,7}", one_line_text()), 1..4)),
            0..3,
        ),
        message in one_line_text(),
    ) {
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.host = host.map(owned);
        record.service = service.map(owned);
        record.attrs.push((Cow::Borrowed("facility"), Cow::Borrowed(facility)));
        if let Some(pid) = pid {
            record.attrs.push((Cow::Borrowed("pid"), owned(pid)));
        }
        if let Some(msgid) = msgid {
            record.attrs.push((Cow::Borrowed("msgid"), owned(msgid)));
        }
        let mut seen = Vec::new();
        for (id, params) in sd {
            if seen.contains(&id) {
                continue; // an SD-ID appears once per message
            }
            for (name, value) in params {
                record.attrs.push((owned(format!("{id}.{name}")), owned(value)));
            }
            seen.push(id);
        }
        round_trip(Format::Syslog5424, &record, &ParseContext::default())?;
    }

    #[test]
    fn json_round_trips(
        ts in ts_with_precision(1_000),
        level in proptest::option::of(any_level()),
        host in proptest::option::of(any_text()),
        service in proptest::option::of(any_text()),
        message in any_text(),
        attrs in proptest::collection::vec((attr_key(), any_text()), 0..6),
    ) {
        let mut record = Record::new(ts, message);
        record.level = level;
        record.host = host.map(owned);
        record.service = service.map(owned);
        record.attrs = attrs.into_iter().map(|(k, v)| (owned(k), owned(v))).collect();
        round_trip(Format::Json, &record, &ParseContext::default())?;
    }

    #[test]
    fn logfmt_round_trips(
        ts in ts_with_precision(1),
        level in proptest::option::of(any_level()),
        host in proptest::option::of(any_text()),
        service in proptest::option::of(any_text()),
        message in any_text(),
        attrs in proptest::collection::vec((attr_key(), any_text()), 0..6),
    ) {
        let mut record = Record::new(ts, message);
        record.level = level;
        record.host = host.map(owned);
        record.service = service.map(owned);
        record.attrs = attrs.into_iter().map(|(k, v)| (owned(k), owned(v))).collect();
        round_trip(Format::Logfmt, &record, &ParseContext::default())?;
    }

    #[test]
    fn pylog_round_trips(
        ts in ts_with_precision(1_000),
        level in any_level(),
        service in "[a-z_][a-z0-9_.]{0,15}",
        message in one_line_text(),
    ) {
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.service = Some(owned(service));
        round_trip(Format::PythonLogging, &record, &ParseContext::default())?;
    }

    #[test]
    fn journald_round_trips(
        ts in ts_with_precision(1),
        level in proptest::option::of(syslog_level()),
        host in proptest::option::of(any_text()),
        service in proptest::option::of(any_text()),
        message in any_text(),
        attrs in proptest::collection::vec((attr_key(), any_text()), 0..6),
    ) {
        let mut record = Record::new(ts, message);
        record.level = level;
        record.host = host.map(owned);
        record.service = service.map(owned);
        record.attrs = attrs.into_iter().map(|(k, v)| (owned(k), owned(v))).collect();
        round_trip(Format::Journald, &record, &ParseContext::default())?;
    }

    #[test]
    fn docker_round_trips(
        ts in ts_with_precision(1),
        stream in prop::sample::select(vec!["stdout", "stderr"]),
        message in any_text(),
        attrs in proptest::collection::vec((attr_key(), any_text()), 0..4),
    ) {
        let mut record = Record::new(ts, message);
        record.attrs.push((Cow::Borrowed("stream"), Cow::Borrowed(stream)));
        record.attrs.extend(attrs.into_iter().map(|(k, v)| (owned(k), owned(v))));
        round_trip(Format::Docker, &record, &ParseContext::default())?;
    }

    #[test]
    fn cri_round_trips(
        ts in ts_with_precision(1),
        stream in prop::sample::select(vec!["stdout", "stderr"]),
        tag in prop::sample::select(vec!["F", "P"]),
        message in one_line_text(),
    ) {
        let mut record = Record::new(ts, message);
        record.attrs.push((Cow::Borrowed("stream"), Cow::Borrowed(stream)));
        record.attrs.push((Cow::Borrowed("logtag"), Cow::Borrowed(tag)));
        round_trip(Format::Cri, &record, &ParseContext::default())?;
    }

    #[test]
    fn postgres_round_trips(
        ts in ts_with_precision(1_000),
        severity in prop::sample::select(vec![
            ("LOG", Some(Level::Info)), ("ERROR", Some(Level::Error)), ("FATAL", Some(Level::Critical)),
            ("DEBUG3", Some(Level::Debug)), ("STATEMENT", None), ("DETAIL", None),
        ]),
        pid in "[0-9]{1,7}",
        message in one_line_text(),
    ) {
        // The two spaces after the severity's colon are the separator, not the message.
        let message = message.trim_start().to_owned();
        let mut record = Record::new(ts, message);
        record.level = severity.1;
        record.attrs.push((Cow::Borrowed("pid"), owned(pid)));
        record.attrs.push((Cow::Borrowed("severity"), Cow::Borrowed(severity.0)));
        round_trip(Format::Postgres, &record, &ParseContext::default())?;
    }

    #[test]
    fn mysql_round_trips(
        ts in ts_with_precision(1),
        level in prop::sample::select(vec![Level::Info, Level::Notice, Level::Warn, Level::Error]),
        thread in "[0-9]{1,6}",
        code in "MY-[0-9]{6}",
        subsystem in prop::sample::select(vec!["Server", "InnoDB", "Repl", "Auth"]),
        message in one_line_text(),
    ) {
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.service = Some(Cow::Borrowed(subsystem));
        record.attrs.push((Cow::Borrowed("thread"), owned(thread)));
        record.attrs.push((Cow::Borrowed("code"), owned(code)));
        round_trip(Format::Mysql, &record, &ParseContext::default())?;
    }

    #[test]
    fn redis_round_trips(
        ts in ts_with_precision(1_000),
        level in prop::sample::select(vec![Level::Debug, Level::Info, Level::Notice, Level::Warn]),
        pid in "[0-9]{1,6}",
        role in prop::sample::select(vec!["M", "S", "C", "X"]),
        message in one_line_text(),
    ) {
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.attrs.push((Cow::Borrowed("pid"), owned(pid)));
        record.attrs.push((Cow::Borrowed("role"), Cow::Borrowed(role)));
        round_trip(Format::Redis, &record, &ParseContext::default())?;
    }

    #[test]
    fn apache_error_round_trips(
        ts in ts_with_precision(1),
        level in any_level(),
        module in proptest::option::of("[a-z_]{1,12}"),
        pid in proptest::option::of(("[0-9]{1,6}", proptest::option::of("[0-9]{1,15}"))),
        client in proptest::option::of("[0-9.]{7,15}:[0-9]{1,5}"),
        message in "[^\\[\r\n\u{feff}][^\r\n\u{feff}]{0,30}",
    ) {
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.service = Some(owned(module.unwrap_or_else(|| "core".to_owned())));
        if let Some((pid, tid)) = pid {
            record.attrs.push((Cow::Borrowed("pid"), owned(pid)));
            if let Some(tid) = tid {
                record.attrs.push((Cow::Borrowed("tid"), owned(tid)));
            }
        }
        if let Some(client) = client {
            record.attrs.push((Cow::Borrowed("client"), owned(client)));
        }
        round_trip(Format::ApacheError, &record, &ParseContext::default())?;
    }

    #[test]
    fn logcat_round_trips(
        ts in ts_with_precision(1_000),
        level in prop::sample::select(vec![Level::Trace, Level::Debug, Level::Info, Level::Warn, Level::Error, Level::Critical]),
        pid in "[0-9]{1,5}",
        tid in "[0-9]{1,5}",
        tag in "[A-Za-z][A-Za-z0-9_.]{0,20}",
        message in one_line_text(),
    ) {
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.service = Some(owned(tag));
        record.attrs.push((Cow::Borrowed("pid"), owned(pid)));
        record.attrs.push((Cow::Borrowed("tid"), owned(tid)));
        let ctx = ParseContext { reference: ts, zone: loglens_core::zone::LocalZone::Unknown };
        round_trip(Format::Logcat, &record, &ctx)?;
    }

    /// No parser panics, whatever the line: arbitrary text, and damaged lines of each format
    /// (cut anywhere, a byte replaced) — each either parses or says why not.
    #[test]
    fn no_parser_panics(
        text in prop_oneof!["\\PC{0,80}", ".{0,80}", "[\\[\\]{}\":0-9 .TZ+-]{0,60}"],
        cut in 0usize..400,
        replace in 0usize..400,
        byte in prop::sample::select(vec![' ', ':', '[', ']', '"', '{', '}', 'x', '9', '-', '\\', 'é']),
    ) {
        let ctx = ParseContext::default();
        for format in Format::ALL {
            let parser = format.parser();
            let _ = parser.parse(&text, &ctx);
            let example = format.example();
            let mut damaged: String = example.chars().take(cut % (example.chars().count() + 1)).collect();
            let _ = parser.parse(&damaged, &ctx);
            damaged = example
                .chars()
                .enumerate()
                .map(|(i, c)| if i == replace % example.chars().count().max(1) { byte } else { c })
                .collect();
            if let Err(e) = parser.parse(&damaged, &ctx) {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
