//! Files between runs, as a reliability engineer meets them: rotation by rename, rotation with
//! compression, copytruncate, a writer caught mid-line, a byte-order mark, one file under two
//! names. Every line must be stored exactly once, wherever rotation moved it.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use common::{json_of, loglens, read_dataset, strings, u64s};

/// `n` JSON lines whose messages are `{tag}-{i}`, one second apart.
fn lines(tag: &str, range: std::ops::Range<u32>) -> String {
    range
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-11-01T10:{:02}:{:02}Z\",\"level\":\"info\",\"msg\":\"{tag}-{i}\"}}\n",
                i / 60 % 60,
                i % 60
            )
        })
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(text.as_bytes()).expect("append");
}

/// Runs `process --json` on `inputs`, returns the summary.
fn process(data: &Path, inputs: &[&Path], extra: &[&str]) -> serde_json::Value {
    json_of(
        loglens()
            .args([
                "process",
                "--json",
                "--format",
                "json",
                "--no-templates",
                "--data-dir",
            ])
            .arg(data)
            .args(extra)
            .args(inputs),
    )
}

/// How often each message is stored.
fn stored(data: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for message in strings(&read_dataset(&data.join("records")), "message") {
        *out.entry(message.expect("message")).or_default() += 1;
    }
    out
}

fn assert_each_once(data: &Path, expected: &[(&str, std::ops::Range<u32>)]) {
    let stored = stored(data);
    let mut want = BTreeMap::new();
    for (tag, range) in expected {
        for i in range.clone() {
            want.insert(format!("{tag}-{i}"), 1);
        }
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).take(3).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    let missing: Vec<_> = want.keys().filter(|m| !stored.contains_key(*m)).take(3).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(stored.len(), want.len());
}

#[test]
fn lines_appended_before_a_rename_are_read_from_the_renamed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, rotated, data) = (
        dir.path().join("access.log"),
        dir.path().join("access.log.1"),
        dir.path().join("data"),
    );
    append(&log, &lines("a", 0..100));
    process(&data, &[&log], &[]);
    append(&log, &lines("a", 100..300));
    std::fs::rename(&log, &rotated).expect("mv access.log access.log.1");
    append(&log, &lines("b", 0..50));
    let summary = process(&data, &[&log, &rotated], &[]);
    assert_eq!(summary["lines"], 250, "{summary}");
    assert_eq!(summary["files_resumed"], 1);
    assert_each_once(&data, &[("a", 0..300), ("b", 0..50)]);
}

#[test]
fn a_directory_with_rotated_and_compressed_files_is_read_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let data = dir.path().join("data");
    let log = logs.join("access.log");
    append(&log, &lines("a", 0..1000));
    process(&data, &[&logs], &[]);
    // logrotate: rename, new file, later compress the rotated one.
    std::fs::rename(&log, logs.join("access.log.1")).expect("rotate");
    append(&log, &lines("b", 0..10));
    let summary = process(&data, &[&logs], &[]);
    assert_eq!(summary["lines"], 10, "{summary}");
    let content = std::fs::read(logs.join("access.log.1")).expect("read");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&content).expect("compress");
    std::fs::write(logs.join("access.log.1.gz"), gz.finish().expect("finish")).expect("write gz");
    // While gzip runs both names exist; afterwards only the .gz.
    let summary = process(&data, &[&logs], &[]);
    assert_eq!(summary["lines"], 0, "{summary}");
    std::fs::remove_file(logs.join("access.log.1")).expect("gzip removes the original");
    let summary = process(&data, &[&logs], &[]);
    assert_eq!(summary["lines"], 0, "{summary}");
    assert_each_once(&data, &[("a", 0..1000), ("b", 0..10)]);
}

#[test]
fn copytruncate_keeps_the_tail_written_before_the_truncate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let data = dir.path().join("data");
    let log = logs.join("app.log");
    append(&log, &lines("a", 0..100));
    process(&data, &[&logs], &[]);
    append(&log, &lines("a", 100..200));
    std::fs::copy(&log, logs.join("app.log.1")).expect("copy");
    std::fs::write(&log, "").expect("truncate");
    append(&log, &lines("b", 0..20));
    process(&data, &[&logs], &[]);
    assert_each_once(&data, &[("a", 0..200), ("b", 0..20)]);
}

#[test]
fn an_unfinished_last_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, data) = (dir.path().join("app.log"), dir.path().join("data"));
    let whole = lines("a", 0..3);
    let (done, partial) = whole.split_at(whole.len() - 20);
    append(&log, done);
    let summary = process(&data, &[&log], &[]);
    assert_eq!(summary["lines"], 2);
    assert_eq!(summary["lines_held_back"], 1);
    append(&log, partial);
    let summary = process(&data, &[&log], &[]);
    assert_eq!(summary["lines"], 1);
    assert_each_once(&data, &[("a", 0..3)]);
    let records = read_dataset(&data.join("records"));
    let mut numbers: Vec<u64> = u64s(&records, "line").into_iter().flatten().collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3], "line numbers do not shift");
    // `--final` says the writer is done: the unterminated line is a line.
    append(&log, "{\"ts\":\"2026-11-01T11:00:00Z\",\"msg\":\"last\"}");
    let summary = process(&data, &[&log], &["--final"]);
    assert_eq!(summary["lines"], 1);
    assert_eq!(summary["lines_held_back"], 0);
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, data) = (dir.path().join("app.log"), dir.path().join("data"));
    std::fs::write(&log, format!("\u{feff}{}", lines("a", 0..2))).expect("write");
    let summary = process(&data, &[&log], &[]);
    assert_eq!(summary["records_written"], 2, "{summary}");
    assert_each_once(&data, &[("a", 0..2)]);
}

