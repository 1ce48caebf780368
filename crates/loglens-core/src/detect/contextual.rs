//! Contextual anomaly detection (CAD-OSE, after Smirnov and Flerov's open-source Contextual
//! Anomaly Detector): a value becomes a few binary "facts", and the detector remembers which
//! sets of facts followed which. A row scores high when its facts were not predicted and the
//! remembered contexts that should have fired did not, i.e. when the sequence is new.
//!
//! How it works, per row:
//! 1. The value is cut into `2^value_bits` bins across a value range; the bits of the bin
//!    number are the row's *sensor facts*.
//! 2. A *context* is a pair (left facts, right facts): "after these facts came those". The
//!    left facts of a row are its sensor facts plus one fact per *active* context (a context
//!    whose left and right facts were all seen on consecutive rows), so contexts chain into
//!    longer sequences.
//! 3. Each row, the contexts whose left part was fully seen on the row before are scored
//!    (how often their right part came true); those that came true become active, partial
//!    matches become candidate new contexts, and new pairs are remembered.
//! 4. The score is 0 when the row's facts were all predicted; otherwise it is the mean of the
//!    share of selected contexts that did *not* come true and the share of candidate contexts
//!    that were new. After a score above `base_threshold` the detector rests (reports 0) for
//!    `rest_rows` rows, so one event is reported once.
//!
//! 5. The next row's prediction is the right facts of the best-predicting contexts whose left
//!    part this row's left facts hold.
//!
//! Why a learned range? The published detector bins values between the file's minimum and
//! maximum, which a streaming detector cannot know. [`ValueRange::Learned`] takes the range
//! of the first rows (replaying them once it is known), widened by a margin; with `grow` a
//! value outside it widens it (the coarser bins are what the file's range would have given),
//! without it such a value gets a bin number beyond `2^value_bits - 1` (or a sign fact).
//!
//! Cost: memory grows with the contexts learned (tens of thousands on a noisy 20,000-row
//! series) and a row's work with the contexts its facts touch; not for per-minute series of
//! thousands of keys. Hash maps serve lookups only; everything iterated is in id order, so
//! the scores do not depend on hashing.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Where the bins' value range comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRange {
    /// A range known in advance (the published detector used the file's min and max).
    Fixed {
        /// Lowest value (bin 0).
        min: f64,
        /// Highest value (the last bin).
        max: f64,
    },
    /// The range of the first `rows` values, widened by `margin` times its width on each
    /// side. Those rows score 0 and are learned once the range is known.
    Learned {
        /// Rows whose values fix the range.
        rows: usize,
        /// Extra room on each side, as a fraction of the seen width.
        margin: f64,
        /// Widen the range to take in a value that falls outside it (the bins coarsen, as
        /// if the range had been known from the start).
        grow: bool,
    },
    /// The min and max of the values so far, this one included: the bins widen whenever a
    /// new extreme arrives (itself news), and end as the file's min and max.
    Expanding,
}

/// Settings of [`Contextual`]; the defaults are the published detector's, except the range
/// (which it took from the whole file): the first 500 values, widened by their width on
/// each side, growing to take in values outside it (chosen on NAB, see `bench/nab`).
#[derive(Debug, Clone, PartialEq)]
pub struct ContextualConfig {
    /// The value range of the bins.
    pub range: ValueRange,
    /// Bits of the bin number (`2^value_bits` bins across the range).
    pub value_bits: u32,
    /// Bits a bin number may have beyond `value_bits` (values far outside the range share
    /// the outermost bins).
    pub extra_bits: u32,
    /// A score at or above this starts a rest.
    pub base_threshold: f64,
    /// Rows after a high score that report 0 (also the rows at the start that report 0).
    pub rest_rows: usize,
    /// Longest partial left match that may become a new context.
    pub max_left_facts: usize,
    /// Most active contexts carried into the next row's left facts.
    pub max_active: usize,
}

impl Default for ContextualConfig {
    fn default() -> Self {
        ContextualConfig {
            range: ValueRange::Learned {
                rows: 500,
                margin: 1.0,
                grow: true,
            },
            value_bits: 3,
            extra_bits: 8,
            base_threshold: 0.75,
            rest_rows: 150,
            max_left_facts: 7,
            max_active: 15,
        }
    }
}

