//! Compaction: an hour of `records/` written as many small parts (serve flushes every few
//! seconds, each `process` run adds its own) is rewritten as one file and swapped in whole.
//!
//! Why a directory swap? Readers glob `records/**/*.parquet`; renaming the new file in and then
//! deleting the old parts would let a reader list both (rows twice) or neither. The merged file
//! is built in a staging directory outside every dataset, then exchanged with the hour's
//! directory in one `renameat2(RENAME_EXCHANGE)`, so a listing sees the old parts or the new
//! file, never a mix. A crash at any step leaves the staging directory (holding the new file
//! before the exchange, the old parts after it) for the next writer's recovery to delete.

use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::commit::{staging_root, sync_dir};
use crate::read::{parquet_files, read_all_columns};
use crate::{DataDir, Dataset, PartFile, StoreError, WriteLock};

/// Which hours to compact.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// Hours with at least this many part files (at least 2).
    pub min_parts: usize,
    /// Only hours that ended at or before this time (seconds since the epoch): the hour
    /// being written stays as it is.
    pub ended_by_secs: i64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Hour partitions rewritten.
    pub partitions: u64,
    /// Part files they held.
    pub parts_before: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// Hours left alone because their parts have different schemas (written by different
    /// loglens versions).
    pub skipped: Vec<PathBuf>,
}

/// Compacts the hours of `records/` that `options` selects. Holding `lock` proves no other
/// writer adds parts meanwhile.
pub fn compact_records(
    data: &DataDir,
    _lock: &WriteLock,
    run_id: &str,
    options: CompactOptions,
) -> Result<Compacted, StoreError> {
    let mut done = Compacted::default();
    if !cfg!(target_os = "linux") {
        return Ok(done); // the atomic exchange is Linux's
    }
    let staging = staging_root(data.root()).join(format!("compact-{run_id}"));
    for hour in hour_dirs(&data.dataset(Dataset::Records))? {
        let parts = parquet_files(&hour)?;
        let ended = hour_end_secs(&hour).is_some_and(|end| end <= options.ended_by_secs);
        if !ended || parts.len() < options.min_parts.max(2) {
            continue;
        }
        let Some(schema) = common_schema(&parts)? else {
            done.skipped.push(hour);
            continue;
        };
        let rows = compact_hour(&hour, &parts, schema, &staging, run_id)?;
        done.partitions += 1;
        done.parts_before += parts.len() as u64;
        done.rows += rows;
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
    }
    Ok(done)
}

/// Writes `parts` as one file in the staging area, swaps it in for `hour`, deletes the old.
fn compact_hour(
    hour: &Path,
    parts: &[PathBuf],
    schema: SchemaRef,
    staging: &Path,
    run_id: &str,
) -> Result<u64, StoreError> {
    let staged = staging.join(hour.file_name().unwrap_or_default());
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(|e| StoreError::io(&staged, e))?;
    }
    let mut file = PartFile::create(&staged, &format!("part-{run_id}-compacted.parquet"), schema)?;
    for part in parts {
        read_all_columns(part, |batch| file.write(batch))?;
    }
    let rows = file.finish()?;
    sync_dir(&staged)?;
    exchange(hour, &staged)?;
    if let Some(parent) = hour.parent() {
        sync_dir(parent)?;
    }
    sync_dir(staging)?;
    // The staging directory now holds the old parts.
    std::fs::remove_dir_all(&staged).map_err(|e| StoreError::io(&staged, e))?;
    Ok(rows)
}

/// `records/date=…/hour=…` directories, sorted.
fn hour_dirs(records: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut hours = Vec::new();
    for date in subdirs(records, "date=")? {
        hours.extend(subdirs(&date, "hour=")?);
    }
    Ok(hours)
}

fn subdirs(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| StoreError::io(dir, e))?.path();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix));
        if named && path.is_dir() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The end of the hour a `…/date=YYYY-MM-DD/hour=HH` directory holds, in seconds.
fn hour_end_secs(hour: &Path) -> Option<i64> {
    let h: i64 = hour.file_name()?.to_str()?.strip_prefix("hour=")?.parse().ok()?;
    let date = hour.parent()?.file_name()?.to_str()?.strip_prefix("date=")?;
    let day = loglens_core::Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z"), 0).ok()?;
    Some(day.secs() + (h + 1) * 3600)
}

