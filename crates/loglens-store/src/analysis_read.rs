//! Reading the analysis datasets back as core's model: `incidents/` as [`IncidentRow`]s (what
//! `detect` wrote, round trip) and `metrics/` as [`MetricPoint`]s, per the column contract in
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
use loglens_core::detect::{DetectorKind, Incident, IncidentMember, IncidentRow, Severity, Verdict};
use loglens_core::metrics::{fill_gaps, Metric, MetricPoint, SeriesKey};
use loglens_core::Level;
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
        timestamps_of(self.col(name)?).map_err(|m| self.err(name, m))
    }

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, StoreError> {
        let col = self.col(name)?;
        let arr = col
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| self.err(name, format!("expected Float64, found {}", col.data_type())))?;
        Ok(arr.iter().collect())
    }

    fn opt_floats(&self, name: &str) -> Result<Vec<Option<f64>>, StoreError> {
        match self.opt(name) {
            Some(_) => self.floats(name),
            None => Ok(vec![None; self.batch.num_rows()]),
        }
    }

    fn opt_u32s(&self, name: &str) -> Result<Vec<Option<u32>>, StoreError> {
        let wide = self.u64s(name)?;
        Ok(wide
            .into_iter()
            .map(|v| v.and_then(|v| u32::try_from(v).ok()))
            .collect())
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
        self.lists(name, |values| {
            strings_of(values)
                .map(|v| v.into_iter().flatten().collect())
                .ok_or_else(|| "list items are not Utf8".to_owned())
        })
    }

    fn timestamp_lists(&self, name: &str) -> Result<Vec<Vec<Timestamp>>, StoreError> {
        self.lists(name, |values| {
            Ok(timestamps_of(values)?.into_iter().flatten().collect())
        })
    }

    /// A list column, each list's items converted by `items`; empty lists where the column is
    /// missing (files written before it existed).
    fn lists<T>(
        &self,
        name: &str,
        items: impl Fn(&ArrayRef) -> Result<Vec<T>, String>,
    ) -> Result<Vec<Vec<T>>, StoreError> {
        let Some(col) = self.opt(name) else {
            return Ok((0..self.batch.num_rows()).map(|_| Vec::new()).collect());
        };
        let lists: Vec<Option<ArrayRef>> = if let Some(l) = col.as_list_opt::<i32>() {
            l.iter().collect()
        } else if let Some(l) = col.as_list_opt::<i64>() {
            l.iter().collect()
        } else {
            return Err(self.err(name, format!("expected a List, found {}", col.data_type())));
        };
        lists
            .into_iter()
            .map(|l| match l {
                None => Ok(Vec::new()),
                Some(values) => items(&values).map_err(|m| self.err(name, m)),
            })
            .collect()
    }
}

/// Any timestamp unit, as µs.
fn timestamps_of(col: &ArrayRef) -> Result<Vec<Option<Timestamp>>, String> {
    let factor: (i64, i64) = match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => (1_000_000, 1),
        DataType::Timestamp(TimeUnit::Millisecond, _) => (1000, 1),
        DataType::Timestamp(TimeUnit::Microsecond, _) => (1, 1),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => (1, 1000),
        other => return Err(format!("expected Timestamp, found {other}")),
    };
    // All timestamp units share the i64 layout; reinterpret as µs then scale.
    let data = col.to_data();
    let arr = arrow_array::PrimitiveArray::<TimestampMicrosecondType>::from(
        data.into_builder()
            .data_type(DataType::Timestamp(TimeUnit::Microsecond, None))
            .build()
            .map_err(|e| e.to_string())?,
    );
    Ok(arr
        .iter()
        .map(|v| v.map(|v| Timestamp(v.saturating_mul(factor.0) / factor.1)))
        .collect())
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
pub fn read_incidents(dir: &Path) -> Result<Vec<IncidentRow>, StoreError> {
    let mut out = Vec::new();
    for path in parquet_files(dir)? {
        read_all_columns(&path, |batch| {
            let c = Columns { path: &path, batch };
            incidents_of(&c, &mut out)
        })?;
    }
    Ok(out)
}

