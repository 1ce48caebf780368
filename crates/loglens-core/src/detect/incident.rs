//! Merging anomalous buckets into incidents: consecutive anomalous buckets of one (detector,
//! metric, series) become one incident with start, exclusive end, peak and a stable id; and the
//! incident as reported ([`IncidentRow`]: a row of `incidents/`, what alert rules match).

use std::collections::BTreeMap;

use super::{DetectorKind, IncidentMember, Severity, Verdict};
use crate::metrics::SeriesKey;
use crate::template::TemplateId;
use crate::time::Timestamp;

/// One anomalous bucket (a row of the `anomalies/` dataset, without the label columns, which
/// follow from `series`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Anomaly {
    /// Bucket start.
    pub ts: Timestamp,
    /// Which detector fired.
    pub detector: DetectorKind,
    /// Metric name (`volume`, `error_rate`, ...).
    pub metric: String,
    /// Canonical series key (`service=api,host=web-01`, or `total`).
    pub series: String,
    /// The value observed in the bucket.
    pub observed: f64,
    /// The detector's verdict on it (its `severity` is set).
    pub verdict: Verdict,
}

/// Consecutive anomalous buckets of one series and detector, merged.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    /// Stable id: see [`incident_id`].
    pub incident_id: String,
    /// First anomalous bucket.
    pub start: Timestamp,
    /// End of the last anomalous bucket (exclusive).
    pub end: Timestamp,
    /// Bucket with the highest score (the first of equals).
    pub peak_ts: Timestamp,
    /// Which detector fired.
    pub detector: DetectorKind,
    /// Metric name.
    pub metric: String,
    /// Canonical series key.
    pub series: String,
    /// Observed value at the peak.
    pub observed: f64,
    /// The detector's verdict at the peak (expected, band, score).
    pub peak: Verdict,
    /// The worst severity of the merged buckets.
    pub severity: Severity,
    /// Anomalous buckets merged.
    pub buckets: u32,
    /// The most specific series explaining every member (see [`super::correlate`]); the
    /// incident's own series before correlation.
    #[serde(default)]
    pub root: String,
    /// The incidents correlated into this one, by start (itself alone when nothing joined;
    /// empty before correlation).
    #[serde(default)]
    pub members: Vec<IncidentMember>,
}

impl Incident {
    /// The members other than the incident itself (the first member with its detector and
    /// series), one line each: `zscore on service=api,host=web-01 (warning)`.
    pub fn related(&self) -> Vec<String> {
        let mut lead_seen = false;
        self.members
            .iter()
            .filter(|m| {
                let is_lead = !lead_seen && m.detector == self.detector && m.series == self.series;
                lead_seen |= is_lead;
                !is_lead
            })
            .map(|m| format!("{} on {} ({})", m.detector, m.series, m.severity))
            .collect()
    }
}

/// An incident as reported: a row of the `incidents/` dataset (written by `loglens detect`,
/// read back by alerting and the dashboard) or an incident an alert rule made (threshold, new
/// template). One model for both, so rules, silences and receivers see them alike.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    /// The incident.
    pub incident: Incident,
    /// Its series labels (a new-template rule's carry the template's level too, which its
    /// series leaves out as detection's does).
    pub key: SeriesKey,
    /// The template that explains it, if one does.
    pub template: Option<String>,
    /// Up to 5 raw example messages.
    pub examples: Vec<String>,
}

/// The stable id of an incident: 16 hex digits of the FNV-1a hash of detector, metric, series
/// and start (µs), separated by a unit separator so no two inputs collide by concatenation.
pub fn incident_id(detector: DetectorKind, metric: &str, series: &str, start: Timestamp) -> String {
    let key = format!(
        "{}\u{1f}{metric}\u{1f}{series}\u{1f}{}",
        detector.as_str(),
        start.0
    );
    TemplateId::of(&key).to_string()
}

