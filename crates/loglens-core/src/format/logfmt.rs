//! TODO: the logfmt format (stub).

use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;

/// Parses logfmt lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogfmtParser;

impl LineParser for LogfmtParser {
    fn name(&self) -> &str {
        "logfmt"
    }

    fn parse<'a>(&self, _line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        Err(ParseError::Layout("logfmt"))
    }
}

/// Renders a record as a logfmt line.
pub fn render(_record: &Record<'_>, _out: &mut String) {}
