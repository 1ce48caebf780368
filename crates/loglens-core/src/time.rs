//! Timestamps as UTC microseconds, with the hand-written parsers and renderers the log formats
//! need (RFC 3339, the Common Log Format's `10/Oct/2026:13:55:36 -0700`, syslog's `Oct  9 13:55:36`).
//! It also reads the durations of configuration files and flags ([`parse_duration`]).
//!
//! Why hand-written? Timestamp parsing is the hottest part of most formats; a general strftime
//! parser costs several times a fixed-layout one. Calendar arithmetic is Howard Hinnant's
//! `days_from_civil`, exact over the proleptic Gregorian calendar.

use std::fmt::{self, Write as _};

use crate::zone::LocalZone;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// An instant as microseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// A timestamp that could not be parsed or is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text does not have the expected layout.
    #[error("timestamp does not match {0}")]
    Layout(&'static str),
    /// A field is out of range (month 13, hour 25, day 31 in April).
    #[error("timestamp has an out-of-range {0}")]
    Range(&'static str),
}

/// A calendar date and wall-clock time, without zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–60 (60 is a leap second, folded into the next minute).
    pub second: u8,
    /// Microseconds 0–999 999.
    pub micros: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days from 1970-01-01 to the given date (negative before).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

pub(crate) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

impl Civil {
    /// The instant this wall-clock time names in a zone `offset_secs` east of UTC.
    pub fn to_timestamp(self, offset_secs: i32) -> Result<Timestamp, TimeError> {
        if !(1..=12).contains(&self.month) {
            return Err(TimeError::Range("month"));
        }
        if self.day == 0 || self.day > days_in_month(self.year, self.month) {
            return Err(TimeError::Range("day"));
        }
        if self.hour > 23 {
            return Err(TimeError::Range("hour"));
        }
        if self.minute > 59 {
            return Err(TimeError::Range("minute"));
        }
        if self.second > 60 {
            return Err(TimeError::Range("second"));
        }
        if self.micros >= 1_000_000 {
            return Err(TimeError::Range("fraction"));
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(offset_secs);
        Ok(Timestamp(secs * MICROS_PER_SEC + i64::from(self.micros)))
    }
}

impl Timestamp {
    /// The timestamp of a whole number of seconds since the epoch.
    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs * MICROS_PER_SEC)
    }

    /// Whole seconds since the epoch (floor).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SEC)
    }

    /// The sub-second part in microseconds.
    pub fn subsec_micros(self) -> u32 {
        self.0.rem_euclid(MICROS_PER_SEC) as u32
    }

    /// The UTC wall-clock time shifted by `offset_secs` east.
    pub fn to_civil(self, offset_secs: i32) -> Civil {
        let local = self.secs() + i64::from(offset_secs);
        let days = local.div_euclid(SECS_PER_DAY);
        let sod = local.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u8,
            minute: (sod % 3600 / 60) as u8,
            second: (sod % 60) as u8,
            micros: self.subsec_micros(),
        }
    }

    /// Days since 1970-01-01 and hour of day, UTC: the record's storage partition.
    pub fn day_and_hour(self) -> (i64, u8) {
        let secs = self.secs();
        (
            secs.div_euclid(SECS_PER_DAY),
            (secs.rem_euclid(SECS_PER_DAY) / 3600) as u8,
        )
    }

    /// RFC 3339 in UTC with `Z`, with as many fraction digits as needed (none, 3 or 6).
    pub fn to_rfc3339(self) -> String {
        let mut out = String::with_capacity(27);
        write_rfc3339(&mut out, self, 0, Fraction::Auto);
        out
    }

    /// Parses RFC 3339 / ISO 8601: `YYYY-MM-DD[T ]HH:MM:SS[.fff…][Z|±HH:MM|±HHMM]`.
    /// A time without a zone is read in `zone`.
    pub fn parse_rfc3339(s: &str, zone: impl Into<LocalZone>) -> Result<Timestamp, TimeError> {
        let (ts, rest) = parse_iso_prefix(s.as_bytes(), zone)?;
        if rest.is_empty() {
            Ok(ts)
        } else {
            Err(TimeError::Layout("RFC 3339"))
        }
    }

    /// Parses the Common Log Format time `10/Oct/2026:13:55:36 -0700` (no brackets).
    pub fn parse_clf(s: &str) -> Result<Timestamp, TimeError> {
        const LAYOUT: TimeError = TimeError::Layout("dd/Mon/yyyy:HH:MM:SS +zzzz");
        let b = s.as_bytes();
        if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
            return Err(LAYOUT);
        }
        let month = month_from_abbr(&b[3..6]).ok_or(LAYOUT)?;
        let civil = Civil {
            year: digits(&b[7..11]).ok_or(LAYOUT)? as i32,
            month,
            day: digits(&b[0..2]).ok_or(LAYOUT)? as u8,
            hour: digits(&b[12..14]).ok_or(LAYOUT)? as u8,
            minute: two_digits_after(b, 14, b':').ok_or(LAYOUT)?,
            second: two_digits_after(b, 17, b':').ok_or(LAYOUT)?,
            micros: 0,
        };
        let offset = parse_offset_hhmm(&b[21..26]).ok_or(LAYOUT)?;
        civil.to_timestamp(offset)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// How many fraction digits a rendered timestamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    /// None when the fraction is zero, else milliseconds or microseconds as needed.
    Auto,
    /// Always three digits.
    Millis,
    /// Always six digits.
    Micros,
}

