//! `loglens detect`: detection from saved state. Each `process` run leaves a metric partial,
//! a file per day of its buckets (`state/partials/<run-id>[.<part>].<YYYY-MM-DD>.bin`); detect
//! merges the partials it has not consumed into the buckets not yet judged a day at a time
//! (so its memory holds a day of cells, whatever the span; a loader thread merges the next day
//! while the judge works), judges every bucket up to the
//! watermark (latest record time minus `[detect] grace`) with core's policy
//! ([`loglens_core::detect::policy::Policy`], resumed from `state/detect.json`), and appends a
//! part per run to `metrics/`, `anomalies/`, `incidents/` and `rollups/`. Incidents still able
//! to grow are in `incidents/part-open.parquet` (their anomalies in
//! `anomalies/part-open.parquet`, the pending buckets' metrics in `metrics/part-open.parquet`),
//! replaced by every run.
//!
//! Deterministic: the policy is causal and fed bucket by bucket, so the same records give the
//! same datasets however they were split into runs. `--rebuild` (and data written before
//! partials existed) builds the partial from the records instead, then judges the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use arrow_array::{
    Array, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt16Array, UInt64Array,
};
use loglens_core::detect::policy::{Policy, TemplateSighting};
use loglens_core::detect::{Anomaly, DetectConfig, DetectorKind, Incident, IncidentRow};
use loglens_core::metrics::{Metric, MetricPoint, MetricSeries, Observation, SeriesKey};
use loglens_core::partial::MetricPartial;
use loglens_core::rollup::DayRollups;
use loglens_core::template::TemplateId;
use loglens_core::template::{canonical_templates, template_aliases, TemplateStats};
use loglens_core::{Level, Timestamp};
use loglens_store::{
    column, parquet_files, read_columns, read_templates, write_anomalies, write_incidents, write_metrics,
    write_staged, AnomalyRow, DataDir, Dataset, MetricsWriter, RollupWriter, RunCommit, StoreError,
    OPEN_PART,
};
use serde::{Deserialize, Serialize};

use crate::progress::{Progress, Stage};
use crate::{partials, EngineError};

/// Examples kept per incident.
const EXAMPLES: usize = 5;

/// The version of `state/detect.json`; another version is refused with a hint to rebuild.
/// Version 2: Poisson scans test every window length up to 64 buckets for falls.
pub const DETECT_STATE_VERSION: u32 = 2;
/// The detect state's file name under `state/`.
pub const DETECT_STATE_FILE: &str = "detect.json";
const US_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// What a detect run consumed and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectSummary {
    /// Records consumed by this run (from new run partials, or from the records on a rebuild).
    pub records: u64,
    /// `process` runs whose partials this run consumed.
    pub runs_consumed: u64,
    /// Saved partials consumed by this run: a run's, or its parts (a worker's partial that
    /// filled up, each write group's on Dask/Ray).
    pub partials_consumed: u64,
    /// Why detection was rebuilt from the records, if it was.
    pub rebuilt: Option<String>,
    /// Records of this run for buckets already judged: counted in the rollups, not judged.
    pub late_records: u64,
    /// Late records over the life of the detect state.
    pub late_records_total: u64,
    /// Buckets before this time (RFC 3339) are judged.
    pub judged_until: Option<String>,
    /// Bucket width, seconds.
    pub bucket_secs: i64,
    /// Metric rows written by this run.
    pub metric_points: u64,
    /// Series the detectors watched.
    pub series_watched: u64,
    /// Anomalous buckets found by this run (in incidents closed by it, or still open).
    pub anomalies: u64,
    /// Incidents closed by this run and those still open, most severe and earliest first.
    pub incidents: Vec<IncidentSummary>,
    /// Of them, still open (may grow with later data).
    pub open_incidents: u64,
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
    /// Whether it may still grow.
    pub open: bool,
    /// The series that explains its members (correlation).
    pub root: String,
    /// The incidents merged into it (1 when nothing joined).
    pub members: usize,
}

/// Everything detection keeps between runs (`state/detect.json`).
#[derive(Serialize, Deserialize)]
struct DetectState {
    version: u32,
    bucket_secs: i64,
    /// The `[detect]` settings the policy was built with (grace aside, which may change).
    config: DetectConfig,
    policy: Policy,
    /// Buckets not judged yet.
    pending: MetricPartial,
    /// Saved partials already merged, by name (a run id, or a run's part).
    consumed: BTreeSet<String>,
    /// Latest record time seen, µs.
    latest_us: Option<i64>,
    /// Buckets before this start (seconds) are judged.
    judged_until: Option<i64>,
    late_records: u64,
    /// The last bucket each count series emitted (canonical key), so metrics stay dense
    /// across runs.
    dense: BTreeMap<String, i64>,
    /// Anomalies that may still belong to an incident not closed yet.
    anomalies: Vec<Anomaly>,
}

