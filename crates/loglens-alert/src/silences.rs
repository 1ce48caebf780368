//! Silences added with `loglens alert silence add`, kept in `alerts/outbox/silences.json` (private
//! to `loglens alert`); config silences live in `loglens.toml`. Expiring sets the end to now, so
//! the record stays for the audit trail. Changes hold `alerts/outbox/.silences.lock`, so two
//! commands at once do not lose one's change; runs only read the file (replaced atomically).

use std::path::{Path, PathBuf};

use loglens_core::alert::{Matcher, MatcherError, Silence};
use loglens_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::outbox::{lock_file, write_atomic, LockBusy, OutboxLock};

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRecord {
    /// Id (`s-<created µs>` unless given).
    pub id: String,
    /// Matchers as written (`service=api`).
    pub matchers: Vec<String>,
    /// Start (µs).
    pub starts: i64,
    /// End (µs, exclusive).
    pub ends: i64,
    /// Why.
    pub comment: String,
}

/// The silences file is unreadable, or a stored matcher does not parse.
#[derive(Debug, thiserror::Error)]
pub enum SilenceStoreError {
    /// I/O or JSON error.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A matcher is invalid.
    #[error("silence {id}: {source}")]
    Matcher {
        /// The silence.
        id: String,
        /// Why.
        source: MatcherError,
    },
    /// No silence has this id.
    #[error("no silence with id {0:?}")]
    NotFound(String),
    /// Another silence command held the lock for the whole wait.
    #[error("{}: another `loglens alert silence` command (pid {}) is changing the silences; waited {} ms, try again", .0.path.display(), .0.holder, .0.waited_ms)]
    Busy(#[from] LockBusy),
}

/// How long a silence command waits for another to finish: they take milliseconds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a separate lock and not the outbox's? A run holds that one while it delivers (minutes
/// with a stalled receiver), and silencing is what an operator does during exactly that storm.
fn lock(data_dir: &Path) -> Result<OutboxLock, SilenceStoreError> {
    let path = path(data_dir);
    let dir = path.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| SilenceStoreError::File {
        path: dir.to_owned(),
        message: e.to_string(),
    })?;
    let lock = lock_file(&dir.join(".silences.lock"), LOCK_WAIT).map_err(|e| SilenceStoreError::File {
        path: e.path,
        message: e.message,
    })?;
    Ok(lock?)
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("alerts").join("outbox").join("silences.json")
}

/// Every stored silence (active or not).
pub fn records(data_dir: &Path) -> Result<Vec<SilenceRecord>, SilenceStoreError> {
    let path = path(data_dir);
    let file_err = |m: String| SilenceStoreError::File {
        path: path.clone(),
        message: m,
    };
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| file_err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(file_err(e.to_string())),
    }
}

fn save(data_dir: &Path, all: &[SilenceRecord]) -> Result<(), SilenceStoreError> {
    let path = path(data_dir);
    let file_err = |m: String| SilenceStoreError::File {
        path: path.clone(),
        message: m,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
    }
    let bytes = serde_json::to_vec_pretty(all).map_err(|e| file_err(e.to_string()))?;
    write_atomic(&path, &bytes).map_err(|e| file_err(e.message))
}

/// The stored silences as matchable values.
pub fn load(data_dir: &Path) -> Result<Vec<Silence>, SilenceStoreError> {
    records(data_dir)?.iter().map(to_silence).collect()
}

fn to_silence(r: &SilenceRecord) -> Result<Silence, SilenceStoreError> {
    let matchers = r
        .matchers
        .iter()
        .map(|m| {
            Matcher::parse(m).map_err(|source| SilenceStoreError::Matcher {
                id: r.id.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Silence {
        id: r.id.clone(),
        matchers,
        starts: Timestamp(r.starts),
        ends: Timestamp(r.ends),
        comment: r.comment.clone(),
    })
}

/// Adds a silence after checking its matchers; returns its id.
pub fn add(data_dir: &Path, record: SilenceRecord) -> Result<String, SilenceStoreError> {
    to_silence(&record)?;
    let _lock = lock(data_dir)?;
    let mut all = records(data_dir)?;
    let id = record.id.clone();
    all.retain(|r| r.id != id);
    all.push(record);
    save(data_dir, &all)?;
    Ok(id)
}

/// Ends a silence at `now`.
pub fn expire(data_dir: &Path, id: &str, now: Timestamp) -> Result<(), SilenceStoreError> {
    let _lock = lock(data_dir)?;
    let mut all = records(data_dir)?;
    let record = all
        .iter_mut()
        .find(|r| r.id == id)
        .ok_or_else(|| SilenceStoreError::NotFound(id.to_owned()))?;
    record.ends = record.ends.min(now.0);
    save(data_dir, &all)
}
