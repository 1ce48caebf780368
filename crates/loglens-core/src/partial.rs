//! Metric partials: everything records contribute to `metrics/` and `rollups/`, bucketed once,
//! at the finest grain either needs. Partials merge associatively and commutatively, so workers
//! (threads, Dask or Ray tasks, serve's flushes) each build one and a driver merges them;
//! completed buckets leave by watermark ([`MetricPartial::take_completed`]).
//!
//! Why one structure? Metric series (total, per service, per host, per (service, level), per
//! template) and rollup rows (counts by every label at once) are sums of the same cells: a cell
//! per (bucket, service, host, level, source, status class) holds records, errors and bytes, a
//! cell per (bucket, service, host) the latencies, and a cell per (bucket, template, labels) the
//! template counts. Series are summed from the cells when they leave, not kept per record.
//!
//! Why interned labels? A record's labels become small integer ids, so adding one allocates
//! nothing once its labels are known; strings are materialized only when rows or points leave.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::sync::Arc;

// FxHash: the keys are small integers and interned ids, not attacker-chosen text worth SipHash.
use rustc_hash::FxHashMap as HashMap;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use crate::metrics::{Observation, SeriesCell, SeriesKey};
use crate::record::Level;
use crate::rollup::{CountRow, DayRollups, LatencyRow, TemplateRow};
use crate::sketch::LatencySketch;
use crate::time::Timestamp;

const SECS_PER_DAY: i64 = 86_400;
const US_PER_SEC: i64 = 1_000_000;

/// The version of the serialized form; a partial of another version is refused, not guessed at.
pub const PARTIAL_VERSION: u32 = 3;

/// Why partials could not be merged or restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartialError {
    /// The two partials bucket time differently.
    #[error("cannot merge metric partials with {0} s and {1} s buckets")]
    BucketWidth(i64, i64),
    /// A serialized partial of an unknown version.
    #[error("metric partial version {0} is not supported (expected {PARTIAL_VERSION})")]
    Version(u32),
    /// A serialized partial that refers to a label or level it does not hold.
    #[error("metric partial is inconsistent: {0}")]
    Invalid(&'static str),
}

/// Index of an interned label (service, host or source value).
type LabelId = u32;

/// Label values, each stored once, known by a small id.
#[derive(Debug, Clone, Default)]
struct LabelInterner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, LabelId>,
}

impl LabelInterner {
    fn intern(&mut self, name: &str) -> LabelId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = LabelId::try_from(self.names.len()).unwrap_or(LabelId::MAX);
        let name: Arc<str> = Arc::from(name);
        self.names.push(Arc::clone(&name));
        self.ids.insert(name, id);
        id
    }

    /// Each id's rank among the names in sorted order.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_unstable_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        let mut rank = vec![0; self.names.len()];
        for (r, id) in order.into_iter().enumerate() {
            rank[id] = u32::try_from(r).unwrap_or(u32::MAX);
        }
        rank
    }

    fn name(&self, id: Option<LabelId>) -> Option<&str> {
        id.and_then(|id| self.names.get(id as usize)).map(|n| &**n)
    }
}

/// The labels of a record, interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Labels {
    service: Option<LabelId>,
    host: Option<LabelId>,
    level: Option<Level>,
    source: Option<LabelId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct CountKey {
    bucket: i64,
    labels: Labels,
    status_class: Option<u16>,
}

/// Records, errors and response bytes of one count cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CountCell {
    records: u64,
    errors: u64,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct TemplateKey {
    bucket: i64,
    template: u64,
    labels: Labels,
}

/// Records and errors of one template cell, and the first and last record time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TemplateCell {
    records: u64,
    errors: u64,
    first: Timestamp,
    last: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct LatencyKey {
    bucket: i64,
    service: Option<LabelId>,
    host: Option<LabelId>,
}

/// One template's records in one bucket, with the worst level among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateBucket {
    /// Bucket start, seconds.
    pub bucket: i64,
    /// Template id.
    pub template: u64,
    /// Records.
    pub records: u64,
    /// The worst level among them, if any has one.
    pub worst: Option<Level>,
}

/// The labels of one metric series, interned (see [`SeriesKey`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
struct SeriesIds {
    service: Option<LabelId>,
    host: Option<LabelId>,
    level: Option<Level>,
    template: Option<u64>,
}

/// What a set of records contributes to the metric series and the rollups, per bucket: add
/// records, merge partials, take completed buckets out, and turn them into rows and points.
///
/// Two partials are equal when they hold the same cells, whatever order their labels were
/// interned in.
///
/// ```
/// use loglens_core::metrics::{MetricSeries, Observation};
/// use loglens_core::partial::MetricPartial;
/// use loglens_core::Timestamp;
///
/// let record = |secs, service| Observation {
///     ts: Timestamp::from_secs(secs),
///     service: Some(service),
///     latency_ms: Some(12.5),
///     ..Observation::default()
/// };
/// // Two workers, one partial each; the driver merges them.
/// let (mut a, mut b) = (MetricPartial::new(60), MetricPartial::new(60));
/// a.add(&record(5, "api"), Some("a.log"));
/// b.add(&record(70, "db"), Some("b.log"));
/// a.merge(b)?;
/// // The first minute is complete once the watermark passes its end.
/// let done = a.take_completed(Timestamp::from_secs(60));
/// assert_eq!(done.rollups().next().map(|day| day.counts.len()), Some(1));
/// let mut series = MetricSeries::new(60);
/// series.absorb(&done);
/// assert_eq!(series.span(), Some((0, 0)));
/// # Ok::<(), loglens_core::partial::PartialError>(())
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Snapshot")]
pub struct MetricPartial {
    bucket_secs: i64,
    labels: LabelInterner,
    counts: HashMap<CountKey, CountCell>,
    templates: HashMap<TemplateKey, TemplateCell>,
    /// The latencies of each (bucket, service, host) as a sketch, which the metrics and the
    /// latency rollups read: exact values per cell grew with the records (125 MB for 10M lines)
    /// where a sketch holds a few dozen bins.
    latency: HashMap<LatencyKey, LatencySketch>,
    /// The oldest bucket held (every record has a count cell), so a watermark that completes
    /// nothing costs nothing.
    oldest: Option<i64>,
    /// The latest record time ever added (kept by [`MetricPartial::take_completed`]): where a
    /// detector's watermark comes from.
    latest: Option<Timestamp>,
}

