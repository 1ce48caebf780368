//! The detectors run on NAB: what `loglens detect` runs on a value series with its default
//! configuration (the headline), loglens's streaming detectors with one configuration for every
//! file, and two references: NAB's windowed Gaussian, and CAD-OSE binned over the file's range
//! as NAB ran it (look-ahead, so not a streaming result). Each is created afresh per file and
//! sees the rows one at a time; a streaming method's row score uses only that row and the
//! ones before it.

use std::collections::VecDeque;

use loglens_core::detect::policy::ValueEnsemble;
use loglens_core::detect::{
    Contextual, ContextualConfig, DetectConfig, Detector, RobustConfig, RobustZScore, Seasonal,
    SeasonalConfig, ValueRange, ZScore, ZScoreConfig,
};
use loglens_core::metrics::Metric;
use loglens_core::Timestamp;

use crate::corpus::Series;
use crate::gaussian;
use crate::likelihood::{log_score, Likelihood, LikelihoodConfig};

/// A detector that can be scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// What `loglens detect` runs on a value series (latency) with the default `[detect]`
    /// configuration: the rolling Z-score, robust Z-score and seasonal baseline voting, two of
    /// three ([`ValueEnsemble`]), with the policy's incident rules; a row scores when it
    /// raises an alert (see [`product_alerts`]).
    Product,
    /// The same vote as a continuous score: the second-largest of the three anomaly scores,
    /// every row (no incident rules).
    ProductVote,
    /// loglens rolling Z-score.
    ZScore,
    /// loglens robust (median/MAD) Z-score.
    RobustZScore,
    /// loglens seasonal baseline.
    Seasonal,
    /// loglens ensemble: level and day-over-day Z-scores, scored as a recent record.
    Ensemble,
    /// loglens contextual detector (CAD-OSE with a range learned from the first rows).
    Contextual,
    /// The larger of the contextual score and 1.1 times the ensemble's.
    ContextualEnsemble,
    /// Contextual+ensemble with a third channel, the anomaly likelihoods of three rolling
    /// Z-scores, Numenta's spatial rule ([`SpatialRange`]) and a rest after each detection;
    /// its settings ([`CombinedParams::TUNED`]) were chosen on the scored files themselves
    /// (see `tuning.rs` for cross-validated figures).
    Combined,
    /// NAB's windowed Gaussian, scores rounded to 12 digits as published (reference).
    WindowedGaussian,
    /// CAD-OSE as NAB ran it: bins over the file's min and max, rest = probation / 5.
    /// Reference only: it looks ahead (the range and the file's length).
    CadOseNab,
}

impl Method {
    /// Every method, loglens's first.
    pub const ALL: [Method; 11] = [
        Method::Product,
        Method::ProductVote,
        Method::ZScore,
        Method::RobustZScore,
        Method::Seasonal,
        Method::Ensemble,
        Method::Contextual,
        Method::ContextualEnsemble,
        Method::Combined,
        Method::WindowedGaussian,
        Method::CadOseNab,
    ];

    /// False for the reference that reads the whole file first (its figures are not
    /// streaming results).
    pub fn streaming(self) -> bool {
        self != Method::CadOseNab
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Product => "loglens detect defaults (alerts)",
            Method::ProductVote => "loglens detect defaults (vote score)",
            Method::ZScore => "loglens zscore",
            Method::RobustZScore => "loglens robust_zscore",
            Method::Seasonal => "loglens seasonal",
            Method::Ensemble => "loglens ensemble",
            Method::Contextual => "loglens contextual",
            Method::ContextualEnsemble => "loglens contextual+ensemble",
            Method::Combined => "loglens combined, tuned here",
            Method::WindowedGaussian => "windowed Gaussian (ours, 12 digits)",
            Method::CadOseNab => "CAD-OSE ours (look-ahead: file range)",
        }
    }
}

/// The one Z-score configuration used on every NAB file.
pub fn zscore_config() -> ZScoreConfig {
    ZScoreConfig {
        window: 288,
        min_history: 30,
        ..ZScoreConfig::default()
    }
}

/// The one robust Z-score configuration used on every NAB file.
pub fn robust_config() -> RobustConfig {
    RobustConfig {
        window: 288,
        min_history: 30,
        ..RobustConfig::default()
    }
}

/// The one seasonal configuration used on every NAB file.
pub fn seasonal_config() -> SeasonalConfig {
    SeasonalConfig::default()
}