/// A fact: a bit of a bin number, or an active context carried to the next row.
type Fact = u64;

/// Sensor facts start here: bit `b` set is `SENSOR + 2b + 1`, clear is `SENSOR + 2b`.
const SENSOR: Fact = 1 << 16;
/// A value below the range.
const NEGATIVE: Fact = SENSOR - 1;
/// Context `id` active on the previous row is the fact `NEURON + id`.
const NEURON: Fact = 1 << 31;

/// One side of a context: a sorted set of facts, shared by every context that has it.
#[derive(Debug, Default)]
struct Semi {
    facts: Vec<Fact>,
    /// How many of `facts` the last crossing saw.
    seen: usize,
    /// A fixed hash of `facts`, to order contexts deterministically.
    hash: i64,
    /// Left sides only: right side id -> context id.
    contexts: BTreeMap<usize, usize>,
}

impl Semi {
    fn complete(&self) -> bool {
        self.seen == self.facts.len()
    }

    /// Which of `facts` the last crossing (of `row`, sorted) saw.
    fn seen_facts(&self, row: &[Fact]) -> Vec<Fact> {
        self.facts
            .iter()
            .copied()
            .filter(|f| row.binary_search(f).is_ok())
            .collect()
    }
}

/// A remembered pair of left and right facts, with how well it has predicted.
#[derive(Debug)]
struct Context {
    right: usize,
    /// Right facts it was expected to produce, summed over the rows its left side matched.
    selected: u64,
    /// Right facts that did come, over the same rows.
    predicted: u64,
    /// Rows on which it came true in full.
    activations: u64,
    /// Seen as a whole (previous row's facts, this row's sensor facts) at least once.
    zero_level: bool,
}

/// The left or the right sides of all contexts, with an index from fact to sides.
#[derive(Debug, Default)]
struct Side {
    semis: Vec<Semi>,
    by_facts: HashMap<Vec<Fact>, usize>,
    by_fact: HashMap<Fact, Vec<usize>>,
    /// Sides by their last (largest) fact: a side is complete only if that fact is present,
    /// and on the left it is usually a rare neuron fact, so complete sides are found fast.
    by_last: HashMap<Fact, Vec<usize>>,
    /// Sides that saw at least one fact in the last crossing, ascending.
    crossed: Vec<usize>,
    /// The facts of the last crossing.
    row: Vec<Fact>,
}

impl Side {
    /// The id of the side with `facts` (sorted), created if new.
    fn intern(&mut self, facts: &[Fact]) -> usize {
        if let Some(&id) = self.by_facts.get(facts) {
            return id;
        }
        let id = self.semis.len();
        for &f in facts {
            self.by_fact.entry(f).or_default().push(id);
        }
        if let Some(&last) = facts.last() {
            self.by_last.entry(last).or_default().push(id);
        }
        self.semis.push(Semi {
            facts: facts.to_vec(),
            hash: facts_hash(facts),
            ..Semi::default()
        });
        self.by_facts.insert(facts.to_vec(), id);
        id
    }

    fn reset(&mut self) {
        for &id in &self.crossed {
            if let Some(s) = self.semis.get_mut(id) {
                s.seen = 0;
            }
        }
    }

    /// Marks the sides whose facts `facts` (sorted) all holds; the others count as unseen
    /// until [`Side::cross`] counts them.
    fn cross_complete(&mut self, facts: &[Fact]) {
        self.reset();
        let mut crossed = Vec::new();
        for &f in facts {
            for &id in self.by_last.get(&f).map_or(&[][..], Vec::as_slice) {
                if let Some(s) = self.semis.get_mut(id) {
                    if s.facts.iter().all(|x| facts.binary_search(x).is_ok()) {
                        s.seen = s.facts.len();
                        crossed.push(id);
                    }
                }
            }
        }
        crossed.sort_unstable();
        self.crossed = crossed;
        self.row = facts.to_vec();
    }

