//! Time-bucketed metrics from records: volume, errors, error rate, bytes, latency percentiles
//! and per-template counts, per service, host and level, with the rollups `docs/datasets.md`
//! lists. Pure: observations in, sorted metric points out.
//!
//! Latency percentiles come from a log-scale histogram per bucket and series (bins 2% wide),
//! so memory grows with buckets × series, never with records.

use std::collections::BTreeMap;
use std::fmt;

use crate::record::Level;
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

impl Observation<'_> {
    /// Status ≥ 500 or level ERROR or worse.
    pub fn is_error(&self) -> bool {
        self.status.is_some_and(|s| s >= 500) || self.level.is_some_and(Level::is_error)
    }
}

/// One value of one series in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Bucket start.
    pub ts: Timestamp,
    /// Which metric.
    pub metric: Metric,
    /// The series labels.
    pub key: SeriesKey,
    /// The value.
    pub value: f64,
}

/// Ratio between neighbouring latency bins: values are kept within ±1% of the truth.
const BIN_RATIO: f64 = 1.02;

#[derive(Debug, Default, Clone)]
struct Cell {
    volume: u64,
    errors: u64,
    bytes: u64,
    /// Latency histogram: bin index → count; only access records add to it.
    latency: BTreeMap<i32, u32>,
    latency_n: u64,
}

impl Cell {
    fn add(&mut self, o: &Observation<'_>, with_latency: bool) {
        self.volume += 1;
        self.errors += u64::from(o.is_error());
        self.bytes += o.bytes.unwrap_or(0);
        if let Some(ms) = o
            .latency_ms
            .filter(|ms| with_latency && ms.is_finite() && *ms >= 0.0)
        {
            *self.latency.entry(latency_bin(ms)).or_default() += 1;
            self.latency_n += 1;
        }
    }

    /// The `q` quantile (0..=1) of the latency histogram: the value of the bin holding the
    /// rank `ceil(q * n)` (nearest-rank definition).
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.latency_n == 0 {
            return None;
        }
        let rank = ((q * self.latency_n as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (&bin, &n) in &self.latency {
            seen += u64::from(n);
            if seen >= rank {
                return Some(bin_value(bin));
            }
        }
        self.latency.keys().next_back().map(|&b| bin_value(b))
    }

    /// The geometric mean of the latency histogram (bin values, so within ±1%).
    fn geometric_mean(&self) -> Option<f64> {
        if self.latency_n == 0 {
            return None;
        }
        let log_sum: f64 = self
            .latency
            .iter()
            .map(|(&bin, &n)| f64::from(n) * f64::from(bin))
            .sum();
        Some(BIN_RATIO.powf(log_sum / self.latency_n as f64))
    }
}

fn latency_bin(ms: f64) -> i32 {
    // 0 ms and sub-microsecond values share the lowest bin.
    (ms.max(1e-3).ln() / BIN_RATIO.ln()).round() as i32
}

fn bin_value(bin: i32) -> f64 {
    BIN_RATIO.powi(bin)
}

/// Accumulates observations into buckets; [`MetricsBuilder::finish`] emits the points.
#[derive(Debug)]
pub struct MetricsBuilder {
    bucket_secs: i64,
    cells: BTreeMap<(SeriesKey, i64), Cell>,
    templates: BTreeMap<(u64, i64), u64>,
    first_bucket: Option<i64>,
    last_bucket: Option<i64>,
}

impl MetricsBuilder {
    /// A builder with buckets `bucket_secs` wide (at least 1).
    pub fn new(bucket_secs: i64) -> Self {
        MetricsBuilder {
            bucket_secs: bucket_secs.max(1),
            cells: BTreeMap::new(),
            templates: BTreeMap::new(),
            first_bucket: None,
            last_bucket: None,
        }
    }

    /// The bucket width in seconds.
    pub fn bucket_secs(&self) -> i64 {
        self.bucket_secs
    }

    /// The start (seconds) of the bucket holding `ts`.
    pub fn bucket_of(&self, ts: Timestamp) -> i64 {
        ts.secs().div_euclid(self.bucket_secs) * self.bucket_secs
    }

