//! End-to-end: `loglens formats list` names every format with an example, and `formats test`
//! says which format detection picks for a file and why the others fail, line by line.
// A failed setup step (temp dir, file write) should fail the test on the spot.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::{detected_format, json_of, loglens, process_json, read_dataset, strings};

#[test]
fn list_names_user_builtin_and_generic_formats_with_examples() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("loglens.toml");
    std::fs::write(
        &config,
        "[[format]]\nname = \"myapp\"\nregex = '^(?P<ts>\\S+) (?P<level>\\w+) (?P<message>.*)$'\n",
    )
    .unwrap();
    let out = loglens()
        .args(["formats", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names.first(), Some(&"myapp"), "{text}");
    assert_eq!(names.last(), Some(&"generic"), "{text}");
    for name in ["combined", "syslog3164", "journald", "cri", "logcat"] {
        assert!(names.contains(&name), "{name} missing: {text}");
    }
    assert!(
        text.contains(r#""GET /a HTTP/1.1" 200 512"#),
        "examples are listed: {text}"
    );
}

#[test]
fn test_counts_the_lines_a_block_format_joins() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("slow.log");
    let entry = |minute: u32| {
        format!(
            "# Time: 2026-10-11T22:{minute:02}:15.003417Z\n\
             # User@Host: shop[shop] @ web-1 [10.0.0.5]  Id:    42\n\
             # Query_time: 2.000247  Lock_time: 0.000102 Rows_sent: 1  Rows_examined: 50000\n\
             SET timestamp=1791756855;\n\
             SELECT 1;\n"
        )
    };
    std::fs::write(&log, entry(14) + &entry(15)).unwrap();
    let out = loglens().args(["formats", "test"]).arg(&log).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("detected format: mysql_slow"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("mysql_slow "))
        .unwrap_or_else(|| panic!("{text}"));
    // Two `# Time:` lines read; `SET` and `SELECT` joined; `# User@Host:` are header lines.
    assert_eq!(
        row.split_whitespace().take(3).collect::<Vec<_>>(),
        ["mysql_slow", "2/6", "4"],
        "{text}"
    );
    let joined = text
        .lines()
        .filter(|l| l.contains("joins the record above"))
        .count();
    assert_eq!(joined, 8, "{text}");
}

#[test]
fn test_picks_the_format_and_explains_each_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&log).unwrap(),
        flate2::Compression::default(),
    );
    let lines = [
        r#"192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8.5.0""#,
        r#"192.0.2.1 - - [10/Oct/2026:13:55:37 +0000] "GET /b HTTP/1.1" 404 0 "-" "curl/8.5.0" "10.0.0.1""#,
        "not a log line",
    ];
    for line in lines {
        writeln!(gz, "{line}").unwrap();
    }
    gz.finish().unwrap();
    let out = loglens().args(["formats", "test"]).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("3 lines tried; detected format: combined"),
        "{text}"
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}: {text}"))
            .to_owned()
    };
    let columns = |name: &str| {
        row(name)
            .split_whitespace()
            .take(3)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(columns("combined"), ["combined", "2/3", "0"], "{text}");
    assert!(row("combined").ends_with("line 3: missing [time]"), "{text}");
    assert!(row("common").contains("0  line 1: not common"), "{text}");
    let per_line: Vec<&str> = text.lines().rev().take(3).collect();
    assert!(
        per_line[0].contains("unparsed (combined: missing [time])"),
        "{text}"
    );
    assert!(per_line[1].contains("combined"), "{text}");
}

#[test]
fn test_of_a_missing_file_names_it_and_fails() {
    let out = loglens()
        .args(["formats", "test", "/nonexistent/app.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/app.log"), "{err}");
}

/// A format file in `formats_dir`: listed, detected, its records carry its fields; a sample
/// that does not parse stops the run with the file, format and sample named.
#[test]
fn format_files_in_a_directory_are_used_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("formats.d")).unwrap();
    let spec = r#"
[[format]]
name = "payments"
description = "the payments daemon: `ts|L|component|message`"
regex = '^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)\|(?P<level>[DIWE])\|(?P<service>\w+)\|(?P<message>.*)$'
levels = { D = "debug", I = "info", W = "warn", E = "error" }
samples = [
  { line = "2026-03-04T05:06:07Z|E|ledger|balance mismatch on account 7", level = "error", service = "ledger" },
  "2026-03-04T05:06:08Z|I|api|charge accepted",
]
"#;
    std::fs::write(dir.path().join("formats.d/payments.toml"), spec).unwrap();
    let config = dir.path().join("loglens.toml");
    std::fs::write(&config, "formats_dir = \"formats.d\"\n").unwrap();

    let out = loglens()
        .args(["formats", "list", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().nth(1).unwrap_or_default();
    assert!(
        first.starts_with("payments") && first.contains("the payments daemon"),
        "{text}"
    );
    for builtin in [
        "log4j",
        "glog",
        "haproxy",
        "windows_cbs",
        "zap",
        "spring",
        "kafka",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(builtin)),
            "{builtin} missing: {text}"
        );
    }

    let log = dir.path().join("payments.log");
    std::fs::write(
        &log,
        "2026-03-04T05:06:07Z|W|ledger|slow commit\n2026-03-04T05:06:08Z|E|api|card declined\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let summary = json_of(
        loglens()
            .args(["process", "--json", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .arg(&log),
    );
    assert_eq!(summary["parsed"]["payments"], 2, "{summary}");
    let records = read_dataset(&data.join("records"));
    assert_eq!(
        strings(&records, "level"),
        [Some("warn".to_owned()), Some("error".to_owned())]
    );

    std::fs::write(
        dir.path().join("formats.d/payments.toml"),
        spec.replace("|E|ledger|balance", "|X|ledger|balance"),
    )
    .unwrap();
    let out = loglens()
        .args(["process", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg(&log)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("payments.toml: format[0] (payments).samples[0]: does not parse"),
        "{err}"
    );
}

/// A Collector file-exporter file: one OTLP/JSON batch per line, every log record a record;
/// lines are counted once however many records they hold.
#[test]
fn otel_batches_give_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("otel-logs.json");
    let batch = |n: u64, records: u64| {
        let logs: Vec<String> = (0..records)
            .map(|i| {
                format!(
                    r#"{{"timeUnixNano":"{}","severityText":"{}","body":{{"stringValue":"request {n}.{i} served"}}}}"#,
                    1_772_600_767_000_000_000u64 + (n * 10 + i) * 1_000_000_000,
                    if i == 0 { "ERROR" } else { "INFO" }
                )
            })
            .collect();
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},"scopeLogs":[{{"scope":{{"name":"app"}},"logRecords":[{}]}}]}}]}}"#,
            logs.join(",")
        )
    };
    let text = format!("{}\n{}\n{}\nnot json\n", batch(0, 3), batch(1, 1), batch(2, 2));
    std::fs::write(&log, text).unwrap();
    let data = dir.path().join("data");
    let summary = process_json(&data, &log);
    assert_eq!(detected_format(&summary, &log), "otel", "{summary}");
    assert_eq!(summary["lines"], 4);
    assert_eq!(summary["parsed"]["otel"], 3);
    assert_eq!(summary["records_written"], 6);
    let records = read_dataset(&data.join("records"));
    assert_eq!(
        strings(&records, "level")
            .iter()
            .filter(|l| l.as_deref() == Some("error"))
            .count(),
        3
    );
    assert!(strings(&records, "service")
        .iter()
        .all(|s| s.as_deref() == Some("checkout")));
    assert_eq!(common::u64s(&records, "line"), [1, 1, 1, 2, 3, 3].map(Some));
}
