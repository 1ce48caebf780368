//! The detection policy of `loglens detect`: which series are watched and by which detectors,
//! the floors that make a change matter, the votes among value detectors, the grading of new
//! templates, and how anomalous buckets become incidents.
//!
//! [`Policy`] is a state machine fed one bucket at a time ([`Policy::step`]); batch detection
//! ([`replay`]) feeds it every bucket of the data in order, so a batch run, `serve` and a
//! cluster driver that feed the same buckets get the same verdicts by construction.
//!
//! Causal: the verdicts on a bucket use only that bucket and the ones before it.
//! - A volume series is judged while its mean volume over the buckets already seen (an
//!   exponentially weighted mean with a half-life of one day, after an hour of history) is at
//!   least one record per bucket; its detectors learn from every bucket from its first,
//!   judged or not.
//! - A new template is graded by the worst level among its occurrences up to the one that
//!   confirmed it, not by the worst level it ever shows.
//! - Warm-ups count per series from the series' first bucket (each detector is created when
//!   its series first reports); the new-template warm-up counts from the first bucket the
//!   policy was fed, which for a long-running driver is when its state began.
//!
//! An incident closes when it can no longer grow: `Floors::merge_gap_buckets` buckets after its
//! last anomalous bucket passed without another, or at [`Policy::finish`] (end of the data).
//! Closed incidents then pass through the [`Correlator`](super::correlate::Correlator): related
//! incidents close in time merge into one, emitted once no open or future incident can join.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::incident::incident_of;
use super::{
    Anomaly, Correlator, DetectConfig, DetectError, Detector, DetectorKind, Floors, Incident, NewTemplate,
    PoissonScan, RobustZScore, Seasonal, Silence, Verdict, ZScore,
};
use crate::metrics::{Metric, MetricPoint, SeriesKey};
use crate::record::Level;
use crate::template::TemplateId;
use crate::time::Timestamp;

/// Metrics the detectors watch. Counts of single templates and the (service, level) rollups
/// are not watched: new templates have their own detector and level splits repeat what error
/// rate says. Latency is watched by its geometric mean: a minute's p95 over a few dozen
/// requests is its one or two slowest, so it jumps whenever one request hangs, and the median
/// of a mix of fast static and slow dynamic requests flips between the two; the mean of log
/// latencies moves by the factor a whole service slows by.
pub const WATCHED: [Metric; 3] = [Metric::Volume, Metric::ErrorRate, Metric::LatencyGmean];

// Why the `[detect.floors]` defaults (`Floors`) are what they are:
// - merge_gap_buckets 5: a change that flickers for a few minutes is one incident, not several.
// - min_incident_buckets 2: a single odd minute is chance more often than not (one slow request
//   is a minute's latency, one burst of retries a minute's volume), while the failures worth
//   waking someone for last.
// - min_latency_records 100: a latency shift is evidence in proportion to the requests that
//   show it. A few minutes of a dozen requests each follow the request mix (page views without
//   the usual static files are 3-10x slower than the hour), while a hundred requests all slower
//   by 3x are no chance, however quiet the service.
// - min_bucket_volume 10: with fewer records, one failed request is a 50% error rate and a
//   single slow one the p95.
// - min_mean_volume 1: sparser series are mostly empty buckets, where any record at all looks
//   like a spike.

/// Half-life of the mean volume behind `Floors::min_mean_volume`, in seconds: a day, so a
/// quiet night does not close the gate on a series that is busy by day.
pub const MEAN_VOLUME_HALFLIFE_SECS: i64 = 86_400;

/// History a volume series needs before its mean can open the gate, in seconds: an hour, so
/// the record that started a sparse series is not taken for its usual rate.
pub const MEAN_VOLUME_HISTORY_SECS: i64 = 3_600;

/// Whether a statistically unusual value is also large enough for a person to care: on quiet,
/// steady series a Z-score flags differences nobody would act on (one extra error, 3 ms).
pub fn material(metric: Metric, observed: f64, expected: f64, bucket_volume: f64, floors: &Floors) -> bool {
    match metric {
        Metric::ErrorRate => {
            observed - expected >= floors.min_error_rate_rise && observed * bucket_volume >= floors.min_errors
        }
        Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 | Metric::LatencyGmean => {
            observed >= expected * floors.min_latency_factor
        }
        Metric::Volume => {
            observed <= expected * floors.max_volume_drop_share
                || observed >= expected * floors.min_volume_spike_factor
        }
        _ => true,
    }
}

/// The value detectors enabled in `config` (already resolved for one metric with
/// [`DetectConfig::for_metric`]), voting: a bucket is anomalous when at least two agree (or the
/// only one enabled fires), since each alone fires on the quirks of its model (a Z-score on a
/// weekend dip, a median on a flat series).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueEnsemble {
    zscore: Option<ZScore>,
    robust: Option<RobustZScore>,
    seasonal: Option<Seasonal>,
}

impl ValueEnsemble {
    /// Fresh detectors for one series.
    pub fn new(config: &DetectConfig) -> ValueEnsemble {
        ValueEnsemble {
            zscore: config.zscore.enabled.then(|| ZScore::new(&config.zscore)),
            robust: config
                .robust_zscore
                .enabled
                .then(|| RobustZScore::new(&config.robust_zscore)),
            seasonal: config.seasonal.enabled.then(|| Seasonal::new(&config.seasonal)),
        }
    }

    /// Detectors that must fire together: two, or as many as are enabled if fewer.
    pub fn quorum(&self) -> usize {
        self.verdict_count().min(2)
    }