/// Writes `ts` as RFC 3339 in a zone `offset_secs` east (`Z` for zero).
pub fn write_rfc3339(out: &mut String, ts: Timestamp, offset_secs: i32, fraction: Fraction) {
    let c = ts.to_civil(offset_secs);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    match fraction {
        Fraction::Micros => {
            let _ = write!(out, ".{:06}", c.micros);
        }
        Fraction::Millis => {
            let _ = write!(out, ".{:03}", c.micros / 1000);
        }
        Fraction::Auto if c.micros == 0 => {}
        Fraction::Auto if c.micros.is_multiple_of(1000) => {
            let _ = write!(out, ".{:03}", c.micros / 1000);
        }
        Fraction::Auto => {
            let _ = write!(out, ".{:06}", c.micros);
        }
    }
    if offset_secs == 0 {
        out.push('Z');
    } else {
        write_offset(out, offset_secs, true);
    }
}

/// Writes `ts` in the Common Log Format layout `10/Oct/2026:13:55:36 -0700`.
pub fn write_clf(out: &mut String, ts: Timestamp, offset_secs: i32) {
    let c = ts.to_civil(offset_secs);
    let _ = write!(
        out,
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} ",
        c.day,
        MONTHS[usize::from(c.month - 1)],
        c.year,
        c.hour,
        c.minute,
        c.second
    );
    write_offset(out, offset_secs, false);
}

/// Writes `ts` in the syslog (RFC 3164) layout `Oct  9 13:55:36`, day padded with a space.
pub fn write_syslog_3164(out: &mut String, ts: Timestamp, offset_secs: i32) {
    let c = ts.to_civil(offset_secs);
    let _ = write!(
        out,
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[usize::from(c.month - 1)],
        c.day,
        c.hour,
        c.minute,
        c.second
    );
}

fn write_offset(out: &mut String, offset_secs: i32, colon: bool) {
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let abs = offset_secs.unsigned_abs();
    let (h, m) = (abs / 3600, abs % 3600 / 60);
    let _ = if colon {
        write!(out, "{sign}{h:02}:{m:02}")
    } else {
        write!(out, "{sign}{h:02}{m:02}")
    };
}