    /// Records how many facts of each side `facts` (sorted) holds.
    fn cross(&mut self, facts: &[Fact]) {
        self.reset();
        let mut crossed = Vec::new();
        for &f in facts {
            for &id in self.by_fact.get(&f).map_or(&[][..], Vec::as_slice) {
                if let Some(s) = self.semis.get_mut(id) {
                    if s.seen == 0 {
                        crossed.push(id);
                    }
                    s.seen += 1;
                }
            }
        }
        crossed.sort_unstable();
        self.crossed = crossed;
        self.row = facts.to_vec();
    }
}

/// A candidate context: (left facts, right facts).
type Pair = (Vec<Fact>, Vec<Fact>);

/// The context memory: left sides, right sides and the contexts joining them.
#[derive(Debug, Default)]
struct Memory {
    left: Side,
    right: Side,
    contexts: Vec<Context>,
}

/// What one row did to the memory.
struct Activity {
    /// Active contexts as (activations, left hash, right hash, id).
    active: Vec<(u64, i64, i64, usize)>,
    selected: usize,
    candidates: Vec<Pair>,
}

impl Memory {
    /// Remembers the context `(left, right)`; returns its id and whether it is new.
    fn context(&mut self, left: &[Fact], right: &[Fact]) -> (usize, bool) {
        let l = self.left.intern(left);
        let r = self.right.intern(right);
        let next = self.contexts.len();
        let Some(semi) = self.left.semis.get_mut(l) else {
            return (next, false);
        };
        let id = *semi.contexts.entry(r).or_insert(next);
        if id == next {
            self.contexts.push(Context {
                right: r,
                selected: 0,
                predicted: 0,
                activations: 0,
                zero_level: false,
            });
        }
        (id, id == next)
    }

    /// Scores the contexts whose left side the previous row crossed against this row's
    /// sensor facts (already crossed on the right); `fresh` is a context created this row.
    fn update(&mut self, fresh: Option<usize>, grow: bool, max_left: usize) -> Activity {
        let mut act = Activity {
            active: Vec::new(),
            selected: 0,
            candidates: Vec::new(),
        };
        if grow {
            // Partial left matches can grow new contexts: count them now.
            let row = std::mem::take(&mut self.left.row);
            self.left.cross(&row);
        }
        for &l in &self.left.crossed {
            // Without growth only complete left sides matter (most rows, once learned).
            let Some(left) = self.left.semis.get(l).filter(|s| grow || s.complete()) else {
                continue;
            };
            for (&r, &c) in &left.contexts {
                let (Some(right), Some(ctx)) = (self.right.semis.get(r), self.contexts.get_mut(c)) else {
                    continue;
                };
                if Some(c) == fresh {
                    continue;
                }
                let may_grow = grow && ctx.zero_level && left.seen <= max_left;
                if left.complete() {
                    act.selected += 1;
                    ctx.selected += right.facts.len() as u64;
                    ctx.predicted += right.seen as u64;
                    if right.seen > 0 && right.complete() {
                        ctx.activations += 1;
                        act.active.push((ctx.activations, left.hash, right.hash, c));
                        continue;
                    }
                }
                if may_grow && right.seen > 0 {
                    let pair = (left.seen_facts(&self.left.row), right.seen_facts(&self.right.row));
                    act.candidates.push(pair);
                }
            }
        }
        act
    }

    /// The right facts of the best-predicting contexts whose left side `facts` (sorted) holds.
    fn predict(&mut self, facts: &[Fact]) -> HashSet<Fact> {
        self.left.cross_complete(facts);
        let mut best = 0.0;
        let mut winners = Vec::new();
        for &l in &self.left.crossed {
            let Some(left) = self.left.semis.get(l).filter(|s| s.complete()) else {
                continue;
            };
            for &c in left.contexts.values() {
                let Some(ctx) = self.contexts.get(c) else { continue };
                let weight = if ctx.selected > 0 {
                    ctx.predicted as f64 / ctx.selected as f64
                } else {
                    0.0
                };
                if weight > best {
                    best = weight;
                    winners.clear();
                }
                if weight == best {
                    winners.push(ctx.right);
                }
            }
        }
        winners
            .iter()
            .filter_map(|&r| self.right.semis.get(r))
            .flat_map(|s| s.facts.iter().copied())
            .collect()
    }
}

