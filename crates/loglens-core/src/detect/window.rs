//! Fixed-size trailing windows with O(window) work per point at worst: running mean/variance
//! over a ring buffer, and a sorted copy for median and MAD.

use std::collections::VecDeque;

/// Mean and population variance of the last `cap` values.
///
/// Why shift and recompute? Sums of squares of large values (NAB has byte counts near 1e8)
/// cancel catastrophically; sums are kept relative to a shift (a recent value) and rebuilt
/// exactly every `cap` pushes, so rounding error cannot accumulate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct RollingStats {
    values: VecDeque<f64>,
    cap: usize,
    shift: f64,
    sum: f64,
    sum_sq: f64,
    since_rebuild: usize,
}

impl RollingStats {
    pub(crate) fn new(cap: usize) -> RollingStats {
        RollingStats {
            values: VecDeque::with_capacity(cap.max(1)),
            cap: cap.max(1),
            shift: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            since_rebuild: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.values.len() == self.cap {
            if let Some(old) = self.values.pop_front() {
                let d = old - self.shift;
                self.sum -= d;
                self.sum_sq -= d * d;
            }
        }
        self.values.push_back(x);
        let d = x - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        self.since_rebuild += 1;
        if self.since_rebuild >= self.cap {
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.shift = self.values.back().copied().unwrap_or(0.0);
        self.sum = 0.0;
        self.sum_sq = 0.0;
        for &v in &self.values {
            let d = v - self.shift;
            self.sum += d;
            self.sum_sq += d * d;
        }
        self.since_rebuild = 0;
    }

    pub(crate) fn mean(&self) -> f64 {
        let n = self.values.len().max(1) as f64;
        self.shift + self.sum / n
    }

    pub(crate) fn std(&self) -> f64 {
        let n = self.values.len().max(1) as f64;
        let m = self.sum / n;
        (self.sum_sq / n - m * m).max(0.0).sqrt()
    }
}

/// The last `cap` values, also kept sorted, for order statistics.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SortedWindow {
    order: VecDeque<f64>,
    sorted: Vec<f64>,
    cap: usize,
    scratch: Vec<f64>,
}

impl SortedWindow {
    pub(crate) fn new(cap: usize) -> SortedWindow {
        SortedWindow {
            order: VecDeque::with_capacity(cap.max(1)),
            sorted: Vec::with_capacity(cap.max(1)),
            cap: cap.max(1),
            scratch: Vec::with_capacity(cap.max(1)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.order.len() == self.cap {
            if let Some(old) = self.order.pop_front() {
                let i = self.sorted.partition_point(|&v| v < old);
                if i < self.sorted.len() {
                    self.sorted.remove(i);
                }
            }
        }
        self.order.push_back(x);
        let i = self.sorted.partition_point(|&v| v < x);
        self.sorted.insert(i, x);
    }

    /// The smallest positive gap between two values of the window (its resolution), or 0.
    pub(crate) fn resolution(&self) -> f64 {
        let smallest = self
            .sorted
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&d| d > 0.0)
            .fold(f64::INFINITY, f64::min);
        if smallest.is_finite() {
            smallest
        } else {
            0.0
        }
    }

    pub(crate) fn median(&self) -> f64 {
        median_of_sorted(&self.sorted)
    }

    /// Median absolute deviation from `center`, and mean absolute deviation from it.
    pub(crate) fn deviations(&mut self, center: f64) -> (f64, f64) {
        self.scratch.clear();
        self.scratch
            .extend(self.sorted.iter().map(|v| (v - center).abs()));
        let mean = self.scratch.iter().sum::<f64>() / self.scratch.len().max(1) as f64;
        self.scratch.sort_by(f64::total_cmp);
        (median_of_sorted(&self.scratch), mean)
    }
}

fn median_of_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => s[n / 2],
        _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_stats_match_direct_computation_on_large_values() {
        let mut r = RollingStats::new(4);
        for x in [1e8, 1e8 + 1.0, 1e8 + 2.0, 1e8 + 3.0, 1e8 + 4.0, 1e8 + 5.0] {
            r.push(x);
        }
        // Window holds 1e8+2 .. 1e8+5: mean 1e8+3.5, population std sqrt(1.25).
        assert_eq!(r.len(), 4);
        assert!((r.mean() - (1e8 + 3.5)).abs() < 1e-6);
        assert!((r.std() - 1.25f64.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn sorted_window_median_and_mad() {
        let mut w = SortedWindow::new(5);
        for x in [9.0, 1.0, 2.0, 3.0, 4.0, 100.0] {
            w.push(x);
        }
        // Window: 1 2 3 4 100 → median 3, |dev| 2 1 0 1 97 → MAD 1, mean 20.2.
        assert_eq!(w.len(), 5);
        assert_eq!(w.median(), 3.0);
        let (mad, mean) = w.deviations(3.0);
        assert_eq!(mad, 1.0);
        assert!((mean - 20.2).abs() < 1e-12);
    }
}
