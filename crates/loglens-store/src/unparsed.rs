//! Writes lines that did not parse to `unparsed/`, with file, line number, format and reason,
//! so nothing is silently dropped and every failure leads back to its raw line.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};

use crate::schema::unparsed_schema;
use crate::{PartFile, PartNamer, StoreError};

const BATCH_ROWS: usize = 4 * 1024;

/// One line that did not parse.
#[derive(Debug, Clone, Copy)]
pub struct UnparsedLine<'a> {
    /// File path or peer the line came from.
    pub source: &'a str,
    /// Line number within the source, from 1.
    pub line: u64,
    /// The format that was tried.
    pub format: &'a str,
    /// Why it did not parse.
    pub reason: &'a str,
    /// The raw line.
    pub raw: &'a str,
}

/// Unparsed lines gathered as Arrow columns of [`unparsed_schema`]: what the writer buffers,
/// and what the Python package hands back beside the records.
#[derive(Default)]
pub struct UnparsedColumns {
    source: StringBuilder,
    line: UInt64Builder,
    format: StringBuilder,
    reason: StringBuilder,
    raw: StringBuilder,
    rows: usize,
}

impl UnparsedColumns {
    /// Adds one unparsed line.
    pub fn push(&mut self, line: &UnparsedLine<'_>) {
        self.source.append_value(line.source);
        self.line.append_value(line.line);
        self.format.append_value(line.format);
        self.reason.append_value(line.reason);
        self.raw.append_value(line.raw);
        self.rows += 1;
    }

    /// Lines gathered since the last [`UnparsedColumns::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no line is gathered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The gathered lines as one batch; the builders start over.
    pub fn finish(&mut self) -> Result<RecordBatch, StoreError> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.line.finish()),
            Arc::new(self.format.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(unparsed_schema(), columns)?)
    }
}

/// Buffers unparsed lines and writes them to one part file per writer.
pub struct UnparsedWriter {
    dir: PathBuf,
    namer: PartNamer,
    pending: UnparsedColumns,
    file: Option<PartFile>,
}

impl UnparsedWriter {
    /// A writer into the unparsed dataset directory `dir`.
    pub fn new(dir: PathBuf, namer: PartNamer) -> Self {
        UnparsedWriter {
            dir,
            namer,
            pending: UnparsedColumns::default(),
            file: None,
        }
    }

    /// Records one unparsed line.
    pub fn push(&mut self, line: &UnparsedLine<'_>) -> Result<(), StoreError> {
        self.pending.push(line);
        if self.pending.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.pending.finish()?;
        if self.file.is_none() {
            self.file = Some(PartFile::create(
                &self.dir,
                &self.namer.next_name(),
                unparsed_schema(),
            )?);
        }
        if let Some(file) = self.file.as_mut() {
            file.write(&batch)?;
        }
        Ok(())
    }

    /// Writes what is pending and closes the file; returns the rows written.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        self.flush()?;
        match self.file.take() {
            Some(file) => file.finish(),
            None => Ok(0),
        }
    }
}
