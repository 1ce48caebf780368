//! The loglens engine: the batch pipeline of `loglens process` (read inputs in chunks, parse
//! on every core, write partitioned Parquet).
//!
//! The stages themselves live in `loglens-core` (parsing) and `loglens-store` (Parquet); this
//! crate owns threads, files and configuration.

#![deny(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod detect;
pub mod distributed;
pub mod formats;
pub mod input;
mod long_lines;
mod mine;
mod parsed;
pub mod partials;
pub mod pipeline;
pub mod progress;
mod request;

use std::path::{Path, PathBuf};

pub use config::Config;
pub use mine::miner_config;
pub use request::ProcessRequest;

/// A run id (`YYYYMMDDTHHMMSSZ-<pid>`) that sorts by start time and differs between concurrent
/// runs: what names a run's parts, partial and summary, for the CLI and the Python package.
pub fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let ts = loglens_core::Timestamp::from_secs(secs).to_civil(0);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:x}",
        ts.year,
        ts.month,
        ts.day,
        ts.hour,
        ts.minute,
        ts.second,
        std::process::id()
    )
}
pub use parsed::parse_into_columns;
pub use pipeline::{process, ProcessOptions, ProcessSummary, RunStatus};

/// Errors of the engine; each names the file or setting involved.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setting (a config key or a command-line flag) cannot be used.
    #[error("{setting}: {message}")]
    Setting {
        /// The setting, e.g. `--timezone`, `[detect]`, `format[2] (billing).regex`.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// A built-in format file is broken (a bug caught by the tests).
    #[error(transparent)]
    FormatFile(#[from] crate::formats::FormatFileError),
    /// No input was named.
    #[error("nothing to process: name files or directories, or a --config with [[input]] entries")]
    NothingToProcess,
    /// None of the inputs could be read; the first one and why.
    #[error("{path}: {reason}")]
    Input {
        /// The file or directory.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
    /// A state file the engine keeps (checkpoints, miner state, partials, detect state) cannot
    /// be used; `message` says why and how to recover.
    #[error("{path}: {message}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why, and what to do.
        message: String,
    },
    /// A chunk of a distributed run does not fit the run (a file changed during it, or the
    /// driver called the steps out of order).
    #[error("{path}: chunk {seq}: {message}")]
    Chunk {
        /// The chunk's file.
        path: PathBuf,
        /// The chunk's place in the run.
        seq: u64,
        /// What does not fit.
        message: String,
    },
    /// A distributed driver called the run's steps in an order the run cannot follow.
    #[error("distributed run: {0}")]
    Driver(String),
    /// Metric partials of different bucket widths were merged.
    #[error(transparent)]
    Partial(#[from] loglens_core::partial::PartialError),
    /// State could not be encoded (a bug).
    #[error("encoding {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// Writing the data directory failed.
    #[error(transparent)]
    Store(#[from] loglens_store::StoreError),
    /// A worker thread panicked (a bug).
    #[error("a worker thread panicked")]
    Panic,
}

impl EngineError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn setting(setting: impl Into<String>, message: impl std::fmt::Display) -> Self {
        EngineError::Setting {
            setting: setting.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn state(path: &Path, message: impl std::fmt::Display) -> Self {
        EngineError::State {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }

    pub(crate) fn encode(what: &'static str, error: impl std::fmt::Display) -> Self {
        EngineError::Encode {
            what,
            message: error.to_string(),
        }
    }
}