/// Contextual anomaly detector over one series; see the module docs.
#[derive(Debug)]
pub struct Contextual {
    config: ContextualConfig,
    memory: Memory,
    /// Bin origin and width, once known.
    bins: Option<(f64, f64)>,
    /// Min and max so far, for [`ValueRange::Expanding`].
    extremes: Option<(f64, f64)>,
    /// Values held back until the learned range is known.
    pending: Vec<f64>,
    /// Previous row's left facts.
    left_facts: Vec<Fact>,
    predicted: HashSet<Fact>,
    /// Raw scores of the last `rest_rows` rows (starts with one 1.0: a rest at the start).
    history: std::collections::VecDeque<f64>,
}

impl Contextual {
    /// A detector with an empty memory.
    pub fn new(config: &ContextualConfig) -> Contextual {
        let mut c = Contextual {
            config: config.clone(),
            memory: Memory::default(),
            bins: None,
            extremes: None,
            pending: Vec::new(),
            left_facts: Vec::new(),
            predicted: HashSet::new(),
            history: std::collections::VecDeque::from([1.0]),
        };
        if let ValueRange::Fixed { min, max } = config.range {
            c.bins = Some(c.bins_for(min, max));
        }
        c
    }

    /// Bin origin and width for `[min, max]`; an empty range gets bins of width 1.
    fn bins_for(&self, min: f64, max: f64) -> (f64, f64) {
        let top = self.top_bin();
        let width = max - min;
        let width = if width > 0.0 && width.is_finite() {
            width
        } else {
            top
        };
        (min, width / top)
    }

    fn top_bin(&self) -> f64 {
        (2f64).powi(self.config.value_bits.min(62) as i32) - 1.0
    }

    /// The anomaly score of `value` in [0, 1], then learns it. Non-finite values score 0 and
    /// are not learned.
    pub fn observe(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        if self.config.range == ValueRange::Expanding {
            let (lo, hi) = self.extremes.unwrap_or((value, value));
            let (lo, hi) = (lo.min(value), hi.max(value));
            if self.extremes != Some((lo, hi)) {
                self.extremes = Some((lo, hi));
                self.bins = Some(self.bins_for(lo, hi));
            }
        }
        if let (ValueRange::Learned { grow: true, .. }, Some((lo, hi))) = (self.config.range, self.extremes) {
            if value < lo || value > hi {
                let (lo, hi) = (lo.min(value), hi.max(value));
                self.extremes = Some((lo, hi));
                self.bins = Some(self.bins_for(lo, hi));
            }
        }
        if self.bins.is_some() {
            return self.learn(value);
        }
        self.pending.push(value);
        let ValueRange::Learned { rows, margin, .. } = self.config.range else {
            return 0.0;
        };
        if self.pending.len() < rows.max(1) {
            return 0.0;
        }
        let lo = self.pending.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.pending.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = (hi - lo) * margin.max(0.0);
        self.bins = Some(self.bins_for(lo - pad, hi + pad));
        self.extremes = Some((lo - pad, hi + pad));
        let mut last = 0.0;
        for v in std::mem::take(&mut self.pending) {
            last = self.learn(v);
        }
        last
    }

    /// The sensor facts of `value`: the bits of its bin number, and a sign fact below 0.
    fn sensor_facts(&self, value: f64) -> Vec<Fact> {
        let (origin, width) = self.bins.unwrap_or((0.0, 1.0));
        // Truncation toward zero, as the published detector's int() does.
        let most = (2f64).powi((self.config.value_bits + self.config.extra_bits).min(50) as i32) - 1.0;
        let bin = ((value - origin) / width).trunc().clamp(-most, most) as i64;
        let magnitude = bin.unsigned_abs();
        let bits = (64 - magnitude.leading_zeros()).max(self.config.value_bits);
        let mut facts: Vec<Fact> = (0..u64::from(bits))
            .map(|b| SENSOR + 2 * b + ((magnitude >> b) & 1))
            .collect();
        if bin < 0 {
            facts.insert(0, NEGATIVE);
        }
        facts
    }