    fn verdict_count(&self) -> usize {
        usize::from(self.zscore.is_some())
            + usize::from(self.robust.is_some())
            + usize::from(self.seasonal.is_some())
    }

    /// Every enabled detector's verdict on `value` at `ts`, in the order Z-score, robust,
    /// seasonal; each then learns from it.
    pub fn observe_all(&mut self, ts: Timestamp, value: f64) -> Vec<(DetectorKind, Verdict)> {
        let mut out = Vec::with_capacity(3);
        if let Some(d) = &mut self.zscore {
            out.push((d.kind(), d.observe(ts, value)));
        }
        if let Some(d) = &mut self.robust {
            out.push((d.kind(), d.observe(ts, value)));
        }
        if let Some(d) = &mut self.seasonal {
            out.push((d.kind(), d.observe(ts, value)));
        }
        out
    }

    /// The vote on `value` at `ts`: the strongest firing verdict when a quorum fires (labelled
    /// [`DetectorKind::Ensemble`] when the quorum is more than one), else `None`.
    pub fn observe(&mut self, ts: Timestamp, value: f64) -> Option<(DetectorKind, Verdict)> {
        let quorum = self.quorum();
        Self::vote(quorum, &self.observe_all(ts, value))
    }

    /// The vote as a score in [0, 1]: the quorum-th largest anomaly score of the detectors, so
    /// at least 0.5 exactly when a quorum is past its thresholds (a continuous score, for NAB).
    pub fn consensus(&mut self, ts: Timestamp, value: f64) -> f64 {
        let quorum = self.quorum();
        Self::agreement(quorum, &self.observe_all(ts, value))
    }

    /// [`ValueEnsemble::observe`]'s vote over `verdicts` (what [`ValueEnsemble::observe_all`]
    /// returned) with `quorum` ([`ValueEnsemble::quorum`]), for a caller that wants both the vote
    /// and [`ValueEnsemble::agreement`] of one observation.
    pub fn vote(quorum: usize, verdicts: &[(DetectorKind, Verdict)]) -> Option<(DetectorKind, Verdict)> {
        let firing = verdicts.iter().filter(|(_, v)| v.severity.is_some());
        if quorum == 0 || firing.clone().count() < quorum {
            return None;
        }
        let &(kind, verdict) = firing.max_by(|a, b| a.1.score.total_cmp(&b.1.score))?;
        Some((if quorum > 1 { DetectorKind::Ensemble } else { kind }, verdict))
    }

    /// [`ValueEnsemble::consensus`]'s score over `verdicts` with `quorum` (see
    /// [`ValueEnsemble::vote`]).
    pub fn agreement(quorum: usize, verdicts: &[(DetectorKind, Verdict)]) -> f64 {
        let mut scores: Vec<f64> = verdicts.iter().map(|(_, v)| v.anomaly).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        quorum
            .checked_sub(1)
            .and_then(|i| scores.get(i))
            .copied()
            .unwrap_or(0.0)
    }
}

/// How one series is judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Judge {
    /// Counts: the Poisson scan (volume: records per bucket; error rate: errors among records).
    Poisson(PoissonScan),
    /// Values: the value detectors' vote, then [`material`].
    Vote(Box<ValueEnsemble>),
}

impl Judge {
    fn new(config: &DetectConfig, metric: Metric) -> Judge {
        let counted = config.poisson.enabled && matches!(metric, Metric::Volume | Metric::ErrorRate);
        if counted {
            Judge::Poisson(PoissonScan::new(&config.poisson))
        } else {
            Judge::Vote(Box::new(ValueEnsemble::new(config)))
        }
    }
}

/// An exponentially weighted mean of a series' volume per bucket, normalised by its weights so
/// the first buckets give their plain mean.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct MeanVolume {
    decay: f64,
    sum: f64,
    weight: f64,
    buckets: u32,
    min_buckets: u32,
}

impl MeanVolume {
    fn new(bucket_secs: i64) -> MeanVolume {
        let buckets = (MEAN_VOLUME_HALFLIFE_SECS as f64 / bucket_secs.max(1) as f64).max(1.0);
        let min_buckets = MEAN_VOLUME_HISTORY_SECS / bucket_secs.max(1);
        MeanVolume {
            decay: 0.5_f64.powf(1.0 / buckets),
            sum: 0.0,
            weight: 0.0,
            buckets: 0,
            min_buckets: u32::try_from(min_buckets.max(1)).unwrap_or(u32::MAX),
        }
    }

    /// Whether the buckets seen so far are enough, and busy enough, to judge the next one.
    fn open(&self, min_mean_volume: f64) -> bool {
        self.buckets >= self.min_buckets && self.weight > 0.0 && self.sum / self.weight >= min_mean_volume
    }

    fn add(&mut self, volume: f64) {
        self.sum = self.sum * self.decay + volume;
        self.weight = self.weight * self.decay + 1.0;
        self.buckets = self.buckets.saturating_add(1);
    }
}

/// One watched (metric, labels) series.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Watch {
    #[serde(with = "watched_metric")]
    metric: Metric,
    judge: Judge,
    /// Volume only: the gate of `Floors::min_mean_volume`.
    gate: Option<MeanVolume>,
    /// Host volumes without the Poisson scan: a host falling silent.
    silence: Option<Silence>,
    /// Whether any bucket was judged yet.
    judged: bool,
}

/// What one bucket holds for one label set.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    volume: Option<f64>,
    errors: Option<f64>,
    error_rate: Option<f64>,
    latency: Option<f64>,
}

