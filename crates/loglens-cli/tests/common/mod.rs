//! Helpers for the CLI's end-to-end tests: run the real binary in a temp directory and read
//! back the Parquet it wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The `loglens` binary under test.
pub fn loglens() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("loglens").expect("binary built")
}

/// Runs `command`, fails the test with its stderr unless it succeeds, and parses its stdout as
/// one JSON document (the `--json` summary).
pub fn json_of(command: &mut assert_cmd::Command) -> serde_json::Value {
    let output = command.output().expect("runs");
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// Runs `loglens process --json --data-dir data log` and returns its summary.
pub fn process_json(data: &Path, log: &Path) -> serde_json::Value {
    json_of(
        loglens()
            .args(["process", "--json", "--data-dir"])
            .arg(data)
            .arg(log),
    )
}

/// The format `process` detected for `log`, from its summary.
pub fn detected_format(summary: &serde_json::Value, log: &Path) -> String {
    summary["file_formats"][log.display().to_string()]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every `*.parquet` file below `dir`, sorted; fails on a leftover temporary file.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name").to_string_lossy().to_string();
            assert!(
                !name.ends_with(".tmp"),
                "temporary file left behind: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// All batches of a dataset directory.
pub fn read_dataset(dir: &Path) -> Vec<RecordBatch> {
    parquet_files(dir)
        .iter()
        .flat_map(|path| {
            let file = std::fs::File::open(path).expect("open parquet");
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .expect("parquet footer")
                .build()
                .expect("reader");
            reader.map(|b| b.expect("batch")).collect::<Vec<_>>()
        })
        .collect()
}

/// Total rows of a dataset directory.
pub fn count_rows(dir: &Path) -> usize {
    read_dataset(dir).iter().map(|b| b.num_rows()).sum()
}

/// The values of a string column across batches (None for nulls).
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let col = batch.column_by_name(column).expect("column exists");
        let col = col.as_any().downcast_ref::<StringArray>().expect("utf8 column");
        out.extend((0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i).to_owned())));
    }
    out
}

/// The values of a u64 column across batches.
pub fn u64s(batches: &[RecordBatch], column: &str) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for batch in batches {
        let col = batch.column_by_name(column).expect("column exists");
        let col = col.as_any().downcast_ref::<UInt64Array>().expect("u64 column");
        out.extend((0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i))));
    }
    out
}

/// The values of a u32 column across batches (None for nulls).
pub fn u32s(batches: &[RecordBatch], column: &str) -> Vec<Option<u32>> {
    let mut out = Vec::new();
    for batch in batches {
        let col = batch.column_by_name(column).expect("column exists");
        let col = col.as_any().downcast_ref::<UInt32Array>().expect("u32 column");
        out.extend((0..col.len()).map(|i| col.is_valid(i).then(|| col.value(i))));
    }
    out
}

/// How many times each (source, line) is stored, over `records/` (a record covers `line` and
/// the continuation lines after it) and `unparsed/` of a data directory: every line read must
/// be there exactly once.
pub fn stored_lines(data: &Path) -> std::collections::BTreeMap<(String, u64), usize> {
    let mut stored = std::collections::BTreeMap::new();
    for dataset in ["records", "unparsed"] {
        let batches = read_dataset(&data.join(dataset));
        let spans = match dataset {
            "records" => u32s(&batches, "lines"),
            _ => vec![Some(1); batches.iter().map(|b| b.num_rows()).sum()],
        };
        for ((source, line), span) in strings(&batches, "source")
            .into_iter()
            .zip(u64s(&batches, "line"))
            .zip(spans)
        {
            let (source, line) = (source.expect("source"), line.expect("line"));
            for covered in line..line + u64::from(span.expect("lines")) {
                *stored.entry((source.clone(), covered)).or_insert(0) += 1;
            }
        }
    }
    stored
}

/// Copies the directory tree `from` to `to` (a data directory, to run a command on a copy).
pub fn copy_dir(from: &Path, to: &Path) {
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