fn incidents_of(c: &Columns<'_>, out: &mut Vec<IncidentRow>) -> Result<(), StoreError> {
    let (ids, starts, ends, peaks) = (
        c.strings("incident_id")?,
        c.timestamps("start")?,
        c.timestamps("end")?,
        c.timestamps("peak_ts")?,
    );
    let (detectors, metrics, series) = (c.strings("detector")?, c.strings("metric")?, c.strings("series")?);
    let keys = series_keys(c)?;
    let (observed, expected, scores) = (c.floats("observed")?, c.floats("expected")?, c.floats("score")?);
    let (lower, upper) = (c.opt_floats("lower")?, c.opt_floats("upper")?);
    let (severities, buckets) = (c.strings("severity")?, c.opt_u32s("buckets")?);
    let templates = c.opt_strings("template")?;
    let examples = c.string_lists("examples")?;
    let roots = c.opt_strings("root")?;
    let members = members_of(c)?;
    for (i, (key, members)) in keys.into_iter().zip(members).enumerate() {
        let row_err = |column: &str, m: String| c.err(column, format!("row {i}: {m}"));
        let severity: Severity = parse_cell(&severities[i]).map_err(|m| row_err("severity", m))?;
        let detector: DetectorKind = parse_cell(&detectors[i]).map_err(|m| row_err("detector", m))?;
        let (Some(id), Some(start), Some(end)) = (ids[i].clone(), starts[i], ends[i]) else {
            return Err(row_err("incident_id/start/end", "null".into()));
        };
        let series = series[i].clone().unwrap_or_default();
        let expected = expected[i].unwrap_or(f64::NAN);
        let incident = Incident {
            incident_id: id,
            start,
            end,
            peak_ts: peaks[i].unwrap_or(start),
            detector,
            metric: metrics[i].clone().unwrap_or_default(),
            observed: observed[i].unwrap_or(f64::NAN),
            peak: Verdict {
                expected,
                lower: lower[i].unwrap_or(expected),
                upper: upper[i].unwrap_or(expected),
                score: scores[i].unwrap_or(f64::NAN),
                // Not stored: only detection ranks by it.
                anomaly: 0.0,
                severity: Some(severity),
                ready: true,
            },
            severity,
            buckets: buckets[i].unwrap_or(1),
            root: roots[i].clone().unwrap_or_else(|| series.clone()),
            members,
            series,
        };
        out.push(IncidentRow {
            incident,
            key,
            template: templates[i].clone(),
            examples: examples[i].clone(),
        });
    }
    Ok(())
}

fn parse_cell<T: std::str::FromStr<Err = String>>(cell: &Option<String>) -> Result<T, String> {
    cell.as_deref().ok_or_else(|| "null".to_owned())?.parse()
}

/// Per row, the series labels from the label columns.
fn series_keys(c: &Columns<'_>) -> Result<Vec<SeriesKey>, StoreError> {
    let (services, hosts, levels) = (
        c.opt_strings("service")?,
        c.opt_strings("host")?,
        c.opt_strings("level")?,
    );
    let templates = c.u64s("template_id")?;
    (0..c.batch.num_rows())
        .map(|i| {
            let level = levels[i].as_deref().map(str::parse::<Level>).transpose();
            Ok(SeriesKey {
                service: services[i].clone(),
                host: hosts[i].clone(),
                level: level.map_err(|m| c.err("level", format!("row {i}: {m}")))?,
                template: templates[i],
            })
        })
        .collect()
}

/// Per row, its members from the parallel member lists (empty where the files predate
/// correlation; spans and metrics of files that predate those columns are the incident's).
fn members_of(c: &Columns<'_>) -> Result<Vec<Vec<IncidentMember>>, StoreError> {
    let (ids, detectors, series, severities, metrics) = (
        c.string_lists("member_ids")?,
        c.string_lists("member_detectors")?,
        c.string_lists("member_series")?,
        c.string_lists("member_severities")?,
        c.string_lists("member_metrics")?,
    );
    let (starts, ends) = (
        c.timestamp_lists("member_starts")?,
        c.timestamp_lists("member_ends")?,
    );
    let (own_starts, own_ends, own_metrics) =
        (c.timestamps("start")?, c.timestamps("end")?, c.strings("metric")?);
    let mut out = Vec::with_capacity(c.batch.num_rows());
    for i in 0..c.batch.num_rows() {
        let mut members = Vec::with_capacity(ids[i].len());
        for (j, id) in ids[i].iter().enumerate() {
            let cell = |list: &Vec<Vec<String>>, column: &str| {
                list[i]
                    .get(j)
                    .cloned()
                    .ok_or_else(|| c.err(column, format!("row {i}: fewer items than member_ids")))
            };
            let detector = cell(&detectors, "member_detectors")?;
            let severity = cell(&severities, "member_severities")?;
            members.push(IncidentMember {
                incident_id: id.clone(),
                start: starts[i].get(j).copied().or(own_starts[i]).unwrap_or_default(),
                end: ends[i].get(j).copied().or(own_ends[i]).unwrap_or_default(),
                detector: detector
                    .parse()
                    .map_err(|m| c.err("member_detectors", format!("row {i}: {m}")))?,
                metric: metrics[i]
                    .get(j)
                    .cloned()
                    .or_else(|| own_metrics[i].clone())
                    .unwrap_or_default(),
                series: cell(&series, "member_series")?,
                severity: severity
                    .parse()
                    .map_err(|m| c.err("member_severities", format!("row {i}: {m}")))?,
            });
        }
        out.push(members);
    }
    Ok(out)
}