impl Cell {
    fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Volume => self.volume,
            Metric::ErrorRate => self.error_rate,
            Metric::LatencyGmean => self.latency,
            _ => None,
        }
    }
}

/// The watched series of one label set.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Labels {
    /// Whether the set names a host (host volumes may be watched for silence).
    host: bool,
    watches: Vec<Watch>,
    /// Its slot in [`Slots`], once the set has had a cell since the policy was built or
    /// restored (a set without one has no cell in any bucket until then).
    #[serde(skip)]
    slot: Option<usize>,
}

/// The label sets seen since the policy was built or restored, each with a slot, and the
/// current bucket's cells by slot, so each point's set is hashed once and named only when
/// first seen (cells sorted and looked up by name were a quarter of detect's judging). A
/// cache, rebuilt after a restore.
#[derive(Debug, Clone, Default)]
struct Slots {
    by_key: FxHashMap<SeriesKey, usize>,
    /// Slots by the address of a series' shared key: a day's points share one `Arc` per
    /// series, so a series is hashed by its labels once a day, not once per point (hashing
    /// and comparing label strings was a seventh of judging). Holding the `Arc` keeps its
    /// address from being reused by another key while it is here.
    by_address: FxHashMap<usize, (Arc<SeriesKey>, usize)>,
    /// Per slot: canonical name, whether the set names a host, whether its [`Labels`]
    /// knows the slot.
    names: Vec<String>,
    hosts: Vec<bool>,
    labelled: Vec<bool>,
    /// The current bucket's cells, and the slots that have one.
    cells: Vec<Option<Cell>>,
    filled: Vec<usize>,
}

impl Slots {
    /// Empties the current bucket.
    fn clear(&mut self) {
        for slot in self.filled.drain(..) {
            self.cells[slot] = None;
        }
    }

    /// Fills the current bucket with the watched values of `bucket` among `points`.
    fn fill<'a>(&mut self, bucket: i64, points: impl IntoIterator<Item = &'a MetricPoint>) {
        self.clear();
        for p in points {
            if p.ts.secs() != bucket || !Policy::reads(p) {
                continue;
            }
            let slot = self.slot_of_shared(&p.key);
            let cell = match &mut self.cells[slot] {
                Some(cell) => cell,
                empty => {
                    self.filled.push(slot);
                    empty.insert(Cell::default())
                }
            };
            match p.metric {
                Metric::Volume => cell.volume = Some(p.value),
                Metric::Errors => cell.errors = Some(p.value),
                Metric::ErrorRate => cell.error_rate = Some(p.value),
                Metric::LatencyGmean => cell.latency = Some(p.value),
                _ => {}
            }
        }
    }

    fn slot_of_shared(&mut self, key: &Arc<SeriesKey>) -> usize {
        let address = Arc::as_ptr(key) as usize;
        if let Some(&(_, slot)) = self.by_address.get(&address) {
            return slot;
        }
        // Past days' keys are dropped now and then, so the map follows the series, not the span.
        if self.by_address.len() > 4 * self.names.len() + 1024 {
            self.by_address.clear();
        }
        let slot = self.slot(key);
        self.by_address.insert(address, (Arc::clone(key), slot));
        slot
    }

    fn slot(&mut self, key: &SeriesKey) -> usize {
        if let Some(&slot) = self.by_key.get(key) {
            return slot;
        }
        let slot = self.names.len();
        self.by_key.insert(key.clone(), slot);
        self.names.push(key.canonical());
        self.hosts.push(key.host.is_some());
        self.labelled.push(false);
        self.cells.push(None);
        slot
    }

    fn cell(&self, slot: Option<usize>) -> Option<Cell> {
        slot.and_then(|s| self.cells.get(s).copied().flatten())
    }
}

/// A watched metric by its name in the `metric` column, in serialized state.
mod watched_metric {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Metric, WATCHED};

    pub(super) fn serialize<S: Serializer>(metric: &Metric, s: S) -> Result<S::Ok, S::Error> {
        metric.as_str().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Metric, D::Error> {
        let name = String::deserialize(d)?;
        WATCHED
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("not a watched metric: {name:?}")))
    }
}

/// A template's occurrences in one bucket, for the new-template detector.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSighting {
    /// The template.
    pub template: TemplateId,
    /// Occurrences in the bucket.
    pub count: u64,
    /// The worst level among them.
    pub level: Option<Level>,
    /// The service the template belongs to (its incidents' series label).
    pub service: Option<String>,
}

/// What one bucket produced: the anomalous buckets found, and the incidents that can no
/// longer grow (each emitted once, in full).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdicts {
    /// Anomalous buckets (some end up in no incident: too short to report).
    pub anomalies: Vec<Anomaly>,
    /// Incidents closed by this bucket, lasting enough to report.
    pub incidents: Vec<Incident>,
}

/// An incident still able to grow: its anomalies so far and the records of its series in its
/// span (latency incidents need `Floors::min_latency_records`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenIncident {
    anomalies: Vec<Anomaly>,
    /// Records from its first to its last anomalous bucket.
    records: f64,
    /// Records in the buckets after its last anomalous one.
    pending: f64,
}

impl OpenIncident {
    fn is_of(&self, a: &Anomaly) -> bool {
        self.anomalies
            .first()
            .is_some_and(|f| f.detector == a.detector && f.metric == a.metric && f.series == a.series)
    }

    fn series(&self) -> &str {
        self.anomalies.first().map_or("", |a| a.series.as_str())
    }
}

