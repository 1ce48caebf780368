//! Atomic runs: everything a run writes (part files, checkpoints, template state, its summary)
//! becomes visible in one commit, and whatever a killed run left behind is repaired or removed
//! by the next writer that opens the data directory.
//!
//! Why stage, then commit? Parts used to be renamed into `records/` as they closed and the
//! checkpoints saved afterwards, so a run killed in between left records the next run wrote
//! again (59,125 duplicated rows in a 2M-line test). Now a run writes under
//! `state/staging/<run-id>/`, laid out like the data directory but outside every dataset a
//! reader globs; then one fsync'd commit record (`COMMIT`, the list of staged files) is written
//! atomically; then each file is renamed to the same relative path under the root; then the
//! record is removed. Opening the directory for writing ([`DataDir::lock`]) recovers: a staged
//! run with a commit record is rolled forward (a rename whose source is gone was done before),
//! one without is rolled back (deleted), and temporary files of interrupted writes are removed.
//!
//! `LOGLENS_FAULT=commit:<step>` makes the process abort at a named step, for the crash tests:
//! `staged` (files synced, no record yet), `recorded` (record written), `renamed:<k>` (after
//! the k-th rename), `renamed:<relative path>` (after that file's rename, e.g.
//! `renamed:state/checkpoints.json`), `applied` (every rename done, record still present).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{DataDir, Dataset, StoreError};

/// The directory under `state/` holding one staging directory per run being written.
const STAGING_DIR: &str = "staging";
/// The commit record's name inside a run's staging directory.
const COMMIT_RECORD: &str = "COMMIT";
/// First line of a commit record; the rest are staged paths, then `end <count>`.
const RECORD_HEADER: &str = "loglens-commit 1";
/// The lock file under `state/`, held (flock) by the process writing the directory.
const LOCK_FILE: &str = "lock";

/// Writes `bytes` to `path` so that a reader or a crash sees the old content or the new, never
/// a mix: a temporary file in the same directory, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// [`write_atomic`] for content written as it is produced (through a buffer), so a large file
/// is never held in memory whole.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    write_whole(path, write, Durability::Synced)?;
    let (dir, _) = split(path)?;
    sync_dir(dir)
}

/// Writes a file of a run's staging area (see [`RunCommit::staged`]) so that a reader sees
/// it whole or not at all, without fsyncs of its own: the run's commit fsyncs every staged
/// file and directory before it records the commit, and a run stages tens of such files
/// (partials by day, checkpoints, miner state), each of whose own syncs waited for the disk.
pub fn write_staged(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_staged_with(path, |file| file.write_all(bytes))
}

/// [`write_staged`] for content written as it is produced (through a buffer).
pub fn write_staged_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    write_whole(path, write, Durability::AtCommit)
}

/// Who makes a written file durable.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The write itself (fsync before the rename).
    Synced,
    /// The commit of the run whose staging area holds it.
    AtCommit,
}

/// Writes a temporary file in `path`'s directory, then renames it to `path`.
fn write_whole(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    durability: Durability,
) -> Result<(), StoreError> {
    let (dir, name) = split(path)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = File::create(&tmp).and_then(|file| {
        let mut buffered = std::io::BufWriter::with_capacity(64 << 10, file);
        write(&mut buffered)?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        match durability {
            Durability::Synced => file.sync_all(),
            Durability::AtCommit => start_writeback(&file),
        }
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}

/// Makes a directory's entries (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

fn split(path: &Path) -> Result<(&Path, String), StoreError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match (path.parent(), name) {
        (Some(dir), Some(name)) => Ok((
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name,
        )),
        _ => Err(StoreError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        )),
    }
}

/// Aborts the process at `step` when `LOGLENS_FAULT=commit:<step>` (crash tests).
fn fault(step: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    let armed = FAULT.get_or_init(|| {
        std::env::var("LOGLENS_FAULT")
            .ok()
            .and_then(|v| v.strip_prefix("commit:").map(str::to_owned))
    });
    if armed.as_deref() == Some(step) {
        std::process::abort();
    }
}

/// What opening a data directory for writing repaired.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Runs killed during their commit, whose remaining renames were applied.
    pub rolled_forward: Vec<String>,
    /// Runs killed before their commit, whose staged files were removed (their input is read
    /// again, since their checkpoints never moved).
    pub rolled_back: Vec<String>,
    /// Temporary files of interrupted writes that were removed.
    pub temp_files_removed: u64,
    /// Their bytes.
    pub temp_bytes_removed: u64,
}

