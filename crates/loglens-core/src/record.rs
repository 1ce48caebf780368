//! The normalized record every format parses into.
//!
//! A [`Record`] borrows from the line it was parsed from wherever it can (`Cow`), so parsing a
//! line allocates only for fields that had to be unescaped.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::time::Timestamp;

/// One parsed log line. Where the line came from (file, line number, format) is known by the
/// caller and stored beside the record, not in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// When the event happened, UTC.
    pub ts: Timestamp,
    /// The host that emitted the line, when the format names one.
    pub host: Option<Cow<'a, str>>,
    /// The service (syslog app name, logger, `service` field) that emitted the line.
    pub service: Option<Cow<'a, str>>,
    /// Severity, normalized across formats; access logs derive it from the status.
    pub level: Option<Level>,
    /// The human-readable message; for access logs the request line.
    pub message: Cow<'a, str>,
    /// Typed fields of web access logs.
    pub access: Option<Access<'a>>,
    /// Every other extracted field, in the order the line had them.
    pub attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Record<'a> {
    /// A record with only a time and a message.
    pub fn new(ts: Timestamp, message: impl Into<Cow<'a, str>>) -> Self {
        Record {
            ts,
            host: None,
            service: None,
            level: None,
            message: message.into(),
            access: None,
            attrs: Vec::new(),
        }
    }
}

/// The typed fields of a web access log line (nginx/Apache combined and common formats).
#[derive(Debug, Clone, PartialEq)]
pub struct Access<'a> {
    /// The client address as written (IPv4 or IPv6).
    pub client_ip: &'a str,
    /// The authenticated user, `None` for `-`.
    pub user: Option<&'a str>,
    /// HTTP method, `None` when the request line was not `METHOD PATH PROTOCOL`.
    pub method: Option<&'a str>,
    /// Request path with query string.
    pub path: Option<&'a str>,
    /// Protocol, e.g. `HTTP/1.1`.
    pub protocol: Option<&'a str>,
    /// Response status code.
    pub status: u16,
    /// Response body bytes, `None` for `-`.
    pub bytes: Option<u64>,
    /// Request time in milliseconds, when the line carries it.
    pub latency_ms: Option<f64>,
    /// Referer, `None` for `-` or absent (common format).
    pub referer: Option<&'a str>,
    /// User agent, `None` for `-` or absent (common format).
    pub user_agent: Option<&'a str>,
}

/// Severity normalized across formats, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Level {
    /// Finer than debug.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Normal but significant (syslog `notice`).
    Notice,
    /// Something unexpected that did not fail.
    Warn,
    /// An operation failed.
    Error,
    /// A component failed (syslog `crit`, Python `CRITICAL`, `FATAL`).
    Critical,
    /// Action must be taken at once (syslog `alert`).
    Alert,
    /// The system is unusable (syslog `emerg`).
    Emergency,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 9] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warn,
        Level::Error,
        Level::Critical,
        Level::Alert,
        Level::Emergency,
    ];

    /// The canonical lowercase name stored in the `level` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Critical => "critical",
            Level::Alert => "alert",
            Level::Emergency => "emergency",
        }
    }

    /// The level of a syslog severity (0 = emergency … 7 = debug).
    pub fn from_syslog_severity(severity: u8) -> Option<Level> {
        Some(match severity {
            0 => Level::Emergency,
            1 => Level::Alert,
            2 => Level::Critical,
            3 => Level::Error,
            4 => Level::Warn,
            5 => Level::Notice,
            6 => Level::Info,
            7 => Level::Debug,
            _ => return None,
        })
    }

    /// The syslog severity of this level (trace maps to debug).
    pub fn syslog_severity(self) -> u8 {
        match self {
            Level::Emergency => 0,
            Level::Alert => 1,
            Level::Critical => 2,
            Level::Error => 3,
            Level::Warn => 4,
            Level::Notice => 5,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        }
    }

    /// The level an access log line gets from its status: 5xx error, 4xx warn, else info.
    pub fn from_http_status(status: u16) -> Level {
        match status {
            500..=599 => Level::Error,
            400..=499 => Level::Warn,
            _ => Level::Info,
        }
    }

    /// Whether this level counts towards error rates (error or worse).
    pub fn is_error(self) -> bool {
        self >= Level::Error
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A level name that no format knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown level {0:?}")]
pub struct UnknownLevel(pub String);

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Accepts the names used by syslog, Python logging, log4j, Go and Rust loggers, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let level = match s.len() {
            1..=9 => {
                let mut buf = [0u8; 9];
                let lower = &mut buf[..s.len()];
                lower.copy_from_slice(s.as_bytes());
                lower.make_ascii_lowercase();
                match &*lower {
                    b"trace" | b"finest" => Level::Trace,
                    b"debug" | b"dbg" | b"fine" => Level::Debug,
                    b"info" | b"inf" | b"information" => Level::Info,
                    b"notice" => Level::Notice,
                    b"warn" | b"warning" | b"wrn" => Level::Warn,
                    b"error" | b"err" | b"eror" | b"severe" => Level::Error,
                    b"critical" | b"crit" | b"fatal" => Level::Critical,
                    b"alert" => Level::Alert,
                    b"emergency" | b"emerg" | b"panic" => Level::Emergency,
                    _ => return Err(UnknownLevel(s.to_owned())),
                }
            }
            11 if s.eq_ignore_ascii_case("information") => Level::Info,
            _ => return Err(UnknownLevel(s.to_owned())),
        };
        Ok(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_round_trip() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>(), Ok(level));
        }
        assert_eq!("WARNING".parse::<Level>(), Ok(Level::Warn));
        assert_eq!("Fatal".parse::<Level>(), Ok(Level::Critical));
        assert!("loud".parse::<Level>().is_err());
    }

    #[test]
    fn syslog_severity_round_trips() {
        for severity in 0..8 {
            let level = Level::from_syslog_severity(severity).expect("valid severity");
            assert_eq!(level.syslog_severity(), severity);
        }
        assert_eq!(Level::from_syslog_severity(8), None);
    }
}
