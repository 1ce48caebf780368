//! Poisson scan for counts (records per bucket, errors among records): do the last 1, 2, 4, …
//! buckets together hold significantly more or fewer events than the baseline rate predicts?
//!
//! Why a count test beside the Z-scores? Log volumes are counts, and most series are small:
//! three lines a minute at night, one error an hour. A Z-score on such a series fires on a
//! minute of 12 lines where 3 were expected (chance, about 1 in 20,000 minutes) yet misses a
//! quiet service losing 85% of its traffic (one bucket of 1 where 3 were expected proves
//! nothing). Summing over several buckets gains the power one bucket lacks, and the Poisson
//! tail says how surprising a sum is at any size, so one threshold serves busy and quiet series.

use std::collections::VecDeque;

use super::{unit_score, Detector, DetectorKind, PoissonConfig, Severity, Verdict, MAX_SCORE};
use crate::time::Timestamp;

/// Added to the baseline's event and exposure sums so a baseline with no events yet still
/// expects a few (a first error after a quiet hour is unusual, not infinitely so).
const PRIOR_EVENTS: f64 = 1.0;

/// Buckets scoring at least this share of the threshold are not learned: a slow error burst
/// stays below the threshold for its first minutes, and learning them would raise the baseline
/// until the burst never crosses it.
const LEARN_GATE: f64 = 0.5;

/// The least the current bucket alone must score (−log10 of its tail bound) for a window
/// ending at it to fire upwards: without it, a long window reaching back into a burst that
/// has ended fires again on the first ordinary bucket after it (one error where 0.2 were
/// expected). One error where 0.03 were expected scores 1.1. Falls are exempt: on a quiet
/// series no single bucket can prove one (an empty bucket where 2 were expected scores 0.9),
/// and finding them there is what the longer windows are for.
const CURRENT_EVIDENCE: f64 = 1.0;

/// What [`PoissonScan::observe_count`] found: the verdict, per unit of exposure, and the
/// window that decided it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanVerdict {
    /// Expected, lower and upper are rates per unit of exposure (per bucket for volumes, a
    /// share of records for errors).
    pub verdict: Verdict,
    /// Events in the deciding window (the current bucket's while not firing).
    pub count: f64,
    /// Exposure of the deciding window.
    pub exposure: f64,
    /// Buckets in the deciding window.
    pub window: usize,
}

impl ScanVerdict {
    /// The rate observed over the deciding window (the expected one when it had no exposure).
    pub fn observed(&self) -> f64 {
        ratio(self.count, self.exposure, self.verdict.expected)
    }
}

/// Poisson scan state for one series: an exponentially weighted baseline rate and the last
/// few buckets' counts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PoissonScan {
    config: PoissonConfig,
    /// Weight of the past per bucket: 0.5 after `halflife` buckets.
    decay: f64,
    events: f64,
    exposure: f64,
    history: u32,
    frozen: u32,
    recent: VecDeque<(f64, f64)>,
    longest: usize,
    /// Per window length, how it is tested (derived from the configuration, not saved).
    #[serde(skip)]
    tests: Vec<Option<WindowTest>>,
}

/// Which verdicts get their band computed, and which windows must be scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Band {
    Always,
    WhenFiring,
    /// Every window, no cut: the reference the tests hold the cuts to.
    #[cfg(test)]
    Exhaustive,
}

/// How a window length is tested: for rises and falls (`windows`), or for falls only
/// (`fall_windows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WindowTest {
    BothWays,
    FallsOnly,
}

/// Per window length (index), how [`PoissonConfig`] tests it, up to the longest (so at least
/// two entries); a length in both lists is tested both ways (a fall that passes the
/// falls-only rule passes the other one too).
fn window_tests(config: &PoissonConfig) -> Vec<Option<WindowTest>> {
    let longest = config
        .windows
        .iter()
        .chain(&config.fall_windows)
        .copied()
        .max()
        .unwrap_or(1);
    let mut tests = vec![None; longest.max(1) + 1];
    for &w in &config.fall_windows {
        tests[w.max(1)] = Some(WindowTest::FallsOnly);
    }
    for &w in &config.windows {
        tests[w.max(1)] = Some(WindowTest::BothWays);
    }
    tests
}