    /// Adds one record to every series it belongs to.
    pub fn add(&mut self, o: &Observation<'_>) {
        let bucket = self.bucket_of(o.ts);
        self.first_bucket = Some(self.first_bucket.map_or(bucket, |b| b.min(bucket)));
        self.last_bucket = Some(self.last_bucket.map_or(bucket, |b| b.max(bucket)));
        let service = o.service.map(str::to_owned);
        let keys = [
            (SeriesKey::default(), true),
            (
                SeriesKey {
                    service: service.clone(),
                    ..SeriesKey::default()
                },
                o.service.is_some(),
            ),
            (
                SeriesKey {
                    service: service.clone(),
                    host: o.host.map(str::to_owned),
                    ..SeriesKey::default()
                },
                o.host.is_some(),
            ),
            (
                SeriesKey {
                    service,
                    level: o.level,
                    ..SeriesKey::default()
                },
                o.level.is_some(),
            ),
        ];
        for (i, (key, applies)) in keys.into_iter().enumerate() {
            // The (service, level) rollup only carries volume; latency is not split by level.
            if applies {
                self.cells.entry((key, bucket)).or_default().add(o, i < 3);
            }
        }
        if let Some(t) = o.template {
            *self.templates.entry((t, bucket)).or_default() += 1;
        }
    }

    /// The first and last bucket start seen (seconds), if any record was added.
    pub fn span(&self) -> Option<(i64, i64)> {
        Some((self.first_bucket?, self.last_bucket?))
    }

    /// Every point, sorted by metric, series and time. Count metrics of a series are dense
    /// from its first to its last bucket (an empty bucket is 0); ratios and latencies only
    /// exist where records do. Template counts are sparse (non-zero buckets only).
    pub fn finish(self) -> Vec<MetricPoint> {
        let mut out = Vec::new();
        let step = self.bucket_secs;
        let mut by_series: BTreeMap<SeriesKey, Vec<(i64, Cell)>> = BTreeMap::new();
        for ((key, bucket), cell) in self.cells {
            by_series.entry(key).or_default().push((bucket, cell));
        }
        for (key, cells) in by_series {
            let level_rollup = key.level.is_some();
            emit_series(&mut out, &key, &cells, step, level_rollup);
        }
        for ((template, bucket), n) in self.templates {
            out.push(MetricPoint {
                ts: Timestamp::from_secs(bucket),
                metric: Metric::TemplateCount,
                key: SeriesKey {
                    template: Some(template),
                    ..SeriesKey::default()
                },
                value: n as f64,
            });
        }
        out.sort_by(|a, b| (a.metric, &a.key, a.ts).cmp(&(b.metric, &b.key, b.ts)));
        out
    }
}

fn emit_series(
    out: &mut Vec<MetricPoint>,
    key: &SeriesKey,
    cells: &[(i64, Cell)],
    step: i64,
    volume_only: bool,
) {
    let (Some(first), Some(last)) = (cells.first(), cells.last()) else {
        return;
    };
    let point = |bucket: i64, metric: Metric, value: f64| MetricPoint {
        ts: Timestamp::from_secs(bucket),
        metric,
        key: key.clone(),
        value,
    };
    let empty = Cell::default();
    let mut next = cells.iter().peekable();
    let mut bucket = first.0;
    while bucket <= last.0 {
        let cell = match next.peek() {
            Some((b, cell)) if *b == bucket => {
                next.next();
                cell
            }
            _ => &empty,
        };
        out.push(point(bucket, Metric::Volume, cell.volume as f64));
        if !volume_only {
            out.push(point(bucket, Metric::Errors, cell.errors as f64));
            out.push(point(bucket, Metric::Bytes, cell.bytes as f64));
            if cell.volume > 0 {
                out.push(point(
                    bucket,
                    Metric::ErrorRate,
                    cell.errors as f64 / cell.volume as f64,
                ));
            }
            for (metric, q) in [
                (Metric::LatencyP50, 0.5),
                (Metric::LatencyP95, 0.95),
                (Metric::LatencyP99, 0.99),
            ] {
                if let Some(v) = cell.quantile(q) {
                    out.push(point(bucket, metric, v));
                }
            }
            if let Some(v) = cell.geometric_mean() {
                out.push(point(bucket, Metric::LatencyGmean, v));
            }
        }
        bucket += step;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        let mut m = MetricsBuilder::new(60);
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
        let mut m = MetricsBuilder::new(60);
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
        let mut m = MetricsBuilder::new(60);
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