/// The detection policy's state: one per data set (a data directory, a `serve` instance).
/// Serializable (e.g. to JSON), so a long-running driver can save it and resume where it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    config: DetectConfig,
    bucket_secs: i64,
    next: Option<i64>,
    /// Watched label sets by canonical key.
    labels: BTreeMap<String, Labels>,
    templates: Option<NewTemplate>,
    open: Vec<OpenIncident>,
    /// Closed incidents waiting for the ones they may correlate with.
    #[serde(default)]
    correlator: Correlator,
    #[serde(skip)]
    slots: Slots,
}

impl Policy {
    /// A policy with no history, or the configuration's first error.
    pub fn new(config: &DetectConfig) -> Result<Policy, DetectError> {
        config.validate()?;
        Ok(Policy {
            config: config.clone(),
            bucket_secs: config.bucket_secs()?,
            next: None,
            labels: BTreeMap::new(),
            templates: None,
            open: Vec::new(),
            correlator: Correlator::default(),
            slots: Slots::default(),
        })
    }

    /// The bucket width, seconds.
    pub fn bucket_secs(&self) -> i64 {
        self.bucket_secs
    }

    /// Series judged at least once so far.
    pub fn series_watched(&self) -> u64 {
        self.labels
            .values()
            .flat_map(|l| &l.watches)
            .filter(|w| w.judged)
            .count() as u64
    }

    /// Judges the bucket starting at `ts`, given every metric point of that bucket (points of
    /// other buckets are ignored) and the templates that occurred in it. Buckets must come in
    /// time order, each once; a bucket skipped is judged as empty (a volume series that
    /// reported before then drops to 0).
    pub fn step<'a>(
        &mut self,
        ts: Timestamp,
        points: impl IntoIterator<Item = &'a MetricPoint>,
        templates: &[TemplateSighting],
    ) -> Verdicts {
        let bucket = ts.secs().div_euclid(self.bucket_secs) * self.bucket_secs;
        let mut out = Verdicts::default();
        if self.next.is_some_and(|n| bucket < n) {
            return out;
        }
        if let Some(next) = self.next {
            self.slots.clear();
            let mut empty = next;
            while empty < bucket {
                self.judge_bucket(empty, &[], &mut out);
                empty += self.bucket_secs;
            }
        }
        self.slots.fill(bucket, points);
        self.judge_bucket(bucket, templates, &mut out);
        self.next = Some(bucket + self.bucket_secs);
        out
    }

    /// Whether [`Policy::step`] reads `point`: a driver holding millions of points may hand it
    /// only these.
    pub fn reads(point: &MetricPoint) -> bool {
        watched_labels(&point.key)
            && matches!(
                point.metric,
                Metric::Volume | Metric::Errors | Metric::ErrorRate | Metric::LatencyGmean
            )
    }

    /// The first anomalous bucket of the incidents still able to grow, if any: anomalies
    /// from then on may still join an incident (a driver keeps them until it closes).
    pub fn open_since(&self) -> Option<Timestamp> {
        self.open
            .iter()
            .filter_map(|o| o.anomalies.first())
            .map(|a| a.ts)
            .min()
    }

    /// The end of the data: closes every open incident.
    pub fn finish(&mut self) -> Vec<Incident> {
        let open = std::mem::take(&mut self.open);
        let closed: Vec<Incident> = open.into_iter().filter_map(|o| self.close(o)).collect();
        for incident in closed {
            self.correlator.add(incident);
        }
        let mut out = self.correlator.finish();
        sort_incidents(&mut out);
        out
    }

    /// Judges `bucket` on the cells [`Slots::fill`] left.
    fn judge_bucket(&mut self, bucket: i64, templates: &[TemplateSighting], out: &mut Verdicts) {
        let ts = Timestamp::from_secs(bucket);
        self.close_before(bucket, out);
        let slots = &mut self.slots;
        for &slot in &slots.filled {
            if !slots.labelled[slot] {
                let labels = (self.labels.entry(slots.names[slot].clone())).or_insert_with(|| Labels {
                    host: slots.hosts[slot],
                    watches: Vec::new(),
                    slot: None,
                });
                labels.slot = Some(slot);
                slots.labelled[slot] = true;
            }
        }
        let mut found = Vec::new();
        for (key, labels) in &mut self.labels {
            let cell = self.slots.cell(labels.slot).unwrap_or_default();
            add_watches(labels, &cell, &self.config, self.bucket_secs);
            for watch in &mut labels.watches {
                found.extend(judge(watch, key, ts, &cell, &self.config.floors).unwrap_or_default());
            }
        }
        found.extend(self.new_templates(ts, templates));
        if found.is_empty() && self.open.is_empty() {
            return;
        }
        let volume_of = |series: &str| {
            let slot = self.labels.get(series).and_then(|l| l.slot);
            self.slots.cell(slot).and_then(|c| c.volume).unwrap_or(0.0)
        };
        let volumes: Vec<f64> = found.iter().map(|a| volume_of(&a.series)).collect();
        let pending: Vec<f64> = self.open.iter().map(|o| volume_of(o.series())).collect();
        for (open, volume) in self.open.iter_mut().zip(pending) {
            open.pending += volume;
        }
        for (a, volume) in found.iter().zip(volumes) {
            self.add_anomaly(a.clone(), volume);
        }
        out.anomalies.extend(found);
    }

    fn new_templates(&mut self, ts: Timestamp, templates: &[TemplateSighting]) -> Vec<Anomaly> {
        let config = &self.config.new_template;
        if !config.enabled {
            return Vec::new();
        }
        let detector = self
            .templates
            .get_or_insert_with(|| NewTemplate::starting_at(config, ts));
        let mut sorted: Vec<&TemplateSighting> = templates.iter().collect();
        sorted.sort_by_key(|s| s.template);
        let mut out = Vec::new();
        for s in sorted {
            let Some(hit) = detector.observe_count(ts, s.template, s.level, s.count) else {
                continue;
            };
            let key = SeriesKey {
                service: s.service.clone(),
                template: Some(s.template.0),
                ..SeriesKey::default()
            };
            out.push(Anomaly {
                ts,
                detector: DetectorKind::NewTemplate,
                metric: Metric::TemplateCount.as_str().to_owned(),
                series: key.canonical(),
                observed: hit.occurrences as f64,
                verdict: hit.verdict,
            });
        }
        out
    }

    fn reach_secs(&self) -> i64 {
        self.bucket_secs * (i64::from(self.config.floors.merge_gap_buckets) + 1)
    }

    /// Closes the incidents no anomaly at `bucket` or later can join.
    fn close_before(&mut self, bucket: i64, out: &mut Verdicts) {
        let reach = self.reach_secs();
        let (done, open): (Vec<OpenIncident>, Vec<OpenIncident>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|o| o.anomalies.last().is_some_and(|a| bucket - a.ts.secs() > reach));
        self.open = open;
        let closed: Vec<Incident> = done.into_iter().filter_map(|o| self.close(o)).collect();
        for incident in closed {
            self.correlator.add(incident);
        }
        let growing: Vec<(Timestamp, &str)> = self
            .open
            .iter()
            .filter_map(|o| o.anomalies.first().map(|a| (a.ts, a.series.as_str())))
            .collect();
        let mut ready = self.correlator.ready(Timestamp::from_secs(bucket), &growing);
        sort_incidents(&mut ready);
        out.incidents.extend(ready);
    }

    /// Adds an anomaly to its open incident, or opens one; `volume` is its series' records
    /// in the anomaly's bucket.
    fn add_anomaly(&mut self, a: Anomaly, volume: f64) {
        match self.open.iter_mut().find(|o| o.is_of(&a)) {
            Some(open) => {
                open.records += open.pending;
                open.pending = 0.0;
                open.anomalies.push(a);
            }
            None => self.open.push(OpenIncident {
                anomalies: vec![a],
                records: volume,
                pending: 0.0,
            }),
        }
    }

    fn close(&self, open: OpenIncident) -> Option<Incident> {
        let run: Vec<&Anomaly> = open.anomalies.iter().collect();
        let incident = incident_of(&run, self.bucket_secs.max(1) * 1_000_000)?;
        lasting(&incident, open.records, &self.config.floors).then_some(incident)
    }
}

