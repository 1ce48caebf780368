//! Run partials: what each `process` run contributes to the metric series, saved as
//! `state/partials/<run-id>.<day>.bin` (a versioned [`MetricPartial`] in postcard, a compact
//! binary serde format), or in parts `<run-id>.<part>.<day>.bin` (a worker's partial once it
//! fills up, and each Dask/Ray write group's), and committed with the run's records, so
//! `detect` consumes partials it has not seen instead of re-reading records. Why a file per
//! day (UTC, `YYYY-MM-DD`) of the buckets? `detect` merges and judges a day at a time, so its
//! memory holds a day of cells whatever the span of the input. Why not JSON? A week of 1M
//! records made a 120 MB file whose writing and reading cost more than a second each; older
//! `.json` partials, and those saved whole before the split, still load.

use std::path::{Path, PathBuf};

use loglens_core::partial::MetricPartial;
use loglens_core::time::{civil_from_days, days_from_civil};

use crate::EngineError;

/// The directory under `state/` holding one partial per run.
pub const PARTIALS_DIR: &str = "partials";
const EXT: &str = "bin";
/// What partials were saved as before (still read).
const JSON_EXT: &str = "json";

/// Cells a partial's file holds at least, unless it is the last: the days of a sparse input
/// (an archive of years with a few records a day) share files rather than leave a small file
/// per day. A file holds whole days, named after the first: `detect` judges up to the first
/// day of the next file it merges, so it need not know the last.
pub const MIN_FILE_CELLS: usize = 4096;

/// Saves run `run_id`'s partial under `state_dir` (a run's staging `state/`).
pub fn save(state_dir: &Path, run_id: &str, partial: MetricPartial) -> Result<(), EngineError> {
    save_named(state_dir, run_id, partial)
}

/// Saves one part of run `run_id`'s partial (`part`: a name unique in the run, without dots);
/// saving the same part again replaces it.
pub fn save_part(
    state_dir: &Path,
    run_id: &str,
    part: &str,
    partial: MetricPartial,
) -> Result<(), EngineError> {
    save_named(state_dir, &format!("{run_id}.{part}"), partial)
}

/// The run that saved the partial named `name` (as [`list`] names them).
pub fn run_of(name: &str) -> &str {
    name.split_once('.').map_or(name, |(run, _)| run)
}

