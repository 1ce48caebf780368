//! A mergeable latency sketch (DDSketch-style): counts in logarithmic bins 2% wide, so every
//! quantile it reports is within [`RELATIVE_ACCURACY`] of the exact one, memory grows with the
//! spread of values rather than their number, and two sketches merge by adding bin counts.

use serde::{Deserialize, Serialize};

/// Ratio between neighbouring bins.
const BIN_RATIO: f64 = 1.02;

/// Relative accuracy α: a value `x` (at least [`MIN_LATENCY_MS`]) is reported as the centre of
/// its bin, which lies within `α·x` of it, because bins are `BIN_RATIO` wide in log space and
/// values round to the nearest bin (α = √1.02 − 1 ≈ 0.995%). Quantiles and the geometric mean
/// inherit the bound: the nearest-rank quantile is the centre of the bin holding the exact one.
pub const RELATIVE_ACCURACY: f64 = 0.009_950_493_836_207_8;

/// Smallest latency told apart (ms): smaller ones, 0 included, share its bin, so for them the
/// error is absolute (at most about this much) rather than relative.
pub const MIN_LATENCY_MS: f64 = 1e-3;

/// Latency counts per logarithmic bin. Equal inputs give equal sketches whatever the order they
/// were added or merged in, bin for bin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<(i32, u64)>", into = "Vec<(i32, u64)>")]
pub struct LatencySketch {
    /// (bin, records), sorted by bin, no zero counts: a few dozen bins cover a bucket's spread,
    /// so a sorted vector beats a tree on both memory and speed.
    bins: Vec<(i32, u64)>,
}

impl LatencySketch {
    /// Adds one latency (ms); returns false, adding nothing, for a negative, NaN or infinite one.
    pub fn add(&mut self, ms: f64) -> bool {
        if !(ms.is_finite() && ms >= 0.0) {
            return false;
        }
        self.add_bin(bin_of(ms), 1);
        true
    }

    fn add_bin(&mut self, bin: i32, n: u64) {
        match self.bins.binary_search_by_key(&bin, |&(b, _)| b) {
            Ok(i) => self.bins[i].1 += n,
            Err(i) => self.bins.insert(i, (bin, n)),
        }
    }

    /// Adds every latency of `other` (associative and commutative: bin counts add).
    pub fn merge(&mut self, other: &LatencySketch) {
        if self.bins.is_empty() {
            self.bins.clone_from(&other.bins);
            return;
        }
        let mut merged = Vec::with_capacity(self.bins.len().max(other.bins.len()));
        let (mut a, mut b) = (self.bins.iter().peekable(), other.bins.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&(x, n)), Some(&&(y, m))) if x == y => {
                    a.next();
                    b.next();
                    (x, n + m)
                }
                (Some(&&x), Some(&&y)) if x.0 < y.0 => {
                    a.next();
                    x
                }
                (_, Some(&&y)) => {
                    b.next();
                    y
                }
                (Some(&&x), None) => {
                    a.next();
                    x
                }
                (None, None) => break,
            };
            merged.push(next);
        }
        self.bins = merged;
    }

    /// Each bin's centre (ms) and its latencies, in increasing order: what `rollups/latency`
    /// stores, every value within [`RELATIVE_ACCURACY`] of the latencies it stands for.
    pub fn bins(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bins.iter().map(|&(bin, n)| (bin_value(bin), n))
    }

    /// Latencies added.
    pub fn count(&self) -> u64 {
        self.bins.iter().map(|&(_, n)| n).sum()
    }

    /// Whether no latency was added.
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// The `q` quantile (0..=1), nearest-rank (the value of rank `ceil(q·n)`), within
    /// [`RELATIVE_ACCURACY`] of the exact one.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for &(bin, count) in &self.bins {
            seen += count;
            if seen >= rank {
                return Some(bin_value(bin));
            }
        }
        self.bins.last().map(|&(bin, _)| bin_value(bin))
    }

    /// The geometric mean, from bin centres (so within [`RELATIVE_ACCURACY`] too): the sum of
    /// logs is a sum of integer bin indices, which merges exactly where a float sum would not.
    pub fn geometric_mean(&self) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let log_sum: i64 = self
            .bins
            .iter()
            .map(|&(bin, count)| i64::from(bin) * i64::try_from(count).unwrap_or(i64::MAX))
            .sum();
        Some(BIN_RATIO.powf(log_sum as f64 / n as f64))
    }
}

impl From<LatencySketch> for Vec<(i32, u64)> {
    fn from(sketch: LatencySketch) -> Self {
        sketch.bins
    }
}

/// A stored sketch whose bins are not sorted, repeat, or count nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("latency sketch bins must be strictly increasing with non-zero counts")]
pub struct InvalidSketch;

impl TryFrom<Vec<(i32, u64)>> for LatencySketch {
    type Error = InvalidSketch;

    fn try_from(bins: Vec<(i32, u64)>) -> Result<Self, InvalidSketch> {
        let increasing = bins.windows(2).all(|w| w[0].0 < w[1].0);
        if increasing && bins.iter().all(|&(_, n)| n > 0) {
            Ok(LatencySketch { bins })
        } else {
            Err(InvalidSketch)
        }
    }
}

fn bin_of(ms: f64) -> i32 {
    (ms.max(MIN_LATENCY_MS).ln() / BIN_RATIO.ln()).round() as i32
}

fn bin_value(bin: i32) -> f64 {
    BIN_RATIO.powi(bin)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stated_accuracy_is_half_a_bin() {
        assert!((RELATIVE_ACCURACY - (BIN_RATIO.sqrt() - 1.0)).abs() < 1e-15);
    }

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        sorted[rank - 1]
    }

    proptest! {
        #[test]
        fn quantiles_within_stated_accuracy(
            values in prop::collection::vec(MIN_LATENCY_MS..1e6f64, 1..300),
            q in 0.0..=1.0f64,
        ) {
            let mut sketch = LatencySketch::default();
            for &v in &values {
                prop_assert!(sketch.add(v));
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let want = exact_quantile(&sorted, q);
            let got = sketch.quantile(q).unwrap();
            prop_assert!((got - want).abs() <= want * (RELATIVE_ACCURACY + 1e-12), "{got} vs {want}");
            let gmean = (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp();
            let got = sketch.geometric_mean().unwrap();
            prop_assert!((got / gmean - 1.0).abs() <= RELATIVE_ACCURACY + 1e-9, "{got} vs {gmean}");
        }

        #[test]
        fn merge_adds_bins(a in prop::collection::vec(0.0..1e4f64, 0..100), b in prop::collection::vec(0.0..1e4f64, 0..100)) {
            let sketch = |values: &[f64]| {
                let mut s = LatencySketch::default();
                values.iter().for_each(|&v| { s.add(v); });
                s
            };
            let mut ab = sketch(&a);
            ab.merge(&sketch(&b));
            let mut ba = sketch(&b);
            ba.merge(&sketch(&a));
            let whole = sketch(&[a.clone(), b.clone()].concat());
            prop_assert_eq!(&ab, &whole);
            prop_assert_eq!(&ba, &whole);
        }
    }

    #[test]
    fn rejects_what_is_not_a_latency() {
        let mut s = LatencySketch::default();
        assert!(!s.add(f64::NAN));
        assert!(!s.add(-1.0));
        assert!(!s.add(f64::INFINITY));
        assert!(s.add(0.0));
        assert_eq!(s.count(), 1);
        assert!((s.quantile(0.5).unwrap() - MIN_LATENCY_MS).abs() < MIN_LATENCY_MS * 0.01);
        assert_eq!(LatencySketch::default().quantile(0.5), None);
    }
}
