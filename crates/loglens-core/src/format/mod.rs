//! Log formats: each built-in [`Format`] parses a line into a [`Record`] and renders a record
//! back into a line (the generator and the round-trip property tests use the renderer).
//! User formats (a regex with named groups) implement the same [`LineParser`] trait.
//!
//! Why one trait for parsing and a separate function for rendering? Every format parses, but
//! only built-in formats render: a user regex has no inverse.

use std::fmt;
use std::str::FromStr;

use crate::record::Record;
use crate::time::{TimeError, Timestamp};

pub mod combined;
mod fields;
pub mod generic;
pub mod jsonl;
pub mod logfmt;
pub mod pylog;
pub mod regex;
pub mod syslog3164;
pub mod syslog5424;

/// What a parser needs to know besides the line: data, never a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseContext {
    /// The time the line was written at the latest (the file's modification time): formats
    /// without a year (RFC 3164) take the year that puts the line at or before it.
    pub reference: Timestamp,
    /// The zone of timestamps that carry none.
    pub zone: crate::zone::LocalZone,
}

/// Why a line did not parse. The `Display` text is what the unparsed dataset stores;
/// [`ParseError::kind`] is the coarse reason the summary counts by.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The line does not have the format's shape at all.
    #[error("not {0}")]
    Layout(&'static str),
    /// A required field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field is present but its value is not valid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, e.g. `status`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The timestamp could not be read.
    #[error("bad timestamp: {0}")]
    Time(#[from] TimeError),
    /// The line is not valid JSON (with serde_json's explanation).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The line is empty or only white space.
    #[error("empty line")]
    Empty,
}

impl ParseError {
    /// A short, stable reason class for counting (the full text may name columns).
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Layout(_) => "layout mismatch",
            ParseError::Missing(field) => field,
            ParseError::Invalid { field, .. } => field,
            ParseError::Time(_) => "bad timestamp",
            ParseError::Json(_) => "invalid JSON",
            ParseError::Empty => "empty line",
        }
    }
}

/// Turns one line into a record. Implementations are cheap to call and hold no per-line state,
/// so one parser serves every thread.
pub trait LineParser: Send + Sync {
    /// The format name stored in the `format` column.
    fn name(&self) -> &str;
    /// Parses a line (without its line terminator).
    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError>;
}

/// The built-in formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// nginx/Apache combined log format, optionally followed by the request time in seconds.
    Combined,
    /// NCSA Common Log Format.
    Common,
    /// BSD syslog, RFC 3164 (`<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, PRI optional).
    Syslog3164,
    /// IETF syslog, RFC 5424.
    Syslog5424,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs (Heroku / Go logfmt).
    Logfmt,
    /// Python logging `%(asctime)s - %(name)s - %(levelname)s - %(message)s`.
    PythonLogging,
}

impl Format {
    /// Every built-in format, in the order auto-detection prefers on a tie.
    pub const ALL: [Format; 7] = [
        Format::Combined,
        Format::Common,
        Format::Syslog5424,
        Format::PythonLogging,
        Format::Syslog3164,
        Format::Json,
        Format::Logfmt,
    ];

    /// The name used in configs, on the command line and in the `format` column.
    pub fn name(self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::Common => "common",
            Format::Syslog3164 => "syslog3164",
            Format::Syslog5424 => "syslog5424",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::PythonLogging => "pylog",
        }
    }

    /// The parser of this format.
    pub fn parser(self) -> Box<dyn LineParser> {
        match self {
            Format::Combined => Box::new(combined::CombinedParser::combined()),
            Format::Common => Box::new(combined::CombinedParser::common()),
            Format::Syslog3164 => Box::new(syslog3164::Syslog3164Parser),
            Format::Syslog5424 => Box::new(syslog5424::Syslog5424Parser),
            Format::Json => Box::new(jsonl::JsonParser),
            Format::Logfmt => Box::new(logfmt::LogfmtParser),
            Format::PythonLogging => Box::new(pylog::PythonLoggingParser),
        }
    }

    /// Renders a record as one line of this format (no line terminator), appending to `out`.
    /// Fields the format cannot carry are left out.
    pub fn render(self, record: &Record<'_>, out: &mut String) {
        match self {
            Format::Combined => combined::render(record, out, true),
            Format::Common => combined::render(record, out, false),
            Format::Syslog3164 => syslog3164::render(record, out),
            Format::Syslog5424 => syslog5424::render(record, out),
            Format::Json => jsonl::render(record, out),
            Format::Logfmt => logfmt::render(record, out),
            Format::PythonLogging => pylog::render(record, out),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not built in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown format {0:?} (built-in formats: combined, common, syslog3164, syslog5424, json, logfmt, pylog)"
)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "combined" | "nginx" | "apache" => Format::Combined,
            "common" | "clf" => Format::Common,
            "syslog3164" | "syslog" | "rfc3164" => Format::Syslog3164,
            "syslog5424" | "rfc5424" => Format::Syslog5424,
            "json" | "jsonl" | "ndjson" => Format::Json,
            "logfmt" => Format::Logfmt,
            "pylog" | "python" => Format::PythonLogging,
            _ => return Err(UnknownFormat(s.to_owned())),
        })
    }
}

/// Picks the parser that reads most of `sample` (at least half of its non-empty lines);
/// candidates earlier in the slice win ties. Returns the candidate's index.
pub fn detect(sample: &[&str], candidates: &[&dyn LineParser], ctx: &ParseContext) -> Option<usize> {
    let lines: Vec<&str> = sample.iter().copied().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    let mut best: Option<(usize, usize)> = None;
    for (i, parser) in candidates.iter().enumerate() {
        let ok = lines.iter().filter(|l| parser.parse(l, ctx).is_ok()).count();
        if ok * 2 >= lines.len() && ok > 0 && best.is_none_or(|(_, b)| ok > b) {
            best = Some((i, ok));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert!("xml".parse::<Format>().is_err());
    }
}
