//! The `alerts/history/` dataset: one row per delivery outcome (delivered, retrying, failed,
//! silenced, dry_run), schema per docs/datasets.md, one Parquet file per run written atomically by the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, StringArray, TimestampMicrosecondArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use loglens_core::Timestamp;
use loglens_store::{write_file, StoreError};

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

/// Writes the rows as `<data_dir>/alerts/history/part-<run>.parquet` (nothing when empty).
pub fn write(data_dir: &Path, run_id: &str, rows: &[HistoryRow]) -> Result<Option<PathBuf>, StoreError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let dir = data_dir.join("alerts").join("history");
    let name = format!("part-{run_id}.parquet");
    write_file(&dir, &name, Arc::new(schema()), columns(rows))?;
    Ok(Some(dir.join(name)))
}

fn columns(rows: &[HistoryRow]) -> Vec<ArrayRef> {
    let text =
        |f: fn(&HistoryRow) -> &str| Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let mut ids = ListBuilder::new(StringBuilder::new());
    for r in rows {
        for id in &r.incident_ids {
            ids.values().append_value(id);
        }
        ids.append(true);
    }
    vec![
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
    ]
}