impl PoissonScan {
    /// A detector with no history.
    pub fn new(config: &PoissonConfig) -> PoissonScan {
        let tests = window_tests(config);
        let longest = tests.len() - 1;
        PoissonScan {
            config: config.clone(),
            decay: 0.5_f64.powf(1.0 / f64::from(config.halflife.max(1))),
            events: 0.0,
            exposure: 0.0,
            history: 0,
            frozen: 0,
            recent: VecDeque::with_capacity(longest + 1),
            longest,
            tests,
        }
    }

    /// Scores a bucket with `count` events over `exposure` (1 per bucket for a volume, the
    /// bucket's records for its errors), then learns from it unless it is suspicious (scores
    /// at least half the threshold). The baseline stays frozen through at most `max_freeze`
    /// such buckets in a row, so a long outage is not learned as the new normal, yet a lasting
    /// change is accepted in the end.
    pub fn observe_count(&mut self, ts: Timestamp, count: f64, exposure: f64) -> ScanVerdict {
        self.scan(ts, count, exposure, Band::Always)
    }

    /// [`PoissonScan::observe_count`] for a caller that reads the band only of a verdict that
    /// fires (detect's policy): on the others `lower` and `upper` are the expectation. The
    /// band's Newton steps took a tenth of detect's judging.
    pub fn judge_count(&mut self, ts: Timestamp, count: f64, exposure: f64) -> ScanVerdict {
        self.scan(ts, count, exposure, Band::WhenFiring)
    }

    fn scan(&mut self, _ts: Timestamp, count: f64, exposure: f64, band: Band) -> ScanVerdict {
        let count = if count.is_finite() { count.max(0.0) } else { 0.0 };
        let exposure = if exposure.is_finite() {
            exposure.max(0.0)
        } else {
            0.0
        };
        self.recent.push_back((count, exposure));
        if self.recent.len() > self.longest {
            self.recent.pop_front();
        }
        let rate = (self.events + PRIOR_EVENTS * self.rate_hint()) / (self.exposure + PRIOR_EVENTS);
        let result = if self.history < self.config.min_history {
            ScanVerdict {
                verdict: Verdict::warming(rate),
                count,
                exposure,
                window: 1,
            }
        } else {
            self.judge(rate, count, exposure, band)
        };
        let suspicious = result.verdict.score >= self.config.threshold * LEARN_GATE;
        self.frozen = if suspicious {
            self.frozen.saturating_add(1)
        } else {
            0
        };
        if self.frozen == 0 || self.frozen > self.config.max_freeze {
            self.events = self.events * self.decay + count;
            self.exposure = self.exposure * self.decay + exposure;
            self.history = self.history.saturating_add(1);
        }
        result
    }

    /// The prior's rate: the baseline's own once it has events, else one event per bucket's
    /// worth of exposure seen so far.
    fn rate_hint(&self) -> f64 {
        if self.events > 0.0 && self.exposure > 0.0 {
            self.events / self.exposure
        } else {
            1.0 / (self.exposure / f64::from(self.history.max(1))).max(1.0)
        }
    }

    /// The most significant window that moves the same way as the current bucket and by at
    /// least `min_ratio` (falls-only windows: see [`PoissonScan::fall_holds`]). One pass over
    /// the recent buckets, newest first, sums every window length on the way, and stops once
    /// no longer window can matter ([`Cut`]); none longer than `max_freeze`, which would judge
    /// buckets the baseline has accepted as the new level.
    fn judge(&mut self, rate: f64, count: f64, exposure: f64, band: Band) -> ScanVerdict {
        if self.tests.is_empty() {
            self.tests = window_tests(&self.config);
        }
        let current_up =
            count > rate * exposure && poisson_tail_log10(count, rate * exposure) >= CURRENT_EVIDENCE;
        let current_down = count < rate * exposure;
        let Some((reach, cut)) = self.plan(rate, current_down, band) else {
            return self.verdict(0.0, rate, count, exposure, 1, band);
        };
        let mut best: Option<(f64, f64, f64, usize)> = None;
        let (mut k, mut e) = (0.0, 0.0);
        let mut newest = Newest::new(&self.recent);
        for (i, &(c, x)) in self.recent.iter().rev().take(reach).enumerate() {
            (k, e) = (k + c, e + x);
            let w = i + 1;
            if current_down && cut.rest_is_lost(w, k, best.map(|b| b.0)) {
                break;
            }
            let Some(Some(test)) = self.tests.get(w).copied() else {
                continue;
            };
            let mu = rate * e;
            if e <= 0.0 || mu.is_nan() || mu <= 0.0 {
                continue;
            }
            let both_ways = test == WindowTest::BothWays;
            let up = both_ways && k > mu && current_up && k >= mu * self.config.min_ratio;
            let down = k < mu
                && current_down
                && if both_ways {
                    k * self.config.min_ratio <= mu
                } else {
                    self.fall_holds(rate, w, k, mu, &mut newest)
                };
            if !(up || down) {
                continue;
            }
            let score = poisson_tail_log10(k, mu);
            if best.is_none_or(|b| score > b.0) {
                best = Some((score, k, e, w));
            }
        }
        match best {
            Some((score, k, e, w)) => self.verdict(score, rate, k, e, w, band),
            None => self.verdict(0.0, rate, count, exposure, 1, band),
        }
    }

