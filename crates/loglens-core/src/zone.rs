//! The zone of local times that carry none: unknown (read as UTC), a fixed offset (`+02:00`), or
//! a named IANA zone (`Europe/Paris`) whose offset follows its daylight-saving rules. The rules
//! are data the caller hands in (the engine loads them from the time zone database).
//!
//! Why not a fixed offset for everyone? A server in Paris writes `02:30` at +01:00 in winter
//! and +02:00 in summer; one offset puts half the year an hour off, and every metric with it.

use std::fmt;

use crate::time::{Civil, TimeError};
use crate::Timestamp;

/// How many hours a local time of an unknown zone may lie ahead of UTC: zones run from −12 to
/// +14 hours.
const LARGEST_OFFSET_SECS: i64 = 14 * 3600;

/// The zone of timestamps that name none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalZone {
    /// Not configured: read as UTC, though the writer may have been in any zone.
    #[default]
    Unknown,
    /// A fixed offset, seconds east of UTC.
    Fixed(i32),
    /// A named zone with its rules.
    Named(&'static NamedZone),
}

impl From<i32> for LocalZone {
    fn from(offset_secs: i32) -> Self {
        LocalZone::Fixed(offset_secs)
    }
}

/// An IANA zone: its name and its rules.
pub struct NamedZone {
    name: String,
    rules: jiff::tz::TimeZone,
}

impl NamedZone {
    /// A zone named `name` with the rules `rules` (from the time zone database).
    pub fn new(name: impl Into<String>, rules: jiff::tz::TimeZone) -> NamedZone {
        NamedZone {
            name: name.into(),
            rules,
        }
    }

    /// The IANA name, e.g. `Europe/Paris`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PartialEq for NamedZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for NamedZone {}

impl fmt::Debug for NamedZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamedZone({})", self.name)
    }
}

impl LocalZone {
    /// The instant a wall-clock time names in this zone. In a named zone's gap (the hour
    /// skipped in spring) the time is read with the offset before the gap, and in its fold (the
    /// hour repeated in autumn) as the earlier of the two: the "compatible" rule of RFC 5545
    /// and JavaScript's Temporal.
    pub fn to_timestamp(self, civil: Civil) -> Result<Timestamp, TimeError> {
        match self {
            LocalZone::Unknown => civil.to_timestamp(0),
            LocalZone::Fixed(offset) => civil.to_timestamp(offset),
            LocalZone::Named(zone) => {
                // Validate the fields first (leap second included) with the same rules as
                // fixed offsets, then let the zone choose the offset.
                civil.to_timestamp(0)?;
                let leap = i64::from(civil.second == 60);
                let local = jiff::civil::DateTime::new(
                    civil.year as i16,
                    civil.month as i8,
                    civil.day as i8,
                    civil.hour as i8,
                    civil.minute as i8,
                    (civil.second - leap as u8) as i8,
                    civil.micros as i32 * 1000,
                )
                .map_err(|_| TimeError::Range("date"))?;
                let instant = zone
                    .rules
                    .to_ambiguous_timestamp(local)
                    .compatible()
                    .map_err(|_| TimeError::Range("date in that zone"))?;
                Ok(Timestamp(instant.as_microsecond() + leap * 1_000_000))
            }
        }
    }

    /// The year that puts a year-less wall-clock time (syslog 3164: `Nov  3 02:30:00`) at the
    /// latest moment not after `reference`, the time its file was last written. An unknown zone
    /// may be up to 14 hours ahead of UTC, so it is allowed that much past the reference:
    /// otherwise a log written at local time in Sydney would put its last hours a year back.
    pub fn infer_year(self, civil: Civil, reference: Timestamp) -> i32 {
        let slack = match self {
            LocalZone::Unknown => LARGEST_OFFSET_SECS * 1_000_000,
            LocalZone::Fixed(_) | LocalZone::Named(_) => 0,
        };
        let reference_year = reference.to_civil(0).year;
        // The reference's local year may be the UTC year's neighbour on New Year's Eve.
        (reference_year - 2..=reference_year + 1)
            .rev()
            .find(|&year| {
                let day = civil.day.min(crate::time::days_in_month(year, civil.month));
                let candidate = Civil { year, day, ..civil };
                self.to_timestamp(candidate)
                    .is_ok_and(|ts| ts.0 <= reference.0 + slack)
            })
            .unwrap_or(reference_year)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn paris() -> LocalZone {
        let rules = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        LocalZone::Named(Box::leak(Box::new(NamedZone::new("Europe/Paris", rules))))
    }

    fn civil(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second: 0,
            micros: 0,
        }
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text, 0).unwrap()
    }

    #[test]
    fn a_named_zone_follows_daylight_saving() {
        let zone = paris();
        assert_eq!(
            zone.to_timestamp(civil(2026, 1, 15, 12, 0)).unwrap(),
            at("2026-01-15T11:00:00Z")
        );
        assert_eq!(
            zone.to_timestamp(civil(2026, 7, 15, 12, 0)).unwrap(),
            at("2026-07-15T10:00:00Z")
        );
        // 2026-03-29 02:30 does not exist in Paris (clocks jump 02:00 → 03:00).
        assert_eq!(
            zone.to_timestamp(civil(2026, 3, 29, 2, 30)).unwrap(),
            at("2026-03-29T01:30:00Z")
        );
        // 2026-10-25 02:30 happens twice; the earlier (still summer time) is taken.
        assert_eq!(
            zone.to_timestamp(civil(2026, 10, 25, 2, 30)).unwrap(),
            at("2026-10-25T00:30:00Z")
        );
        let leap = Civil {
            second: 60,
            ..civil(2026, 12, 31, 23, 59)
        };
        assert_eq!(zone.to_timestamp(leap).unwrap(), at("2027-01-01T00:00:00+01:00"));
        assert!(zone.to_timestamp(civil(2026, 2, 30, 0, 0)).is_err());
    }

    #[test]
    fn an_inferred_year_never_puts_a_line_after_its_file_was_written() {
        let reference = at("2026-11-03T10:00:00Z");
        let fixed = LocalZone::Fixed(0);
        assert_eq!(fixed.infer_year(civil(0, 11, 3, 9, 59), reference), 2026);
        // Ten minutes after the file was last written: last year's line.
        assert_eq!(fixed.infer_year(civil(0, 11, 3, 10, 10), reference), 2025);
        assert_eq!(
            fixed.infer_year(civil(0, 12, 31, 23, 0), at("2027-01-01T00:30:00Z")),
            2026
        );
        // New Year's Eve in UTC is already January in Paris.
        assert_eq!(
            paris().infer_year(civil(0, 1, 1, 0, 30), at("2026-12-31T23:45:00Z")),
            2027
        );
        // Unknown zone: a local time up to 14 h ahead of the UTC reference stays this year.
        assert_eq!(
            LocalZone::Unknown.infer_year(civil(0, 11, 3, 20, 0), reference),
            2026
        );
        assert_eq!(
            LocalZone::Unknown.infer_year(civil(0, 11, 4, 1, 0), reference),
            2025
        );
        // February 29th in a year without one is clamped to the 28th, as before.
        assert_eq!(
            fixed.infer_year(civil(0, 2, 29, 0, 0), at("2026-03-01T00:00:00Z")),
            2026
        );
    }
}
