//! What an alert rule matches: incidents by label, severity or a regex over their messages, metric
//! points over a threshold for long enough, and templates first seen with a bad level. Every kind
//! yields [`Incident`]s, so grouping and delivery treat them alike.

use std::collections::BTreeMap;

use regex::Regex;

use super::matcher::Matcher;
use crate::detect::{DetectorKind, Incident, IncidentRow, Verdict};
use crate::metrics::{Metric, MetricPoint, SeriesKey};
use crate::template::TemplateStats;
use crate::{Level, Timestamp};

/// Severity of an incident: the detectors' own, so rules and incidents share one scale.
pub use crate::detect::Severity;

/// What alerting asks of an incident (the model is detection's: see [`IncidentRow`]).
impl IncidentRow {
    /// The labels rules and silences match on and grouping keys are built from.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let i = &self.incident;
        let mut labels = BTreeMap::new();
        labels.insert("severity".to_owned(), i.severity.as_str().to_owned());
        labels.insert("detector".to_owned(), i.detector.as_str().to_owned());
        labels.insert("metric".to_owned(), i.metric.clone());
        labels.insert("series".to_owned(), i.series.clone());
        let optional = [
            ("service", self.key.service.as_deref()),
            ("host", self.key.host.as_deref()),
            ("level", self.key.level.map(|l| l.as_str())),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                labels.insert(key.to_owned(), v.to_owned());
            }
        }
        if !i.root.is_empty() {
            labels.insert("root".to_owned(), i.root.clone());
        }
        if let Some(t) = self.key.template {
            // Hex, 16 digits, as in series keys (`template=…`) and the dashboard.
            labels.insert("template_id".to_owned(), format!("{t:016x}"));
        }
        labels
    }

    /// The incident's id.
    pub fn id(&self) -> &str {
        &self.incident.incident_id
    }

    /// Whether it is still going at `now`: started, and ended less than `resolve_after_secs` ago.
    /// Why a grace period? Detection runs on closed buckets, so an incident whose last bucket
    /// just closed may well go on in the next one.
    pub fn active_at(&self, now: Timestamp, resolve_after_secs: i64) -> bool {
        let i = &self.incident;
        i.start <= now
            && now.0
                < i.end
                    .0
                    .saturating_add(resolve_after_secs.saturating_mul(1_000_000))
    }

    /// A one-line description: `critical error_rate service=api: 0.31 (expected 0.02)`.
    pub fn summary(&self) -> String {
        let i = &self.incident;
        format!(
            "{} {} {}: {} (expected {})",
            i.severity,
            i.metric,
            i.series,
            short_number(i.observed),
            short_number(i.peak.expected)
        )
    }
}

fn short_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}").trim_end_matches('0').to_owned()
    }
}

/// A rule's condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Incidents from detection at or above a severity (and matching the rule's matchers).
    Incident {
        /// Lowest severity that matches (default: any).
        min_severity: Option<Severity>,
    },
    /// Incidents whose template or an example message matches the regex.
    Regex(Regex),
    /// A metric above/below a value for at least `for_secs`.
    Threshold {
        /// The metric, e.g. `error_rate`.
        metric: Metric,
        /// The comparison.
        op: ThresholdOp,
        /// The threshold.
        value: f64,
        /// How long it must hold (consecutive buckets), in seconds.
        for_secs: i64,
    },
    /// A template first seen with a level at or above `min_level`.
    NewTemplate(NewTemplate),
}

impl Condition {
    /// Selects the incidents this condition and the matchers accept (threshold and new-template
    /// conditions take their own inputs: see [`threshold_alerts`] and [`NewTemplate::alerts`]).
    pub fn select(&self, incidents: &[IncidentRow], matchers: &[Matcher]) -> Vec<IncidentRow> {
        incidents
            .iter()
            .filter(|i| matchers.iter().all(|m| m.matches(&i.labels())))
            .filter(|i| match self {
                Condition::Incident { min_severity } => min_severity.is_none_or(|s| i.incident.severity >= s),
                Condition::Regex(re) => {
                    i.template.as_deref().is_some_and(|t| re.is_match(t))
                        || i.examples.iter().any(|e| re.is_match(e))
                }
                Condition::Threshold { .. } | Condition::NewTemplate(_) => false,
            })
            .cloned()
            .collect()
    }
}

/// Threshold comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdOp {
    /// `>`
    Above,
    /// `<`
    Below,
}