/// The one contextual configuration used on every NAB file: the published detector's
/// settings, its range learned from the first 500 rows (widened by their width on each side,
/// growing when a value falls outside), its rest a fixed 150 rows.
pub fn contextual_config() -> ContextualConfig {
    ContextualConfig {
        range: ValueRange::Learned {
            rows: 500,
            margin: 1.0,
            grow: true,
        },
        rest_rows: 150,
        ..ContextualConfig::default()
    }
}

/// CAD-OSE configured as NAB's runner did, from the whole file.
fn cad_ose_nab_config(series: &Series) -> ContextualConfig {
    let lo = series.values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = series.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    ContextualConfig {
        range: ValueRange::Fixed { min: lo, max: hi },
        rest_rows: (series.probation() as f64 / 5.0) as usize,
        ..ContextualConfig::default()
    }
}

fn stream_contextual(config: &ContextualConfig, series: &Series) -> Vec<f64> {
    let mut d = Contextual::new(config);
    series.values.iter().map(|&v| d.observe(v)).collect()
}

/// How much the ensemble's score is raised before it meets the contextual one.
const ENSEMBLE_WEIGHT: f64 = 1.1;

/// The contextual detector and the ensemble side by side, row by row: the larger of the
/// contextual score and [`ENSEMBLE_WEIGHT`] times the ensemble's (at most 1).
///
/// Why a weight? The two scales differ: the contextual detector fires at about 0.65 (its
/// scores are shares of contexts), the ensemble at about 0.55 (a record ratio `r / (1 + r)`).
/// Raising the ensemble lets its strongest records (r ≳ 1.8) through the common threshold,
/// which adds the broken daily patterns and slow drifts the contextual detector misses.
fn stream_contextual_ensemble(series: &Series) -> Vec<f64> {
    let mut c = Contextual::new(&contextual_config());
    let mut e = Ensemble::new();
    series
        .ts
        .iter()
        .zip(&series.values)
        .map(|(&ts, &v)| {
            let weighted = (ENSEMBLE_WEIGHT * e.observe(ts, v)).min(1.0);
            c.observe(v).max(weighted)
        })
        .collect()
}

/// The rolling windows of the Z-scores whose anomaly likelihoods make the combined detector's
/// third channel (it takes the largest of the three): a short window judges a change against
/// the last days, a long one against the last week or two, and which one sees a file's anomaly
/// first differs by file. Pooling them replaced tuning one window, whose neighbouring picks
/// scored 1 to 2 points apart (see `bench/nab/README.md`).
pub const LIKELIHOOD_Z_WINDOWS: [usize; 3] = [500, 1000, 1500];

/// The settings of the combined detector's likelihood channel, the ones its grid varies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CombinedParams {
    /// The likelihood's learning (and estimation) rows.
    pub learning_rows: usize,
    /// How much the likelihood channel is raised before it meets the others (see
    /// [`ENSEMBLE_WEIGHT`]: its scores count nines over ten, and a red row scores 0.5).
    pub weight: f64,
}

impl CombinedParams {
    /// The pick, tuned on the developers' subset itself: 400 learning rows (Numenta's default
    /// is 300), weight 1.1.
    pub const TUNED: CombinedParams = CombinedParams {
        learning_rows: 400,
        weight: 1.1,
    };

    /// The grid around the pick the README reports: learning rows 200 / 300 / 400, weights
    /// 1.1 / 1.2 / 1.3.
    pub fn grid() -> Vec<CombinedParams> {
        let mut out = Vec::new();
        for learning_rows in [200, 300, 400] {
            for weight in [1.1, 1.2, 1.3] {
                out.push(CombinedParams {
                    learning_rows,
                    weight,
                });
            }
        }
        out
    }

    /// The likelihood configuration of these settings.
    pub fn likelihood(&self) -> LikelihoodConfig {
        LikelihoodConfig {
            learning_rows: self.learning_rows,
            estimation_rows: self.learning_rows,
            ..LikelihoodConfig::default()
        }
    }
}
/// The share of the seen range's width a value may lie beyond it before [`SpatialRange`]
/// calls it anomalous: Numenta's `SPATIAL_TOLERANCE` in its NAB detector, taken as published.
pub const SPATIAL_TOLERANCE: f64 = 0.05;