impl MetricPartial {
    /// An empty partial over buckets `bucket_secs` wide (at least 1; a day should be a whole
    /// number of buckets, or a bucket straddling midnight is split between two days' rollups).
    pub fn new(bucket_secs: i64) -> Self {
        MetricPartial {
            bucket_secs: bucket_secs.max(1),
            labels: LabelInterner::default(),
            counts: HashMap::default(),
            templates: HashMap::default(),
            latency: HashMap::default(),
            oldest: None,
            latest: None,
        }
    }

    /// The bucket width, seconds.
    pub fn bucket_secs(&self) -> i64 {
        self.bucket_secs
    }

    /// The start (seconds) of the bucket holding `ts`.
    pub fn bucket_of(&self, ts: Timestamp) -> i64 {
        ts.secs().div_euclid(self.bucket_secs) * self.bucket_secs
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Cells held, of every kind: what merging this partial into another costs, and what a
    /// driver sizes its stretches by.
    pub fn cells(&self) -> usize {
        self.counts.len() + self.templates.len() + self.latency.len()
    }

    /// The latest record time added, if any.
    pub fn latest(&self) -> Option<Timestamp> {
        self.latest
    }

    /// Records held.
    pub fn records(&self) -> u64 {
        self.counts.values().map(|c| c.records).sum()
    }

    /// The oldest bucket start (seconds) held, if any.
    pub fn oldest(&self) -> Option<i64> {
        self.oldest
    }

    /// Moves the template cells of ids written on records to the template each belongs to now
    /// (`canonical` maps an id to its current one), merging cells that meet.
    pub fn remap_templates(&mut self, canonical: impl Fn(u64) -> u64) {
        // Only the cells whose template moves leave the map: rebuilding it whole held two
        // copies of a week's cells at once (a third of `detect`'s peak).
        let mut moved = Vec::new();
        self.templates.retain(|k, c| {
            let template = canonical(k.template);
            if template != k.template {
                moved.push((TemplateKey { template, ..*k }, *c));
            }
            template == k.template
        });
        for (key, c) in moved {
            self.templates
                .entry(key)
                .and_modify(|cell| cell.absorb(&c))
                .or_insert(c);
        }
    }

    /// Each template's records per bucket with the worst level among them (what the
    /// new-template detector is fed), sorted by bucket then template.
    pub fn template_buckets(&self) -> Vec<TemplateBucket> {
        let mut by: BTreeMap<(i64, u64), (u64, Option<Level>)> = BTreeMap::new();
        for (k, c) in &self.templates {
            let e = by.entry((k.bucket, k.template)).or_default();
            e.0 += c.records;
            e.1 = e.1.max(k.labels.level);
        }
        (by.into_iter())
            .map(|((bucket, template), (records, worst))| TemplateBucket {
                bucket,
                template,
                records,
                worst,
            })
            .collect()
    }

    /// Adds one record, read from `source` (the file or listener).
    pub fn add(&mut self, o: &Observation<'_>, source: Option<&str>) {
        let bucket = self.bucket_of(o.ts);
        self.oldest = Some(self.oldest.map_or(bucket, |b| b.min(bucket)));
        self.latest = Some(self.latest.map_or(o.ts, |t| t.max(o.ts)));
        let labels = Labels {
            service: o.service.map(|s| self.labels.intern(s)),
            host: o.host.map(|h| self.labels.intern(h)),
            level: o.level,
            source: source.map(|s| self.labels.intern(s)),
        };
        let errors = u64::from(o.is_error());
        let key = CountKey {
            bucket,
            labels,
            status_class: o.status.map(|s| s / 100),
        };
        let cell = self.counts.entry(key).or_default();
        cell.records += 1;
        cell.errors += errors;
        cell.bytes += o.bytes.unwrap_or(0);
        if let Some(template) = o.template {
            let one = TemplateCell {
                records: 1,
                errors,
                first: o.ts,
                last: o.ts,
            };
            let key = TemplateKey {
                bucket,
                template,
                labels,
            };
            self.templates
                .entry(key)
                .and_modify(|cell| cell.absorb(&one))
                .or_insert(one);
        }
        if let Some(ms) = o.latency_ms {
            let key = LatencyKey {
                bucket,
                service: labels.service,
                host: labels.host,
            };
            self.latency.entry(key).or_default().add(ms);
        }
    }

    /// Adds everything `other` holds. Associative and commutative: counts and sums add, first
    /// and last times take the min and max, sketches add bin by bin.
    pub fn merge(&mut self, other: MetricPartial) -> Result<(), PartialError> {
        if self.bucket_secs != other.bucket_secs {
            return Err(PartialError::BucketWidth(self.bucket_secs, other.bucket_secs));
        }
        let mut other = other;
        // Merging is commutative: fold the smaller into the larger, which is then not copied.
        if self.cells() < other.cells() {
            std::mem::swap(self, &mut other);
        }
        self.oldest = match (self.oldest, other.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.latest = self.latest.max(other.latest);
        let ids: Vec<LabelId> = other.labels.names.iter().map(|n| self.labels.intern(n)).collect();
        let id = |old: Option<LabelId>| old.and_then(|i| ids.get(i as usize).copied());
        let labels = |l: Labels| Labels {
            service: id(l.service),
            host: id(l.host),
            level: l.level,
            source: id(l.source),
        };
        for (k, c) in other.counts {
            let key = CountKey {
                labels: labels(k.labels),
                ..k
            };
            let cell = self.counts.entry(key).or_default();
            cell.records += c.records;
            cell.errors += c.errors;
            cell.bytes += c.bytes;
        }
        for (k, c) in other.templates {
            let key = TemplateKey {
                labels: labels(k.labels),
                ..k
            };
            self.templates
                .entry(key)
                .and_modify(|cell| cell.absorb(&c))
                .or_insert(c);
        }
        for (k, c) in other.latency {
            let key = LatencyKey {
                service: id(k.service),
                host: id(k.host),
                ..k
            };
            self.latency.entry(key).or_default().merge(&c);
        }
        Ok(())
    }

    /// Removes and returns the buckets that end at or before `watermark`, which no later record
    /// may change. A record older than a watermark already passed still adds (to a bucket handed
    /// out again by the next call), so readers sum what they are handed.
    pub fn take_completed(&mut self, watermark: Timestamp) -> MetricPartial {
        let width_us = self.bucket_secs.saturating_mul(US_PER_SEC);
        let done = |bucket: i64| bucket.saturating_mul(US_PER_SEC).saturating_add(width_us) <= watermark.0;
        if !self.oldest.is_some_and(done) {
            return MetricPartial::new(self.bucket_secs);
        }
        let mut taken = MetricPartial {
            bucket_secs: self.bucket_secs,
            labels: self.labels.clone(),
            counts: split_off(&mut self.counts, |k| done(k.bucket)),
            templates: split_off(&mut self.templates, |k| done(k.bucket)),
            latency: split_off(&mut self.latency, |k| done(k.bucket)),
            oldest: self.oldest,
            latest: self.latest,
        };
        self.oldest = self.counts.keys().map(|k| k.bucket).min();
        taken.oldest = taken.counts.keys().map(|k| k.bucket).min();
        taken
    }

    /// The first and last bucket start (seconds), if anything was added.
    pub fn span(&self) -> Option<(i64, i64)> {
        let buckets = self.counts.keys().map(|k| k.bucket);
        Some((buckets.clone().min()?, buckets.max()?))
    }

    /// The rollup rows by day (UTC), oldest first, in chunks of at most [`ROLLUP_CHUNK`] rows of
    /// each kind (a dense day comes in several chunks); rows sorted by bucket then label
    /// values, so equal partials give equal rows. Chunks are built as the iterator is driven,
    /// so a partial's rows are never all in memory at once.
    pub fn rollups(&self) -> RollupDays<'_> {
        // Sorting by label ranks sorts by label values without comparing strings.
        let rank = self.labels.ranks();
        let rank = |id: Option<LabelId>| id.and_then(|i| rank.get(i as usize).copied());
        let labels = |l: Labels| (rank(l.service), rank(l.host), l.level, rank(l.source));
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort_unstable_by_key(|(k, _)| (k.bucket, labels(k.labels), k.status_class));
        let mut templates: Vec<_> = self.templates.iter().collect();
        templates.sort_unstable_by_key(|(k, _)| (k.bucket, k.template, labels(k.labels)));
        let mut latency: Vec<_> = self.latency.iter().collect();
        latency.sort_unstable_by_key(|(k, _)| (k.bucket, rank(k.service), rank(k.host)));
        RollupDays {
            partial: self,
            counts: counts.into_iter().peekable(),
            templates: templates.into_iter().peekable(),
            latency: latency.into_iter().peekable(),
        }
    }

    /// The cells of every metric series, summed from this partial's cells, each series' cells
    /// in bucket order: total, per service, per (service, host) and per (service, level) from
    /// the counts (latency for the first three: it is not split by level), and per template.
    pub fn series(&self) -> Vec<(SeriesKey, Vec<(i64, SeriesCell)>)> {
        // Sized once: a cell per count and template key and about a third more for the coarser
        // series (the demo's days: 97k cells for 34k counts and 51k templates). Grown by
        // doubling, each smaller table was faulted in and copied: a sixth of detect's faults.
        let expected = self.counts.len() + self.counts.len() / 2 + self.templates.len();
        let mut cells: HashMap<(SeriesIds, i64), SeriesCell> =
            HashMap::with_capacity_and_hasher(expected, Default::default());
        let families = |service: Option<LabelId>, host: Option<LabelId>, level: Option<Level>| {
            let per_service = SeriesIds {
                service,
                ..SeriesIds::default()
            };
            [
                Some(SeriesIds::default()),
                service.map(|_| per_service),
                host.map(|_| SeriesIds { host, ..per_service }),
                level.map(|_| SeriesIds { level, ..per_service }),
            ]
        };
        for (k, c) in &self.counts {
            let l = k.labels;
            for ids in families(l.service, l.host, l.level).into_iter().flatten() {
                let cell = cells.entry((ids, k.bucket)).or_default();
                cell.volume += c.records;
                cell.errors += c.errors;
                cell.bytes += c.bytes;
            }
        }
        for (k, c) in &self.latency {
            for ids in families(k.service, k.host, None).into_iter().flatten() {
                cells.entry((ids, k.bucket)).or_default().latency.merge(c);
            }
        }
        for (k, c) in &self.templates {
            let ids = SeriesIds {
                template: Some(k.template),
                ..SeriesIds::default()
            };
            cells.entry((ids, k.bucket)).or_default().volume += c.records;
        }
        let mut by_series: HashMap<SeriesIds, Vec<(i64, SeriesCell)>> = HashMap::default();
        for ((ids, bucket), cell) in cells {
            by_series.entry(ids).or_default().push((bucket, cell));
        }
        (by_series.into_iter())
            .map(|(ids, mut cells)| {
                cells.sort_unstable_by_key(|&(bucket, _)| bucket);
                let key = SeriesKey {
                    service: self.label(ids.service),
                    host: self.label(ids.host),
                    level: ids.level,
                    template: ids.template,
                };
                (key, cells)
            })
            .collect()
    }

    fn label(&self, id: Option<LabelId>) -> Option<String> {
        self.labels.name(id).map(str::to_owned)
    }

    /// A label value shared with the interner (rollup rows are millions; their labels a few).
    fn shared_label(&self, id: Option<LabelId>) -> Option<Arc<str>> {
        id.and_then(|id| self.labels.names.get(id as usize)).cloned()
    }

    /// The cells keyed by label values rather than ids, for comparing partials.
    fn normalized(&self) -> Normalized<'_> {
        let name = |id| self.labels.name(id);
        let labels = |l: Labels| (name(l.service), name(l.host), l.level, name(l.source));
        Normalized {
            bucket_secs: self.bucket_secs,
            latest: self.latest,
            counts: (self.counts.iter())
                .map(|(k, &c)| ((k.bucket, labels(k.labels), k.status_class), c))
                .collect(),
            templates: (self.templates.iter())
                .map(|(k, &c)| ((k.bucket, k.template, labels(k.labels)), c))
                .collect(),
            latency: (self.latency.iter())
                .map(|(k, c)| ((k.bucket, name(k.service), name(k.host)), c))
                .collect(),
        }
    }
}

