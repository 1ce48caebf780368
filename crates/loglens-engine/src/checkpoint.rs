//! File checkpoints: how far `process` has read each file, so a second run reads only what was
//! appended since, skips unchanged files, and starts over on a rotated or truncated file.
//!
//! A file is known by a fingerprint of its first bytes (as Vector does), not by its path, so a
//! rotated file with a new first line is recognized as new. Checkpoints are stored in
//! `state/checkpoints.json`, written to a temporary name, synced and renamed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Bytes of a file's start that identify it.
const FINGERPRINT_BYTES: u64 = 1024;
const VERSION: u32 = 1;

/// How far one file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// FNV-1a hash of the file's first `fingerprint_len` bytes (as stored on disk).
    pub fingerprint: u64,
    /// How many leading bytes the fingerprint covers.
    pub fingerprint_len: u64,
    /// The file's size on disk when it was read.
    pub size: u64,
    /// Bytes of content consumed (decompressed for gzip), always at a line boundary.
    pub offset: u64,
    /// Lines consumed.
    pub lines: u64,
    /// Reading stopped at an error before the end (a truncated gzip file): the next run
    /// resumes at `offset` whatever the size, so the file is retried and no line read twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

/// What to do with a file, given its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlan {
    /// Never seen, rotated or truncated: read from the start.
    FromStart,
    /// Appended to: continue at this content offset, numbering lines after `lines`.
    Resume {
        /// Content offset to continue at.
        offset: u64,
        /// Lines already read.
        lines: u64,
    },
    /// Nothing new since the last run.
    Unchanged,
}

/// The checkpoints of a data directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoints {
    version: u32,
    files: BTreeMap<PathBuf, FileCheckpoint>,
}

impl Checkpoints {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("checkpoints.json")
    }

    /// Loads the checkpoints, or none if the file does not exist yet.
    pub fn load(state_dir: &Path) -> Result<Checkpoints, EngineError> {
        let path = Self::path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::Config(format!("{}: corrupt checkpoint file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoints::default()),
            Err(e) => Err(EngineError::io(&path, e)),
        }
    }

    /// Writes the checkpoints atomically into `state_dir` (the live one, or a run's staging).
    pub fn save(&mut self, state_dir: &Path) -> Result<(), EngineError> {
        self.version = VERSION;
        let json = serde_json::to_vec_pretty(self).map_err(|e| EngineError::Config(e.to_string()))?;
        Ok(loglens_store::write_atomic(&Self::path(state_dir), &json)?)
    }

    /// Decides how to read `path` (whose canonical form keys the checkpoint).
    pub fn plan(&self, path: &Path, compressed: bool) -> Result<ReadPlan, EngineError> {
        let Some(seen) = self.files.get(&canonical(path)) else {
            return Ok(ReadPlan::FromStart);
        };
        let size = std::fs::metadata(path)
            .map_err(|e| EngineError::io(path, e))?
            .len();
        if size < seen.fingerprint_len || fingerprint(path, seen.fingerprint_len)? != seen.fingerprint {
            return Ok(ReadPlan::FromStart);
        }
        if seen.incomplete && size >= seen.size {
            return Ok(ReadPlan::Resume {
                offset: seen.offset,
                lines: seen.lines,
            });
        }
        Ok(match size.cmp(&seen.size) {
            std::cmp::Ordering::Equal => ReadPlan::Unchanged,
            std::cmp::Ordering::Less => ReadPlan::FromStart,
            // A gzip file that grew was rewritten, not appended to.
            std::cmp::Ordering::Greater if compressed => ReadPlan::FromStart,
            std::cmp::Ordering::Greater => ReadPlan::Resume {
                offset: seen.offset,
                lines: seen.lines,
            },
        })
    }

    /// Records that `path` was read up to `offset` content bytes and `lines` lines.
    pub fn record(&mut self, path: &Path, offset: u64, lines: u64) -> Result<(), EngineError> {
        let size = std::fs::metadata(path)
            .map_err(|e| EngineError::io(path, e))?
            .len();
        let fingerprint_len = size.min(FINGERPRINT_BYTES);
        let checkpoint = FileCheckpoint {
            fingerprint: fingerprint(path, fingerprint_len)?,
            fingerprint_len,
            size,
            offset,
            lines,
            incomplete: false,
        };
        self.files.insert(canonical(path), checkpoint);
        Ok(())
    }

    /// Records that reading `path` stopped at an error after `offset` bytes and `lines` lines.
    pub fn record_incomplete(&mut self, path: &Path, offset: u64, lines: u64) -> Result<(), EngineError> {
        self.record(path, offset, lines)?;
        if let Some(checkpoint) = self.files.get_mut(&canonical(path)) {
            checkpoint.incomplete = true;
        }
        Ok(())
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// FNV-1a over the first `len` bytes of the file: stable across runs and machines.
fn fingerprint(path: &Path, len: u64) -> Result<u64, EngineError> {
    let mut head = Vec::with_capacity(len as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(len).read_to_end(&mut head))
        .map_err(|e| EngineError::io(path, e))?;
    Ok(head.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, "one\ntwo\n").expect("write");
        let mut cps = Checkpoints::default();
        assert_eq!(cps.plan(&log, false).expect("plan"), ReadPlan::FromStart);
        cps.record(&log, 8, 2).expect("record");
        assert_eq!(cps.plan(&log, false).expect("plan"), ReadPlan::Unchanged);
        std::fs::write(&log, "one\ntwo\nthree\n").expect("append");
        assert_eq!(
            cps.plan(&log, false).expect("plan"),
            ReadPlan::Resume { offset: 8, lines: 2 }
        );
        std::fs::write(&log, "new\n").expect("truncate");
        assert_eq!(cps.plan(&log, false).expect("plan"), ReadPlan::FromStart);
        std::fs::write(&log, "xyz\ntwo\nthree\n").expect("rotate");
        assert_eq!(cps.plan(&log, false).expect("plan"), ReadPlan::FromStart);

        cps.save(dir.path()).expect("save");
        let loaded = Checkpoints::load(dir.path()).expect("load");
        assert_eq!(loaded.files, cps.files);
    }

    #[test]
    fn an_incomplete_read_is_resumed_even_when_the_file_did_not_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("app.log.gz");
        std::fs::write(&gz, "a truncated file").expect("write");
        let mut cps = Checkpoints::default();
        cps.record_incomplete(&gz, 5, 1).expect("record");
        let resume = ReadPlan::Resume { offset: 5, lines: 1 };
        assert_eq!(cps.plan(&gz, true).expect("plan"), resume);
        std::fs::write(&gz, "a truncated file, now whole").expect("restore");
        assert_eq!(cps.plan(&gz, true).expect("plan"), resume);
        cps.record(&gz, 27, 1).expect("record");
        assert_eq!(cps.plan(&gz, true).expect("plan"), ReadPlan::Unchanged);
    }
}
