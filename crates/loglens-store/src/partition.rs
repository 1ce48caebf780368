//! Writes records into `records/date=YYYY-MM-DD/hour=HH/`, one open file per active partition.
//!
//! Memory stays bounded: rows are buffered per partition up to a batch size, and at most
//! `max_open` partition files are open at once; the least recently used is closed (a later row
//! for it starts a new part file).

use std::path::PathBuf;

use loglens_core::time::civil_from_days;
use loglens_core::{Record, Timestamp};

use crate::columns::{Labels, RecordColumns};
use crate::schema::record_schema;
use crate::{PartFile, PartNamer, StoreError};

/// Rows buffered per partition before they are encoded.
const BATCH_ROWS: usize = 8 * 1024;

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
    file: Option<PartFile>,
    last_used: u64,
}

/// Writes records into hourly partitions of the records dataset.
pub struct PartitionedWriter {
    root: PathBuf,
    namer: PartNamer,
    max_open: usize,
    open: Vec<OpenPartition>,
    clock: u64,
    rows_written: u64,
    files_written: u64,
}

impl PartitionedWriter {
    /// A writer into the records dataset at `root`, naming its files after `namer`.
    pub fn new(root: PathBuf, namer: PartNamer, max_open: usize) -> Self {
        PartitionedWriter {
            root,
            namer,
            max_open: max_open.max(1),
            open: Vec::new(),
            clock: 0,
            rows_written: 0,
            files_written: 0,
        }
    }

    /// Appends a record to its partition, encoding a batch when enough rows are pending.
    pub fn push(&mut self, record: &Record<'_>, line: u64, labels: &Labels<'_>) -> Result<(), StoreError> {
        let key = PartitionKey::of(record.ts);
        let index = self.partition_index(key)?;
        let part = &mut self.open[index];
        part.columns.push(record, line, labels);
        if part.columns.len() >= BATCH_ROWS {
            Self::flush(&self.root, &mut self.namer, part)?;
        }
        Ok(())
    }

    fn partition_index(&mut self, key: PartitionKey) -> Result<usize, StoreError> {
        self.clock += 1;
        // Records mostly arrive in time order, so the partition just used is the likely hit.
        if let Some(i) = self.open.iter().rposition(|p| p.key == key) {
            self.open[i].last_used = self.clock;
            return Ok(i);
        }
        if self.open.len() >= self.max_open {
            let lru = self
                .open
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(i, _)| i)
                .unwrap_or(0);
            let evicted = self.open.swap_remove(lru);
            self.close(evicted)?;
        }
        self.open.push(OpenPartition {
            key,
            columns: RecordColumns::with_capacity(BATCH_ROWS),
            file: None,
            last_used: self.clock,
        });
        Ok(self.open.len() - 1)
    }

    fn flush(
        root: &std::path::Path,
        namer: &mut PartNamer,
        part: &mut OpenPartition,
    ) -> Result<(), StoreError> {
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

    fn close(&mut self, mut part: OpenPartition) -> Result<(), StoreError> {
        Self::flush(&self.root, &mut self.namer, &mut part)?;
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