type NamedLabels<'a> = (Option<&'a str>, Option<&'a str>, Option<Level>, Option<&'a str>);

#[derive(PartialEq)]
struct Normalized<'a> {
    bucket_secs: i64,
    latest: Option<Timestamp>,
    counts: BTreeMap<(i64, NamedLabels<'a>, Option<u16>), CountCell>,
    templates: BTreeMap<(i64, u64, NamedLabels<'a>), TemplateCell>,
    latency: BTreeMap<(i64, Option<&'a str>, Option<&'a str>), &'a LatencySketch>,
}

impl PartialEq for MetricPartial {
    fn eq(&self, other: &Self) -> bool {
        self.normalized() == other.normalized()
    }
}

/// Rows of each kind per chunk of [`MetricPartial::rollups`].
pub const ROLLUP_CHUNK: usize = 64 * 1024;

/// The rollup rows of a [`MetricPartial`], a chunk of a day at a time (see
/// [`MetricPartial::rollups`]).
pub struct RollupDays<'a> {
    partial: &'a MetricPartial,
    counts: Peekable<std::vec::IntoIter<(&'a CountKey, &'a CountCell)>>,
    templates: Peekable<std::vec::IntoIter<(&'a TemplateKey, &'a TemplateCell)>>,
    latency: Peekable<std::vec::IntoIter<(&'a LatencyKey, &'a LatencySketch)>>,
}

