//! `loglens detect`: reads the records back (only the columns it needs), builds the metric
//! series, replays them bucket by bucket through core's detection policy
//! ([`loglens_core::detect::policy`]: which series, which detectors, floors, votes, incidents),
//! explains each incident with its most frequent template and example lines, and rewrites the
//! `metrics/`, `anomalies/` and `incidents/` datasets, and the `rollups/` the dashboard sums.
//!
//! Deterministic: files are read in path order and every map is ordered, so the same records
//! give the same datasets whatever the thread count of the runs that wrote them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::{
    Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt16Array, UInt64Array,
};
use loglens_core::detect::policy::{self, TemplateSighting};
use loglens_core::detect::{Anomaly, DetectConfig, DetectorKind, Incident};
use loglens_core::metrics::{Metric, MetricPoint, MetricSeries, Observation, SeriesKey};
use loglens_core::partial::MetricPartial;
use loglens_core::template::TemplateId;
use loglens_core::{Level, Timestamp};
use loglens_store::{
    canonical_templates, column, parquet_files, read_columns, read_templates, template_aliases,
    write_anomalies, write_incidents, write_metrics, write_rollup_day, AnomalyRow, DataDir, Dataset,
    DatasetRebuild, IncidentRow, StoreError, TemplateRow,
};
use serde::Serialize;

use crate::progress::{Progress, Stage};
use crate::EngineError;

/// Examples kept per incident.
const EXAMPLES: usize = 5;

/// What a detect run read and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectSummary {
    /// Records read.
    pub records: u64,
    /// Bucket width, seconds.
    pub bucket_secs: i64,
    /// Metric rows written.
    pub metric_points: u64,
    /// Series the detectors watched.
    pub series_watched: u64,
    /// Anomalous buckets.
    pub anomalies: u64,
    /// Incidents, most severe and earliest first.
    pub incidents: Vec<IncidentSummary>,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
}

/// One incident as printed.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentSummary {
    /// Stable id.
    pub incident_id: String,
    /// First anomalous bucket, RFC 3339.
    pub start: String,
    /// End (exclusive), RFC 3339.
    pub end: String,
    /// `info`, `warning`, `critical`.
    pub severity: String,
    /// Detector name.
    pub detector: String,
    /// Metric name.
    pub metric: String,
    /// Series key.
    pub series: String,
    /// Observed value at the peak.
    pub observed: f64,
    /// Expected value at the peak.
    pub expected: f64,
    /// The explaining template.
    pub template: Option<String>,
}

