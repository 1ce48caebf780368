//! TODO: the pylog format (stub).

use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;

/// Parses pylog lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonLoggingParser;

impl LineParser for PythonLoggingParser {
    fn name(&self) -> &str {
        "pylog"
    }

    fn parse<'a>(&self, _line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        Err(ParseError::Layout("pylog"))
    }
}

/// Renders a record as a pylog line.
pub fn render(_record: &Record<'_>, _out: &mut String) {}
