//! Streaming anomaly detectors over time-bucketed metric series, and the merging of anomalous
//! buckets into incidents. Pure: points enter as `(Timestamp, f64)`, verdicts leave as values.
//!
//! Two kinds of detector, two shapes of API:
//! - **Value detectors** implement [`Detector`]: one instance per series, fed every bucket of
//!   that series in time order through [`Detector::observe`], which returns a [`Verdict`] using
//!   only the points seen so far (no look-ahead). Work per point is bounded by the configured
//!   window. [`ZScore`], [`RobustZScore`], [`Seasonal`] and [`PoissonScan`] (which also takes
//!   an exposure, for error counts among records) are of this kind.
//! - **Event detectors** are driven by what happens, not by a value: [`NewTemplate`] is fed
//!   `(ts, template, level)` and fires once when a template first appears after its warm-up;
//!   [`Silence`] is fed the buckets in which a series *reported* ([`Silence::report`]) and the
//!   end of the data ([`Silence::until`]), and returns a verdict for every bucket in which a
//!   regularly reporting series stayed silent. Silence also implements [`Detector`] for callers
//!   that have a dense series (a volume of 0 means "nothing reported").
//!
//! Anomalous buckets become [`Anomaly`] values, and [`merge_incidents`] merges consecutive
//! anomalous buckets of one (detector, metric, series) into [`Incident`]s with a stable id.
//!
//! [`policy`] is what `loglens detect` runs: which series are watched by which detectors, the
//! floors and votes, and the incidents, as a state machine fed one bucket at a time.
//!
//! ```
//! use loglens_core::detect::{Detector, Severity, ZScore, ZScoreConfig};
//! use loglens_core::Timestamp;
//!
//! let mut z = ZScore::new(&ZScoreConfig::default());
//! let mut last = None;
//! for i in 0..120 {
//!     let value = if i == 100 { 50.0 } else { 10.0 + (i % 3) as f64 };
//!     last = Some((i, z.observe(Timestamp::from_secs(i * 60), value)));
//!     if i == 100 {
//!         break;
//!     }
//! }
//! let (_, verdict) = last.unwrap();
//! assert_eq!(verdict.severity, Some(Severity::Critical));
//! assert!(verdict.anomaly > 0.5 && verdict.anomaly <= 1.0);
//! ```

mod config;
mod contextual;
pub mod correlate;
mod incident;
mod poisson;
pub mod policy;
mod robust;
mod seasonal;
mod silence;
mod template;
mod window;
mod zscore;

use std::fmt;

pub use config::{
    DetectConfig, DetectError, Floors, MetricOverride, NewTemplateConfig, PoissonConfig, RobustConfig,
    SeasonalConfig, SilenceConfig, Transform, ZScoreConfig,
};
pub use contextual::{Contextual, ContextualConfig, ValueRange};
pub use correlate::{Correlator, IncidentMember};
pub use incident::{incident_id, merge_incidents, Anomaly, Incident, IncidentRow};
pub use poisson::{poisson_tail_log10, PoissonScan, ScanVerdict};
pub use robust::RobustZScore;
pub use seasonal::Seasonal;
pub use silence::Silence;
pub use template::{NewTemplate, NewTemplateHit};
pub use zscore::ZScore;

use crate::time::Timestamp;

/// How bad an anomaly is, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (a new INFO template).
    Info,
    /// Past the detector's threshold.
    Warning,
    /// Past the detector's critical threshold, or a new ERROR template.
    Critical,
}

impl Severity {
    /// The name stored in the `severity` column: `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "critical" | "crit" => Ok(Severity::Critical),
            _ => Err(format!("unknown severity {s:?} (info, warning, critical)")),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which detector produced an anomaly (the `detector` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum DetectorKind {
    /// Rolling Z-score over a trailing window.
    ZScore,
    /// Median/MAD Z-score over a trailing window.
    RobustZScore,
    /// Level plus hour-of-day and day-of-week profile.
    Seasonal,
    /// A template first seen after the warm-up.
    NewTemplate,
    /// A series that stopped reporting.
    Silence,
    /// Two or more value detectors agreeing on a bucket (the verdict is the strongest one's).
    Ensemble,
    /// Counts over the last few buckets against a baseline rate, by the Poisson tail.
    Poisson,
    /// A threshold alert rule held (made by `loglens alert run`, never in `incidents/`).
    Threshold,
}

impl DetectorKind {
    /// Every detector `loglens detect` runs, in column-name order of docs/datasets.md.
    pub const ALL: [DetectorKind; 7] = [
        DetectorKind::ZScore,
        DetectorKind::RobustZScore,
        DetectorKind::Seasonal,
        DetectorKind::NewTemplate,
        DetectorKind::Silence,
        DetectorKind::Ensemble,
        DetectorKind::Poisson,
    ];

    /// The name stored in the `detector` column.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::ZScore => "zscore",
            DetectorKind::RobustZScore => "robust_zscore",
            DetectorKind::Seasonal => "seasonal",
            DetectorKind::NewTemplate => "new_template",
            DetectorKind::Silence => "silence",
            DetectorKind::Ensemble => "ensemble",
            DetectorKind::Poisson => "poisson",
            DetectorKind::Threshold => "threshold",
        }
    }
}