impl Recovery {
    /// Whether anything was repaired.
    pub fn is_empty(&self) -> bool {
        *self == Recovery::default()
    }
}

/// Exclusive write access to a data directory, held until dropped. Taking it recovers from
/// runs that were killed (see the module docs), so whoever holds it sees a consistent
/// directory.
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
    recovery: Recovery,
}

impl WriteLock {
    /// What was repaired when the lock was taken.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }
}

impl DataDir {
    /// Takes the write lock (failing at once if another process holds it), then recovers from
    /// killed runs. The lock is an advisory `flock`, released by the kernel when the process
    /// dies, so a crash never leaves the directory locked.
    pub fn lock(&self) -> Result<WriteLock, StoreError> {
        let state = self.dataset(Dataset::State);
        std::fs::create_dir_all(&state).map_err(|e| StoreError::io(&state, e))?;
        let path = state.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        try_lock(&file).map_err(|e| StoreError::io(&path, e))?;
        let recovery = recover(self.root())?;
        Ok(WriteLock {
            _file: file,
            recovery,
        })
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "another loglens process is writing this data directory",
        ));
    }
    Err(err)
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<()> {
    Ok(())
}

/// The files of one run, staged and then committed in one step.
///
/// ```
/// # fn main() -> Result<(), loglens_store::StoreError> {
/// # let tmp = std::env::temp_dir().join(format!("loglens-doc-{}", std::process::id()));
/// use loglens_store::{DataDir, Dataset, RunCommit};
/// let data = DataDir::create(&tmp)?;
/// let lock = data.lock()?;
/// let run = RunCommit::begin(&data, &lock, "run-1")?;
/// let state = run.staged()?.dataset(Dataset::State);
/// loglens_store::write_atomic(&state.join("checkpoints.json"), b"{}")?;
/// assert_eq!(run.commit()?, 1); // one file renamed into place
/// assert!(data.dataset(Dataset::State).join("checkpoints.json").exists());
/// # std::fs::remove_dir_all(&tmp).ok();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RunCommit {
    root: PathBuf,
    staging: PathBuf,
    /// Whether the staging directory is past the point where dropping may delete it.
    sealed: bool,
}

impl RunCommit {
    /// Starts staging run `run_id` (an empty `state/staging/<run-id>/`). Taking `lock` proves
    /// the directory was recovered and no other writer runs.
    pub fn begin(data_dir: &DataDir, _lock: &WriteLock, run_id: &str) -> Result<Self, StoreError> {
        let staging = staging_root(data_dir.root()).join(run_id);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
        Ok(RunCommit {
            root: data_dir.root().to_owned(),
            staging,
            sealed: false,
        })
    }

    /// The staging area, laid out like the data directory: write the run's files here, at the
    /// relative path they are to have.
    pub fn staged(&self) -> Result<DataDir, StoreError> {
        DataDir::create(&self.staging)
    }

    /// Makes every staged file visible at once; returns how many were renamed into place.
    /// Data files are renamed before `templates/` and `state/`, and `state/runs/` last.
    pub fn commit(mut self) -> Result<usize, StoreError> {
        let files = staged_files(&self.staging)?;
        sync_staged(&self.staging, &files)?;
        fault("staged");
        // From here on the staging directory is the next run's to roll forward or back.
        self.sealed = true;
        write_atomic(
            &self.staging.join(COMMIT_RECORD),
            commit_record(&files).as_bytes(),
        )?;
        fault("recorded");
        apply(&self.root, &self.staging, &files)?;
        finish(&self.staging)?;
        Ok(files.len())
    }
}

impl Drop for RunCommit {
    fn drop(&mut self) {
        if !self.sealed {
            // Best effort: what stays behind is rolled back by the next writer.
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

pub(crate) fn staging_root(root: &Path) -> PathBuf {
    root.join(Dataset::State.dir_name()).join(STAGING_DIR)
}

/// The staged files, as `/`-separated paths relative to the staging directory, in commit
/// order. Hidden files are temporaries of writes that did not finish and are left out.
fn staged_files(staging: &Path) -> Result<Vec<String>, StoreError> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = staging.join(&rel);
        for entry in std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(not_ours(&entry.path()));
            };
            if name.starts_with('.') || (rel.as_os_str().is_empty() && name == COMMIT_RECORD) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| StoreError::io(&entry.path(), e))?;
            if kind.is_dir() {
                stack.push(rel.join(name));
            } else {
                let path = rel.join(name);
                let text = path.to_str().ok_or_else(|| not_ours(&path))?;
                files.push(text.replace('\\', "/"));
            }
        }
    }
    files.sort_by_cached_key(|f| (commit_rank(f), f.clone()));
    Ok(files)
}

