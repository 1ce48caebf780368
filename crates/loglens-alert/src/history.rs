//! The `alerts/history/` dataset: one row per delivery outcome (delivered, retrying, failed,
//! silenced, dry_run), schema per docs/datasets.md, one Parquet file per run written atomically.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use loglens_core::Timestamp;
use parquet::arrow::ArrowWriter;

/// One history row.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// When recorded.
    pub ts: Timestamp,
    /// The notification's idempotency key.
    pub idempotency_key: String,
    /// Rule name.
    pub rule: String,
    /// Receiver name.
    pub receiver: String,
    /// `email`, `webhook`, `slack`, `alertmanager`.
    pub receiver_kind: String,
    /// Group key.
    pub group_key: String,
    /// `firing`, `resolved`, `test`.
    pub state: String,
    /// Incidents in the notification.
    pub incident_ids: Vec<String>,
    /// One-line summary.
    pub subject: String,
    /// Attempts so far.
    pub attempts: u32,
    /// `delivered`, `retrying`, `failed`, `silenced`, `dry_run`.
    pub result: String,
    /// Last error, secrets redacted.
    pub error: Option<String>,
}

/// The dataset's Arrow schema.
pub fn schema() -> Schema {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("idempotency_key"),
        text("rule"),
        text("receiver"),
        text("receiver_kind"),
        text("group_key"),
        text("state"),
        Field::new(
            "incident_ids",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        text("subject"),
        Field::new("attempts", DataType::UInt32, false),
        text("result"),
        Field::new("error", DataType::Utf8, true),
    ])
}

/// A history file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct HistoryError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// Writes the rows as `<data_dir>/alerts/history/part-<run>.parquet` (nothing when empty).
pub fn write(data_dir: &Path, run_id: &str, rows: &[HistoryRow]) -> Result<Option<PathBuf>, HistoryError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let dir = data_dir.join("alerts").join("history");
    let path = dir.join(format!("part-{run_id}.parquet"));
    let tmp = dir.join(format!(".part-{run_id}.parquet.tmp"));
    let err = |p: &Path, e: &dyn std::fmt::Display| HistoryError {
        path: p.to_owned(),
        message: e.to_string(),
    };
    fs::create_dir_all(&dir).map_err(|e| err(&dir, &e))?;
    let batch = batch(rows).map_err(|e| err(&path, &e))?;
    let file = File::create(&tmp).map_err(|e| err(&tmp, &e))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(|e| err(&tmp, &e))?;
    writer.write(&batch).map_err(|e| err(&tmp, &e))?;
    let file = writer.into_inner().map_err(|e| err(&tmp, &e))?;
    file.sync_all().map_err(|e| err(&tmp, &e))?;
    fs::rename(&tmp, &path).map_err(|e| err(&path, &e))?;
    Ok(Some(path))
}

fn batch(rows: &[HistoryRow]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let text =
        |f: fn(&HistoryRow) -> &str| Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let mut ids = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for id in &r.incident_ids {
            ids.values().append_value(id);
        }
        ids.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts.0)).with_timezone("UTC"),
        ),
        text(|r| &r.idempotency_key),
        text(|r| &r.rule),
        text(|r| &r.receiver),
        text(|r| &r.receiver_kind),
        text(|r| &r.group_key),
        text(|r| &r.state),
        Arc::new(ids.finish()),
        text(|r| &r.subject),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.attempts))),
        text(|r| &r.result),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| r.error.as_deref()))),
    ];
    RecordBatch::try_new(Arc::new(schema()), columns)
}
