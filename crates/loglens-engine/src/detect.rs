//! `loglens detect`: reads the records back (only the columns it needs), builds the metric
//! series, runs the configured detectors over each, merges anomalous buckets into incidents,
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
use loglens_core::detect::{
    merge_incidents, Anomaly, DetectConfig, Detector, DetectorKind, Incident, NewTemplate, PoissonScan,
    RobustZScore, Seasonal, Silence, Verdict, ZScore,
};
use loglens_core::metrics::{Metric, MetricPoint, MetricSeries, Observation, SeriesKey};
use loglens_core::partial::MetricPartial;
use loglens_core::template::TemplateId;
use loglens_core::{Level, Timestamp};
use loglens_store::{
    column, parquet_files, read_columns, read_templates, write_anomalies, write_incidents, write_metrics,
    write_rollup_day, AnomalyRow, DataDir, Dataset, DatasetRebuild, IncidentRow, StoreError, TemplateRow,
};
use serde::Serialize;

use crate::EngineError;

/// Metrics the detectors watch. Counts of single templates and the (service, level) rollups
/// are written for the dashboard but not watched: new templates have their own detector and
/// level splits repeat what error rate says. Latency is watched by its geometric mean: a
/// minute's p95 over a few dozen requests is its one or two slowest, so it jumps whenever one
/// request hangs, and the median of a mix of fast static and slow dynamic requests flips
/// between the two; the mean of log latencies moves by the factor a whole service slows by.
const WATCHED: [Metric; 3] = [Metric::Volume, Metric::ErrorRate, Metric::LatencyGmean];

/// Buckets between anomalies of one series that still make one incident: a change that
/// flickers for a few minutes is one incident, not several.
const MERGE_GAP_BUCKETS: u32 = 5;

/// Anomalous buckets an incident of a value or count detector needs: a single odd minute is
/// chance more often than not (one slow request is a minute's latency, one burst of retries a
/// minute's volume), while the failures worth waking someone for last.
const MIN_INCIDENT_BUCKETS: u32 = 2;

/// Fewest records a latency incident's span must hold: a latency shift is evidence in
/// proportion to the requests that show it. A few minutes of a dozen requests each follow the
/// request mix (page views without the usual static files are 3–10× slower than the hour),
/// while a hundred requests all slower by 3× are no chance, however quiet the service.
const MIN_LATENCY_RECORDS: f64 = 100.0;

/// Whether an incident lasted long enough to report, given the records per bucket of each
/// series (by canonical key). A new template is one event by nature.
fn lasting(incident: &Incident, volumes: &HashMap<String, HashMap<i64, f64>>) -> bool {
    if incident.detector == DetectorKind::NewTemplate {
        return true;
    }
    if incident.buckets < MIN_INCIDENT_BUCKETS {
        return false;
    }
    if !incident.metric.starts_with("latency") {
        return true;
    }
    let records: f64 = volumes.get(&incident.series).map_or(0.0, |v| {
        v.iter()
            .filter(|(&ts, _)| (incident.start.0..incident.end.0).contains(&ts))
            .map(|(_, n)| n)
            .sum()
    });
    records >= MIN_LATENCY_RECORDS
}

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
pub fn detect(data_dir: &Path, config: &DetectConfig, run_id: &str) -> Result<DetectSummary, EngineError> {
    let started = Instant::now();
    config
        .validate()
        .map_err(|e| EngineError::Config(format!("[detect] {e}")))?;
    let bucket_secs = config
        .bucket_secs()
        .map_err(|e| EngineError::Config(format!("[detect] {e}")))?;
    let data = DataDir::create(data_dir)?;
    let record_files = parquet_files(&data.dataset(Dataset::Records))?;
    // One bucketing: a partial per run, drained day by day into the metric series (kept for
    // the detectors) and the rollups (written out).
    let mut partial = MetricPartial::new(bucket_secs);
    let mut series = MetricSeries::new(bucket_secs);
    let rollups_dir = DatasetRebuild::start(&data.dataset(Dataset::Rollups), run_id)?;
    let mut rollups = RollupWriter::new(rollups_dir.dir(), run_id);
    let mut records = 0u64;
    for file in &record_files {
        let mut first_day = i64::MAX;
        read_columns(file, &OBSERVED_COLUMNS, |batch| {
            records += observe_batch(file, batch, &mut partial, &mut first_day)?;
            Ok(())
        })?;
        // Records files come in partition (date) order, so once a file starts at a day the
        // days before it are complete; were one not, its late records would leave with a later
        // call, and readers of both outputs sum.
        let completed = partial.take_completed(Timestamp(first_day.saturating_mul(US_PER_DAY)));
        series.absorb(&completed);
        rollups.write(&completed)?;
    }
    let completed = partial.take_completed(Timestamp(i64::MAX));
    series.absorb(&completed);
    rollups.write(&completed)?;
    let span = series.span();
    let points = series.finish();
    let templates = read_templates(&data.dataset(Dataset::Templates))?;
    let mut found = Found::default();
    if let Some((first, last)) = span {
        found.series_watched = watch_series(&points, config, bucket_secs, last, &mut found.anomalies);
        new_templates(
            &points,
            &templates,
            config,
            Timestamp::from_secs(first),
            &mut found.anomalies,
        );
    }
    let volumes = volumes_by_series(&points);
    let incidents: Vec<Incident> = merge_incidents(&found.anomalies, bucket_secs, MERGE_GAP_BUCKETS)
        .into_iter()
        .filter(|incident| lasting(incident, &volumes))
        .collect();
    let rows = explain(&incidents, &templates, &record_files)?;
    let written = write_all(
        &data,
        run_id,
        bucket_secs,
        &points,
        &found.anomalies,
        &incidents,
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

#[derive(Default)]
struct Found {
    anomalies: Vec<Anomaly>,
    series_watched: u64,
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
    partial: &mut MetricPartial,
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
            template: (!template.is_null(i)).then(|| template.value(i)),
        };
        *first_day = (*first_day).min(observation.ts.secs().div_euclid(86_400));
        partial.add(&observation, text(source, i));
    }
    Ok(batch.num_rows() as u64)
}