impl std::str::FromStr for DetectorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DetectorKind::ALL
            .into_iter()
            .chain([DetectorKind::Threshold])
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown detector {s:?} (zscore, robust_zscore, seasonal, new_template, …)")
            })
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a detector says about one point.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The value the model expected at this point.
    pub expected: f64,
    /// Lower edge of the normal band (below it the detector fires).
    pub lower: f64,
    /// Upper edge of the normal band (above it the detector fires).
    pub upper: f64,
    /// Deviation in units of the model's scale (a |z|), >= 0 and finite; 0 while warming up.
    pub score: f64,
    /// The score mapped monotonically into [0, 1]: 0.5 at the firing threshold. For NAB and
    /// for ranking anomalies across detectors.
    pub anomaly: f64,
    /// Set when the detector fires.
    pub severity: Option<Severity>,
    /// False while the detector is still warming up (its verdict is then not a judgement).
    pub ready: bool,
}

/// Scores are capped here so they stay finite even when the model's scale is (near) zero.
pub const MAX_SCORE: f64 = 1e9;

impl Verdict {
    /// The verdict of a detector that has not enough history: the value is its own expectation.
    pub fn warming(value: f64) -> Verdict {
        Verdict {
            expected: value,
            lower: value,
            upper: value,
            score: 0.0,
            anomaly: 0.0,
            severity: None,
            ready: false,
        }
    }

    /// The verdict for `value` against a Gaussian-like model `expected ± k·scale`, firing at
    /// `threshold` (warning) and `critical` (critical) multiples of `scale`.
    pub fn from_deviation(value: f64, expected: f64, scale: f64, threshold: f64, critical: f64) -> Verdict {
        let deviation = (value - expected).abs();
        let score = if deviation == 0.0 {
            0.0
        } else if scale > 0.0 && scale.is_finite() {
            (deviation / scale).min(MAX_SCORE)
        } else {
            MAX_SCORE
        };
        let score = if score.is_nan() { 0.0 } else { score };
        let severity = severity_of(score, threshold, critical);
        Verdict {
            expected,
            lower: expected - threshold * scale,
            upper: expected + threshold * scale,
            score,
            anomaly: unit_score(score, threshold),
            severity,
            ready: true,
        }
    }
}

/// Maps a score >= 0 into [0, 1], strictly increasing, with `threshold` at 0.5. It never
/// saturates to exactly 1.0 below [`MAX_SCORE`], so rankings survive (NAB ranks scores).
pub fn unit_score(score: f64, threshold: f64) -> f64 {
    let t = if threshold > 0.0 { threshold } else { 1.0 };
    if score.is_nan() || score <= 0.0 {
        0.0
    } else {
        (score / (score + t)).clamp(0.0, 1.0)
    }
}

/// A streaming detector over one series of bucket values. One instance per series; call
/// [`Detector::observe`] for each bucket in time order. A verdict depends only on the points
/// before and at `ts`, and the same points always give the same verdicts.
pub trait Detector {
    /// Which detector this is.
    fn kind(&self) -> DetectorKind;
    /// Scores `value` at `ts` against the history, then learns from it.
    fn observe(&mut self, ts: Timestamp, value: f64) -> Verdict;
}

/// Severity of a z-like score against a warning and a critical threshold.
fn severity_of(score: f64, threshold: f64, critical: f64) -> Option<Severity> {
    if score >= critical {
        Some(Severity::Critical)
    } else if score >= threshold {
        Some(Severity::Warning)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn detectors() -> Vec<Box<dyn Detector>> {
        let c = DetectConfig::default();
        vec![
            Box::new(ZScore::new(&ZScoreConfig {
                min_history: 2,
                ..c.zscore.clone()
            })),
            Box::new(RobustZScore::new(&RobustConfig {
                min_history: 2,
                ..c.robust_zscore.clone()
            })),
            Box::new(Seasonal::new(&SeasonalConfig {
                warmup: "10m".to_owned(),
                ..c.seasonal.clone()
            })),
            Box::new(Silence::new(&c.silence, 60)),
            Box::new(PoissonScan::new(&c.poisson)),
        ]
    }

    proptest! {
        /// Whatever the values (huge, tiny, flat, NaN, infinite), scores stay finite and >= 0,
        /// anomaly scores stay in [0, 1], and a severity comes only with a positive score.
        #[test]
        fn scores_are_finite_and_anomaly_in_unit_interval(
            values in proptest::collection::vec(
                prop_oneof![
                    -1e12f64..1e12,
                    Just(0.0),
                    Just(5.0),
                    Just(f64::NAN),
                    Just(f64::INFINITY),
                ],
                1..300,
            )
        ) {
            for mut d in detectors() {
                for (i, &v) in values.iter().enumerate() {
                    let verdict = d.observe(Timestamp::from_secs(i as i64 * 60), v);
                    prop_assert!(verdict.score.is_finite() && verdict.score >= 0.0, "{:?} {verdict:?}", d.kind());
                    prop_assert!((0.0..=1.0).contains(&verdict.anomaly), "{:?} {verdict:?}", d.kind());
                    prop_assert!(verdict.severity.is_none() || verdict.score > 0.0);
                }
            }
        }
    }

    #[test]
    fn unit_score_is_monotone_with_half_at_threshold() {
        assert_eq!(unit_score(4.0, 4.0), 0.5);
        assert_eq!(unit_score(0.0, 4.0), 0.0);
        assert_eq!(unit_score(f64::NAN, 4.0), 0.0);
        assert!(unit_score(1e8, 4.0) < unit_score(1e9, 4.0));
        assert!(unit_score(MAX_SCORE, 4.0) < 1.0);
    }

    #[test]
    fn names_match_the_dataset_contract() {
        let names: Vec<&str> = DetectorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "zscore",
                "robust_zscore",
                "seasonal",
                "new_template",
                "silence",
                "ensemble",
                "poisson"
            ]
        );
        assert_eq!(Severity::Critical.as_str(), "critical");
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
    }
}
