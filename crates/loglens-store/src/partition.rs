//! Writes records into `records/date=YYYY-MM-DD/hour=HH/`, one open part file per partition.
//!
//! Why keep every partition open? Inputs are usually many files covering the same hours (one
//! per host), read one after the other; closing a partition when the next file starts would
//! leave one small file per input per hour. Instead each partition keeps its file open for the
//! whole run and memory is bounded by budgets: rows pending in builders, bytes buffered in
//! unfinished row groups (the largest is written out when over budget), and open files (the
//! least recently used is closed when over the limit).

use std::path::{Path, PathBuf};

use loglens_core::time::civil_from_days;
use loglens_core::{Record, Timestamp};

use crate::columns::{BatchSizes, Labels, LineRange, RecordColumns, RecordTemplate};
use crate::schema::record_schema;
use crate::{PartFile, PartNamer, StoreError};

/// Rows a partition buffers before they are encoded.
const BATCH_ROWS: usize = 8 * 1024;

/// Partitions at most whose pending builders were sized for a full batch. A partition that
/// filled a batch gets its next builders sized like it when its next row comes, so they never
/// reallocate (growing them from empty was 3% of `process` on an access log); past the cap the
/// least recently used of them is encoded first, so memory stays bounded when inputs touch
/// many busy partitions at once. Records mostly arrive in time order, filling one or two.
const MAX_PRESIZED: usize = 4;

/// Memory and file-handle budgets of one [`PartitionedWriter`].
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits {
    /// Open part files at most; past it the least recently used partition is closed.
    pub max_open_files: usize,
    /// Rows pending in builders across partitions; past it the largest pending batch is encoded.
    pub max_pending_rows: usize,
    /// Bytes of unfinished row groups across partitions; past it the largest is written out.
    pub max_buffered_bytes: usize,
}

impl Default for WriterLimits {
    fn default() -> Self {
        WriterLimits {
            max_open_files: 200,
            max_pending_rows: 64 * 1024,
            max_buffered_bytes: 32 << 20,
        }
    }
}

/// A partition of the records dataset: UTC day (days since 1970-01-01) and hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Hour of day, 0–23.
    pub hour: u8,
}

impl PartitionKey {
    /// The partition a timestamp falls in.
    pub fn of(ts: Timestamp) -> Self {
        let (day, hour) = ts.day_and_hour();
        PartitionKey { day, hour }
    }

    /// The Hive-style relative directory, `date=YYYY-MM-DD/hour=HH`.
    pub fn dir(&self) -> String {
        let (y, m, d) = civil_from_days(self.day);
        format!("date={y:04}-{m:02}-{d:02}/hour={:02}", self.hour)
    }
}

struct OpenPartition {
    key: PartitionKey,
    columns: RecordColumns,
    /// Whether `columns` were sized for a full batch (counted in `PartitionedWriter::presized`).
    presized: bool,
    /// What its last full batch held.
    full_batch: Option<BatchSizes>,
    file: Option<PartFile>,
    buffered: usize,
    last_used: u64,
}

/// Writes records into hourly partitions of the records dataset.
pub struct PartitionedWriter {
    root: PathBuf,
    namer: PartNamer,
    limits: WriterLimits,
    open: Vec<OpenPartition>,
    /// Index into `open` of the partition used last: records mostly arrive in time order.
    last: usize,
    clock: u64,
    pending_rows: usize,
    buffered_bytes: usize,
    rows_written: u64,
    files_written: u64,
    /// Partitions whose pending builders were sized for a full batch.
    presized: usize,
}

impl PartitionedWriter {
    /// A writer into the records dataset at `root`, naming its files after `namer`.
    pub fn new(root: PathBuf, namer: PartNamer, limits: WriterLimits) -> Self {
        PartitionedWriter {
            root,
            namer,
            limits,
            open: Vec::new(),
            last: 0,
            clock: 0,
            pending_rows: 0,
            buffered_bytes: 0,
            rows_written: 0,
            files_written: 0,
            presized: 0,
        }
    }

