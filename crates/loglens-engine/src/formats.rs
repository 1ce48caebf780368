//! Formats as data: the `[[format]]` tables of TOML format files (the built-in ones embedded
//! from `formats/*.toml`, a user's in `loglens.toml` or in a `formats_dir`), each a regex with
//! named groups, a timestamp layout, the format's level words and sample lines that are its
//! tests: every sample must parse (and match the fields it states) before the format is used.
//!
//! Why are the busiest formats (combined, syslog, JSON) still Rust? They are the hot path; a
//! hand-written parser reads them 3–10x faster than a regex. The long tail lives here as data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use loglens_core::format::mapped::{MappedParser, Syntax};
use loglens_core::format::multiline::Continuation;
use loglens_core::format::regex::RegexFormat;
use loglens_core::format::{FieldKeys, KeyMapping, LineParser, ParseContext};
use loglens_core::{Level, Record, Timestamp};
use serde::Deserialize;

/// `[[format]]`: a format declared as data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatSpec {
    /// The name inputs and `--format` refer to and the `format` column stores.
    pub name: String,
    /// One line on what it reads, for `loglens formats list`.
    pub description: Option<String>,
    /// A regex with named groups: `ts` (required), `level`, `host`, `service`, `message`,
    /// the access-log fields (`client_ip`, `method`, `path`, `status`, `bytes`, `latency_ms`,
    /// `referer`, `user_agent`); every other named group goes to `attrs`. Either this or `json`.
    pub regex: Option<String>,
    /// For JSON lines: the keys of the record's fields (`{ ts = "@t", message = ["@m", "@mt"] }`);
    /// every other key goes to `attrs`. One of `regex`, `json`, `logfmt`.
    pub json: Option<JsonKeys>,
    /// For logfmt lines: the keys of the record's fields, as for `json`.
    pub logfmt: Option<JsonKeys>,
    /// A strftime layout for the `ts` group (default: ISO 8601, CLF, syslog, epoch detected).
    pub timestamp: Option<String>,
    /// The format's own level words and the level each means (`W = "warn"`); the usual names
    /// (`INFO`, `warning`, `err`…) need no entry.
    #[serde(default)]
    pub levels: BTreeMap<String, String>,
    /// Lines of the format, each a test: a line, or a table with the line and the fields it
    /// must give.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Which lines the format refuses continue the record before them: `"stack_trace"` (the
    /// default: indented lines, tracebacks) or `"any"` (every line it does not read, for
    /// formats whose records all start with a timestamp; regex formats only).
    #[serde(default)]
    pub continuation: Continuation,
}

/// The keys of a key/value (JSON or logfmt) format's fields, each a key or a list in order of
/// preference.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonKeys {
    /// The time (RFC 3339 or epoch s/ms/µs/ns).
    #[serde(default)]
    pub ts: OneOrMore,
    /// The level (a name, or a word of the format's `levels`, numbers included).
    #[serde(default)]
    pub level: OneOrMore,
    /// The message.
    #[serde(default)]
    pub message: OneOrMore,
    /// The service.
    #[serde(default)]
    pub service: OneOrMore,
    /// The host.
    #[serde(default)]
    pub host: OneOrMore,
    /// Keys every line must have: what tells this format's lines from any JSON log's.
    #[serde(default)]
    pub required: Vec<String>,
}

/// A key or a list of keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum OneOrMore {
    /// No key.
    #[default]
    None,
    /// One key.
    One(String),
    /// Keys in order of preference.
    More(Vec<String>),
}

impl OneOrMore {
    fn keys(&self) -> Vec<String> {
        match self {
            OneOrMore::None => Vec::new(),
            OneOrMore::One(key) => vec![key.clone()],
            OneOrMore::More(keys) => keys.clone(),
        }
    }
}

/// A sample line of a format, optionally with what parsing it must give.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Sample {
    /// A line that must parse.
    Line(String),
    /// A line and the fields its record must have.
    Checked(CheckedSample),
}

