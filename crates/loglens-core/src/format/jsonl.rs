//! TODO: the json format (stub).

use super::{LineParser, ParseContext, ParseError};
use crate::record::Record;

/// Parses json lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

impl LineParser for JsonParser {
    fn name(&self) -> &str {
        "json"
    }

    fn parse<'a>(&self, _line: &'a str, _ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        Err(ParseError::Layout("json"))
    }
}

/// Renders a record as a json line.
pub fn render(_record: &Record<'_>, _out: &mut String) {}