/// The day (since 1970-01-01, UTC) a saved partial's buckets fall on, from its name; `None`
/// for a partial saved whole (before partials were split by day).
pub fn day_of(name: &str) -> Option<i64> {
    let (_, day) = name.rsplit_once('.')?;
    let mut parts = day.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if (y.len(), m.len(), d.len()) != (4, 2, 2) {
        return None;
    }
    Some(days_from_civil(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

/// Saves `partial` as `<name>.<day>.bin`, a file for each day of its buckets (sparse days
/// share one: see [`MIN_FILE_CELLS`]), named after the first. The cells are sorted once and
/// each file written from its run of them: taking the partial apart a day at a time cost a
/// tenth of `process`.
fn save_named(state_dir: &Path, name: &str, partial: MetricPartial) -> Result<(), EngineError> {
    let dir = state_dir.join(PARTIALS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    let cells = partial.sorted();
    // Each file is encoded in memory, then written: postcard writes byte by byte, and
    // `process` on the 100k week took 2.68G instructions streaming through `dyn Write`, 2.66G
    // through a `BufWriter` of its own type, 2.62G encoding in memory. A file holds a day:
    // 0.6 MB for a day of a worker's full partial (`PARTIAL_CELLS`) on the demo's week, 4.4 MB
    // were its cells all on one day; the whole week's at once took 40 MB more.
    let mut encoded = Vec::new();
    for (first, range) in cells.by_days(MIN_FILE_CELLS) {
        let (y, m, d) = civil_from_days(first);
        let path = dir.join(format!("{name}.{y:04}-{m:02}-{d:02}.{EXT}"));
        encoded.clear();
        encoded =
            postcard::to_extend(&range, encoded).map_err(|e| EngineError::encode("metric partial", e))?;
        loglens_store::write_staged_with(&path, |out| out.write_all(&encoded))?;
    }
    Ok(())
}

/// The saved partials under `state_dir`, as (name, path) in name order: a name is the run id,
/// or for a part `<run-id>.<part>` ([`run_of`] gives its run).
pub fn list(state_dir: &Path) -> Result<Vec<(String, PathBuf)>, EngineError> {
    let dir = state_dir.join(PARTIALS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io(&dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| EngineError::io(&dir, e))?.path();
        let run = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| {
                n.strip_suffix(&format!(".{EXT}"))
                    .or_else(|| n.strip_suffix(&format!(".{JSON_EXT}")))
            })
            .filter(|n| !n.starts_with('.'));
        if let Some(run) = run {
            out.push((run.to_owned(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}

/// `partial` in the encoding of a saved partial's file (what [`load`] reads), for callers
/// that keep or ship a partial outside a data directory.
pub fn encode(partial: &MetricPartial) -> Result<Vec<u8>, EngineError> {
    crate::distributed::encode("metric partial", partial)
}

/// The partial of a saved partial's file content, or of what [`encode`] gave; an unknown
/// version or a malformed partial is an error.
pub fn decode(bytes: &[u8]) -> Result<MetricPartial, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}

/// Reads one saved partial; an unknown version is an error naming the file.
pub fn load(path: &Path) -> Result<MetricPartial, EngineError> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let unreadable = |e: String| {
        EngineError::state(
            path,
            format!("{e}; run `loglens detect --rebuild` to rebuild detection from the records"),
        )
    };
    if path.extension().is_some_and(|e| e == JSON_EXT) {
        return serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()));
    }
    decode(&bytes).map_err(unreadable)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use loglens_core::Timestamp;

    const SECS_PER_DAY: i64 = 86_400;

    #[test]
    fn parts_list_by_name_and_belong_to_their_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut partial = MetricPartial::new(60);
        partial.add(&loglens_core::metrics::Observation::default(), None);
        save(dir.path(), "20261205T000000Z-aaaa", partial.clone()).unwrap();
        for group in ["g000000", "g000008"] {
            save_part(dir.path(), "20261205T000100Z-bbbb", group, partial.clone()).unwrap();
        }
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "20261205T000000Z-aaaa.1970-01-01",
                "20261205T000100Z-bbbb.g000000.1970-01-01",
                "20261205T000100Z-bbbb.g000008.1970-01-01"
            ]
        );
        let runs: Vec<&str> = names.iter().map(|n| run_of(n)).collect();
        assert_eq!(
            runs,
            [
                "20261205T000000Z-aaaa",
                "20261205T000100Z-bbbb",
                "20261205T000100Z-bbbb"
            ]
        );
        assert_eq!(load(&list(dir.path()).unwrap()[2].1).unwrap(), partial);
    }

    /// A partial over three days with `hosts` series (a cell each per bucket), saved.
    fn three_days(dir: &Path, hosts: usize) -> MetricPartial {
        // 7-minute buckets do not divide the day: one starts at 23:55, ends after midnight and
        // goes with the day it starts on.
        let mut partial = MetricPartial::new(420);
        let day = 20_398 * SECS_PER_DAY; // a multiple of 420 s
        let hosts: Vec<String> = (0..hosts).map(|h| format!("host-{h}")).collect();
        for secs in [
            day + 30,
            day + SECS_PER_DAY - 60,
            day + SECS_PER_DAY + 600,
            day + 3 * SECS_PER_DAY + 600,
        ] {
            for host in &hosts {
                // Template and latency cells too: each file takes its days' cells of each kind.
                let seen = loglens_core::metrics::Observation {
                    ts: Timestamp::from_secs(secs),
                    host: Some(host),
                    template: Some(7),
                    latency_ms: Some(12.5),
                    ..Default::default()
                };
                partial.add(&seen, None);
            }
        }
        save(dir, "20261205T000000Z-aaaa", partial.clone()).unwrap();
        partial
    }

    fn saved_pieces(dir: &Path) -> (Vec<Option<i64>>, Vec<MetricPartial>) {
        let saved = list(dir).unwrap();
        let days = saved.iter().map(|(name, _)| day_of(name)).collect();
        (days, saved.iter().map(|(_, path)| load(path).unwrap()).collect())
    }

    fn merged(pieces: Vec<MetricPartial>) -> MetricPartial {
        let mut merged = MetricPartial::new(420);
        for piece in pieces {
            merged.merge(piece).unwrap();
        }
        merged
    }

    /// Days of more than [`MIN_FILE_CELLS`] cells are saved a file each, named after the day.
    #[test]
    fn a_partial_is_saved_a_file_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let partial = three_days(dir.path(), MIN_FILE_CELLS + 1);
        let (days, pieces) = saved_pieces(dir.path());
        assert_eq!(days, [Some(20_398), Some(20_399), Some(20_401)]);
        assert_eq!(list(dir.path()).unwrap()[0].0, "20261205T000000Z-aaaa.2025-11-06");
        let records: Vec<u64> = pieces.iter().map(MetricPartial::records).collect();
        let n = MIN_FILE_CELLS as u64 + 1;
        assert_eq!(records, [2 * n, n, n]);
        for piece in &pieces {
            let (first, last) = piece.span().unwrap();
            let templates: Vec<i64> = piece.template_buckets().iter().map(|t| t.bucket).collect();
            assert!(
                templates.iter().all(|b| (first..=last).contains(b)),
                "{templates:?}"
            );
            assert_eq!(templates.len(), if first == last { 1 } else { 2 });
        }
        assert_eq!(merged(pieces), partial);
        assert_eq!(day_of("20261205T000000Z-aaaa"), None);
        assert_eq!(day_of("20261205T000000Z-aaaa.w000001-0002"), None);
    }

    /// A saved partial's file holds what [`encode`] gives, and [`decode`] reads either.
    #[test]
    fn files_hold_the_encoded_partial() {
        let dir = tempfile::tempdir().unwrap();
        let partial = three_days(dir.path(), 3);
        let saved = list(dir.path()).unwrap();
        assert_eq!(saved.len(), 1);
        let bytes = std::fs::read(&saved[0].1).unwrap();
        assert_eq!(bytes, encode(&partial).unwrap());
        assert_eq!(decode(&bytes).unwrap(), partial);
        assert!(decode(&bytes[..bytes.len() / 2]).is_err());
    }

    /// Sparse days share a file, named after the first.
    #[test]
    fn sparse_days_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let partial = three_days(dir.path(), 3);
        let (days, pieces) = saved_pieces(dir.path());
        assert_eq!(days, [Some(20_398)]);
        assert_eq!(merged(pieces), partial);
    }
}
