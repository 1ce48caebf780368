//! Per-bucket rollups of records, for readers that sum rather than detect (the dashboard):
//! exact record and error counts by every label a reader filters on, the same per template,
//! and latency histograms in the latency sketch's bins (quantiles within 1%). Summing rollup
//! rows gives what counting the records gives, from thousands of rows instead of millions. The rows come from
//! [`MetricPartial::rollups`](crate::partial::MetricPartial::rollups), a chunk of a day at a time.

use std::sync::Arc;

use crate::record::Level;
use crate::time::Timestamp;

/// Records and errors of one bucket and label combination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// Bucket start.
    pub ts: Timestamp,
    /// Service label.
    pub service: Option<Arc<str>>,
    /// Host label.
    pub host: Option<Arc<str>>,
    /// Level.
    pub level: Option<Level>,
    /// Source (the file or listener the records came from).
    pub source: Option<Arc<str>>,
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
    pub service: Option<Arc<str>>,
    /// Host label.
    pub host: Option<Arc<str>>,
    /// Level.
    pub level: Option<Level>,
    /// Source.
    pub source: Option<Arc<str>>,
    /// Records.
    pub records: u64,
    /// Records with status ≥ 500 or level ERROR or worse.
    pub errors: u64,
    /// Time of the first of these records.
    pub first_ts: Timestamp,
    /// Time of the last of these records.
    pub last_ts: Timestamp,
}

/// Records of one bucket, service and host whose latency falls in one bin of the latency sketch
/// ([`crate::sketch`]): `latency_ms` is the bin's centre, within 1% of each of them.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    /// Bucket start.
    pub ts: Timestamp,
    /// Service label.
    pub service: Option<Arc<str>>,
    /// Host label.
    pub host: Option<Arc<str>>,
    /// The bin's centre, ms (within [`crate::sketch::RELATIVE_ACCURACY`] of every latency in it).
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
