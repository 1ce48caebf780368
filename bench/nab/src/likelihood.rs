//! Numenta's anomaly-likelihood post-processing, restated from its published description: turns
//! a stream of raw anomaly scores into "how unusual is the recent raw score for this file", so
//! that one threshold fits files whose raw scores live on different scales.
//!
//! Per row: the mean of the last few raw scores is compared with a Gaussian fitted to the
//! history of such means; the likelihood is one minus the Gaussian tail beyond it, and the
//! final score counts its nines (`log(1 − likelihood) / log(1e-10)`).

use std::collections::VecDeque;

/// Tail probabilities at or under this are "red" (a likelihood of five nines).
const RED_TAIL: f64 = 1e-5;
/// What a red tail right after another red tail is cut to (three nines): only the first row
/// of a run of red rows keeps its full score.
const YELLOW_TAIL: f64 = 1e-3;
/// Lower bounds on the fitted Gaussian: a file whose raw scores are almost always zero would
/// otherwise call the slightest blip certain.
const MIN_MEAN: f64 = 0.03;
const MIN_VARIANCE: f64 = 0.0003;
/// Under this variance of the *values* the series is flat, and nothing is called unusual.
const FLAT_VARIANCE: f64 = 1.5e-5;

/// Settings of [`Likelihood`]; one set for every file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LikelihoodConfig {
    /// Rows whose raw scores are left out of the fit (the raw detector is still learning).
    pub learning_rows: usize,
    /// Rows after the learning ones before the first fit; until then the likelihood is 0.5.
    pub estimation_rows: usize,
    /// Most recent rows the Gaussian is fitted to.
    pub history_rows: usize,
    /// Raw scores averaged into the value that is judged.
    pub averaging_rows: usize,
    /// Rows between two fits.
    pub refit_rows: usize,
}

impl Default for LikelihoodConfig {
    /// The published defaults, with learning and estimation of 300 rows each (NAB sets both to
    /// half its probationary period, which needs the file's length).
    fn default() -> Self {
        LikelihoodConfig {
            learning_rows: 300,
            estimation_rows: 300,
            history_rows: 8640,
            averaging_rows: 10,
            refit_rows: 100,
        }
    }
}

/// A Gaussian fitted to the averaged raw scores.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Normal {
    mean: f64,
    std: f64,
}

impl Normal {
    /// The broad distribution that makes every score in [0, 1] likely.
    const NULL: Normal = Normal { mean: 0.5, std: 1e3 };

    /// Probability of a sample at least as far from the mean as `x`, on the same side.
    fn tail(self, x: f64) -> f64 {
        let z = (x - self.mean).abs() / self.std;
        0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
    }
}

