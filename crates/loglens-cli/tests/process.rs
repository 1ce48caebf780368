//! End-to-end tests of `loglens process`: the real binary on real files, checked through the
//! Parquet it writes.

mod common;

use std::io::Write;

use common::{count_rows, json_of, loglens, parquet_files, read_dataset, strings, u64s};

const NGINX: &str = r#"203.0.113.9 - - [01/Nov/2026:10:15:00 +0000] "GET /index.html HTTP/1.1" 200 512 "-" "curl/8.0" 0.010
203.0.113.9 - - [01/Nov/2026:10:59:59 +0000] "GET /api/cart HTTP/1.1" 503 0 "-" "curl/8.0" 1.500
this line is garbage
198.51.100.2 - - [01/Nov/2026:11:00:00 +0100] "POST /login HTTP/1.1" 302 0 "https://example.com/" "Mozilla/5.0" 0.120
198.51.100.2 - - [01/Nov/2026:12:00:01 +0000] "GET /health HTTP/1.1" 2x0 0 "-" "kube-probe" 0.001
"#;

#[test]
fn mixed_directory_counts_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(logs.join("web")).expect("mkdir");
    std::fs::write(logs.join("web/access.log"), NGINX).expect("write");
    // The same kind of log, gzip-compressed as logrotate leaves it.
    let gz = std::fs::File::create(logs.join("web/access.log.1.gz")).expect("create gz");
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    enc.write_all(NGINX.lines().next().expect("a line").as_bytes())
        .expect("gz write");
    enc.finish().expect("gz finish");
    std::fs::write(logs.join("notes.txt"), "just some prose\nnothing like a log\n").expect("write");

    let data = dir.path().join("data");
    let output = loglens()
        .args(["process", "--json", "--data-dir"])
        .arg(&data)
        .arg(&logs)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json summary");
    assert_eq!(summary["files"], 3);
    assert_eq!(summary["lines"], 5 + 1 + 2);
    assert_eq!(summary["parsed"]["combined"], 3 + 1);
    assert_eq!(summary["unparsed"]["missing [time]"], 1);
    assert_eq!(summary["unparsed"]["invalid status: not a 3-digit code"], 1);
    assert_eq!(summary["unparsed"]["format not recognized"], 2);
    assert_eq!(summary["records_written"], 4);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("notes.txt: no format recognized"), "{stderr}");

    // Partitions follow the UTC hour: 10:15 and 10:59:59 and 11:00+01:00 (=10:00 UTC) → hour 10.
    let records = data.join("records");
    let dirs: Vec<String> = parquet_files(&records)
        .iter()
        .map(|p| {
            p.parent()
                .expect("dir")
                .strip_prefix(&records)
                .expect("under")
                .display()
                .to_string()
        })
        .collect();
    assert!(dirs.iter().all(|d| d == "date=2026-11-01/hour=10"), "{dirs:?}");
    assert_eq!(count_rows(&records), 4);

    let unparsed = read_dataset(&data.join("unparsed"));
    let mut rows: Vec<(String, u64, String)> = strings(&unparsed, "source")
        .into_iter()
        .zip(u64s(&unparsed, "line"))
        .zip(strings(&unparsed, "reason"))
        .map(|((s, l), r)| (s.expect("source"), l.expect("line"), r.expect("reason")))
        .map(|(s, l, r)| (s.rsplit('/').next().unwrap_or_default().to_owned(), l, r))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("access.log".into(), 3, "missing [time]".into()),
            (
                "access.log".into(),
                5,
                "invalid status: not a 3-digit code".into()
            ),
            ("notes.txt".into(), 1, "format not recognized".into()),
            ("notes.txt".into(), 2, "format not recognized".into()),
        ]
    );
}

#[test]
fn missing_path_is_named_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.log");
    let output = loglens()
        .arg("process")
        .arg(&missing)
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope.log"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one-line error: {stderr}");
    assert!(
        !dir.path().join("loglens-data").exists(),
        "nothing written before the inputs are checked"
    );
}