/// Whether an incident lasted long enough to report, given the records of its series in its
/// span. A new template is one event by nature.
fn lasting(incident: &Incident, records: f64, floors: &Floors) -> bool {
    if incident.detector == DetectorKind::NewTemplate {
        return true;
    }
    if incident.buckets < floors.min_incident_buckets {
        return false;
    }
    !incident.metric.starts_with("latency") || records >= floors.min_latency_records
}

fn sort_incidents(incidents: &mut [Incident]) {
    incidents.sort_by(|a, b| {
        (a.start, a.detector, &a.metric, &a.series).cmp(&(b.start, b.detector, &b.metric, &b.series))
    });
}

/// Label sets the policy watches: totals, services and hosts (not level or template splits).
fn watched_labels(key: &SeriesKey) -> bool {
    key.level.is_none() && key.template.is_none()
}

/// Starts watching each metric of `labels` from the first bucket it has a value in.
fn add_watches(labels: &mut Labels, cell: &Cell, config: &DetectConfig, bucket_secs: i64) {
    for metric in WATCHED {
        if cell.value(metric).is_none() || labels.watches.iter().any(|w| w.metric == metric) {
            continue;
        }
        let c = config.for_metric(metric.as_str());
        let judge = Judge::new(&c, metric);
        let counted = matches!(judge, Judge::Poisson(_));
        let is_volume = metric == Metric::Volume;
        // With the Poisson scan on, a host falling silent is a volume drop it judges by how
        // surprising the gap is; a fixed run of empty buckets would fire on quiet hosts.
        let silence = c.silence.enabled && !counted && is_volume && labels.host;
        labels.watches.push(Watch {
            metric,
            judge,
            gate: is_volume.then(|| MeanVolume::new(bucket_secs)),
            silence: silence.then(|| Silence::new(&c.silence, bucket_secs)),
            judged: false,
        });
    }
}

