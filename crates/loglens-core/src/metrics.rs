//! Time-bucketed metrics from records: volume, errors, error rate, bytes, latency percentiles
//! and per-template counts, per service, host and level, with the rollups `docs/datasets.md`
//! lists. Pure: completed [`MetricPartial`]s in, sorted metric points out.
//!
//! Latency percentiles come from a [`LatencySketch`] per bucket and series (bins 2% wide),
//! so memory grows with buckets × series × the spread of latencies, never with records.

use std::collections::{btree_map, BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::partial::MetricPartial;
use crate::record::Level;
use crate::sketch::LatencySketch;
use crate::time::Timestamp;

/// The metrics computed for every series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Records in the bucket.
    Volume,
    /// Records with status ≥ 500 or level ERROR or worse.
    Errors,
    /// Errors / volume.
    ErrorRate,
    /// Response bytes (access logs).
    Bytes,
    /// Median request latency, ms.
    LatencyP50,
    /// 95th percentile latency, ms.
    LatencyP95,
    /// 99th percentile latency, ms.
    LatencyP99,
    /// Geometric mean latency, ms: the mean of log latencies, which a few hung requests barely
    /// move but a service slowing down as a whole moves by its factor.
    LatencyGmean,
    /// Records of one template.
    TemplateCount,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 9] = [
        Metric::Volume,
        Metric::Errors,
        Metric::ErrorRate,
        Metric::Bytes,
        Metric::LatencyP50,
        Metric::LatencyP95,
        Metric::LatencyP99,
        Metric::LatencyGmean,
        Metric::TemplateCount,
    ];

    /// The name stored in the `metric` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Volume => "volume",
            Metric::Errors => "errors",
            Metric::ErrorRate => "error_rate",
            Metric::Bytes => "bytes",
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP95 => "latency_p95",
            Metric::LatencyP99 => "latency_p99",
            Metric::LatencyGmean => "latency_gmean",
            Metric::TemplateCount => "template_count",
        }
    }

    /// Whether a bucket without records means 0 (counts) rather than "no value" (rates,
    /// latencies), so detectors see the gap as a drop.
    pub fn is_count(self) -> bool {
        matches!(
            self,
            Metric::Volume | Metric::Errors | Metric::Bytes | Metric::TemplateCount
        )
    }

    /// Whether a series of it has a point in every bucket from its first to its last (a count;
    /// template counts are sparse instead, one series per template).
    pub fn is_dense(self) -> bool {
        self.is_count() && self != Metric::TemplateCount
    }
}

/// A metric name that is not one of [`Metric::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {0:?} (volume, errors, error_rate, bytes, latency_p50, latency_p95, latency_p99, latency_gmean, template_count)")]
pub struct UnknownMetric(pub String);

impl std::str::FromStr for Metric {
    type Err = UnknownMetric;

    fn from_str(s: &str) -> Result<Metric, UnknownMetric> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMetric(s.to_owned()))
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The labels of a series; `None` means "all" (a rollup).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeriesKey {
    /// Service label.
    pub service: Option<String>,
    /// Host label.
    pub host: Option<String>,
    /// Level label.
    pub level: Option<Level>,
    /// Template id, for `template_count`.
    pub template: Option<u64>,
}

impl SeriesKey {
    /// The canonical key: `key=value` for each set label in the order service, host, level,
    /// template, joined by `,`; `total` when none is set.
    pub fn canonical(&self) -> String {
        let mut parts = Vec::with_capacity(4);
        if let Some(s) = &self.service {
            parts.push(format!("service={s}"));
        }
        if let Some(h) = &self.host {
            parts.push(format!("host={h}"));
        }
        if let Some(l) = self.level {
            parts.push(format!("level={}", l.as_str()));
        }
        if let Some(t) = self.template {
            parts.push(format!("template={t:016x}"));
        }
        if parts.is_empty() {
            "total".to_owned()
        } else {
            parts.join(",")
        }
    }
}

/// What one record contributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation<'a> {
    /// Record time.
    pub ts: Timestamp,
    /// Service label.
    pub service: Option<&'a str>,
    /// Host label.
    pub host: Option<&'a str>,
    /// Level.
    pub level: Option<Level>,
    /// HTTP status (access logs).
    pub status: Option<u16>,
    /// Request latency in ms (access logs).
    pub latency_ms: Option<f64>,
    /// Response bytes (access logs).
    pub bytes: Option<u64>,
    /// Template id.
    pub template: Option<u64>,
}