/// Runs of consecutive buckets (`bucket_secs` wide) of one series where the threshold holds
/// for at least `for_secs`, as incidents (detector `threshold`, severity from the caller).
/// Points may come in any order.
pub fn threshold_alerts(
    points: &[MetricPoint],
    bucket_secs: i64,
    condition: &Condition,
    matchers: &[Matcher],
    severity: Severity,
) -> Vec<IncidentRow> {
    let Condition::Threshold {
        metric,
        op,
        value,
        for_secs,
    } = condition
    else {
        return Vec::new();
    };
    let mut by_series: BTreeMap<&SeriesKey, Vec<&MetricPoint>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.metric == *metric) {
        by_series.entry(&p.key).or_default().push(p);
    }
    let width = bucket_secs.saturating_mul(1_000_000);
    let mut out = Vec::new();
    for series in by_series.values_mut() {
        series.sort_by_key(|p| p.ts);
        let holds = |p: &MetricPoint| match op {
            ThresholdOp::Above => p.value > *value,
            ThresholdOp::Below => p.value < *value,
        };
        for run in runs(series, width, holds) {
            let incident = run_incident(&run, width, *value, severity);
            let span = incident.incident.end.0 - incident.incident.start.0;
            let long_enough = span >= for_secs.saturating_mul(1_000_000);
            if long_enough && matchers.iter().all(|m| m.matches(&incident.labels())) {
                out.push(incident);
            }
        }
    }
    out
}