impl DetectState {
    fn new(config: &DetectConfig, bucket_secs: i64) -> Result<Self, EngineError> {
        Ok(DetectState {
            version: DETECT_STATE_VERSION,
            bucket_secs,
            config: settings(config),
            policy: Policy::new(config).map_err(|e| EngineError::setting("[detect]", e))?,
            pending: MetricPartial::new(bucket_secs),
            consumed: BTreeSet::new(),
            latest_us: None,
            judged_until: None,
            late_records: 0,
            dense: BTreeMap::new(),
            anomalies: Vec::new(),
        })
    }
}

/// The settings a detect state must have been built with: all but `grace`.
fn settings(config: &DetectConfig) -> DetectConfig {
    DetectConfig {
        grace: DetectConfig::default().grace,
        ..config.clone()
    }
}

fn rebuild_hint(path: &Path, what: &str) -> EngineError {
    EngineError::state(
        path,
        format!("{what}; run `loglens detect --rebuild` to rebuild detection from the records"),
    )
}

/// Reads the detect state, if there is one; refuses another version, bucket width or settings.
fn load_state(
    path: &Path,
    config: &DetectConfig,
    bucket_secs: i64,
) -> Result<Option<DetectState>, EngineError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(path, e)),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| rebuild_hint(path, &format!("not a detect state: {e}")))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(DETECT_STATE_VERSION)) {
        let found = version.map_or("none".to_owned(), |v| v.to_string());
        return Err(rebuild_hint(
            path,
            &format!("detect state version {found} is not supported (expected {DETECT_STATE_VERSION})"),
        ));
    }
    let state: DetectState = serde_json::from_value(value)
        .map_err(|e| rebuild_hint(path, &format!("unreadable detect state: {e}")))?;
    if state.bucket_secs != bucket_secs {
        return Err(rebuild_hint(
            path,
            &format!(
                "detection state uses {} s buckets, [detect] bucket is {bucket_secs} s",
                state.bucket_secs
            ),
        ));
    }
    if state.config != settings(config) {
        return Err(rebuild_hint(
            path,
            "the [detect] settings changed since detection last ran",
        ));
    }
    Ok(Some(state))
}

/// Runs detection over what is new in the data directory at `data_dir` (see the module docs).
/// Cheap when nothing is new: it reads the state and the partials' names, and writes nothing.
/// `progress`, when given, is told how many records files a rebuild has read.
pub fn detect(
    data_dir: &Path,
    config: &DetectConfig,
    run_id: &str,
    progress: Option<&dyn Progress>,
) -> Result<DetectSummary, EngineError> {
    run(data_dir, config, run_id, progress, false)
}

/// `loglens detect --rebuild`: forgets the detect state and the datasets derived from it, builds
/// the metric partial from the records, and judges everything again.
pub fn rebuild(
    data_dir: &Path,
    config: &DetectConfig,
    run_id: &str,
    progress: Option<&dyn Progress>,
) -> Result<DetectSummary, EngineError> {
    run(data_dir, config, run_id, progress, true)
}