/// The value detectors enabled for `metric`, fresh.
fn value_detectors(config: &DetectConfig, metric: Metric) -> Vec<Box<dyn Detector>> {
    let c = config.for_metric(metric.as_str());
    let mut out: Vec<Box<dyn Detector>> = Vec::new();
    if c.zscore.enabled {
        out.push(Box::new(ZScore::new(&c.zscore)));
    }
    if c.robust_zscore.enabled {
        out.push(Box::new(RobustZScore::new(&c.robust_zscore)));
    }
    if c.seasonal.enabled {
        out.push(Box::new(Seasonal::new(&c.seasonal)));
    }
    out
}

/// Fewest records in a bucket for the value detectors to judge its error rate or latency:
/// with fewer, one failed request is a 50% error rate and a single slow one the p95. (Over a
/// whole incident, latency needs [`MIN_LATENCY_RECORDS`].)
const MIN_BUCKET_VOLUME: f64 = 10.0;

/// Fewest records per bucket on average for a series' volume to be judged: sparser series are
/// mostly empty buckets, where any record at all looks like a spike.
const MIN_MEAN_VOLUME: f64 = 1.0;

/// Smallest rise of an error rate (absolute) and fewest errors in a bucket that matter.
const MIN_ERROR_RATE_RISE: f64 = 0.05;
const MIN_ERRORS: f64 = 3.0;
/// Latency must rise by this factor over the expected value to matter.
const MIN_LATENCY_FACTOR: f64 = 3.0;
/// Volume must fall below this share of the expected value, or rise above this multiple of it.
const MAX_VOLUME_DROP_SHARE: f64 = 0.5;
const MIN_VOLUME_SPIKE_FACTOR: f64 = 2.0;

/// Whether a statistically unusual value is also large enough for a person to care: on quiet,
/// steady series a Z-score flags differences nobody would act on (one extra error, 3 ms).
fn material(metric: Metric, observed: f64, expected: f64, bucket_volume: f64) -> bool {
    match metric {
        Metric::ErrorRate => {
            observed - expected >= MIN_ERROR_RATE_RISE && observed * bucket_volume >= MIN_ERRORS
        }
        Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 | Metric::LatencyGmean => {
            observed >= expected * MIN_LATENCY_FACTOR
        }
        Metric::Volume => {
            observed <= expected * MAX_VOLUME_DROP_SHARE || observed >= expected * MIN_VOLUME_SPIKE_FACTOR
        }
        _ => true,
    }
}

/// One watched series: its points, and the volume and errors of the same labels per bucket.
struct Series<'p> {
    metric: Metric,
    key: &'p SeriesKey,
    points: &'p [MetricPoint],
    volume: Option<&'p HashMap<i64, f64>>,
    errors: Option<&'p HashMap<i64, f64>>,
}