fn not_ours(path: &Path) -> StoreError {
    StoreError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, "not a name loglens writes"),
    )
}

/// Data first, so checkpoints never run ahead of the records they account for.
fn commit_rank(rel: &str) -> u8 {
    if rel.starts_with("state/runs/") {
        3
    } else if rel.starts_with("state/") {
        2
    } else if rel.starts_with("templates/") {
        1
    } else {
        0
    }
}

/// fsyncs every staged file and the directories holding them, so the commit record never
/// names a file a power cut could lose.
///
/// Why on several threads? An fsync mostly waits for the disk, and a run stages hundreds of
/// files (an hourly partition per worker): waits side by side overlap.
fn sync_staged(staging: &Path, files: &[String]) -> Result<(), StoreError> {
    let paths: Vec<PathBuf> = files.iter().map(|rel| staging.join(rel)).collect();
    sync_side_by_side(&paths)?;
    sync_side_by_side(&parent_dirs(staging, files).into_iter().collect::<Vec<_>>())
}

/// fsyncs each of `paths` (files or directories), on up to [`SYNC_THREADS`] threads.
fn sync_side_by_side(paths: &[PathBuf]) -> Result<(), StoreError> {
    let sync = |path: &PathBuf| {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(path, e))
    };
    let share = paths.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let syncs: Vec<_> = paths
            .chunks(share)
            .map(|some| scope.spawn(move || some.iter().try_for_each(sync)))
            .collect();
        syncs.into_iter().try_for_each(|sync| {
            sync.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

/// Threads fsyncing a run's staged files (then their directories) side by side.
const SYNC_THREADS: usize = 8;

/// Starts writing `file`'s dirty pages to disk without waiting for them (Linux's
/// `sync_file_range`); elsewhere it syncs the file. The commit's fsync makes it durable.
pub(crate) fn start_writeback(file: &File) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a range hint on a file descriptor we own; no memory is shared.
        if unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) } == 0 {
            return Ok(());
        }
        Err(std::io::Error::last_os_error())
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.sync_all()
    }
}

/// The directories holding `files` below `base`, and their ancestors up to `base`.
fn parent_dirs(base: &Path, files: &[String]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for rel in files {
        let mut dir = Path::new(rel).parent();
        while let Some(d) = dir {
            dirs.insert(base.join(d));
            dir = d.parent();
        }
    }
    dirs
}

fn commit_record(files: &[String]) -> String {
    let mut text = format!("{RECORD_HEADER}\n");
    for f in files {
        text.push_str(f);
        text.push('\n');
    }
    text.push_str(&format!("end {}\n", files.len()));
    text
}

fn parse_commit_record(path: &Path, text: &str) -> Result<Vec<String>, StoreError> {
    let corrupt = || {
        StoreError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt commit record"),
        )
    };
    let mut lines = text.lines();
    if lines.next() != Some(RECORD_HEADER) {
        return Err(corrupt());
    }
    let mut files = Vec::new();
    for line in lines {
        if let Some(count) = line.strip_prefix("end ") {
            return match count.parse::<usize>() {
                Ok(n) if n == files.len() => Ok(files),
                _ => Err(corrupt()),
            };
        }
        if line.is_empty() || line.starts_with('/') || line.split('/').any(|c| c == "..") {
            return Err(corrupt());
        }
        files.push(line.to_owned());
    }
    Err(corrupt())
}

/// Renames each staged file to its place, skipping those renamed before (source gone), then
/// makes the renames durable.
fn apply(root: &Path, staging: &Path, files: &[String]) -> Result<(), StoreError> {
    for (k, rel) in files.iter().enumerate() {
        let (src, dst) = (staging.join(rel), root.join(rel));
        match std::fs::symlink_metadata(&src) {
            Ok(_) => {
                if let Some(dir) = dst.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
                }
                std::fs::rename(&src, &dst).map_err(|e| StoreError::io(&dst, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&src, e)),
        }
        fault(&format!("renamed:{}", k + 1));
        fault(&format!("renamed:{rel}"));
    }
    let mut dirs = parent_dirs(root, files);
    dirs.insert(root.to_owned());
    sync_side_by_side(&dirs.into_iter().collect::<Vec<_>>())?;
    fault("applied");
    Ok(())
}