fn run(
    data_dir: &Path,
    config: &DetectConfig,
    run_id: &str,
    progress: Option<&dyn Progress>,
    rebuild: bool,
) -> Result<DetectSummary, EngineError> {
    let started = Instant::now();
    let config_error = |e| EngineError::setting("[detect]", e);
    config.validate().map_err(config_error)?;
    let bucket_secs = config.bucket_secs().map_err(config_error)?;
    let grace_secs = config.grace_secs().map_err(config_error)?;
    let data = DataDir::create(data_dir)?;
    let lock = data.lock()?;
    let state_dir = data.dataset(Dataset::State);
    let state_path = state_dir.join(DETECT_STATE_FILE);
    let saved = if rebuild {
        None
    } else {
        load_state(&state_path, config, bucket_secs)?
    };
    let runs = partials::list(&state_dir)?;
    let mut summary = DetectSummary {
        bucket_secs,
        ..DetectSummary::default()
    };
    if rebuild {
        summary.rebuilt = Some("--rebuild".to_owned());
    } else if saved.is_none() && has_runs_without_partials(&data, &runs)? {
        summary.rebuilt = Some("records written by an older loglens have no metric partials".to_owned());
    }
    let fresh_state = saved.is_none();
    let mut state = match saved {
        Some(state) => state,
        None => {
            // No state: whatever derived datasets exist came from another version or an
            // interrupted rebuild; start them over.
            forget(&data, &state_path)?;
            DetectState::new(config, bucket_secs)?
        }
    };
    let mut from_records = None;
    if summary.rebuilt.is_some() {
        from_records = Some(partial_from_records(&data, bucket_secs, progress)?);
        state.consumed.extend(runs.iter().map(|(run, _)| run.clone()));
    }
    let days = by_day(
        runs.into_iter()
            .filter(|(name, _)| !state.consumed.contains(name)),
    );
    if from_records.is_none() && days.is_empty() && !fresh_state {
        summary.series_watched = state.policy.series_watched();
        summary.late_records_total = state.late_records;
        summary.judged_until = state.judged_until.map(|s| Timestamp::from_secs(s).to_rfc3339());
        summary.elapsed_secs = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    // Records keep the template id they were written with; count them under the template it
    // belongs to now.
    let stored_templates = read_templates(&data.dataset(Dataset::Templates))?;
    let aliases = template_aliases(&stored_templates);
    let templates = canonical_templates(&stored_templates);
    let canonical = |id| canonical(&aliases, id);
    state.pending.remap_templates(canonical);

    let commit = RunCommit::begin(&data, &lock, run_id)?;
    let staged = commit.staged()?;
    let mut out = Output::new(&staged, run_id, bucket_secs);
    let services: HashMap<u64, Option<String>> =
        templates.iter().map(|t| (t.id, t.service.clone())).collect();
    // A day of partials at a time (those saved whole first): each is merged, then judged up
    // to where the next may still add, the start of its day. Memory holds a day of cells
    // (and the buckets within the grace, and the next day being loaded), whatever the span
    // of the input.
    let mut rebuilt = None;
    if let Some(mut fresh) = from_records.take() {
        fresh.remap_templates(canonical);
        out.rollups(&fresh)?;
        let limit = days.first().map(|(day, _)| day_start(*day));
        rebuilt = Some(LoadedDay {
            fresh,
            names: Vec::new(),
            bytes: 0,
            limit,
        });
    }
    // Progress is the saved partials' bytes judged so far (known before any is read).
    let total_bytes = days
        .iter()
        .flat_map(|(_, files)| files)
        .map(|(_, path)| file_len(path))
        .sum();
    let progress = progress.filter(|_| total_bytes > 0);
    if let Some(progress) = progress {
        progress.begin(Stage::Detect, Some(total_bytes));
    }
    let loader = DayLoader::spawn(days, state.bucket_secs, aliases.clone(), out.jobs());
    let mut judged = Judged::default();
    let mut runs_consumed = BTreeSet::new();
    let mut judged_bytes = 0;
    for loaded in rebuilt.into_iter().map(Ok).chain(loader.days()) {
        let LoadedDay {
            mut fresh,
            names,
            bytes,
            limit,
        } = loaded?;
        for name in names {
            runs_consumed.insert(partials::run_of(&name).to_owned());
            state.consumed.insert(name);
            summary.partials_consumed += 1;
        }
        summary.records += fresh.records();
        if let Some(until) = state.judged_until {
            let late = fresh.take_completed(Timestamp::from_secs(until));
            summary.late_records += late.records();
            state.late_records += late.records();
        }
        state.latest_us = state.latest_us.max(fresh.latest().map(|t| t.0));
        state.pending.merge(fresh)?;
        let step = judge_to_watermark(&mut state, grace_secs, &services, &mut out, limit)?;
        judged.anomalies.extend(step.anomalies);
        judged.incidents.extend(step.incidents);
        judged_bytes += bytes;
        if let Some(progress) = progress {
            progress.update(summary.records, judged_bytes);
        }
    }
    if let Some(progress) = progress {
        progress.end();
    }
    loader.join()?;
    summary.runs_consumed = runs_consumed.len() as u64;
    let provisional = judge_provisionally(&state, &services)?;

    // Anomalies leave with their incident; those an open incident may still take stay.
    let mut anomalies = std::mem::take(&mut state.anomalies);
    anomalies.extend(judged.anomalies);
    let closed_rows = anomaly_rows(&anomalies, &judged.incidents);
    let since = state.policy.open_since();
    anomalies.retain(|a| since.is_some_and(|s| a.ts >= s));
    let mut open_anomalies = anomalies.clone();
    state.anomalies = anomalies;
    open_anomalies.extend(provisional.anomalies);
    let open_rows = anomaly_rows(&open_anomalies, &provisional.incidents);

    let record_files = parquet_files(&data.dataset(Dataset::Records))?;
    let closed = explain(&judged.incidents, &templates, &aliases, &record_files)?;
    let open = explain(&provisional.incidents, &templates, &aliases, &record_files)?;
    if !closed.is_empty() {
        write_anomalies(&out.dir(Dataset::Anomalies)?, run_id, &closed_rows)?;
        write_incidents(&out.dir(Dataset::Incidents)?, run_id, &closed)?;
    }
    // The pending buckets' metrics, so metrics/ counts every record; replaced once judged.
    summary.metric_points = out.finish()? + out.open_metrics(&provisional.points)?;
    write_anomalies(&out.dir(Dataset::Anomalies)?, OPEN_PART, &open_rows)?;
    write_incidents(&out.dir(Dataset::Incidents)?, OPEN_PART, &open)?;
    let json = serde_json::to_vec(&state).map_err(|e| EngineError::encode("detect state", e))?;
    write_staged(&staged.dataset(Dataset::State).join(DETECT_STATE_FILE), &json)?;
    commit.commit()?;
    remove_stale_open_metrics(&data, &days_of(&provisional.points))?;
    drop(lock);

    summary.series_watched = state.policy.series_watched();
    summary.anomalies = (closed_rows.len() + open_rows.len()) as u64;
    summary.late_records_total = state.late_records;
    summary.judged_until = state.judged_until.map(|s| Timestamp::from_secs(s).to_rfc3339());
    summary.open_incidents = open.len() as u64;
    let mut incidents: Vec<IncidentSummary> = (closed.iter().map(|r| summarize(r, false)))
        .chain(open.iter().map(|r| summarize(r, true)))
        .collect();
    incidents.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then(a.start.cmp(&b.start))
    });
    summary.incidents = incidents;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// A saved partial: its name (as [`partials::list`] gives it) and its file.
