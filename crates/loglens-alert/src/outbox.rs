//! The durable outbox in `alerts/outbox/`: one JSON file per (notification, receiver), and the
//! groups' state in `state.json`. Every write goes to a temporary file, is fsynced, renamed over
//! the old one, and the directory is fsynced, so a crash leaves either the old or the new version.
//!
//! Why one file per delivery? A delivery's status changes independently of the others (pending →
//! sending(n) → delivered / failed); rewriting one small file per change keeps each change atomic
//! without a database.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use loglens_core::alert::GroupState;
use serde::{Deserialize, Serialize};

use crate::notification::Notification;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not tried yet.
    Pending,
    /// An attempt was started and not acknowledged: after a crash it is sent again with the same
    /// idempotency key, so the receiver can drop the duplicate.
    Sending,
    /// Acknowledged by the receiver.
    Delivered,
    /// Failed for good: the receiver refused it (a permanent error) or is no longer configured.
    Failed,
    /// Not delivered before `give_up_after`: given up, with a warning.
    Expired,
    /// All its alerts were silenced: recorded, not sent.
    Silenced,
    /// Folded into a storm summary sent in its place: recorded, not sent.
    Summarized,
}

impl Status {
    /// The lowercase name, as in the outbox files.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Expired => "expired",
            Status::Silenced => "silenced",
            Status::Summarized => "summarized",
        }
    }

    /// Whether no more work is due.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::Failed | Status::Expired | Status::Silenced | Status::Summarized
        )
    }
}

/// One notification to one receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The notification.
    pub notification: Notification,
    /// Receiver name.
    pub receiver: String,
    /// `email`, `webhook`, `slack`, `alertmanager`.
    pub receiver_kind: String,
    /// Status.
    pub status: Status,
    /// Attempts started.
    pub attempts: u32,
    /// Last error, secrets redacted.
    pub error: Option<String>,
    /// When (µs, the run's evaluation time) it was queued: `give_up_after` counts from here.
    #[serde(default)]
    pub queued_at: i64,
    /// Not attempted again before this instant (µs): the backoff between runs.
    #[serde(default)]
    pub next_attempt_at: i64,
}

impl Entry {
    /// The file name: key and receiver (receiver names are sanitized to `[A-Za-z0-9_-]`).
    pub fn file_name(&self) -> String {
        entry_file_name(&self.notification.key, &self.receiver)
    }
}

fn entry_file_name(key: &str, receiver: &str) -> String {
    let safe: String = receiver
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{key}-{safe}.json")
}