    /// Appends a record to its partition, encoding and writing out as the budgets require.
    pub fn push(
        &mut self,
        record: &Record<'_>,
        lines: LineRange,
        labels: &Labels<'_>,
        template: Option<RecordTemplate<'_>>,
    ) -> Result<(), StoreError> {
        let key = PartitionKey::of(record.ts);
        let index = self.partition_index(key)?;
        self.presize(index)?;
        self.open[index].columns.push(record, lines, labels, template);
        self.pending_rows += 1;
        if self.open[index].columns.len() >= BATCH_ROWS {
            self.encode(index)?;
        }
        if self.pending_rows > self.limits.max_pending_rows {
            if let Some(largest) = self.largest_by(|p| p.columns.len()) {
                self.encode(largest)?;
            }
        }
        Ok(())
    }

    fn partition_index(&mut self, key: PartitionKey) -> Result<usize, StoreError> {
        self.clock += 1;
        if self.open.get(self.last).is_some_and(|p| p.key == key) {
            self.open[self.last].last_used = self.clock;
            return Ok(self.last);
        }
        let index = match self.open.iter().position(|p| p.key == key) {
            Some(i) => i,
            None => {
                if self.open.len() >= self.limits.max_open_files.max(1) {
                    if let Some(lru) = self.largest_by(|p| u64::MAX - p.last_used) {
                        let evicted = self.open.swap_remove(lru);
                        self.close(evicted)?;
                    }
                }
                self.open.push(OpenPartition {
                    key,
                    columns: RecordColumns::new(),
                    presized: false,
                    full_batch: None,
                    file: None,
                    buffered: 0,
                    last_used: 0,
                });
                self.open.len() - 1
            }
        };
        self.open[index].last_used = self.clock;
        self.last = index;
        Ok(index)
    }

    fn largest_by<K: Ord>(&self, key: impl Fn(&OpenPartition) -> K) -> Option<usize> {
        (0..self.open.len()).max_by_key(|&i| key(&self.open[i]))
    }

    /// Sizes an empty partition's builders like its last full batch (see [`MAX_PRESIZED`]).
    fn presize(&mut self, index: usize) -> Result<(), StoreError> {
        let part = &self.open[index];
        let Some(sizes) = part
            .full_batch
            .filter(|_| part.columns.is_empty() && !part.presized)
        else {
            return Ok(());
        };
        if self.presized >= MAX_PRESIZED {
            let idlest = (0..self.open.len())
                .filter(|&i| self.open[i].presized)
                .min_by_key(|&i| self.open[i].last_used);
            if let Some(idlest) = idlest {
                self.encode(idlest)?;
            }
        }
        let part = &mut self.open[index];
        part.columns = RecordColumns::with_sizes(&sizes);
        part.presized = true;
        self.presized += 1;
        Ok(())
    }

    /// Encodes a partition's pending rows into its file's row group in progress.
    fn encode(&mut self, index: usize) -> Result<(), StoreError> {
        let part = &mut self.open[index];
        if part.columns.len() >= BATCH_ROWS {
            part.full_batch = Some(part.columns.sizes());
        }
        self.pending_rows -= part.columns.len();
        self.presized -= usize::from(std::mem::take(&mut part.presized));
        write_pending(&self.root, &mut self.namer, part)?;
        let now = part.file.as_ref().map_or(0, PartFile::buffered_bytes);
        self.buffered_bytes = self.buffered_bytes + now - part.buffered;
        part.buffered = now;
        while self.buffered_bytes > self.limits.max_buffered_bytes {
            let Some(largest) = self.largest_by(|p| p.buffered) else {
                break;
            };
            let part = &mut self.open[largest];
            if let Some(file) = part.file.as_mut() {
                file.end_row_group()?;
            }
            self.buffered_bytes -= part.buffered;
            part.buffered = 0;
        }
        Ok(())
    }

    fn close(&mut self, mut part: OpenPartition) -> Result<(), StoreError> {
        self.pending_rows -= part.columns.len();
        self.presized -= usize::from(part.presized);
        self.buffered_bytes -= part.buffered;
        write_pending(&self.root, &mut self.namer, &mut part)?;
        if let Some(file) = part.file.take() {
            self.rows_written += file.finish()?;
            self.files_written += 1;
        }
        Ok(())
    }