type SavedPartial = (String, PathBuf);

/// Saved partials by the day of their buckets, oldest first; those saved whole (`None`) first.
fn by_day(saved: impl Iterator<Item = SavedPartial>) -> Vec<(Option<i64>, Vec<SavedPartial>)> {
    let mut days: BTreeMap<Option<i64>, Vec<SavedPartial>> = BTreeMap::new();
    for (name, path) in saved {
        days.entry(partials::day_of(&name))
            .or_default()
            .push((name, path));
    }
    days.into_iter().collect()
}

/// Where a day of saved partials starts (seconds); those saved whole come before any day.
fn day_start(day: Option<i64>) -> i64 {
    day.map_or(i64::MIN, |d| d * SECS_PER_DAY)
}

/// One day of saved partials merged, ready for the judge.
struct LoadedDay {
    /// The day's partials merged, templates remapped.
    fresh: MetricPartial,
    /// The saved partials merged into it.
    names: Vec<String>,
    /// Their files' bytes.
    bytes: u64,
    /// Where the next day starts (what the judge may judge up to), `None` after the last.
    limit: Option<i64>,
}

/// Loads and merges each day's saved partials, and hands their rollup rows to the writer, on
/// a thread of its own while the judge works on the day before: loading, merging and rollups
/// were a quarter of the judge's time, and the writer leaves half a core free. One day ahead
/// at most (a rendezvous channel).
struct DayLoader {
    days: Receiver<Result<LoadedDay, EngineError>>,
    thread: JoinHandle<()>,
}

impl DayLoader {
    fn spawn(
        days: Vec<(Option<i64>, Vec<SavedPartial>)>,
        bucket_secs: i64,
        aliases: HashMap<u64, u64>,
        rollups: Option<SyncSender<WriteJob>>,
    ) -> Self {
        let (send, receive) = sync_channel(0);
        let thread = std::thread::spawn(move || {
            for (i, (_, files)) in days.iter().enumerate() {
                let loaded = merge_partials(files, bucket_secs).map(|(mut fresh, names)| {
                    fresh.remap_templates(|id| canonical(&aliases, id));
                    // Rollups are sums, so the new records' rows go out now, judged or not:
                    // the rollups always count every record consumed, late ones included. A
                    // writer that stopped has failed, and the judge's `Output::finish` says why.
                    for chunk in fresh.rollups() {
                        if rollups
                            .as_ref()
                            .is_none_or(|w| w.send(WriteJob::Rollups(chunk)).is_err())
                        {
                            break;
                        }
                    }
                    let limit = days.get(i + 1).map(|(day, _)| day_start(*day));
                    let bytes = files.iter().map(|(_, path)| file_len(path)).sum();
                    LoadedDay {
                        fresh,
                        names,
                        bytes,
                        limit,
                    }
                });
                let failed = loaded.is_err();
                if send.send(loaded).is_err() || failed {
                    break;
                }
            }
        });
        DayLoader {
            days: receive,
            thread,
        }
    }

