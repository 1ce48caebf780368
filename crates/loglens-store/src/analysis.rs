//! The datasets `loglens detect` writes: `metrics/` (partitioned by date), `anomalies/` and
//! `incidents/`. Each run adds a part (staged and committed with the run, so a reader sees all
//! of a run or none of it) and replaces the `part-open.parquet` files of what is still open.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int32Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use loglens_core::detect::{Anomaly, IncidentRow};
use loglens_core::metrics::{MetricPoint, SeriesKey};

use crate::day_parts::DayPartWriter;
use crate::{PartFile, StoreError};

/// The run id that names the parts `loglens detect` replaces every run (`part-open.parquet`):
/// the still-open incidents, their anomalies, and the metrics of the buckets not judged yet.
/// Shared with compaction, which must leave such parts as they are.
pub const OPEN_PART: &str = "open";

pub(crate) fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    )
}

pub(crate) fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn label_fields() -> Vec<Field> {
    vec![
        text("series", false),
        text("service", true),
        text("host", true),
        text("level", true),
        Field::new("template_id", DataType::UInt64, true),
    ]
}

/// Schema of `metrics/`.
pub fn metrics_schema() -> SchemaRef {
    let mut fields = vec![
        ts_field("ts"),
        Field::new("bucket_secs", DataType::Int32, false),
        text("metric", false),
    ];
    fields.extend(label_fields());
    fields.push(Field::new("value", DataType::Float64, false));
    Arc::new(Schema::new(fields))
}

/// Schema of `anomalies/`.
pub fn anomalies_schema() -> SchemaRef {
    let mut fields = vec![ts_field("ts"), text("metric", false)];
    fields.extend(label_fields());
    fields.push(text("detector", false));
    for name in ["observed", "expected", "lower", "upper", "score"] {
        fields.push(Field::new(name, DataType::Float64, false));
    }
    fields.push(text("severity", false));
    fields.push(text("incident_id", false));
    Arc::new(Schema::new(fields))
}

/// The list columns of `incidents/` describing its members, in order (Utf8 items).
const MEMBER_COLUMNS: [&str; 5] = [
    "member_ids",
    "member_detectors",
    "member_series",
    "member_severities",
    "member_metrics",
];

/// The members' spans (Timestamp items), after [`MEMBER_COLUMNS`].
const MEMBER_SPAN_COLUMNS: [&str; 2] = ["member_starts", "member_ends"];

/// Schema of `incidents/`.
pub fn incidents_schema() -> SchemaRef {
    let mut fields = vec![
        text("incident_id", false),
        ts_field("start"),
        ts_field("end"),
        ts_field("peak_ts"),
        text("detector", false),
        text("metric", false),
    ];
    fields.extend(label_fields());
    for name in ["observed", "expected", "lower", "upper", "score"] {
        fields.push(Field::new(name, DataType::Float64, false));
    }
    fields.push(text("severity", false));
    fields.push(Field::new("buckets", DataType::UInt32, false));
    fields.push(text("template", true));
    fields.push(Field::new(
        "examples",
        DataType::List(Arc::new(text("item", true))),
        false,
    ));
    // Correlation: the series that explains the merged incident, and its members (parallel
    // lists: one entry per incident merged into this one).
    fields.push(text("root", false));
    for name in MEMBER_COLUMNS {
        fields.push(Field::new(
            name,
            DataType::List(Arc::new(text("item", true))),
            false,
        ));
    }
    for name in MEMBER_SPAN_COLUMNS {
        let item = Field::new("item", ts_field("item").data_type().clone(), true);
        fields.push(Field::new(name, DataType::List(Arc::new(item)), false));
    }
    Arc::new(Schema::new(fields))
}

/// Label columns in the order of [`label_fields`].
struct LabelColumns {
    series: StringBuilder,
    service: StringBuilder,
    host: StringBuilder,
    level: StringBuilder,
    template: UInt64Builder,
}

/// Consecutive rows of one series.
struct SeriesRun<'a> {
    key: &'a SeriesKey,
    /// The series' name ([`SeriesKey::canonical`]), formatted once for its rows.
    name: String,
    rows: usize,
}

/// `points` (which come series by series) as runs of one series each.
fn series_runs<'a>(points: &[&'a MetricPoint]) -> Vec<SeriesRun<'a>> {
    let mut runs: Vec<(&Arc<SeriesKey>, usize)> = Vec::new();
    for p in points {
        match runs.last_mut() {
            Some((key, rows)) if Arc::ptr_eq(key, &p.key) => *rows += 1,
            _ => runs.push((&p.key, 1)),
        }
    }
    (runs.into_iter())
        .map(|(key, rows)| SeriesRun {
            key,
            name: key.canonical(),
            rows,
        })
        .collect()
}

