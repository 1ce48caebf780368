//! End-to-end: `loglens formats list` names every format with an example, and `formats test`
//! says which format detection picks for a file and why the others fail, line by line.
// A failed setup step (temp dir, file write) should fail the test on the spot.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::loglens;

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
    assert!(row("combined").contains("2/3  line 3: missing [time]"), "{text}");
    assert!(row("common").contains("0/3  line 1: not common"), "{text}");
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
