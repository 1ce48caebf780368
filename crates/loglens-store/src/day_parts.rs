//! Date-partitioned datasets written a batch at a time (`metrics/`, `rollups/*/`): a run's rows
//! of one day go to one file, `<dir>/date=YYYY-MM-DD/part-<name>.parquet`, however many batches
//! they come in, so a long or dense run writes neither one huge batch nor many small files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use crate::{PartFile, StoreError};

/// Days kept open at once: batches mostly come in time order, a stretch reaching back a day at
/// most, so older days are closed (a later batch for one starts a second file).
const OPEN_DAYS: usize = 3;

/// Writes the batches of one run into one file per day.
pub struct DayPartWriter {
    dir: PathBuf,
    name: String,
    schema: SchemaRef,
    open: BTreeMap<i64, PartFile>,
    /// Files started per day, so a day closed and reopened gets a new name.
    started: BTreeMap<i64, u32>,
    rows: u64,
}

impl DayPartWriter {
    /// A writer of `dir/date=…/part-<name>.parquet` files with `schema`.
    pub fn new(dir: &Path, name: &str, schema: SchemaRef) -> Self {
        DayPartWriter {
            dir: dir.to_owned(),
            name: name.to_owned(),
            schema,
            open: BTreeMap::new(),
            started: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Appends `columns` (in the schema's order) to the file of `day` (days since 1970-01-01).
    pub fn write(&mut self, day: i64, columns: Vec<ArrayRef>) -> Result<(), StoreError> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.open.contains_key(&day) {
            self.open_day(day)?;
        }
        match self.open.get_mut(&day) {
            Some(file) => file.write(&batch),
            None => Ok(()),
        }
    }

    fn open_day(&mut self, day: i64) -> Result<(), StoreError> {
        while self.open.len() >= OPEN_DAYS {
            let Some((_, oldest)) = self.open.pop_first() else {
                break;
            };
            self.rows += oldest.finish()?;
        }
        let started = self.started.entry(day).or_insert(0);
        let name = match *started {
            0 => format!("part-{}.parquet", self.name),
            n => format!("part-{}-{n}.parquet", self.name),
        };
        *started += 1;
        let (y, m, d) = loglens_core::time::civil_from_days(day);
        let dir = self.dir.join(format!("date={y:04}-{m:02}-{d:02}"));
        let file = PartFile::create(&dir, &name, self.schema.clone())?;
        self.open.insert(day, file);
        Ok(())
    }

    /// Closes every file; returns the rows written.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        let mut first_error = None;
        for (_, file) in std::mem::take(&mut self.open) {
            // Close every file even after a failure, so no finished day stays hidden.
            match file.finish() {
                Ok(rows) => self.rows += rows,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.rows),
        }
    }
}