impl Iterator for RollupDays<'_> {
    type Item = DayRollups;

    fn next(&mut self) -> Option<DayRollups> {
        let day_of = |bucket: i64| bucket.div_euclid(SECS_PER_DAY);
        let day = [
            self.counts.peek().map(|(k, _)| day_of(k.bucket)),
            self.templates.peek().map(|(k, _)| day_of(k.bucket)),
            self.latency.peek().map(|(k, _)| day_of(k.bucket)),
        ]
        .into_iter()
        .flatten()
        .min()?;
        let p = self.partial;
        let mut out = DayRollups {
            day,
            bucket_secs: p.bucket_secs,
            ..DayRollups::default()
        };
        let room = |rows: usize| rows < ROLLUP_CHUNK;
        while let Some((k, c)) =
            (self.counts).next_if(|(k, _)| room(out.counts.len()) && day_of(k.bucket) == day)
        {
            out.counts.push(CountRow {
                ts: Timestamp::from_secs(k.bucket),
                service: p.shared_label(k.labels.service),
                host: p.shared_label(k.labels.host),
                level: k.labels.level,
                source: p.shared_label(k.labels.source),
                status_class: k.status_class,
                records: c.records,
                errors: c.errors,
            });
        }
        while let Some((k, c)) =
            (self.templates).next_if(|(k, _)| room(out.templates.len()) && day_of(k.bucket) == day)
        {
            out.templates.push(TemplateRow {
                ts: Timestamp::from_secs(k.bucket),
                template_id: k.template,
                service: p.shared_label(k.labels.service),
                host: p.shared_label(k.labels.host),
                level: k.labels.level,
                source: p.shared_label(k.labels.source),
                records: c.records,
                errors: c.errors,
                first_ts: c.first,
                last_ts: c.last,
            });
        }
        while let Some((k, c)) =
            (self.latency).next_if(|(k, _)| room(out.latency.len()) && day_of(k.bucket) == day)
        {
            let (service, host) = (p.shared_label(k.service), p.shared_label(k.host));
            for (latency_ms, records) in c.bins() {
                out.latency.push(LatencyRow {
                    ts: Timestamp::from_secs(k.bucket),
                    service: service.clone(),
                    host: host.clone(),
                    latency_ms,
                    records,
                });
            }
        }
        Some(out)
    }
}

