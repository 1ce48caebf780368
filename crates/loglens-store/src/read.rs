//! Reading datasets back: the Parquet files of a dataset in partition order, and record batches
//! with only the columns a stage needs (Parquet projection), so analysis never loads a whole
//! dataset.

use std::path::{Path, PathBuf};

use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::schema::types::SchemaDescriptor;

use crate::StoreError;

/// Every `*.parquet` file below `dir`, sorted by path: for `records/` that is date, then hour
/// order. Hidden files (temporary ones being written) are skipped; an absent `dir` is empty.
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::io(&d, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| StoreError::io(&d, e))?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Reads the named columns of one Parquet file, batch by batch, into `each`. A named column
/// the file lacks is an error naming the file and column.
pub fn read_columns(
    path: &Path,
    columns: &[&str],
    each: impl FnMut(&RecordBatch) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let projection = |schema: &SchemaDescriptor| {
        let mut indices = Vec::with_capacity(columns.len());
        for name in columns {
            let index = schema
                .root_schema()
                .get_fields()
                .iter()
                .position(|f| f.name() == *name)
                .ok_or_else(|| StoreError::Column {
                    path: path.to_owned(),
                    column: (*name).to_owned(),
                })?;
            indices.push(index);
        }
        Ok(ProjectionMask::roots(schema, indices))
    };
    read_batches(path, projection, each)
}

/// Reads every column of one Parquet file, batch by batch, into `each` (for small datasets whose
/// readers check the columns themselves).
pub fn read_all_columns(
    path: &Path,
    each: impl FnMut(&RecordBatch) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    read_batches(path, |_| Ok(ProjectionMask::all()), each)
}

/// The one Parquet reading loop: the columns `projection` picks, in batches of 64k rows.
fn read_batches(
    path: &Path,
    projection: impl FnOnce(&SchemaDescriptor) -> Result<ProjectionMask, StoreError>,
    mut each: impl FnMut(&RecordBatch) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let read_error = |source| StoreError::ParquetRead {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(read_error)?;
    let mask = projection(builder.parquet_schema())?;
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(read_error)?;
    for batch in reader {
        let batch = batch.map_err(|e| read_error(e.into()))?;
        each(&batch)?;
    }
    Ok(())
}

/// Column `name` of a batch read from `path`, as the Arrow array type `T`; a missing column or
/// another type is an error naming the file and column.
pub fn column<'b, T: Array + 'static>(
    path: &Path,
    batch: &'b RecordBatch,
    name: &str,
) -> Result<&'b T, StoreError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| StoreError::Column {
            path: path.to_owned(),
            column: name.to_owned(),
        })
}