/// The points of one metric read back, and the bucket width they were computed with.
#[derive(Debug, Clone, Default)]
pub struct MetricPoints {
    /// Bucket width in seconds (60 when the dataset holds none).
    pub bucket_secs: i64,
    /// The points, each series' labels shared by its points.
    pub points: Vec<MetricPoint>,
}

/// Reads the points of `metric` of the `metrics/` dataset in `dir` (other metrics skipped), with
/// the zeros of dense series put back ([`fill_gaps`]): the points detect judged.
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
                    filled: false,
                });
            }
            Ok(())
        })?;
    }
    // `metrics/` keeps no zero a dense series had between two buckets with records.
    out.points = fill_gaps(std::mem::take(&mut out.points), out.bucket_secs);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::write_incidents;

    fn member(id: &str, detector: DetectorKind, metric: &str, series: &str, minute: i64) -> IncidentMember {
        IncidentMember {
            incident_id: id.into(),
            start: Timestamp::from_secs(minute * 60),
            end: Timestamp::from_secs(minute * 60 + 180),
            detector,
            metric: metric.into(),
            series: series.into(),
            severity: Severity::Warning,
        }
    }

    /// `metrics/` leaves out the zeros of count series between buckets with records; reading a
    /// metric back gives every point detect judged, those zeros included.
    #[test]
    fn metric_points_read_back_with_their_gaps() {
        use loglens_core::metrics::{MetricSeries, Observation};
        use loglens_core::partial::MetricPartial;
        let mut partial = MetricPartial::new(60);
        for i in 0..30 {
            partial.add(
                &Observation {
                    ts: Timestamp::from_secs(1_790_000_000 + i * 11 * 60),
                    service: Some(if i % 4 == 0 { "db" } else { "api" }),
                    host: Some("web-01"),
                    level: Some(Level::Info),
                    status: Some(if i % 3 == 0 { 500 } else { 200 }),
                    latency_ms: Some(5.0),
                    bytes: Some(100),
                    template: None,
                },
                None,
            );
        }
        let mut series = MetricSeries::new(60);
        series.absorb(&partial);
        let points = series.finish();
        let dir = tempfile::tempdir().unwrap();
        let written = crate::write_metrics(dir.path(), "run", 60, &points).unwrap();
        assert_eq!(written, points.iter().filter(|p| !p.filled).count() as u64);
        assert!(
            written * 3 < points.len() as u64,
            "{written} of {} points stored",
            points.len()
        );
        for metric in [Metric::Volume, Metric::Errors, Metric::LatencyP50] {
            let read = read_metric_points(dir.path(), metric).unwrap();
            let judged: Vec<&MetricPoint> = points.iter().filter(|p| p.metric == metric).collect();
            assert_eq!(read.points.iter().collect::<Vec<_>>(), judged, "{metric:?}");
        }
    }

    /// What `detect` writes, `alert run` reads: the same incidents, field for field.
    #[test]
    fn incidents_read_back_as_written() {
        let key = SeriesKey {
            service: Some("api".into()),
            host: Some("web-01".into()),
            level: Some(Level::Error),
            template: Some(0x2a),
        };
        let series = key.canonical();
        let correlated = Incident {
            incident_id: "00000000000000aa".into(),
            start: Timestamp::from_secs(600),
            end: Timestamp::from_secs(900),
            peak_ts: Timestamp::from_secs(660),
            detector: DetectorKind::Poisson,
            metric: "errors".into(),
            series: series.clone(),
            observed: 42.0,
            peak: Verdict {
                expected: 3.0,
                lower: 0.0,
                upper: 9.5,
                score: 12.25,
                anomaly: 0.0,
                severity: Some(Severity::Critical),
                ready: true,
            },
            severity: Severity::Critical,
            buckets: 5,
            root: "service=api".into(),
            members: vec![
                member("00000000000000aa", DetectorKind::Poisson, "errors", &series, 10),
                member(
                    "00000000000000bb",
                    DetectorKind::ZScore,
                    "error_rate",
                    "service=api",
                    11,
                ),
            ],
        };
        let lone = Incident {
            incident_id: "00000000000000cc".into(),
            detector: DetectorKind::Silence,
            metric: "volume".into(),
            series: "total".into(),
            root: "total".into(),
            members: Vec::new(),
            ..correlated.clone()
        };
        let rows = vec![
            IncidentRow {
                incident: correlated,
                key,
                template: Some("upstream timed out after <*> ms".into()),
                examples: vec!["upstream timed out after 3000 ms".into(), "second".into()],
            },
            IncidentRow {
                incident: lone,
                key: SeriesKey::default(),
                template: None,
                examples: Vec::new(),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        write_incidents(dir.path(), "run1", &rows).unwrap();
        let read = read_incidents(dir.path()).unwrap();
        assert_eq!(read, rows);
        assert_eq!(read[0].incident.related(), ["zscore on service=api (warning)"]);
    }
}
