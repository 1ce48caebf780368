//! Resolves what to read: expands files and directories into a sorted list of files, each with
//! the parser and labels that apply to it (from `--format`, the config, or detection).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use loglens_core::format::generic::GenericParser;
use loglens_core::format::mysql_slow::MysqlSlowParser;
use loglens_core::format::{detection, Format, LineParser, ParseContext};
use loglens_core::Timestamp;
use serde::Serialize;

use crate::config::Config;
use crate::EngineError;

/// The parsers known to a run: user formats from the config, then the built-in ones (Rust,
/// those declared as data, then the catch-all `json` and `logfmt`), then `generic`.
#[derive(Clone)]
pub struct Parsers {
    all: Vec<Arc<dyn LineParser>>,
}

impl Parsers {
    /// The user formats of `config`, then the built-in ones (Rust, those declared as data,
    /// the catch-all `json` and `logfmt`), then `generic`.
    pub fn from_config(config: &Config) -> Result<Parsers, EngineError> {
        let mut all: Vec<Arc<dyn LineParser>> = Vec::new();
        for (i, user) in config.formats.iter().enumerate() {
            let parser = user.build().map_err(|e| {
                EngineError::setting(format!("format[{i}] ({}).{}", user.name, e.field), e.message)
            })?;
            all.push(Arc::from(parser));
        }
        // The formats declared as data go before the catch-all `json` and `logfmt`, so a
        // format file that names a JSON log's keys wins over reading it by the usual keys.
        let data_formats = crate::formats::builtin()?;
        let catch_all = [Format::Json, Format::Logfmt];
        let specific = Format::ALL.iter().filter(|f| !catch_all.contains(f));
        all.extend(specific.map(|f| Arc::from(f.parser())));
        // Read by blocks of lines, so no `Format` (whose parsers render and read single lines).
        all.push(Arc::new(MysqlSlowParser));
        all.extend(data_formats.into_iter().map(Arc::from));
        all.extend(catch_all.iter().map(|f| Arc::from(f.parser())));
        // Last, and detected only when nothing specific reads the sample.
        all.push(Arc::new(GenericParser));
        Ok(Parsers { all })
    }

    /// Every parser, in the order detection tries them (user formats, built-ins, `generic`).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn LineParser>> {
        self.all.iter()
    }

    /// The parser of that name.
    pub fn by_name(&self, name: &str) -> Option<Arc<dyn LineParser>> {
        if let Some(p) = self.all.iter().find(|p| p.name() == name) {
            return Some(p.clone());
        }
        let builtin = name.parse::<Format>().ok()?;
        self.all.iter().find(|p| p.name() == builtin.name()).cloned()
    }

    /// The parser that reads most of `sample` (a file's first lines), if any reads at least
    /// half of it, fitted to the file's header, and why. The `generic` fallback is tried only
    /// when no specific format does, so it never wins over one that parses the same lines.
    pub fn detect(&self, sample: &[&str], ctx: &ParseContext) -> Detected {
        let fitted: Vec<Arc<dyn LineParser>> = self.all.iter().map(|p| fit(p.clone(), sample)).collect();
        // `from_config` puts the generic parser last.
        let Some((generic, specific)) = fitted.split_last() else {
            return Detected {
                parser: None,
                reason: "no formats configured".to_owned(),
            };
        };
        let candidates: Vec<&dyn LineParser> = specific.iter().map(|p| p.as_ref()).collect();
        let seen = detection(sample, &candidates, ctx);
        let reason = seen.explain(|i| specific[i].name());
        if let Some(i) = seen.winner {
            return Detected {
                parser: Some(specific[i].clone()),
                reason,
            };
        }
        let fallback = detection(sample, &[generic.as_ref()], ctx);
        match fallback.winner {
            Some(_) => Detected {
                parser: Some(generic.clone()),
                reason: format!(
                    "generic: {} of {} sample lines start with a timestamp; {reason}",
                    fallback.parsed[0], fallback.scored
                ),
            },
            None => Detected { parser: None, reason },
        }
    }
}