impl Series<'_> {
    fn anomaly(&self, ts: Timestamp, observed: f64, detector: DetectorKind, verdict: Verdict) -> Anomaly {
        Anomaly {
            ts,
            detector,
            metric: self.metric.as_str().to_owned(),
            series: self.key.canonical(),
            observed,
            verdict,
        }
    }

    fn volume_at(&self, ts: Timestamp) -> f64 {
        self.volume.and_then(|v| v.get(&ts.0)).copied().unwrap_or(0.0)
    }
}

/// Records per bucket of every series, by canonical key: bucket start (µs) to records.
fn volumes_by_series(points: &[MetricPoint]) -> HashMap<String, HashMap<i64, f64>> {
    let mut out: HashMap<String, HashMap<i64, f64>> = HashMap::new();
    for series in points.chunk_by(|a, b| a.metric == b.metric && a.key == b.key) {
        if series[0].metric == Metric::Volume {
            out.insert(
                series[0].key.canonical(),
                series.iter().map(|p| (p.ts.0, p.value)).collect(),
            );
        }
    }
    out
}

/// Each series of `metric`, by key: bucket start (µs) to value.
fn by_key(all: &[&[MetricPoint]], metric: Metric) -> HashMap<SeriesKey, HashMap<i64, f64>> {
    all.iter()
        .filter(|s| s[0].metric == metric)
        .map(|s| (s[0].key.clone(), s.iter().map(|p| (p.ts.0, p.value)).collect()))
        .collect()
}

/// Runs the detectors over every watched series; returns how many series were watched.
///
/// Counts (volume, and errors among records for the error rate) go to the Poisson scan, the
/// test made for them. Latencies go to the value detectors, and a bucket is anomalous when at
/// least two of them agree: each alone fires on the quirks of its model (a Z-score on a weekend
/// dip, a median on a flat series). Silence watches host volumes apart.
fn watch_series(
    points: &[MetricPoint],
    config: &DetectConfig,
    bucket_secs: i64,
    last_bucket: i64,
    anomalies: &mut Vec<Anomaly>,
) -> u64 {
    let all: Vec<&[MetricPoint]> = points
        .chunk_by(|a, b| a.metric == b.metric && a.key == b.key)
        .collect();
    let volumes = by_key(&all, Metric::Volume);
    let errors = by_key(&all, Metric::Errors);
    let mut watched = 0;
    for points in &all {
        let key = &points[0].key;
        let series = Series {
            metric: points[0].metric,
            key,
            points,
            volume: volumes.get(key),
            errors: errors.get(key),
        };
        if !WATCHED.contains(&series.metric) || key.level.is_some() || key.template.is_some() {
            continue;
        }
        let c = config.for_metric(series.metric.as_str());
        let counted = c.poisson.enabled && matches!(series.metric, Metric::Volume | Metric::ErrorRate);
        let judged = judged_points(&series, bucket_secs, last_bucket, counted);
        if judged.is_empty() {
            continue;
        }
        watched += 1;
        if counted {
            poisson(&series, &judged, &c, anomalies);
        } else {
            ensemble(&series, &judged, &c, anomalies);
        }
        // With the Poisson scan on, a host falling silent is a volume drop it judges by how
        // surprising the gap is; a fixed run of empty buckets would fire on quiet hosts.
        let silence = c.silence.enabled && !counted;
        if silence && series.metric == Metric::Volume && key.host.is_some() {
            let mut detector = Silence::new(&c.silence, bucket_secs);
            for &(ts, value) in &judged {
                let verdict = detector.observe(ts, value);
                if verdict.severity.is_some() {
                    anomalies.push(series.anomaly(ts, value, DetectorKind::Silence, verdict));
                }
            }
        }
    }
    watched
}

/// The Poisson scan over a volume (records per bucket) or an error rate (errors among the
/// bucket's records); the anomaly's observed value is the deciding window's rate.
fn poisson(series: &Series<'_>, judged: &[(Timestamp, f64)], config: &DetectConfig, out: &mut Vec<Anomaly>) {
    let mut detector = PoissonScan::new(&config.poisson);
    for &(ts, value) in judged {
        let scan = if series.metric == Metric::ErrorRate {
            let errors = series.errors.and_then(|e| e.get(&ts.0)).copied().unwrap_or(0.0);
            detector.observe_count(ts, errors, series.volume_at(ts))
        } else {
            detector.observe_count(ts, value, 1.0)
        };
        let verdict = scan.verdict;
        let material = series.metric != Metric::ErrorRate
            || (scan.count >= MIN_ERRORS && scan.observed() - verdict.expected >= MIN_ERROR_RATE_RISE);
        if verdict.severity.is_some() && material {
            out.push(series.anomaly(ts, scan.observed(), DetectorKind::Poisson, verdict));
        }
    }
}

