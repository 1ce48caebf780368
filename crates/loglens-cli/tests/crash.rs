//! Crash and failure tests of `loglens process` (issue #17, "nothing lost, nothing twice"): the
//! real binary is aborted at each step of its commit (`LOGLENS_FAULT=commit:<step>`) and
//! killed with SIGKILL at spread moments, then run again; every line must then be stored
//! exactly once. Inputs that cannot be read are skipped, reported and retried.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use common::{loglens, parquet_files, read_dataset, stored_lines, strings, u64s};

/// Writes `lines` JSON log lines (a garbage line every 97th, for `unparsed/`) spread over
/// several hours, so a run writes several partitions.
fn write_log(path: &Path, first: u64, lines: u64) {
    let mut text = String::new();
    for i in first..first + lines {
        if i % 97 == 96 {
            text.push_str("not a log line at all\n");
            continue;
        }
        let secs = i * 7;
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        let msg = match i % 3 {
            0 => format!("user u{} logged in from 10.0.{}.{}", i % 50, i % 7, i % 200),
            1 => format!("cache miss for key k{i}"),
            _ => format!("request {i} took {}ms", i % 900),
        };
        text.push_str(&format!(
            "{{\"ts\":\"2026-11-01T{h:02}:{m:02}:{s:02}Z\",\"level\":\"info\",\"service\":\"api\",\"msg\":\"{msg}\"}}\n"
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    file.write_all(text.as_bytes()).expect("write log");
}

fn gzip(lines: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(lines.as_bytes()).expect("gzip");
    enc.finish().expect("gzip")
}

fn process(data: &Path, inputs: &[&Path], fault: Option<&str>) -> Output {
    let mut cmd = loglens();
    cmd.args(["process", "--json", "--threads", "2", "--data-dir"])
        .arg(data)
        .args(inputs)
        .env_remove("LOGLENS_FAULT");
    if let Some(step) = fault {
        cmd.env("LOGLENS_FAULT", format!("commit:{step}"));
    }
    cmd.output().expect("runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn summary(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("json summary")
}

/// Every line of every `(file, lines)` is stored once, and nothing else is stored.
fn assert_exactly_once(data: &Path, expected: &[(PathBuf, u64)]) {
    let stored = stored_lines(data);
    let twice: Vec<_> = stored.iter().filter(|(_, &n)| n != 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "{} lines stored more than once, e.g. {twice:?}",
        stored.values().filter(|&&n| n > 1).count()
    );
    let mut wanted = std::collections::BTreeSet::new();
    for (file, lines) in expected {
        for line in 1..=*lines {
            wanted.insert((file.display().to_string(), line));
        }
    }
    let have: std::collections::BTreeSet<_> = stored.keys().cloned().collect();
    let missing: Vec<_> = wanted.difference(&have).take(5).collect();
    let extra: Vec<_> = have.difference(&wanted).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} lines missing (e.g. {missing:?}), {} unexpected (e.g. {extra:?})",
        wanted.difference(&have).count(),
        have.difference(&wanted).count()
    );
}

/// What a committed directory must look like: nothing staged or temporary, template counts
/// that add up to the records, and every recorded run complete.
fn assert_consistent(data: &Path) {
    let staging = data.join("state/staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staged runs left: {left:?}");
    // parquet_files fails on any temporary file.
    let records = parquet_files(&data.join("records"));
    let rows: usize = read_dataset(&data.join("records"))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let templates = read_dataset(&data.join("templates"));
    let counted: u64 = u64s(&templates, "count").into_iter().flatten().sum();
    assert_eq!(
        counted as usize,
        rows,
        "template counts vs records ({} files)",
        records.len()
    );
    for run in std::fs::read_dir(data.join("state/runs"))
        .expect("runs")
        .flatten()
    {
        let text = std::fs::read_to_string(run.path()).expect("run summary");
        let run: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(run["status"], "complete", "{text}");
    }
}

fn aborted(output: &Output) -> bool {
    output.status.signal() == Some(libc::SIGABRT)
}

#[test]
fn a_run_aborted_at_any_commit_step_is_completed_or_undone_by_the_next() {
    const STEPS: [&str; 8] = [
        "staged",
        "recorded",
        "renamed:1",
        "renamed:2",
        "renamed:templates/templates.parquet",
        "renamed:state/checkpoints.json",
        "renamed:state/miner.json",
        "applied",
    ];
    for step in STEPS {
        let dir = tempfile::tempdir().expect("tempdir");
        let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
        std::fs::create_dir_all(&logs).expect("mkdir");
        let (a, b) = (logs.join("a.log"), logs.join("b.log"));
        write_log(&a, 0, 1500);
        write_log(&b, 5000, 900);

        let first = process(&data, &[&logs], Some(step));
        assert!(aborted(&first), "{step}: not aborted: {}", stderr(&first));
        let runs = |data: &Path| std::fs::read_dir(data.join("state/runs")).map_or(0, |d| d.count());
        // Its summary is the last file the commit renames into place.
        assert_eq!(runs(&data), usize::from(step == "applied"), "{step}");
        let second = process(&data, &[&logs], None);
        assert!(second.status.success(), "{step}: {}", stderr(&second));
        // Rolled forward, the first run is recorded (complete: it was); rolled back, it is not.
        assert_eq!(runs(&data), if step == "staged" { 1 } else { 2 }, "{step}");
        assert_exactly_once(&data, &[(a.clone(), 1500), (b.clone(), 900)]);
        assert_consistent(&data);

        // Appended lines: the run that resumes from the checkpoint dies at the same step.
        write_log(&a, 1500, 700);
        let third = process(&data, &[&logs], Some(step));
        assert!(aborted(&third), "{step}: {}", stderr(&third));
        let fourth = process(&data, &[&logs], None);
        assert!(fourth.status.success(), "{step}: {}", stderr(&fourth));
        let notes = summary(&fourth)["warnings"].to_string();
        assert!(
            notes.contains("interrupted"),
            "{step}: recovery reported: {notes}"
        );
        assert_exactly_once(&data, &[(a, 2200), (b, 900)]);
        assert_consistent(&data);
    }
}

#[test]
fn a_run_that_dies_while_recovering_is_recovered_in_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
    std::fs::create_dir_all(&logs).expect("mkdir");
    let log = logs.join("a.log");
    write_log(&log, 0, 3000);
    assert!(aborted(&process(&data, &[&logs], Some("renamed:1"))));
    // The next run rolls the first forward and dies during that, at a later rename.
    assert!(aborted(&process(&data, &[&logs], Some("renamed:3"))));
    let last = process(&data, &[&logs], None);
    assert!(last.status.success(), "{}", stderr(&last));
    assert_eq!(summary(&last)["lines"], 0, "the first run's commit was completed");
    assert_exactly_once(&data, &[(log, 3000)]);
    assert_consistent(&data);
}

/// The binary to kill: `LOGLENS_BIN` (e.g. a release build, with `LOGLENS_CRASH_LINES` in the
/// hundreds of thousands) or the test build.
fn binary() -> PathBuf {
    std::env::var_os("LOGLENS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin("loglens"))
}

fn spawn(data: &Path, logs: &Path) -> std::process::Child {
    std::process::Command::new(binary())
        .args(["process", "--threads", "2", "--data-dir"])
        .arg(data)
        .arg(logs)
        .env_remove("LOGLENS_FAULT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns")
}

#[test]
fn sigkill_at_spread_moments_stores_every_line_once() {
    let lines: u64 = std::env::var("LOGLENS_CRASH_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("mkdir");
    let files: Vec<(PathBuf, u64)> = (0..4)
        .map(|i| (logs.join(format!("app-{i}.log")), lines / 4))
        .collect();
    for (i, (path, n)) in files.iter().enumerate() {
        write_log(path, i as u64 * 1_000_000, *n);
    }
    // One uninterrupted run sets the time scale; the kills land across it whatever the speed.
    let reference = dir.path().join("reference");
    let started = Instant::now();
    let status = spawn(&reference, &logs).wait().expect("waits");
    assert!(status.success());
    let full = started.elapsed();
    assert_exactly_once(&reference, &files);

    const KILLS: u32 = 10;
    let mut interrupted = 0;
    for pair in 0..KILLS / 2 {
        let data = dir.path().join(format!("data-{pair}"));
        // Two kills per directory: the second often lands in the recovery of the first.
        for k in [pair, KILLS - 1 - pair] {
            let mut child = spawn(&data, &logs);
            std::thread::sleep(full * (2 * k + 1) / (2 * KILLS));
            interrupted += u32::from(child.try_wait().expect("status").is_none());
            child.kill().expect("kill -9");
            child.wait().expect("reaped");
        }
        let status = spawn(&data, &logs).wait().expect("waits");
        assert!(status.success(), "run after kills {pair}");
        assert_exactly_once(&data, &files);
        assert_consistent(&data);
    }
    // How many kills hit a running process depends on the machine's speed: reported, not asserted.
    eprintln!("{interrupted} of {KILLS} kills interrupted a run ({lines} lines, full run {full:?})");
}

#[test]
fn a_truncated_gzip_is_reported_skipped_and_resumed_once_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
    std::fs::create_dir_all(&logs).expect("mkdir");
    let (a, c) = (logs.join("a.log"), logs.join("c.log"));
    write_log(&a, 0, 500);
    write_log(&c, 9000, 400);
    let whole_text = logs.join("b.src");
    write_log(&whole_text, 3000, 2000);
    let whole = gzip(&std::fs::read_to_string(&whole_text).expect("read"));
    std::fs::remove_file(&whole_text).expect("rm");
    let gz = logs.join("b.log.gz");
    std::fs::write(&gz, &whole[..whole.len() * 6 / 10]).expect("truncated copy");

    let first = process(&data, &[&logs], None);
    assert_eq!(first.status.code(), Some(3), "partial: {}", stderr(&first));
    let s = summary(&first);
    assert_eq!(s["status"], "partial");
    assert_eq!(s["failed"].as_array().map(Vec::len), Some(1), "{s}");
    assert!(s["failed"][0]["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("b.log.gz")));
    let reason = s["failed"][0]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(!reason.is_empty());
    assert!(
        stderr(&first).contains("b.log.gz: not read"),
        "{}",
        stderr(&first)
    );
    // The good files are committed; of the bad one, the whole lines before the damage.
    let stored = stored_lines(&data);
    let from_gz = stored.keys().filter(|(s, _)| s.ends_with("b.log.gz")).count() as u64;
    assert!(
        from_gz > 0 && from_gz < 2000,
        "{from_gz} lines of the truncated file"
    );
    let expected = |gz_lines| vec![(a.clone(), 500), (gz.clone(), gz_lines), (c.clone(), 400)];
    assert_exactly_once(&data, &expected(from_gz));

    // Still truncated: reported again, nothing read twice.
    let again = process(&data, &[&logs], None);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert_exactly_once(&data, &expected(from_gz));

    // Whole again: resumed after the last line stored, and the run is complete.
    std::fs::write(&gz, &whole).expect("restore");
    let fixed = process(&data, &[&logs], None);
    assert!(fixed.status.success(), "{}", stderr(&fixed));
    let s = summary(&fixed);
    assert_eq!(
        (s["status"].clone(), s["lines"].clone()),
        ("complete".into(), (2000 - from_gz).into())
    );
    assert_exactly_once(&data, &expected(2000));
}

#[test]
fn missing_and_vanished_inputs_do_not_stop_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
    std::fs::create_dir_all(&logs).expect("mkdir");
    let a = logs.join("a.log");
    write_log(&a, 0, 300);
    std::os::unix::fs::symlink(dir.path().join("gone.log"), logs.join("vanished.log")).expect("symlink");
    let later = dir.path().join("later.log");

    let first = process(&data, &[&logs, &later], None);
    assert_eq!(first.status.code(), Some(3), "{}", stderr(&first));
    let s = summary(&first);
    let mut failed: Vec<String> = s["failed"]
        .as_array()
        .expect("failed list")
        .iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    failed.sort();
    assert_eq!(failed, ["later.log", "vanished.log"], "{s}");
    assert_exactly_once(&data, &[(a.clone(), 300)]);

    // Every later run is not stuck on them: once the file exists it is read. (Other lines than
    // a.log's: a file with the same first KiB would be taken for a rotated copy of it.)
    write_log(&later, 100_000, 50);
    std::fs::remove_file(logs.join("vanished.log")).expect("rm");
    let second = process(&data, &[&logs, &later], None);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_exactly_once(&data, &[(a, 300), (later, 50)]);
}

#[test]
fn no_readable_input_is_a_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bad = dir.path().join("bad.log.gz");
    // Gzip magic, then nothing a decoder accepts.
    std::fs::write(&bad, b"\x1f\x8b\x08\x00garbage, not deflate").expect("write");
    let output = process(&data, &[&bad], None);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("bad.log.gz"), "{}", stderr(&output));
    assert!(strings(&read_dataset(&data.join("records")), "source").is_empty());
}
