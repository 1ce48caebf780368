//! `loglens._engine.MetricPartial`: the engine's metric partial for Python. Records batches (as
//! `parse_lines` returns them) add to it as `detect` adds stored records, partials merge as the
//! drivers merge theirs, and the bytes are those of the engine's saved partials.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow_pyarrow::{PyArrowType, ToPyArrow};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use loglens_core::metrics::{SeriesCell, SeriesKey};
use loglens_engine::detect::observe_batch;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{engine_err, InputError, LoglensError};

/// What a batch is called in the errors about its columns.
const BATCH: &str = "record batch";

/// What a set of records contributes to the metric series, bucketed by time: built from
/// records batches, merged with other partials (associative and commutative), saved as bytes.
#[pyclass(name = "MetricPartial", module = "loglens._engine", eq, skip_from_py_object)]
#[derive(Clone, PartialEq)]
pub struct PyMetricPartial {
    partial: loglens_core::partial::MetricPartial,
}

#[pymethods]
impl PyMetricPartial {
    #[new]
    #[pyo3(signature = (bucket_secs=60))]
    fn new(bucket_secs: i64) -> PyResult<Self> {
        if bucket_secs < 1 {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "bucket_secs must be at least 1, not {bucket_secs}"
            )));
        }
        Ok(PyMetricPartial {
            partial: loglens_core::partial::MetricPartial::new(bucket_secs),
        })
    }

    /// A partial of every record of `batch` (see `add_records`).
    #[staticmethod]
    #[pyo3(signature = (batch, bucket_secs=60, source=None))]
    fn from_records(
        py: Python<'_>,
        batch: PyArrowType<RecordBatch>,
        bucket_secs: i64,
        source: Option<&str>,
    ) -> PyResult<Self> {
        let mut partial = PyMetricPartial::new(bucket_secs)?;
        partial.add_records(py, batch, source)?;
        Ok(partial)
    }

    /// Adds every record of `batch`, a batch of the records schema (what `parse_lines`
    /// returns, or rows of the `records/` dataset), exactly as `detect` adds stored records.
    /// It needs the columns ts, service, host, level, status, latency_ms, bytes, template_id
    /// and source; with `source` given, every record counts as read from it and the batch
    /// needs no `source` column. Returns the records added.
    #[pyo3(signature = (batch, source=None))]
    fn add_records(
        &mut self,
        py: Python<'_>,
        batch: PyArrowType<RecordBatch>,
        source: Option<&str>,
    ) -> PyResult<u64> {
        let batch = in_record_types(&batch.0)?;
        let batch = match source {
            Some(source) => with_source(&batch, source)?,
            None => batch,
        };
        if let Some(ts) = batch.column_by_name("ts") {
            if ts.null_count() > 0 {
                return Err(InputError::new_err(format!(
                    "{BATCH}: column `ts` has {} null values; every record needs a time",
                    ts.null_count()
                )));
            }
        }
        let partial = &mut self.partial;
        py.detach(|| observe_batch(Path::new(BATCH), &batch, partial))
            .map_err(|e| InputError::new_err(e.to_string()))
    }

    /// Adds everything `other` holds (which is left as it was). Partials of other bucket
    /// widths do not merge: that raises `LoglensError`.
    fn merge(slf: &Bound<'_, Self>, other: &Bound<'_, Self>) -> PyResult<()> {
        // Cloned before `slf` is borrowed mutably: `other` may be `slf` itself.
        let other = other.borrow().partial.clone();
        let mut this = slf.borrow_mut();
        let partial = &mut this.partial;
        slf.py()
            .detach(|| partial.merge(other))
            .map_err(|e| LoglensError::new_err(format!("merging metric partials: {e}")))
    }

    /// Pickles as its bytes, so Dask and Ray ship partials between tasks (`from_bytes`
    /// rebuilds it).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let rebuild = slf.get_type().getattr("from_bytes")?;
        Ok((rebuild, (slf.borrow().to_bytes(slf.py())?,)))
    }

    /// The partial in the encoding of the partials the engine saves under
    /// `state/partials/` (postcard, versioned).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = loglens_engine::partials::encode(&self.partial)
            .map_err(|e| engine_err("encoding a metric partial", e))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The partial `to_bytes` gave, or the content of a partial file the engine saved.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let partial = loglens_engine::partials::decode(data)
            .map_err(|e| LoglensError::new_err(format!("not a metric partial: {e}")))?;
        Ok(PyMetricPartial { partial })
    }

    /// The bucket width, seconds.
    #[getter]
    fn bucket_secs(&self) -> i64 {
        self.partial.bucket_secs()
    }

    /// Records added.
    #[getter]
    fn records(&self) -> u64 {
        self.partial.records()
    }

    /// The first and last bucket start (seconds since the epoch, UTC), or None when empty.
    #[getter]
    fn span(&self) -> Option<(i64, i64)> {
        self.partial.span()
    }

    /// One row per (series, bucket): the partial's metric series as `detect` sums them. A
    /// series is `total`, per service, per (service, host), per (service, level) (the service
    /// null for records without one) or per template; `series` is its canonical key (as in
    /// `metrics/`), service, host, level and template_id its labels, null for "all"; `ts` is
    /// the bucket start. records, errors and bytes are sums;
    /// latency_count is the records with a latency and latency_p50/p95/p99/gmean its quantiles
    /// and geometric mean in ms (null without latencies; within the sketch's 1%). Template
    /// series count records only; (service, level) series carry no latencies. Rows are
    /// sorted by the labels (service, host, level, template_id; null first), then by `ts`.
    fn series<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut series = self.partial.series();
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        series_batch(&series)?.to_pyarrow(py)
    }

    fn __repr__(&self) -> String {
        let span = self
            .partial
            .span()
            .map_or_else(|| "None".to_owned(), |(a, b)| format!("({a}, {b})"));
        format!(
            "MetricPartial(bucket_secs={}, records={}, span={span})",
            self.partial.bucket_secs(),
            self.partial.records()
        )
    }
}

