//! Rolling Z-score, the seed's model: how many standard deviations a bucket lies from the mean
//! of the trailing window before it. Simple and fast, but one outlier inflates the standard
//! deviation for a whole window (see [`super::RobustZScore`] for the fix).

use super::window::RollingStats;
use super::{Detector, DetectorKind, Verdict, ZScoreConfig};
use crate::time::Timestamp;

/// Rolling Z-score over the last `window` buckets, silent until `min_history` buckets are seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ZScore {
    config: ZScoreConfig,
    stats: RollingStats,
}

impl ZScore {
    /// A detector with an empty history.
    pub fn new(config: &ZScoreConfig) -> ZScore {
        ZScore {
            config: config.clone(),
            stats: RollingStats::new(config.window),
        }
    }
}

impl Detector for ZScore {
    fn kind(&self) -> DetectorKind {
        DetectorKind::ZScore
    }

    fn observe(&mut self, _ts: Timestamp, value: f64) -> Verdict {
        let verdict = if self.stats.len() < self.config.min_history.max(2) || !value.is_finite() {
            Verdict::warming(value)
        } else {
            let c = &self.config;
            let scale = self.stats.std().max(c.min_std);
            Verdict::from_deviation(value, self.stats.mean(), scale, c.threshold, c.critical)
        };
        self.stats.push(value);
        verdict
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::Severity;
    use loglens_gen::rng::Rng;

    fn run(d: &mut impl Detector, values: &[f64]) -> Vec<Verdict> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| d.observe(Timestamp::from_secs(i as i64 * 60), v))
            .collect()
    }

    #[test]
    fn step_change_is_found_on_its_first_bucket() {
        let mut rng = Rng::new(7);
        let values: Vec<f64> = (0..200)
            .map(|i| if i < 150 { 100.0 } else { 130.0 } + rng.normal() * 2.0)
            .collect();
        let verdicts = run(&mut ZScore::new(&ZScoreConfig::default()), &values);
        let fired: Vec<usize> = (0..200).filter(|&i| verdicts[i].severity.is_some()).collect();
        // The step (15 sigma) is found with no delay; before it nothing fires.
        assert_eq!(fired.first(), Some(&150));
        assert_eq!(verdicts[150].severity, Some(Severity::Critical));
        assert!((verdicts[150].expected - 100.0).abs() < 1.0);
        // Once the window is mostly the new level it stops firing.
        assert!(fired.iter().all(|&i| i < 150 + 60), "{fired:?}");
    }

    #[test]
    fn silent_before_min_history() {
        let mut z = ZScore::new(&ZScoreConfig::default());
        let verdicts = run(&mut z, &[1.0; 30]);
        assert!(verdicts.iter().all(|v| !v.ready && v.score == 0.0));
        let v = z.observe(Timestamp::from_secs(0), 1000.0);
        assert!(v.ready);
        assert_eq!(v.severity, Some(Severity::Critical));
        assert_eq!(v.score, 999.0 / 1e-6);
    }
}