/// Runs detection over the data directory at `data_dir`.
/// `progress`, when given, is told how many records files have been read.
pub fn detect(
    data_dir: &Path,
    config: &DetectConfig,
    run_id: &str,
    progress: Option<&dyn Progress>,
) -> Result<DetectSummary, EngineError> {
    let started = Instant::now();
    config
        .validate()
        .map_err(|e| EngineError::Config(format!("[detect] {e}")))?;
    let bucket_secs = config
        .bucket_secs()
        .map_err(|e| EngineError::Config(format!("[detect] {e}")))?;
    let data = DataDir::create(data_dir)?;
    // Held for the whole rebuild; taking it completes or removes what killed runs left.
    let _lock = data.lock()?;
    let record_files = parquet_files(&data.dataset(Dataset::Records))?;
    // One bucketing: a partial per run, drained day by day into the metric series (kept for
    // the detectors) and the rollups (written out).
    let mut partial = MetricPartial::new(bucket_secs);
    let mut series = MetricSeries::new(bucket_secs);
    let rollups_dir = DatasetRebuild::start(&data.dataset(Dataset::Rollups), run_id)?;
    let mut rollups = RollupWriter::new(rollups_dir.dir(), run_id);
    // Records keep the template id they were written with; count them under the template it
    // belongs to now.
    let stored_templates = read_templates(&data.dataset(Dataset::Templates))?;
    let aliases = template_aliases(&stored_templates);
    let mut records = 0u64;
    let mut levels = TemplateLevels::new();
    let sizes: Vec<u64> = record_files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .collect();
    if let Some(progress) = progress {
        progress.begin(Stage::Detect, Some(sizes.iter().sum()));
    }
    let mut read_bytes = 0;
    for (file, size) in record_files.iter().zip(&sizes) {
        let mut first_day = i64::MAX;
        read_columns(file, &OBSERVED_COLUMNS, |batch| {
            records += observe_batch(file, batch, &aliases, &mut partial, &mut levels, &mut first_day)?;
            Ok(())
        })?;
        // Records files come in partition (date) order, so once a file starts at a day the
        // days before it are complete; were one not, its late records would leave with a later
        // call, and readers of both outputs sum.
        let completed = partial.take_completed(Timestamp(first_day.saturating_mul(US_PER_DAY)));
        series.absorb(&completed);
        rollups.write(&completed)?;
        read_bytes += size;
        if let Some(progress) = progress {
            progress.update(records, read_bytes);
        }
    }
    if let Some(progress) = progress {
        progress.end();
    }
    let completed = partial.take_completed(Timestamp(i64::MAX));
    series.absorb(&completed);
    rollups.write(&completed)?;
    let points = series.finish();
    let templates = canonical_templates(&stored_templates);
    let sightings = template_sightings(&points, &levels, &templates);
    let found = policy::replay(config, &points, &sightings)
        .map_err(|e| EngineError::Config(format!("[detect] {e}")))?;
    let incidents = &found.incidents;
    let rows = explain(incidents, &templates, &aliases, &record_files)?;
    let written = write_all(
        &data,
        run_id,
        bucket_secs,
        &points,
        &found.anomalies,
        incidents,
        &rows,
    )?;
    rollups_dir.commit()?;
    let mut summaries: Vec<IncidentSummary> = rows.iter().map(summarize).collect();
    summaries.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then(a.start.cmp(&b.start))
    });
    Ok(DetectSummary {
        records,
        bucket_secs,
        metric_points: written,
        series_watched: found.series_watched,
        anomalies: found.anomalies.len() as u64,
        incidents: summaries,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

const OBSERVED_COLUMNS: [&str; 9] = [
    "ts",
    "source",
    "service",
    "host",
    "level",
    "status",
    "latency_ms",
    "bytes",
    "template_id",
];

fn text(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

const US_PER_DAY: i64 = 86_400_000_000;

/// Writes the rollups of completed days, a file per day and call.
struct RollupWriter<'a> {
    dir: &'a Path,
    run_id: &'a str,
    files: u32,
}

impl<'a> RollupWriter<'a> {
    fn new(dir: &'a Path, run_id: &'a str) -> Self {
        RollupWriter {
            dir,
            run_id,
            files: 0,
        }
    }

    /// Writes the rollup rows of `completed`, one file per day it holds.
    fn write(&mut self, completed: &MetricPartial) -> Result<(), StoreError> {
        for rows in completed.rollups() {
            self.files += 1;
            let name = format!("part-{}-{:05}.parquet", self.run_id, self.files);
            write_rollup_day(self.dir, &name, &rows)?;
        }
        Ok(())
    }
}

fn observe_batch(
    file: &Path,
    batch: &RecordBatch,
    aliases: &HashMap<u64, u64>,
    partial: &mut MetricPartial,
    levels: &mut TemplateLevels,
    first_day: &mut i64,
) -> Result<u64, StoreError> {
    let ts = column::<TimestampMicrosecondArray>(file, batch, "ts")?;
    let source = column::<StringArray>(file, batch, "source")?;
    let service = column::<StringArray>(file, batch, "service")?;
    let host = column::<StringArray>(file, batch, "host")?;
    let level = column::<StringArray>(file, batch, "level")?;
    let status = column::<UInt16Array>(file, batch, "status")?;
    let latency = column::<Float64Array>(file, batch, "latency_ms")?;
    let bytes = column::<UInt64Array>(file, batch, "bytes")?;
    let template = column::<UInt64Array>(file, batch, "template_id")?;
    for i in 0..batch.num_rows() {
        let observation = Observation {
            ts: Timestamp(ts.value(i)),
            service: text(service, i),
            host: text(host, i),
            level: text(level, i).and_then(|l| l.parse::<Level>().ok()),
            status: (!status.is_null(i)).then(|| status.value(i)),
            latency_ms: (!latency.is_null(i)).then(|| latency.value(i)),
            bytes: (!bytes.is_null(i)).then(|| bytes.value(i)),
            template: (!template.is_null(i)).then(|| canonical(aliases, template.value(i))),
        };
        *first_day = (*first_day).min(observation.ts.secs().div_euclid(86_400));
        partial.add(&observation, text(source, i));
        if let (Some(t), Some(level)) = (observation.template, observation.level) {
            let worst = levels
                .entry((t, partial.bucket_of(observation.ts)))
                .or_insert(level);
            *worst = (*worst).max(level);
        }
    }
    Ok(batch.num_rows() as u64)
}

/// Each template's occurrences per bucket, with the worst level among them and its service
/// (from the templates dataset), in time order: what the new-template detector is fed.
fn template_sightings(
    points: &[MetricPoint],
    levels: &TemplateLevels,
    templates: &[TemplateRow],
) -> Vec<(Timestamp, TemplateSighting)> {
    let by_id: HashMap<u64, &TemplateRow> = templates.iter().map(|t| (t.id, t)).collect();
    let mut out: Vec<(Timestamp, TemplateSighting)> = points
        .iter()
        .filter(|p| p.metric == Metric::TemplateCount)
        .filter_map(|p| {
            let id = p.key.template?;
            let sighting = TemplateSighting {
                template: TemplateId(id),
                count: p.value as u64,
                level: levels.get(&(id, p.ts.secs())).copied(),
                service: by_id.get(&id).and_then(|t| t.service.clone()),
            };
            Some((p.ts, sighting))
        })
        .collect();
    out.sort_by_key(|(ts, s)| (*ts, s.template));
    out
}

/// The worst level of each template in each bucket: (template id, bucket start in seconds).
type TemplateLevels = BTreeMap<(u64, i64), Level>;

/// The template an id written on records belongs to now (itself when `templates/` does not
/// know it).
fn canonical(aliases: &HashMap<u64, u64>, id: u64) -> u64 {
    aliases.get(&id).copied().unwrap_or(id)
}

/// The labels of a canonical series key (the inverse of [`SeriesKey::canonical`]).
fn parse_key(series: &str) -> SeriesKey {
    let mut key = SeriesKey::default();
    for part in series.split(',') {
        match part.split_once('=') {
            Some(("service", v)) => key.service = Some(v.to_owned()),
            Some(("host", v)) => key.host = Some(v.to_owned()),
            Some(("level", v)) => key.level = v.parse().ok(),
            Some(("template", v)) => key.template = u64::from_str_radix(v, 16).ok(),
            _ => {}
        }
    }
    key
}

/// What explains one incident, gathered from its window's records.
#[derive(Default)]
struct Evidence {
    templates: BTreeMap<u64, u64>,
    examples: Vec<String>,
}

const EVIDENCE_COLUMNS: [&str; 7] = [
    "ts",
    "service",
    "host",
    "level",
    "status",
    "template_id",
    "message",
];

/// Labels each incident with the most frequent template of its window (error records only
/// for error metrics) and up to five example messages; new-template incidents name theirs.
fn explain(
    incidents: &[Incident],
    templates: &[TemplateRow],
    aliases: &HashMap<u64, u64>,
    record_files: &[PathBuf],
) -> Result<Vec<IncidentRow>, EngineError> {
    let by_id: HashMap<u64, &TemplateRow> = templates.iter().map(|t| (t.id, t)).collect();
    let keys: Vec<SeriesKey> = incidents.iter().map(|i| parse_key(&i.series)).collect();
    let mut evidence: Vec<Evidence> = incidents.iter().map(|_| Evidence::default()).collect();
    let scanned: Vec<usize> = (0..incidents.len())
        .filter(|&i| incidents[i].detector != DetectorKind::NewTemplate)
        .collect();
    let by_hour = HourIndex::new(incidents, &scanned);
    for file in record_files.iter().filter(|f| by_hour.may_hold(f)) {
        read_columns(file, &EVIDENCE_COLUMNS, |batch| {
            gather(file, batch, incidents, &keys, &by_hour, &mut evidence)
        })?;
    }
    for ev in &mut evidence {
        let mut by_template = BTreeMap::new();
        for (id, n) in std::mem::take(&mut ev.templates) {
            *by_template.entry(canonical(aliases, id)).or_default() += n;
        }
        ev.templates = by_template;
    }
    Ok(incidents
        .iter()
        .zip(keys)
        .zip(evidence)
        .map(|((incident, key), ev)| {
            let (template, examples) = if incident.detector == DetectorKind::NewTemplate {
                let t = key.template.and_then(|id| by_id.get(&id));
                (
                    t.map(|t| t.template.clone()),
                    t.map(|t| vec![t.example.clone()]).unwrap_or_default(),
                )
            } else {
                let top = ev.templates.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
                (
                    top.and_then(|(id, _)| by_id.get(id)).map(|t| t.template.clone()),
                    ev.examples,
                )
            };
            IncidentRow {
                incident: incident.clone(),
                key,
                template,
                examples,
            }
        })
        .collect())
}

const HOUR_US: i64 = 3_600_000_000;

/// The incidents whose window touches each hour, so a record is checked against a handful of
/// incidents, not all of them.
struct HourIndex {
    hours: HashMap<i64, Vec<usize>>,
}

impl HourIndex {
    fn new(incidents: &[Incident], scanned: &[usize]) -> Self {
        let mut hours: HashMap<i64, Vec<usize>> = HashMap::new();
        for &i in scanned {
            let (start, end) = (incidents[i].start.0, incidents[i].end.0);
            let mut hour = start.div_euclid(HOUR_US);
            while hour * HOUR_US < end {
                hours.entry(hour).or_default().push(i);
                hour += 1;
            }
        }
        HourIndex { hours }
    }

    fn at(&self, ts: i64) -> &[usize] {
        self.hours.get(&ts.div_euclid(HOUR_US)).map_or(&[], Vec::as_slice)
    }

    /// Whether a `records/date=…/hour=…/` file can hold records of an indexed incident.
    fn may_hold(&self, file: &Path) -> bool {
        match partition_start(file) {
            Some(start) => self.hours.contains_key(&start.div_euclid(HOUR_US)),
            None => !self.hours.is_empty(),
        }
    }
}

/// The start (µs) of the hour partition a records file sits in.
fn partition_start(file: &Path) -> Option<i64> {
    let hour_dir = file.parent()?;
    let hour: i64 = hour_dir
        .file_name()?
        .to_str()?
        .strip_prefix("hour=")?
        .parse()
        .ok()?;
    let date = hour_dir.parent()?.file_name()?.to_str()?.strip_prefix("date=")?;
    let ts = Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z"), 0).ok()?;
    Some(ts.0 + hour * 3_600_000_000)
}

fn gather(
    file: &Path,
    batch: &RecordBatch,
    incidents: &[Incident],
    keys: &[SeriesKey],
    by_hour: &HourIndex,
    evidence: &mut [Evidence],
) -> Result<(), StoreError> {
    let ts = column::<TimestampMicrosecondArray>(file, batch, "ts")?;
    let service = column::<StringArray>(file, batch, "service")?;
    let host = column::<StringArray>(file, batch, "host")?;
    let level = column::<StringArray>(file, batch, "level")?;
    let status = column::<UInt16Array>(file, batch, "status")?;
    let template = column::<UInt64Array>(file, batch, "template_id")?;
    let message = column::<StringArray>(file, batch, "message")?;
    for row in 0..batch.num_rows() {
        let t = ts.value(row);
        for &i in by_hour.at(t) {
            let incident = &incidents[i];
            if t < incident.start.0 || t >= incident.end.0 {
                continue;
            }
            let key = &keys[i];
            let labels_match = key
                .service
                .as_deref()
                .is_none_or(|s| text(service, row) == Some(s))
                && key.host.as_deref().is_none_or(|h| text(host, row) == Some(h));
            if !labels_match {
                continue;
            }
            let error_metric =
                incident.metric == Metric::ErrorRate.as_str() || incident.metric == Metric::Errors.as_str();
            let observation = Observation {
                level: text(level, row).and_then(|l| l.parse().ok()),
                status: (!status.is_null(row)).then(|| status.value(row)),
                ..Observation::default()
            };
            if error_metric && !observation.is_error() {
                continue;
            }
            let ev = &mut evidence[i];
            if !template.is_null(row) {
                *ev.templates.entry(template.value(row)).or_default() += 1;
            }
            if ev.examples.len() < EXAMPLES {
                ev.examples.push(message.value(row).to_owned());
            }
        }
    }
    Ok(())
}

fn write_all(
    data: &DataDir,
    run_id: &str,
    bucket_secs: i64,
    points: &[MetricPoint],
    anomalies: &[Anomaly],
    incidents: &[Incident],
    rows: &[IncidentRow],
) -> Result<u64, EngineError> {
    let metrics = DatasetRebuild::start(&data.dataset(Dataset::Metrics), run_id)?;
    let written = write_metrics(
        metrics.dir(),
        run_id,
        i32::try_from(bucket_secs).unwrap_or(i32::MAX),
        points,
    )?;
    let anomaly_rows = anomaly_rows(anomalies, incidents);
    let anomalies_dir = DatasetRebuild::start(&data.dataset(Dataset::Anomalies), run_id)?;
    write_anomalies(anomalies_dir.dir(), run_id, &anomaly_rows)?;
    let incidents_dir = DatasetRebuild::start(&data.dataset(Dataset::Incidents), run_id)?;
    write_incidents(incidents_dir.dir(), run_id, rows)?;
    metrics.commit()?;
    anomalies_dir.commit()?;
    incidents_dir.commit()?;
    Ok(written)
}

/// Each anomaly with its labels and the id of the incident it was merged into.
fn anomaly_rows(anomalies: &[Anomaly], incidents: &[Incident]) -> Vec<AnomalyRow> {
    let mut by_series: HashMap<(DetectorKind, &str, &str), Vec<&Incident>> = HashMap::new();
    for i in incidents {
        by_series
            .entry((i.detector, &i.metric, &i.series))
            .or_default()
            .push(i);
    }
    let mut rows: Vec<AnomalyRow> = anomalies
        .iter()
        .filter_map(|a| {
            let incident = by_series
                .get(&(a.detector, a.metric.as_str(), a.series.as_str()))?
                .iter()
                .find(|i| i.start <= a.ts && a.ts < i.end)?;
            Some(AnomalyRow {
                anomaly: a.clone(),
                key: parse_key(&a.series),
                incident_id: incident.incident_id.clone(),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (
            a.anomaly.ts,
            &a.anomaly.metric,
            &a.anomaly.series,
            a.anomaly.detector,
        )
            .cmp(&(
                b.anomaly.ts,
                &b.anomaly.metric,
                &b.anomaly.series,
                b.anomaly.detector,
            ))
    });
    rows
}

fn summarize(row: &IncidentRow) -> IncidentSummary {
    let i = &row.incident;
    IncidentSummary {
        incident_id: i.incident_id.clone(),
        start: i.start.to_rfc3339(),
        end: i.end.to_rfc3339(),
        severity: i.severity.as_str().to_owned(),
        detector: i.detector.as_str().to_owned(),
        metric: i.metric.clone(),
        series: i.series.clone(),
        observed: i.observed,
        expected: i.peak.expected,
        template: row.template.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_round_trip() {
        for series in [
            "total",
            "service=api",
            "service=api,host=web-01",
            "service=db,level=error",
        ] {
            assert_eq!(parse_key(series).canonical(), series);
        }
        let key = SeriesKey {
            service: Some("api".into()),
            template: Some(0xabc),
            ..SeriesKey::default()
        };
        assert_eq!(parse_key(&key.canonical()), key);
    }

    #[test]
    fn partition_start_from_path() {
        let path = Path::new("/d/records/date=2026-11-20/hour=05/part-x.parquet");
        let want = Timestamp::parse_rfc3339("2026-11-20T05:00:00Z", 0)
            .map(|t| t.0)
            .ok();
        assert_eq!(partition_start(path), want);
        assert_eq!(partition_start(Path::new("/d/unparsed/part.parquet")), None);
    }
}