    /// How many recent buckets a scan reads and when it may stop, or `None` when no window
    /// could give a verdict that is read (only firing ones are, with [`Band::WhenFiring`]).
    /// Falls-only windows are read only when they could score the learning gate (a score
    /// below it neither fires nor stops the learning): most series are sparse, and this
    /// spares them the pass over the longer windows.
    fn plan(&self, rate: f64, current_down: bool, band: Band) -> Option<(usize, Cut)> {
        let reach = self.longest.min(self.config.max_freeze as usize).max(1);
        let both_ways_reach = reach.min(self.config.windows.iter().copied().max().unwrap_or(1));
        // The most events any window expects, bounding every fall's score.
        let ceiling = if current_down {
            rate * self.exposure_of_newest(reach)
        } else {
            f64::INFINITY
        };
        let gate = self.config.threshold * LEARN_GATE.min(1.0);
        if band == Band::WhenFiring && ceiling / std::f64::consts::LN_10 < gate {
            return None;
        }
        #[cfg(test)]
        let exhaustive = band == Band::Exhaustive;
        #[cfg(not(test))]
        let exhaustive = false;
        let falls_only = current_down && ceiling >= gate * std::f64::consts::LN_10;
        let cut = Cut {
            ceiling,
            fall_min_ratio: self.config.fall_min_ratio,
            both_ways_reach,
            gate: if band == Band::WhenFiring { gate } else { 0.0 },
            exhaustive,
        };
        Some((
            if falls_only || exhaustive {
                reach
            } else {
                both_ways_reach
            },
            cut,
        ))
    }

    /// The exposure of the newest `n` buckets, summed newest first as the window loop sums
    /// (so to the bit): a plain loop over the ring's two slices, which spared a fifth of the
    /// scan's instructions that the deque's iterator chain (`rev`, `take`) spent.
    fn exposure_of_newest(&self, n: usize) -> f64 {
        let (older, newer) = self.recent.as_slices();
        let mut left = n;
        let mut sum = 0.0;
        for part in [newer, older] {
            let taken = left.min(part.len());
            for &(_, x) in part[part.len() - taken..].iter().rev() {
                sum += x;
            }
            left -= taken;
        }
        sum
    }

    /// Whether a fall over a long (falls-only) window of `w` buckets holding `k` events where
    /// `mu` were expected is an outage: down to `fall_min_ratio` of the expected, and still
    /// so over its last quarter. The baseline lags a daily curve's evening decline by about
    /// half (not a quarter), and an hour-long window reaching back into a silence that has
    /// ended would otherwise keep firing on every empty bucket of a sparse series.
    fn fall_holds(&self, rate: f64, w: usize, k: f64, mu: f64, newest: &mut Newest) -> bool {
        let ratio = self.config.fall_min_ratio;
        if k * ratio > mu {
            return false;
        }
        let (k_recent, e_recent) = newest.sums((w / 4).max(1));
        k_recent * ratio <= rate * e_recent
    }

