//! Reading the analysis datasets back as core's alert model: `incidents/` as
//! [`Incident`]s and `metrics/` as core's [`MetricPoint`]s, per the column contract in
//! docs/datasets.md. Lenient in types (files written by pyarrow or DuckDB hold large or
//! dictionary strings, other timestamp units); a missing or mistyped column is an error naming the
//! file and column.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int32Type, Int64Type, TimestampMicrosecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use loglens_core::alert::{Incident, Severity};
use loglens_core::metrics::{Metric, MetricPoint, SeriesKey};
use loglens_core::Timestamp;

use crate::read::{parquet_files, read_all_columns};
use crate::StoreError;

/// Typed access to one batch's columns, with errors naming file and column.
struct Columns<'a> {
    path: &'a Path,
    batch: &'a RecordBatch,
}

impl Columns<'_> {
    fn err(&self, column: &str, message: String) -> StoreError {
        StoreError::ColumnType {
            path: self.path.to_owned(),
            column: column.to_owned(),
            message,
        }
    }

    fn col(&self, name: &str) -> Result<&ArrayRef, StoreError> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "missing".into()))
    }

    fn opt(&self, name: &str) -> Option<&ArrayRef> {
        self.batch.column_by_name(name)
    }

    /// Utf8, LargeUtf8, Utf8View or a dictionary of them, as optional strings per row.
    fn strings(&self, name: &str) -> Result<Vec<Option<String>>, StoreError> {
        strings_of(self.col(name)?).ok_or_else(|| {
            self.err(
                name,
                format!(
                    "expected Utf8, found {}",
                    self.col(name)
                        .map(|c| c.data_type().to_string())
                        .unwrap_or_default()
                ),
            )
        })
    }

    fn opt_strings(&self, name: &str) -> Result<Vec<Option<String>>, StoreError> {
        match self.opt(name) {
            Some(_) => self.strings(name),
            None => Ok(vec![None; self.batch.num_rows()]),
        }
    }

    fn timestamps(&self, name: &str) -> Result<Vec<Option<Timestamp>>, StoreError> {
        let col = self.col(name)?;
        let factor: (i64, i64) = match col.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => (1_000_000, 1),
            DataType::Timestamp(TimeUnit::Millisecond, _) => (1000, 1),
            DataType::Timestamp(TimeUnit::Microsecond, _) => (1, 1),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => (1, 1000),
            other => return Err(self.err(name, format!("expected Timestamp, found {other}"))),
        };
        // All timestamp units share the i64 layout; reinterpret as µs then scale.
        let data = col.to_data();
        let arr = arrow_array::PrimitiveArray::<TimestampMicrosecondType>::from(
            data.into_builder()
                .data_type(DataType::Timestamp(TimeUnit::Microsecond, None))
                .build()
                .map_err(|e| self.err(name, e.to_string()))?,
        );
        Ok(arr
            .iter()
            .map(|v| v.map(|v| Timestamp(v.saturating_mul(factor.0) / factor.1)))
            .collect())
    }

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, StoreError> {
        let col = self.col(name)?;
        let arr = col
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| self.err(name, format!("expected Float64, found {}", col.data_type())))?;
        Ok(arr.iter().collect())
    }

    fn u64s(&self, name: &str) -> Result<Vec<Option<u64>>, StoreError> {
        let Some(col) = self.opt(name) else {
            return Ok(vec![None; self.batch.num_rows()]);
        };
        if let Some(a) = col.as_primitive_opt::<UInt64Type>() {
            return Ok(a.iter().collect());
        }
        if let Some(a) = col.as_primitive_opt::<UInt32Type>() {
            return Ok(a.iter().map(|v| v.map(u64::from)).collect());
        }
        if let Some(a) = col.as_primitive_opt::<Int64Type>() {
            return Ok(a.iter().map(|v| v.and_then(|v| u64::try_from(v).ok())).collect());
        }
        Err(self.err(name, format!("expected UInt64, found {}", col.data_type())))
    }

    fn i32s(&self, name: &str) -> Result<Vec<Option<i32>>, StoreError> {
        let col = self.col(name)?;
        let arr = col
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| self.err(name, format!("expected Int32, found {}", col.data_type())))?;
        Ok(arr.iter().collect())
    }

    fn string_lists(&self, name: &str) -> Result<Vec<Vec<String>>, StoreError> {
        let Some(col) = self.opt(name) else {
            return Ok(vec![Vec::new(); self.batch.num_rows()]);
        };
        let lists: Vec<Option<ArrayRef>> = if let Some(l) = col.as_list_opt::<i32>() {
            l.iter().collect()
        } else if let Some(l) = col.as_list_opt::<i64>() {
            l.iter().collect()
        } else {
            return Err(self.err(name, format!("expected List<Utf8>, found {}", col.data_type())));
        };
        lists
            .into_iter()
            .map(|l| match l {
                None => Ok(Vec::new()),
                Some(values) => strings_of(&values)
                    .map(|v| v.into_iter().flatten().collect())
                    .ok_or_else(|| self.err(name, "list items are not Utf8".into())),
            })
            .collect()
    }
}