/// Responses with this status or above are errors.
pub const ERROR_STATUS: u16 = 500;

impl Observation<'_> {
    /// Status ≥ [`ERROR_STATUS`] or level ERROR or worse: the one definition of an error record.
    pub fn is_error(&self) -> bool {
        self.status.is_some_and(|s| s >= ERROR_STATUS) || self.level.is_some_and(Level::is_error)
    }
}

/// [`Observation::is_error`] as an SQL predicate over the `records` dataset's `status` and
/// `level` columns, so the dashboard's queries count errors exactly as detection does.
pub fn error_sql() -> String {
    let levels: Vec<String> = Level::ALL
        .iter()
        .filter(|l| l.is_error())
        .map(|l| format!("'{}'", l.as_str()))
        .collect();
    format!("(status >= {ERROR_STATUS} OR level IN ({}))", levels.join(", "))
}

/// One value of one series in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Bucket start.
    pub ts: Timestamp,
    /// Which metric.
    pub metric: Metric,
    /// The series labels, shared by every point of the series (a clone is a reference count,
    /// not two strings: a week of metrics is millions of points).
    pub key: Arc<SeriesKey>,
    /// The value.
    pub value: f64,
    /// A dense metric's 0 in a bucket where the series had no records, between two that had:
    /// detectors read it, `metrics/` does not store it (most of a week's points are such
    /// zeros) and readers put it back with [`fill_gaps`].
    pub filled: bool,
}

/// What one series holds in one bucket before it becomes points: records, errors, response
/// bytes and latencies (see [`MetricPartial::series`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesCell {
    /// Records.
    pub volume: u64,
    /// Records with status ≥ 500 or level ERROR or worse.
    pub errors: u64,
    /// Response bytes.
    pub bytes: u64,
    /// Latencies (access records).
    pub latency: LatencySketch,
}

impl SeriesCell {
    fn absorb(&mut self, other: &SeriesCell) {
        self.volume += other.volume;
        self.errors += other.errors;
        self.bytes += other.bytes;
        self.latency.merge(&other.latency);
    }

    /// Whether the cell has a value of `metric` (without computing it).
    fn has_value(&self, metric: Metric) -> bool {
        match metric {
            Metric::Volume | Metric::TemplateCount | Metric::Errors | Metric::Bytes => true,
            Metric::ErrorRate => self.volume > 0,
            _ => !self.latency.is_empty(),
        }
    }

    /// The value of `metric`, if the cell has one.
    fn value(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Volume | Metric::TemplateCount => Some(self.volume as f64),
            Metric::Errors => Some(self.errors as f64),
            Metric::Bytes => Some(self.bytes as f64),
            Metric::ErrorRate => (self.volume > 0).then(|| self.errors as f64 / self.volume as f64),
            Metric::LatencyP50 => self.latency.quantile(0.5),
            Metric::LatencyP95 => self.latency.quantile(0.95),
            Metric::LatencyP99 => self.latency.quantile(0.99),
            Metric::LatencyGmean => self.latency.geometric_mean(),
        }
    }
}

/// The metric series of completed buckets: absorbs what [`MetricPartial::take_completed`] hands
/// out, and [`MetricSeries::finish`] emits the points.
#[derive(Debug)]
pub struct MetricSeries {
    bucket_secs: i64,
    series: BTreeMap<SeriesKey, BTreeMap<i64, SeriesCell>>,
    span: Option<(i64, i64)>,
}

impl MetricSeries {
    /// Series over buckets `bucket_secs` wide (at least 1).
    pub fn new(bucket_secs: i64) -> Self {
        MetricSeries {
            bucket_secs: bucket_secs.max(1),
            series: BTreeMap::new(),
            span: None,
        }
    }

