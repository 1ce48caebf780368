//! Seasonal baseline, Holt-Winters style: expected = level + hour-of-day profile (+ day-of-week
//! offset), with a residual scale per hour of day, so a daily peak is expected rather than
//! alarming and a quiet night has a tighter band than a busy afternoon.
//!
//! Why interpolate the hourly profile? With one slot per hour, a steep morning ramp would be a
//! staircase whose steps (up to a quarter of the daily amplitude) look like anomalies at
//! 1-minute buckets. Linear interpolation between hour centres follows a smooth daily curve
//! closely with only 24 numbers to learn.
//!
//! Why a warm-up of one day? The profile is initialised from the first day's hourly means and
//! within-hour variances (sums only, no stored points); before that, any daily curve would
//! look like a run of anomalies.

use super::{Detector, DetectorKind, SeasonalConfig, Transform, Verdict};
use crate::time::Timestamp;

const HOURS: usize = 24;
const SECS_PER_DAY: i64 = 86_400;

/// Per-hour sums collected during the warm-up.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct HourSums {
    n: f64,
    sum: f64,
    sum_sq: f64,
}

/// Day-of-week offsets: the mean of (value − hour profile) over each whole weekday, centred.
/// Used only once all seven weekdays have been seen; before that the level absorbs them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Weekdays {
    day_mean: [Option<f64>; 7],
    offset: [f64; 7],
    active: bool,
    current: Option<i64>,
    sum: f64,
    n: f64,
}

impl Weekdays {
    /// Accounts `deseasonalized` to the day of `day`; returns the offset change to apply to
    /// the level when the offsets switch on or move (so expectations stay continuous).
    fn add(&mut self, day: i64, deseasonalized: f64) -> f64 {
        let mut level_shift = 0.0;
        if self.current != Some(day) {
            if let Some(prev) = self.current {
                level_shift = self.close_day(prev, day);
            }
            self.current = Some(day);
            self.sum = 0.0;
            self.n = 0.0;
        }
        self.sum += deseasonalized;
        self.n += 1.0;
        level_shift
    }

    fn close_day(&mut self, prev: i64, today: i64) -> f64 {
        if self.n < 1.0 {
            return 0.0;
        }
        let mean = self.sum / self.n;
        let slot = &mut self.day_mean[weekday(prev)];
        *slot = Some(slot.map_or(mean, |old| 0.5 * old + 0.5 * mean));
        let before = if self.active {
            self.offset[weekday(today)]
        } else {
            0.0
        };
        let known: Vec<f64> = self.day_mean.iter().flatten().copied().collect();
        if known.len() == 7 {
            let centre = known.iter().sum::<f64>() / 7.0;
            for (o, m) in self.offset.iter_mut().zip(self.day_mean.iter().flatten()) {
                *o = m - centre;
            }
            self.active = true;
        }
        let after = if self.active {
            self.offset[weekday(today)]
        } else {
            0.0
        };
        after - before
    }

    fn offset(&self, day: i64) -> f64 {
        if self.active {
            self.offset[weekday(day)]
        } else {
            0.0
        }
    }
}

/// 0 = Monday (1970-01-01 was a Thursday).
fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// The two hour slots around a time of day and their interpolation weights.
fn slots(ts: Timestamp) -> [(usize, f64); 2] {
    let sod = ts.secs().rem_euclid(SECS_PER_DAY) as f64 + f64::from(ts.subsec_micros()) / 1e6;
    let pos = sod / 3600.0 - 0.5;
    let base = pos.floor();
    let w1 = pos - base;
    let j0 = (base as i64).rem_euclid(HOURS as i64) as usize;
    [(j0, 1.0 - w1), ((j0 + 1) % HOURS, w1)]
}

fn interp(profile: &[f64; HOURS], s: [(usize, f64); 2]) -> f64 {
    profile[s[0].0] * s[0].1 + profile[s[1].0] * s[1].1
}

/// Seasonal detector state for one series.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Seasonal {
    config: SeasonalConfig,
    warmup_secs: i64,
    start: Option<Timestamp>,
    warm: [HourSums; HOURS],
    ready: bool,
    level: f64,
    profile: [f64; HOURS],
    variance: [f64; HOURS],
    weekdays: Weekdays,
}

impl Seasonal {
    /// A detector with no history. An unparsable `warmup` counts as one day (validate the
    /// config with [`super::DetectConfig::validate`] to report it).
    pub fn new(config: &SeasonalConfig) -> Seasonal {
        Seasonal {
            config: config.clone(),
            warmup_secs: config.warmup_secs().unwrap_or(SECS_PER_DAY),
            start: None,
            warm: [HourSums::default(); HOURS],
            ready: false,
            level: 0.0,
            profile: [0.0; HOURS],
            variance: [0.0; HOURS],
            weekdays: Weekdays::default(),
        }
    }

    fn forward(&self, x: f64) -> f64 {
        match self.config.transform {
            Transform::None => x,
            Transform::Log => x.max(0.0).ln_1p(),
        }
    }