/// Mean and population variance.
fn mean_var(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count().max(1) as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

/// The streaming post-processor: one per file, fed each row's value and raw score in order.
#[derive(Debug)]
pub struct Likelihood {
    config: LikelihoodConfig,
    /// `(value, raw score)` of the last `history_rows` rows, before the current one.
    history: VecDeque<(f64, f64)>,
    /// The last `averaging_rows` raw scores.
    recent: VecDeque<f64>,
    rows: usize,
    normal: Option<Normal>,
    /// The previous row's unfiltered tail probability.
    prev_tail: f64,
    /// The previous row's averaged raw score.
    prev_average: f64,
}

impl Likelihood {
    /// A fresh post-processor.
    pub fn new(config: LikelihoodConfig) -> Likelihood {
        Likelihood {
            config,
            history: VecDeque::with_capacity(config.history_rows + 1),
            recent: VecDeque::with_capacity(config.averaging_rows + 1),
            rows: 0,
            normal: None,
            prev_tail: 1.0,
            prev_average: 0.0,
        }
    }

    /// The likelihood in [0, 1] that the row with `value` and raw score `raw` is anomalous.
    pub fn observe(&mut self, value: f64, raw: f64) -> f64 {
        self.recent.push_back(raw);
        if self.recent.len() > self.config.averaging_rows.max(1) {
            self.recent.pop_front();
        }
        let average = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let likelihood = if self.rows < self.config.learning_rows + self.config.estimation_rows {
            0.5
        } else {
            if self.normal.is_none() || self.rows.is_multiple_of(self.config.refit_rows.max(1)) {
                self.refit();
            }
            let tail = self.normal.unwrap_or(Normal::NULL).tail(average);
            // A run of red rows keeps its full score only at its start.
            let filtered = if tail <= RED_TAIL && self.prev_tail <= RED_TAIL {
                YELLOW_TAIL
            } else {
                tail
            };
            self.prev_tail = tail;
            1.0 - filtered
        };
        self.prev_average = average;
        self.history.push_back((value, raw));
        if self.history.len() > self.config.history_rows {
            self.history.pop_front();
        }
        self.rows += 1;
        likelihood
    }

    /// Fits the Gaussian to the history's averaged raw scores, leaving out the learning rows
    /// still in it.
    fn refit(&mut self) {
        let shifted_out = self.rows.saturating_sub(self.config.history_rows);
        let skip = self
            .config
            .learning_rows
            .saturating_sub(shifted_out)
            .min(self.rows);
        let window = self.config.averaging_rows.max(1);
        let mut averages = Vec::with_capacity(self.history.len());
        let mut total = 0.0;
        for (i, &(_, raw)) in self.history.iter().enumerate() {
            total += raw;
            if i >= window {
                total -= self.history.get(i - window).map_or(0.0, |&(_, r)| r);
            }
            averages.push(total / (i + 1).min(window) as f64);
        }
        let normal = if averages.len() <= skip {
            Normal::NULL
        } else {
            let (_, value_var) = mean_var(self.history.iter().skip(skip).map(|&(v, _)| v));
            let (mean, var) = mean_var(averages[skip..].iter().copied());
            if value_var < FLAT_VARIANCE {
                Normal::NULL
            } else {
                Normal {
                    mean: mean.max(MIN_MEAN),
                    std: var.max(MIN_VARIANCE).sqrt(),
                }
            }
        };
        self.prev_tail = normal.tail(self.prev_average);
        self.normal = Some(normal);
    }
}

/// NAB's score from a likelihood: its number of nines over ten (`log(1.0000000001 − l) /
/// log(1e-10)`), in [0, 1].
pub fn log_score(likelihood: f64) -> f64 {
    ((1.000_000_000_1 - likelihood).ln() / (1e-10f64).ln()).clamp(0.0, 1.0)
}

/// Each row's log-likelihood score for a raw score stream `raw` over `values`.
pub fn log_likelihoods(config: LikelihoodConfig, values: &[f64], raw: &[f64]) -> Vec<f64> {
    let mut l = Likelihood::new(config);
    values
        .iter()
        .zip(raw)
        .map(|(&v, &r)| log_score(l.observe(v, r)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn small() -> LikelihoodConfig {
        LikelihoodConfig {
            learning_rows: 10,
            estimation_rows: 10,
            history_rows: 100,
            averaging_rows: 2,
            refit_rows: 5,
        }
    }

    #[test]
    fn log_score_counts_nines() {
        assert!((log_score(0.999) - 0.3).abs() < 1e-6);
        assert!((log_score(0.99999) - 0.5).abs() < 1e-6);
        assert!((log_score(0.5) - 0.030103).abs() < 1e-6);
        assert_eq!(log_score(0.0), 0.0);
        // 1.0000000001 − 1 is not exactly 1e-10 in f64: ten nines to 8 digits.
        assert!((log_score(1.0) - 1.0).abs() < 1e-7);
    }

    #[test]
    fn tail_is_the_gaussian_q_function_on_either_side() {
        let n = Normal { mean: 0.0, std: 1.0 };
        assert!((n.tail(0.0) - 0.5).abs() < 1e-12);
        assert!((n.tail(1.0) - 0.158_655_253_9).abs() < 1e-9);
        assert!((n.tail(-2.0) - 0.022_750_131_9).abs() < 1e-9);
    }

    #[test]
    fn half_during_learning_then_judged_against_the_history() {
        let mut l = Likelihood::new(small());
        // Values vary (not flat); raw scores alternate 0.1 / 0.3: averages 0.2, std floor.
        let mut out = Vec::new();
        for i in 0..40 {
            out.push(l.observe(i as f64, if i % 2 == 0 { 0.1 } else { 0.3 }));
        }
        assert!(out[..20].iter().all(|&x| x == 0.5));
        // Averages after the learning rows are all 0.2: mean 0.2, variance at its floor;
        // a further 0.2 is at the mean, so the tail is a half.
        assert!(out[20..].iter().all(|&x| (x - 0.5).abs() < 1e-9), "{out:?}");
        // A jump to 1.0 averages 0.65: z = 0.45 / sqrt(0.0003) ≈ 26, far in the tail.
        let hit = l.observe(40.0, 1.0);
        assert!(hit > 0.99999, "{hit}");
        // The next row is red again: cut to three nines.
        let next = l.observe(41.0, 1.0);
        assert!((next - 0.999).abs() < 1e-12, "{next}");
    }

    #[test]
    fn a_flat_series_is_never_unusual() {
        let mut l = Likelihood::new(small());
        let out: Vec<f64> = (0..60)
            .map(|i| l.observe(5.0, if i == 50 { 1.0 } else { 0.0 }))
            .collect();
        // The null distribution: mean 0.5, std 1000, so every tail is about a half.
        assert!(out.iter().all(|&x| (x - 0.5).abs() < 1e-3), "{out:?}");
    }

    #[test]
    fn scores_on_a_prefix_equal_the_whole_stream() {
        let values: Vec<f64> = (0..500).map(|i| (i % 17) as f64).collect();
        let raw: Vec<f64> = (0..500).map(|i| ((i * 31) % 23) as f64 / 23.0).collect();
        let whole = log_likelihoods(small(), &values, &raw);
        let part = log_likelihoods(small(), &values[..300], &raw[..300]);
        assert_eq!(&whole[..300], &part[..]);
        assert!(whole.iter().all(|x| (0.0..=1.0).contains(x)));
    }
}