    /// Flushes and closes every open partition; returns (rows, files) written in total.
    pub fn finish(mut self) -> Result<(u64, u64), StoreError> {
        let mut first_error = None;
        for part in std::mem::take(&mut self.open) {
            // Close every file even after a failure, so no finished data stays hidden.
            if let Err(e) = self.close(part) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok((self.rows_written, self.files_written)),
        }
    }
}

fn write_pending(root: &Path, namer: &mut PartNamer, part: &mut OpenPartition) -> Result<(), StoreError> {
    if part.columns.is_empty() {
        return Ok(());
    }
    let batch = part.columns.finish()?;
    if part.file.is_none() {
        let dir = root.join(part.key.dir());
        part.file = Some(PartFile::create(&dir, &namer.next_name(), record_schema())?);
    }
    if let Some(file) = part.file.as_mut() {
        file.write(&batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet_rows;

    fn record(hour: i64, n: i64) -> Record<'static> {
        Record::new(Timestamp::from_secs(hour * 3600 + n), "message")
    }

    fn write_interleaved(limits: WriterLimits, root: &Path) -> (u64, u64) {
        let mut writer = PartitionedWriter::new(root.to_owned(), PartNamer::new("t", 0), limits);
        let labels = Labels {
            source: "a.log",
            format: "test",
            ..Labels::default()
        };
        // Three "files", each covering the same ten hours, read one after another.
        for file in 0..3 {
            for hour in 0..10 {
                for n in 0..100 {
                    writer
                        .push(
                            &record(hour, n),
                            LineRange::single((file * 1000 + hour * 100 + n) as u64),
                            &labels,
                            None,
                        )
                        .expect("push");
                }
            }
        }
        writer.finish().expect("finish")
    }

    #[test]
    fn one_file_per_partition_when_within_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rows, files) = write_interleaved(WriterLimits::default(), dir.path());
        assert_eq!((rows, files), (3000, 10));
        assert_eq!(parquet_rows(dir.path()), 3000);
    }

    #[test]
    fn busy_partitions_are_presized_within_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = PartitionedWriter::new(
            dir.path().to_owned(),
            PartNamer::new("t", 0),
            WriterLimits::default(),
        );
        let labels = Labels {
            source: "a.log",
            format: "test",
            ..Labels::default()
        };
        // Eight hours, each filled with a batch and a half, then each given a few rows more:
        // every hour earns presized builders, but never more than the cap hold them.
        let hours = 8;
        let mut line = 0;
        let mut push = |writer: &mut PartitionedWriter, hour: i64, rows: usize| {
            for n in 0..rows {
                line += 1;
                let record = record(hour, n as i64 % 3600);
                writer
                    .push(&record, LineRange::single(line), &labels, None)
                    .expect("push");
                let presized = writer.open.iter().filter(|p| p.presized).count();
                assert_eq!(presized, writer.presized);
                assert!(presized <= MAX_PRESIZED, "{presized} presized partitions");
            }
        };
        for hour in 0..hours {
            push(&mut writer, hour, BATCH_ROWS * 3 / 2);
        }
        assert_eq!(
            writer.presized, MAX_PRESIZED,
            "the last busy hours hold presized builders"
        );
        for hour in 0..hours {
            push(&mut writer, hour, 10);
        }
        let expected = hours as u64 * (BATCH_ROWS as u64 * 3 / 2 + 10);
        assert_eq!(writer.finish().expect("finish"), (expected, hours as u64));
        assert_eq!(parquet_rows(dir.path()) as u64, expected);
    }

    #[test]
    fn tight_budgets_lose_no_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let limits = WriterLimits {
            max_open_files: 3,
            max_pending_rows: 50,
            max_buffered_bytes: 1,
        };
        let (rows, files) = write_interleaved(limits, dir.path());
        assert_eq!(rows, 3000);
        assert!(files > 10, "evictions start new part files: {files}");
        assert_eq!(parquet_rows(dir.path()), 3000);
    }
}
