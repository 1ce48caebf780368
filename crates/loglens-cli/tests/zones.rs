//! Timestamps without a zone, read in the zone the user names: a named zone follows daylight
//! saving, so winter and summer lines of a Paris server land at their true UTC instants.

mod common;

use common::{loglens, read_dataset};

#[test]
fn a_named_zone_follows_daylight_saving_and_a_typo_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    // Python logging's common layout: local time, no zone.
    std::fs::write(
        &log,
        "2026-01-15 12:00:00,000 - app - INFO - winter\n2026-07-15 12:00:00,000 - app - INFO - summer\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    loglens()
        .args([
            "process",
            "--no-templates",
            "--timezone",
            "Europe/Paris",
            "--data-dir",
        ])
        .arg(&data)
        .arg(&log)
        .assert()
        .success();
    let batches = read_dataset(&data.join("records"));
    let mut times: Vec<i64> = Vec::new();
    for batch in &batches {
        let ts = batch
            .column_by_name("ts")
            .expect("ts")
            .as_any()
            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
            .expect("timestamp column");
        times.extend(ts.values().iter().copied());
    }
    times.sort();
    let utc = |text: &str| loglens_core::Timestamp::parse_rfc3339(text, 0).expect("valid").0;
    assert_eq!(times, [utc("2026-01-15T11:00:00Z"), utc("2026-07-15T10:00:00Z")]);

    let output = loglens()
        .args(["process", "--timezone", "Europe/Pariss", "--data-dir"])
        .arg(&data)
        .arg(&log)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--timezone") && stderr.contains("Europe/Pariss"),
        "{stderr}"
    );
}
