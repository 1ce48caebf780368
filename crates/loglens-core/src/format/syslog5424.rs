//! TODO: the syslog5424 format (stub).

use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;

/// Parses syslog5424 lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Syslog5424Parser;

impl LineParser for Syslog5424Parser {
    fn name(&self) -> &str {
        "syslog5424"
    }

    fn parse<'a>(&self, _line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        Err(ParseError::Layout("syslog5424"))
    }
}

/// Renders a record as a syslog5424 line.
pub fn render(_record: &Record<'_>, _out: &mut String) {}