/// `batch` with its columns of the records schema cast to that schema's types, so batches from
/// polars or pandas (large or view strings, signed or wider integers, timestamps in other units)
/// count as the engine's own. A value that does not fit (a status of 70000) is an error naming
/// its column, not a null.
fn in_record_types(batch: &RecordBatch) -> PyResult<RecordBatch> {
    let records = loglens_store::record_schema();
    let schema = batch.schema();
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut columns: Vec<(&str, ArrayRef, bool)> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let wanted = records.field_with_name(field.name()).map(|f| f.data_type());
        let column = match wanted {
            Ok(wanted) if wanted != column.data_type() => cast(column, wanted, &options).map_err(|e| {
                InputError::new_err(format!(
                    "{BATCH}: column `{}` ({}) does not convert to {wanted}: {e}",
                    field.name(),
                    column.data_type()
                ))
            })?,
            _ => Arc::clone(column),
        };
        columns.push((field.name().as_str(), column, true));
    }
    if columns.is_empty() {
        return Ok(batch.clone());
    }
    RecordBatch::try_from_iter_with_nullable(columns)
        .map_err(|e| InputError::new_err(format!("{BATCH}: {e}")))
}

/// `column` cast to `wanted`. A timestamp keeps its instants (Arrow stores them since the epoch
/// in UTC whatever the zone; a time without a zone is taken as UTC): only its unit is cast, as
/// arrow-cast cannot name zones without the tz database.
fn cast(
    column: &ArrayRef,
    wanted: &DataType,
    options: &arrow_cast::CastOptions,
) -> Result<ArrayRef, ArrowError> {
    match (column.data_type(), wanted) {
        (DataType::Timestamp(_, zone), DataType::Timestamp(TimeUnit::Microsecond, Some(utc))) => {
            let micros = arrow_cast::cast_with_options(
                column,
                &DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
                options,
            )?;
            let micros = micros
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| ArrowError::CastError("not microseconds".to_owned()))?;
            Ok(Arc::new(micros.clone().with_timezone(utc.clone())))
        }
        _ => arrow_cast::cast_with_options(column, wanted, options),
    }
}

/// `batch` with its `source` column (if any) replaced by `source` on every row.
fn with_source(batch: &RecordBatch, source: &str) -> PyResult<RecordBatch> {
    let schema = batch.schema();
    let mut columns: Vec<(&str, ArrayRef, bool)> = (schema.fields().iter())
        .zip(batch.columns())
        .filter(|(f, _)| f.name() != "source")
        .map(|(f, c)| (f.name().as_str(), Arc::clone(c), f.is_nullable()))
        .collect();
    let sources = StringArray::from_iter_values(std::iter::repeat_n(source, batch.num_rows()));
    columns.push(("source", Arc::new(sources), false));
    RecordBatch::try_from_iter_with_nullable(columns)
        .map_err(|e| InputError::new_err(format!("{BATCH}: {e}")))
}

/// The rows of `series` (sorted by key), as [`PyMetricPartial::series`] describes them.
fn series_batch(series: &[(SeriesKey, Vec<(i64, SeriesCell)>)]) -> PyResult<RecordBatch> {
    let rows = || {
        series
            .iter()
            .flat_map(|(key, cells)| cells.iter().map(move |c| (key, c)))
    };
    let text = |f: fn(&SeriesKey) -> Option<&str>| -> ArrayRef {
        Arc::new(rows().map(|(k, _)| f(k)).collect::<StringArray>())
    };
    let count = |f: fn(&SeriesCell) -> u64| -> ArrayRef {
        Arc::new(rows().map(|(_, (_, c))| f(c)).collect::<UInt64Array>())
    };
    let latency = |f: fn(&SeriesCell) -> Option<f64>| -> ArrayRef {
        Arc::new(rows().map(|(_, (_, c))| f(c)).collect::<Float64Array>())
    };
    let keys: StringArray = rows().map(|(k, _)| Some(k.canonical())).collect();
    let ts =
        TimestampMicrosecondArray::from_iter_values(rows().map(|(_, (b, _))| b.saturating_mul(1_000_000)))
            .with_timezone("UTC");
    let templates: UInt64Array = rows().map(|(k, _)| k.template).collect();
    RecordBatch::try_from_iter_with_nullable([
        ("series", Arc::new(keys) as ArrayRef, false),
        ("service", text(|k| k.service.as_deref()), true),
        ("host", text(|k| k.host.as_deref()), true),
        ("level", text(|k| k.level.map(|l| l.as_str())), true),
        ("template_id", Arc::new(templates), true),
        ("ts", Arc::new(ts), false),
        ("records", count(|c| c.volume), false),
        ("errors", count(|c| c.errors), false),
        ("bytes", count(|c| c.bytes), false),
        ("latency_count", count(|c| c.latency.count()), false),
        ("latency_p50", latency(|c| c.latency.quantile(0.5)), true),
        ("latency_p95", latency(|c| c.latency.quantile(0.95)), true),
        ("latency_p99", latency(|c| c.latency.quantile(0.99)), true),
        ("latency_gmean", latency(|c| c.latency.geometric_mean()), true),
    ])
    .map_err(|e| LoglensError::new_err(format!("metric series: {e}")))
}