    /// Scores a value against the memory, learns it, and applies the rest.
    fn learn(&mut self, value: f64) -> f64 {
        let facts = self.sensor_facts(value);
        let surprise = facts.iter().any(|f| !self.predicted.contains(f));
        let (active_share, new_share) = self.step(&facts);
        let raw = if surprise {
            (1.0 - active_share + new_share) / 2.0
        } else {
            0.0
        };
        let resting = self.history.iter().any(|&h| h >= self.config.base_threshold);
        self.history.push_back(raw);
        while self.history.len() > self.config.rest_rows.max(1) {
            self.history.pop_front();
        }
        if resting {
            0.0
        } else {
            raw.clamp(0.0, 1.0)
        }
    }

    /// One row through the memory: returns the share of selected contexts that came true and
    /// the share of candidate contexts that were new, and sets the next row's predictions.
    fn step(&mut self, facts: &[Fact]) -> (f64, f64) {
        let mut unique: HashSet<Pair> = HashSet::new();
        let mut fresh = None;
        let mut grow = false;
        if !self.left_facts.is_empty() && !facts.is_empty() {
            let (id, new) = self.memory.context(&self.left_facts, facts);
            if let Some(ctx) = self.memory.contexts.get_mut(id) {
                ctx.zero_level = true;
            }
            unique.insert((self.left_facts.clone(), facts.to_vec()));
            grow = new;
            fresh = new.then_some(id);
        }
        self.memory.right.cross(facts);
        let mut act = self.memory.update(fresh, grow, self.config.max_left_facts);
        let active_share = if act.selected > 0 {
            act.active.len() as f64 / act.selected as f64
        } else {
            0.0
        };
        act.active.sort_unstable();
        let skip = act.active.len().saturating_sub(self.config.max_active);
        let mut left: Vec<Fact> = facts.to_vec();
        left.extend(act.active.iter().skip(skip).map(|a| NEURON + a.3 as Fact));
        left.sort_unstable();
        left.dedup();
        let mut added = usize::from(grow);
        for (l, r) in &act.candidates {
            added += usize::from(self.memory.context(l, r).1);
        }
        unique.extend(act.candidates);
        self.predicted = self.memory.predict(&left);
        self.left_facts = left;
        let new_share = if grow && !unique.is_empty() {
            added as f64 / unique.len() as f64
        } else {
            0.0
        };
        (active_share, new_share)
    }
}

