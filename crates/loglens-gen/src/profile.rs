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

/// Hours over which traffic eases into and out of the weekend, centred on the midnights
/// that start and end it: real traffic has no step at midnight, and a step would be a
/// service-wide volume change that no incident explains.
const WEEKEND_RAMP_SECS: i64 = 6 * 3600;

/// How much of the weekend dip applies at `secs` (UTC): 0 on weekdays, 1 on Saturday and
/// Sunday, linear in between over `WEEKEND_RAMP_SECS` around Saturday 00:00 and Monday 00:00.
pub fn weekend_share(secs: i64) -> f64 {
    const DAY: i64 = 86_400;
    // 1970-01-01 was a Thursday: seconds since Monday 00:00.
    let t = (secs + 3 * DAY).rem_euclid(7 * DAY);
    let half = WEEKEND_RAMP_SECS / 2;
    // 0 until `d` = −half, 1 from `d` = +half.
    let into = |d: i64| ((d + half) as f64 / WEEKEND_RAMP_SECS as f64).clamp(0.0, 1.0);
    if t < half {
        into(-t) // Monday's first hours: the weekend's end
    } else {
        into(t - 5 * DAY).min(into(7 * DAY - t))
    }
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
        day * (1.0 - weekend_share(secs) * (1.0 - self.weekend))
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
        let monday = loglens_core::time::days_from_civil(2026, 10, 26) * 86_400; // a Monday
        let hour = |h: i64| weekend_share(monday + h * 3600);
        assert_eq!(hour(3), 0.0);
        assert_eq!(hour(2 * 24 + 12), 0.0);
        assert_eq!(hour(5 * 24 + 3), 1.0); // Saturday 03:00
        assert_eq!(hour(6 * 24 + 21), 1.0); // Sunday 21:00
        assert_eq!(hour(7 * 24 + 3), 0.0); // Monday 03:00
        assert_eq!(hour(5 * 24), 0.5); // Saturday 00:00
        assert_eq!(hour(7 * 24), 0.5); // Monday 00:00
        assert!((hour(5 * 24 - 2) - 1.0 / 6.0).abs() < 1e-12); // Friday 22:00
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
        // No step anywhere in the week: a minute never changes traffic by more than 2%.
        for minute in 0..7 * 1440 {
            let (a, b) = (
                shape.at(monday + minute * 60),
                shape.at(monday + minute * 60 + 60),
            );
            assert!((b / a - 1.0).abs() < 0.02, "minute {minute}: {a} -> {b}");
        }
        let m = shape.mean(monday, 86_400);
        assert!(m > 0.6 && m < 0.8, "mean {m}");
    }
}