/// A sample line and the fields its record must have (those not given are not checked).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckedSample {
    /// The line.
    pub line: String,
    /// The time, RFC 3339 in UTC (`2026-03-04T05:06:07.123Z`). Year-less lines are read as in
    /// a file last written on 2027-01-02.
    pub ts: Option<String>,
    /// The level name (`warn`).
    pub level: Option<String>,
    /// The service.
    pub service: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The message.
    pub message: Option<String>,
    /// The HTTP status of an access record.
    pub status: Option<u16>,
    /// Attributes that must be present with these values.
    #[serde(default)]
    pub attrs: BTreeMap<String, String>,
}

impl Sample {
    /// The sample's line.
    pub fn line(&self) -> &str {
        match self {
            Sample::Line(line) => line,
            Sample::Checked(checked) => &checked.line,
        }
    }
}

/// A format spec that cannot be used: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// The field, e.g. `samples[2]` or `levels.W`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FormatSpec {
    /// Builds the parser, checking the level words and every sample.
    pub fn build(&self) -> Result<Box<dyn LineParser>, SpecError> {
        let error = |field: String, message: String| SpecError { field, message };
        let mut levels = Vec::with_capacity(self.levels.len());
        for (word, name) in &self.levels {
            let level = name
                .parse::<Level>()
                .map_err(|e| error(format!("levels.{word}"), e.to_string()))?;
            levels.push((word.clone(), level));
        }
        let example = self.samples.first().map(|s| s.line().to_owned());
        let parser: Box<dyn LineParser> = match (&self.regex, &self.json, &self.logfmt) {
            (Some(regex), None, None) => Box::new(
                RegexFormat::new(self.name.clone(), regex, self.timestamp.clone())
                    .map_err(|e| error("regex".into(), e.to_string()))?
                    .with_levels(levels)
                    .with_about(self.description.clone(), example)
                    .with_continuation(self.continuation),
            ),
            (None, _, _) if self.continuation == Continuation::Any => {
                return Err(error(
                    "continuation".into(),
                    "\"any\" needs a `regex` format (a JSON or logfmt line is whole)".into(),
                ))
            }
            (None, Some(keys), None) | (None, None, Some(keys)) => {
                let syntax = if self.json.is_some() {
                    Syntax::Json
                } else {
                    Syntax::Logfmt
                };
                let mapping = KeyMapping {
                    keys: FieldKeys {
                        time: keys.ts.keys(),
                        level: keys.level.keys(),
                        message: keys.message.keys(),
                        service: keys.service.keys(),
                        host: keys.host.keys(),
                    },
                    levels,
                    required: keys.required.clone(),
                };
                Box::new(
                    MappedParser::new(self.name.clone(), syntax, mapping)
                        .with_about(self.description.clone(), example),
                )
            }
            _ => {
                return Err(error(
                    "regex".into(),
                    "a format has one of `regex`, `json` or `logfmt`".into(),
                ))
            }
        };
        let ctx = sample_context();
        for (i, sample) in self.samples.iter().enumerate() {
            let field = || format!("samples[{i}]");
            let record = parser
                .parse(sample.line(), &ctx)
                .map_err(|e| error(field(), format!("does not parse ({e}): {}", sample.line())))?;
            if let Sample::Checked(expected) = sample {
                expected
                    .check(&record)
                    .map_err(|message| error(field(), message))?;
            }
        }
        Ok(parser)
    }
}