fn strings_of(col: &ArrayRef) -> Option<Vec<Option<String>>> {
    let owned = |it: &mut dyn Iterator<Item = Option<&str>>| it.map(|v| v.map(str::to_owned)).collect();
    match col.data_type() {
        DataType::Utf8 => Some(owned(&mut col.as_string::<i32>().iter())),
        DataType::LargeUtf8 => Some(owned(&mut col.as_string::<i64>().iter())),
        DataType::Utf8View => Some(owned(&mut col.as_string_view().iter())),
        DataType::Dictionary(_, _) => {
            let dict = col.as_any_dictionary_opt()?;
            let values = strings_of(dict.values())?;
            let keys = dict.normalized_keys();
            Some(
                (0..col.len())
                    .map(|i| {
                        if col.is_null(i) {
                            None
                        } else {
                            keys.get(i).and_then(|k| values.get(*k).cloned().flatten())
                        }
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Reads every incident of the `incidents/` dataset in `dir`.
pub fn read_incidents(dir: &Path) -> Result<Vec<Incident>, StoreError> {
    let mut out = Vec::new();
    for path in parquet_files(dir)? {
        read_all_columns(&path, |batch| {
            let c = Columns { path: &path, batch };
            incidents_of(&c, &mut out)
        })?;
    }
    Ok(out)
}

fn incidents_of(c: &Columns<'_>, out: &mut Vec<Incident>) -> Result<(), StoreError> {
    let (ids, starts, ends, peaks) = (
        c.strings("incident_id")?,
        c.timestamps("start")?,
        c.timestamps("end")?,
        c.timestamps("peak_ts")?,
    );
    let (detectors, metrics, series) = (c.strings("detector")?, c.strings("metric")?, c.strings("series")?);
    let (services, hosts, levels) = (
        c.opt_strings("service")?,
        c.opt_strings("host")?,
        c.opt_strings("level")?,
    );
    let templates_ids = c.u64s("template_id")?;
    let (observed, expected, scores) = (c.floats("observed")?, c.floats("expected")?, c.floats("score")?);
    let severities = c.strings("severity")?;
    let templates = c.opt_strings("template")?;
    let examples = c.string_lists("examples")?;
    let roots = c.opt_strings("root")?;
    let related = related_of(c)?;
    for i in 0..c.batch.num_rows() {
        let severity_text = severities[i].clone().unwrap_or_default();
        let severity: Severity = severity_text
            .parse()
            .map_err(|m| c.err("severity", format!("row {i}: {m}")))?;
        let (Some(id), Some(start), Some(end)) = (ids[i].clone(), starts[i], ends[i]) else {
            return Err(c.err("incident_id/start/end", format!("row {i}: null")));
        };
        out.push(Incident {
            id,
            start,
            end,
            peak_ts: peaks[i].unwrap_or(start),
            detector: detectors[i].clone().unwrap_or_default(),
            metric: metrics[i].clone().unwrap_or_default(),
            series: series[i].clone().unwrap_or_default(),
            service: services[i].clone(),
            host: hosts[i].clone(),
            level: levels[i].clone(),
            template_id: templates_ids[i],
            observed: observed[i].unwrap_or(f64::NAN),
            expected: expected[i].unwrap_or(f64::NAN),
            score: scores[i].unwrap_or(f64::NAN),
            severity,
            template: templates[i].clone(),
            examples: examples[i].clone(),
            root: roots[i].clone(),
            related: related[i].clone(),
        });
    }
    Ok(())
}

/// Per row, the members other than the lead (the row's own detector and series), one line
/// each; empty lists where the files predate correlation.
fn related_of(c: &Columns<'_>) -> Result<Vec<Vec<String>>, StoreError> {
    let (detectors, series, severities) = (
        c.string_lists("member_detectors")?,
        c.string_lists("member_series")?,
        c.string_lists("member_severities")?,
    );
    let (lead_detectors, lead_series) = (c.strings("detector")?, c.strings("series")?);
    Ok((0..c.batch.num_rows())
        .map(|i| {
            let mut lead_seen = false;
            let members = detectors[i].iter().zip(&series[i]).zip(&severities[i]);
            members
                .filter(|((d, s), _)| {
                    let is_lead = !lead_seen
                        && lead_detectors[i].as_ref() == Some(*d)
                        && lead_series[i].as_ref() == Some(*s);
                    lead_seen |= is_lead;
                    !is_lead
                })
                .map(|((d, s), sev)| format!("{d} on {s} ({sev})"))
                .collect()
        })
        .collect())
}

/// The points of one metric read back, and the bucket width they were computed with.
#[derive(Debug, Clone, Default)]
pub struct MetricPoints {
    /// Bucket width in seconds (60 when the dataset holds none).
    pub bucket_secs: i64,
    /// The points, each series' labels shared by its points.
    pub points: Vec<MetricPoint>,
}

/// Reads the points of `metric` of the `metrics/` dataset in `dir` (other metrics skipped).
pub fn read_metric_points(dir: &Path, metric: Metric) -> Result<MetricPoints, StoreError> {
    let mut out = MetricPoints {
        bucket_secs: 60,
        points: Vec::new(),
    };
    // One key per series, shared by its points.
    let mut keys: HashMap<SeriesKey, Arc<SeriesKey>> = HashMap::new();
    for path in parquet_files(dir)? {
        read_all_columns(&path, |batch| {
            let c = Columns { path: &path, batch };
            let names = c.strings("metric")?;
            let (ts, widths, values) = (c.timestamps("ts")?, c.i32s("bucket_secs")?, c.floats("value")?);
            let (services, hosts, levels) = (
                c.opt_strings("service")?,
                c.opt_strings("host")?,
                c.opt_strings("level")?,
            );
            let templates = c.u64s("template_id")?;
            for i in 0..c.batch.num_rows() {
                if names[i].as_deref() != Some(metric.as_str()) {
                    continue;
                }
                let (Some(ts), Some(value)) = (ts[i], values[i]) else {
                    continue;
                };
                if let Some(width) = widths[i] {
                    out.bucket_secs = i64::from(width);
                }
                let key = SeriesKey {
                    service: services[i].clone(),
                    host: hosts[i].clone(),
                    level: levels[i].as_deref().and_then(|l| l.parse().ok()),
                    template: templates[i],
                };
                let key = keys
                    .entry(key)
                    .or_insert_with_key(|k| Arc::new(k.clone()))
                    .clone();
                out.points.push(MetricPoint {
                    ts,
                    metric,
                    key,
                    value,
                });
            }
            Ok(())
        })?;
    }
    Ok(out)
}