/// One bucket of one watched series. Volumes are dense: a bucket without records is 0 from
/// the series' first bucket on (a series that stopped is a drop to zero). Latencies, and error
/// rates the value detectors judge, are judged only in buckets with `Floors::min_bucket_volume`
/// records; the Poisson scan weighs each bucket by its records, so any bucket with records
/// counts.
fn judge(
    watch: &mut Watch,
    series: &str,
    ts: Timestamp,
    cell: &Cell,
    floors: &Floors,
) -> Option<Vec<Anomaly>> {
    let metric = watch.metric;
    let volume = cell.volume.unwrap_or(0.0);
    let anomaly = |detector, observed, verdict| Anomaly {
        ts,
        detector,
        metric: metric.as_str().to_owned(),
        series: series.to_owned(),
        observed,
        verdict,
    };
    let mut out = Vec::new();
    let value = match metric {
        Metric::Volume => volume,
        _ => cell.value(metric)?,
    };
    let (open, open_for_falls) = match (&mut watch.gate, &watch.judge) {
        (Some(gate), _) => {
            let open = gate.open(floors.min_mean_volume);
            let open_for_falls = gate.open(floors.min_mean_volume_for_falls);
            gate.add(volume);
            (open, open_for_falls)
        }
        (None, Judge::Poisson(_)) => (volume >= f64::MIN_POSITIVE, false),
        (None, Judge::Vote(_)) => (volume >= floors.min_bucket_volume, false),
    };
    if metric != Metric::Volume && !open {
        return None;
    }
    // Volume detectors learn from every bucket; only those past the gate are reported.
    watch.judged |= open;
    match &mut watch.judge {
        Judge::Poisson(scan) => {
            let s = if metric == Metric::ErrorRate {
                scan.judge_count(ts, cell.errors.unwrap_or(0.0), volume)
            } else {
                scan.judge_count(ts, value, 1.0)
            };
            let material = metric != Metric::ErrorRate
                || (s.count >= floors.min_errors
                    && s.observed() - s.verdict.expected >= floors.min_error_rate_rise);
            let fall = s.observed() < s.verdict.expected;
            if (open || (fall && open_for_falls)) && s.verdict.severity.is_some() && material {
                out.push(anomaly(DetectorKind::Poisson, s.observed(), s.verdict));
            }
        }
        Judge::Vote(vote) => {
            let found = vote
                .observe(ts, value)
                .filter(|(_, v)| material(metric, value, v.expected, volume, floors));
            if let (true, Some((kind, verdict))) = (open, found) {
                out.push(anomaly(kind, value, verdict));
            }
        }
    }
    if let Some(silence) = &mut watch.silence {
        let verdict = silence.observe(ts, value);
        if open && verdict.severity.is_some() {
            out.push(anomaly(DetectorKind::Silence, value, verdict));
        }
    }
    Some(out)
}

/// Everything detection found over a whole data set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detection {
    /// Anomalous buckets, in the order found.
    pub anomalies: Vec<Anomaly>,
    /// Incidents lasting enough to report, by start, then detector, metric and series.
    pub incidents: Vec<Incident>,
    /// Series judged at least once.
    pub series_watched: u64,
}