/// The month number (1–12) of a three-letter English abbreviation, any case.
pub fn month_from_abbr(b: &[u8]) -> Option<u8> {
    let key = <[u8; 3]>::try_from(b).ok()?.map(|c| c.to_ascii_lowercase());
    // A match rather than a search of `MONTHS`: this runs once per access log line.
    Some(match &key {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Parses ASCII digits into a number; `None` on any other byte or empty input.
pub fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u32::from(d);
    }
    Some(n)
}

fn two_digits_after(b: &[u8], at: usize, sep: u8) -> Option<u8> {
    if *b.get(at)? != sep {
        return None;
    }
    digits(b.get(at + 1..at + 3)?).map(|n| n as u8)
}

/// `+hhmm` or `-hhmm` into seconds east of UTC.
fn parse_offset_hhmm(b: &[u8]) -> Option<i32> {
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = digits(b.get(1..3)?)? as i32;
    let m = digits(b.get(3..5)?)? as i32;
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Parses an ISO 8601 timestamp at the start of `b`, returning it and the unparsed rest.
/// Used by formats whose timestamp is followed by more text (Python logging, 5424).
pub fn parse_iso_prefix(b: &[u8], zone: impl Into<LocalZone>) -> Result<(Timestamp, &[u8]), TimeError> {
    const LAYOUT: TimeError = TimeError::Layout("YYYY-MM-DDTHH:MM:SS");
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ' || b[10] == b't') {
        return Err(LAYOUT);
    }
    let mut civil = Civil {
        year: digits(&b[0..4]).ok_or(LAYOUT)? as i32,
        month: digits(&b[5..7]).ok_or(LAYOUT)? as u8,
        day: digits(&b[8..10]).ok_or(LAYOUT)? as u8,
        hour: digits(&b[11..13]).ok_or(LAYOUT)? as u8,
        minute: two_digits_after(b, 13, b':').ok_or(LAYOUT)?,
        second: two_digits_after(b, 16, b':').ok_or(LAYOUT)?,
        micros: 0,
    };
    let mut rest = &b[19..];
    // Python logging writes milliseconds after a comma.
    if let [b'.' | b',', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(LAYOUT);
        }
        let mut micros = 0u32;
        for (i, &c) in tail[..n].iter().enumerate() {
            if i < 6 {
                micros = micros * 10 + u32::from(c - b'0');
            }
        }
        for _ in n..6 {
            micros *= 10;
        }
        civil.micros = micros;
        rest = &tail[n..];
    }
    let offset = match rest.first() {
        Some(b'Z' | b'z') => {
            rest = &rest[1..];
            LocalZone::Fixed(0)
        }
        Some(b'+' | b'-') => {
            let (off, used) = if rest.get(3) == Some(&b':') {
                let mut compact = [0u8; 5];
                compact[..3].copy_from_slice(rest.get(..3).ok_or(LAYOUT)?);
                compact[3..].copy_from_slice(rest.get(4..6).ok_or(LAYOUT)?);
                (parse_offset_hhmm(&compact), 6)
            } else {
                (rest.get(..5).and_then(parse_offset_hhmm), 5)
            };
            // A parsed offset means `rest` had `used` bytes.
            let off = off.ok_or(TimeError::Range("zone offset"))?;
            rest = rest.get(used..).ok_or(LAYOUT)?;
            LocalZone::Fixed(off)
        }
        _ => zone.into(),
    };
    Ok((offset.to_timestamp(civil)?, rest))
}

/// A length of time from a configuration file or a command-line flag, in milliseconds.
///
/// One grammar for every duration loglens reads (`[detect]`, `[alerting]`, rules, receivers,
/// `generate --duration`, `alert silence add --duration`); see [`parse_duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Duration {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms)
    }

    /// A duration of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs.saturating_mul(1000))
    }

    /// The length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The length in whole seconds, rounded down (`1500ms` is 1).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// Whether the length is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Duration {
    /// The shortest text [`parse_duration`] reads back to the same value, e.g. `1h30m`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, ms) in DURATION_UNITS.iter().rev() {
            if rest >= *ms {
                write!(f, "{}{unit}", rest / ms)?;
                rest %= ms;
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_duration(text)
    }
}

/// The units of a duration and their length in milliseconds, shortest first.
const DURATION_UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Why a text is not a [`Duration`]. Each message quotes the text; callers add the field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration (expected e.g. 500ms, 90s, 5m, 2h, 7d or 1h30m)")]
    Empty,
    /// A part does not start with a whole number (`h`, `-1d`, `1.5h`, `5 minutes`).
    #[error(
        "{text:?} is not a duration: expected whole numbers with units, e.g. 500ms, 90s, 5m, 2h, 7d or 1h30m"
    )]
    Syntax {
        /// The text given.
        text: String,
    },
    /// A number is followed by a unit loglens does not know (`1w`, `5min`).
    #[error("{text:?} is not a duration: unknown unit {unit:?} (use ms, s, m, h or d)")]
    Unit {
        /// The text given.
        text: String,
        /// The unknown unit.
        unit: String,
    },
    /// The total does not fit in 64 bits of milliseconds.
    #[error("{text:?} is too long a duration")]
    Overflow {
        /// The text given.
        text: String,
    },
    /// A length counted in seconds was given a fraction of one (`1500ms`).
    #[error("{text:?} is not a whole number of seconds")]
    Fraction {
        /// The text given.
        text: String,
    },
}

