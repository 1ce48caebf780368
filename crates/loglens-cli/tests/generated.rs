//! End-to-end: `loglens generate` then `loglens process` on its output, checked against the
//! generator's manifest with exact counts: every line is a record or an unparsed row.

mod common;

use std::collections::BTreeMap;

use common::{loglens, read_dataset, strings};
use serde_json::Value;

fn generate(out: &std::path::Path, extra: &[&str]) -> Value {
    loglens()
        .args([
            "generate",
            "--lines",
            "6000",
            "--duration",
            "1d",
            "--seed",
            "11",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("json")
}

fn process(args: &[&std::ffi::OsStr]) -> Value {
    let output = loglens()
        .arg("process")
        .arg("--json")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json summary")
}

#[test]
fn every_generated_line_is_a_record_or_unparsed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = generate(dir.path(), &[]);
    let data = dir.path().join("data");
    let summary = process(&[
        "--config".as_ref(),
        dir.path().join("loglens.toml").as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);

    let files = manifest["files"].as_array().expect("files");
    let total: u64 = files.iter().map(|f| f["lines"].as_u64().expect("lines")).sum();
    let corrupt: u64 = files
        .iter()
        .map(|f| f["corrupt_lines"].as_u64().expect("corrupt"))
        .sum();
    assert!(corrupt > 0, "the generator damages a few lines by default");
    assert_eq!(summary["lines"], total);
    assert_eq!(summary["records_written"], total - corrupt);
    assert_eq!(summary["unparsed_written"], corrupt);

    // Per format: what the manifest says was generated, minus what it damaged.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for f in files {
        let good = f["lines"].as_u64().expect("lines") - f["corrupt_lines"].as_u64().expect("corrupt");
        *expected
            .entry(f["format"].as_str().expect("format").to_owned())
            .or_default() += good;
    }
    let parsed: BTreeMap<String, u64> = serde_json::from_value(summary["parsed"].clone()).expect("map");
    assert_eq!(parsed, expected);

    // Records carry the labels of their input.
    let batches = read_dataset(&data.join("records"));
    let hosts = strings(&batches, "host");
    assert!(hosts.iter().all(Option::is_some), "every record has a host");
    let services: std::collections::BTreeSet<String> =
        strings(&batches, "service").into_iter().flatten().collect();
    assert!(
        services.contains("web") && services.contains("payments"),
        "{services:?}"
    );
}

#[test]
fn detection_without_config_finds_every_files_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = generate(dir.path(), &["--corrupt-rate", "0"]);
    let data = dir.path().join("data");
    let summary = process(&[
        dir.path().join("logs").as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    for f in manifest["files"].as_array().expect("files") {
        let path = dir.path().join(f["path"].as_str().expect("path"));
        let detected = &summary["file_formats"][path.display().to_string()];
        assert_eq!(detected, &f["format"], "{}", path.display());
        let why = summary["file_detection"][path.display().to_string()]
            .as_str()
            .expect("a reason per file");
        let format = f["format"].as_str().expect("format");
        assert!(
            why.starts_with(&format!("{format}: ")) && why.contains(" sample lines parse"),
            "{}: {why}",
            path.display()
        );
    }
    assert_eq!(summary["unparsed_written"], 0);
}

#[test]
fn generator_is_deterministic() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let ma = generate(a.path(), &[]);
    let mb = generate(b.path(), &[]);
    assert_eq!(ma["totals"], mb["totals"]);
    for f in ma["files"].as_array().expect("files") {
        let rel = f["path"].as_str().expect("path");
        assert_eq!(
            std::fs::read(a.path().join(rel)).expect("a"),
            std::fs::read(b.path().join(rel)).expect("b"),
            "{rel}"
        );
    }
}
