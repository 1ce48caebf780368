//! The spool: sources append accepted lines to segment files under `state/spool/<source>/`,
//! the at-least-once buffer between ingestion and the batch pipeline. Each flush closes the
//! open segments, `loglens_engine::process` reads them, and they are deleted once that run
//! committed; segments left by a killed service are read at the next start.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// What applies to the lines of one segment: their format and default labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stream {
    /// A format name, or `None` to detect it.
    pub format: Option<String>,
    /// Host label for records that name none.
    pub host: Option<String>,
    /// Service label for records that name none.
    pub service: Option<String>,
}

/// A closed segment, ready for the pipeline.
#[derive(Debug)]
pub struct Segment {
    /// The segment file.
    pub path: PathBuf,
    /// Its format and labels.
    pub stream: Stream,
    /// Lines in it.
    pub lines: u64,
    /// Bytes in it.
    pub bytes: u64,
}

impl Segment {
    /// Deletes the segment and its sidecar (after the run that read it committed).
    pub fn remove(&self) -> std::io::Result<()> {
        std::fs::remove_file(&self.path)?;
        match std::fs::remove_file(self.path.with_extension("json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

struct Open {
    file: Arc<File>,
    path: PathBuf,
    lines: u64,
    bytes: u64,
}

/// The spool of one source.
pub struct Spool {
    dir: PathBuf,
    open: Mutex<HashMap<Stream, Open>>,
    next: AtomicU64,
}

impl Spool {
    /// Opens (creating) the spool directory of a source and returns the segments a previous
    /// service left there, oldest first.
    pub fn open(dir: PathBuf) -> std::io::Result<(Spool, Vec<Segment>)> {
        std::fs::create_dir_all(&dir)?;
        let mut left = Vec::new();
        let mut next = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "seg") {
                let seq = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                next = next.max(seq + 1);
                left.push(recovered(path)?);
            }
        }
        left.sort_by(|a, b| a.path.cmp(&b.path));
        let spool = Spool {
            dir,
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(next),
        };
        Ok((spool, left))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Stream, Open>> {
        // A panic while holding the lock leaves the map consistent (entries are replaced whole).
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends whole lines (`data` ends with a newline) to the stream's open segment; returns
    /// the file so the caller can sync it before acknowledging.
    pub fn append(&self, stream: &Stream, data: &[u8], lines: u64) -> std::io::Result<Arc<File>> {
        let mut open = self.lock();
        if !open.contains_key(stream) {
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!("{seq:012}.seg"));
            // The sidecar first: a segment is never without its format and labels.
            let meta = serde_json::to_vec(stream).map_err(std::io::Error::other)?;
            std::fs::write(path.with_extension("json"), meta)?;
            let file = OpenOptions::new().create_new(true).append(true).open(&path)?;
            let entry = Open {
                file: Arc::new(file),
                path,
                lines: 0,
                bytes: 0,
            };
            open.insert(stream.clone(), entry);
        }
        let Some(seg) = open.get_mut(stream) else {
            return Err(std::io::Error::other("spool segment vanished"));
        };
        (&*seg.file).write_all(data)?;
        seg.lines += lines;
        seg.bytes += data.len() as u64;
        Ok(seg.file.clone())
    }

    /// Closes every open segment (synced to disk) and returns them.
    pub fn roll(&self) -> std::io::Result<Vec<Segment>> {
        let open: Vec<(Stream, Open)> = self.lock().drain().collect();
        let mut closed = Vec::with_capacity(open.len());
        for (stream, seg) in open {
            seg.file.sync_data()?;
            closed.push(Segment {
                path: seg.path,
                stream,
                lines: seg.lines,
                bytes: seg.bytes,
            });
        }
        closed.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(closed)
    }
}

/// A segment found at start: its sidecar gives the stream, its content the counts. A last
/// line cut by the kill was never acknowledged; it is read as it is.
fn recovered(path: PathBuf) -> std::io::Result<Segment> {
    let stream = match std::fs::read(path.with_extension("json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(_) => Stream::default(),
    };
    let data = std::fs::read(&path)?;
    let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
    Ok(Segment {
        path,
        stream,
        lines,
        bytes: data.len() as u64,
    })
}

/// The spool directory of a source.
pub fn dir_of(data_dir: &Path, source: &str) -> PathBuf {
    data_dir.join("state").join("spool").join(source)
}
