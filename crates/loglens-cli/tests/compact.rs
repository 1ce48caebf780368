//! `loglens compact` end to end: three `process` runs leave three parts in one hour; compaction
//! leaves one with every record, and `detect` and `templates` read the same afterwards.

mod common;

use common::{json_of, loglens, parquet_files, process_json, stored_lines};

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