    /// Adds the series cells of `partial` (a bucket seen before adds to its cells).
    pub fn absorb(&mut self, partial: &MetricPartial) {
        for (key, cells) in partial.series() {
            let (Some(first), Some(last)) = (cells.first(), cells.last()) else {
                continue;
            };
            let (first, last) = (first.0, last.0);
            self.span = Some(
                self.span
                    .map_or((first, last), |(a, b)| (a.min(first), b.max(last))),
            );
            match self.series.entry(key) {
                // A series' first partial (the usual case): its cells come sorted and one per
                // bucket, so the map is built in bulk rather than searched per bucket.
                btree_map::Entry::Vacant(series) => {
                    series.insert(cells.into_iter().collect());
                }
                btree_map::Entry::Occupied(mut series) => {
                    for (bucket, cell) in cells {
                        (series.get_mut().entry(bucket))
                            .and_modify(|c| c.absorb(&cell))
                            .or_insert(cell);
                    }
                }
            }
        }
    }

    /// The first and last bucket start seen (seconds), if any record was absorbed.
    pub fn span(&self) -> Option<(i64, i64)> {
        self.span
    }

    /// Every point, sorted by metric, series and time. Count metrics of a series are dense
    /// from its first to its last bucket (an empty bucket is 0); ratios and latencies only
    /// exist where records do (latency within [`RELATIVE_ACCURACY`](crate::sketch::RELATIVE_ACCURACY)).
    /// Template counts are sparse (non-zero buckets only); (service, level) series carry volume only.
    pub fn finish(self) -> Vec<MetricPoint> {
        self.finish_after(&mut HashMap::new())
    }

    /// [`MetricSeries::finish`] for one stretch of a longer run: `emitted` holds the last
    /// bucket each series emitted before (updated here), so count series stay dense across
    /// stretches, and stretches emit together exactly what one series over all would.
    pub fn finish_after(self, emitted: &mut HashMap<SeriesKey, i64>) -> Vec<MetricPoint> {
        let before = |key: &SeriesKey| emitted.get(key).copied();
        // Sized up front: millions of points, and a growing vector would briefly hold two copies.
        let mut out = Vec::with_capacity(
            self.series_points()
                .map(|(m, key, cells)| points_of(m, cells, self.bucket_secs, before(key)))
                .sum(),
        );
        let shared: HashMap<&SeriesKey, Arc<SeriesKey>> =
            (self.series.keys()).map(|k| (k, Arc::new(k.clone()))).collect();
        for (metric, key, cells) in self.series_points() {
            let Some(shared) = shared.get(key) else {
                continue;
            };
            emit(&mut out, metric, shared, cells, self.bucket_secs, before(key));
        }
        drop(shared);
        for (key, cells) in self.series {
            if let (None, Some(&last)) = (key.template, cells.keys().next_back()) {
                emitted.insert(key, last);
            }
        }
        out
    }

    /// Each metric of each series that has points: metrics outermost, then series in key
    /// order, so emitting them in turn (each in time order) gives the sorted order.
    fn series_points(&self) -> impl Iterator<Item = (Metric, &SeriesKey, &BTreeMap<i64, SeriesCell>)> {
        Metric::ALL.into_iter().flat_map(move |metric| {
            self.series
                .iter()
                .filter(move |(key, _)| match metric {
                    Metric::TemplateCount => key.template.is_some(),
                    Metric::Volume => key.template.is_none(),
                    _ => key.template.is_none() && key.level.is_none(),
                })
                .map(move |(key, cells)| (metric, key, cells))
        })
    }
}

/// How many points [`emit`] gives.
fn points_of(metric: Metric, cells: &BTreeMap<i64, SeriesCell>, step: i64, before: Option<i64>) -> usize {
    let dense = metric.is_dense();
    match (cells.keys().next(), cells.keys().next_back()) {
        (Some(&first), Some(last)) if dense => {
            let first = before.map_or(first, |b| (b + step).min(first));
            usize::try_from((last - first) / step + 1).unwrap_or(0)
        }
        _ => cells.values().filter(|c| c.has_value(metric)).count(),
    }
}

/// The points of one metric of one series: dense for counts but template counts (from the
/// bucket after `before`, the series' last bucket emitted earlier, if any).
fn emit(
    out: &mut Vec<MetricPoint>,
    metric: Metric,
    key: &Arc<SeriesKey>,
    cells: &BTreeMap<i64, SeriesCell>,
    step: i64,
    before: Option<i64>,
) {
    let point = |bucket: i64, value: f64, filled: bool| MetricPoint {
        ts: Timestamp::from_secs(bucket),
        metric,
        key: Arc::clone(key),
        value,
        filled,
    };
    let dense = metric.is_dense();
    let mut last = before;
    for (&bucket, cell) in cells {
        if let Some(previous) = last.filter(|_| dense) {
            out.extend(gap_buckets(previous, bucket, step).map(|gap| point(gap, 0.0, true)));
        }
        last = Some(bucket);
        if let Some(value) = cell.value(metric) {
            out.push(point(bucket, value, false));
        }
    }
}

