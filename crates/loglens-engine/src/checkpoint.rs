//! File checkpoints: how far `process` has read each file, so a later run reads only what was
//! appended since, skips unchanged files, and follows a file through rotation.
//!
//! A file is known by a fingerprint of its first content bytes (decompressed for gzip), not by
//! its path, as Vector does. Why? Rotation renames: after `mv app.log app.log.1` the old
//! content lives at a new path (and after `gzip app.log.1` in a new encoding), while `app.log`
//! holds new content. Keyed by content, `app.log.1` resumes where `app.log` stopped (the lines
//! appended just before the rename are read, nothing is read twice) and the new `app.log` starts
//! from its first line. Checkpoints are stored in `state/checkpoints.json`, written to a
//! temporary name, synced and renamed.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Content bytes of a file's start that identify it. A file shorter than this is identified by
/// all of it, and by this many bytes once it has grown.
const FINGERPRINT_BYTES: usize = 1024;
/// The checkpoint file's format: 2 keys files by content fingerprint; 1 keyed them by path.
const VERSION: u32 = 2;

/// A file's identity: the FNV-1a hash of its first `len` content bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The hash.
    #[serde(rename = "fingerprint")]
    pub hash: u64,
    /// How many leading content bytes it covers (never 0: an empty file has no identity yet).
    #[serde(rename = "fingerprint_len")]
    pub len: u64,
}

/// How far one file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// The file's identity.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// The path it was last read under (rotation moves the content to other paths).
    pub path: PathBuf,
    /// Whether it was gzip then.
    #[serde(default)]
    pub compressed: bool,
    /// The file's size on disk when it was read (for gzip: unchanged when this is unchanged).
    pub size: u64,
    /// Bytes of content consumed (decompressed for gzip), always at a line boundary.
    pub offset: u64,
    /// Lines consumed.
    pub lines: u64,
    /// Reading stopped at an error before the end (a truncated gzip file): the next run
    /// resumes at `offset` even if the file did not change, so the file is retried and no line
    /// is read twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

/// What to do with a file, given the checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPlan {
    /// Never seen (or its content was replaced): read from the start.
    FromStart,
    /// Seen before and longer now: continue at this content offset, numbering lines after
    /// `lines`.
    Resume {
        /// Content offset to continue at.
        offset: u64,
        /// Lines already read.
        lines: u64,
    },
    /// Nothing new since the last run.
    Unchanged,
}

/// How one file is to be read, and who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    /// Where to start.
    pub read: ReadPlan,
    /// Its identity now (`None` for an empty file, which has nothing to checkpoint).
    pub fingerprint: Option<Fingerprint>,
    /// The identity of the checkpoint it continues, if any: two inputs continuing the same one
    /// are the same content under two names (a rotated copy), to be read once.
    pub continues: Option<Fingerprint>,
    /// Whether the checkpoint it continues was taken under another path: the file was rotated
    /// away, so its writer has moved on and an unterminated last line is final.
    pub rotated: bool,
    /// Size on disk now.
    pub size: u64,
}

/// The checkpoints of a data directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoints {
    version: u32,
    files: Vec<FileCheckpoint>,
}

/// The version-1 file: checkpoints keyed by canonical path, fingerprints over the bytes on disk.
#[derive(Deserialize)]
struct CheckpointsV1 {
    files: std::collections::BTreeMap<PathBuf, V1Checkpoint>,
}

#[derive(Deserialize)]
struct V1Checkpoint {
    fingerprint: u64,
    fingerprint_len: u64,
    size: u64,
    offset: u64,
    lines: u64,
}