/// The schema every part shares, or `None` when they differ.
fn common_schema(parts: &[PathBuf]) -> Result<Option<SchemaRef>, StoreError> {
    let mut first: Option<SchemaRef> = None;
    for part in parts {
        let file = std::fs::File::open(part).map_err(|e| StoreError::io(part, e))?;
        let schema = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|source| StoreError::ParquetRead {
                path: part.clone(),
                source,
            })?
            .schema()
            .clone();
        match &first {
            None => first = Some(schema),
            Some(s) if *s == schema => {}
            Some(_) => return Ok(None),
        }
    }
    Ok(first)
}

/// Swaps two directories in one step (`renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<(), StoreError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| StoreError::io(p, std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths that live across the call; no memory is shared.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(StoreError::io(a, std::io::Error::last_os_error()))
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, _b: &Path) -> Result<(), StoreError> {
    Err(StoreError::io(
        a,
        std::io::Error::new(std::io::ErrorKind::Unsupported, "compaction needs Linux"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn part(hour: &Path, name: &str, values: &[i64], with_text: bool) {
        let mut fields = vec![Field::new("n", DataType::Int64, false)];
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(values.to_vec()))];
        if with_text {
            fields.push(Field::new("text", DataType::Utf8, false));
            columns.push(Arc::new(StringArray::from_iter_values(
                values.iter().map(|v| v.to_string()),
            )));
        }
        let schema = Arc::new(Schema::new(fields));
        let mut file = PartFile::create(hour, name, schema.clone()).unwrap();
        file.write(&RecordBatch::try_new(schema, columns).unwrap())
            .unwrap();
        file.finish().unwrap();
    }

    fn values(hour: &Path) -> Vec<i64> {
        let mut out = Vec::new();
        for file in parquet_files(hour).unwrap() {
            read_all_columns(&file, |b| {
                let n = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                out.extend(n.values().iter().copied());
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn an_hour_of_parts_becomes_one_file_with_every_row_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let records = data.dataset(Dataset::Records);
        let (busy, single, mixed, current) = (
            records.join("date=2026-01-01/hour=05"),
            records.join("date=2026-01-01/hour=06"),
            records.join("date=2026-01-01/hour=07"),
            records.join("date=2026-01-02/hour=00"),
        );
        part(&busy, "part-a.parquet", &[1, 2], false);
        part(&busy, "part-b.parquet", &[3], false);
        part(&busy, "part-c.parquet", &[4, 5, 6], false);
        part(&single, "part-a.parquet", &[7], false);
        part(&mixed, "part-a.parquet", &[8], false);
        part(&mixed, "part-b.parquet", &[9], true);
        part(&current, "part-a.parquet", &[10], false);
        part(&current, "part-b.parquet", &[11], false);
        let lock = data.lock().unwrap();
        let options = CompactOptions {
            min_parts: 2,
            // 2026-01-02T00:00:00Z: the hour starting then has not ended.
            ended_by_secs: 1_767_312_000,
        };
        let done = compact_records(&data, &lock, "r1", options).unwrap();
        assert_eq!((done.partitions, done.parts_before, done.rows), (1, 3, 6));
        assert_eq!(done.skipped, std::slice::from_ref(&mixed));
        let files = parquet_files(&busy).unwrap();
        assert_eq!(files, [busy.join("part-r1-compacted.parquet")]);
        assert_eq!(values(&busy), [1, 2, 3, 4, 5, 6]);
        assert_eq!(parquet_files(&single).unwrap().len(), 1);
        assert_eq!(
            parquet_files(&mixed).unwrap().len(),
            2,
            "schemas differ: left alone"
        );
        assert_eq!(parquet_files(&current).unwrap().len(), 2, "not ended: left alone");
        assert!(!staging_root(data.root()).join("compact-r1").exists());
        // Again: one part per hour now, nothing to do.
        let again = compact_records(&data, &lock, "r2", options).unwrap();
        assert_eq!(again.partitions, 0);
    }
}