/// Numenta's spatial anomaly (HTM's NAB detector, `numenta_detector.py`): a value beyond the
/// smallest and largest seen before it, by more than [`SPATIAL_TOLERANCE`] of their distance,
/// is anomalous whatever the model of the series says: a level never seen is news on any
/// series. The range only widens, so each new extreme fires once.
#[derive(Debug, Clone)]
pub struct SpatialRange {
    lo: f64,
    hi: f64,
}

impl Default for SpatialRange {
    fn default() -> Self {
        SpatialRange {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
        }
    }
}

impl SpatialRange {
    /// 1 when `value` lies beyond the range seen so far by more than the tolerance, else 0
    /// (also while fewer than two distinct values were seen); then takes `value` in.
    pub fn observe(&mut self, value: f64) -> f64 {
        let margin = (self.hi - self.lo) * SPATIAL_TOLERANCE;
        let beyond = self.hi > self.lo && (value > self.hi + margin || value < self.lo - margin);
        self.lo = self.lo.min(value);
        self.hi = self.hi.max(value);
        if beyond {
            1.0
        } else {
            0.0
        }
    }
}

/// After a combined score of at least this, the next [`REST_ROWS`] rows score 0.
pub const REST_SCORE: f64 = 0.7;
/// Rows that score 0 after a score of at least [`REST_SCORE`].
pub const REST_ROWS: usize = 100;

/// A rest after each detection: once a score reaches `at`, the next `rows` scores are 0, as
/// an alert is raised once per incident.
#[derive(Debug, Clone)]
pub struct Rest {
    at: f64,
    rows: usize,
    left: usize,
}

impl Rest {
    /// A rest of `rows` rows after each score of at least `at`.
    pub fn new(at: f64, rows: usize) -> Rest {
        Rest { at, rows, left: 0 }
    }

    /// The score the row keeps: 0 while resting, else `score` (which may start a rest).
    pub fn apply(&mut self, score: f64) -> f64 {
        if self.left > 0 {
            self.left -= 1;
            return 0.0;
        }
        if score >= self.at {
            self.left = self.rows;
        }
        score
    }
}

/// The combined detector: per row, the largest of the contextual score, [`ENSEMBLE_WEIGHT`]
/// times the ensemble's, `weight` times the largest log-likelihood score (`likelihood.rs`) of
/// the rolling Z-scores over [`LIKELIHOOD_Z_WINDOWS`] rows, and the spatial rule's
/// ([`SpatialRange`]), at most 1; after a score of at least [`REST_SCORE`] it rests for
/// [`REST_ROWS`] rows, as an alert is raised once per incident.
///
/// Why the likelihood? It judges how unusual the recent Z-scores are for this file, which
/// lifts a continuous score that means different things on different files; the contextual
/// detector and the ensemble already give sparse, per-file scores and gain nothing from it.
pub fn stream_combined(series: &Series, params: CombinedParams) -> Vec<f64> {
    let mut c = Contextual::new(&contextual_config());
    let mut e = Ensemble::new();
    let mut channels: Vec<(ZScore, Likelihood)> = (LIKELIHOOD_Z_WINDOWS.iter())
        .map(|&window| {
            let z = ZScore::new(&ZScoreConfig {
                window,
                ..zscore_config()
            });
            (z, Likelihood::new(params.likelihood()))
        })
        .collect();
    let mut range = SpatialRange::default();
    let mut rest = Rest::new(REST_SCORE, REST_ROWS);
    series
        .ts
        .iter()
        .zip(&series.values)
        .map(|(&ts, &v)| {
            let ensemble = ENSEMBLE_WEIGHT * e.observe(ts, v);
            let likelihood = (channels.iter_mut())
                .map(|(z, l)| log_score(l.observe(v, z.observe(ts, v).anomaly)))
                .fold(0.0, f64::max);
            let spatial = range.observe(v);
            let best = c.observe(v).max(ensemble).max(params.weight * likelihood);
            rest.apply(best.max(spatial).min(1.0))
        })
        .collect()
}