impl CheckedSample {
    /// `Err` naming the first field of `record` that differs from what the sample states.
    fn check(&self, record: &Record<'_>) -> Result<(), String> {
        let differs = |field: &str, got: Option<&str>, want: &str| {
            format!("{field} is {got:?}, the sample says {want:?}: {}", self.line)
        };
        let ts = record.ts.to_rfc3339();
        let checks = [
            ("ts", Some(ts.as_str()), self.ts.as_deref()),
            ("level", record.level.map(|l| l.as_str()), self.level.as_deref()),
            ("service", record.service.as_deref(), self.service.as_deref()),
            ("host", record.host.as_deref(), self.host.as_deref()),
            ("message", Some(&*record.message), self.message.as_deref()),
        ];
        for (field, got, want) in checks {
            if let Some(want) = want {
                if got != Some(want) {
                    return Err(differs(field, got, want));
                }
            }
        }
        if let Some(want) = self.status {
            let got = record.access.as_ref().map(|a| a.status);
            if got != Some(want) {
                return Err(format!(
                    "status is {got:?}, the sample says {want}: {}",
                    self.line
                ));
            }
        }
        for (key, want) in &self.attrs {
            let got = record
                .attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_ref());
            if got != Some(want.as_str()) {
                return Err(differs(&format!("attrs.{key}"), got, want));
            }
        }
        Ok(())
    }
}

/// How samples are read: in UTC, in a file last written on 2027-01-02 (the year of year-less
/// lines), whatever the run's settings, so a sample's stated fields do not depend on them.
fn sample_context() -> ParseContext {
    ParseContext {
        reference: Timestamp(1_798_848_000_000_000),
        zone: loglens_core::zone::LocalZone::Unknown,
    }
}

/// A TOML format file: `[[format]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatFile {
    #[serde(rename = "format")]
    formats: Vec<FormatSpec>,
}

/// The built-in format files, embedded in the binary.
const BUILTIN_FILES: [(&str, &str); 9] = [
    ("web.toml", include_str!("../formats/web.toml")),
    ("json.toml", include_str!("../formats/json.toml")),
    // Spring Boot's lines also match `log4j`'s regex: first wins a tie.
    ("logback.toml", include_str!("../formats/logback.toml")),
    ("log4j.toml", include_str!("../formats/log4j.toml")),
    ("spark.toml", include_str!("../formats/spark.toml")),
    ("glog.toml", include_str!("../formats/glog.toml")),
    ("haproxy.toml", include_str!("../formats/haproxy.toml")),
    ("windows_cbs.toml", include_str!("../formats/windows_cbs.toml")),
    ("zap.toml", include_str!("../formats/zap.toml")),
];

/// A format file that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FormatFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown field.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// toml's message, with line and column.
        message: String,
    },
    /// A format in it is not usable.
    #[error("{path}: format[{index}] ({name}).{error}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// Its place in the file.
        index: usize,
        /// Its name.
        name: String,
        /// The field at fault and why.
        error: SpecError,
    },
}

/// A format spec and the parser built from it.
type BuiltFormat = (FormatSpec, Box<dyn LineParser>);