/// Parses a duration: whole numbers each followed by a unit, `ms`, `s`, `m`, `h` or `d`,
/// summed (`500ms`, `90s`, `5m`, `2h`, `7d`, `1h30m`). A number without a unit counts seconds,
/// so `90` is `90s` and `1h30` is `1h30s`: older configurations and `generate --duration` took
/// bare seconds. Surrounding whitespace is ignored; zero is allowed (callers that need a
/// positive length check it and name their field).
///
/// ```
/// use loglens_core::time::{parse_duration, Duration};
///
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
/// assert_eq!(parse_duration("500ms").map(Duration::as_millis), Ok(500));
/// assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("1w").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let owned = || text.to_owned();
    let mut rest = trimmed;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::Syntax { text: owned() });
        }
        let overflow = || DurationError::Overflow { text: owned() };
        let n: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let ms = if unit.is_empty() {
            1000
        } else {
            DURATION_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, ms)| *ms)
                .ok_or_else(|| DurationError::Unit {
                    text: owned(),
                    unit: unit.to_owned(),
                })?
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(overflow)?;
    }
    Ok(Duration(total))
}

/// [`parse_duration`] for lengths counted in whole seconds (detection buckets, the generated
/// span): a fraction of a second is an error rather than silently dropped.
pub fn parse_duration_secs(text: &str) -> Result<i64, DurationError> {
    let duration = parse_duration(text)?;
    if duration.as_millis() % 1000 != 0 {
        return Err(DurationError::Fraction {
            text: text.to_owned(),
        });
    }
    i64::try_from(duration.as_secs()).map_err(|_| DurationError::Overflow {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn month_abbreviations_in_any_case() {
        for (i, name) in MONTHS.iter().enumerate() {
            let number = Some(i as u8 + 1);
            assert_eq!(month_from_abbr(name.as_bytes()), number);
            assert_eq!(month_from_abbr(name.to_uppercase().as_bytes()), number);
            assert_eq!(month_from_abbr(name.to_lowercase().as_bytes()), number);
        }
        for bad in [&b"Jum"[..], b"Ja", b"June", b"", b"J\xc3n"] {
            assert_eq!(month_from_abbr(bad), None);
        }
    }

    #[test]
    fn clf_parses_with_zone() {
        let ts = Timestamp::parse_clf("10/Oct/2000:13:55:36 -0700").expect("valid");
        assert_eq!(ts.to_rfc3339(), "2000-10-10T20:55:36Z");
        let mut s = String::new();
        write_clf(&mut s, ts, -7 * 3600);
        assert_eq!(s, "10/Oct/2000:13:55:36 -0700");
        assert!(Timestamp::parse_clf("31/Apr/2000:13:55:36 -0700").is_err());
        assert!(Timestamp::parse_clf("10/Foo/2000:13:55:36 -0700").is_err());
    }

    #[test]
    fn rfc3339_variants() {
        let cases = [
            ("2026-11-01T05:06:07Z", "2026-11-01T05:06:07Z"),
            ("2026-11-01T05:06:07.5Z", "2026-11-01T05:06:07.500Z"),
            ("2026-11-01 05:06:07,123", "2026-11-01T05:06:07.123Z"),
            ("2026-11-01T05:06:07.123456+02:00", "2026-11-01T03:06:07.123456Z"),
            ("2026-11-01T05:06:07-0130", "2026-11-01T06:36:07Z"),
        ];
        for (input, want) in cases {
            let ts = Timestamp::parse_rfc3339(input, 0).expect(input);
            assert_eq!(ts.to_rfc3339(), want, "{input}");
        }
        assert!(Timestamp::parse_rfc3339("2026-13-01T05:06:07Z", 0).is_err());
        assert!(Timestamp::parse_rfc3339("2026-11-01T05:06:07Zjunk", 0).is_err());
    }

    #[test]
    fn year_inference_handles_new_year() {
        let jan2 = Timestamp::parse_rfc3339("2027-01-02T00:00:00Z", 0).expect("valid");
        let date = |month, day| Civil {
            year: 0,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            micros: 0,
        };
        let utc = LocalZone::Fixed(0);
        assert_eq!(utc.infer_year(date(12, 31), jan2), 2026);
        assert_eq!(utc.infer_year(date(1, 1), jan2), 2027);
        assert_eq!(
            utc.infer_year(date(1, 3), jan2),
            2026,
            "never after the reference"
        );
        let jul = Timestamp::parse_rfc3339("2026-07-01T00:00:00Z", 0).expect("valid");
        assert_eq!(
            utc.infer_year(date(2, 29), jul),
            2026,
            "Feb 29 clamps in a non-leap reference year"
        );
    }

    #[test]
    fn matches_chrono() {
        use chrono::{DateTime, Utc};
        for secs in (-2_000_000_000i64..4_000_000_000).step_by(7_777_777) {
            let ts = Timestamp(secs * 1_000_000 + 123_000);
            let ours = ts.to_rfc3339();
            let theirs = DateTime::<Utc>::from_timestamp(secs, 123_000_000)
                .expect("in range")
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string();
            assert_eq!(ours, theirs);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod duration_tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_durations() {
        let table: &[(&str, u64)] = &[
            ("500ms", 500),
            ("90s", 90_000),
            ("5m", 300_000),
            ("45m", 2_700_000),
            ("2h", 7_200_000),
            ("6h", 21_600_000),
            ("1d", 86_400_000),
            ("7d", 604_800_000),
            ("1h30m", 5_400_000),
            ("1m30s500ms", 90_500),
            ("90", 90_000),
            ("1h30", 3_630_000),
            ("0s", 0),
            ("0", 0),
            (" 10s ", 10_000),
        ];
        for &(text, ms) in table {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
    }

    #[test]
    fn rejected_durations_say_why() {
        let table: &[(&str, DurationError)] = &[
            ("", DurationError::Empty),
            ("  ", DurationError::Empty),
            ("h", DurationError::Syntax { text: "h".into() }),
            ("-1d", DurationError::Syntax { text: "-1d".into() }),
            ("1.5h", DurationError::Syntax { text: "1.5h".into() }),
            (
                "5 minutes",
                DurationError::Syntax {
                    text: "5 minutes".into(),
                },
            ),
            (
                "1w",
                DurationError::Unit {
                    text: "1w".into(),
                    unit: "w".into(),
                },
            ),
            (
                "5min",
                DurationError::Unit {
                    text: "5min".into(),
                    unit: "min".into(),
                },
            ),
            (
                "99999999999999999999s",
                DurationError::Overflow {
                    text: "99999999999999999999s".into(),
                },
            ),
            (
                "300000000000d",
                DurationError::Overflow {
                    text: "300000000000d".into(),
                },
            ),
        ];
        for (text, error) in table {
            assert_eq!(parse_duration(text).as_ref(), Err(error), "{text}");
        }
        assert_eq!(
            parse_duration("1w").unwrap_err().to_string(),
            "\"1w\" is not a duration: unknown unit \"w\" (use ms, s, m, h or d)"
        );
    }

    #[test]
    fn whole_seconds() {
        assert_eq!(parse_duration_secs("1h30m"), Ok(5_400));
        assert_eq!(parse_duration_secs("2000ms"), Ok(2));
        assert_eq!(
            parse_duration_secs("1500ms"),
            Err(DurationError::Fraction {
                text: "1500ms".into()
            })
        );
    }

    proptest! {
        /// Display writes what parse reads back.
        #[test]
        fn display_round_trips(ms in 0u64..u64::MAX / 2) {
            let duration = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&duration.to_string()), Ok(duration));
        }

        /// Parts add up: `<a>h<b>m<c>s<d>ms` is their sum, in any amounts.
        #[test]
        fn parts_sum(h in 0u64..10_000, m in 0u64..10_000, s in 0u64..10_000, ms in 0u64..10_000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            prop_assert_eq!(
                parse_duration(&text).map(Duration::as_millis),
                Ok(h * 3_600_000 + m * 60_000 + s * 1000 + ms)
            );
        }

        /// Arbitrary text never panics.
        #[test]
        fn never_panics(text in "\\PC{0,12}") {
            let _ = parse_duration(&text);
        }
    }
}