    fn verdict(&self, score: f64, rate: f64, k: f64, e: f64, w: usize, wanted: Band) -> ScanVerdict {
        let c = &self.config;
        let severity = if score >= c.critical {
            Some(Severity::Critical)
        } else if score >= c.threshold {
            Some(Severity::Warning)
        } else {
            None
        };
        let per_unit = |x: f64| if e > 0.0 { x / e } else { rate };
        let (lower, upper) = match (wanted, severity) {
            (Band::WhenFiring, None) => (rate, rate),
            _ => {
                let (lower, upper) = band(rate * e, c.threshold);
                (per_unit(lower), per_unit(upper))
            }
        };
        ScanVerdict {
            verdict: Verdict {
                expected: rate,
                lower,
                upper,
                score,
                anomaly: unit_score(score, c.threshold),
                severity,
                ready: true,
            },
            count: k,
            exposure: e,
            window: w,
        }
    }
}

/// Events and exposure of the newest buckets, summed newest first (the window loop's order,
/// so equal to its sums to the bit), for lengths asked in nondecreasing order: the last
/// quarters of the falls-only windows, without summing each again.
struct Newest<'a> {
    buckets: std::iter::Rev<std::collections::vec_deque::Iter<'a, (f64, f64)>>,
    len: usize,
    sums: (f64, f64),
}

impl<'a> Newest<'a> {
    fn new(recent: &'a VecDeque<(f64, f64)>) -> Newest<'a> {
        Newest {
            buckets: recent.iter().rev(),
            len: 0,
            sums: (0.0, 0.0),
        }
    }

    /// The sums over the newest `len` buckets (or all there are), `len` at least the last one asked.
    fn sums(&mut self, len: usize) -> (f64, f64) {
        while self.len < len {
            let Some(&(c, x)) = self.buckets.next() else {
                break;
            };
            self.sums = (self.sums.0 + c, self.sums.1 + x);
            self.len += 1;
        }
        self.sums
    }
}

/// When a scan for falls may stop: every window from the `w`-th on holds at least the
/// events of the first `w` buckets (`k`) and expects at most `ceiling`, so it falls by at
/// most `ceiling / k` and scores at most `ceiling − k` nats, rounded as
/// [`poisson_tail_log10`] rounds (so stopping never changes the verdict read).
struct Cut {
    ceiling: f64,
    fall_min_ratio: f64,
    /// Windows past it are falls-only: they must fall by `fall_min_ratio`.
    both_ways_reach: usize,
    /// A score the rest must reach to matter (the learning gate when only firing verdicts are
    /// read, else 0).
    gate: f64,
    /// Never stop (the tests' reference scan).
    exhaustive: bool,
}

impl Cut {
    /// Whether no window from the `w`-th on can fire, be suspicious or beat `best`.
    fn rest_is_lost(&self, w: usize, k: f64, best: Option<f64>) -> bool {
        if self.exhaustive {
            return false;
        }
        if w > self.both_ways_reach && k * self.fall_min_ratio > self.ceiling {
            return true;
        }
        let most = (self.ceiling - k).max(0.0) / std::f64::consts::LN_10;
        most < self.gate || best.is_some_and(|b| most <= b)
    }
}

fn ratio(count: f64, exposure: f64, otherwise: f64) -> f64 {
    if exposure > 0.0 {
        count / exposure
    } else {
        otherwise
    }
}

/// −log10 of the Chernoff bound on the Poisson tail beyond `k` (upper tail for `k > mu`, lower
/// for `k < mu`): `mu − k + k·ln(k/mu)` nats. The bound is never below the true tail
/// probability, so this score never overstates the evidence.
pub fn poisson_tail_log10(k: f64, mu: f64) -> f64 {
    if k.is_nan() || mu.is_nan() || k < 0.0 || mu < 0.0 || k.is_infinite() {
        return 0.0;
    }
    if mu == 0.0 {
        return if k > 0.0 { MAX_SCORE } else { 0.0 };
    }
    let nats = if k == 0.0 { mu } else { mu - k + k * (k / mu).ln() };
    (nats.max(0.0) / std::f64::consts::LN_10).min(MAX_SCORE)
}

/// The normal band of a window expecting `mu` events: the counts at which the tail score
/// reaches `threshold` on each side. Starts from the square-root transform's edges
/// (`(√mu ± √(t/2))²`, t in nats) and takes a few Newton steps on the convex score, which is
/// exact to well under one event at a few logarithms per bucket.
fn band(mu: f64, threshold: f64) -> (f64, f64) {
    if mu.is_nan() || mu <= 0.0 || mu.is_infinite() {
        return (0.0, 0.0);
    }
    let t = threshold * std::f64::consts::LN_10;
    let step = (t / 2.0).sqrt();
    let edge = |mut k: f64, lo: f64, hi: f64| {
        for _ in 0..6 {
            let slope = (k / mu).ln();
            if slope == 0.0 || !slope.is_finite() {
                break;
            }
            k = (k - (mu - k + k * slope - t) / slope).clamp(lo, hi);
        }
        k
    };
    let upper = edge((mu.sqrt() + step).powi(2), mu, f64::MAX);
    let lower = if mu <= t {
        0.0
    } else {
        edge(
            (mu.sqrt() - step).max(0.0).powi(2).max(f64::MIN_POSITIVE),
            f64::MIN_POSITIVE,
            mu,
        )
    };
    (lower, upper)
}

impl Detector for PoissonScan {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Poisson
    }

