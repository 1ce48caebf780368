//! Reading the datasets alerting consumes (`incidents/`, `metrics/`, `templates/`), per the column
//! contract in docs/datasets.md. A missing dataset is empty (detection may not have run yet); a
//! file with a missing or mistyped column is an error naming the file and column.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, TimestampMicrosecondType, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use loglens_core::alert::{Incident, MetricPoint, Severity, TemplateInfo};
use loglens_core::{Level, Timestamp};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A dataset file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// I/O or Parquet decoding failed.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A column is missing or has another type than the contract says.
    #[error("{path}: column {column}: {message}")]
    Column {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
}

/// Every `*.parquet` under `dir`, recursively, sorted; hidden and temporary files skipped.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(DatasetError::Read {
                    path: d,
                    message: e.to_string(),
                })
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn batches(path: &Path) -> Result<Vec<RecordBatch>, DatasetError> {
    let read = |e: &dyn std::fmt::Display| DatasetError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let file = File::open(path).map_err(|e| read(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| read(&e))?
        .build()
        .map_err(|e| read(&e))?;
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| read(&e))
}

/// Typed access to one batch's columns, with errors naming file and column.
struct Columns<'a> {
    path: &'a Path,
    batch: &'a RecordBatch,
}

impl Columns<'_> {
    fn err(&self, column: &str, message: String) -> DatasetError {
        DatasetError::Column {
            path: self.path.to_owned(),
            column: column.to_owned(),
            message,
        }
    }

    fn col(&self, name: &str) -> Result<&ArrayRef, DatasetError> {
        self.batch
            .column_by_name(name)
            .ok_or_else(|| self.err(name, "missing".into()))
    }

    fn opt(&self, name: &str) -> Option<&ArrayRef> {
        self.batch.column_by_name(name)
    }

    /// Utf8, LargeUtf8, Utf8View or a dictionary of them, as optional strings per row.
    fn strings(&self, name: &str) -> Result<Vec<Option<String>>, DatasetError> {
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

    fn opt_strings(&self, name: &str) -> Result<Vec<Option<String>>, DatasetError> {
        match self.opt(name) {
            Some(_) => self.strings(name),
            None => Ok(vec![None; self.batch.num_rows()]),
        }
    }

    fn timestamps(&self, name: &str) -> Result<Vec<Option<Timestamp>>, DatasetError> {
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

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, DatasetError> {
        let col = self.col(name)?;
        let arr = col
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| self.err(name, format!("expected Float64, found {}", col.data_type())))?;
        Ok(arr.iter().collect())
    }

    fn u64s(&self, name: &str) -> Result<Vec<Option<u64>>, DatasetError> {
        let Some(col) = self.opt(name) else {
            return Ok(vec![None; self.batch.num_rows()]);
        };
        if let Some(a) = col.as_primitive_opt::<UInt64Type>() {
            return Ok(a.iter().collect());
        }
        if let Some(a) = col.as_primitive_opt::<UInt32Type>() {
            return Ok(a.iter().map(|v| v.map(u64::from)).collect());
        }
        if let Some(a) = col.as_primitive_opt::<arrow_array::types::Int64Type>() {
            return Ok(a.iter().map(|v| v.and_then(|v| u64::try_from(v).ok())).collect());
        }
        Err(self.err(name, format!("expected UInt64, found {}", col.data_type())))
    }

    fn i32s(&self, name: &str) -> Result<Vec<Option<i32>>, DatasetError> {
        let col = self.col(name)?;
        let arr = col
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| self.err(name, format!("expected Int32, found {}", col.data_type())))?;
        Ok(arr.iter().collect())
    }

    fn string_lists(&self, name: &str) -> Result<Vec<Vec<String>>, DatasetError> {
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

/// Reads every incident under `<data_dir>/incidents/`.
pub fn read_incidents(data_dir: &Path) -> Result<Vec<Incident>, DatasetError> {
    let mut out = Vec::new();
    for path in parquet_files(&data_dir.join("incidents"))? {
        for batch in batches(&path)? {
            let c = Columns {
                path: &path,
                batch: &batch,
            };
            incidents_of(&c, &mut out)?;
        }
    }
    Ok(out)
}

fn incidents_of(c: &Columns<'_>, out: &mut Vec<Incident>) -> Result<(), DatasetError> {
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
fn related_of(c: &Columns<'_>) -> Result<Vec<Vec<String>>, DatasetError> {
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

/// Reads the points of `metric` under `<data_dir>/metrics/` (other metrics skipped early).
pub fn read_metric(data_dir: &Path, metric: &str) -> Result<Vec<MetricPoint>, DatasetError> {
    let mut out = Vec::new();
    for path in parquet_files(&data_dir.join("metrics"))? {
        for batch in batches(&path)? {
            let c = Columns {
                path: &path,
                batch: &batch,
            };
            let names = c.strings("metric")?;
            let (ts, widths, series, values) = (
                c.timestamps("ts")?,
                c.i32s("bucket_secs")?,
                c.strings("series")?,
                c.floats("value")?,
            );
            let (services, hosts, levels) = (
                c.opt_strings("service")?,
                c.opt_strings("host")?,
                c.opt_strings("level")?,
            );
            for i in 0..batch.num_rows() {
                if names[i].as_deref() != Some(metric) {
                    continue;
                }
                let (Some(ts), Some(value)) = (ts[i], values[i]) else {
                    continue;
                };
                out.push(MetricPoint {
                    ts,
                    bucket_secs: widths[i].unwrap_or(60),
                    metric: metric.to_owned(),
                    series: series[i].clone().unwrap_or_default(),
                    service: services[i].clone(),
                    host: hosts[i].clone(),
                    level: levels[i].clone(),
                    value,
                });
            }
        }
    }
    Ok(out)
}

/// Reads `<data_dir>/templates/templates.parquet` (empty when absent): one entry per current
/// template, the ids that generalized into it (rows whose `canonical_id` names it) counted in
/// its totals. Files written before `canonical_id` existed hold current templates only.
pub fn read_templates(data_dir: &Path) -> Result<Vec<TemplateInfo>, DatasetError> {
    let path = data_dir.join("templates").join("templates.parquet");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    for batch in batches(&path)? {
        let c = Columns {
            path: &path,
            batch: &batch,
        };
        let (ids, texts, counts) = (c.u64s("template_id")?, c.strings("template")?, c.u64s("count")?);
        let canonical = match c.opt("canonical_id") {
            Some(_) => c.u64s("canonical_id")?,
            None => ids.clone(),
        };
        let (first, last) = (c.timestamps("first_seen")?, c.timestamps("last_seen")?);
        let (levels, services, examples) = (
            c.opt_strings("level")?,
            c.opt_strings("service")?,
            c.opt_strings("example")?,
        );
        for i in 0..batch.num_rows() {
            let (Some(id), Some(first_seen)) = (ids[i], first[i]) else {
                continue;
            };
            let info = TemplateInfo {
                template_id: id,
                template: texts[i].clone().unwrap_or_default(),
                count: counts[i].unwrap_or(0),
                first_seen,
                last_seen: last[i].unwrap_or(first_seen),
                level: levels[i].as_deref().and_then(|l| l.parse::<Level>().ok()),
                service: services[i].clone(),
                example: examples[i].clone().unwrap_or_default(),
            };
            rows.push((canonical[i].unwrap_or(id), info));
        }
    }
    Ok(current_templates(rows))
}

/// Folds rows (each with its canonical id) into one per current template: its own text, the
/// records of all its ids, the earliest first sighting (with its example and service), the
/// latest last one and the worst level. Rows that count no record add nothing.
fn current_templates(rows: Vec<(u64, TemplateInfo)>) -> Vec<TemplateInfo> {
    let mut out: std::collections::BTreeMap<u64, TemplateInfo> = std::collections::BTreeMap::new();
    for (canonical, row) in rows {
        let total = out.entry(canonical).or_insert_with(|| TemplateInfo {
            template_id: canonical,
            count: 0,
            ..row.clone()
        });
        if row.template_id == canonical {
            total.template.clone_from(&row.template);
        }
        if row.count == 0 {
            continue;
        }
        if total.count == 0 {
            *total = TemplateInfo {
                template_id: canonical,
                template: std::mem::take(&mut total.template),
                ..row
            };
            continue;
        }
        total.count += row.count;
        total.last_seen = total.last_seen.max(row.last_seen);
        total.level = total.level.max(row.level);
        if row.first_seen < total.first_seen {
            total.first_seen = row.first_seen;
            total.service = row.service;
            total.example = row.example;
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64, text: &str, count: u64, first: i64, example: &str) -> TemplateInfo {
        TemplateInfo {
            template_id: id,
            template: text.to_owned(),
            count,
            first_seen: Timestamp(first),
            last_seen: Timestamp(first + 5),
            level: Some(Level::Error),
            service: None,
            example: example.to_owned(),
        }
    }

    #[test]
    fn ids_that_generalized_count_under_their_current_template() {
        let rows = vec![
            (2, info(2, "Job <*> finished", 3, 50, "Job b2 finished")),
            (2, info(1, "Job a1 finished", 4, 10, "Job a1 finished")),
            (7, info(7, "other", 1, 0, "other")),
        ];
        let current = current_templates(rows);
        assert_eq!(current.len(), 2);
        let job = &current[0];
        assert_eq!(
            (job.template_id, job.template.as_str(), job.count),
            (2, "Job <*> finished", 7)
        );
        assert_eq!((job.first_seen, job.last_seen), (Timestamp(10), Timestamp(55)));
        assert_eq!(job.example, "Job a1 finished");
    }
}
