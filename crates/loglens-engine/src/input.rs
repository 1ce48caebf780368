//! Resolves what to read: expands files and directories into a sorted list of files, each with
//! the parser and labels that apply to it (from `--format`, the config, or detection).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use loglens_core::format::{Format, LineParser, ParseContext};
use loglens_core::Timestamp;
use serde::Serialize;

use crate::config::Config;
use crate::EngineError;

/// The parsers known to a run: user formats from the config, then the built-in ones.
#[derive(Clone)]
pub struct Parsers {
    all: Vec<Arc<dyn LineParser>>,
}

impl Parsers {
    /// The built-in formats plus the user formats of `config`.
    pub fn from_config(config: &Config) -> Result<Parsers, EngineError> {
        let mut all: Vec<Arc<dyn LineParser>> = Vec::new();
        for (i, user) in config.formats.iter().enumerate() {
            let parser = loglens_core::format::regex::RegexFormat::new(
                user.name.clone(),
                &user.regex,
                user.timestamp.clone(),
            )
            .map_err(|e| EngineError::Config(format!("format[{i}] ({}): {e}", user.name)))?;
            all.push(Arc::new(parser));
        }
        all.extend(Format::ALL.iter().map(|f| Arc::from(f.parser())));
        Ok(Parsers { all })
    }

    /// The parser of that name.
    pub fn by_name(&self, name: &str) -> Option<Arc<dyn LineParser>> {
        if let Some(p) = self.all.iter().find(|p| p.name() == name) {
            return Some(p.clone());
        }
        let builtin = name.parse::<Format>().ok()?;
        self.all.iter().find(|p| p.name() == builtin.name()).cloned()
    }

    /// The parser that reads most of `sample`, if any reads at least half of it.
    pub fn detect(&self, sample: &[&str], ctx: &ParseContext) -> Option<Arc<dyn LineParser>> {
        let candidates: Vec<&dyn LineParser> = self.all.iter().map(|p| p.as_ref()).collect();
        loglens_core::format::detect(sample, &candidates, ctx).map(|i| self.all[i].clone())
    }
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
            EngineError::Config(format!(
                "--format {name:?}: unknown format (built-in: combined, common, syslog3164, syslog5424, json, logfmt, pylog; or a [[format]] name from the config)"
            ))
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