/// Removes the commit record, then the (now empty) staging directory.
fn finish(staging: &Path) -> Result<(), StoreError> {
    let record = staging.join(COMMIT_RECORD);
    std::fs::remove_file(&record).map_err(|e| StoreError::io(&record, e))?;
    std::fs::remove_dir_all(staging).map_err(|e| StoreError::io(staging, e))
}

/// Rolls staged runs forward or back and removes temporary files of interrupted writes.
fn recover(root: &Path) -> Result<Recovery, StoreError> {
    let mut recovery = Recovery::default();
    let staging_root = staging_root(root);
    let entries = match std::fs::read_dir(&staging_root) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .map_err(|e| StoreError::io(&staging_root, e))?;
    for entry in entries {
        let path = entry.path();
        let run = entry.file_name().to_string_lossy().into_owned();
        let record = path.join(COMMIT_RECORD);
        match std::fs::read_to_string(&record) {
            Ok(text) => {
                let files = parse_commit_record(&record, &text)?;
                apply(root, &path, &files)?;
                finish(&path)?;
                recovery.rolled_forward.push(run);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                let (files, bytes) = tree_size(&path);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|e| StoreError::io(&path, e))?;
                recovery.rolled_back.push(run);
                recovery.temp_files_removed += files;
                recovery.temp_bytes_removed += bytes;
            }
            Err(e) => return Err(StoreError::io(&record, e)),
        }
    }
    remove_temporaries(root, &mut recovery)?;
    Ok(recovery)
}

/// Files and bytes below `path` (best effort, for the report).
fn tree_size(path: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else {
            total.0 += 1;
            total.1 += meta.len();
        }
    }
    total
}

/// Whether a name is one of the temporaries loglens writes before a rename: hidden, and
/// ending in `.tmp` (parts, state files), `.tmp-<pid>`, or `.spool` (standard input).
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && (name.ends_with(".tmp") || name.contains(".tmp-") || name.ends_with(".spool"))
}

