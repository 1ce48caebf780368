//! End-to-end causality of `loglens detect`: the incidents of the first day of a generated data
//! set are the same whether or not the second day's records are in the data directory.

mod common;

use std::path::Path;

use common::{json_of, loglens};
use serde_json::Value;

/// Buckets after an incident's last one during which it may still grow (merge gap + 1), in
/// seconds at the default 1-minute buckets.
const REACH_SECS: i64 = 6 * 60;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// `loglens detect --json` on `data`: its incidents.
fn incidents(data: &Path) -> Vec<Value> {
    let summary = json_of(
        loglens()
            .args(["detect", "--json", "--limit", "100000", "--data-dir"])
            .arg(data),
    );
    summary["incidents"].as_array().expect("incidents").clone()
}

/// Incidents that ended at least [`REACH_SECS`] before `cut`: no later bucket can change them.
fn settled(incidents: &[Value], cut: &str) -> Vec<Value> {
    let secs = |s: &str| {
        loglens_core::Timestamp::parse_rfc3339(s, 0)
            .expect("rfc3339")
            .secs()
    };
    let cut = secs(cut);
    let mut out: Vec<Value> = incidents
        .iter()
        .filter(|i| secs(i["end"].as_str().expect("end")) + REACH_SECS <= cut)
        .cloned()
        .collect();
    out.sort_by_key(|i| i["incident_id"].as_str().map(str::to_owned));
    out
}

#[test]
fn first_day_incidents_do_not_depend_on_the_second_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = dir.path().join("gen");
    loglens()
        .args([
            "generate",
            "--lines",
            "120000",
            "--duration",
            "2d",
            "--seed",
            "5",
            "--out",
        ])
        .arg(&generated)
        .assert()
        .success();
    let whole = dir.path().join("whole");
    loglens()
        .args(["process", "--data-dir"])
        .arg(&whole)
        .arg(generated.join("logs"))
        .assert()
        .success();
    // Records are partitioned by day and hour of their timestamps, so the first day's
    // partitions are exactly the records before the cut.
    let half = dir.path().join("half");
    copy_dir(&whole.join("templates"), &half.join("templates"));
    copy_dir(
        &whole.join("records/date=2026-11-01"),
        &half.join("records/date=2026-11-01"),
    );
    let cut = "2026-11-02T00:00:00Z";
    let first_day = settled(&incidents(&half), cut);
    assert_eq!(first_day, settled(&incidents(&whole), cut));
    assert!(
        first_day.len() >= 3,
        "too few incidents to compare: {first_day:?}"
    );
}