    /// The days as they are loaded (an error ends them).
    fn days(&self) -> impl Iterator<Item = Result<LoadedDay, EngineError>> + '_ {
        self.days.iter()
    }

    fn join(self) -> Result<(), EngineError> {
        drop(self.days);
        self.thread.join().map_err(|_| EngineError::Panic)
    }
}

/// A file's size in bytes (0 when it cannot be read: progress only).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Merges the saved partials `files` into one; it and their names.
fn merge_partials(
    files: &[SavedPartial],
    bucket_secs: i64,
) -> Result<(MetricPartial, Vec<String>), EngineError> {
    let mut merged = MetricPartial::new(bucket_secs);
    for (_, path) in files {
        let partial = partials::load(path)?;
        merged
            .merge(partial)
            .map_err(|e| rebuild_hint(path, &e.to_string()))?;
    }
    Ok((merged, files.iter().map(|(name, _)| name.clone()).collect()))
}

/// The days (since the epoch) `points` fall on.
fn days_of(points: &[MetricPoint]) -> BTreeSet<i64> {
    (points.iter())
        .map(|p| p.ts.secs().div_euclid(SECS_PER_DAY))
        .collect()
}

/// Removes the pending-bucket metric parts of earlier runs on days this run's open part does
/// not cover (the commit replaced the others). Done after the commit: a crash in between leaves
/// a stale provisional part that the next run removes, never a missing judged one.
fn remove_stale_open_metrics(data: &DataDir, open_days: &BTreeSet<i64>) -> Result<(), EngineError> {
    let keep: BTreeSet<String> = open_days
        .iter()
        .map(|&day| {
            let (y, m, d) = loglens_core::time::civil_from_days(day);
            format!("date={y:04}-{m:02}-{d:02}")
        })
        .collect();
    let metrics = data.dataset(Dataset::Metrics);
    let entries = match std::fs::read_dir(&metrics) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io(&metrics, e)),
    };
    for entry in entries {
        let day_dir = entry.map_err(|e| EngineError::io(&metrics, e))?.path();
        let is_kept = day_dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| keep.contains(n));
        let open = day_dir.join(format!("part-{OPEN_PART}.parquet"));
        if !is_kept && open.exists() {
            std::fs::remove_file(&open).map_err(|e| EngineError::io(&open, e))?;
        }
    }
    Ok(())
}

/// Whether some committed run wrote records but left no partial (written by a version before
/// partials), so detection must be built from the records.
fn has_runs_without_partials(data: &DataDir, saved: &[(String, PathBuf)]) -> Result<bool, EngineError> {
    if parquet_files(&data.dataset(Dataset::Records))?.is_empty() {
        return Ok(false);
    }
    let with_partial: BTreeSet<&str> = saved.iter().map(|(name, _)| partials::run_of(name)).collect();
    let runs_dir = data.dataset(Dataset::State).join("runs");
    let entries = match std::fs::read_dir(&runs_dir) {
        Ok(entries) => entries,
        // Records but no run summaries: older than both.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(EngineError::io(&runs_dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| EngineError::io(&runs_dir, e))?.path();
        let Some(run) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "json") || with_partial.contains(run) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| EngineError::io(&path, e))?;
        let wrote = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("records_written").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        if wrote > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes the detect state and the datasets derived from records.
fn forget(data: &DataDir, state_path: &Path) -> Result<(), EngineError> {
    for dataset in [
        Dataset::Metrics,
        Dataset::Anomalies,
        Dataset::Incidents,
        Dataset::Rollups,
    ] {
        let dir = data.dataset(dataset);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(&dir, e)),
        }
    }
    match std::fs::remove_file(state_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(state_path, e)),
    }
}

