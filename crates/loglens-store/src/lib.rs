//! The loglens data directory: partitioned Parquet datasets, written atomically.
//!
//! Records land in `records/date=YYYY-MM-DD/hour=HH/part-*.parquet`, lines that did not parse in
//! `unparsed/part-*.parquet`. Every file is written under a hidden temporary name and renamed
//! when complete, so a reader (DuckDB, pandas, polars) never sees half a file; a run's files
//! are staged and committed together ([`RunCommit`]), so an interrupted run leaves nothing
//! behind that the next one does not repair.

#![deny(missing_docs)]

mod analysis;
mod analysis_read;
mod columns;
mod commit;
mod compact;
mod day_parts;
mod partition;
mod read;
mod rollup;
mod schema;
mod templates;
mod unparsed;

use std::path::{Path, PathBuf};

pub use analysis::{
    anomalies_schema, incidents_schema, metrics_schema, write_anomalies, write_file, write_incidents,
    write_metrics, AnomalyRow, MetricsWriter, OPEN_PART,
};
pub use analysis_read::{read_incidents, read_metric_points, MetricPoints};
pub use columns::{BatchSizes, Labels, LineRange, RecordColumns, RecordTemplate};
pub use commit::{
    sync_dir, write_atomic, write_atomic_with, write_staged, write_staged_with, Recovery, RunCommit,
    WriteLock,
};
pub use compact::{compact_datasets, CompactOptions, Compacted, DatasetCompacted};
pub use day_parts::DayPartWriter;
pub use partition::{PartitionKey, PartitionedWriter, WriterLimits};
pub use read::{column, parquet_files, read_all_columns, read_columns};
pub use rollup::{rollup_counts_schema, rollup_latency_schema, RollupWriter, ROLLUP_COUNTS, ROLLUP_LATENCY};
pub use schema::{record_schema, unparsed_schema};
pub use templates::{merge_templates, read_templates, templates_schema, TEMPLATES_FILE};
pub use unparsed::{UnparsedColumns, UnparsedLine, UnparsedWriter};

/// Errors of the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory could not be created, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Parquet encoding failed.
    #[error("{path}: writing Parquet: {source}")]
    Parquet {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// A Parquet file could not be read.
    #[error("{path}: reading Parquet: {source}")]
    ParquetRead {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
    /// A dataset file lacks a column or has it with another type.
    #[error("{path}: column `{column}` is missing or has an unexpected type")]
    Column {
        /// The file being read.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A dataset file has a column of a type or content its reader cannot use.
    #[error("{path}: column {column}: {message}")]
    ColumnType {
        /// The file being read.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// An Arrow batch could not be assembled (a bug, not an input problem).
    #[error("assembling a record batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

impl StoreError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The root of a data directory and the places of its datasets.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens (creating if needed) a data directory at `root`.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for sub in [Dataset::Records, Dataset::Unparsed, Dataset::State] {
            let dir = root.join(sub.dir_name());
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        Ok(DataDir { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one dataset.
    pub fn dataset(&self, dataset: Dataset) -> PathBuf {
        self.root.join(dataset.dir_name())
    }
}

/// The datasets of a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    /// One row per parsed line, partitioned by date and hour.
    Records,
    /// One row per line that did not parse: raw text, file, line number, reason.
    Unparsed,
    /// Run summaries and checkpoints.
    State,
    /// One row per mined log template.
    Templates,
    /// Time-bucketed metric series.
    Metrics,
    /// One row per anomalous bucket.
    Anomalies,
    /// Anomalous buckets merged into incidents.
    Incidents,
    /// Exact counts and sketched latency histograms per bucket, for the dashboard.
    Rollups,
}

impl Dataset {
    /// The directory name under the data directory root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Dataset::Records => "records",
            Dataset::Unparsed => "unparsed",
            Dataset::State => "state",
            Dataset::Templates => "templates",
            Dataset::Metrics => "metrics",
            Dataset::Anomalies => "anomalies",
            Dataset::Incidents => "incidents",
            Dataset::Rollups => "rollups",
        }
    }
}

/// Names the files one writer creates: `part-{run}-{writer}-{seq}.parquet`, unique across runs
/// and across the parallel writers of one run.
#[derive(Debug, Clone)]
pub struct PartNamer {
    prefix: String,
    next: u32,
}

impl PartNamer {
    /// A namer for writer number `writer` of run `run_id`.
    pub fn new(run_id: &str, writer: usize) -> Self {
        PartNamer {
            prefix: format!("part-{run_id}-{writer:02}"),
            next: 0,
        }
    }

    /// The next file name (final name, not the temporary one).
    pub fn next_name(&mut self) -> String {
        let name = format!("{}-{:05}.parquet", self.prefix, self.next);
        self.next += 1;
        name
    }
}

/// A Parquet file being written under a temporary name in its final directory.
pub(crate) struct PartFile {
    writer: parquet::arrow::ArrowWriter<std::fs::File>,
    tmp: PathBuf,
    path: PathBuf,
    rows: u64,
}

impl PartFile {
    pub(crate) fn create(
        dir: &Path,
        name: &str,
        schema: arrow_schema::SchemaRef,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let props = schema::writer_properties(&schema);
        let writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| {
            StoreError::Parquet {
                path: path.clone(),
                source,
            }
        })?;
        Ok(PartFile {
            writer,
            tmp,
            path,
            rows: 0,
        })
    }

    pub(crate) fn write(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), StoreError> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|source| StoreError::Parquet {
            path: self.path.clone(),
            source,
        })
    }

    /// Bytes the writer holds in memory for the row group in progress.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.writer.memory_size()
    }

    /// Ends the row group in progress, writing it to the file and freeing its memory.
    pub(crate) fn end_row_group(&mut self) -> Result<(), StoreError> {
        self.writer.flush().map_err(|source| StoreError::Parquet {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes the footer, starts writing the file to disk and moves it to its final name;
    /// returns the rows it holds.
    ///
    /// Why not fsync here? Every part file is written under a run's staging directory, and
    /// the run's commit fsyncs each staged file before it records the commit. Waiting for the
    /// disk here idled the workers closing their partitions (a third of a core each at the end
    /// of `process`); started now, the writeback is mostly done when the commit waits for it.
    pub(crate) fn finish(mut self) -> Result<u64, StoreError> {
        self.writer.finish().map_err(|source| StoreError::Parquet {
            path: self.path.clone(),
            source,
        })?;
        commit::start_writeback(self.writer.inner()).map_err(|e| StoreError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        Ok(self.rows)
    }
}

/// Rows in every Parquet file below `dir` (tests only).
#[cfg(test)]
pub(crate) fn parquet_rows(dir: &Path) -> usize {
    let mut rows = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&path).expect("open");
                let reader = parquet::file::reader::SerializedFileReader::new(file).expect("footer");
                use parquet::file::reader::FileReader;
                rows += reader.metadata().file_metadata().num_rows() as usize;
            }
        }
    }
    rows
}