/// The value detectors in consensus: at least two must fire, the strongest verdict is kept,
/// and the change must be [`material`].
fn ensemble(series: &Series<'_>, judged: &[(Timestamp, f64)], config: &DetectConfig, out: &mut Vec<Anomaly>) {
    let mut detectors = value_detectors(config, series.metric);
    let quorum = detectors.len().min(2);
    for &(ts, value) in judged {
        let firing: Vec<(DetectorKind, Verdict)> = detectors
            .iter_mut()
            .map(|d| (d.kind(), d.observe(ts, value)))
            .filter(|(_, v)| v.severity.is_some())
            .collect();
        if quorum == 0 || firing.len() < quorum {
            continue;
        }
        let strongest = firing
            .iter()
            .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
            .filter(|(_, v)| material(series.metric, value, v.expected, series.volume_at(ts)));
        if let Some(&(kind, verdict)) = strongest {
            let kind = if quorum > 1 { DetectorKind::Ensemble } else { kind };
            out.push(series.anomaly(ts, value, kind, verdict));
        }
    }
}

/// The points of a series the detectors judge: volumes dense to the end of the data (a series
/// that stopped is a drop to zero), if the series is busy enough; latencies, and error rates
/// the value detectors judge, only in buckets with enough records (`poisson`: the Poisson scan
/// weighs each bucket by its records, so any bucket with records counts).
fn judged_points(
    series: &Series<'_>,
    bucket_secs: i64,
    last_bucket: i64,
    poisson: bool,
) -> Vec<(Timestamp, f64)> {
    let points = series.points;
    if series.metric == Metric::Volume {
        let first = points[0].ts.secs();
        let buckets = ((last_bucket - first) / bucket_secs + 1).max(1) as f64;
        let total: f64 = points.iter().map(|p| p.value).sum();
        if total / buckets < MIN_MEAN_VOLUME {
            return Vec::new();
        }
        let mut out: Vec<(Timestamp, f64)> = points.iter().map(|p| (p.ts, p.value)).collect();
        let mut bucket = points[points.len() - 1].ts.secs() + bucket_secs;
        while bucket <= last_bucket {
            out.push((Timestamp::from_secs(bucket), 0.0));
            bucket += bucket_secs;
        }
        return out;
    }
    let min_volume = if poisson {
        f64::MIN_POSITIVE
    } else {
        MIN_BUCKET_VOLUME
    };
    points
        .iter()
        .filter(|p| series.volume_at(p.ts) >= min_volume)
        .map(|p| (p.ts, p.value))
        .collect()
}

/// One anomaly per template first seen after the warm-up that repeats soon after, in the
/// bucket where it repeated enough: the detector is fed each template's count per bucket, in
/// time order.
fn new_templates(
    points: &[MetricPoint],
    templates: &[TemplateRow],
    config: &DetectConfig,
    start: Timestamp,
    anomalies: &mut Vec<Anomaly>,
) {
    if !config.new_template.enabled {
        return;
    }
    let by_id: HashMap<u64, &TemplateRow> = templates.iter().map(|t| (t.id, t)).collect();
    let mut counts: Vec<(Timestamp, u64, f64)> = points
        .iter()
        .filter(|p| p.metric == Metric::TemplateCount)
        .filter_map(|p| Some((p.ts, p.key.template?, p.value)))
        .collect();
    counts.sort_by_key(|&(ts, id, _)| (ts, id));
    let mut detector = NewTemplate::starting_at(&config.new_template, start);
    for (ts, id, count) in counts {
        let row = by_id.get(&id);
        let level = row.and_then(|t| t.level);
        if let Some(hit) = detector.observe_count(ts, TemplateId(id), level, count as u64) {
            let key = row.map_or_else(
                || SeriesKey {
                    template: Some(id),
                    ..SeriesKey::default()
                },
                |t| template_key(t),
            );
            anomalies.push(Anomaly {
                ts,
                detector: DetectorKind::NewTemplate,
                metric: Metric::TemplateCount.as_str().to_owned(),
                series: key.canonical(),
                observed: hit.occurrences as f64,
                verdict: hit.verdict,
            });
        }
    }
}

fn template_key(t: &TemplateRow) -> SeriesKey {
    SeriesKey {
        service: t.service.clone(),
        template: Some(t.id),
        ..SeriesKey::default()
    }
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
