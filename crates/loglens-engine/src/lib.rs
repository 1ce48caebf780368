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
mod mine;
mod parsed;
pub mod partials;
pub mod pipeline;
pub mod progress;
mod request;

use std::path::{Path, PathBuf};

pub use config::Config;
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
    /// The configuration or a command-line setting is not usable.
    #[error("{0}")]
    Config(String),
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
}