/// Batch detection: feeds a fresh [`Policy`] every bucket from the first to the last point
/// of `points` (any order) with the template sightings of each bucket (`(bucket start,
/// sighting)`), then finishes it.
pub fn replay(
    config: &DetectConfig,
    points: &[MetricPoint],
    templates: &[(Timestamp, TemplateSighting)],
) -> Result<Detection, DetectError> {
    let mut policy = Policy::new(config)?;
    let step = policy.bucket_secs();
    let mut by_bucket: BTreeMap<i64, Vec<&MetricPoint>> = BTreeMap::new();
    for p in points {
        by_bucket
            .entry(p.ts.secs().div_euclid(step) * step)
            .or_default()
            .push(p);
    }
    let mut sightings: BTreeMap<i64, Vec<TemplateSighting>> = BTreeMap::new();
    for (ts, s) in templates {
        sightings
            .entry(ts.secs().div_euclid(step) * step)
            .or_default()
            .push(s.clone());
    }
    let first = by_bucket.keys().chain(sightings.keys()).min().copied();
    let last = by_bucket.keys().chain(sightings.keys()).max().copied();
    let mut out = Detection::default();
    if let (Some(first), Some(last)) = (first, last) {
        let mut bucket = first;
        while bucket <= last {
            let points = by_bucket.get(&bucket).map_or(&[][..], Vec::as_slice);
            let seen = sightings.get(&bucket).map_or(&[][..], Vec::as_slice);
            let v = policy.step(Timestamp::from_secs(bucket), points.iter().copied(), seen);
            out.anomalies.extend(v.anomalies);
            out.incidents.extend(v.incidents);
            bucket += step;
        }
    }
    out.incidents.extend(policy.finish());
    sort_incidents(&mut out.incidents);
    out.series_watched = policy.series_watched();
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics::{MetricSeries, Observation};
    use crate::partial::MetricPartial;

    const START: i64 = 1_800_000_000 - 1_800_000_000 % 86_400;
    const MINUTES: i64 = 3 * 1440;
    const CUT: i64 = MINUTES / 2;

    /// A small deterministic generator (xorshift), so the test needs nothing else.
    struct Noise(u64);

    impl Noise {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// One record of the synthetic data set.
    struct Rec {
        minute: i64,
        host: &'static str,
        error: bool,
        latency: f64,
        template: Option<(u64, Level)>,
    }

    /// Three days of two API hosts (about 15 requests a minute each) and a batch host that is
    /// quiet (a record every few minutes, with one small burst) for a day and a half, then
    /// busy. Incidents in both halves: an error burst, a host falling silent, a slowdown, and
    /// a new template that is INFO when it first repeats and ERROR a day later.
    fn records() -> Vec<Rec> {
        let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::new();
        for minute in 0..MINUTES {
            let in_either = |from: i64, len: i64| {
                (from..from + len).contains(&minute) || (from + CUT..from + CUT + len).contains(&minute)
            };
            for host in ["api-1", "api-2"] {
                if host == "api-2" && in_either(1700, 40) {
                    continue;
                }
                let n = 12 + (noise.unit() * 7.0) as i64;
                for _ in 0..n {
                    let burst = host == "api-1" && in_either(1500, 15);
                    let error = noise.unit() < if burst { 0.4 } else { 0.01 };
                    let slow = if in_either(1900, 20) { 6.0 } else { 1.0 };
                    let latency = 40.0 * slow * (0.8 + 0.4 * noise.unit());
                    out.push(Rec {
                        minute,
                        host,
                        error,
                        latency,
                        template: None,
                    });
                }
            }
            let busy = minute >= CUT;
            let burst = (1200..1203).contains(&minute);
            let batch = if busy {
                5
            } else if burst || minute % 4 == 0 {
                if burst {
                    4
                } else {
                    1
                }
            } else {
                0
            };
            for _ in 0..batch {
                out.push(Rec {
                    minute,
                    host: "batch-01",
                    error: false,
                    latency: f64::NAN,
                    template: None,
                });
            }
            // A new template: three times at INFO in its first minutes, at ERROR a day later.
            let new_template = match minute {
                1600..=1602 => Some(Level::Info),
                m if m == 1600 + 1440 => Some(Level::Error),
                _ => None,
            };
            if let Some(level) = new_template {
                out.push(Rec {
                    minute,
                    host: "api-1",
                    error: level >= Level::Error,
                    latency: f64::NAN,
                    template: Some((0xfeed, level)),
                });
            }
        }
        out
    }

    /// The metric points and template sightings of the records before `end` (minutes).
    fn inputs(records: &[Rec], end: i64) -> (Vec<MetricPoint>, Vec<(Timestamp, TemplateSighting)>) {
        let mut metrics = MetricPartial::new(60);
        let mut sightings = Vec::new();
        for r in records.iter().filter(|r| r.minute < end) {
            let ts = Timestamp::from_secs(START + r.minute * 60);
            let service = if r.host == "batch-01" { "batch" } else { "api" };
            metrics.add(
                &Observation {
                    ts,
                    service: Some(service),
                    host: Some(r.host),
                    level: r.template.map(|(_, l)| l).or(Some(Level::Info)),
                    status: r.latency.is_finite().then_some(if r.error { 500 } else { 200 }),
                    latency_ms: r.latency.is_finite().then_some(r.latency),
                    template: r.template.map(|(t, _)| t),
                    ..Observation::default()
                },
                None,
            );
            if let Some((t, level)) = r.template {
                sightings.push((
                    ts,
                    TemplateSighting {
                        template: TemplateId(t),
                        count: 1,
                        level: Some(level),
                        service: Some(service.to_owned()),
                    },
                ));
            }
        }
        let mut series = MetricSeries::new(60);
        series.absorb(&metrics);
        (series.finish(), sightings)
    }

    fn run(end: i64) -> Detection {
        let records = records();
        let (points, sightings) = inputs(&records, end);
        replay(&DetectConfig::default(), &points, &sightings).unwrap()
    }

    fn settled(d: &Detection) -> Vec<&Incident> {
        let reach = 60 * (i64::from(Floors::default().merge_gap_buckets) + 1);
        let cut = START + CUT * 60;
        d.incidents
            .iter()
            .filter(|i| i.end.secs() + reach <= cut)
            .collect()
    }

    /// `[detect.floors]` is what the policy applies: no value or count incident lasts 10,000
    /// buckets, and a floor of zero buckets is refused.
    #[test]
    fn floors_come_from_the_config() {
        let records = records();
        let (points, sightings) = inputs(&records, MINUTES);
        let lasting = |d: &Detection| {
            d.incidents
                .iter()
                .filter(|i| i.detector != DetectorKind::NewTemplate)
                .count()
        };
        let default = replay(&DetectConfig::default(), &points, &sightings).unwrap();
        assert!(lasting(&default) > 0);
        let mut strict = DetectConfig::default();
        strict.floors.min_incident_buckets = 10_000;
        assert_eq!(lasting(&replay(&strict, &points, &sightings).unwrap()), 0);
        strict.floors.min_incident_buckets = 0;
        let err = strict.validate().unwrap_err().to_string();
        assert!(err.contains("floors.min_incident_buckets"), "{err}");
    }

    /// The verdicts on the first half of a data set do not depend on the second half: every
    /// anomalous bucket before the cut, and every incident that ended before it (and could
    /// not have grown), are the same with or without the rest of the data.
    #[test]
    fn first_half_verdicts_do_not_depend_on_the_second_half() {
        let whole = run(MINUTES);
        let half = run(CUT);
        let cut = Timestamp::from_secs(START + CUT * 60);
        let early: Vec<&Anomaly> = whole.anomalies.iter().filter(|a| a.ts < cut).collect();
        assert_eq!(early, half.anomalies.iter().collect::<Vec<_>>());
        assert_eq!(settled(&whole), settled(&half));
        let found: Vec<(&str, &str, &str)> = settled(&half)
            .iter()
            .map(|i| (i.detector.as_str(), i.metric.as_str(), i.series.as_str()))
            .collect();
        // The first half's incidents are all found (and nothing on the quiet batch host).
        for want in [
            ("poisson", "error_rate", "service=api,host=api-1"),
            ("poisson", "volume", "service=api,host=api-2"),
            ("ensemble", "latency_gmean", "service=api"),
            (
                "new_template",
                "template_count",
                "service=api,template=000000000000feed",
            ),
        ] {
            assert!(found.contains(&want), "{want:?} not in {found:?}");
        }
        assert!(found.iter().all(|f| !f.2.contains("batch")), "{found:?}");
    }

    /// A new template is graded by its level when it was confirmed (INFO), not by the ERROR it
    /// shows a day later.
    #[test]
    fn a_new_template_is_graded_when_confirmed() {
        let whole = run(MINUTES);
        let hits: Vec<&Incident> = whole
            .incidents
            .iter()
            .filter(|i| i.detector == DetectorKind::NewTemplate)
            .collect();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].severity, super::super::Severity::Info);
        assert_eq!(hits[0].start, Timestamp::from_secs(START + 1602 * 60));
    }

    /// The quiet host's volume is not judged while its mean is under one record a bucket,
    /// even though the series is busy later: a whole-series mean would have judged its burst.
    #[test]
    fn the_volume_gate_uses_only_the_past() {
        let whole = run(MINUTES);
        let cut = Timestamp::from_secs(START + CUT * 60);
        assert!(!whole
            .anomalies
            .iter()
            .any(|a| a.series.contains("batch-01") && a.ts < cut));
        assert_eq!(whole.series_watched, run(MINUTES).series_watched);
    }

    /// Feeding buckets one at a time is the batch replay: same anomalies, same incidents.
    #[test]
    fn stepping_bucket_by_bucket_is_the_replay() {
        let records = records();
        let (points, sightings) = inputs(&records, MINUTES);
        let config = DetectConfig::default();
        let batch = replay(&config, &points, &sightings).unwrap();
        let mut by_ts: BTreeMap<Timestamp, Vec<&MetricPoint>> = BTreeMap::new();
        for p in &points {
            by_ts.entry(p.ts).or_default().push(p);
        }
        let mut policy = Policy::new(&config).unwrap();
        let mut streamed = Detection::default();
        for minute in 0..MINUTES {
            let ts = Timestamp::from_secs(START + minute * 60);
            let seen: Vec<TemplateSighting> = sightings
                .iter()
                .filter(|(t, _)| *t == ts)
                .map(|(_, s)| s.clone())
                .collect();
            let here = by_ts.get(&ts).map_or(&[][..], Vec::as_slice);
            let v = policy.step(ts, here.iter().copied(), &seen);
            streamed.anomalies.extend(v.anomalies);
            streamed.incidents.extend(v.incidents);
        }
        streamed.incidents.extend(policy.finish());
        sort_incidents(&mut streamed.incidents);
        assert_eq!(streamed.anomalies, batch.anomalies);
        assert_eq!(streamed.incidents, batch.incidents);
    }

    /// A driver can save the state mid-stream (as JSON) and resume from it: the verdicts are
    /// those of an uninterrupted run.
    #[test]
    fn saved_state_resumes_where_it_was() {
        let records = records();
        let (points, sightings) = inputs(&records, MINUTES);
        let config = DetectConfig::default();
        let batch = replay(&config, &points, &sightings).unwrap();
        let mut by_ts: BTreeMap<Timestamp, Vec<&MetricPoint>> = BTreeMap::new();
        for p in &points {
            by_ts.entry(p.ts).or_default().push(p);
        }
        let mut policy = Policy::new(&config).unwrap();
        let mut resumed = Detection::default();
        for minute in 0..MINUTES {
            if minute == CUT {
                let saved = serde_json::to_string(&policy).unwrap();
                policy = serde_json::from_str(&saved).unwrap();
            }
            let ts = Timestamp::from_secs(START + minute * 60);
            let seen: Vec<TemplateSighting> = sightings
                .iter()
                .filter(|(t, _)| *t == ts)
                .map(|(_, s)| s.clone())
                .collect();
            let here = by_ts.get(&ts).map_or(&[][..], Vec::as_slice);
            let v = policy.step(ts, here.iter().copied(), &seen);
            resumed.anomalies.extend(v.anomalies);
            resumed.incidents.extend(v.incidents);
        }
        resumed.incidents.extend(policy.finish());
        sort_incidents(&mut resumed.incidents);
        assert_eq!(resumed.anomalies, batch.anomalies);
        assert_eq!(resumed.incidents, batch.incidents);
    }

    #[test]
    fn materiality_floors() {
        assert!(material(Metric::ErrorRate, 0.3, 0.01, 20.0, &Floors::default()));
        assert!(!material(Metric::ErrorRate, 0.3, 0.01, 5.0, &Floors::default())); // 1.5 errors
        assert!(!material(
            Metric::LatencyGmean,
            120.0,
            50.0,
            100.0,
            &Floors::default()
        ));
        assert!(material(Metric::Volume, 4.0, 10.0, 4.0, &Floors::default()));
    }

    /// A series keeps its slot whichever shared key its points carry, and keys of past days
    /// are let go: the map by address stays bounded while slots stay put.
    #[test]
    fn slots_follow_labels_not_addresses() {
        let key = |service: &str| SeriesKey {
            service: Some(service.to_owned()),
            ..SeriesKey::default()
        };
        let mut slots = Slots::default();
        let api = slots.slot_of_shared(&Arc::new(key("api")));
        let db = slots.slot_of_shared(&Arc::new(key("db")));
        assert_ne!(api, db);
        for day in 0..2000 {
            // A new day's keys: new allocations, the same labels (and a new series now and then).
            let (a, d) = (Arc::new(key("api")), Arc::new(key("db")));
            assert_eq!((slots.slot_of_shared(&a), slots.slot_of_shared(&d)), (api, db));
            assert_eq!(slots.slot_of_shared(&a), api);
            if day % 500 == 0 {
                slots.slot_of_shared(&Arc::new(key(&format!("svc-{day}"))));
            }
        }
        assert_eq!(slots.names.len(), 6);
        assert!(slots.by_address.len() <= 4 * slots.names.len() + 1024 + 2);
    }
}