#[test]
fn one_file_has_one_source_however_it_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
    let data = dir.path().join("data");
    let log = dir.path().join("logs/app.log");
    append(&log, &lines("a", 0..2));
    process(&data, &[&log], &[]);
    append(&log, &lines("a", 2..4));
    let roundabout = dir.path().join("logs/../logs/./app.log");
    process(&data, &[&roundabout], &[]);
    let sources: std::collections::BTreeSet<_> = strings(&read_dataset(&data.join("records")), "source")
        .into_iter()
        .flatten()
        .collect();
    let canonical = log.canonicalize().expect("canonical").display().to_string();
    assert_eq!(sources.into_iter().collect::<Vec<_>>(), [canonical]);
}

#[test]
fn a_line_over_the_cap_is_kept_truncated_even_when_one_read_holds_it_whole() {
    // Where a read ends must not decide it: this line is far shorter than a read (1 MiB).
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, data) = (dir.path().join("app.log"), dir.path().join("data"));
    let long = format!(
        "{{\"ts\":\"2026-11-01T10:00:01Z\",\"msg\":\"{}\"}}\n",
        "x".repeat(300)
    );
    std::fs::write(
        &log,
        format!("{}{long}{}", lines("a", 0..50), lines("a", 51..100)),
    )
    .expect("write");
    let summary = process(&data, &[&log], &["--max-line-bytes", "200"]);
    assert_eq!(summary["lines"], 100, "{summary}");
    assert_eq!(summary["records_written"], 99);
    let unparsed = read_dataset(&data.join("unparsed"));
    assert_eq!(
        strings(&unparsed, "reason"),
        [Some(format!(
            "line of {} bytes is longer than the cap; its first 200 bytes are kept",
            long.len() - 1
        ))]
    );
    assert_eq!(strings(&unparsed, "raw")[0].as_deref(), Some(&long[..200]));
    assert_eq!(u64s(&unparsed, "line"), [Some(51)]);
}

#[test]
fn a_line_longer_than_the_cap_is_kept_truncated_with_its_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, data) = (dir.path().join("app.log"), dir.path().join("data"));
    let runaway = format!(
        "{{\"ts\":\"2026-11-01T10:00:01Z\",\"msg\":\"{}\"}}\n",
        "x".repeat(3 << 20)
    );
    let before = lines("a", 0..1);
    let after = lines("a", 2..3);
    std::fs::write(&log, format!("{before}{runaway}{after}")).expect("write");
    let summary = process(&data, &[&log], &["--max-line-bytes", "1048576"]);
    assert_eq!(summary["lines"], 3, "{summary}");
    assert_eq!(summary["records_written"], 2);
    assert_eq!(
        summary["unparsed"]["line longer than the cap (kept truncated)"],
        1
    );
    let unparsed = read_dataset(&data.join("unparsed"));
    let reasons = strings(&unparsed, "reason");
    let full = runaway.len() - 1;
    assert_eq!(
        reasons,
        [Some(format!(
            "line of {full} bytes is longer than the cap; its first 1048576 bytes are kept"
        ))]
    );
    assert_eq!(
        strings(&unparsed, "raw")[0].as_ref().map(String::len),
        Some(1 << 20)
    );
    assert_eq!(u64s(&unparsed, "line"), [Some(2)]);
    let mut numbers: Vec<u64> = u64s(&read_dataset(&data.join("records")), "line")
        .into_iter()
        .flatten()
        .collect();
    numbers.sort();
    assert_eq!(numbers, [1, 3], "the lines after it keep their numbers");
    // Nothing is read again: the checkpoint is past the runaway line.
    let summary = process(&data, &[&log], &[]);
    assert_eq!(summary["lines"], 0);
}

#[test]
fn a_runaway_last_line_is_held_back_until_it_ends_and_kept_truncated_then() {
    // Longer than a read (1 MiB) and unterminated: the writer may still be writing it.
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, data) = (dir.path().join("app.log"), dir.path().join("data"));
    let runaway = format!(
        "{{\"ts\":\"2026-11-01T10:00:01Z\",\"msg\":\"{}",
        "x".repeat(3 << 20)
    );
    std::fs::write(&log, format!("{}{runaway}", lines("a", 0..2))).expect("write");
    let summary = process(&data, &[&log], &[]);
    assert_eq!(
        (summary["lines"].clone(), summary["lines_held_back"].clone()),
        (2.into(), 1.into()),
        "{summary}"
    );
    // `--final`: the writer is done, so the unterminated line is a line, kept to the cap.
    let summary = process(&data, &[&log], &["--final"]);
    assert_eq!(summary["lines"], 1, "{summary}");
    assert_eq!(summary["records_written"], 0);
    assert_eq!(summary["lines_held_back"], 0);
    let unparsed = read_dataset(&data.join("unparsed"));
    assert_eq!(
        strings(&unparsed, "reason"),
        [Some(format!(
            "line of {} bytes is longer than the cap; its first 1048576 bytes are kept",
            runaway.len()
        ))]
    );
    assert_eq!(u64s(&unparsed, "line"), [Some(3)]);
}