/// The specs of one format file's text, each built and checked.
fn read_file(path: &Path, text: &str) -> Result<Vec<BuiltFormat>, FormatFileError> {
    let file: FormatFile = toml::from_str(text).map_err(|e| FormatFileError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    file.formats
        .into_iter()
        .enumerate()
        .map(|(index, spec)| match spec.build() {
            Ok(parser) => Ok((spec, parser)),
            Err(error) => Err(FormatFileError::Spec {
                path: path.to_owned(),
                index,
                name: spec.name.clone(),
                error,
            }),
        })
        .collect()
}

/// The built-in formats declared as data, in the order detection tries them.
pub fn builtin() -> Result<Vec<Box<dyn LineParser>>, FormatFileError> {
    let mut all = Vec::new();
    for (name, text) in BUILTIN_FILES {
        all.extend(read_file(Path::new(name), text)?.into_iter().map(|(_, p)| p));
    }
    Ok(all)
}

/// The names of the built-in formats declared as data.
pub fn builtin_names() -> Vec<String> {
    BUILTIN_FILES
        .iter()
        .filter_map(|(_, text)| toml::from_str::<FormatFile>(text).ok())
        .flat_map(|f| f.formats.into_iter().map(|spec| spec.name))
        .collect()
}

/// The formats of every `*.toml` file in `dir`, in file-name order.
pub fn read_dir(dir: &Path) -> Result<Vec<FormatSpec>, FormatFileError> {
    let read = |path: &Path, source| FormatFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| read(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut specs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| read(&path, e))?;
        specs.extend(read_file(&path, &text)?.into_iter().map(|(spec, _)| spec));
    }
    Ok(specs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::input::Parsers;
    use crate::Config;

    /// Every embedded format builds, its samples pass, and detection on its samples picks it
    /// among all the formats a run knows.
    #[test]
    fn builtin_formats_pass_their_samples_and_are_detected() {
        let parsers = Parsers::from_config(&Config::default()).unwrap();
        for (file, text) in BUILTIN_FILES {
            for (spec, _) in read_file(Path::new(file), text).unwrap() {
                assert!(spec.samples.len() >= 3, "{}: at least three samples", spec.name);
                let lines: Vec<&str> = spec.samples.iter().map(Sample::line).collect();
                let detected = parsers
                    .detect(&lines, &sample_context())
                    .parser
                    .map(|p| p.name().to_owned());
                assert_eq!(detected.as_deref(), Some(spec.name.as_str()), "{file}");
            }
        }
        assert!(builtin_names().contains(&"glog".to_owned()));
    }

    /// A JSON format names its keys; lines without its required keys are not its own.
    #[test]
    fn json_formats_read_their_keys_and_level_words() {
        let spec = r#"
            [[format]]
            name = "gcp"
            json = { ts = "when", level = "sev", message = ["text", "msg"], required = ["sev"] }
            levels = { 3 = "error" }
            samples = [
              { line = '{"when":"2026-03-04T05:06:07Z","sev":3,"text":"boom","ts":"1999-01-01T00:00:00Z"}', ts = "2026-03-04T05:06:07Z", level = "error", message = "boom", attrs = { ts = "1999-01-01T00:00:00Z" } },
              { line = '{"when":1772600768,"sev":"WARNING","msg":"slow"}', level = "warn", message = "slow" },
            ]
        "#;
        let formats = read_file(Path::new("gcp.toml"), spec).unwrap();
        let parser = &formats[0].1;
        let err = parser.parse(
            r#"{"when":"2026-03-04T05:06:07Z","text":"no sev"}"#,
            &sample_context(),
        );
        assert_eq!(err.err().map(|e| e.kind()), Some("layout mismatch"));
    }

    #[test]
    fn a_sample_that_disagrees_names_the_field() {
        let spec = r#"
            [[format]]
            name = "mine"
            regex = '^(?P<ts>\S+) (?P<level>\w) (?P<message>.*)$'
            levels = { W = "warn" }
            samples = [
              "2026-03-04T05:06:07Z W fine",
              { line = "2026-03-04T05:06:07Z W disk full", level = "error" },
            ]
        "#;
        let err = read_file(Path::new("mine.toml"), spec).err().unwrap().to_string();
        assert_eq!(
            err,
            "mine.toml: format[0] (mine).samples[1]: level is Some(\"warn\"), the sample says \"error\": 2026-03-04T05:06:07Z W disk full"
        );
        let bad_level = spec.replace("W = \"warn\"", "W = \"loud\"");
        let err = read_file(Path::new("mine.toml"), &bad_level)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("levels.W"), "{err}");
        let both = spec.replace("levels =", "json = { ts = \"t\" }\n            levels =");
        let err = read_file(Path::new("mine.toml"), &both)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("one of `regex`, `json` or `logfmt`"), "{err}");
        let unparsed = spec.replace("W fine", "fine");
        let err = read_file(Path::new("mine.toml"), &unparsed)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("samples[0]: does not parse"), "{err}");
    }
}
