//! Exact per-bucket rollups of records, for readers that sum rather than detect (the dashboard):
//! record and error counts by every label a reader filters on, the same per template, and
//! latency histograms of exact values. Summing rollup rows gives what counting the records gives, from thousands of rows
//! instead of millions. Pure: observations in, rows out, one day at a time so memory holds a
//! day of rollups, not the whole input.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::metrics::Observation;
use crate::record::Level;
use crate::time::Timestamp;

const SECS_PER_DAY: i64 = 86_400;

/// Labels are interned: a day of latency rows holds hundreds of thousands of keys, and two
/// strings per key would cost more than the counts.
type LabelId = u32;

/// A record latency ordered by `f64::total_cmp`, so exact values can key a map.
#[derive(Debug, Clone, Copy)]
struct Latency(f64);

impl PartialEq for Latency {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Latency {}
impl PartialOrd for Latency {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Latency {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct CountKey {
    bucket: i64,
    labels: Labels,
    status_class: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TemplateKey {
    bucket: i64,
    template: u64,
    labels: Labels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Labels {
    service: Option<LabelId>,
    host: Option<LabelId>,
    level: Option<Level>,
    source: Option<LabelId>,
}

/// What a template rollup row sums: records, errors, and the first and last record time.
#[derive(Debug, Clone, Copy)]
struct TemplateCell {
    records: u64,
    errors: u64,
    first: Timestamp,
    last: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct LatencyKey {
    bucket: i64,
    service: Option<LabelId>,
    host: Option<LabelId>,
    latency: Latency,
}

/// Records and errors of one bucket and label combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// Bucket start.
    pub ts: Timestamp,
    /// Service label.
    pub service: Option<String>,
    /// Host label.
    pub host: Option<String>,
    /// Level.
    pub level: Option<Level>,
    /// Source (the file or listener the records came from).
    pub source: Option<String>,
    /// HTTP status class: 2 for 2xx, and so on; none without a status.
    pub status_class: Option<u16>,
    /// Records.
    pub records: u64,
    /// Records with status ≥ 500 or level ERROR or worse.
    pub errors: u64,
}

/// Records of one template in one bucket and label combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// Bucket start.
    pub ts: Timestamp,
    /// Template id.
    pub template_id: u64,
    /// Service label.
    pub service: Option<String>,
    /// Host label.
    pub host: Option<String>,
    /// Level.
    pub level: Option<Level>,
    /// Source.
    pub source: Option<String>,
    /// Records.
    pub records: u64,
    /// Records with status ≥ 500 or level ERROR or worse.
    pub errors: u64,
    /// Time of the first of these records.
    pub first_ts: Timestamp,
    /// Time of the last of these records.
    pub last_ts: Timestamp,
}

/// Records of one bucket, service and host that took exactly `latency_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    /// Bucket start.
    pub ts: Timestamp,
    /// Service label.
    pub service: Option<String>,
    /// Host label.
    pub host: Option<String>,
    /// The latency, ms, exactly as recorded.
    pub latency_ms: f64,
    /// Records with this latency.
    pub records: u64,
}

/// The rollup rows of one day, sorted by bucket then labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayRollups {
    /// Day number since 1970-01-01 (UTC).
    pub day: i64,
    /// Bucket width, seconds.
    pub bucket_secs: i64,
    /// Counts.
    pub counts: Vec<CountRow>,
    /// Counts per template (records with a template only).
    pub templates: Vec<TemplateRow>,
    /// Latency histograms.
    pub latency: Vec<LatencyRow>,
}

/// Accumulates observations; [`Rollups::take_before`] hands out finished days.
#[derive(Debug)]
pub struct Rollups {
    bucket_secs: i64,
    labels: Vec<String>,
    ids: HashMap<String, LabelId>,
    counts: BTreeMap<CountKey, (u64, u64)>,
    templates: BTreeMap<TemplateKey, TemplateCell>,
    latency: BTreeMap<LatencyKey, u64>,
}

impl Rollups {
    /// Rollups over buckets `bucket_secs` wide (at least 1; a day should be a whole number of
    /// buckets, or a bucket straddling midnight is split between two days' rows).
    pub fn new(bucket_secs: i64) -> Self {
        Rollups {
            bucket_secs: bucket_secs.max(1),
            labels: Vec::new(),
            ids: HashMap::new(),
            counts: BTreeMap::new(),
            templates: BTreeMap::new(),
            latency: BTreeMap::new(),
        }
    }

    fn intern(&mut self, label: Option<&str>) -> Option<LabelId> {
        let label = label?;
        if let Some(&id) = self.ids.get(label) {
            return Some(id);
        }
        let id = LabelId::try_from(self.labels.len()).unwrap_or(LabelId::MAX);
        self.labels.push(label.to_owned());
        self.ids.insert(label.to_owned(), id);
        Some(id)
    }

    /// Adds one record, from `source`.
    pub fn add(&mut self, o: &Observation<'_>, source: Option<&str>) {
        let bucket = o.ts.secs().div_euclid(self.bucket_secs) * self.bucket_secs;
        let service = self.intern(o.service);
        let host = self.intern(o.host);
        let labels = Labels {
            service,
            host,
            level: o.level,
            source: self.intern(source),
        };
        let error = u64::from(o.is_error());
        let key = CountKey {
            bucket,
            labels,
            status_class: o.status.map(|s| s / 100),
        };
        let cell = self.counts.entry(key).or_default();
        cell.0 += 1;
        cell.1 += error;
        if let Some(template) = o.template {
            let key = TemplateKey {
                bucket,
                template,
                labels,
            };
            let cell = self.templates.entry(key).or_insert(TemplateCell {
                records: 0,
                errors: 0,
                first: o.ts,
                last: o.ts,
            });
            cell.records += 1;
            cell.errors += error;
            cell.first = cell.first.min(o.ts);
            cell.last = cell.last.max(o.ts);
        }
        if let Some(ms) = o.latency_ms {
            let key = LatencyKey {
                bucket,
                service,
                host,
                latency: Latency(ms),
            };
            *self.latency.entry(key).or_default() += 1;
        }
    }