/// The format detection picked for a file (`None`: no format reads it) and why, in words.
#[derive(Clone)]
pub struct Detected {
    /// The parser, fitted to the file's header.
    pub parser: Option<Arc<dyn LineParser>>,
    /// What the sample showed: `combined: 64 of 64 sample lines parse (…)`.
    pub reason: String,
}

/// `parser` fitted to the file whose first lines are `head`, for formats whose header names
/// their columns (W3C, Zeek); any other parser as it is.
pub fn fit(parser: Arc<dyn LineParser>, head: &[&str]) -> Arc<dyn LineParser> {
    if !parser.has_header() {
        return parser;
    }
    parser.for_file(head).map_or(parser, Arc::from)
}

/// One file to read, with what applies to it.
#[derive(Clone)]
pub struct InputFile {
    /// The file.
    pub path: PathBuf,
    /// The parser, or `None` to detect it from the file's first lines.
    pub parser: Option<Arc<dyn LineParser>>,
    /// Host label for records that name none.
    pub host: Option<String>,
    /// Service label for records that name none.
    pub service: Option<String>,
}

/// The path that names standard input.
pub const STDIN: &str = "-";

/// An input that could not be read, and why. The run goes on without it, and its checkpoint
/// does not move past what was read, so the next run tries it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedInput {
    /// The file or directory.
    pub path: PathBuf,
    /// Why it could not be read (or read to its end).
    pub reason: String,
}

impl FailedInput {
    pub(crate) fn new(path: &Path, error: &std::io::Error) -> Self {
        FailedInput {
            path: path.to_owned(),
            reason: error.to_string(),
        }
    }
}

/// Expands `paths` (files and directories, recursively; hidden entries skipped) into files,
/// sorted within each directory; `-` stands for standard input. A missing path or unreadable
/// directory does not stop the others: it is returned among the failures, naming it.
pub fn expand(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<FailedInput>) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        if path.as_os_str() == STDIN {
            files.push(path.clone());
            continue;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut files, &mut failed),
            Ok(_) => files.push(path.clone()),
            Err(e) => failed.push(FailedInput::new(path, &e)),
        }
    }
    (files, failed)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, failed: &mut Vec<FailedInput>) {
    let listed = std::fs::read_dir(dir).and_then(|entries| entries.collect::<Result<Vec<_>, _>>());
    let mut entries: Vec<PathBuf> = match listed {
        Ok(entries) => entries
            .into_iter()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect(),
        Err(e) => return failed.push(FailedInput::new(dir, &e)),
    };
    entries.sort();
    for path in entries {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, files, failed),
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(_) => {}
            Err(e) => failed.push(FailedInput::new(&path, &e)),
        }
    }
}

/// Attaches to each file its parser and labels: `forced` (`--format`) first, then the config
/// input covering the file, else detection.
pub fn resolve(
    files: Vec<PathBuf>,
    config: &Config,
    parsers: &Parsers,
    forced: Option<&str>,
) -> Result<Vec<InputFile>, EngineError> {
    let forced = match forced {
        Some(name) => Some(parsers.by_name(name).ok_or_else(|| {
            EngineError::setting(
                "--format",
                format!(
                    "unknown format {name:?} (built-in: {}; or a [[format]] name from the config)",
                    Format::names()
                ),
            )
        })?),
        None => None,
    };
    files
        .into_iter()
        .map(|path| {
            let input = config.input_for(&path);
            let configured = input
                .and_then(|i| i.format.as_deref())
                .and_then(|n| parsers.by_name(n));
            Ok(InputFile {
                parser: forced.clone().or(configured),
                host: input.and_then(|i| i.host.clone()),
                service: input.and_then(|i| i.service.clone()),
                path,
            })
        })
        .collect()
}

