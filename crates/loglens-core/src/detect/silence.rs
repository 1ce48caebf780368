//! Silence detection: a series that reported in most recent buckets and then reports nothing.
//! Gap driven: the metrics only have rows for buckets with data, so the detector is told when
//! the series reported and fills in the silent buckets itself.

use super::{unit_score, Detector, DetectorKind, Severity, SilenceConfig, Verdict};
use crate::time::Timestamp;

/// Silence state for one series with buckets of `bucket_secs`.
///
/// Sparse use (metrics rows): call [`Silence::report`] for each bucket in which the series has
/// data, in time order, then [`Silence::until`] with the end of the data; both return the
/// silent buckets they passed over, with a verdict each. Dense use: [`Silence::step`] per
/// bucket, or [`Detector::observe`] with the bucket's volume (0 = nothing reported).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    config: SilenceConfig,
    bucket_secs: i64,
    next: Option<i64>,
    history: u32,
    presence: f64,
    presence_at_gap: f64,
    history_at_gap: u32,
    missing: u32,
    typical: f64,
}

impl Silence {
    /// A detector with no history (a bucket width below one second counts as one second).
    pub fn new(config: &SilenceConfig, bucket_secs: i64) -> Silence {
        Silence {
            config: config.clone(),
            bucket_secs: bucket_secs.max(1),
            next: None,
            history: 0,
            presence: 0.0,
            presence_at_gap: 0.0,
            history_at_gap: 0,
            missing: 0,
            typical: 0.0,
        }
    }

    fn bucket_of(&self, ts: Timestamp) -> i64 {
        ts.secs().div_euclid(self.bucket_secs) * self.bucket_secs
    }

    /// The series reported `value` in the bucket holding `ts`. Returns the silent buckets
    /// between its previous report (or [`Silence::until`] call) and this bucket.
    pub fn report(&mut self, ts: Timestamp, value: f64) -> Vec<(Timestamp, Verdict)> {
        let bucket = self.bucket_of(ts);
        let out = self.fill_to(bucket);
        if self.next.is_none_or(|n| bucket >= n) {
            self.step(Timestamp::from_secs(bucket), Some(value));
            self.next = Some(bucket + self.bucket_secs);
        }
        out
    }

    /// Nothing more was reported before `end` (exclusive): returns the silent buckets up to it.
    pub fn until(&mut self, end: Timestamp) -> Vec<(Timestamp, Verdict)> {
        let end = self.bucket_of(end);
        self.fill_to(end)
    }

    fn fill_to(&mut self, bucket: i64) -> Vec<(Timestamp, Verdict)> {
        let mut out = Vec::new();
        let Some(mut t) = self.next else {
            return out;
        };
        while t < bucket {
            let ts = Timestamp::from_secs(t);
            out.push((ts, self.step(ts, None)));
            t += self.bucket_secs;
        }
        self.next = Some(t.max(bucket));
        out
    }

    /// One bucket of a dense series: `Some(value)` if the series reported, `None` if not.
    pub fn step(&mut self, _ts: Timestamp, value: Option<f64>) -> Verdict {
        let rate = 1.0 / f64::from(self.config.min_history.max(1));
        match value {
            Some(v) => {
                // A series counts as present from its first report on.
                self.presence = if self.history == 0 {
                    1.0
                } else {
                    self.presence + rate * (1.0 - self.presence)
                };
                self.history = self.history.saturating_add(1);
                self.missing = 0;
                if v.is_finite() {
                    self.typical = if self.history == 1 {
                        v
                    } else {
                        self.typical + rate * (v - self.typical)
                    };
                }
                Verdict {
                    ready: self.history > self.config.min_history,
                    ..Verdict::warming(v)
                }
            }
            None => self.silent(rate),
        }
    }

    fn silent(&mut self, rate: f64) -> Verdict {
        if self.missing == 0 {
            self.presence_at_gap = self.presence;
            self.history_at_gap = self.history;
        }
        self.missing = self.missing.saturating_add(1);
        self.history = self.history.saturating_add(1);
        let c = &self.config;
        let regular = self.history_at_gap >= c.min_history && self.presence_at_gap >= c.min_presence;
        // An outage does not teach the detector that silence is normal: presence decays only
        // while the gap is not (yet) an anomaly.
        if !regular || self.missing < c.min_missing {
            self.presence -= rate * self.presence;
        }
        let score = if regular { f64::from(self.missing) } else { 0.0 };
        let severity = match () {
            _ if !regular || self.missing < c.min_missing => None,
            _ if self.missing >= c.critical_missing => Some(Severity::Critical),
            _ => Some(Severity::Warning),
        };
        Verdict {
            expected: self.typical,
            lower: self.typical,
            upper: self.typical,
            score,
            anomaly: unit_score(score, f64::from(c.min_missing)),
            severity,
            ready: self.history_at_gap >= c.min_history,
        }
    }
}

impl Detector for Silence {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Silence
    }

    /// `value` is the bucket's volume: 0 (or not finite) means the series did not report.
    fn observe(&mut self, ts: Timestamp, value: f64) -> Verdict {
        let present = value.is_finite() && value > 0.0;
        self.step(ts, present.then_some(value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + minute * 60)
    }

    #[test]
    fn silence_is_found_after_min_missing_buckets_and_lasts_the_gap() {
        let mut d = Silence::new(&SilenceConfig::default(), 60);
        for m in 0..120 {
            assert!(d.report(at(m), 10.0).is_empty());
        }
        // Nothing from minute 120 to 139, then the series comes back at 140.
        let gap = d.report(at(140), 10.0);
        assert_eq!(gap.len(), 20);
        assert_eq!(gap[0].0, at(120));
        let fired: Vec<usize> = (0..20).filter(|&i| gap[i].1.severity.is_some()).collect();
        assert_eq!(fired, (2..20).collect::<Vec<_>>()); // from the 3rd silent bucket on
        assert_eq!(gap[2].1.severity, Some(Severity::Warning));
        assert_eq!(gap[9].1.severity, Some(Severity::Critical));
        assert_eq!(gap[9].1.score, 10.0);
        assert!((gap[9].1.expected - 10.0).abs() < 1e-9);
        // Trailing silence is found by `until`, and `until` is incremental.
        assert_eq!(d.until(at(143)).len(), 2);
        let tail = d.until(at(150));
        assert_eq!(tail.len(), 7);
        assert_eq!(tail[0].0, at(143));
        assert!(tail.iter().skip(1).all(|(_, v)| v.severity.is_some()));
    }

    #[test]
    fn irregular_series_and_short_history_do_not_fire() {
        let mut d = Silence::new(&SilenceConfig::default(), 60);
        // Reports only every other minute: presence about 0.5, never "regular".
        let mut fired = 0;
        for m in (0..400).step_by(2) {
            fired += d
                .report(at(m), 1.0)
                .iter()
                .filter(|(_, v)| v.severity.is_some())
                .count();
        }
        fired += d
            .until(at(420))
            .iter()
            .filter(|(_, v)| v.severity.is_some())
            .count();
        assert_eq!(fired, 0);
        let mut young = Silence::new(&SilenceConfig::default(), 60);
        for m in 0..30 {
            young.report(at(m), 1.0);
        }
        assert!(young.until(at(60)).iter().all(|(_, v)| v.severity.is_none()));
    }
}