/// The metric partial of every stored record, built with the same [`MetricPartial::add`] as
/// `process` (template ids as written).
fn partial_from_records(
    data: &DataDir,
    bucket_secs: i64,
    progress: Option<&dyn Progress>,
) -> Result<MetricPartial, EngineError> {
    let record_files = parquet_files(&data.dataset(Dataset::Records))?;
    let sizes: Vec<u64> = record_files.iter().map(|f| file_len(f)).collect();
    if let Some(progress) = progress {
        progress.begin(Stage::Detect, Some(sizes.iter().sum()));
    }
    let mut partial = MetricPartial::new(bucket_secs);
    let (mut records, mut read_bytes) = (0, 0);
    for (file, size) in record_files.iter().zip(&sizes) {
        read_columns(file, &OBSERVED_COLUMNS, |batch| {
            records += observe_batch(file, batch, &mut partial)?;
            Ok(())
        })?;
        read_bytes += size;
        if let Some(progress) = progress {
            progress.update(records, read_bytes);
        }
    }
    if let Some(progress) = progress {
        progress.end();
    }
    Ok(partial)
}

/// Where a run's new parts go (its staging area), and what it wrote. Metric and rollup rows
/// are written on a thread of their own (a few stretches queued at most), so encoding one
/// stretch's Parquet overlaps judging the next; each day's rows of the run go to one file.
struct Output {
    root: DataDir,
    bucket_secs: i64,
    jobs: Option<SyncSender<WriteJob>>,
    writer: Option<JoinHandle<Result<u64, EngineError>>>,
}

/// Rows for the writer thread.
enum WriteJob {
    Metrics(Vec<MetricPoint>),
    Rollups(DayRollups),
}

/// Stretches queued for the writer before the judge waits for it.
const QUEUED_JOBS: usize = 2;

impl Output {
    fn new(staged: &DataDir, run_id: &str, bucket_secs: i64) -> Self {
        let (jobs, queue) = sync_channel::<WriteJob>(QUEUED_JOBS);
        let width = i32::try_from(bucket_secs).unwrap_or(i32::MAX);
        let mut metrics = MetricsWriter::new(&staged.dataset(Dataset::Metrics), run_id, width);
        let mut rollups = RollupWriter::new(&staged.dataset(Dataset::Rollups), run_id);
        let writer = std::thread::spawn(move || {
            for job in queue {
                match job {
                    WriteJob::Metrics(points) => metrics.write(&points)?,
                    WriteJob::Rollups(day) => rollups.write(&day)?,
                }
            }
            rollups.finish()?;
            Ok(metrics.finish()?)
        });
        Output {
            root: staged.clone(),
            bucket_secs,
            jobs: Some(jobs),
            writer: Some(writer),
        }
    }

    fn dir(&self, dataset: Dataset) -> Result<PathBuf, EngineError> {
        let dir = self.root.dataset(dataset);
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        Ok(dir)
    }

    /// Hands `job` to the writer; a writer that stopped has failed, and [`Output::finish`]
    /// reports why.
    fn send(&mut self, job: WriteJob) -> Result<(), EngineError> {
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send(job).is_ok());
        if sent {
            return Ok(());
        }
        self.finish().map(drop)
    }

    /// Writes the rollup rows of `partial`.
    fn rollups(&mut self, partial: &MetricPartial) -> Result<(), EngineError> {
        for chunk in partial.rollups() {
            self.send(WriteJob::Rollups(chunk))?;
        }
        Ok(())
    }

    /// Another sender of jobs to the writer (none once it has stopped).
    fn jobs(&self) -> Option<SyncSender<WriteJob>> {
        self.jobs.clone()
    }

    /// Writes judged points.
    fn metrics(&mut self, points: Vec<MetricPoint>) -> Result<(), EngineError> {
        self.send(WriteJob::Metrics(points))
    }

    /// Waits for every part to be written; the metric points written, or the writer's error.
    fn finish(&mut self) -> Result<u64, EngineError> {
        drop(self.jobs.take());
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(written)) => written,
            // Only a panic stops the writer before `finish` joins it.
            Some(Err(_)) | None => Err(EngineError::Panic),
        }
    }

    /// Writes `metrics/part-open.parquet` (after [`Output::finish`]); the points written.
    fn open_metrics(&self, points: &[MetricPoint]) -> Result<u64, EngineError> {
        let width = i32::try_from(self.bucket_secs).unwrap_or(i32::MAX);
        Ok(write_metrics(
            &self.dir(Dataset::Metrics)?,
            OPEN_PART,
            width,
            points,
        )?)
    }
}