    /// A plain count series: each value is a bucket's count (exposure 1).
    fn observe(&mut self, ts: Timestamp, value: f64) -> Verdict {
        self.observe_count(ts, value, 1.0).verdict
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(i: i64) -> Timestamp {
        Timestamp::from_secs(i * 60)
    }

    /// A steady Poisson-like series: the same few values over and over, mean `mean`.
    fn steady(mean: f64, i: i64) -> f64 {
        let wobble = [0.0, 1.0, -1.0, 2.0, -2.0, 0.0, 1.0, -1.0];
        (mean + wobble[(i % 8) as usize] * mean.sqrt()).max(0.0).round()
    }

    /// The scan stops early once no window left can matter: for `observe_count` once none
    /// can be suspicious or beat the best so far, for the policy's `judge_count` once none can
    /// be suspicious. Held to a scan of every window, on a busy series with exposures (errors
    /// among records) and on a sparse one, each with a burst and a silence: same severities,
    /// expectations and learning everywhere, the same verdict once the learning gate is
    /// reached (below it, the window may be a lesser one), and no band on what does not fire.
    #[test]
    fn cuts_change_no_verdict_anyone_reads() {
        let gate = PoissonConfig::default().threshold * LEARN_GATE;
        let busy = |i: i64| steady(12.0, i);
        for (name, base, exposures) in [
            ("busy", &busy as &dyn Fn(i64) -> f64, true),
            ("sparse", &sparse, false),
        ] {
            let new = || PoissonScan::new(&PoissonConfig::default());
            let (mut every, mut observed, mut judged) = (new(), new(), new());
            let (mut fired, mut below_gate) = (0, 0);
            for i in 0..600 {
                let count = match i {
                    300..=305 => 60.0,
                    400..=460 => 0.0,
                    _ => base(i),
                };
                let exposure = if exposures { 1.0 + (i % 3) as f64 } else { 1.0 };
                let reference = every.scan(at(i), count, exposure, Band::Exhaustive);
                let (a, b) = (
                    observed.observe_count(at(i), count, exposure),
                    judged.judge_count(at(i), count, exposure),
                );
                let fires = reference.verdict.severity.is_some();
                fired += usize::from(fires);
                if !fires {
                    let w = b.verdict;
                    assert_eq!((w.lower, w.upper), (w.expected, w.expected), "{name} {i}");
                }
                for (how, s) in [("observed", a), ("judged", b)] {
                    let (v, mut r) = (s.verdict, reference.verdict);
                    if how == "judged" && !fires {
                        (r.lower, r.upper) = (v.lower, v.upper);
                    }
                    if r.score < gate {
                        assert!(v.score < gate, "{name} {how} bucket {i}: {v:?}");
                        assert_eq!((v.expected, v.severity), (r.expected, None), "{name} {i}");
                        continue;
                    }
                    let window = (s.count, s.exposure, s.window);
                    let reference_window = (reference.count, reference.exposure, reference.window);
                    assert_eq!(window, reference_window, "{name} {how} bucket {i}");
                    assert_eq!(v, r, "{name} {how} bucket {i}");
                }
                below_gate += usize::from(reference.verdict.score < gate);
            }
            assert!(fired >= 5, "{name}: {fired} buckets fired");
            assert!(below_gate > 500, "{name}: {below_gate} buckets below the gate");
        }
    }

    #[test]
    fn the_tail_score_matches_known_values() {
        // P(X = 0 | mu = 10) = e^-10: 4.34 in log10.
        assert!((poisson_tail_log10(0.0, 10.0) - 10.0 / std::f64::consts::LN_10).abs() < 1e-12);
        assert_eq!(poisson_tail_log10(5.0, 5.0), 0.0);
        assert!(poisson_tail_log10(20.0, 5.0) > poisson_tail_log10(15.0, 5.0));
        assert!(poisson_tail_log10(0.0, 8.0) > poisson_tail_log10(2.0, 8.0));
        assert_eq!(poisson_tail_log10(3.0, 0.0), MAX_SCORE);
        assert_eq!(poisson_tail_log10(f64::NAN, 1.0), 0.0);
    }

    #[test]
    fn a_quiet_series_losing_most_of_its_traffic_fires_after_a_few_buckets() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        for i in 0..120 {
            let v = d.observe_count(at(i), steady(3.0, i), 1.0);
            assert_eq!(v.verdict.severity, None, "bucket {i}: {v:?}");
        }
        let first = (120..150)
            .find(|&i| {
                let v = d.observe_count(at(i), if i % 3 == 0 { 1.0 } else { 0.0 }, 1.0);
                v.verdict.severity.is_some()
            })
            .unwrap();
        assert!(first - 120 <= 16, "fired after {} buckets", first - 120);
    }