/// The buckets strictly between `previous` and `next`, `step` apart: a dense series' zeros.
fn gap_buckets(previous: i64, next: i64, step: i64) -> impl Iterator<Item = i64> {
    std::iter::successors(Some(previous + step), move |b| Some(b + step)).take_while(move |&b| b < next)
}

/// Puts back the [`MetricPoint::filled`] zeros of stored points (`bucket_secs` wide): between
/// two points of a dense metric's series that are more than a bucket apart. Returns the points
/// by metric, series and time, as detect judged them.
pub fn fill_gaps(mut points: Vec<MetricPoint>, bucket_secs: i64) -> Vec<MetricPoint> {
    points.sort_by(|a, b| (a.metric, &a.key, a.ts).cmp(&(b.metric, &b.key, b.ts)));
    let step = bucket_secs.max(1);
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let previous = out
            .last()
            .filter(|l: &&MetricPoint| p.metric.is_dense() && l.metric == p.metric && l.key == p.key);
        if let Some(previous) = previous.map(|l| l.ts.secs()) {
            out.extend(gap_buckets(previous, p.ts.secs(), step).map(|gap| MetricPoint {
                ts: Timestamp::from_secs(gap),
                value: 0.0,
                filled: true,
                ..p.clone()
            }));
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn the_error_predicate_is_the_error_rule() {
        assert_eq!(
            super::error_sql(),
            "(status >= 500 OR level IN ('error', 'critical', 'alert', 'emergency'))"
        );
    }

    use super::*;

    /// One partial over the records, emitted as points.
    struct Builder(MetricPartial);

    impl Builder {
        fn new(bucket_secs: i64) -> Self {
            Builder(MetricPartial::new(bucket_secs))
        }

        fn add(&mut self, o: &Observation<'_>) {
            self.0.add(o, None);
        }

        fn finish(self) -> Vec<MetricPoint> {
            let mut series = MetricSeries::new(self.0.bucket_secs());
            series.absorb(&self.0);
            series.finish()
        }
    }

    fn obs(secs: i64, service: &'static str, status: u16, latency: f64) -> Observation<'static> {
        Observation {
            ts: Timestamp::from_secs(secs),
            service: Some(service),
            host: Some("web-01"),
            level: Some(Level::from_http_status(status)),
            status: Some(status),
            latency_ms: Some(latency),
            bytes: Some(100),
            template: Some(7),
        }
    }

    fn value(points: &[MetricPoint], metric: Metric, series: &str, secs: i64) -> Option<f64> {
        points
            .iter()
            .find(|p| p.metric == metric && p.key.canonical() == series && p.ts.secs() == secs)
            .map(|p| p.value)
    }

    #[test]
    fn counts_rates_and_rollups() {
        let mut m = Builder::new(60);
        for i in 0..10 {
            m.add(&obs(i, "api", if i < 3 { 500 } else { 200 }, 10.0));
        }
        m.add(&obs(150, "db", 200, 5.0));
        let points = m.finish();
        assert_eq!(value(&points, Metric::Volume, "total", 0), Some(10.0));
        assert_eq!(value(&points, Metric::Errors, "service=api", 0), Some(3.0));
        assert_eq!(
            value(&points, Metric::ErrorRate, "service=api,host=web-01", 0),
            Some(0.3)
        );
        assert_eq!(value(&points, Metric::Bytes, "total", 0), Some(1000.0));
        assert_eq!(
            value(&points, Metric::Volume, "service=api,level=error", 0),
            Some(3.0)
        );
        // The empty minute between is a 0 for counts and absent for ratios.
        assert_eq!(value(&points, Metric::Volume, "total", 60), Some(0.0));
        assert_eq!(value(&points, Metric::ErrorRate, "total", 60), None);
        assert_eq!(value(&points, Metric::Volume, "total", 120), Some(1.0));
        assert_eq!(
            value(&points, Metric::TemplateCount, "template=0000000000000007", 0),
            Some(10.0)
        );
        // No latency split by level.
        assert_eq!(
            value(&points, Metric::LatencyP50, "service=api,level=error", 0),
            None
        );
    }

    #[test]
    fn latency_percentiles_within_one_percent() {
        let mut m = Builder::new(60);
        for i in 1..=1000 {
            m.add(&obs(0, "api", 200, f64::from(i)));
        }
        let points = m.finish();
        for (metric, want) in [
            (Metric::LatencyP50, 500.0),
            (Metric::LatencyP95, 950.0),
            (Metric::LatencyP99, 990.0),
        ] {
            let got = value(&points, metric, "total", 0).unwrap();
            assert!((got / want - 1.0).abs() < 0.011, "{metric}: {got} vs {want}");
        }
    }

    #[test]
    fn geometric_mean_ignores_a_hung_request_but_follows_a_slowdown() {
        let mut m = Builder::new(60);
        for latency in [1.0, 100.0] {
            m.add(&obs(0, "api", 200, latency));
        }
        // Minute 1: nine 10 ms requests and one hung for a minute; minute 2: all 5x slower.
        for i in 0..10 {
            m.add(&obs(60, "api", 200, if i == 0 { 60_000.0 } else { 10.0 }));
            m.add(&obs(120, "api", 200, 50.0));
        }
        let points = m.finish();
        let gmean = |secs| value(&points, Metric::LatencyGmean, "total", secs).unwrap();
        assert!((gmean(0) / 10.0 - 1.0).abs() < 0.02, "{}", gmean(0));
        assert!(gmean(60) < 25.0, "one hung request: {}", gmean(60));
        assert!((gmean(120) / 50.0 - 1.0).abs() < 0.02, "{}", gmean(120));
        let p95 = value(&points, Metric::LatencyP95, "total", 60).unwrap();
        assert!(p95 > 50_000.0, "the p95 is the hung request: {p95}");
    }

    #[test]
    fn points_come_sorted_and_as_many_as_counted() {
        let mut b = Builder::new(60);
        for i in 0..50 {
            let service = ["api", "db", "web"][i % 3];
            let mut o = obs(i as i64 * 97, service, [200, 503][i % 2], 3.0);
            o.template = Some(i as u64 % 4);
            o.level = (i % 5 == 0).then_some(Level::Warn);
            b.add(&o);
        }
        let mut series = MetricSeries::new(60);
        series.absorb(&b.0);
        let counted: usize = (series.series_points())
            .map(|(m, _, cells)| points_of(m, cells, 60, None))
            .sum();
        let points = series.finish();
        assert_eq!(points.len(), counted);
        assert!(points
            .windows(2)
            .all(|w| { (w[0].metric, &w[0].key, w[0].ts) < (w[1].metric, &w[1].key, w[1].ts) }));
    }

    #[test]
    fn stored_points_and_their_filled_gaps_are_what_detect_judged() {
        let mut b = Builder::new(60);
        // Records every 7th minute (gaps of 6 buckets), a second service now and then.
        for i in 0..40 {
            let service = if i % 9 == 0 { "db" } else { "api" };
            b.add(&obs(i * 7 * 60 + 5, service, [200, 503][(i % 2) as usize], 3.0));
        }
        let points = b.finish();
        let stored: Vec<MetricPoint> = points.iter().filter(|p| !p.filled).cloned().collect();
        let filled = points.len() - stored.len();
        assert!(
            filled > points.len() / 2,
            "{filled} of {} points are gap zeros",
            points.len()
        );
        assert!(points
            .iter()
            .filter(|p| p.filled)
            .all(|p| p.value == 0.0 && p.metric.is_dense()));
        // Stored in any order, read back with the gaps filled: the points detect judged.
        let mut shuffled = stored;
        shuffled.reverse();
        assert_eq!(fill_gaps(shuffled, 60), points);
    }

    #[test]
    fn canonical_series_keys() {
        let key = SeriesKey {
            service: Some("api".into()),
            host: Some("web-01".into()),
            level: None,
            template: None,
        };
        assert_eq!(key.canonical(), "service=api,host=web-01");
        assert_eq!(SeriesKey::default().canonical(), "total");
    }
}