/// One anomaly score in [0, 1] per row of `series`.
pub fn run(method: Method, series: &Series) -> Vec<f64> {
    match method {
        Method::Product => product_alerts(series),
        Method::ProductVote => stream_product(series),
        Method::ZScore => stream(&mut ZScore::new(&zscore_config()), series),
        Method::RobustZScore => stream(&mut RobustZScore::new(&robust_config()), series),
        Method::Seasonal => stream(&mut Seasonal::new(&seasonal_config()), series),
        Method::Ensemble => stream_ensemble(series),
        Method::Contextual => stream_contextual(&contextual_config(), series),
        Method::ContextualEnsemble => stream_contextual_ensemble(series),
        Method::Combined => stream_combined(series, CombinedParams::TUNED),
        Method::CadOseNab => stream_contextual(&cad_ose_nab_config(series), series),
        Method::WindowedGaussian => {
            let z = gaussian::windowed_gaussian_z(&series.values);
            gaussian::probability_scores(&z)
                .into_iter()
                .map(gaussian::round12)
                .collect()
        }
    }
}

fn stream(detector: &mut dyn Detector, series: &Series) -> Vec<f64> {
    series
        .ts
        .iter()
        .zip(&series.values)
        .map(|(&ts, &v)| detector.observe(ts, v).anomaly)
        .collect()
}

/// The product's value-series vote with the default `[detect]` configuration for latency, the
/// value metric `loglens detect` watches. Its floors (a latency must triple to matter, ten
/// records a bucket) are in units NAB's series do not have, so only the vote is scored.
fn product_vote() -> ValueEnsemble {
    ValueEnsemble::new(&DetectConfig::default().for_metric(Metric::LatencyGmean.as_str()))
}

/// The alerts `loglens detect` raises on the series, as NAB scores: the vote's anomalous rows
/// merge into incidents as the policy merges them (at most the default `[detect.floors]`
/// `merge_gap_buckets` rows apart), an incident is reported once it has `min_incident_buckets`
/// anomalous rows, and the row
/// that makes it reportable scores the strongest verdict's anomaly score so far; every other
/// row scores 0 (an incident is one alert).
pub fn product_alerts(series: &Series) -> Vec<f64> {
    let mut vote = product_vote();
    let floors = DetectConfig::default().floors;
    let reach = floors.merge_gap_buckets as usize + 1;
    let mut last: Option<usize> = None;
    let mut run = (0u32, 0.0f64, false);
    series
        .ts
        .iter()
        .zip(&series.values)
        .enumerate()
        .map(|(i, (&ts, &v))| {
            let Some((_, verdict)) = vote.observe(ts, v) else {
                return 0.0;
            };
            if last.is_none_or(|l| i - l > reach) {
                run = (0, 0.0, false);
            }
            last = Some(i);
            run.0 += 1;
            run.1 = run.1.max(verdict.anomaly);
            if run.0 >= floors.min_incident_buckets && !run.2 {
                run.2 = true;
                run.1
            } else {
                0.0
            }
        })
        .collect()
}

fn stream_product(series: &Series) -> Vec<f64> {
    let mut vote = product_vote();
    series
        .ts
        .iter()
        .zip(&series.values)
        .map(|(&ts, &v)| vote.consensus(ts, v))
        .collect()
}

fn stream_ensemble(series: &Series) -> Vec<f64> {
    let mut e = Ensemble::new();
    series
        .ts
        .iter()
        .zip(&series.values)
        .map(|(&ts, &v)| e.observe(ts, v))
        .collect()
}

/// Rows whose steps decide the seasonal lag (the lag is unknown, and that part silent, before).
const LAG_PROBE: usize = 100;
/// Longest lag kept (one day of 1-minute rows with room to spare); finer series skip that part.
const MAX_LAG: usize = 2016;
/// Rows over which a combined score must be a record to score high.
const RECORD_ROWS: usize = 350;

/// The loglens ensemble on NAB, streaming and with one parameter set for every file:
/// - a rolling Z-score of the value over 500 rows (spikes, level shifts), and
/// - a rolling Z-score over 1000 rows of the change from the row one day earlier (the lag in
///   rows comes from the median step of the first 100 rows), which catches a broken daily
///   pattern whose values stay in range;
/// - their maximum `m`, divided by the largest `m` of the previous 350 rows: a burst of
///   anomalous rows scores high once, at its start, and a file whose Z-scores are always large
///   is judged against itself. `r / (1 + r)` maps it into [0, 1].
///
/// Why records? NAB rewards the first detection in a window and charges every detection
/// outside one; a single threshold across files also needs scores on a per-file scale.
#[derive(Debug)]
pub struct Ensemble {
    level: ZScore,
    daily: ZScore,
    values: VecDeque<f64>,
    steps: Vec<i64>,
    prev_ts: Option<Timestamp>,
    lag: Option<usize>,
    recent: VecDeque<f64>,
}