/// Maximal runs of adjacent buckets (each starting `width` µs after the previous) that satisfy
/// `holds`.
fn runs<'p>(
    series: &[&'p MetricPoint],
    width: i64,
    holds: impl Fn(&MetricPoint) -> bool,
) -> Vec<Vec<&'p MetricPoint>> {
    let mut runs: Vec<Vec<&MetricPoint>> = Vec::new();
    let mut current: Vec<&MetricPoint> = Vec::new();
    for &p in series {
        let adjacent = current.last().is_some_and(|l| l.ts.0 + width == p.ts.0);
        if (!holds(p) || !adjacent) && !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
        if holds(p) {
            current.push(p);
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

fn run_incident(run: &[&MetricPoint], width: i64, threshold: f64, severity: Severity) -> IncidentRow {
    let first = run[0];
    let last = run[run.len() - 1];
    let peak = run
        .iter()
        .copied()
        .fold(first, |a, b| if b.value.abs() > a.value.abs() { b } else { a });
    let start = first.ts;
    let series = first.key.canonical();
    let metric = first.metric.as_str();
    let score = peak.value / if threshold == 0.0 { 1.0 } else { threshold };
    let incident = Incident {
        incident_id: super::idempotency_key(&["threshold", metric, &series, &start.0.to_string()]),
        start,
        end: Timestamp(last.ts.0 + width),
        peak_ts: peak.ts,
        detector: DetectorKind::Threshold,
        metric: metric.to_owned(),
        observed: peak.value,
        peak: rule_verdict(threshold, score, severity),
        severity,
        buckets: u32::try_from(run.len()).unwrap_or(u32::MAX),
        root: series.clone(),
        members: Vec::new(),
        series,
    };
    IncidentRow {
        incident,
        key: (*first.key).clone(),
        template: None,
        examples: Vec::new(),
    }
}

/// The verdict of a rule: `expected` is what the rule compares with, and the rule holding is
/// its judgement (there is no band).
fn rule_verdict(expected: f64, score: f64, severity: Severity) -> Verdict {
    Verdict {
        expected,
        lower: expected,
        upper: expected,
        score,
        anomaly: 1.0,
        severity: Some(severity),
        ready: true,
    }
}

/// A template first seen with level at or above `min_level` (from `templates/`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewTemplate {
    /// Lowest level that matches.
    pub min_level: Level,
}

impl NewTemplate {
    /// Current templates (see [`canonical_templates`](crate::template::canonical_templates))
    /// first seen at or after `since` with a level at or above `min_level`, as incidents
    /// (detector `new_template`, metric `template_count`), filtered by the matchers.
    pub fn alerts(
        &self,
        templates: &[TemplateStats],
        since: Timestamp,
        matchers: &[Matcher],
    ) -> Vec<IncidentRow> {
        templates
            .iter()
            .filter(|t| t.first_seen >= since && t.level.is_some_and(|l| l >= self.min_level))
            .map(template_incident)
            .filter(|i| matchers.iter().all(|m| m.matches(&i.labels())))
            .collect()
    }
}

/// The series key is written as `detect` writes it (template id in 16 hex digits), so rules and
/// silences match new-template alerts from either source alike.
fn template_incident(t: &TemplateStats) -> IncidentRow {
    let key = SeriesKey {
        service: t.service.clone(),
        template: Some(t.id),
        ..SeriesKey::default()
    };
    let series = key.canonical();
    let count = t.count as f64;
    let severity = Severity::Warning;
    let incident = Incident {
        incident_id: super::idempotency_key(&["new_template", &t.id.to_string()]),
        start: t.first_seen,
        end: Timestamp(t.last_seen.0 + 1_000_000),
        peak_ts: t.first_seen,
        detector: DetectorKind::NewTemplate,
        metric: Metric::TemplateCount.as_str().to_owned(),
        observed: count,
        peak: rule_verdict(0.0, count, severity),
        severity,
        buckets: 1,
        root: series.clone(),
        members: Vec::new(),
        series,
    };
    IncidentRow {
        incident,
        key: SeriesKey {
            level: t.level,
            ..key
        },
        template: Some(t.template.clone()),
        examples: vec![t.example.clone()],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) fn incident(id: &str, service: &str, severity: Severity, start: i64, end: i64) -> IncidentRow {
        let key = SeriesKey {
            service: Some(service.into()),
            ..SeriesKey::default()
        };
        let series = key.canonical();
        let incident = Incident {
            incident_id: id.into(),
            start: Timestamp::from_secs(start),
            end: Timestamp::from_secs(end),
            peak_ts: Timestamp::from_secs(start),
            detector: DetectorKind::ZScore,
            metric: "error_rate".into(),
            observed: 0.3,
            peak: Verdict::from_deviation(0.3, 0.01, 0.03, 4.0, 8.0),
            severity,
            buckets: 1,
            root: series.clone(),
            members: Vec::new(),
            series,
        };
        IncidentRow {
            incident,
            key,
            template: Some("upstream timed out after <*> ms".into()),
            examples: vec!["upstream timed out after 3000 ms".into()],
        }
    }

    fn point(service: &str, minute: i64, value: f64) -> MetricPoint {
        MetricPoint {
            ts: Timestamp::from_secs(minute * 60),
            metric: Metric::ErrorRate,
            key: std::sync::Arc::new(SeriesKey {
                service: Some(service.into()),
                ..SeriesKey::default()
            }),
            value,
            filled: false,
        }
    }

    #[test]
    fn incident_condition_filters_by_severity_and_labels() {
        let all = vec![
            incident("a", "api", Severity::Critical, 0, 60),
            incident("b", "api", Severity::Info, 0, 60),
            incident("c", "db", Severity::Critical, 0, 60),
        ];
        let cond = Condition::Incident {
            min_severity: Some(Severity::Warning),
        };
        let picked = cond.select(&all, &[Matcher::parse("service=api").unwrap()]);
        assert_eq!(picked.iter().map(IncidentRow::id).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn template_id_label_is_hex_as_in_series_keys() {
        let mut i = incident("a", "api", Severity::Info, 0, 60);
        i.key.template = Some(0x2a);
        assert_eq!(i.labels()["template_id"], "000000000000002a");
    }

    #[test]
    fn regex_condition_reads_template_and_examples() {
        let all = vec![incident("a", "api", Severity::Info, 0, 60)];
        let hit = Condition::Regex(Regex::new("timed out after 3000").unwrap());
        let miss = Condition::Regex(Regex::new("disk full").unwrap());
        assert_eq!(hit.select(&all, &[]).len(), 1);
        assert!(miss.select(&all, &[]).is_empty());
    }

    #[test]
    fn threshold_needs_consecutive_buckets_for_the_duration() {
        // api: above 0.05 at minutes 1,2,3 (3 minutes) then below; db: above at 1,2 and 4 (gap).
        let points = vec![
            point("api", 0, 0.01),
            point("api", 3, 0.07),
            point("api", 1, 0.06),
            point("api", 2, 0.09),
            point("api", 4, 0.01),
            point("db", 1, 0.5),
            point("db", 2, 0.5),
            point("db", 4, 0.5),
        ];
        let cond = Condition::Threshold {
            metric: Metric::ErrorRate,
            op: ThresholdOp::Above,
            value: 0.05,
            for_secs: 180,
        };
        let alerts = threshold_alerts(&points, 60, &cond, &[], Severity::Critical);
        assert_eq!(alerts.len(), 1);
        let alert = &alerts[0].incident;
        assert_eq!(
            (alert.series.as_str(), alert.detector),
            ("service=api", DetectorKind::Threshold)
        );
        assert_eq!(alert.start, Timestamp::from_secs(60));
        assert_eq!((alert.end, alert.buckets), (Timestamp::from_secs(240), 3));
        assert_eq!(alert.observed, 0.09);
        assert_eq!(alert.peak.expected, 0.05);
    }

    #[test]
    fn new_template_condition_needs_level_and_recency() {
        let t = |id, level, first| TemplateStats {
            id,
            canonical_id: id,
            template: format!("t{id}"),
            count: 3,
            first_seen: Timestamp::from_secs(first),
            last_seen: Timestamp::from_secs(first + 10),
            level,
            service: Some("api".into()),
            example: "x".into(),
        };
        let templates = vec![
            t(1, Some(Level::Error), 500),
            t(2, Some(Level::Info), 500),
            t(3, Some(Level::Critical), 10),
        ];
        let rule = NewTemplate {
            min_level: Level::Error,
        };
        let alerts = rule.alerts(&templates, Timestamp::from_secs(100), &[]);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].key.template, Some(1));
        assert_eq!(alerts[0].incident.series, "service=api,template=0000000000000001");
        let labels = alerts[0].labels();
        assert_eq!(
            (labels["service"].as_str(), labels["level"].as_str()),
            ("api", "error")
        );
    }

    #[test]
    fn active_until_grace_after_end() {
        let i = incident("a", "api", Severity::Info, 100, 200);
        assert!(!i.active_at(Timestamp::from_secs(99), 60));
        assert!(i.active_at(Timestamp::from_secs(259), 60));
        assert!(!i.active_at(Timestamp::from_secs(260), 60));
    }
}