impl LabelColumns {
    /// Builders sized for `runs` at once: grown by doubling, the metrics' builders (a day's
    /// 260k rows of the demo) were copied and faulted in afresh at each step, a fifth of
    /// detect's page faults.
    fn for_runs(runs: &[SeriesRun<'_>]) -> Self {
        let rows = runs.iter().map(|r| r.rows).sum();
        let bytes =
            |len: &dyn Fn(&SeriesRun<'_>) -> usize| -> usize { runs.iter().map(|r| len(r) * r.rows).sum() };
        let text = |s: Option<&str>| s.map_or(0, str::len);
        LabelColumns {
            series: StringBuilder::with_capacity(rows, bytes(&|r| r.name.len())),
            service: StringBuilder::with_capacity(rows, bytes(&|r| text(r.key.service.as_deref()))),
            host: StringBuilder::with_capacity(rows, bytes(&|r| text(r.key.host.as_deref()))),
            level: StringBuilder::with_capacity(rows, bytes(&|r| text(r.key.level.map(|l| l.as_str())))),
            template: UInt64Builder::with_capacity(rows),
        }
    }

    fn new() -> Self {
        LabelColumns {
            series: StringBuilder::new(),
            service: StringBuilder::new(),
            host: StringBuilder::new(),
            level: StringBuilder::new(),
            template: UInt64Builder::new(),
        }
    }

    fn push(&mut self, key: &SeriesKey, series: &str) {
        self.series.append_value(series);
        self.service.append_option(key.service.as_deref());
        self.host.append_option(key.host.as_deref());
        self.level.append_option(key.level.map(|l| l.as_str()));
        self.template.append_option(key.template);
    }

    fn finish(mut self, out: &mut Vec<ArrayRef>) {
        out.push(Arc::new(self.series.finish()));
        out.push(Arc::new(self.service.finish()));
        out.push(Arc::new(self.host.finish()));
        out.push(Arc::new(self.level.finish()));
        out.push(Arc::new(self.template.finish()));
    }
}

/// An anomalous bucket with its series labels and the incident it belongs to.
#[derive(Debug, Clone)]
pub struct AnomalyRow {
    /// The anomaly.
    pub anomaly: Anomaly,
    /// Its series labels.
    pub key: SeriesKey,
    /// The incident it was merged into.
    pub incident_id: String,
}

/// Writes `columns` as one Parquet file `dir/name`, atomically (temporary name, fsync, rename);
/// returns the rows written.
pub fn write_file(
    dir: &Path,
    name: &str,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
) -> Result<u64, StoreError> {
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut file = PartFile::create(dir, name, schema)?;
    file.write(&batch)?;
    file.finish()
}

/// Writes metric points into `dir/date=YYYY-MM-DD/part-<run>.parquet`; returns rows written.
pub fn write_metrics(
    dir: &Path,
    run_id: &str,
    bucket_secs: i32,
    points: &[MetricPoint],
) -> Result<u64, StoreError> {
    let mut writer = MetricsWriter::new(dir, run_id, bucket_secs);
    writer.write(points)?;
    writer.finish()
}

/// Writes a run's metric points as they are judged, a stretch at a time, into one file per day
/// (`dir/date=YYYY-MM-DD/part-<run>.parquet`).
pub struct MetricsWriter {
    parts: DayPartWriter,
    bucket_secs: i32,
}

impl MetricsWriter {
    /// A writer of `dir/date=…/part-<run_id>.parquet` for buckets `bucket_secs` wide.
    pub fn new(dir: &Path, run_id: &str, bucket_secs: i32) -> Self {
        MetricsWriter {
            parts: DayPartWriter::new(dir, run_id, metrics_schema()),
            bucket_secs,
        }
    }

    /// Appends `points` (of any days) to their days' files, but the zeros of dense series
    /// between buckets with records ([`MetricPoint::filled`]: readers put them back).
    pub fn write(&mut self, points: &[MetricPoint]) -> Result<(), StoreError> {
        let mut by_day: BTreeMap<i64, Vec<&MetricPoint>> = BTreeMap::new();
        for p in points.iter().filter(|p| !p.filled) {
            by_day.entry(p.ts.secs().div_euclid(86_400)).or_default().push(p);
        }
        for (day, points) in by_day {
            let columns = self.columns(&points);
            self.parts.write(day, columns)?;
        }
        Ok(())
    }

    fn columns(&self, points: &[&MetricPoint]) -> Vec<ArrayRef> {
        let rows = points.len();
        let mut ts = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        let mut bucket = Int32Builder::with_capacity(rows);
        let metric_bytes = points.iter().map(|p| p.metric.as_str().len()).sum();
        let mut metric = StringBuilder::with_capacity(rows, metric_bytes);
        let runs = series_runs(points);
        let mut labels = LabelColumns::for_runs(&runs);
        let mut value = Float64Builder::with_capacity(rows);
        let mut points = points.iter();
        for run in &runs {
            for p in points.by_ref().take(run.rows) {
                ts.append_value(p.ts.0);
                bucket.append_value(self.bucket_secs);
                metric.append_value(p.metric.as_str());
                labels.push(run.key, &run.name);
                value.append_value(p.value);
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(bucket.finish()),
            Arc::new(metric.finish()),
        ];
        labels.finish(&mut columns);
        columns.push(Arc::new(value.finish()));
        columns
    }

    /// Closes every file; returns the points written.
    pub fn finish(self) -> Result<u64, StoreError> {
        self.parts.finish()
    }
}

/// Writes `anomalies/part-<run>.parquet`.
pub fn write_anomalies(dir: &Path, run_id: &str, rows: &[AnomalyRow]) -> Result<u64, StoreError> {
    let mut ts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut metric = StringBuilder::new();
    let mut labels = LabelColumns::new();
    let mut detector = StringBuilder::new();
    let mut numbers: [Float64Builder; 5] = Default::default();
    let mut severity = StringBuilder::new();
    let mut incident = StringBuilder::new();
    for row in rows {
        let a = &row.anomaly;
        ts.append_value(a.ts.0);
        metric.append_value(&a.metric);
        labels.push(&row.key, &a.series);
        detector.append_value(a.detector.as_str());
        let v = &a.verdict;
        for (b, x) in numbers
            .iter_mut()
            .zip([a.observed, v.expected, v.lower, v.upper, v.score])
        {
            b.append_value(x);
        }
        severity.append_value(v.severity.map_or("info", |s| s.as_str()));
        incident.append_value(&row.incident_id);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ts.finish()), Arc::new(metric.finish())];
    labels.finish(&mut columns);
    columns.push(Arc::new(detector.finish()));
    columns.extend(numbers.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(severity.finish()));
    columns.push(Arc::new(incident.finish()));
    write_file(
        dir,
        &format!("part-{run_id}.parquet"),
        anomalies_schema(),
        columns,
    )
}

/// Writes `incidents/part-<run>.parquet`.
pub fn write_incidents(dir: &Path, run_id: &str, rows: &[IncidentRow]) -> Result<u64, StoreError> {
    let stamp = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let (mut start, mut end, mut peak) = (stamp(), stamp(), stamp());
    let mut id = StringBuilder::new();
    let mut detector = StringBuilder::new();
    let mut metric = StringBuilder::new();
    let mut labels = LabelColumns::new();
    let mut numbers: [Float64Builder; 5] = Default::default();
    let mut severity = StringBuilder::new();
    let mut buckets = UInt32Builder::new();
    let mut template = StringBuilder::new();
    let mut examples = ListBuilder::new(StringBuilder::new());
    let mut root = StringBuilder::new();
    let mut members: [ListBuilder<StringBuilder>; 5] =
        std::array::from_fn(|_| ListBuilder::new(StringBuilder::new()));
    let mut spans: [ListBuilder<TimestampMicrosecondBuilder>; 2] =
        std::array::from_fn(|_| ListBuilder::new(stamp()));
    for row in rows {
        let i = &row.incident;
        id.append_value(&i.incident_id);
        start.append_value(i.start.0);
        end.append_value(i.end.0);
        peak.append_value(i.peak_ts.0);
        detector.append_value(i.detector.as_str());
        metric.append_value(&i.metric);
        labels.push(&row.key, &i.series);
        let v = &i.peak;
        for (b, x) in numbers
            .iter_mut()
            .zip([i.observed, v.expected, v.lower, v.upper, v.score])
        {
            b.append_value(x);
        }
        severity.append_value(i.severity.as_str());
        buckets.append_value(i.buckets);
        template.append_option(row.template.as_deref());
        for e in &row.examples {
            examples.values().append_value(e);
        }
        examples.append(true);
        root.append_value(&i.root);
        for m in &i.members {
            let fields = [
                m.incident_id.as_str(),
                m.detector.as_str(),
                m.series.as_str(),
                m.severity.as_str(),
                m.metric.as_str(),
            ];
            for (list, value) in members.iter_mut().zip(fields) {
                list.values().append_value(value);
            }
            for (list, value) in spans.iter_mut().zip([m.start, m.end]) {
                list.values().append_value(value.0);
            }
        }
        for list in &mut members {
            list.append(true);
        }
        for list in &mut spans {
            list.append(true);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(peak.finish()),
        Arc::new(detector.finish()),
        Arc::new(metric.finish()),
    ];
    labels.finish(&mut columns);
    columns.extend(numbers.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(severity.finish()));
    columns.push(Arc::new(buckets.finish()));
    columns.push(Arc::new(template.finish()));
    columns.push(Arc::new(examples.finish()));
    columns.push(Arc::new(root.finish()));
    columns.extend(members.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.extend(spans.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    write_file(
        dir,
        &format!("part-{run_id}.parquet"),
        incidents_schema(),
        columns,
    )
}