impl Default for Ensemble {
    fn default() -> Self {
        Ensemble::new()
    }
}

impl Ensemble {
    /// A fresh detector (one per file).
    pub fn new() -> Ensemble {
        let z = |window| {
            ZScore::new(&ZScoreConfig {
                window,
                min_history: 30,
                ..ZScoreConfig::default()
            })
        };
        Ensemble {
            level: z(500),
            daily: z(1000),
            values: VecDeque::with_capacity(MAX_LAG + 1),
            steps: Vec::with_capacity(LAG_PROBE),
            prev_ts: None,
            lag: None,
            recent: VecDeque::with_capacity(RECORD_ROWS + 1),
        }
    }

    fn learn_lag(&mut self, ts: Timestamp) {
        if let Some(prev) = self.prev_ts {
            if self.steps.len() < LAG_PROBE {
                self.steps.push(ts.0 - prev.0);
                if self.steps.len() == LAG_PROBE {
                    self.lag = day_lag(&self.steps);
                }
            }
        }
        self.prev_ts = Some(ts);
    }

    /// The anomaly score of the row `(ts, value)`, in [0, 1).
    pub fn observe(&mut self, ts: Timestamp, value: f64) -> f64 {
        self.observe_parts(ts, value).0
    }

    /// The anomaly score of the row `(ts, value)` and the larger of its two |z| before it is
    /// judged against the recent record (a continuous raw score, for post-processing).
    pub fn observe_parts(&mut self, ts: Timestamp, value: f64) -> (f64, f64) {
        self.learn_lag(ts);
        let level = self.level.observe(ts, value).score;
        let back = self
            .lag
            .and_then(|lag| self.values.len().checked_sub(lag))
            .and_then(|i| self.values.get(i));
        // The day-over-day part starts once a full day is known (feeding it zeros before
        // would make its first real change look enormous).
        let daily = back.map_or(0.0, |&b| self.daily.observe(ts, value - b).score);
        self.values.push_back(value);
        if self.values.len() > MAX_LAG {
            self.values.pop_front();
        }
        let m = level.max(daily);
        let max = self.recent.iter().copied().fold(0.0, f64::max);
        self.recent.push_back(m);
        if self.recent.len() > RECORD_ROWS {
            self.recent.pop_front();
        }
        let score = if max > 0.0 {
            let r = m / max;
            r / (1.0 + r)
        } else {
            0.0
        };
        (score, m)
    }
}

