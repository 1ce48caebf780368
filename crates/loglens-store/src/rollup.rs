//! The `rollups/` datasets `loglens detect` writes beside `metrics/`: exact counts by every
//! label the dashboard filters on (`rollups/counts/`), the same per template
//! (`rollups/templates/`) and latency histograms in the sketch's 2% bins (`rollups/latency/`,
//! quantiles within 1%), partitioned by date. Readers sum rows; a day may have several files, so
//! sums stay right however the records were laid out.

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int32Builder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt64Builder,
};
use arrow_array::ArrayRef;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use loglens_core::rollup::DayRollups;

use crate::analysis::{text, ts_field};
use crate::day_parts::DayPartWriter;
use crate::StoreError;

/// The counts, under the `rollups/` dataset directory.
pub const ROLLUP_COUNTS: &str = "counts";
/// The per-template counts, under the `rollups/` dataset directory.
pub const ROLLUP_TEMPLATES: &str = "templates";
/// The latency histograms, under the `rollups/` dataset directory.
pub const ROLLUP_LATENCY: &str = "latency";

/// Schema of `rollups/counts/`.
pub fn rollup_counts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        ts_field("ts"),
        Field::new("bucket_secs", DataType::Int32, false),
        text("service", true),
        text("host", true),
        text("level", true),
        text("source", true),
        Field::new("status_class", DataType::UInt16, true),
        Field::new("records", DataType::UInt64, false),
        Field::new("errors", DataType::UInt64, false),
    ]))
}

/// Schema of `rollups/templates/`.
pub fn rollup_templates_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        ts_field("ts"),
        Field::new("bucket_secs", DataType::Int32, false),
        Field::new("template_id", DataType::UInt64, false),
        text("service", true),
        text("host", true),
        text("level", true),
        text("source", true),
        Field::new("records", DataType::UInt64, false),
        Field::new("errors", DataType::UInt64, false),
        ts_field("first_ts"),
        ts_field("last_ts"),
    ]))
}

/// Schema of `rollups/latency/`.
pub fn rollup_latency_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        ts_field("ts"),
        Field::new("bucket_secs", DataType::Int32, false),
        text("service", true),
        text("host", true),
        Field::new("latency_ms", DataType::Float64, false),
        Field::new("records", DataType::UInt64, false),
    ]))
}

/// Writes a run's rollups under `dir` (the `rollups/` dataset) as they come, a chunk of a day
/// at a time, into `counts/date=D/part-<run>.parquet`, `templates/…` and `latency/…` (each only
/// for days with such rows).
pub struct RollupWriter {
    counts: DayPartWriter,
    templates: DayPartWriter,
    latency: DayPartWriter,
}

impl RollupWriter {
    /// A writer of the rollups of run `run_id` under `dir`.
    pub fn new(dir: &Path, run_id: &str) -> Self {
        RollupWriter {
            counts: DayPartWriter::new(&dir.join(ROLLUP_COUNTS), run_id, rollup_counts_schema()),
            templates: DayPartWriter::new(&dir.join(ROLLUP_TEMPLATES), run_id, rollup_templates_schema()),
            latency: DayPartWriter::new(&dir.join(ROLLUP_LATENCY), run_id, rollup_latency_schema()),
        }
    }

    /// Appends the rows of `day` (some or all of that day's rows).
    pub fn write(&mut self, day: &DayRollups) -> Result<(), StoreError> {
        if !day.counts.is_empty() {
            self.counts.write(day.day, count_columns(day))?;
        }
        if !day.templates.is_empty() {
            self.templates.write(day.day, template_columns(day))?;
        }
        if !day.latency.is_empty() {
            self.latency.write(day.day, latency_columns(day))?;
        }
        Ok(())
    }

    /// Closes every file; returns the rows written.
    pub fn finish(self) -> Result<u64, StoreError> {
        let counts = self.counts.finish();
        let templates = self.templates.finish();
        let latency = self.latency.finish();
        Ok(counts? + templates? + latency?)
    }
}

/// The constant `bucket_secs` column of `n` rows.
fn bucket_column(day: &DayRollups, n: usize) -> ArrayRef {
    let secs = i32::try_from(day.bucket_secs).unwrap_or(i32::MAX);
    let mut column = Int32Builder::with_capacity(n);
    column.append_value_n(secs, n);
    Arc::new(column.finish())
}

fn count_columns(day: &DayRollups) -> Vec<ArrayRef> {
    let n = day.counts.len();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut service, mut host, mut level, mut source) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut status = UInt16Builder::with_capacity(n);
    let (mut records, mut errors) = (UInt64Builder::with_capacity(n), UInt64Builder::with_capacity(n));
    for c in &day.counts {
        ts.append_value(c.ts.0);
        service.append_option(c.service.as_deref());
        host.append_option(c.host.as_deref());
        level.append_option(c.level.map(|l| l.as_str()));
        source.append_option(c.source.as_deref());
        status.append_option(c.status_class);
        records.append_value(c.records);
        errors.append_value(c.errors);
    }
    vec![
        Arc::new(ts.finish()),
        bucket_column(day, n),
        Arc::new(service.finish()),
        Arc::new(host.finish()),
        Arc::new(level.finish()),
        Arc::new(source.finish()),
        Arc::new(status.finish()),
        Arc::new(records.finish()),
        Arc::new(errors.finish()),
    ]
}

fn template_columns(day: &DayRollups) -> Vec<ArrayRef> {
    let n = day.templates.len();
    let timestamps = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut ts, mut first, mut last) = (timestamps(), timestamps(), timestamps());
    let mut template = UInt64Builder::with_capacity(n);
    let (mut service, mut host, mut level, mut source) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut records, mut errors) = (UInt64Builder::with_capacity(n), UInt64Builder::with_capacity(n));
    for t in &day.templates {
        ts.append_value(t.ts.0);
        template.append_value(t.template_id);
        service.append_option(t.service.as_deref());
        host.append_option(t.host.as_deref());
        level.append_option(t.level.map(|l| l.as_str()));
        source.append_option(t.source.as_deref());
        records.append_value(t.records);
        errors.append_value(t.errors);
        first.append_value(t.first_ts.0);
        last.append_value(t.last_ts.0);
    }
    vec![
        Arc::new(ts.finish()),
        bucket_column(day, n),
        Arc::new(template.finish()),
        Arc::new(service.finish()),
        Arc::new(host.finish()),
        Arc::new(level.finish()),
        Arc::new(source.finish()),
        Arc::new(records.finish()),
        Arc::new(errors.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
    ]
}

fn latency_columns(day: &DayRollups) -> Vec<ArrayRef> {
    let n = day.latency.len();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut service, mut host) = (StringBuilder::new(), StringBuilder::new());
    let mut latency = Float64Builder::with_capacity(n);
    let mut records = UInt64Builder::with_capacity(n);
    for l in &day.latency {
        ts.append_value(l.ts.0);
        service.append_option(l.service.as_deref());
        host.append_option(l.host.as_deref());
        latency.append_value(l.latency_ms);
        records.append_value(l.records);
    }
    vec![
        Arc::new(ts.finish()),
        bucket_column(day, n),
        Arc::new(service.finish()),
        Arc::new(host.finish()),
        Arc::new(latency.finish()),
        Arc::new(records.finish()),
    ]
}