/// A fixed hash of a sorted fact list (the tuple hash the published implementation ordered
/// its contexts by), so ties between equally active contexts break the same way every run.
fn facts_hash(facts: &[Fact]) -> i64 {
    let mut x: i64 = 0x34_5678;
    let mut mult: i64 = 1_000_003;
    let mut left = facts.len() as i64;
    for &f in facts {
        left -= 1;
        x = (x ^ f as i64).wrapping_mul(mult);
        mult = mult.wrapping_add(82_520 + 2 * left);
    }
    x = x.wrapping_add(97_531);
    if x == -1 {
        -2
    } else {
        x
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixed(min: f64, max: f64) -> ContextualConfig {
        ContextualConfig {
            range: ValueRange::Fixed { min, max },
            rest_rows: 5,
            ..ContextualConfig::default()
        }
    }

    fn run(config: &ContextualConfig, values: &[f64]) -> Vec<f64> {
        let mut d = Contextual::new(config);
        values.iter().map(|&v| d.observe(v)).collect()
    }

    #[test]
    fn sensor_facts_are_the_bits_of_the_bin() {
        let d = Contextual::new(&fixed(0.0, 7.0));
        assert_eq!(d.sensor_facts(5.0), [SENSOR + 1, SENSOR + 2, SENSOR + 5]);
        assert_eq!(d.sensor_facts(0.9), [SENSOR, SENSOR + 2, SENSOR + 4]);
        // Beyond the range: a fourth bit; below it: the sign fact.
        assert_eq!(
            d.sensor_facts(9.0),
            [SENSOR + 1, SENSOR + 2, SENSOR + 4, SENSOR + 7]
        );
        assert_eq!(d.sensor_facts(-2.0), [NEGATIVE, SENSOR, SENSOR + 3, SENSOR + 4]);
    }

    #[test]
    fn a_repeating_pattern_is_learned_and_a_break_in_it_scores_high() {
        let pattern = [0.0, 2.0, 5.0, 7.0, 3.0];
        let mut values: Vec<f64> = pattern.iter().copied().cycle().take(200).collect();
        values[150] = 6.0;
        let scores = run(&fixed(0.0, 7.0), &values);
        // The first rows rest; the cycle becomes fully predicted.
        assert!(scores[..5].iter().all(|&s| s == 0.0));
        assert!(
            scores[100..150].iter().all(|&s| s == 0.0),
            "{:?}",
            &scores[100..150]
        );
        assert!(scores[150] >= 0.75, "{}", scores[150]);
        // Then a rest: the rows just after report 0 whatever they are.
        assert!(scores[151..155].iter().all(|&s| s == 0.0));
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn a_learned_range_matches_the_fixed_one_after_its_rows() {
        let values: Vec<f64> = (0..300).map(|i| ((i * 37) % 11) as f64).collect();
        let learned = ContextualConfig {
            range: ValueRange::Learned {
                rows: 40,
                margin: 0.0,
                grow: false,
            },
            ..fixed(0.0, 0.0)
        };
        let a = run(&learned, &values);
        let b = run(&fixed(0.0, 10.0), &values);
        assert!(a[..39].iter().all(|&s| s == 0.0));
        assert_eq!(a[39..], b[39..]);
    }

    #[test]
    fn a_grown_range_bins_like_a_range_known_from_the_start() {
        let grow = |grow| ContextualConfig {
            range: ValueRange::Learned {
                rows: 10,
                margin: 0.0,
                grow,
            },
            ..fixed(0.0, 0.0)
        };
        let mut d = Contextual::new(&grow(true));
        for i in 0..10 {
            d.observe(f64::from(i % 8));
        }
        assert_eq!(d.sensor_facts(7.0), [SENSOR + 1, SENSOR + 3, SENSOR + 5]);
        d.observe(14.0); // outside 0..7: the bins double in width
        assert_eq!(d.bins, Some((0.0, 2.0)));
        assert_eq!(d.sensor_facts(7.0), [SENSOR + 1, SENSOR + 3, SENSOR + 4]);
        // Without growth the range stays, and 14 is a bin beyond it.
        let mut d = Contextual::new(&grow(false));
        for i in 0..11 {
            d.observe(if i == 10 { 14.0 } else { f64::from(i % 8) });
        }
        assert_eq!(d.bins, Some((0.0, 1.0)));
        assert_eq!(d.sensor_facts(14.0), [SENSOR, SENSOR + 3, SENSOR + 5, SENSOR + 7]);
    }

    #[test]
    fn deterministic_and_prefix_stable() {
        let values: Vec<f64> = (0..500).map(|i| ((i * i * 7) % 23) as f64 / 3.0).collect();
        let c = ContextualConfig {
            range: ValueRange::Learned {
                rows: 100,
                margin: 1.0,
                grow: true,
            },
            ..ContextualConfig::default()
        };
        let full = run(&c, &values);
        assert_eq!(full, run(&c, &values));
        assert_eq!(full[..321], run(&c, &values[..321])[..]);
        assert!(full.iter().any(|&s| s > 0.0));
    }

    #[test]
    fn non_finite_values_score_zero() {
        let mut d = Contextual::new(&fixed(0.0, 7.0));
        assert_eq!(d.observe(f64::NAN), 0.0);
        assert_eq!(d.observe(f64::INFINITY), 0.0);
        assert!(d.pending.is_empty() && d.left_facts.is_empty());
    }

    #[test]
    fn hash_of_facts_is_fixed() {
        assert_eq!(facts_hash(&[]), 0x34_5678 + 97_531);
        assert_ne!(facts_hash(&[1, 2]), facts_hash(&[2, 1]));
    }
}