/// Rows per day from the median positive step (µs); `None` when a day is over [`MAX_LAG`] rows.
fn day_lag(steps: &[i64]) -> Option<usize> {
    let mut positive: Vec<i64> = steps.iter().copied().filter(|&d| d > 0).collect();
    positive.sort_unstable();
    let step = *positive.get(positive.len() / 2)?;
    let lag = usize::try_from(86_400_000_000 / step).ok()?.max(1);
    (lag <= MAX_LAG).then_some(lag)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Five-minute rows: a daily square-ish pattern with a little deterministic jitter.
    fn series(n: usize, f: impl Fn(usize) -> f64) -> Series {
        Series {
            key: "synthetic.csv".to_owned(),
            ts: (0..n)
                .map(|i| Timestamp::from_secs(1_400_000_000 + 300 * i as i64))
                .collect(),
            values: (0..n).map(f).collect(),
            windows: Vec::new(),
        }
    }

    fn jitter(i: usize) -> f64 {
        ((i * 7919) % 13) as f64 * 0.1
    }

    #[test]
    fn the_spatial_rule_fires_once_per_new_extreme_beyond_the_tolerance() {
        let mut range = SpatialRange::default();
        let scores: Vec<f64> = [10.0, 10.0, 20.0, 20.4, 21.5, 9.0, 8.5, 30.0, 25.0]
            .iter()
            .map(|&v| range.observe(v))
            .collect();
        // 10 alone is no range; 20 widens it before it has a width; 20.4 is within 5% of the
        // width (0.5) above 20, 21.5 beyond 20.4 + 0.52; 9 is below 10 - 0.575; 8.5 is not
        // below 9 - 0.625; 30 is far above, 25 inside.
        assert_eq!(scores, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn scores_use_no_look_ahead_and_are_deterministic() {
        let full = series(3000, |i| if i < 2000 { 10.0 } else { 25.0 } + jitter(i));
        let mut prefix = full.clone();
        prefix.ts.truncate(2100);
        prefix.values.truncate(2100);
        for method in Method::ALL.into_iter().filter(|m| m.streaming()) {
            let a = run(method, &full);
            let b = run(method, &prefix);
            assert_eq!(&a[..2100], &b[..], "{}", method.name());
            assert_eq!(a, run(method, &full), "{}", method.name());
            assert!(a.iter().all(|s| (0.0..=1.0).contains(s)), "{}", method.name());
        }
    }

    #[test]
    fn ensemble_scores_a_level_shift_once_at_its_start() {
        let s = series(3000, |i| if i < 2000 { 10.0 } else { 25.0 } + jitter(i));
        let scores = run(Method::Ensemble, &s);
        let top = (0..3000)
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(top, 2000);
        // A record: far above the previous rows' scale; the rows after it are not records.
        assert!(scores[2000] > 0.9, "{}", scores[2000]);
        assert!(scores[2001..2100].iter().all(|&s| s < 0.6));
    }

    #[test]
    fn ensemble_parts_give_the_raw_z_behind_the_score() {
        let s = series(3000, |i| if i < 2000 { 10.0 } else { 25.0 } + jitter(i));
        let mut e = Ensemble::new();
        let parts: Vec<(f64, f64)> =
            s.ts.iter()
                .zip(&s.values)
                .map(|(&t, &v)| e.observe_parts(t, v))
                .collect();
        assert_eq!(
            parts.iter().map(|p| p.0).collect::<Vec<_>>(),
            run(Method::Ensemble, &s)
        );
        // The shift is about 40 standard deviations of the jitter; the rows before are within 3.
        assert!(parts[2000].1 > 30.0, "{}", parts[2000].1);
        assert!(parts[600..2000].iter().all(|p| p.1 < 3.0));
    }

    #[test]
    fn ensemble_finds_a_missing_daily_jump_that_stays_in_range() {
        // 288 rows a day: high from row 100 to 150 of each day, except on day 8.
        let s = series(288 * 10, |i| {
            let (day, row) = (i / 288, i % 288);
            let high = (100..150).contains(&row) && day != 8;
            (if high { 50.0 } else { 10.0 }) + jitter(i)
        });
        let scores = run(Method::Ensemble, &s);
        let top = (288 * 2..288 * 10)
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(top, 288 * 8 + 100);
        // The level Z-score alone sees nothing unusual there.
        let z = run(Method::ZScore, &s);
        assert!(z[288 * 8 + 100] < 0.5);
    }

    #[test]
    fn contextual_scores_a_level_shift_high_and_then_rests() {
        let s = series(3000, |i| if i < 2000 { 10.0 } else { 25.0 } + jitter(i));
        for method in [Method::Contextual, Method::ContextualEnsemble] {
            let scores = run(method, &s);
            assert!(scores[2000] >= 0.75, "{} {}", method.name(), scores[2000]);
        }
        let scores = run(Method::Contextual, &s);
        // Nothing to report while the range is learned, and a rest of 150 rows after the shift.
        assert!(scores[..499].iter().all(|&x| x == 0.0));
        assert!(scores[2001..2151].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_look_ahead_reference_is_excluded_from_streaming_claims() {
        let streaming: Vec<Method> = Method::ALL.into_iter().filter(|m| m.streaming()).collect();
        assert_eq!(streaming.len(), Method::ALL.len() - 1);
        assert!(!Method::CadOseNab.streaming());
        // Its scores do depend on later rows (the file's range): a spike at the end changes them.
        let mut s = series(1000, |i| 10.0 + jitter(i));
        let before = run(Method::CadOseNab, &s);
        s.values[999] = 1000.0;
        assert_ne!(before[..999], run(Method::CadOseNab, &s)[..999]);
    }

    #[test]
    fn day_lag_from_steps() {
        assert_eq!(day_lag(&[300_000_000; 100]), Some(288));
        assert_eq!(day_lag(&[1_800_000_000; 100]), Some(48));
        assert_eq!(day_lag(&[1_000_000; 100]), None); // 86,400 rows a day: too long to keep
        assert_eq!(day_lag(&[0; 100]), None);
    }
}