/// Merges anomalies into incidents. Buckets of one (detector, metric, series) merge when they
/// are at most `max_gap` buckets apart (0: strictly consecutive buckets). Anomalies without a
/// severity are ignored. Input order does not matter; the output is sorted by start, then
/// detector, metric and series.
pub fn merge_incidents(anomalies: &[Anomaly], bucket_secs: i64, max_gap: u32) -> Vec<Incident> {
    let bucket_us = bucket_secs.max(1) * 1_000_000;
    let reach = bucket_us * (i64::from(max_gap) + 1);
    let mut groups: BTreeMap<(DetectorKind, &str, &str), Vec<&Anomaly>> = BTreeMap::new();
    for a in anomalies.iter().filter(|a| a.verdict.severity.is_some()) {
        groups
            .entry((a.detector, &a.metric, &a.series))
            .or_default()
            .push(a);
    }
    let mut out = Vec::new();
    for mut rows in groups.into_values() {
        rows.sort_by_key(|a| a.ts);
        let mut run: Vec<&Anomaly> = Vec::new();
        for a in rows {
            if run.last().is_some_and(|last| a.ts.0 - last.ts.0 > reach) {
                out.extend(incident_of(&run, bucket_us));
                run.clear();
            }
            run.push(a);
        }
        out.extend(incident_of(&run, bucket_us));
    }
    out.sort_by(|a, b| {
        (a.start, a.detector, &a.metric, &a.series).cmp(&(b.start, b.detector, &b.metric, &b.series))
    });
    out
}

pub(crate) fn incident_of(run: &[&Anomaly], bucket_us: i64) -> Option<Incident> {
    let first = run.first()?;
    let last = run.last()?;
    let mut peak = *first;
    for a in run {
        if a.verdict.score > peak.verdict.score {
            peak = a;
        }
    }
    // A bucket repeated in the input (two rows with one ts) counts once.
    let mut buckets = 0u32;
    let mut prev = None;
    for a in run {
        if prev != Some(a.ts) {
            buckets = buckets.saturating_add(1);
        }
        prev = Some(a.ts);
    }
    Some(Incident {
        incident_id: incident_id(first.detector, &first.metric, &first.series, first.ts),
        start: first.ts,
        end: Timestamp(last.ts.0 + bucket_us),
        peak_ts: peak.ts,
        detector: first.detector,
        metric: first.metric.clone(),
        series: first.series.clone(),
        observed: peak.observed,
        peak: peak.verdict,
        severity: run.iter().filter_map(|a| a.verdict.severity).max()?,
        buckets,
        root: first.series.clone(),
        members: Vec::new(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn anomaly(minute: i64, series: &str, score: f64, severity: Severity) -> Anomaly {
        Anomaly {
            ts: Timestamp::from_secs(1_800_000_000 + minute * 60),
            detector: DetectorKind::ZScore,
            metric: "volume".to_owned(),
            series: series.to_owned(),
            observed: score * 10.0,
            verdict: Verdict {
                severity: Some(severity),
                ..Verdict::from_deviation(score, 0.0, 1.0, 4.0, 8.0)
            },
        }
    }

    #[test]
    fn consecutive_buckets_merge_with_exclusive_end_and_peak() {
        let a = vec![
            anomaly(12, "total", 5.0, Severity::Warning),
            anomaly(10, "total", 5.0, Severity::Warning),
            anomaly(11, "total", 9.0, Severity::Critical),
            anomaly(11, "service=api", 4.5, Severity::Warning),
            anomaly(20, "total", 6.0, Severity::Warning),
        ];
        let inc = merge_incidents(&a, 60, 0);
        assert_eq!(inc.len(), 3);
        let first = &inc[0];
        assert_eq!((first.series.as_str(), first.buckets), ("total", 3));
        assert_eq!(first.start, Timestamp::from_secs(1_800_000_000 + 600));
        assert_eq!(first.end, Timestamp::from_secs(1_800_000_000 + 13 * 60));
        assert_eq!(first.peak_ts, Timestamp::from_secs(1_800_000_000 + 660));
        assert_eq!((first.severity, first.observed), (Severity::Critical, 90.0));
        assert_eq!(inc[1].series, "service=api");
        assert_eq!((inc[2].buckets, inc[2].severity), (1, Severity::Warning));
        // With a tolerated gap of 7 buckets, minute 20 joins the first incident.
        let joined = merge_incidents(&a, 60, 7);
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[0].buckets, 4);
        assert_eq!(joined[0].end, Timestamp::from_secs(1_800_000_000 + 21 * 60));
    }

    #[test]
    fn incident_ids_are_stable_and_distinct() {
        let start = Timestamp::from_secs(1_800_000_000);
        let id = incident_id(DetectorKind::Silence, "volume", "host=web-01", start);
        assert_eq!(id.len(), 16);
        assert_eq!(
            id,
            incident_id(DetectorKind::Silence, "volume", "host=web-01", start)
        );
        assert_ne!(
            id,
            incident_id(DetectorKind::ZScore, "volume", "host=web-01", start)
        );
        assert_ne!(
            id,
            incident_id(DetectorKind::Silence, "volume", "host=web-02", start)
        );
        assert_ne!(
            id,
            incident_id(
                DetectorKind::Silence,
                "volume",
                "host=web-01",
                Timestamp(start.0 + 1)
            )
        );
    }
}