impl TemplateCell {
    fn absorb(&mut self, other: &TemplateCell) {
        self.records += other.records;
        self.errors += other.errors;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

/// Removes and returns the entries of `map` for which `take` holds; leaves `map` untouched (no
/// rehash) when there are none, the common case between watermarks. Whichever side is smaller
/// is moved out, so memory never holds the map twice (a driver taking a whole day out of a
/// partial of one day takes nearly every entry).
fn split_off<K: Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    take: impl Fn(&K) -> bool,
) -> HashMap<K, V> {
    let taking = map.keys().filter(|k| take(k)).count();
    if taking == 0 {
        return HashMap::default();
    }
    if taking * 2 <= map.len() {
        return map.extract_if(|k, _| take(k)).collect();
    }
    let kept: HashMap<K, V> = map.extract_if(|k, _| !take(k)).collect();
    std::mem::replace(map, kept)
}

// The serialized form: label names once, then cells as flat rows keyed by label ids, sorted
// so equal partials serialize alike.

#[derive(Deserialize)]
struct Snapshot {
    version: u32,
    bucket_secs: i64,
    latest_us: Option<i64>,
    labels: Vec<String>,
    counts: Vec<CountEntry>,
    templates: Vec<TemplateEntry>,
    latency: Vec<LatencyEntry>,
}

#[derive(Serialize, Deserialize)]
struct LabelEntry {
    service: Option<LabelId>,
    host: Option<LabelId>,
    /// Index into [`Level::ALL`].
    level: Option<u8>,
    source: Option<LabelId>,
}

#[derive(Serialize, Deserialize)]
struct CountEntry {
    bucket: i64,
    labels: LabelEntry,
    status_class: Option<u16>,
    records: u64,
    errors: u64,
    bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct TemplateEntry {
    bucket: i64,
    template: u64,
    labels: LabelEntry,
    records: u64,
    errors: u64,
    first_us: i64,
    last_us: i64,
}

#[derive(Serialize, Deserialize)]
struct LatencyEntry<Sketch = LatencySketch> {
    bucket: i64,
    service: Option<LabelId>,
    host: Option<LabelId>,
    sketch: Sketch,
}

impl From<Labels> for LabelEntry {
    fn from(l: Labels) -> Self {
        LabelEntry {
            service: l.service,
            host: l.host,
            level: l
                .level
                .and_then(|level| Level::ALL.iter().position(|&x| x == level))
                .map(|i| i as u8),
            source: l.source,
        }
    }
}

impl LabelEntry {
    fn labels(&self, known: usize) -> Result<Labels, PartialError> {
        let id = |id: Option<LabelId>| match id {
            Some(i) if i as usize >= known => Err(PartialError::Invalid("label id out of range")),
            _ => Ok(id),
        };
        let level = match self.level {
            Some(i) => Some(
                *Level::ALL
                    .get(usize::from(i))
                    .ok_or(PartialError::Invalid("level index out of range"))?,
            ),
            None => None,
        };
        Ok(Labels {
            service: id(self.service)?,
            host: id(self.host)?,
            level,
            source: id(self.source)?,
        })
    }
}

/// Serialized as a [`Snapshot`], written straight from the maps: saving a partial of millions
/// of cells costs a sorted list of references, not a copy of the partial.
impl Serialize for MetricPartial {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.sorted().whole().serialize(serializer)
    }
}

impl MetricPartial {
    /// The cells in the order they are serialized in (by bucket first), sorted once, to be
    /// written whole or a run of days at a time.
    pub fn sorted(&self) -> SortedCells<'_> {
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort_unstable_by_key(|&(k, _)| *k);
        let mut templates: Vec<_> = self.templates.iter().collect();
        templates.sort_unstable_by_key(|&(k, _)| *k);
        let mut latency: Vec<_> = self.latency.iter().collect();
        latency.sort_unstable_by_key(|&(k, _)| *k);
        SortedCells {
            partial: self,
            counts,
            templates,
            latency,
        }
    }
}

/// A partial's cells sorted by key (see [`MetricPartial::sorted`]).
pub struct SortedCells<'a> {
    partial: &'a MetricPartial,
    counts: Vec<(&'a CountKey, &'a CountCell)>,
    templates: Vec<(&'a TemplateKey, &'a TemplateCell)>,
    latency: Vec<(&'a LatencyKey, &'a LatencySketch)>,
}

/// Some of a partial's sorted cells, serialized as a partial of their own: the whole
/// partial's labels and latest time with the cells of a run of days (UTC).
pub struct CellRange<'a> {
    partial: &'a MetricPartial,
    counts: &'a [(&'a CountKey, &'a CountCell)],
    templates: &'a [(&'a TemplateKey, &'a TemplateCell)],
    latency: &'a [(&'a LatencyKey, &'a LatencySketch)],
}

