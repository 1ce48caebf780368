//! Compaction: partitions written as many small parts are rewritten as one file each and swapped
//! in whole: the hours of `records/` (serve flushes every few seconds, each `process` run adds
//! its own) and the days of `metrics/` and `rollups/*/` (each `detect` run adds a part per day).
//!
//! Why a directory swap? Readers glob `<dataset>/**/*.parquet`; renaming the new file in and
//! then deleting the old parts would let a reader list both (rows twice) or neither. The merged
//! file is built in a staging directory outside every dataset, then exchanged with the
//! partition's directory in one `renameat2(RENAME_EXCHANGE)`, so a listing sees the old parts or
//! the new file, never a mix. A crash at any step leaves the staging directory (holding the new
//! file before the exchange, the old parts after it) for the next writer's recovery to delete.
//!
//! What is not a part stays as it is: `part-open.parquet` (detect's pending buckets, which every
//! detect run replaces or deletes by name) and anything else in the directory are hard-linked
//! into the staged directory, so the swapped-in directory holds them unchanged beside the merged
//! file.

use std::path::{Path, PathBuf};

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::commit::{staging_root, sync_dir};
use crate::read::read_all_columns;
use crate::rollup::{ROLLUP_COUNTS, ROLLUP_LATENCY, ROLLUP_TEMPLATES};
use crate::{DataDir, Dataset, PartFile, StoreError, WriteLock, OPEN_PART};

/// Which partitions to compact.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// Partitions with at least this many part files (at least 2).
    pub min_parts: usize,
    /// Only hours of records that ended at or before this time (seconds since the epoch), and
    /// days of metrics and rollups that began by then. Why the current day too? A detect run
    /// adds a small part to it every minute under serve (1,440 by midnight), and rewriting a
    /// day of metrics every hour is cheap; an hour of records is large and written to until it
    /// ends, so it waits.
    pub ended_by_secs: i64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Partitions rewritten, over every dataset.
    pub partitions: u64,
    /// Part files they held (files carried over unchanged, such as `part-open.parquet`, are not
    /// parts).
    pub parts_before: u64,
    /// Rows rewritten.
    pub rows: u64,
    /// Partitions left alone because their parts have different schemas (written by different
    /// loglens versions).
    pub skipped: Vec<PathBuf>,
    /// The same counts per dataset, one entry for each dataset compaction looks at, in the
    /// order of [`compact_datasets`].
    pub datasets: Vec<DatasetCompacted>,
}

/// What a compaction did to one dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetCompacted {
    /// The dataset's directory, relative to the data directory: `records`, `metrics`,
    /// `rollups/counts`, `rollups/templates`, `rollups/latency`.
    pub dataset: String,
    /// What one of its partitions spans: `hour` or `day`.
    pub partition: &'static str,
    /// Partitions rewritten.
    pub partitions: u64,
    /// Part files they held.
    pub parts_before: u64,
    /// Rows rewritten.
    pub rows: u64,
}

/// How a dataset is partitioned.
#[derive(Debug, Clone, Copy)]
enum Partitioning {
    /// `date=YYYY-MM-DD/hour=HH` (records).
    Hourly,
    /// `date=YYYY-MM-DD` (metrics, rollups).
    Daily,
}

impl Partitioning {
    fn unit(self) -> &'static str {
        match self {
            Partitioning::Hourly => "hour",
            Partitioning::Daily => "day",
        }
    }
}

/// The datasets compaction rewrites, by directory relative to the root. `anomalies/` and
/// `incidents/` are not among them: unpartitioned, a file per detect run that closed incidents,
/// and no partition ever ends.
fn compacted_datasets() -> [(String, Partitioning); 5] {
    let rollups = Dataset::Rollups.dir_name();
    [
        (Dataset::Records.dir_name().to_owned(), Partitioning::Hourly),
        (Dataset::Metrics.dir_name().to_owned(), Partitioning::Daily),
        (format!("{rollups}/{ROLLUP_COUNTS}"), Partitioning::Daily),
        (format!("{rollups}/{ROLLUP_TEMPLATES}"), Partitioning::Daily),
        (format!("{rollups}/{ROLLUP_LATENCY}"), Partitioning::Daily),
    ]
}

