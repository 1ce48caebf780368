//! Robust Z-score: distance from the median of the trailing window in units of the scaled
//! median absolute deviation. A single outlier moves neither the median nor the MAD much, so
//! the points after it are judged against the same baseline as before it.

use super::window::SortedWindow;
use super::{Detector, DetectorKind, RobustConfig, Verdict};
use crate::time::Timestamp;

/// 1.4826 · MAD estimates the standard deviation of Gaussian data.
const MAD_TO_STD: f64 = 1.4826;
/// √(π/2) · mean absolute deviation estimates it too; used when more than half the window is
/// one value (MAD = 0), which is common for small counts.
const MEAN_AD_TO_STD: f64 = 1.2533;

/// Median/MAD Z-score over the last `window` buckets, silent until `min_history` are seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RobustZScore {
    config: RobustConfig,
    window: SortedWindow,
}

impl RobustZScore {
    /// A detector with an empty history.
    pub fn new(config: &RobustConfig) -> RobustZScore {
        RobustZScore {
            config: config.clone(),
            window: SortedWindow::new(config.window),
        }
    }
}

impl Detector for RobustZScore {
    fn kind(&self) -> DetectorKind {
        DetectorKind::RobustZScore
    }

    fn observe(&mut self, _ts: Timestamp, value: f64) -> Verdict {
        let verdict = if self.window.len() < self.config.min_history.max(2) || !value.is_finite() {
            Verdict::warming(value)
        } else {
            let c = &self.config;
            let median = self.window.median();
            let (mad, mean_ad) = self.window.deviations(median);
            let scale = if mad > 0.0 {
                MAD_TO_STD * mad
            } else {
                MEAN_AD_TO_STD * mean_ad
            };
            // Quantised data (counts, percentages with two decimals) cannot vary by less than
            // its resolution; without this floor a flat window makes any step infinite.
            let scale = scale.max(self.window.resolution()).max(c.min_scale);
            Verdict::from_deviation(value, median, scale, c.threshold, c.critical)
        };
        self.window.push(value);
        verdict
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::{Severity, ZScore, ZScoreConfig};
    use loglens_gen::rng::Rng;

    fn series(rng: &mut Rng, n: usize) -> Vec<f64> {
        (0..n).map(|_| 50.0 + rng.normal() * 3.0).collect()
    }

    #[test]
    fn one_outlier_does_not_poison_the_next_points() {
        let mut rng = Rng::new(11);
        let mut values = series(&mut rng, 200);
        values[100] = 500.0;
        // A real (but modest) drop soon after the outlier: 6 sigma below the mean.
        values[110] = 50.0 - 18.0;
        let mut robust = RobustZScore::new(&RobustConfig::default());
        let mut plain = ZScore::new(&ZScoreConfig::default());
        let mut r = Vec::new();
        let mut z = Vec::new();
        for (i, &v) in values.iter().enumerate() {
            r.push(robust.observe(Timestamp::from_secs(i as i64 * 60), v));
            z.push(plain.observe(Timestamp::from_secs(i as i64 * 60), v));
        }
        assert_eq!(r[100].severity, Some(Severity::Critical));
        // After the outlier the baseline is unchanged: normal points stay normal and the
        // drop is still found.
        assert!((101..200).filter(|&i| i != 110).all(|i| r[i].severity.is_none()));
        assert!((r[101].expected - 50.0).abs() < 1.5);
        assert!(r[101].upper < 70.0, "band {:?}", r[101]);
        assert!(
            r[110].severity.is_some(),
            "robust z at the drop: {}",
            r[110].score
        );
        // The plain Z-score's deviation was inflated by the outlier and misses the drop.
        assert!(z[110].severity.is_none(), "plain z at the drop: {}", z[110].score);
    }

    #[test]
    fn mad_zero_falls_back_to_mean_absolute_deviation_then_resolution() {
        let mut d = RobustZScore::new(&RobustConfig::default());
        // 35 zeros, 5 ones, 20 tens: median 0, MAD 0, mean absolute deviation 205/60.
        for i in 0..60 {
            let v = match i % 12 {
                0..=6 => 0.0,
                7 => 1.0,
                _ => 10.0,
            };
            d.observe(Timestamp::from_secs(i * 60), v);
        }
        let v = d.observe(Timestamp::from_secs(3600), 10.0);
        assert_eq!(v.expected, 0.0);
        assert!(
            (v.score - 10.0 / (MEAN_AD_TO_STD * 205.0 / 60.0)).abs() < 1e-9,
            "{}",
            v.score
        );
        // Counts that are mostly 0 with some 1s: the scale is at least the resolution (1), so
        // a single extra event is not an alarm.
        let mut d = RobustZScore::new(&RobustConfig::default());
        for i in 0..60 {
            d.observe(Timestamp::from_secs(i * 60), if i % 3 == 0 { 1.0 } else { 0.0 });
        }
        let v = d.observe(Timestamp::from_secs(3600), 2.0);
        assert_eq!((v.score, v.severity), (2.0, None));
        let v = d.observe(Timestamp::from_secs(3660), 9.0);
        assert_eq!(v.severity, Some(Severity::Warning));
    }
}