impl<'a> SortedCells<'a> {
    /// Every cell.
    pub fn whole(&self) -> CellRange<'_> {
        CellRange {
            partial: self.partial,
            counts: &self.counts,
            templates: &self.templates,
            latency: &self.latency,
        }
    }

    /// The cells cut into runs of whole days (UTC; a bucket goes with the day it starts on),
    /// each with its first day (since 1970-01-01) and at least `min_cells` cells unless it is
    /// the last: sparse days share a run rather than leave a small one each. Days come from
    /// the count cells (every record has one); the last run takes whatever follows them.
    pub fn by_days(&self, min_cells: usize) -> Vec<(i64, CellRange<'_>)> {
        let day_of = |bucket: i64| bucket.div_euclid(SECS_PER_DAY);
        let mut runs = Vec::new();
        let (mut from, mut to) = ((0, 0, 0), (0, 0, 0));
        while let Some((key, _)) = self.counts.get(to.0) {
            let day = day_of(key.bucket);
            // Sorted by bucket first: each list holds the earlier days' cells, then this day's.
            to = (
                self.counts.partition_point(|(k, _)| day_of(k.bucket) <= day),
                self.templates.partition_point(|(k, _)| day_of(k.bucket) <= day),
                self.latency.partition_point(|(k, _)| day_of(k.bucket) <= day),
            );
            let last = to.0 == self.counts.len();
            if last {
                (to.1, to.2) = (self.templates.len(), self.latency.len());
            }
            if (to.0 - from.0) + (to.1 - from.1) + (to.2 - from.2) < min_cells && !last {
                continue;
            }
            // The run's first day is its first count cell's.
            let first = self.counts.get(from.0).map_or(day, |(k, _)| day_of(k.bucket));
            runs.push((
                first,
                CellRange {
                    partial: self.partial,
                    counts: &self.counts[from.0..to.0],
                    templates: &self.templates[from.1..to.1],
                    latency: &self.latency[from.2..to.2],
                },
            ));
            from = to;
        }
        runs
    }
}

impl Serialize for CellRange<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.partial;
        let mut snapshot = serializer.serialize_struct("Snapshot", 7)?;
        snapshot.serialize_field("version", &PARTIAL_VERSION)?;
        snapshot.serialize_field("bucket_secs", &p.bucket_secs)?;
        snapshot.serialize_field("latest_us", &p.latest.map(|t| t.0))?;
        snapshot.serialize_field("labels", &SeqOf(|| p.labels.names.iter().map(|n| &**n)))?;
        let count_entry = |&(k, c): &(&CountKey, &CountCell)| CountEntry {
            bucket: k.bucket,
            labels: k.labels.into(),
            status_class: k.status_class,
            records: c.records,
            errors: c.errors,
            bytes: c.bytes,
        };
        snapshot.serialize_field("counts", &SeqOf(|| self.counts.iter().map(count_entry)))?;
        let template_entry = |&(k, c): &(&TemplateKey, &TemplateCell)| TemplateEntry {
            bucket: k.bucket,
            template: k.template,
            labels: k.labels.into(),
            records: c.records,
            errors: c.errors,
            first_us: c.first.0,
            last_us: c.last.0,
        };
        snapshot.serialize_field("templates", &SeqOf(|| self.templates.iter().map(template_entry)))?;
        // The sketch by reference: serde writes a `&T` as the `T` a snapshot reads back.
        let latency = SeqOf(|| {
            (self.latency.iter()).map(|&(k, sketch)| LatencyEntry {
                bucket: k.bucket,
                service: k.service,
                host: k.host,
                sketch,
            })
        });
        snapshot.serialize_field("latency", &latency)?;
        snapshot.end()
    }
}

/// A sequence serialized from the iterator its function makes.
struct SeqOf<F>(F);

impl<F, I> Serialize for SeqOf<F>
where
    F: Fn() -> I,
    I: IntoIterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

impl TryFrom<Snapshot> for MetricPartial {
    type Error = PartialError;

    fn try_from(s: Snapshot) -> Result<Self, PartialError> {
        if s.version != PARTIAL_VERSION {
            return Err(PartialError::Version(s.version));
        }
        if s.bucket_secs < 1 {
            return Err(PartialError::Invalid("bucket_secs below 1"));
        }
        let mut p = MetricPartial::new(s.bucket_secs);
        for name in &s.labels {
            p.labels.intern(name);
        }
        let known = p.labels.names.len();
        if known != s.labels.len() {
            return Err(PartialError::Invalid("repeated label"));
        }
        // Sized once: growing by rehashing took a tenth of `detect` on a week of data.
        p.counts.reserve(s.counts.len());
        p.templates.reserve(s.templates.len());
        p.latency.reserve(s.latency.len());
        for e in s.counts {
            let key = CountKey {
                bucket: e.bucket,
                labels: e.labels.labels(known)?,
                status_class: e.status_class,
            };
            let cell = CountCell {
                records: e.records,
                errors: e.errors,
                bytes: e.bytes,
            };
            p.counts.insert(key, cell);
        }
        for e in s.templates {
            let key = TemplateKey {
                bucket: e.bucket,
                template: e.template,
                labels: e.labels.labels(known)?,
            };
            let cell = TemplateCell {
                records: e.records,
                errors: e.errors,
                first: Timestamp(e.first_us),
                last: Timestamp(e.last_us),
            };
            p.templates.insert(key, cell);
        }
        for e in s.latency {
            let labels = LabelEntry {
                service: e.service,
                host: e.host,
                level: None,
                source: None,
            }
            .labels(known)?;
            let key = LatencyKey {
                bucket: e.bucket,
                service: labels.service,
                host: labels.host,
            };
            p.latency.insert(key, e.sketch);
        }
        p.oldest = p.counts.keys().map(|k| k.bucket).min();
        p.latest = s.latest_us.map(Timestamp);
        Ok(p)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics::{MetricPoint, MetricSeries};
    use crate::sketch::RELATIVE_ACCURACY;
    use proptest::prelude::*;

    fn obs(
        secs: i64,
        service: &'static str,
        status: Option<u16>,
        latency: Option<f64>,
    ) -> Observation<'static> {
        Observation {
            ts: Timestamp::from_secs(secs),
            service: Some(service),
            host: Some("h1"),
            level: status.is_none().then_some(Level::Error),
            status,
            latency_ms: latency,
            bytes: None,
            template: Some(7),
        }
    }

