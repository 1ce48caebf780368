//! Golden tests: each built-in format parses `tests/golden/<format>.log`; the records (or errors)
//! must equal, as pretty JSON, `tests/golden/<format>.expected.json`. `UPDATE_GOLDEN=1` rewrites
//! the expected files (review the diff by eye before committing).

use std::fs;
use std::path::PathBuf;

use loglens_core::format::{Format, ParseContext};
use loglens_core::{Record, Timestamp};
use serde_json::{json, Value};

/// The reading context of every golden file: read on 2 January 2027 (so syslog 3164's
/// December lines fall in 2026), zone-less times in UTC.
fn context() -> ParseContext {
    ParseContext {
        reference: Timestamp::parse_rfc3339("2027-01-02T00:00:00Z", 0).expect("valid reference"),
        zone: loglens_core::zone::LocalZone::Unknown,
    }
}

fn record_json(r: &Record<'_>) -> Value {
    json!({
        "ts": r.ts.to_rfc3339(),
        "level": r.level.map(|l| l.as_str()),
        "host": r.host,
        "service": r.service,
        "message": r.message,
        "access": r.access.as_ref().map(|a| json!({
            "client_ip": a.client_ip,
            "user": a.user,
            "method": a.method,
            "path": a.path,
            "protocol": a.protocol,
            "status": a.status,
            "bytes": a.bytes,
            "latency_ms": a.latency_ms,
            "referer": a.referer,
            "user_agent": a.user_agent,
        })),
        // One single-key object per attr: keeps the order and any repeated keys.
        "attrs": r.attrs.iter().map(|(k, v)| json!({ k.as_ref(): v })).collect::<Vec<_>>(),
    })
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("golden")
}

/// Parses every line of the format's golden input into pretty JSON.
fn actual(format: Format) -> String {
    let path = golden_dir().join(format!("{}.log", format.name()));
    let input = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    // Formats whose header names their columns are fitted to the file, as a run does.
    let head: Vec<&str> = input.lines().take(100).collect();
    let parser = format.parser();
    let parser = match parser.has_header() {
        true => parser.for_file(&head).unwrap_or(parser),
        false => parser,
    };
    let ctx = context();
    let entries: Vec<Value> = input
        .lines()
        .enumerate()
        .map(|(i, line)| {
            // A batch line (OTLP/JSON) holds several records: they are listed as "records".
            let mut records = Vec::new();
            match parser.parse_each(line, &ctx, &mut |r| records.push(record_json(&r))) {
                Ok(()) if records.len() == 1 => json!({ "line": i + 1, "input": line, "record": records[0] }),
                Ok(()) => json!({ "line": i + 1, "input": line, "records": records }),
                Err(e) => json!({ "line": i + 1, "input": line, "error": e.to_string(), "kind": e.kind() }),
            }
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&entries).expect("serializable");
    text.push('\n');
    text
}

/// A line diff (longest common subsequence): `-` expected, `+` actual, with line numbers.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{:>5} {}\n", i + 1, a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{:>5} {}\n", j + 1, b[j]));
            j += 1;
        }
    }
    out
}

fn check(format: Format) {
    let actual = actual(format);
    let path = golden_dir().join(format!("{}.expected.json", format.name()));
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        fs::write(&path, &actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        panic!(
            "{} differs from the parse of {}.log (- expected, + actual; rerun with UPDATE_GOLDEN=1 to accept):\n{}",
            path.display(),
            format.name(),
            diff(&expected, &actual)
        );
    }
}

#[test]
fn combined() {
    check(Format::Combined);
}

#[test]
fn common() {
    check(Format::Common);
}

#[test]
fn syslog3164() {
    check(Format::Syslog3164);
}

#[test]
fn syslog5424() {
    check(Format::Syslog5424);
}

#[test]
fn json() {
    check(Format::Json);
}

#[test]
fn logfmt() {
    check(Format::Logfmt);
}

#[test]
fn pylog() {
    check(Format::PythonLogging);
}

#[test]
fn journald() {
    check(Format::Journald);
}

#[test]
fn docker() {
    check(Format::Docker);
}

#[test]
fn cri() {
    check(Format::Cri);
}

#[test]
fn postgres() {
    check(Format::Postgres);
}

#[test]
fn mysql() {
    check(Format::Mysql);
}

#[test]
fn redis() {
    check(Format::Redis);
}

#[test]
fn apache_error() {
    check(Format::ApacheError);
}

#[test]
fn logcat() {
    check(Format::Logcat);
}

#[test]
fn w3c() {
    check(Format::W3c);
}

#[test]
fn zeek() {
    check(Format::Zeek);
}

#[test]
fn otel() {
    check(Format::Otel);
}

#[test]
fn every_builtin_format_has_golden_files() {
    for format in Format::ALL {
        for ext in ["log", "expected.json"] {
            let path = golden_dir().join(format!("{}.{ext}", format.name()));
            assert!(path.is_file(), "missing {}", path.display());
        }
    }
}

#[test]
fn diff_shows_changed_lines() {
    assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "-    2 b\n+    2 x\n");
    assert_eq!(diff("a\n", "a\nb\n"), "+    2 b\n");
}
