//! `loglens compact` end to end: three `process` runs leave three parts in one hour; compaction
//! leaves one with every record, and `detect` and `templates` read the same afterwards. Detect
//! runs over past days leave a part per run and day in `metrics/` and `rollups/`; compaction
//! leaves one per day (beside `part-open.parquet`) and the next detect finds the same incidents.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, json_of, loglens, parquet_files, process_json, stored_lines};
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

#[test]
fn compact_rewrites_an_hour_of_parts_as_one_file_with_every_record() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    for run in 0..3 {
        let log = tmp.path().join(format!("app-{run}.log"));
        let lines: String = (0..50)
            .map(|i| {
                format!(
                    "2026-01-01T05:{:02}:{:02}Z level=info msg=\"job {run}-{i} done\"\n",
                    i % 60,
                    run * 10
                )
            })
            .collect();
        std::fs::write(&log, lines).expect("write log");
        let summary = process_json(&data, &log);
        assert_eq!(summary["records_written"], 50, "{summary}");
    }
    let hour = data.join("records/date=2026-01-01/hour=05");
    assert_eq!(parquet_files(&hour).len(), 3);
    let before = json_of(loglens().args(["templates", "--json", "--data-dir"]).arg(&data));
    let lines_before = stored_lines(&data);
    assert_eq!(lines_before.len(), 150);
    let done = json_of(
        loglens()
            .args(["compact", "--json", "--min-parts", "2", "--data-dir"])
            .arg(&data),
    );
    assert_eq!(done["partitions"], 1, "{done}");
    assert_eq!(done["parts_before"], 3, "{done}");
    assert_eq!(done["rows"], 150, "{done}");
    let files = parquet_files(&hour);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].display().to_string().ends_with("-compacted.parquet"));
    assert!(
        !data.join("state/staging").exists()
            || std::fs::read_dir(data.join("state/staging"))
                .expect("dir")
                .next()
                .is_none(),
        "no staging left behind"
    );
    let after = json_of(loglens().args(["templates", "--json", "--data-dir"]).arg(&data));
    assert_eq!(before, after, "templates read the same");
    assert_eq!(
        stored_lines(&data),
        lines_before,
        "every (file, line) once, as before"
    );
    // Fewer than --min-parts: nothing to do.
    let again = json_of(loglens().args(["compact", "--json", "--data-dir"]).arg(&data));
    assert_eq!(again["partitions"], 0);
    let bad = loglens()
        .args(["compact", "--min-parts", "1", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}

/// Ten lines a minute from two hosts over `minutes` (minutes since 2026-03-01T00:00Z), and a
/// burst of 30 errors a minute from 14:00 to 14:10 on 2026-03-02: a volume incident.
fn lines(minutes: std::ops::Range<u32>) -> String {
    let burst = (24 + 14) * 60..(24 + 14) * 60 + 10;
    let mut out = String::new();
    for m in minutes {
        let (day, hour, minute) = (1 + m / 1440, m % 1440 / 60, m % 60);
        let stamp = format!("2026-03-{day:02}T{hour:02}:{minute:02}");
        for i in 0..10 {
            out.push_str(&format!(
                "{stamp}:{:02}Z level=info service=api host=web-{} msg=\"request {} served\"\n",
                i * 5,
                i % 2,
                m * 10 + i
            ));
        }
        if burst.contains(&m) {
            for i in 0..30 {
                out.push_str(&format!(
                    "{stamp}:{i:02}Z level=error service=api host=web-1 msg=\"payment failed for order {}\"\n",
                    m * 100 + i
                ));
            }
        }
    }
    out
}

/// `loglens process` then `loglens detect --json` over `log`; the detect summary without its
/// timing.
fn process_and_detect(data: &Path, log: &Path) -> Value {
    process_json(data, log);
    let mut summary = json_of(
        loglens()
            .args(["detect", "--json", "--limit", "100000", "--data-dir"])
            .arg(data),
    );
    if let Some(summary) = summary.as_object_mut() {
        summary.remove("elapsed_secs");
    }
    summary
}

/// Every row of every Parquet file below `dir`, as text, sorted: the dataset as a multiset.
fn rows(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in parquet_files(dir) {
        let file = std::fs::File::open(&path).expect("open");
        let reader = SerializedFileReader::new(file).expect("footer");
        for row in reader.get_row_iter(None).expect("rows") {
            out.push(row.expect("row").to_string());
        }
    }
    out.sort();
    out
}

/// The file names in each `date=` directory of a dataset.
fn day_files(dataset: &Path) -> Vec<(String, Vec<String>)> {
    let mut days: Vec<PathBuf> = std::fs::read_dir(dataset)
        .expect("dataset")
        .map(|e| e.expect("entry").path())
        .collect();
    days.sort();
    days.iter()
        .map(|day| {
            let names = parquet_files(day)
                .iter()
                .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
                .collect();
            (
                day.file_name().expect("name").to_string_lossy().into_owned(),
                names,
            )
        })
        .collect()
}

const ANALYSIS: [&str; 4] = ["metrics", "rollups/counts", "rollups/templates", "anomalies"];

#[test]
fn compact_rewrites_days_of_metrics_and_rollups_and_detect_carries_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // Two days in six runs of eight hours, each followed by detect: a part per run and day.
    let mut found = Vec::new();
    for run in 0..6 {
        let log = tmp.path().join(format!("app-{run}.log"));
        std::fs::write(&log, lines(run * 480..(run + 1) * 480)).expect("write log");
        let summary = process_and_detect(&data, &log);
        found.extend(summary["incidents"].as_array().expect("incidents").clone());
    }
    assert!(!found.is_empty(), "the burst is an incident");
    let metrics = data.join("metrics");
    let before = day_files(&metrics);
    assert_eq!(before.len(), 2, "{before:?}");
    assert!(before.iter().all(|(_, files)| files.len() >= 3), "{before:?}");
    assert!(
        before[1].1.contains(&"part-open.parquet".to_owned()),
        "the last day has pending buckets: {before:?}"
    );
    let twin = tmp.path().join("twin");
    copy_dir(&data, &twin);

    let done = json_of(
        loglens()
            .args(["compact", "--json", "--min-parts", "2", "--data-dir"])
            .arg(&data),
    );
    for dataset in ["metrics", "rollups/counts", "rollups/templates"] {
        assert_eq!(done["datasets"][dataset]["partitions"], 2, "{dataset}: {done}");
        assert_eq!(done["datasets"][dataset]["partition"], "day", "{done}");
    }
    // One part per hour (each run covers its own eight hours), no latencies: nothing to do.
    assert_eq!(done["datasets"]["records"]["partitions"], 0, "{done}");
    assert_eq!(done["datasets"]["rollups/latency"]["partitions"], 0, "{done}");
    assert_eq!(done["partitions"], 6, "{done}");
    let parts_before: usize = before.iter().map(|(_, f)| f.len()).sum::<usize>() - 1;
    assert_eq!(
        done["datasets"]["metrics"]["parts_before"], parts_before,
        "every part but the open one: {done}"
    );
    for dataset in ["metrics", "rollups/counts", "rollups/templates"] {
        for (day, files) in day_files(&data.join(dataset)) {
            let had_open = twin.join(dataset).join(&day).join("part-open.parquet").exists();
            let merged = files.iter().filter(|f| f.ends_with("-compacted.parquet"));
            assert_eq!(merged.count(), 1, "{dataset}/{day}: {files:?}");
            assert_eq!(
                files.len(),
                1 + usize::from(had_open),
                "{dataset}/{day}: {files:?}"
            );
            if had_open {
                assert!(files.contains(&"part-open.parquet".to_owned()), "{files:?}");
                let (a, b) = (
                    data.join(dataset).join(&day).join("part-open.parquet"),
                    twin.join(dataset).join(&day).join("part-open.parquet"),
                );
                assert_eq!(
                    std::fs::read(a).expect("open part"),
                    std::fs::read(b).expect("twin's")
                );
            }
        }
    }
    for dataset in ANALYSIS {
        assert_eq!(
            rows(&data.join(dataset)),
            rows(&twin.join(dataset)),
            "{dataset}: same rows"
        );
    }
    // Nothing new: detect reads its state and writes nothing, compacted or not.
    process_and_detect(&data, &tmp.path().join("app-5.log"));

    // Day three arrives: detect judges what was pending on day two (and drops its open part)
    // in the compacted directory exactly as in the twin that was never compacted.
    let log = tmp.path().join("app-6.log");
    std::fs::write(&log, lines(6 * 480..7 * 480)).expect("write log");
    let compacted = process_and_detect(&data, &log);
    let plain = process_and_detect(&twin, &log);
    assert_eq!(compacted, plain, "the same detect summary, incidents included");
    for dataset in ANALYSIS.iter().chain(&["incidents"]) {
        assert_eq!(
            rows(&data.join(dataset)),
            rows(&twin.join(dataset)),
            "{dataset}: same rows"
        );
    }
    for dir in [&data, &twin] {
        assert!(
            !dir.join("metrics/date=2026-03-02/part-open.parquet").exists(),
            "day two judged: its open part removed, from the compacted directory too"
        );
    }
    assert!(!rows(&data.join("incidents")).is_empty(), "incidents to compare");
}