/// What judging a stretch of buckets found.
#[derive(Default)]
struct Judged {
    anomalies: Vec<Anomaly>,
    incidents: Vec<Incident>,
    /// The metric points of the pending buckets (provisional judgement only).
    points: Vec<MetricPoint>,
}

/// Cells judged per stretch at most: what bounds the memory of a stretch's series and points,
/// however dense the records (a stretch is also never longer than a day).
const STRETCH_CELLS: usize = 256 * 1024;

/// Buckets per stretch: as many as hold about [`STRETCH_CELLS`] cells of `pending`.
fn stretch_buckets(pending: &MetricPartial) -> i64 {
    let Some((first, last)) = pending.span() else {
        return 1;
    };
    let buckets = usize::try_from((last - first) / pending.bucket_secs() + 1).unwrap_or(1);
    let per_bucket = (pending.cells() / buckets.max(1)).max(1);
    i64::try_from(STRETCH_CELLS / per_bucket).unwrap_or(1).max(1)
}

/// Judges every pending bucket that ends by the watermark (latest record time − grace, and
/// no later than `limit`, where partials not merged yet may still add), a stretch at a time
/// (a day at most, fewer buckets when they hold many cells), writing their metrics, so memory
/// holds one stretch's series and points whatever the input's size.
fn judge_to_watermark(
    state: &mut DetectState,
    grace_secs: i64,
    services: &HashMap<u64, Option<String>>,
    out: &mut Output,
    limit: Option<i64>,
) -> Result<Judged, EngineError> {
    let mut judged = Judged::default();
    let w = state.bucket_secs;
    let (Some(latest), Some(mut cursor)) = (state.latest_us, state.judged_until.or(state.pending.oldest()))
    else {
        return Ok(judged);
    };
    let watermark = latest.div_euclid(US_PER_SEC) - grace_secs;
    let watermark = limit.map_or(watermark, |limit| watermark.min(limit));
    let end = watermark.div_euclid(w) * w;
    let mut dense: HashMap<SeriesKey, i64> = (state.dense.iter()).map(|(k, &b)| (parse_key(k), b)).collect();
    let stretch = stretch_buckets(&state.pending) * w;
    while cursor < end {
        let day_end = (cursor.div_euclid(SECS_PER_DAY) + 1) * SECS_PER_DAY;
        let stop = day_end.min(end).min(cursor + stretch);
        let done = state.pending.take_completed(Timestamp::from_secs(stop));
        let points = points_of(&done, &mut dense);
        step(
            &mut state.policy,
            cursor,
            stop,
            w,
            &points,
            &sightings(&done, services),
            &mut judged,
        );
        out.metrics(points)?;
        cursor = stop;
    }
    state.judged_until = Some(cursor);
    state.dense = dense.iter().map(|(k, &b)| (k.canonical(), b)).collect();
    Ok(judged)
}

/// What the pending buckets would give were the data to end now: a copy of the policy judges
/// them and closes every incident. Its incidents are the open ones; nothing is kept.
fn judge_provisionally(
    state: &DetectState,
    services: &HashMap<u64, Option<String>>,
) -> Result<Judged, EngineError> {
    let mut judged = Judged::default();
    let mut policy = state.policy.clone();
    let w = state.bucket_secs;
    if let (Some(from), Some((_, last))) = (
        state.judged_until.or(state.pending.oldest()),
        state.pending.span(),
    ) {
        let mut dense: HashMap<SeriesKey, i64> =
            (state.dense.iter()).map(|(k, &b)| (parse_key(k), b)).collect();
        let points = points_of(&state.pending, &mut dense);
        step(
            &mut policy,
            from,
            last + w,
            w,
            &points,
            &sightings(&state.pending, services),
            &mut judged,
        );
        judged.points = points;
    }
    judged.incidents.extend(policy.finish());
    Ok(judged)
}

/// The metric points of `partial`'s buckets, dense after each series' last bucket emitted.
fn points_of(partial: &MetricPartial, dense: &mut HashMap<SeriesKey, i64>) -> Vec<MetricPoint> {
    let mut series = MetricSeries::new(partial.bucket_secs());
    series.absorb(partial);
    series.finish_after(dense)
}

/// Feeds `policy` every bucket from `from` to `to` (exclusive), empty ones too.
fn step(
    policy: &mut Policy,
    from: i64,
    to: i64,
    w: i64,
    points: &[MetricPoint],
    sightings: &BTreeMap<i64, Vec<TemplateSighting>>,
    judged: &mut Judged,
) {
    let by_bucket = BucketIndex::new(from, to, w, points);
    let (mut bucket, mut n) = (from, 0);
    while bucket < to {
        let seen = sightings.get(&bucket).map_or(&[][..], Vec::as_slice);
        let v = policy.step(Timestamp::from_secs(bucket), by_bucket.points(n), seen);
        judged.anomalies.extend(v.anomalies);
        judged.incidents.extend(v.incidents);
        (bucket, n) = (bucket + w, n + 1);
    }
}