#[test]
fn bad_config_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("loglens.toml");
    std::fs::write(
        &config,
        "[[format]]\nname = \"app\"\nregex = '(?P<ts>\\S+ (unclosed'\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("a.log"), "x\n").expect("write");
    let output = loglens()
        .arg("process")
        .arg("--config")
        .arg(&config)
        .arg(dir.path().join("a.log"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("format[0]"), "{stderr}");
}

#[test]
fn records_carry_typed_access_fields_and_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("access.log"), NGINX).expect("write");
    std::fs::write(
        dir.path().join("loglens.toml"),
        "[[input]]\npath = \"access.log\"\nformat = \"combined\"\nhost = \"web-01\"\nservice = \"shop\"\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    loglens()
        .args(["process", "--config"])
        .arg(dir.path().join("loglens.toml"))
        .arg("--data-dir")
        .arg(&data)
        .assert()
        .success();
    let batches = read_dataset(&data.join("records"));
    type Row = (u64, Option<String>, Option<String>, Option<String>);
    let mut rows: Vec<Row> = u64s(&batches, "line")
        .into_iter()
        .zip(strings(&batches, "host"))
        .zip(strings(&batches, "service"))
        .zip(strings(&batches, "level"))
        .map(|(((l, h), s), lv)| (l.expect("line"), h, s, lv))
        .collect();
    rows.sort();
    let web = Some("web-01".to_owned());
    let shop = Some("shop".to_owned());
    assert_eq!(
        rows,
        vec![
            (1, web.clone(), shop.clone(), Some("info".into())),
            (2, web.clone(), shop.clone(), Some("error".into())),
            (4, web, shop, Some("info".into())),
        ]
    );
}

#[test]
fn second_run_reads_only_appended_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let lines: Vec<&str> = NGINX.lines().collect();
    std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[1])).expect("write");
    let data = dir.path().join("data");
    let run = |extra: &[&str]| {
        json_of(
            loglens()
                .args(["process", "--json", "--format", "combined", "--data-dir"])
                .arg(&data)
                .args(extra)
                .arg(&log),
        )
    };
    assert_eq!(run(&[])["lines"], 2);

    let mut file = std::fs::OpenOptions::new().append(true).open(&log).expect("open");
    writeln!(file, "{}", lines[3]).expect("append");
    drop(file);
    let second = run(&[]);
    assert_eq!(
        (second["lines"].clone(), second["files_resumed"].clone()),
        (1.into(), 1.into())
    );
    let third = run(&[]);
    assert_eq!(
        (third["lines"].clone(), third["files_unchanged"].clone()),
        (0.into(), 1.into())
    );

    let batches = read_dataset(&data.join("records"));
    let mut numbers: Vec<u64> = u64s(&batches, "line")
        .into_iter()
        .map(|l| l.expect("line"))
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        vec![1, 2, 3],
        "line numbers continue across runs, nothing read twice"
    );

    assert_eq!(run(&["--reprocess"])["lines"], 3);
}

#[test]
fn reads_standard_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let summary = json_of(
        loglens()
            .args(["process", "-", "--json", "--data-dir"])
            .arg(&data)
            .write_stdin(NGINX),
    );
    assert_eq!(
        (summary["lines"].clone(), summary["records_written"].clone()),
        (5.into(), 3.into())
    );
    assert_eq!(summary["file_formats"]["<stdin>"], "combined");
    let sources = strings(&read_dataset(&data.join("records")), "source");
    assert!(
        sources.iter().all(|s| s.as_deref() == Some("<stdin>")),
        "{sources:?}"
    );
    assert!(
        !data.join("state/checkpoints.json").exists() || {
            let text = std::fs::read_to_string(data.join("state/checkpoints.json")).expect("read");
            !text.contains("stdin")
        }
    );
}