/// Compacts the partitions of `records/`, `metrics/` and `rollups/*/` that `options` selects.
/// Holding `lock` proves no other writer adds or replaces parts meanwhile.
pub fn compact_datasets(
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
    for (dataset, partitioning) in compacted_datasets() {
        let mut counts = DatasetCompacted {
            partition: partitioning.unit(),
            ..DatasetCompacted::default()
        };
        for (dir, from) in partition_dirs(&data.root().join(&dataset), partitioning)? {
            if from.is_none_or(|from| from > options.ended_by_secs) {
                continue;
            }
            let contents = contents(&dir)?;
            if contents.nested || contents.parts.len() < options.min_parts.max(2) {
                continue;
            }
            let Some(schema) = common_schema(&contents.parts)? else {
                done.skipped.push(dir);
                continue;
            };
            let rows = compact_partition(&dir, &contents, schema, &staging, run_id)?;
            counts.partitions += 1;
            counts.parts_before += contents.parts.len() as u64;
            counts.rows += rows;
        }
        done.partitions += counts.partitions;
        done.parts_before += counts.parts_before;
        done.rows += counts.rows;
        counts.dataset = dataset;
        done.datasets.push(counts);
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| StoreError::io(&staging, e))?;
    }
    Ok(done)
}

/// A partition directory as compaction sees it.
#[derive(Debug, Default)]
struct Contents {
    /// The Parquet parts to fold into one file, in listing (name) order: the order readers
    /// list them in, kept so rows keep their order.
    parts: Vec<PathBuf>,
    /// Entries carried over unchanged: parts replaced by name ([`replaced_by_name`]), files
    /// that are not parts, symbolic links.
    kept: Vec<PathBuf>,
    /// Whether it holds a directory: not a layout loglens writes, so it is left alone rather
    /// than guessed at (a directory cannot be hard-linked across, and folding the parts below
    /// it would change the partition columns readers derive from their paths).
    nested: bool,
}

/// Sorts the entries of the partition directory `dir`.
fn contents(dir: &Path) -> Result<Contents, StoreError> {
    let mut contents = Contents::default();
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| StoreError::io(&path, e))?;
        let name = entry.file_name();
        let name = name.to_str().unwrap_or_default();
        // Hidden files are no parts (readers skip them): temporaries, which the write lock's
        // recovery already removed, or not loglens's at all. Carried over like the rest.
        let part =
            kind.is_file() && !name.starts_with('.') && name.ends_with(".parquet") && !replaced_by_name(name);
        if kind.is_dir() {
            contents.nested = true;
        } else if part {
            contents.parts.push(path);
        } else {
            contents.kept.push(path);
        }
    }
    contents.parts.sort();
    contents.kept.sort();
    Ok(contents)
}

/// Whether a part file is one a writer replaces or deletes by its name, so it must stay a file
/// of its own: `part-open.parquet`, the metrics of the buckets `detect` has not judged yet,
/// rewritten by every detect run and removed once the day has none pending. Folded into the
/// merged file, its provisional rows would stay when detect writes the judged ones (counted
/// twice) and the next run's `part-open.parquet` would add them a third time. `part-open-<n>`
/// is what the day writer would name a second open file of a day; detect writes one, but such
/// a file would be just as provisional.
fn replaced_by_name(name: &str) -> bool {
    let Some(rest) = name
        .strip_suffix(".parquet")
        .and_then(|n| n.strip_prefix("part-"))
        .and_then(|n| n.strip_prefix(OPEN_PART))
    else {
        return false;
    };
    rest.is_empty()
        || rest
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes the parts of `dir` as one file in the staging area beside hard links to what it
/// keeps, swaps that directory in for `dir`, and deletes the old one; returns the rows written.
fn compact_partition(
    dir: &Path,
    contents: &Contents,
    schema: SchemaRef,
    staging: &Path,
    run_id: &str,
) -> Result<u64, StoreError> {
    // One partition at a time, so its directory name is unique in the staging area.
    let staged = staging.join(dir.file_name().unwrap_or_default());
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(|e| StoreError::io(&staged, e))?;
    }
    let mut file = PartFile::create(&staged, &format!("part-{run_id}-compacted.parquet"), schema)?;
    for part in &contents.parts {
        read_all_columns(part, |batch| file.write(batch))?;
    }
    let rows = file.finish()?;
    for kept in &contents.kept {
        // A link, not a copy: the same file, so what detect replaces by renaming over its name
        // is what readers had, and nothing is read or written twice.
        let target = staged.join(kept.file_name().unwrap_or_default());
        std::fs::hard_link(kept, &target).map_err(|e| StoreError::io(&target, e))?;
    }
    sync_dir(&staged)?;
    exchange(dir, &staged)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    sync_dir(staging)?;
    // The staging directory now holds the old parts (and second links to the kept files).
    std::fs::remove_dir_all(&staged).map_err(|e| StoreError::io(&staged, e))?;
    Ok(rows)
}

