//! Key/value formats a format file declares: JSON or logfmt lines whose field keys, level words
//! and required keys the file names (`json = { ts = "@t", level = "@l" }`,
//! `logfmt = { ts = "t", message = "m" }`). The named keys fill the record's fields first, the
//! well-known keys of the `json` and `logfmt` formats after them.

use super::fields::KeyMapping;
use super::{jsonl, logfmt, LineParser, ParseContext, ParseError};
use crate::record::Record;

/// The syntax of a declared key/value format's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
}

/// A key/value format declared in a format file.
#[derive(Debug, Clone)]
pub struct MappedParser {
    name: String,
    syntax: Syntax,
    mapping: KeyMapping,
    /// How each required key shows in a line (`"pid"` in JSON, `pid=` in logfmt): a cheap
    /// test, and a value that merely contains the text is rare enough for telling formats apart.
    required: Vec<String>,
    description: Option<String>,
    example: Option<String>,
}

impl MappedParser {
    /// A parser named `name` of lines in `syntax`, read with `mapping`.
    pub fn new(name: String, syntax: Syntax, mapping: KeyMapping) -> Self {
        let required = mapping
            .required
            .iter()
            .map(|key| match syntax {
                Syntax::Json => format!("\"{key}\""),
                Syntax::Logfmt => format!("{key}="),
            })
            .collect();
        MappedParser {
            name,
            syntax,
            mapping,
            required,
            description: None,
            example: None,
        }
    }

    /// The parser with what `loglens formats list` says about it.
    pub fn with_about(mut self, description: Option<String>, example: Option<String>) -> Self {
        self.description = description;
        self.example = example;
        self
    }
}

impl LineParser for MappedParser {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        if !self.required.iter().all(|shown| line.contains(shown.as_str())) {
            return Err(ParseError::Layout("a line with the format's required keys"));
        }
        let role_of = |key: &str| self.mapping.role_of(key);
        let level_of = |text: &str| self.mapping.level_of(text);
        match self.syntax {
            Syntax::Json => jsonl::parse_object(line, ctx, &role_of, &level_of),
            Syntax::Logfmt => logfmt::parse_pairs(line, ctx, &role_of, &level_of),
        }
    }

    fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    fn example(&self) -> Option<&str> {
        self.example.as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::format::FieldKeys;
    use crate::record::Level;

    #[test]
    fn logfmt_lines_read_with_the_named_keys() {
        let mapping = KeyMapping {
            keys: FieldKeys {
                time: vec!["t".into()],
                level: vec!["sev".into()],
                message: vec!["m".into()],
                ..FieldKeys::default()
            },
            levels: vec![("E".into(), Level::Error)],
            required: vec!["sev".into()],
        };
        let parser = MappedParser::new("mine".into(), Syntax::Logfmt, mapping);
        let ctx = ParseContext::default();
        let r = parser
            .parse(r#"t=2026-03-04T05:06:07Z sev=E m="disk full" msg=other"#, &ctx)
            .unwrap();
        assert_eq!((r.level, r.message.as_ref()), (Some(Level::Error), "disk full"));
        assert_eq!(r.attrs, [("msg".into(), "other".into())]);
        let missing = parser.parse("t=2026-03-04T05:06:07Z m=x", &ctx).unwrap_err();
        assert_eq!(missing.kind(), "layout mismatch");
    }
}