    fn rollups_before(p: &mut MetricPartial, day: i64) -> Vec<DayRollups> {
        p.take_completed(Timestamp::from_secs(day.saturating_mul(SECS_PER_DAY)))
            .rollups()
            .collect()
    }

    fn all_rollups(p: &mut MetricPartial) -> Vec<DayRollups> {
        p.take_completed(Timestamp(i64::MAX)).rollups().collect()
    }

    #[test]
    fn counts_and_latencies_sum_per_bucket_and_labels() {
        let mut r = MetricPartial::new(60);
        r.add(&obs(5, "api", Some(200), Some(12.0)), Some("a.log"));
        r.add(&obs(59, "api", Some(503), Some(12.0)), Some("a.log"));
        r.add(&obs(61, "api", Some(204), Some(7.5)), Some("a.log"));
        r.add(&obs(70, "db", None, None), Some("b.log"));
        let days = all_rollups(&mut r);
        assert_eq!(days.len(), 1);
        let d = &days[0];
        assert_eq!(d.day, 0);
        let summary: Vec<_> = (d.counts.iter())
            .map(|c| {
                (
                    c.ts.secs(),
                    c.service.as_deref().unwrap(),
                    c.status_class,
                    c.records,
                    c.errors,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, "api", Some(2), 1, 0),
                (0, "api", Some(5), 1, 1),
                (60, "api", Some(2), 1, 0),
                (60, "db", None, 1, 1),
            ]
        );
        assert_eq!(d.counts[3].source.as_deref(), Some("b.log"));
        // Latencies come back as their sketch bin's centre, within the stated accuracy.
        let hist: Vec<_> = (d.latency.iter()).map(|l| (l.ts.secs(), l.records)).collect();
        assert_eq!(hist, vec![(0, 2), (60, 1)]);
        for (row, exact) in d.latency.iter().zip([12.0, 7.5]) {
            assert!(
                (row.latency_ms / exact - 1.0).abs() <= RELATIVE_ACCURACY,
                "{row:?}"
            );
        }
        let templates: Vec<_> = (d.templates.iter())
            .map(|t| {
                (
                    t.ts.secs(),
                    t.template_id,
                    t.records,
                    t.errors,
                    t.first_ts.secs(),
                    t.last_ts.secs(),
                )
            })
            .collect();
        assert_eq!(
            templates,
            vec![(0, 7, 2, 1, 5, 59), (60, 7, 1, 0, 61, 61), (60, 7, 1, 1, 70, 70)]
        );
        assert!(r.is_empty());
        assert!(all_rollups(&mut r).is_empty());
    }

