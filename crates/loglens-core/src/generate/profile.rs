//! Traffic shape over time: a diurnal curve (trough before dawn, peak mid-afternoon, UTC) and
//! a weekend dip, interpolated linearly from hourly anchors so it needs no trigonometry and
//! stays bit-identical across machines.

/// Relative traffic at the start of each UTC hour; the peak is 1.0.
const HOURLY: [f64; 25] = [
    0.45, 0.35, 0.28, 0.24, 0.22, 0.25, 0.35, 0.50, 0.68, 0.82, 0.90, 0.95, 0.97, 0.98, 1.00, 1.00, 0.97,
    0.92, 0.86, 0.82, 0.78, 0.72, 0.63, 0.54, 0.45,
];

/// The shape of one day of traffic, 0 < value <= 1, at `secs` since the epoch (UTC).
pub fn diurnal(secs: i64) -> f64 {
    let sod = secs.rem_euclid(86_400);
    let hour = (sod / 3600) as usize;
    let frac = (sod % 3600) as f64 / 3600.0;
    HOURLY[hour] + (HOURLY[hour + 1] - HOURLY[hour]) * frac
}

/// Whether the UTC day containing `secs` is a Saturday or Sunday.
pub fn is_weekend(secs: i64) -> bool {
    // 1970-01-01 was a Thursday: weekday 0 = Monday.
    let weekday = (secs.div_euclid(86_400) + 3).rem_euclid(7);
    weekday >= 5
}

/// How strongly a stream follows the daily curve and the weekend dip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// 0 = flat, 1 = fully diurnal.
    pub depth: f64,
    /// Multiplier on Saturdays and Sundays.
    pub weekend: f64,
}

impl Shape {
    /// The relative volume at `secs` (unnormalized).
    pub fn at(self, secs: i64) -> f64 {
        let day = 1.0 - self.depth + self.depth * diurnal(secs);
        if is_weekend(secs) {
            day * self.weekend
        } else {
            day
        }
    }

    /// The mean of [`Shape::at`] over `[start, start + duration)`, sampled every minute
    /// (every ten minutes for spans over 60 days), so rates can be normalized to a line target.
    pub fn mean(self, start: i64, duration: i64) -> f64 {
        let step = if duration > 60 * 86_400 { 600 } else { 60 };
        let mut t = start;
        let (mut sum, mut n) = (0.0, 0u64);
        while t < start + duration {
            sum += self.at(t + step.min(duration) / 2);
            n += 1;
            t += step;
        }
        if n == 0 {
            1.0
        } else {
            sum / n as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afternoon_peak_night_trough_weekend_dip() {
        let monday = crate::time::days_from_civil(2026, 10, 26) * 86_400; // a Monday
        assert!(!is_weekend(monday));
        assert!(is_weekend(monday + 5 * 86_400));
        assert!(!is_weekend(monday + 7 * 86_400));
        let shape = Shape {
            depth: 1.0,
            weekend: 0.7,
        };
        let at = |h: i64| shape.at(monday + h * 3600);
        assert!(at(15) > 2.0 * at(4), "peak {} trough {}", at(15), at(4));
        assert!(shape.at(monday + 5 * 86_400 + 15 * 3600) < at(15));
        let flat = Shape {
            depth: 0.0,
            weekend: 1.0,
        };
        assert_eq!(flat.mean(monday, 7 * 86_400), 1.0);
        let m = shape.mean(monday, 86_400);
        assert!(m > 0.6 && m < 0.8, "mean {m}");
    }
}