/// The points the policy reads, bucket by bucket from `from` to `to`, each bucket's in their
/// order in the input: a counting sort (two passes, no map, no allocation per bucket), since
/// a day's buckets are known in advance and a map lookup per point took an eighth of judging.
struct BucketIndex<'a> {
    points: &'a [MetricPoint],
    /// Where each bucket's points start in `order` (one more entry than buckets).
    starts: Vec<usize>,
    /// Indexes into `points`, bucket by bucket.
    order: Vec<usize>,
}

impl<'a> BucketIndex<'a> {
    fn new(from: i64, to: i64, w: i64, points: &'a [MetricPoint]) -> BucketIndex<'a> {
        let buckets = if w > 0 && to > from {
            usize::try_from((to - from + w - 1) / w).unwrap_or(0)
        } else {
            0
        };
        // The bucket a point read by the policy starts, if it is one of ours (`NOT_READ` if
        // not): four bytes a point, where an `Option<usize>` took sixteen of fresh memory
        // (the day's points are hundreds of thousands).
        const NOT_READ: u32 = u32::MAX;
        let slot = |p: &MetricPoint| {
            let offset = p.ts.secs() - from;
            let ours = w > 0 && offset >= 0 && p.ts.secs() < to && offset % w == 0;
            (ours && Policy::reads(p))
                .then(|| u32::try_from(offset / w).ok())
                .flatten()
                .unwrap_or(NOT_READ)
        };
        let slots: Vec<u32> = points.iter().map(slot).collect();
        let mut starts = vec![0usize; buckets + 1];
        for &slot in slots.iter().filter(|&&s| s != NOT_READ) {
            starts[slot as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut order = vec![0usize; starts[buckets]];
        for (i, &slot) in slots.iter().enumerate() {
            if slot != NOT_READ {
                let slot = slot as usize;
                order[next[slot]] = i;
                next[slot] += 1;
            }
        }
        BucketIndex {
            points,
            starts,
            order,
        }
    }

    /// The points of the `n`-th bucket, in input order (none past the last bucket).
    fn points(&self, n: usize) -> impl Iterator<Item = &'a MetricPoint> + '_ {
        let range = match (self.starts.get(n), self.starts.get(n.saturating_add(1))) {
            (Some(&start), Some(&end)) => start..end,
            _ => 0..0,
        };
        self.order[range].iter().map(|&i| &self.points[i])
    }
}

/// Each template's occurrences per bucket, with the worst level among them and its service
/// (from the templates dataset): what the new-template detector is fed.
fn sightings(
    partial: &MetricPartial,
    services: &HashMap<u64, Option<String>>,
) -> BTreeMap<i64, Vec<TemplateSighting>> {
    let mut out: BTreeMap<i64, Vec<TemplateSighting>> = BTreeMap::new();
    for t in partial.template_buckets() {
        out.entry(t.bucket).or_default().push(TemplateSighting {
            template: TemplateId(t.template),
            count: t.records,
            level: t.worst,
            service: services.get(&t.template).cloned().flatten(),
        });
    }
    out
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

/// The columns of the records dataset that [`observe_batch`] reads.
pub const OBSERVED_COLUMNS: [&str; 9] = [
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

/// Adds every record of `batch` (the records schema's [`OBSERVED_COLUMNS`]) to `partial`, as
/// `process` adds them; returns the records added. `file` names the batch's origin in errors
/// (a column missing or of another type).
pub fn observe_batch(
    file: &Path,
    batch: &RecordBatch,
    partial: &mut MetricPartial,
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
        partial.add(&observation, text(source, i));
    }
    Ok(batch.num_rows() as u64)
}

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
    templates: &[TemplateStats],
    aliases: &HashMap<u64, u64>,
    record_files: &[PathBuf],
) -> Result<Vec<IncidentRow>, EngineError> {
    let by_id: HashMap<u64, &TemplateStats> = templates.iter().map(|t| (t.id, t)).collect();
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

fn summarize(row: &IncidentRow, open: bool) -> IncidentSummary {
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
        open,
        root: i.root.clone(),
        members: i.members.len().max(1),
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