    #[test]
    fn days_are_handed_out_once_and_in_order() {
        let mut r = MetricPartial::new(60);
        r.add(&obs(SECS_PER_DAY + 1, "api", Some(200), Some(1.0)), None);
        r.add(&obs(1, "api", Some(200), Some(1.0)), None);
        r.add(&obs(2 * SECS_PER_DAY, "api", Some(200), None), None);
        let early = rollups_before(&mut r, 2);
        assert_eq!(early.iter().map(|d| d.day).collect::<Vec<_>>(), vec![0, 1]);
        let rest = all_rollups(&mut r);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].counts[0].records, 1);
        assert!(rest[0].latency.is_empty());
        assert!(all_rollups(&mut r).is_empty());
    }

    #[test]
    fn only_buckets_ending_by_the_watermark_complete() {
        let mut r = MetricPartial::new(60);
        r.add(&obs(59, "api", Some(200), None), None);
        r.add(&obs(60, "api", Some(200), None), None);
        assert_eq!(r.take_completed(Timestamp::from_secs(119)).span(), Some((0, 0)));
        assert_eq!(r.span(), Some((60, 60)));
        assert!(r.take_completed(Timestamp::from_secs(119)).is_empty());
        // A late record adds to a bucket already handed out, and leaves with the next call.
        r.add(&obs(1, "api", Some(200), None), None);
        assert_eq!(r.take_completed(Timestamp::from_secs(60)).span(), Some((0, 0)));
    }

    #[test]
    fn record_totals_are_preserved() {
        let mut r = MetricPartial::new(300);
        let mut n = 0u64;
        for i in 0..5_000i64 {
            let status = [200u16, 301, 404, 500][(i % 4) as usize];
            let service = ["a", "b", "c"][(i % 3) as usize];
            r.add(&obs(i * 37, service, Some(status), Some((i % 17) as f64)), None);
            n += 1;
        }
        let days = all_rollups(&mut r);
        let records: u64 = days.iter().flat_map(|d| &d.counts).map(|c| c.records).sum();
        let errors: u64 = days.iter().flat_map(|d| &d.counts).map(|c| c.errors).sum();
        let latencies: u64 = days.iter().flat_map(|d| &d.latency).map(|l| l.records).sum();
        assert_eq!((records, errors, latencies), (n, 1_250, n));
    }

    #[test]
    fn partials_of_other_widths_do_not_merge() {
        let mut a = MetricPartial::new(60);
        assert_eq!(
            a.merge(MetricPartial::new(300)),
            Err(PartialError::BucketWidth(60, 300))
        );
    }

    #[test]
    fn serialized_partials_are_versioned() {
        let mut p = MetricPartial::new(60);
        p.add(&obs(5, "api", Some(200), Some(f64::NAN)), Some("a.log"));
        p.add(&obs(7, "db", None, Some(3.5)), None);
        let json = serde_json::to_string(&p).unwrap();
        let back: MetricPartial = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(serde_json::to_string(&back).unwrap(), json, "stable form");
        let current = format!("\"version\":{PARTIAL_VERSION}");
        for other in [PARTIAL_VERSION - 1, PARTIAL_VERSION + 1] {
            let json = json.replace(&current, &format!("\"version\":{other}"));
            let err = serde_json::from_str::<MetricPartial>(&json).unwrap_err();
            assert!(err.to_string().contains(&format!("version {other}")), "{err}");
        }
        let dangling = json.replace("\"labels\":[\"api\"", "\"labels\":[\"x\"]");
        assert!(serde_json::from_str::<MetricPartial>(&dangling).is_err());
    }

    /// Observations drawn from a small label space, so cells collide and merge.
    #[derive(Debug, Clone)]
    struct Draw {
        secs: i64,
        service: Option<usize>,
        host: Option<usize>,
        level: Option<usize>,
        status: Option<u16>,
        latency: Option<f64>,
        bytes: Option<u64>,
        template: Option<u64>,
        source: Option<usize>,
    }

    const NAMES: [&str; 4] = ["api", "db", "web-01", "web-02"];

    impl Draw {
        fn observation(&self) -> Observation<'static> {
            Observation {
                ts: Timestamp::from_secs(self.secs),
                service: self.service.map(|i| NAMES[i]),
                host: self.host.map(|i| NAMES[i]),
                level: self.level.map(|i| Level::ALL[i]),
                status: self.status,
                latency_ms: self.latency,
                bytes: self.bytes,
                template: self.template,
            }
        }

        fn source(&self) -> Option<&'static str> {
            self.source.map(|i| NAMES[i])
        }
    }

    fn draw() -> impl Strategy<Value = Draw> {
        (
            (
                -200i64..200_000,
                prop::option::of(0..2usize),
                prop::option::of(2..4usize),
            ),
            (
                prop::option::of(0..9usize),
                prop::option::of(prop::sample::select(vec![200u16, 404, 503])),
            ),
            (
                prop::option::of(prop_oneof![0.0..5e3f64, Just(0.0), Just(f64::NAN), Just(-1.0)]),
                prop::option::of(0..10_000u64),
                prop::option::of(0..3u64),
                prop::option::of(0..4usize),
            ),
        )
            .prop_map(
                |((secs, service, host), (level, status), (latency, bytes, template, source))| Draw {
                    secs,
                    service,
                    host,
                    level,
                    status,
                    latency,
                    bytes,
                    template,
                    source,
                },
            )
    }

    fn partial_of(draws: &[Draw]) -> MetricPartial {
        let mut p = MetricPartial::new(60);
        for d in draws {
            p.add(&d.observation(), d.source());
        }
        p
    }

    fn points(p: &MetricPartial) -> Vec<MetricPoint> {
        let mut series = MetricSeries::new(p.bucket_secs());
        series.absorb(p);
        series.finish()
    }

    /// Merges `parts` pairwise in the tree shape `shape` picks (a seed for which neighbours
    /// merge first), so every tree over the parts is reachable.
    fn merge_tree(mut parts: Vec<MetricPartial>, shape: &[usize]) -> MetricPartial {
        let mut choices = shape.iter().cycle();
        while parts.len() > 1 {
            let i = choices.next().map_or(0, |&c| c % (parts.len() - 1));
            let right = parts.remove(i + 1);
            parts[i].merge(right).unwrap();
        }
        parts.pop().unwrap_or_else(|| MetricPartial::new(60))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any split of the input, any order of the parts, any merge tree: the same partial, and
        /// so the same rollups and points, as one partial over the whole.
        #[test]
        fn any_split_and_merge_order_equals_the_whole(
            draws in prop::collection::vec(draw(), 0..300),
            part_of in prop::collection::vec(0..5usize, 300),
            order in any::<u64>(),
            shape in prop::collection::vec(0..8usize, 1..8),
        ) {
            let whole = partial_of(&draws);
            let mut parts: Vec<Vec<Draw>> = vec![Vec::new(); 5];
            for (d, &k) in draws.iter().zip(&part_of) {
                parts[k].push(d.clone());
            }
            let rotate = (order % 5) as usize;
            parts.rotate_left(rotate);
            if order & 8 != 0 {
                parts.reverse();
            }
            let merged = merge_tree(parts.iter().map(|p| partial_of(p)).collect(), &shape);
            prop_assert_eq!(&merged, &whole);
            // Debug text, because a NaN latency row is not equal to itself.
            prop_assert_eq!(
                format!("{:?}", merged.rollups().collect::<Vec<_>>()),
                format!("{:?}", whole.rollups().collect::<Vec<_>>())
            );
            prop_assert_eq!(points(&merged), points(&whole));
        }

        /// Taking completed buckets at any watermarks and merging what was taken gives the whole.
        #[test]
        fn completed_buckets_partition_the_whole(
            draws in prop::collection::vec(draw(), 0..200),
            watermarks in prop::collection::vec(-300i64..200_000, 0..4),
        ) {
            let whole = partial_of(&draws);
            let mut open = whole.clone();
            let mut taken = MetricPartial::new(60);
            let mut sorted = watermarks.clone();
            sorted.sort_unstable();
            for w in sorted {
                let done = open.take_completed(Timestamp::from_secs(w));
                if let Some((_, last)) = done.span() {
                    prop_assert!(last + 60 <= w);
                }
                taken.merge(done).unwrap();
            }
            taken.merge(open).unwrap();
            prop_assert_eq!(&taken, &whole);
            let json = serde_json::to_string(&whole).unwrap();
            prop_assert_eq!(&serde_json::from_str::<MetricPartial>(&json).unwrap(), &whole);
        }
    }
}