    /// About a line a minute, as a quiet host logs at night (mean 1).
    fn sparse(i: i64) -> f64 {
        [1.0, 2.0, 0.0, 1.0, 1.0, 0.0, 2.0, 1.0][(i % 8) as usize]
    }

    #[test]
    fn a_sparse_series_silent_for_an_hour_fires_and_stops_once_lines_come_back() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        for i in 0..240 {
            assert!(
                d.observe_count(at(i), sparse(i), 1.0).verdict.severity.is_none(),
                "bucket {i}"
            );
        }
        // 16 silent minutes prove nothing at a line a minute (e^-16 is short of 10^-7), the
        // run of silent minutes soon after does (a window of 32 would still hold 14 busy ones).
        let fired: Vec<(i64, usize)> = (240..300)
            .filter_map(|i| {
                let v = d.observe_count(at(i), 0.0, 1.0);
                v.verdict.severity.map(|_| (i, v.window))
            })
            .collect();
        assert!(
            fired
                .first()
                .is_some_and(|&(i, w)| i > 256 && i < 264 && w as i64 == i - 239),
            "{fired:?}"
        );
        // Lines come back: the hour-long window still holds the silence, its last quarter
        // no longer does, so an empty bucket of the sparse series is not an outage.
        for i in 300..360 {
            let v = d.observe_count(at(i), sparse(i), 1.0);
            assert!(i < 320 || v.verdict.severity.is_none(), "bucket {i}: {v:?}");
        }
    }

    #[test]
    fn a_silence_between_powers_of_two_fires_on_a_window_of_its_length() {
        // Three lines in four minutes: 16 silent minutes score 5.2 (e^-12). The baseline
        // learns the first eleven (until they look suspicious), so the silence scores 7 from
        // about its 25th bucket, while a window of 32 holds the lines before it until the 31st.
        let quiet = |i: i64| if i % 4 == 0 { 0.0 } else { 1.0 };
        let run_out = |mut d: PoissonScan| {
            for i in 0..300 {
                assert!(
                    d.observe_count(at(i), quiet(i), 1.0).verdict.severity.is_none(),
                    "bucket {i}"
                );
            }
            (300..328).find_map(|i| {
                let v = d.observe_count(at(i), 0.0, 1.0);
                v.verdict.severity.map(|_| ((i - 299) as usize, v.window))
            })
        };
        let (silent, window) = run_out(PoissonScan::new(&PoissonConfig::default())).unwrap();
        assert!(
            (24..=26).contains(&silent) && window == silent,
            "{silent} {window}"
        );
        let powers_of_two = PoissonConfig {
            fall_windows: vec![32, 64],
            ..PoissonConfig::default()
        };
        assert_eq!(run_out(PoissonScan::new(&powers_of_two)), None);
    }

    #[test]
    fn half_the_traffic_for_an_hour_is_not_an_outage() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        for i in 0..240 {
            d.observe_count(at(i), steady(4.0, i), 1.0);
        }
        // An evening decline the baseline lags: half the expected for an hour.
        for i in 240..300 {
            let v = d.observe_count(at(i), steady(2.0, i), 1.0);
            assert!(
                v.verdict.severity.is_none() || v.window <= 16,
                "bucket {i}: {v:?}"
            );
        }
    }

    #[test]
    fn one_busy_minute_on_a_quiet_series_is_not_an_anomaly() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        for i in 0..120 {
            d.observe_count(at(i), steady(3.0, i), 1.0);
        }
        let v = d.observe_count(at(120), 12.0, 1.0);
        assert_eq!(v.verdict.severity, None, "{v:?}");
        assert!(v.verdict.score > 2.0);
    }

    #[test]
    fn an_error_share_jump_fires_and_reports_the_window_rate() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        for i in 0..240 {
            let errors = if i % 25 == 0 { 1.0 } else { 0.0 };
            d.observe_count(at(i), errors, 20.0);
        }
        let mut fired = None;
        for i in 240..260 {
            let v = d.observe_count(at(i), 6.0, 20.0);
            if v.verdict.severity.is_some() {
                fired = Some(v);
                break;
            }
        }
        let v = fired.unwrap();
        assert!((v.observed() - 0.3).abs() < 1e-9, "{v:?}");
        assert!(v.verdict.expected < 0.01 && v.verdict.upper < 0.3, "{v:?}");
    }

    #[test]
    fn an_ordinary_bucket_after_a_burst_does_not_fire_again() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        // 100 records a bucket, one error in 500 records.
        for i in 0..300 {
            d.observe_count(at(i), if i % 5 == 0 { 1.0 } else { 0.0 }, 100.0);
        }
        let burst: Vec<bool> = (300..308)
            .map(|i| d.observe_count(at(i), 15.0, 100.0).verdict.severity.is_some())
            .collect();
        assert!(burst.iter().all(|&f| f), "{burst:?}");
        for i in 308..314 {
            assert_eq!(d.observe_count(at(i), 0.0, 100.0).verdict.severity, None);
        }
        // One error where 0.2 are expected: the 16-bucket window still holds the burst's 120,
        // but this bucket is no part of it.
        let v = d.observe_count(at(314), 1.0, 100.0);
        assert_eq!(v.verdict.severity, None, "{v:?}");
        // Errors resuming do fire.
        let v = d.observe_count(at(315), 8.0, 100.0);
        assert!(v.verdict.severity.is_some(), "{v:?}");
    }

    #[test]
    fn a_long_outage_is_not_learned_until_max_freeze() {
        let config = PoissonConfig {
            max_freeze: 30,
            halflife: 5,
            ..PoissonConfig::default()
        };
        let mut d = PoissonScan::new(&config);
        for i in 0..200 {
            d.observe_count(at(i), steady(20.0, i), 1.0);
        }
        let firing: Vec<bool> = (200..260)
            .map(|i| d.observe_count(at(i), 0.0, 1.0).verdict.severity.is_some())
            .collect();
        assert!(firing[10..30].iter().all(|&f| f), "{firing:?}");
        assert!(!firing[59], "the new level is accepted in the end: {firing:?}");
    }

    #[test]
    fn the_band_brackets_the_expectation() {
        let mut d = PoissonScan::new(&PoissonConfig::default());
        let mut last = None;
        for i in 0..100 {
            last = Some(d.observe_count(at(i), steady(50.0, i), 1.0));
        }
        let v = last.unwrap().verdict;
        assert!(v.lower < v.expected && v.expected < v.upper, "{v:?}");
        // The edges score the threshold (7) on each side.
        for edge in [v.lower, v.upper] {
            let score = poisson_tail_log10(edge, v.expected);
            assert!((score - 7.0).abs() < 1e-3, "{edge}: {score}");
        }
        let (lower, upper) = band(2.0, 7.0);
        assert_eq!(
            lower, 0.0,
            "an empty bucket is not surprising enough when 2 are expected"
        );
        assert!((poisson_tail_log10(upper, 2.0) - 7.0).abs() < 1e-3, "{upper}");
    }
}