/// Removes temporaries below the datasets the write lock covers, and the hidden rebuild
/// directories (`.<dataset>.<run>.new` / `.old`) an interrupted `detect` leaves at the root.
/// `alerts/` is left alone: `loglens alert` does not take the lock.
fn remove_temporaries(root: &Path, recovery: &mut Recovery) -> Result<(), StoreError> {
    const LOCKED: [Dataset; 8] = [
        Dataset::Records,
        Dataset::Unparsed,
        Dataset::State,
        Dataset::Templates,
        Dataset::Metrics,
        Dataset::Anomalies,
        Dataset::Incidents,
        Dataset::Rollups,
    ];
    let mut stack: Vec<PathBuf> = LOCKED.iter().map(|d| root.join(d.dir_name())).collect();
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| StoreError::io(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if is_temporary(&entry.file_name().to_string_lossy()) {
                recovery.temp_bytes_removed += entry.metadata().map_or(0, |m| m.len());
                recovery.temp_files_removed += 1;
                std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
    }
    let entries = std::fs::read_dir(root).map_err(|e| StoreError::io(root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rebuild = LOCKED.iter().any(|d| {
            name.strip_prefix('.')
                .and_then(|n| n.strip_prefix(d.dir_name()))
                .is_some_and(|n| n.starts_with('.') && (n.ends_with(".new") || n.ends_with(".old")))
        });
        if rebuild && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            let (files, bytes) = tree_size(&path);
            std::fs::remove_dir_all(&path).map_err(|e| StoreError::io(&path, e))?;
            recovery.temp_files_removed += files;
            recovery.temp_bytes_removed += bytes;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stage(run: &RunCommit, rel: &str, text: &str) {
        let path = run.staged().unwrap().root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(root: &Path, rel: &str) -> Option<String> {
        std::fs::read_to_string(root.join(rel)).ok()
    }

    #[test]
    fn commit_moves_every_file_in_rank_order() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let lock = data.lock().unwrap();
        let run = RunCommit::begin(&data, &lock, "r1").unwrap();
        stage(&run, "state/runs/r1.json", "summary");
        stage(&run, "state/checkpoints.json", "new");
        stage(
            &run,
            "records/date=2026-11-01/hour=10/part-r1-00-00000.parquet",
            "p",
        );
        stage(&run, "templates/templates.parquet", "t");
        std::fs::write(tmp.path().join("state/checkpoints.json"), "old").unwrap();
        assert_eq!(
            staged_files(&run.staging).unwrap(),
            [
                "records/date=2026-11-01/hour=10/part-r1-00-00000.parquet",
                "templates/templates.parquet",
                "state/checkpoints.json",
                "state/runs/r1.json"
            ]
        );
        assert_eq!(run.commit().unwrap(), 4);
        assert_eq!(read(tmp.path(), "state/checkpoints.json").as_deref(), Some("new"));
        assert_eq!(
            read(
                tmp.path(),
                "records/date=2026-11-01/hour=10/part-r1-00-00000.parquet"
            )
            .as_deref(),
            Some("p")
        );
        assert!(!staging_root(tmp.path()).join("r1").exists());
    }

    #[test]
    fn recovery_rolls_forward_a_recorded_commit_and_back_an_unrecorded_one() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let staging = staging_root(tmp.path());
        // Run a: recorded, first of two renames already applied.
        std::fs::create_dir_all(staging.join("a/records")).unwrap();
        std::fs::create_dir_all(tmp.path().join("records")).unwrap();
        std::fs::write(tmp.path().join("records/one.parquet"), "1").unwrap();
        std::fs::write(staging.join("a/records/two.parquet"), "2").unwrap();
        let files = vec!["records/one.parquet".to_owned(), "records/two.parquet".to_owned()];
        std::fs::write(staging.join("a").join(COMMIT_RECORD), commit_record(&files)).unwrap();
        // Run b: staged, never recorded.
        std::fs::create_dir_all(staging.join("b/records")).unwrap();
        std::fs::write(staging.join("b/records/three.parquet"), "3").unwrap();
        // Leftovers of older versions and of detect.
        std::fs::write(tmp.path().join("records/.part-x.parquet.tmp"), "xx").unwrap();
        std::fs::create_dir_all(tmp.path().join(".metrics.r9.new/date=1")).unwrap();
        std::fs::write(tmp.path().join(".metrics.r9.new/date=1/p.parquet"), "m").unwrap();

        let lock = data.lock().unwrap();
        let recovery = lock.recovery();
        assert_eq!(recovery.rolled_forward, ["a"]);
        assert_eq!(recovery.rolled_back, ["b"]);
        assert_eq!((recovery.temp_files_removed, recovery.temp_bytes_removed), (3, 4));
        assert_eq!(read(tmp.path(), "records/two.parquet").as_deref(), Some("2"));
        assert_eq!(read(tmp.path(), "records/three.parquet"), None);
        assert!(!tmp.path().join("records/.part-x.parquet.tmp").exists());
        assert!(!tmp.path().join(".metrics.r9.new").exists());
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
        drop(lock);
        assert!(data.lock().unwrap().recovery().is_empty());
    }

    #[test]
    fn a_second_writer_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let _held = data.lock().unwrap();
        let err = data.lock().unwrap_err().to_string();
        assert!(err.contains("another loglens process"), "{err}");
    }

    #[test]
    fn dropping_an_uncommitted_run_removes_its_staging() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let lock = data.lock().unwrap();
        let run = RunCommit::begin(&data, &lock, "r2").unwrap();
        stage(&run, "records/x.parquet", "x");
        drop(run);
        assert!(!staging_root(tmp.path()).join("r2").exists());
        assert!(!tmp.path().join("records/x.parquet").exists());
    }

    #[test]
    fn commit_records_round_trip_and_reject_damage() {
        let files = vec![
            "records/a.parquet".to_owned(),
            "state/checkpoints.json".to_owned(),
        ];
        let text = commit_record(&files);
        assert_eq!(parse_commit_record(Path::new("C"), &text).unwrap(), files);
        let cut = &text[..text.len() - 8];
        assert!(parse_commit_record(Path::new("C"), cut).is_err());
        assert!(parse_commit_record(Path::new("C"), "loglens-commit 1\n../x\nend 1\n").is_err());
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