    fn inverse(&self, y: f64) -> f64 {
        match self.config.transform {
            Transform::None => y,
            Transform::Log => y.exp_m1(),
        }
    }

    fn learn_warmup(&mut self, ts: Timestamp, y: f64) {
        let h = (ts.secs().rem_euclid(SECS_PER_DAY) / 3600) as usize;
        let s = &mut self.warm[h];
        s.n += 1.0;
        s.sum += y;
        s.sum_sq += y * y;
    }

    /// Initialises level, profile and scales from the warm-up's hourly sums.
    fn finish_warmup(&mut self) {
        let means: Vec<Option<f64>> = self
            .warm
            .iter()
            .map(|s| (s.n > 0.0).then(|| s.sum / s.n))
            .collect();
        let vars: Vec<Option<f64>> = self
            .warm
            .iter()
            .map(|s| (s.n > 1.0).then(|| (s.sum_sq / s.n - (s.sum / s.n).powi(2)).max(0.0)))
            .collect();
        let known: Vec<f64> = means.iter().flatten().copied().collect();
        let level = known.iter().sum::<f64>() / known.len().max(1) as f64;
        let known_vars: Vec<f64> = vars.iter().flatten().copied().collect();
        let mean_var = known_vars.iter().sum::<f64>() / known_vars.len().max(1) as f64;
        for (h, (p, v)) in self.profile.iter_mut().zip(self.variance.iter_mut()).enumerate() {
            *p = fill_circular(&means, h).map_or(0.0, |m| m - level);
            *v = vars[h].unwrap_or(mean_var);
        }
        self.level = level;
        self.ready = true;
    }

    fn judge(&self, value: f64, expected_t: f64, scale: f64) -> Verdict {
        let c = &self.config;
        let y = self.forward(value);
        let mut v = Verdict::from_deviation(y, expected_t, scale, c.threshold, c.critical);
        v.expected = self.inverse(expected_t);
        v.lower = self.inverse(expected_t - c.threshold * scale);
        v.upper = self.inverse(expected_t + c.threshold * scale);
        if c.min_relative_change > 0.0 {
            let margin = c.min_relative_change * v.expected.abs();
            v.lower = v.lower.min(v.expected - margin);
            v.upper = v.upper.max(v.expected + margin);
            if (value - v.expected).abs() < margin {
                v.severity = None;
            }
        }
        v
    }

    fn learn(&mut self, s: [(usize, f64); 2], day: i64, y: f64, expected_t: f64, scale: f64) {
        let c = &self.config;
        // Clipped residuals: an anomaly moves the model only as much as a borderline point,
        // so a spike does not poison the baseline, while a lasting shift is still followed.
        let limit = c.threshold * scale;
        let r = (y - expected_t).clamp(-limit, limit);
        self.level += c.alpha * r;
        let seasonal = interp(&self.profile, s);
        let rp = (y - self.level - self.weekdays.offset(day) - seasonal).clamp(-limit, limit);
        for (j, w) in s {
            self.profile[j] += c.profile_alpha * w * rp;
            self.variance[j] += c.scale_alpha * w * (r * r - self.variance[j]);
        }
        if c.day_of_week {
            let shift = self.weekdays.add(day, y - seasonal);
            self.level -= shift;
        }
    }
}

/// The value of slot `h`, or the linear interpolation of the nearest known slots around it.
fn fill_circular(values: &[Option<f64>], h: usize) -> Option<f64> {
    if let Some(v) = values[h] {
        return Some(v);
    }
    let n = values.len();
    let before = (1..n).find_map(|d| values[(h + n - d) % n].map(|v| (d, v)));
    let after = (1..n).find_map(|d| values[(h + d) % n].map(|v| (d, v)));
    match (before, after) {
        (Some((db, vb)), Some((da, va))) => Some(vb + (va - vb) * db as f64 / (db + da) as f64),
        _ => None,
    }
}

