//! TODO: the syslog3164 format (stub).

use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;

/// Parses syslog3164 lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syslog3164Parser;

impl LineParser for Syslog3164Parser {
    fn name(&self) -> &str {
        "syslog3164"
    }

    fn parse<'a>(&self, _line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        Err(ParseError::Layout("syslog3164"))
    }
}

/// Renders a record as a syslog3164 line.
pub fn render(_record: &Record<'_>, _out: &mut String) {}