    /// Removes and returns the rollups of every day before `day` (all of them with `i64::MAX`),
    /// one [`DayRollups`] per day, oldest first.
    pub fn take_before(&mut self, day: i64) -> Vec<DayRollups> {
        let cut = day.saturating_mul(SECS_PER_DAY);
        let counts = split_below(&mut self.counts, |k| k.bucket < cut);
        let templates = split_below(&mut self.templates, |k| k.bucket < cut);
        let latency = split_below(&mut self.latency, |k| k.bucket < cut);
        let mut days: BTreeMap<i64, DayRollups> = BTreeMap::new();
        for (k, (records, errors)) in counts {
            let day = k.bucket.div_euclid(SECS_PER_DAY);
            days.entry(day).or_default().counts.push(CountRow {
                ts: Timestamp::from_secs(k.bucket),
                service: self.label(k.labels.service),
                host: self.label(k.labels.host),
                level: k.labels.level,
                source: self.label(k.labels.source),
                status_class: k.status_class,
                records,
                errors,
            });
        }
        for (k, c) in templates {
            let day = k.bucket.div_euclid(SECS_PER_DAY);
            days.entry(day).or_default().templates.push(TemplateRow {
                ts: Timestamp::from_secs(k.bucket),
                template_id: k.template,
                service: self.label(k.labels.service),
                host: self.label(k.labels.host),
                level: k.labels.level,
                source: self.label(k.labels.source),
                records: c.records,
                errors: c.errors,
                first_ts: c.first,
                last_ts: c.last,
            });
        }
        for (k, records) in latency {
            let day = k.bucket.div_euclid(SECS_PER_DAY);
            days.entry(day).or_default().latency.push(LatencyRow {
                ts: Timestamp::from_secs(k.bucket),
                service: self.label(k.service),
                host: self.label(k.host),
                latency_ms: k.latency.0,
                records,
            });
        }
        days.into_iter()
            .map(|(day, mut rows)| {
                rows.day = day;
                rows.bucket_secs = self.bucket_secs;
                rows
            })
            .collect()
    }

    fn label(&self, id: Option<LabelId>) -> Option<String> {
        id.and_then(|id| self.labels.get(id as usize).cloned())
    }
}

/// Removes the leading keys of `map` for which `below` holds (keys sort by bucket first).
fn split_below<K: Ord + Copy, V>(map: &mut BTreeMap<K, V>, below: impl Fn(&K) -> bool) -> BTreeMap<K, V> {
    match map.keys().find(|k| !below(k)).copied() {
        Some(first_kept) => {
            let kept = map.split_off(&first_kept);
            std::mem::replace(map, kept)
        }
        None => std::mem::take(map),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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

    #[test]
    fn counts_and_latencies_sum_per_bucket_and_labels() {
        let mut r = Rollups::new(60);
        r.add(&obs(5, "api", Some(200), Some(12.0)), Some("a.log"));
        r.add(&obs(59, "api", Some(503), Some(12.0)), Some("a.log"));
        r.add(&obs(61, "api", Some(204), Some(7.5)), Some("a.log"));
        r.add(&obs(70, "db", None, None), Some("b.log"));
        let days = r.take_before(i64::MAX);
        assert_eq!(days.len(), 1);
        let d = &days[0];
        assert_eq!(d.day, 0);
        let summary: Vec<_> = d
            .counts
            .iter()
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
        let hist: Vec<_> = d
            .latency
            .iter()
            .map(|l| (l.ts.secs(), l.latency_ms, l.records))
            .collect();
        assert_eq!(hist, vec![(0, 12.0, 2), (60, 7.5, 1)]);
        let templates: Vec<_> = d
            .templates
            .iter()
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
        assert!(r.take_before(i64::MAX).is_empty());
    }

    #[test]
    fn days_are_handed_out_once_and_in_order() {
        let mut r = Rollups::new(60);
        r.add(&obs(SECS_PER_DAY + 1, "api", Some(200), Some(1.0)), None);
        r.add(&obs(1, "api", Some(200), Some(1.0)), None);
        r.add(&obs(2 * SECS_PER_DAY, "api", Some(200), None), None);
        let early = r.take_before(2);
        assert_eq!(early.iter().map(|d| d.day).collect::<Vec<_>>(), vec![0, 1]);
        let rest = r.take_before(i64::MAX);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].counts[0].records, 1);
        assert!(rest[0].latency.is_empty());
        assert!(r.take_before(i64::MAX).is_empty());
    }

    #[test]
    fn record_totals_are_preserved() {
        let mut r = Rollups::new(300);
        let mut n = 0u64;
        for i in 0..5_000i64 {
            let status = [200u16, 301, 404, 500][(i % 4) as usize];
            r.add(
                &obs(
                    i * 37,
                    ["a", "b", "c"][(i % 3) as usize],
                    Some(status),
                    Some((i % 17) as f64),
                ),
                None,
            );
            n += 1;
        }
        let days = r.take_before(i64::MAX);
        let records: u64 = days.iter().flat_map(|d| &d.counts).map(|c| c.records).sum();
        let errors: u64 = days.iter().flat_map(|d| &d.counts).map(|c| c.errors).sum();
        let latencies: u64 = days.iter().flat_map(|d| &d.latency).map(|l| l.records).sum();
        assert_eq!((records, errors, latencies), (n, 1_250, n));
    }
}