impl Detector for Seasonal {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Seasonal
    }

    fn observe(&mut self, ts: Timestamp, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming(value);
        }
        let start = *self.start.get_or_insert(ts);
        let y = self.forward(value);
        if !self.ready {
            if ts.secs() - start.secs() < self.warmup_secs {
                self.learn_warmup(ts, y);
                return Verdict::warming(value);
            }
            self.finish_warmup();
        }
        let s = slots(ts);
        let day = ts.secs().div_euclid(SECS_PER_DAY);
        let offset = if self.config.day_of_week {
            self.weekdays.offset(day)
        } else {
            0.0
        };
        let expected_t = self.level + interp(&self.profile, s) + offset;
        let scale = interp(&self.variance, s)
            .max(0.0)
            .sqrt()
            .max(self.config.min_scale);
        let verdict = self.judge(value, expected_t, scale);
        self.learn(s, day, y, expected_t, scale);
        verdict
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::{Severity, ZScore, ZScoreConfig};
    use loglens_gen::rng::Rng;

    /// 2026-10-26, a Monday, in seconds.
    const MONDAY: i64 = 20_752 * 86_400;

    /// 7 days of 1-minute buckets: a daily sine (peak 200 at 15:00, trough 40) with N(0, 5) noise.
    fn daily_sine(seed: u64) -> Vec<(Timestamp, f64)> {
        let mut rng = Rng::new(seed);
        (0..7 * 1440)
            .map(|m| {
                let secs = MONDAY + m * 60;
                let phase = (secs % 86_400) as f64 / 86_400.0 * std::f64::consts::TAU;
                let clean = 120.0 + 80.0 * (phase - std::f64::consts::TAU * 9.0 / 24.0).sin();
                (Timestamp::from_secs(secs), clean + 5.0 * rng.normal())
            })
            .collect()
    }

    #[test]
    fn monday_constant_is_a_monday() {
        assert_eq!(MONDAY, crate::time::days_from_civil(2026, 10, 26) * 86_400);
        assert_eq!(weekday(MONDAY / 86_400), 0);
    }

    #[test]
    fn daily_curve_is_not_an_alarm_but_a_spike_at_the_peak_is() {
        let data = daily_sine(3);
        let mut seasonal = Seasonal::new(&SeasonalConfig::default());
        let mut zscore = ZScore::new(&ZScoreConfig::default());
        let (mut seasonal_alarms, mut z_alarms) = (0, 0);
        let mut max_score: f64 = 0.0;
        for &(ts, v) in &data {
            let s = seasonal.observe(ts, v);
            if s.ready && s.severity.is_some() {
                seasonal_alarms += 1;
            }
            if s.ready {
                max_score = max_score.max(s.score);
            }
            z_alarms += usize::from(zscore.observe(ts, v).severity.is_some());
        }
        // 8,640 scored points after the 1-day warm-up: no alarms at threshold 4, and the largest
        // residual is what 8,640 Gaussian draws give (about 3.8 sigma): the curve is learned.
        assert_eq!(seasonal_alarms, 0);
        assert!(max_score < 4.0, "max score {max_score}");
        // The plain Z-score over one hour mistakes the steep parts of the curve for anomalies.
        assert!(z_alarms > 0);
        // Find the same spike at a peak hour (day 8, 15:00), 6 sigma over the curve.
        let ts = Timestamp::from_secs(MONDAY + 7 * 86_400 + 15 * 3600);
        let v = seasonal.observe(ts, 200.0 + 6.0 * 5.0);
        assert!((v.expected - 200.0).abs() < 5.0, "expected {}", v.expected);
        assert_eq!(v.severity, Some(Severity::Warning), "score {}", v.score);
        // The band is the noise's: threshold 4 times a scale within 10% of the true sigma 5.
        let scale = (v.upper - v.expected) / 4.0;
        assert!((scale - 5.0).abs() < 0.5, "scale {scale}");
        assert!(v.score > 5.0 && v.score < 7.0, "score {}", v.score);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod generator_tests {
    use super::*;
    use loglens_gen::profile::Shape;
    use loglens_gen::rng::Rng;

    /// 7 days of 1-minute Poisson counts shaped like the generator's traffic (diurnal curve,
    /// weekend at 0.7), starting on a Monday: count alarms after the warm-up.
    /// `drop`: volume multiplier for 30 minutes on Wednesday from 15:00.
    fn alarms(peak: f64, min_relative_change: f64, drop: Option<f64>) -> (usize, f64) {
        let shape = Shape {
            depth: 1.0,
            weekend: 0.7,
        };
        let monday = 20_752 * 86_400;
        let mut rng = Rng::new(5);
        let mut d = Seasonal::new(&SeasonalConfig {
            min_relative_change,
            ..SeasonalConfig::default()
        });
        let (mut n, mut max) = (0, 0.0f64);
        for m in 0..7 * 1440 {
            let secs = monday + m * 60;
            let dropped = drop.filter(|_| (2 * 1440 + 900..2 * 1440 + 930).contains(&m));
            let v = f64::from(rng.poisson(peak * shape.at(secs) * dropped.unwrap_or(1.0)));
            let verdict = d.observe(Timestamp::from_secs(secs), v);
            if verdict.ready {
                n += usize::from(verdict.severity.is_some());
                max = max.max(verdict.score);
            }
        }
        (n, max)
    }

    #[test]
    fn generator_weekend_dip_raises_no_alarm_and_a_drop_is_found() {
        // At 200 lines per minute the model expects the curve and the weekend (0 alarms).
        assert_eq!(alarms(200.0, 0.0, None).0, 0);
        // The weekend eases in over six hours, so even at 2,000 per minute and without a
        // relative tolerance the model follows it (a 30% step at midnight was 6-10 sigma).
        let (n, max) = alarms(2000.0, 0.0, None);
        assert!(n == 0 && max < 5.0, "{n} alarms, max {max}");
        // With a relative tolerance of 50%, a traffic drop to 15% is still found.
        assert_eq!(alarms(2000.0, 0.5, None).0, 0);
        let (n, _) = alarms(2000.0, 0.5, Some(0.15));
        assert!(n >= 20, "{n} alarms during a 30-minute drop");
    }
}