impl Checkpoints {
    fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("checkpoints.json")
    }

    /// Loads the checkpoints, or none if the file does not exist yet. A file of an unknown
    /// version is an error, never a silent reset (that would read everything again).
    pub fn load(state_dir: &Path) -> Result<Checkpoints, EngineError> {
        let path = Self::path(state_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoints::default()),
            Err(e) => return Err(EngineError::io(&path, e)),
        };
        let corrupt =
            |e: serde_json::Error| EngineError::state(&path, format!("corrupt checkpoint file: {e}"));
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        match serde_json::from_slice::<Versioned>(&bytes).map_err(corrupt)?.version {
            1 => Ok(Self::from_v1(serde_json::from_slice(&bytes).map_err(corrupt)?)),
            VERSION => serde_json::from_slice(&bytes).map_err(corrupt),
            other => Err(EngineError::state(
                &path,
                format!("checkpoint file version {other} was written by a newer loglens (this one reads 1 and {VERSION})"),
            )),
        }
    }

    /// Version 1 fingerprinted the bytes on disk, which are the content for plain files; a gzip
    /// file's checkpoint is carried over when the file is still there to fingerprint anew.
    fn from_v1(v1: CheckpointsV1) -> Checkpoints {
        let files = v1
            .files
            .into_iter()
            .filter_map(|(path, old)| {
                let compressed = crate::pipeline::is_gzip(&path).unwrap_or(false);
                let fingerprint = if compressed {
                    if disk_fingerprint(&path, old.fingerprint_len).ok() != Some(old.fingerprint) {
                        return None;
                    }
                    content_fingerprint(&path, true).ok().flatten()?
                } else {
                    Fingerprint {
                        hash: old.fingerprint,
                        len: old.fingerprint_len,
                    }
                };
                (fingerprint.len > 0).then_some(FileCheckpoint {
                    fingerprint,
                    path,
                    compressed,
                    size: old.size,
                    offset: old.offset,
                    lines: old.lines,
                    incomplete: false,
                })
            })
            .collect();
        Checkpoints {
            version: VERSION,
            files,
        }
    }

    /// Writes the checkpoints into `state_dir`, a run's staging `state/` (committed with the
    /// records they account for).
    pub fn save(&mut self, state_dir: &Path) -> Result<(), EngineError> {
        self.version = VERSION;
        let json = serde_json::to_vec_pretty(self).map_err(|e| EngineError::encode("checkpoints", e))?;
        Ok(loglens_store::write_staged(&Self::path(state_dir), &json)?)
    }

    /// Decides how to read `path`, finding its checkpoint by content.
    pub fn plan(&self, path: &Path, compressed: bool) -> Result<FilePlan, EngineError> {
        let size = std::fs::metadata(path)
            .map_err(|e| EngineError::io(path, e))?
            .len();
        let head = content_head(path, compressed)?;
        let fingerprint = (!head.is_empty()).then(|| fingerprint_of(&head));
        let mut plan = FilePlan {
            read: ReadPlan::FromStart,
            fingerprint,
            continues: None,
            rotated: false,
            size,
        };
        let Some(seen) = self.matching(&head) else {
            return Ok(plan);
        };
        plan.continues = Some(seen.fingerprint);
        plan.rotated = canonical(path) != seen.path;
        let resume = ReadPlan::Resume {
            offset: seen.offset,
            lines: seen.lines,
        };
        plan.read = if compressed {
            // Compressed content cannot be sized without reading it: a gzip file unchanged on
            // disk has nothing new; any other (a rotated file compressed since) resumes.
            if seen.compressed && size == seen.size && !seen.incomplete {
                ReadPlan::Unchanged
            } else {
                resume
            }
        } else {
            match size.cmp(&seen.offset) {
                std::cmp::Ordering::Equal => ReadPlan::Unchanged,
                // Same first bytes but shorter than what was read: truncated and rewritten.
                std::cmp::Ordering::Less => ReadPlan::FromStart,
                std::cmp::Ordering::Greater => resume,
            }
        };
        Ok(plan)
    }

    /// The checkpoint whose fingerprint the content starting with `head` matches, preferring
    /// the longest fingerprint (the most specific identity).
    fn matching(&self, head: &[u8]) -> Option<&FileCheckpoint> {
        self.files
            .iter()
            .filter(|c| c.fingerprint.len as usize <= head.len())
            .filter(|c| fingerprint_of(&head[..c.fingerprint.len as usize]) == c.fingerprint)
            .max_by_key(|c| c.fingerprint.len)
    }

    /// Records that the file planned as `plan` was read under `path` up to `offset` content
    /// bytes and `lines` lines, replacing the checkpoint it continued.
    pub fn record(&mut self, path: &Path, plan: &FilePlan, compressed: bool, offset: u64, lines: u64) {
        let Some(fingerprint) = plan.fingerprint else {
            return;
        };
        self.files
            .retain(|c| Some(c.fingerprint) != plan.continues && c.fingerprint != fingerprint);
        self.files.push(FileCheckpoint {
            fingerprint,
            path: canonical(path),
            compressed,
            size: plan.size,
            offset,
            lines,
            incomplete: false,
        });
    }

    /// Records, as [`Checkpoints::record`], a file whose reading stopped at an error after
    /// `offset` bytes and `lines` lines: the next run retries it from there.
    pub fn record_incomplete(
        &mut self,
        path: &Path,
        plan: &FilePlan,
        compressed: bool,
        offset: u64,
        lines: u64,
    ) {
        self.record(path, plan, compressed, offset, lines);
        if let Some(last) = self
            .files
            .last_mut()
            .filter(|c| Some(c.fingerprint) == plan.fingerprint)
        {
            last.incomplete = true;
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// The first [`FINGERPRINT_BYTES`] content bytes of a file (fewer if it is shorter).
fn content_head(path: &Path, compressed: bool) -> Result<Vec<u8>, EngineError> {
    let io = |e| EngineError::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
    let limit = FINGERPRINT_BYTES as u64;
    if compressed {
        flate2::read::MultiGzDecoder::new(file)
            .take(limit)
            .read_to_end(&mut head)
            .map_err(io)?;
    } else {
        file.take(limit).read_to_end(&mut head).map_err(io)?;
    }
    Ok(head)
}

fn content_fingerprint(path: &Path, compressed: bool) -> Result<Option<Fingerprint>, EngineError> {
    let head = content_head(path, compressed)?;
    Ok((!head.is_empty()).then(|| fingerprint_of(&head)))
}

fn disk_fingerprint(path: &Path, len: u64) -> Result<u64, EngineError> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(len).read_to_end(&mut head))
        .map_err(|e| EngineError::io(path, e))?;
    Ok(fingerprint_of(&head).hash)
}