/// An outbox file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OutboxError {
    /// The file or directory.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> OutboxError {
    OutboxError {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// The exclusive lock on the outbox, held for a whole run: released when dropped (or when the
/// process dies, as the kernel drops `flock` locks with the file descriptor).
#[derive(Debug)]
pub struct OutboxLock {
    _file: File,
}

/// Another process held the lock for the whole wait.
#[derive(Debug, thiserror::Error)]
#[error("another `loglens alert` process (pid {holder}) holds {path}; waited {waited_ms} ms (see [alerting] lock_wait)")]
pub struct LockBusy {
    /// The lock file.
    pub path: PathBuf,
    /// The holder's pid as it wrote it, or `?`.
    pub holder: String,
    /// How long this process waited.
    pub waited_ms: u64,
}

/// Files of the outbox directory that are not delivery entries.
const NOT_ENTRIES: [&str; 2] = ["state.json", "silences.json"];

/// The outbox directory.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

/// Group states by `rule` → `group key`.
pub type States = BTreeMap<String, BTreeMap<String, GroupState>>;

impl Outbox {
    /// Opens (creating) `<data_dir>/alerts/outbox`.
    pub fn open(data_dir: &Path) -> Result<Outbox, OutboxError> {
        let dir = data_dir.join("alerts").join("outbox");
        fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        Ok(Outbox { dir })
    }

    /// Takes the exclusive lock (`alerts/outbox/.lock`), waiting up to `wait`.
    /// Why a lock? Two runs at once would each deliver the same pending entries.
    pub fn lock(&self, wait: std::time::Duration) -> Result<Result<OutboxLock, LockBusy>, OutboxError> {
        lock_file(&self.dir.join(".lock"), wait)
    }

    /// Whether an entry for this key and receiver exists (in any status).
    pub fn contains(&self, key: &str, receiver: &str) -> bool {
        self.dir.join(entry_file_name(key, receiver)).exists()
    }

    /// Writes an entry atomically (temp → fsync → rename → fsync dir).
    pub fn put(&self, entry: &Entry) -> Result<(), OutboxError> {
        let bytes = serde_json::to_vec_pretty(entry).map_err(|e| err(&self.dir, e))?;
        write_atomic(&self.dir.join(entry.file_name()), &bytes)
    }

    /// Every entry, sorted by file name; unreadable files are errors (never skipped silently).
    pub fn entries(&self) -> Result<Vec<Entry>, OutboxError> {
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map_err(|e| err(&self.dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name().is_some_and(|n| {
                        !NOT_ENTRIES.contains(&&*n.to_string_lossy()) && !n.to_string_lossy().starts_with('.')
                    })
            })
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| {
                let bytes = fs::read(p).map_err(|e| err(p, e))?;
                serde_json::from_slice(&bytes).map_err(|e| err(p, e))
            })
            .collect()
    }

    /// Deletes the entries `old` selects; returns how many. Why prune? Delivered entries are only
    /// kept so a crash between enqueue and state save finds them; after a retention they are noise.
    pub fn prune(&self, old: impl Fn(&Entry) -> bool) -> Result<usize, OutboxError> {
        let mut removed = 0;
        for entry in self.entries()?.iter().filter(|e| old(e)) {
            let path = self.dir.join(entry.file_name());
            fs::remove_file(&path).map_err(|e| err(&path, e))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// The group states (empty when never saved).
    pub fn load_states(&self) -> Result<States, OutboxError> {
        let path = self.dir.join("state.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(States::new()),
            Err(e) => Err(err(&path, e)),
        }
    }

    /// Saves the group states atomically.
    pub fn save_states(&self, states: &States) -> Result<(), OutboxError> {
        let bytes = serde_json::to_vec_pretty(states).map_err(|e| err(&self.dir, e))?;
        write_atomic(&self.dir.join("state.json"), &bytes)
    }
}

/// Takes an exclusive `flock` on `path` (created if missing, holding the holder's pid), waiting
/// up to `wait`.
pub(crate) fn lock_file(
    path: &Path,
    wait: std::time::Duration,
) -> Result<Result<OutboxLock, LockBusy>, OutboxError> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| err(path, e))?;
    let started = std::time::Instant::now();
    loop {
        if try_lock(&file).map_err(|e| err(path, e))? {
            file.set_len(0).map_err(|e| err(path, e))?;
            write!(file, "{}", std::process::id()).map_err(|e| err(path, e))?;
            return Ok(Ok(OutboxLock { _file: file }));
        }
        if started.elapsed() >= wait {
            let holder = fs::read_to_string(path).unwrap_or_default();
            let holder = if holder.trim().is_empty() {
                "?".to_owned()
            } else {
                holder.trim().to_owned()
            };
            let waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            return Ok(Err(LockBusy {
                path: path.to_owned(),
                holder,
                waited_ms,
            }));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function borrows; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Elsewhere runs are not serialized (loglens targets Linux; the lock is advisory anyway).
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Writes `bytes` to `path` so that readers and crashes see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutboxError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = File::create(&tmp).map_err(|e| err(&tmp, e))?;
    file.write_all(bytes).map_err(|e| err(&tmp, e))?;
    file.sync_all().map_err(|e| err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| err(path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use loglens_core::Timestamp;

    fn entry(key: &str) -> Entry {
        let n = Notification::new(
            key.into(),
            "r",
            "firing",
            BTreeMap::new(),
            "",
            Timestamp(0),
            Vec::new(),
        );
        Entry {
            notification: n,
            receiver: "ops team".into(),
            receiver_kind: "webhook".into(),
            status: Status::Pending,
            attempts: 0,
            error: None,
            queued_at: 0,
            next_attempt_at: 0,
        }
    }

    #[test]
    fn a_second_lock_waits_then_reports_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let held = outbox.lock(std::time::Duration::ZERO).unwrap().unwrap();
        // flock locks belong to the open file description, so a second open conflicts even in
        // the same process, as a second `loglens alert run` would.
        let busy = outbox
            .lock(std::time::Duration::from_millis(100))
            .unwrap()
            .unwrap_err();
        assert_eq!(busy.holder, std::process::id().to_string());
        assert!(busy.waited_ms >= 100);
        drop(held);
        assert!(outbox.lock(std::time::Duration::ZERO).unwrap().is_ok());
    }

    #[test]
    fn entries_round_trip_and_states_persist() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path()).unwrap();
        let mut e = entry("k1");
        outbox.put(&e).unwrap();
        assert!(outbox.contains("k1", "ops team"));
        e.status = Status::Sending;
        e.attempts = 1;
        outbox.put(&e).unwrap();
        assert_eq!(outbox.entries().unwrap(), vec![e.clone()]);
        assert_eq!(e.file_name(), "k1-ops_team.json");
        let mut states = States::new();
        states.entry("r".into()).or_default().insert(
            "service=api".into(),
            GroupState {
                seq: 3,
                ..Default::default()
            },
        );
        outbox.save_states(&states).unwrap();
        assert_eq!(Outbox::open(dir.path()).unwrap().load_states().unwrap(), states);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("alerts/outbox"))
            .unwrap()
            .flatten()
            .filter(|f| f.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "no temp files left");
    }
}