/// The partition directories of a dataset, sorted, each with the time from which it may be
/// compacted (seconds since the epoch: an hour's end, a day's start; `None` for a name that is
/// not a date or hour, which is never compacted).
fn partition_dirs(
    dataset: &Path,
    partitioning: Partitioning,
) -> Result<Vec<(PathBuf, Option<i64>)>, StoreError> {
    let mut out = Vec::new();
    for date in subdirs(dataset, "date=")? {
        let day = day_start_secs(&date);
        match partitioning {
            // Compactable from its start (see `CompactOptions::ended_by_secs`).
            Partitioning::Daily => out.push((date, day)),
            Partitioning::Hourly => {
                for hour in subdirs(&date, "hour=")? {
                    let end = day.zip(hour_of(&hour)).map(|(d, h)| d + (h + 1) * 3600);
                    out.push((hour, end));
                }
            }
        }
    }
    Ok(out)
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

/// The start of the day a `…/date=YYYY-MM-DD` directory holds, in seconds.
fn day_start_secs(date: &Path) -> Option<i64> {
    let date = date.file_name()?.to_str()?.strip_prefix("date=")?;
    let day = loglens_core::Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z"), 0).ok()?;
    Some(day.secs())
}

/// The hour (0–23) of a `…/hour=HH` directory.
fn hour_of(hour: &Path) -> Option<i64> {
    let h: i64 = hour.file_name()?.to_str()?.strip_prefix("hour=")?.parse().ok()?;
    (0..24).contains(&h).then_some(h)
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

    use arrow_array::{
        Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
        UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema};
    use loglens_core::metrics::{Metric, MetricPoint, SeriesKey};
    use loglens_core::rollup::{CountRow, DayRollups, TemplateRow};
    use loglens_core::Timestamp;

    use super::*;
    use crate::read::{column, parquet_files, read_columns};
    use crate::{write_metrics, RollupWriter};

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

    fn secs(rfc3339: &str) -> i64 {
        Timestamp::parse_rfc3339(rfc3339, 0).unwrap().secs()
    }

    fn dataset<'a>(done: &'a Compacted, name: &str) -> &'a DatasetCompacted {
        done.datasets.iter().find(|d| d.dataset == name).unwrap()
    }

    #[test]
    fn an_hour_of_parts_becomes_one_file_with_every_row_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let records = data.dataset(Dataset::Records);
        let (busy, single, mixed, current, nested) = (
            records.join("date=2026-01-01/hour=05"),
            records.join("date=2026-01-01/hour=06"),
            records.join("date=2026-01-01/hour=07"),
            records.join("date=2026-01-02/hour=00"),
            records.join("date=2026-01-01/hour=08"),
        );
        part(&busy, "part-a.parquet", &[1, 2], false);
        part(&busy, "part-b.parquet", &[3], false);
        part(&busy, "part-c.parquet", &[4, 5, 6], false);
        part(&single, "part-a.parquet", &[7], false);
        part(&mixed, "part-a.parquet", &[8], false);
        part(&mixed, "part-b.parquet", &[9], true);
        part(&current, "part-a.parquet", &[10], false);
        part(&current, "part-b.parquet", &[11], false);
        part(&nested, "part-a.parquet", &[12], false);
        part(&nested, "part-b.parquet", &[13], false);
        part(&nested.join("x=1"), "part-c.parquet", &[14], false);
        let lock = data.lock().unwrap();
        let options = CompactOptions {
            min_parts: 2,
            // 2026-01-02T00:00:00Z: the hour starting then has not ended.
            ended_by_secs: secs("2026-01-02T00:00:00Z"),
        };
        let done = compact_datasets(&data, &lock, "r1", options).unwrap();
        assert_eq!((done.partitions, done.parts_before, done.rows), (1, 3, 6));
        let by_dataset: Vec<_> = (done.datasets.iter())
            .map(|d| {
                (
                    d.dataset.as_str(),
                    d.partition,
                    d.partitions,
                    d.parts_before,
                    d.rows,
                )
            })
            .collect();
        assert_eq!(
            by_dataset,
            [
                ("records", "hour", 1, 3, 6),
                ("metrics", "day", 0, 0, 0),
                ("rollups/counts", "day", 0, 0, 0),
                ("rollups/templates", "day", 0, 0, 0),
                ("rollups/latency", "day", 0, 0, 0),
            ]
        );
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
        assert_eq!(
            parquet_files(&nested).unwrap().len(),
            3,
            "a directory inside: not a layout loglens writes, left alone"
        );
        assert!(!staging_root(data.root()).join("compact-r1").exists());
        // Again: one part per hour now, nothing to do.
        let again = compact_datasets(&data, &lock, "r2", options).unwrap();
        assert_eq!(again.partitions, 0);
    }

    /// Points of two series and two metrics in `buckets` buckets from `first`: unique per (ts,
    /// metric, series), values from `seed` up.
    fn points(first: &str, buckets: i64, seed: f64) -> Vec<MetricPoint> {
        let keys = [
            Arc::new(SeriesKey::default()),
            Arc::new(SeriesKey {
                service: Some("api".into()),
                ..SeriesKey::default()
            }),
        ];
        let start = secs(first);
        let mut out = Vec::new();
        for key in &keys {
            for metric in [Metric::Volume, Metric::Errors] {
                for b in 0..buckets {
                    out.push(MetricPoint {
                        ts: Timestamp::from_secs(start + b * 60),
                        metric,
                        key: key.clone(),
                        value: seed + b as f64,
                        filled: false,
                    });
                }
            }
        }
        out
    }

    /// (ts, metric, series, value) of each row of `files`, in order.
    fn metric_rows(files: &[PathBuf]) -> Vec<(i64, String, String, u64)> {
        let mut rows = Vec::new();
        for file in files {
            read_columns(file, &["ts", "metric", "series", "value"], |b| {
                let ts = column::<TimestampMicrosecondArray>(file, b, "ts")?;
                let metric = column::<StringArray>(file, b, "metric")?;
                let series = column::<StringArray>(file, b, "series")?;
                let value = column::<Float64Array>(file, b, "value")?;
                for i in 0..b.num_rows() {
                    rows.push((
                        ts.value(i),
                        metric.value(i).to_owned(),
                        series.value(i).to_owned(),
                        value.value(i).to_bits(),
                    ));
                }
                Ok(())
            })
            .unwrap();
        }
        rows
    }

    fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
        v.sort();
        v
    }

    fn value_sum(rows: &[(i64, String, String, u64)]) -> f64 {
        rows.iter().map(|r| f64::from_bits(r.3)).sum()
    }

    #[test]
    fn a_day_of_metrics_becomes_one_file_beside_the_untouched_open_part() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let metrics = data.dataset(Dataset::Metrics);
        // Three detect runs judged parts of 2026-01-01, the third left its pending buckets.
        write_metrics(&metrics, "rA", 60, &points("2026-01-01T00:00:00Z", 30, 1.0)).unwrap();
        write_metrics(&metrics, "rB", 60, &points("2026-01-01T00:30:00Z", 30, 2.0)).unwrap();
        write_metrics(&metrics, "rC", 60, &points("2026-01-01T01:00:00Z", 30, 3.0)).unwrap();
        write_metrics(&metrics, OPEN_PART, 60, &points("2026-01-01T01:30:00Z", 3, 4.0)).unwrap();
        // 2026-01-02 is still being written.
        write_metrics(&metrics, "rD", 60, &points("2026-01-02T00:00:00Z", 5, 5.0)).unwrap();
        write_metrics(&metrics, "rE", 60, &points("2026-01-02T00:05:00Z", 5, 6.0)).unwrap();
        let (day, today) = (metrics.join("date=2026-01-01"), metrics.join("date=2026-01-02"));
        let open = day.join("part-open.parquet");
        let open_bytes = std::fs::read(&open).unwrap();
        let open_inode = std::fs::metadata(&open).unwrap().ino();
        let judged: Vec<PathBuf> = ["part-rA.parquet", "part-rB.parquet", "part-rC.parquet"]
            .iter()
            .map(|n| day.join(n))
            .collect();
        let judged_rows = metric_rows(&judged);
        let day_rows = metric_rows(&parquet_files(&day).unwrap());
        let today_files = parquet_files(&today).unwrap();

        let lock = data.lock().unwrap();
        let options = CompactOptions {
            min_parts: 2,
            // 2026-01-02 began after it: left alone.
            ended_by_secs: secs("2026-01-01T23:00:00Z"),
        };
        let done = compact_datasets(&data, &lock, "r1", options).unwrap();
        let m = dataset(&done, "metrics");
        assert_eq!((m.partitions, m.parts_before, m.rows), (1, 3, 360));
        assert_eq!((done.partitions, done.rows), (1, 360));
        assert!(done.skipped.is_empty());

        let merged = day.join("part-r1-compacted.parquet");
        assert_eq!(parquet_files(&day).unwrap(), [open.clone(), merged.clone()]);
        assert_eq!(
            std::fs::read_dir(&day).unwrap().count(),
            2,
            "nothing else (no temporaries) in the day"
        );
        assert_eq!(
            metric_rows(std::slice::from_ref(&merged)),
            judged_rows,
            "rows in part order"
        );
        let after = metric_rows(&parquet_files(&day).unwrap());
        assert_eq!(sorted(after.clone()), sorted(day_rows.clone()), "the same rows");
        assert_eq!(value_sum(&after), value_sum(&day_rows));
        assert_eq!(
            std::fs::read(&open).unwrap(),
            open_bytes,
            "the open part as it was"
        );
        assert_eq!(
            std::fs::metadata(&open).unwrap().ino(),
            open_inode,
            "the very same file"
        );
        assert_eq!(
            parquet_files(&today).unwrap(),
            today_files,
            "began after ended_by_secs: left alone"
        );
        assert!(!staging_root(data.root()).join("compact-r1").exists());

        // A later detect judges the pending buckets (a part of its own) and removes the open
        // part.
        write_metrics(&metrics, "rF", 60, &points("2026-01-01T01:30:00Z", 3, 4.0)).unwrap();
        std::fs::remove_file(&open).unwrap();
        assert_eq!(
            sorted(metric_rows(&parquet_files(&day).unwrap())),
            sorted(day_rows)
        );
        // One merged part and one new: below `min_parts` 3, so left; at 2, merged again.
        let three = CompactOptions {
            min_parts: 3,
            ..options
        };
        assert_eq!(compact_datasets(&data, &lock, "r2", three).unwrap().partitions, 0);
        let again = compact_datasets(&data, &lock, "r3", options).unwrap();
        assert_eq!(dataset(&again, "metrics").parts_before, 2);
        assert_eq!(
            parquet_files(&day).unwrap(),
            [day.join("part-r3-compacted.parquet")]
        );
        // The day being written is compacted once it began before `ended_by_secs`: its parts
        // become one file, and later detect runs add theirs beside it.
        let noon = CompactOptions {
            ended_by_secs: secs("2026-01-02T12:00:00Z"),
            ..options
        };
        let today_rows = metric_rows(&today_files);
        let done = compact_datasets(&data, &lock, "r4", noon).unwrap();
        assert_eq!(dataset(&done, "metrics").parts_before, 2);
        let merged_today = today.join("part-r4-compacted.parquet");
        assert_eq!(
            parquet_files(&today).unwrap(),
            std::slice::from_ref(&merged_today)
        );
        assert_eq!(metric_rows(&[merged_today]), today_rows);
    }

    fn rollup_day(day: &str, hour: i64, records: u64) -> DayRollups {
        let start = secs(&format!("{day}T00:00:00Z"));
        let ts = Timestamp::from_secs(start + hour * 3600);
        let label = |s: &str| Some(Arc::<str>::from(s));
        DayRollups {
            day: start.div_euclid(86_400),
            bucket_secs: 60,
            counts: (0..4)
                .map(|k| CountRow {
                    ts,
                    service: label("api"),
                    host: label(&format!("web-{k}")),
                    level: None,
                    source: label("/var/log/api.log"),
                    status_class: Some(2),
                    records: records + k,
                    errors: k,
                })
                .collect(),
            templates: vec![TemplateRow {
                ts,
                template_id: 7,
                service: label("api"),
                host: None,
                level: None,
                source: None,
                records,
                errors: 0,
                first_ts: ts,
                last_ts: ts,
            }],
            latency: Vec::new(),
        }
    }

    fn sum_records(dir: &Path) -> u64 {
        let mut total = 0;
        for file in parquet_files(dir).unwrap() {
            read_columns(&file, &["records"], |b| {
                let records = column::<UInt64Array>(&file, b, "records")?;
                total += records.iter().flatten().sum::<u64>();
                Ok(())
            })
            .unwrap();
        }
        total
    }

    #[test]
    fn a_day_of_rollups_becomes_one_file_per_dataset_with_the_same_sums() {
        let tmp = tempfile::tempdir().unwrap();
        let data = DataDir::create(tmp.path()).unwrap();
        let rollups = data.dataset(Dataset::Rollups);
        for (run, hour, records) in [("rA", 1, 10), ("rB", 2, 20), ("rC", 3, 30)] {
            let mut writer = RollupWriter::new(&rollups, run);
            writer.write(&rollup_day("2026-01-01", hour, records)).unwrap();
            writer.write(&rollup_day("2026-01-02", hour, records)).unwrap();
            writer.finish().unwrap();
        }
        let counts = rollups.join("counts/date=2026-01-01");
        let templates = rollups.join("templates/date=2026-01-01");
        let sums_before = (sum_records(&counts), sum_records(&templates));
        assert_eq!(parquet_files(&counts).unwrap().len(), 3);

        let lock = data.lock().unwrap();
        let options = CompactOptions {
            min_parts: 3,
            // An hour before 2026-01-02 began: that day stays as it is.
            ended_by_secs: secs("2026-01-02T00:00:00Z") - 3600,
        };
        let done = compact_datasets(&data, &lock, "r1", options).unwrap();
        let (c, t) = (
            dataset(&done, "rollups/counts"),
            dataset(&done, "rollups/templates"),
        );
        assert_eq!((c.partitions, c.parts_before, c.rows), (1, 3, 12));
        assert_eq!((t.partitions, t.parts_before, t.rows), (1, 3, 3));
        assert_eq!(dataset(&done, "rollups/latency").partitions, 0);
        assert_eq!((done.partitions, done.parts_before, done.rows), (2, 6, 15));
        assert_eq!(
            parquet_files(&counts).unwrap(),
            [counts.join("part-r1-compacted.parquet")]
        );
        assert_eq!(parquet_files(&templates).unwrap().len(), 1);
        assert_eq!((sum_records(&counts), sum_records(&templates)), sums_before);
        assert_eq!(sums_before, (4 * (10 + 20 + 30) + 3 * 6, 60), "every row summed");
        for dir in ["counts/date=2026-01-02", "templates/date=2026-01-02"] {
            assert_eq!(
                parquet_files(&rollups.join(dir)).unwrap().len(),
                3,
                "{dir}: began after ended_by_secs"
            );
        }
    }

    #[test]
    fn only_detects_open_parts_are_kept_by_name() {
        assert!(replaced_by_name("part-open.parquet"));
        assert!(replaced_by_name("part-open-1.parquet"));
        for name in [
            "part-opener.parquet",
            "part-open-.parquet",
            "part-open-x.parquet",
            "part-20260101T000000Z-1f.parquet",
            "part-20260101T000000Z-1f-compacted.parquet",
        ] {
            assert!(!replaced_by_name(name), "{name}");
        }
    }
}