/// FNV-1a over `bytes`: stable across runs and machines.
fn fingerprint_of(bytes: &[u8]) -> Fingerprint {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Fingerprint {
        hash,
        len: bytes.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content).expect("compress");
        encoder.finish().expect("finish")
    }

    fn read_all(cps: &mut Checkpoints, path: &Path) -> FilePlan {
        let plan = cps.plan(path, false).expect("plan");
        let content = std::fs::read(path).expect("read");
        let lines = content.iter().filter(|&&b| b == b'\n').count() as u64;
        cps.record(path, &plan, false, content.len() as u64, lines);
        plan
    }

    #[test]
    fn plans_follow_appends_and_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, "one\ntwo\n").expect("write");
        let mut cps = Checkpoints::default();
        assert_eq!(read_all(&mut cps, &log).read, ReadPlan::FromStart);
        assert_eq!(cps.plan(&log, false).expect("plan").read, ReadPlan::Unchanged);
        std::fs::write(&log, "one\ntwo\nthree\n").expect("append");
        assert_eq!(
            cps.plan(&log, false).expect("plan").read,
            ReadPlan::Resume { offset: 8, lines: 2 }
        );
        std::fs::write(&log, "new\n").expect("truncate");
        assert_eq!(cps.plan(&log, false).expect("plan").read, ReadPlan::FromStart);

        cps.save(dir.path()).expect("save");
        let loaded = Checkpoints::load(dir.path()).expect("load");
        assert_eq!(loaded.files, cps.files);
    }

    #[test]
    fn a_renamed_file_resumes_and_its_successor_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, rotated) = (dir.path().join("app.log"), dir.path().join("app.log.1"));
        std::fs::write(&log, "one\ntwo\n").expect("write");
        let mut cps = Checkpoints::default();
        read_all(&mut cps, &log);
        // Appended, then rotated by rename before the next run: the tail is in app.log.1.
        std::fs::write(&log, "one\ntwo\nthree\n").expect("append");
        std::fs::rename(&log, &rotated).expect("rotate");
        std::fs::write(&log, "fresh\n").expect("new file");
        let plan = cps.plan(&rotated, false).expect("plan");
        assert_eq!(plan.read, ReadPlan::Resume { offset: 8, lines: 2 });
        assert!(plan.rotated, "read under another path before");
        assert_eq!(cps.plan(&log, false).expect("plan").read, ReadPlan::FromStart);
    }

    #[test]
    fn a_rotated_file_compressed_later_is_known_by_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        let content = "one\ntwo\nthree\n";
        std::fs::write(&log, content).expect("write");
        let mut cps = Checkpoints::default();
        read_all(&mut cps, &log);
        let gz = dir.path().join("app.log.1.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content.as_bytes()).expect("compress");
        std::fs::write(&gz, encoder.finish().expect("finish")).expect("write gz");
        std::fs::remove_file(&log).expect("rotate");
        let plan = cps.plan(&gz, true).expect("plan");
        assert_eq!(plan.read, ReadPlan::Resume { offset: 14, lines: 3 });
        cps.record(&gz, &plan, true, 14, 3);
        assert_eq!(cps.plan(&gz, true).expect("plan").read, ReadPlan::Unchanged);
        assert_eq!(cps.files.len(), 1, "one identity, one checkpoint");
    }

    #[test]
    fn an_empty_file_has_no_identity_to_confuse() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, "").expect("write");
        let mut cps = Checkpoints::default();
        read_all(&mut cps, &log);
        assert!(cps.files.is_empty());
        let other = dir.path().join("other.log");
        std::fs::write(&other, "x\n").expect("write");
        assert_eq!(cps.plan(&other, false).expect("plan").read, ReadPlan::FromStart);
    }

    #[test]
    fn version_1_files_carry_over_and_unknown_versions_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, "one\ntwo\n").expect("write");
        let fp = fingerprint_of(b"one\ntwo\n");
        let v1 = serde_json::json!({"version": 1, "files": {
            log.canonicalize().expect("canonical").display().to_string(): {
                "fingerprint": fp.hash, "fingerprint_len": fp.len, "size": 8, "offset": 8, "lines": 2}}});
        std::fs::write(dir.path().join("checkpoints.json"), v1.to_string()).expect("write v1");
        let cps = Checkpoints::load(dir.path()).expect("load v1");
        assert_eq!(cps.plan(&log, false).expect("plan").read, ReadPlan::Unchanged);
        std::fs::write(
            dir.path().join("checkpoints.json"),
            r#"{"version": 9, "files": []}"#,
        )
        .expect("write");
        let err = Checkpoints::load(dir.path()).expect_err("newer version");
        assert!(err.to_string().contains("version 9"), "{err}");
    }

    #[test]
    fn an_incomplete_read_is_resumed_even_when_the_file_did_not_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gz = dir.path().join("app.log.gz");
        let content: String = (0..1000).map(|i| format!("line {}\n", i * 7919 % 1000)).collect();
        let whole = gzip(content.as_bytes());
        std::fs::write(&gz, &whole[..whole.len() * 9 / 10]).expect("truncated copy");
        let mut cps = Checkpoints::default();
        let plan = cps.plan(&gz, true).expect("plan");
        cps.record_incomplete(&gz, &plan, true, 2000, 200);
        let resume = ReadPlan::Resume {
            offset: 2000,
            lines: 200,
        };
        assert_eq!(cps.plan(&gz, true).expect("plan").read, resume);
        std::fs::write(&gz, &whole).expect("whole again");
        let plan = cps.plan(&gz, true).expect("plan");
        assert_eq!(plan.read, resume);
        cps.record(&gz, &plan, true, content.len() as u64, 1000);
        assert_eq!(cps.plan(&gz, true).expect("plan").read, ReadPlan::Unchanged);
    }
}
