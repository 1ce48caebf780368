//! Run partials: what each `process` run contributes to the metric series, saved as
//! `state/partials/<run-id>.bin` (a versioned [`MetricPartial`] in postcard, a compact binary
//! serde format), or in parts `<run-id>.<part>.bin` (a worker's partial once it fills up, and
//! each Dask/Ray write group's), and committed with the run's records, so `detect` consumes partials it has not seen
//! instead of re-reading records. Why not JSON? A week of 1M records made a 120 MB file
//! whose writing and reading cost more than a second each; older `.json` partials still load.

use std::path::{Path, PathBuf};

use loglens_core::partial::MetricPartial;

use crate::EngineError;

/// The directory under `state/` holding one partial per run.
pub const PARTIALS_DIR: &str = "partials";
const EXT: &str = "bin";
/// What partials were saved as before (still read).
const JSON_EXT: &str = "json";

/// Saves run `run_id`'s partial under `state_dir` (a run's staging `state/`).
pub fn save(state_dir: &Path, run_id: &str, partial: &MetricPartial) -> Result<(), EngineError> {
    save_named(state_dir, run_id, partial)
}

/// Saves one part of run `run_id`'s partial (`part`: a name unique in the run, without dots);
/// saving the same part again replaces it.
pub fn save_part(
    state_dir: &Path,
    run_id: &str,
    part: &str,
    partial: &MetricPartial,
) -> Result<(), EngineError> {
    save_named(state_dir, &format!("{run_id}.{part}"), partial)
}

/// The run that saved the partial named `name` (as [`list`] names them).
pub fn run_of(name: &str) -> &str {
    name.split_once('.').map_or(name, |(run, _)| run)
}

fn save_named(state_dir: &Path, name: &str, partial: &MetricPartial) -> Result<(), EngineError> {
    let dir = state_dir.join(PARTIALS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    let path = dir.join(format!("{name}.{EXT}"));
    // Streamed to the file: encoded whole first, a week's partial took another 40 MB.
    Ok(loglens_store::write_atomic_with(&path, |file| {
        postcard::to_io(partial, file)
            .map(|_| ())
            .map_err(std::io::Error::other)
    })?)
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
    postcard::from_bytes(&bytes).map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parts_list_by_name_and_belong_to_their_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut partial = MetricPartial::new(60);
        partial.add(&loglens_core::metrics::Observation::default(), None);
        save(dir.path(), "20261205T000000Z-aaaa", &partial).unwrap();
        for group in ["g000000", "g000008"] {
            save_part(dir.path(), "20261205T000100Z-bbbb", group, &partial).unwrap();
        }
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "20261205T000000Z-aaaa",
                "20261205T000100Z-bbbb.g000000",
                "20261205T000100Z-bbbb.g000008"
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
}