/// The time a file was last written, the reference for year-less timestamps.
pub fn modified(path: &Path) -> Timestamp {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Timestamp(d.as_micros() as i64))
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod detect_tests {
    use super::*;

    fn detected(sample: &[&str]) -> Option<String> {
        let parsers = Parsers::from_config(&Config::default()).unwrap();
        parsers
            .detect(sample, &ParseContext::default())
            .parser
            .map(|p| p.name().to_owned())
    }

    #[test]
    fn generic_reads_what_no_specific_format_does() {
        // HDFS 0.x: `yyMMdd HHmmss thread LEVEL logger: message`, which no format file declares.
        let hdfs = [
            "260304 050607 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
            "260304 050608 35 WARN dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: redundant",
        ];
        assert_eq!(detected(&hdfs).as_deref(), Some("generic"));
        assert_eq!(detected(&["no timestamp here", "nor here"]), None);
    }

    #[test]
    fn formats_that_continue_untimed_lines_win_files_of_long_records_only() {
        // logback with a slow query's SQL after each record: 2 records, 6 lines joining them.
        let logback = [
            "2026-03-04 05:06:07.123 [db-1] WARN  com.example.Repo - slow query:",
            "SELECT o.id,",
            "FROM orders o",
            "WHERE o.customer_id = 42",
            "2026-03-04 05:06:08.123 [db-2] WARN  com.example.Repo - slow query:",
            "SELECT c.id",
            "FROM customers c",
            "WHERE c.id = 7",
        ];
        assert_eq!(detected(&logback).as_deref(), Some("logback"));
        let parsers = Parsers::from_config(&Config::default()).unwrap();
        let why = parsers.detect(&logback, &ParseContext::default()).reason;
        assert!(
            why.starts_with("logback: 2 of 8 sample lines parse, 6 more continue their records"),
            "{why}"
        );
        // One logback line heading a file of something else is not a logback file.
        let mut other = vec![logback[0]];
        other.extend([
            "plain text one",
            "plain text two",
            "plain text three",
            "plain text four",
            "five",
            "six",
        ]);
        assert_eq!(detected(&other), None);
    }

    #[test]
    fn generic_never_wins_over_a_specific_format() {
        // Python logging lines also start with a timestamp the generic parser reads.
        let pylog = [
            "2026-03-04 05:06:07,123 - app - INFO - started",
            "2026-03-04 05:06:08,123 - app - ERROR - failed",
            "2026-03-04 05:06:09,123 free text the generic parser alone reads",
        ];
        assert_eq!(detected(&pylog).as_deref(), Some("pylog"));
        let syslog = [
            "Mar  4 05:06:07 box sshd[1]: hi",
            "Mar  4 05:06:08 box cron[2]: ran",
        ];
        assert_eq!(detected(&syslog).as_deref(), Some("syslog3164"));
    }

    #[test]
    fn detection_says_why() {
        let parsers = Parsers::from_config(&Config::default()).unwrap();
        let why = |sample: &[&str]| parsers.detect(sample, &ParseContext::default()).reason;
        let pylog = [
            "2026-03-04 05:06:07,123 - app - INFO - started",
            "2026-03-04 05:06:08,123 - app - ERROR - failed",
            "2026-03-04 05:06:09,123 free text the generic parser alone reads",
        ];
        assert_eq!(
            why(&pylog),
            "pylog: 2 of 3 sample lines parse (no other format parses any)"
        );
        let vhost = ["example.com:80 127.0.0.1 - - [04/Mar/2026:05:06:07 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\""];
        assert_eq!(
            why(&vhost),
            "vhost_combined: 1 of 1 sample lines parse (no other format parses any)"
        );
        let json = ["{\"ts\":\"2026-03-04T05:06:07Z\",\"level\":\"info\",\"msg\":\"up\"}"];
        assert_eq!(
            why(&json),
            "json: 1 of 1 sample lines parse (no other format parses any)"
        );
        let hdfs = ["260304 050607 148 INFO dfs.DataNode: PacketResponder 1 terminating"];
        assert!(
            why(&hdfs).starts_with("generic: 1 of 1 sample lines start with a timestamp; no format parses any of the 1 sample lines"),
            "{}",
            why(&hdfs)
        );
        assert_eq!(
            why(&["no timestamp here", "nor here"]),
            "no format parses any of the 2 sample lines"
        );
        assert_eq!(
            why(&["# only a comment"]),
            "no sample line can start a record (empty, `#` comments or continuation lines)"
        );
    }
}
