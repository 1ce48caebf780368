//! `loglens._engine`: the loglens engine for Python. Parses lines to pyarrow record batches
//! (Arrow C data interface, no copy), mines templates, and runs `process` and `detect` as the
//! CLI does; engine errors become `loglens.LoglensError` with the CLI's messages.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_pyarrow::ToPyArrow;
use loglens_core::format::ParseContext;
use loglens_core::template::{MaskedBatch, TemplateMiner, TemplateStageState};
use loglens_core::zone::LocalZone;
use loglens_engine::config::{parse_zone, Config};
use loglens_engine::distributed::{
    decode, encode, scan_chunk as scan_chunk_of, write_group as write_group_of, ChunkScan, ChunkSpec,
    DistributedRun, WorkerContext, WriteGroup,
};
use loglens_engine::input::Parsers;
use loglens_engine::progress::{Bar, Progress, Stage};
use loglens_engine::{parse_into_columns, EngineError, ProcessOptions, ProcessRequest};
use loglens_store::{Labels, RecordColumns, UnparsedColumns, UnparsedLine};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

mod detectors;
mod partials;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (`_RJEM_MALLOC_CONF` still overrides them).
/// Why `oversize_threshold:0`? By default an allocation of 8 MiB or more (a chunk's bytes, its
/// text) gets an arena that returns its pages at once when it is freed, so each task of a
/// Dask or Ray worker faulted in its chunk's pages afresh: 10M lines on 2 Dask workers took
/// 16.4-17.2 s with 7.2 s of system time before, 13.9-14.6 s with 3.8-4.0 s after.
/// Why `muzzy_decay_ms:-1`? Freed pages still went back to the kernel (MADV_DONTNEED) as they
/// aged and were faulted in again by the next chunks: 1.7M page faults for a 10M-line run's
/// scans and writes in one process. Now aged pages are only marked MADV_FREE, which the kernel
/// reclaims when it needs memory and otherwise leaves in place: 96k faults, system time 4.75
/// -> 2.0 s, 20.8 -> 18.2 s, peak RSS 230 -> 295 MB. (A longer decay, 60 s, did not help; the
/// CLI's `process` is unchanged by it, so it keeps jemalloc's defaults.)
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: Option<&'static std::ffi::c_char> = {
    const CONF: &[u8] = b"oversize_threshold:0,muzzy_decay_ms:-1\0";
    // SAFETY: CONF is a NUL-terminated static string; jemalloc reads it as a C string.
    Some(unsafe { &*CONF.as_ptr().cast::<std::ffi::c_char>() })
};

create_exception!(
    loglens._engine,
    LoglensError,
    PyException,
    "An error of the loglens engine."
);
create_exception!(
    loglens._engine,
    ConfigError,
    LoglensError,
    "A setting (config key, argument) that cannot be used."
);
create_exception!(
    loglens._engine,
    InputError,
    LoglensError,
    "An input that cannot be read."
);
create_exception!(
    loglens._engine,
    DataError,
    LoglensError,
    "The data directory or its state cannot be used (corrupt state, a failed write)."
);

/// The Python exception of an engine error, its message prefixed with what was being done.
fn engine_err(context: &str, e: EngineError) -> PyErr {
    let message = format!("{context}: {e}");
    typed_err(&e, message)
}

/// The Python exception of an engine error: its class says what kind of error it is (the
/// engine's errors are typed), `message` is what it says.
fn typed_err(e: &EngineError, message: String) -> PyErr {
    match e {
        EngineError::Setting { .. } | EngineError::FormatFile(_) | EngineError::NothingToProcess => {
            ConfigError::new_err(message)
        }
        EngineError::Io { .. } | EngineError::Input { .. } => InputError::new_err(message),
        _ => DataError::new_err(message),
    }
}

fn load_config(config: Option<PathBuf>) -> PyResult<Config> {
    match config {
        Some(path) => Config::load(&path).map_err(|e| ConfigError::new_err(e.to_string())),
        None => Ok(Config::default()),
    }
}

/// The engine's options for a request under the config at `config`, as `loglens process`
/// builds them (one function for both: [`ProcessRequest::options`]).
fn options_of(request: &ProcessRequest, config: Option<PathBuf>) -> PyResult<ProcessOptions> {
    let config = load_config(config)?;
    request.options(&config).map_err(|e| {
        let message = e.to_string();
        typed_err(&e, message)
    })
}

fn zone_of(config: &Config, timezone: Option<&str>) -> PyResult<LocalZone> {
    match timezone {
        Some(tz) => parse_zone(tz).map_err(|m| ConfigError::new_err(format!("--timezone: {m}"))),
        None => Ok(config.zone()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| LoglensError::new_err(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> PyResult<T> {
    serde_json::from_str(text).map_err(|e| LoglensError::new_err(format!("{what}: {e}")))
}

/// Runs `loglens process` in this process; returns the run summary as JSON text.
#[pyfunction]
#[pyo3(signature = (paths, config=None, data_dir=None, threads=None, timezone=None, format=None, final_inputs=false, no_templates=false, reprocess=false, progress=false))]
#[allow(clippy::too_many_arguments)]
fn process(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    threads: Option<usize>,
    timezone: Option<String>,
    format: Option<String>,
    final_inputs: bool,
    no_templates: bool,
    reprocess: bool,
    progress: bool,
) -> PyResult<String> {
    let request = ProcessRequest {
        paths,
        data_dir,
        format,
        threads,
        timezone,
        reprocess,
        final_inputs,
        no_templates,
        ..ProcessRequest::default()
    };
    let mut options = options_of(&request, config)?;
    options.progress = Bar::unless_json(!progress).map(|bar| bar as Arc<dyn Progress>);
    let summary = py
        .detach(|| loglens_engine::process(options, loglens_engine::run_id()))
        .map_err(|e| engine_err("processing stopped", e))?;
    to_json(&summary)
}

/// What every worker of a distributed run needs to build its parsers (JSON text, shipped
/// with each task): the configuration file, the zone and the limits of the run.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerSpec {
    config: Option<PathBuf>,
    timezone: Option<String>,
    max_line_bytes: usize,
    bucket_secs: i64,
    /// Whether the driver mines templates (then scans mask messages for it).
    mine: bool,
}

impl WorkerSpec {
    /// The context of the worker spec `json`, built once per process: every task of a run
    /// ships the same spec, and building parsers compiles every format's regex.
    fn context_of(json: &str) -> PyResult<Arc<WorkerContext>> {
        static BUILT: Mutex<Option<(String, Arc<WorkerContext>)>> = Mutex::new(None);
        let mut built = BUILT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((spec, context)) = built.as_ref() {
            if spec == json {
                return Ok(Arc::clone(context));
            }
        }
        let context = Arc::new(from_json::<WorkerSpec>("worker", json)?.context()?);
        *built = Some((json.to_owned(), Arc::clone(&context)));
        Ok(context)
    }

    fn context(&self) -> PyResult<WorkerContext> {
        let config = load_config(self.config.clone())?;
        Ok(WorkerContext {
            parsers: Parsers::from_config(&config).map_err(|e| engine_err("config", e))?,
            zone: zone_of(&config, self.timezone.as_deref())?,
            max_line_bytes: self.max_line_bytes,
            bucket_secs: self.bucket_secs,
            miner: self.mine.then(loglens_engine::miner_config),
        })
    }
}

/// The driver of a distributed run: plans chunks, gives their messages template ids in input
/// order and commits, exactly as `process` does; workers run `scan_chunk` and `write_group`.
#[pyclass]
struct Run {
    run: Option<DistributedRun>,
    run_id: String,
    worker: String,
}

#[pymethods]
impl Run {
    #[new]
    #[pyo3(signature = (paths, config=None, data_dir=None, timezone=None, format=None, final_inputs=false, no_templates=false, reprocess=false, chunk_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        config: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        timezone: Option<String>,
        format: Option<String>,
        final_inputs: bool,
        no_templates: bool,
        reprocess: bool,
        chunk_bytes: Option<usize>,
    ) -> PyResult<Self> {
        let config_path = config.map(|c| std::path::absolute(&c).unwrap_or(c));
        let request = ProcessRequest {
            paths,
            data_dir,
            format,
            timezone: timezone.clone(),
            reprocess,
            final_inputs,
            no_templates,
            ..ProcessRequest::default()
        };
        let mut options = options_of(&request, config_path.clone())?;
        if let Some(bytes) = chunk_bytes {
            options.chunk_bytes = bytes.max(1);
        }
        let worker = to_json(&WorkerSpec {
            config: config_path,
            timezone,
            max_line_bytes: options.max_line_bytes,
            bucket_secs: options.bucket_secs,
            mine: options.mine_templates,
        })?;
        let run_id = loglens_engine::run_id();
        let run = py
            .detach(|| DistributedRun::begin(&options, &run_id))
            .map_err(|e| engine_err("processing stopped", e))?;
        Ok(Run {
            run: Some(run),
            run_id,
            worker,
        })
    }

    /// The run's id (its part files and summary are named after it).
    #[getter]
    fn run_id(&self) -> &str {
        &self.run_id
    }

    /// What workers need besides a chunk (JSON text).
    #[getter]
    fn worker(&self) -> &str {
        &self.worker
    }

    /// The run's staging directory, where workers write their parts.
    #[getter]
    fn staged_dir(&self) -> PyResult<PathBuf> {
        Ok(self.active()?.staged_dir().to_owned())
    }

    /// The chunks to scan and write, in input order (JSON text each).
    fn chunks(&self) -> PyResult<Vec<String>> {
        self.active()?.chunks().iter().map(to_json).collect()
    }

    /// Bytes on disk of all the chunks: what a progress bar runs to.
    fn total_bytes(&self) -> PyResult<u64> {
        Ok(self.active()?.total_bytes())
    }

    /// `(lines, bytes on disk)` of the chunks written so far.
    fn written(&self) -> PyResult<(u64, u64)> {
        Ok(self.active()?.written())
    }

    /// Gives chunk `seq`'s scanned messages (what `scan_chunk` returned: its scan and its
    /// messages) their template ids; chunks must come in order. Returns the write groups now
    /// ready (encoded, what `write_group` takes), often none.
    fn assign<'py>(
        &mut self,
        py: Python<'py>,
        seq: u64,
        scan: &str,
        messages: &[u8],
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let run = self.run.as_mut().ok_or_else(finished)?;
        let groups = py.detach(|| {
            let scan: ChunkScan = from_json("chunk scan", scan)?;
            let messages: MaskedBatch = decode(&format!("chunk {seq}'s messages"), messages)
                .map_err(|e| engine_err("mining templates", e))?;
            let groups = run
                .assign(seq, &scan, &messages)
                .map_err(|e| engine_err("mining templates", e))?;
            encode_groups(&groups)
        })?;
        Ok(groups.iter().map(|g| PyBytes::new(py, g)).collect())
    }

    /// The write groups of every chunk mined and not yet handed out: call it after the last
    /// `assign`.
    fn remaining_groups<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let run = self.run.as_mut().ok_or_else(finished)?;
        let groups = encode_groups(&run.remaining_groups())?;
        Ok(groups.iter().map(|g| PyBytes::new(py, g)).collect())
    }

    /// Merges the counts and template tallies a `write_group` returned into the run's, as soon
    /// as they are there.
    fn absorb(&mut self, py: Python<'_>, partial: &[u8]) -> PyResult<()> {
        let run = self.run.as_mut().ok_or_else(finished)?;
        py.detach(|| {
            let fail = |e| engine_err("processing stopped", e);
            run.absorb(decode("chunk partial", partial).map_err(fail)?)
                .map_err(fail)
        })
    }

    /// Commits the run once every group's partial was absorbed; returns its summary as JSON
    /// text.
    fn finish(&mut self, py: Python<'_>) -> PyResult<String> {
        let run = self.run.take().ok_or_else(finished)?;
        py.detach(|| {
            let summary = run.finish().map_err(|e| engine_err("processing stopped", e))?;
            to_json(&summary)
        })
    }

    /// Gives up the run: nothing is committed and the data directory's lock is released.
    fn abort(&mut self) {
        self.run = None;
    }
}

impl Run {
    fn active(&self) -> PyResult<&DistributedRun> {
        self.run.as_ref().ok_or_else(finished)
    }
}

fn encode_groups(groups: &[WriteGroup]) -> PyResult<Vec<Vec<u8>>> {
    groups
        .iter()
        .map(|g| encode("write group", g).map_err(|e| engine_err("mining templates", e)))
        .collect()
}

fn finished() -> PyErr {
    LoglensError::new_err("the run is finished or aborted")
}

/// The CLI's progress bar, for a driver that counts for itself (`python -m loglens process`
/// on a cluster): drawn on stderr only when that is a terminal, once the run has gone on for
/// about two seconds; otherwise its calls do nothing.
#[pyclass(name = "ProgressBar")]
struct PyProgressBar {
    bar: Option<Arc<Bar>>,
}

#[pymethods]
impl PyProgressBar {
    #[new]
    #[pyo3(signature = (wanted=true))]
    fn new(wanted: bool) -> Self {
        PyProgressBar {
            bar: Bar::unless_json(!wanted),
        }
    }

    /// Whether it draws at all (wanted, and stderr is a terminal).
    #[getter]
    fn active(&self) -> bool {
        self.bar.is_some()
    }

    /// The run begins; it will read `total_bytes` from disk.
    fn begin(&self, total_bytes: Option<u64>) {
        if let Some(bar) = &self.bar {
            bar.begin(Stage::Process, total_bytes);
        }
    }

    /// So far: `lines` and `bytes` on disk.
    fn update(&self, lines: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.update(lines, bytes);
        }
    }

    /// Clears the bar (before the summary, or an error, is printed).
    fn end(&self) {
        if let Some(bar) = &self.bar {
            bar.end();
        }
    }
}

/// A worker's first step: reads the chunk and returns its scan (JSON text: line counts and
/// hours) and its messages in order, masked (encoded: each distinct masked text once and an
/// index), for the driver's `Run.assign`.
#[pyfunction]
fn scan_chunk<'py>(py: Python<'py>, worker: &str, chunk: &str) -> PyResult<(String, Bound<'py, PyBytes>)> {
    let (scan, messages) = py.detach(|| {
        let context = WorkerSpec::context_of(worker)?;
        let spec: ChunkSpec = from_json("chunk", chunk)?;
        let (scan, messages) =
            scan_chunk_of(&spec, &context).map_err(|e| engine_err("processing stopped", e))?;
        let messages =
            encode("chunk messages", &messages).map_err(|e| engine_err("processing stopped", e))?;
        Ok::<_, PyErr>((to_json(&scan)?, messages))
    })?;
    Ok((scan, PyBytes::new(py, &messages)))
}

/// A worker's second step: writes a group of chunks' records (what `Run.assign` gave) with
/// the ids the driver gave them and its metric partial into the run's staging directory and
/// returns its counts and template tallies (encoded, for `Run.absorb`). Running it again for
/// the same group (a retried task) replaces its files.
#[pyfunction]
fn write_group<'py>(
    py: Python<'py>,
    worker: &str,
    group: &[u8],
    staged_dir: PathBuf,
    run_id: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let partial = py.detach(|| {
        let context = WorkerSpec::context_of(worker)?;
        let fail = |e| engine_err("processing stopped", e);
        let group: WriteGroup = decode("write group", group).map_err(fail)?;
        let partial = write_group_of(&group, &context, &staged_dir, run_id).map_err(fail)?;
        encode("chunk partial", &partial).map_err(fail)
    })?;
    Ok(PyBytes::new(py, &partial))
}

/// Runs `loglens detect` over a data directory; returns the summary as JSON text. With
/// `progress`, the CLI's progress bar on stderr while it is a terminal.
#[pyfunction]
#[pyo3(signature = (data_dir, config=None, progress=false))]
fn detect(py: Python<'_>, data_dir: PathBuf, config: Option<PathBuf>, progress: bool) -> PyResult<String> {
    let config = load_config(config)?;
    let bar = Bar::unless_json(!progress);
    let progress = bar.as_deref().map(|bar| bar as &dyn Progress);
    let found = py
        .detach(|| {
            loglens_engine::detect::detect(&data_dir, &config.detect, &loglens_engine::run_id(), progress)
        })
        .map_err(|e| engine_err("detecting anomalies", e))?;
    serde_json::to_string(&found).map_err(|e| LoglensError::new_err(e.to_string()))
}

/// The SQL predicate of an error record over the records dataset (`status`, `level`): the
/// engine's one definition, for the dashboard's queries.
#[pyfunction]
fn error_sql() -> String {
    loglens_core::metrics::error_sql()
}

/// The metrics whose series `metrics/` stores sparse: a bucket between two of a series' points
/// that has none is a 0 (see `MetricPoint::filled`); for the dashboard's charts.
#[pyfunction]
fn dense_metrics() -> Vec<&'static str> {
    let all = loglens_core::metrics::Metric::ALL;
    all.into_iter()
        .filter(|m| m.is_dense())
        .map(|m| m.as_str())
        .collect()
}

/// Parses `lines` with the format `format` into a pyarrow RecordBatch of the records schema
/// (`line` is the 1-based place in `lines`), as `parse_bytes` parses them joined by newlines.
/// Lines that do not parse are left out of it; with `unparsed=True` the result is
/// `(records, unparsed)`, the second a batch of the CLI's `unparsed/` schema (source, line,
/// format, reason, raw), so no line is lost unseen.
#[pyfunction]
#[pyo3(signature = (format, lines, source="<python>", *, unparsed=false))]
fn parse_lines(
    py: Python<'_>,
    format: &str,
    lines: Vec<String>,
    source: &str,
    unparsed: bool,
) -> PyResult<Py<PyAny>> {
    parse_text(py, format, lines.join("\n").into_bytes(), source, unparsed)
}

/// Parses `data` (the bytes of a log, whole lines) with the format `format` exactly as
/// `loglens process` parses a file: continuation lines (a stack trace) join their record, a
/// batch line may give several records, invalid UTF-8 is replaced. Returns what `parse_lines`
/// returns.
#[pyfunction]
#[pyo3(signature = (format, data, source="<python>", *, unparsed=false))]
fn parse_bytes(
    py: Python<'_>,
    format: &str,
    data: Vec<u8>,
    source: &str,
    unparsed: bool,
) -> PyResult<Py<PyAny>> {
    parse_text(py, format, data, source, unparsed)
}

/// The built-in formats, built once per process: building them compiles every format's regex
/// (7 ms, which each `parse_lines` call of one line used to pay).
fn built_in_parsers() -> PyResult<&'static Parsers> {
    static BUILT: std::sync::OnceLock<Parsers> = std::sync::OnceLock::new();
    if let Some(parsers) = BUILT.get() {
        return Ok(parsers);
    }
    let parsers = Parsers::from_config(&Config::default()).map_err(|e| engine_err("formats", e))?;
    Ok(BUILT.get_or_init(|| parsers))
}

fn parse_text(
    py: Python<'_>,
    format: &str,
    data: Vec<u8>,
    source: &str,
    unparsed: bool,
) -> PyResult<Py<PyAny>> {
    let parser = built_in_parsers()?
        .by_name(format)
        .ok_or_else(|| ConfigError::new_err(format!("unknown format {format:?}")))?;
    let labels = Labels {
        source,
        format: parser.name(),
        host: None,
        service: None,
    };
    let mut columns = RecordColumns::default();
    let mut refused = UnparsedColumns::default();
    let mut refuse = |line: u64, raw: &str, reason: String| {
        if unparsed {
            refused.push(&UnparsedLine {
                source,
                line,
                format: parser.name(),
                reason: &reason,
                raw,
            });
        }
    };
    let ctx = ParseContext::default();
    py.detach(|| parse_into_columns(data, parser.clone(), &ctx, &labels, &mut columns, &mut refuse));
    let store_err = |e: loglens_store::StoreError| LoglensError::new_err(e.to_string());
    let records = columns.finish().map_err(store_err)?.to_pyarrow(py)?;
    if !unparsed {
        return Ok(records.unbind());
    }
    let refused = refused.finish().map_err(store_err)?.to_pyarrow(py)?;
    Ok((records, refused).into_pyobject(py)?.into_any().unbind())
}

/// The template stage of the engine: gives messages template ids in the order it sees them,
/// as `loglens process` does; its state is JSON so a driver can keep or ship it.
#[pyclass(module = "loglens._engine")]
struct TemplateStage {
    stage: loglens_core::template::TemplateStage,
}

#[pymethods]
impl TemplateStage {
    #[new]
    #[pyo3(signature = (state_json=None))]
    fn new(state_json: Option<&str>) -> PyResult<Self> {
        let stage = match state_json {
            None => {
                loglens_core::template::TemplateStage::new(TemplateMiner::new(loglens_engine::miner_config()))
            }
            Some(text) => {
                let state: TemplateStageState = serde_json::from_str(text)
                    .map_err(|e| LoglensError::new_err(format!("template state: {e}")))?;
                loglens_core::template::TemplateStage::from_state(loglens_engine::miner_config(), state)
                    .map_err(|e| LoglensError::new_err(format!("template state: {e}")))?
            }
        };
        Ok(TemplateStage { stage })
    }

    /// The template id of each message, in order.
    fn assign(&mut self, messages: Vec<String>) -> Vec<u64> {
        messages.iter().map(|m| self.stage.assign(m).id.0).collect()
    }

    /// `(id, template, canonical_id, canonical_template)` of every id handed out.
    fn aliases(&mut self) -> Vec<(u64, String, u64, String)> {
        self.stage
            .aliases()
            .into_iter()
            .map(|a| (a.id.0, a.template, a.canonical.0, a.canonical_template))
            .collect()
    }

    /// The stage's state as JSON text.
    fn state_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.stage.state()).map_err(|e| LoglensError::new_err(e.to_string()))
    }

    /// Pickles as its state, so Dask and Ray ship a stage between tasks.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((slf.get_type().into_any(), (slf.borrow().state_json()?,)))
    }
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LoglensError", m.py().get_type::<LoglensError>())?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add("DataError", m.py().get_type::<DataError>())?;
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(parse_lines, m)?)?;
    m.add_function(wrap_pyfunction!(parse_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(error_sql, m)?)?;
    m.add_function(wrap_pyfunction!(dense_metrics, m)?)?;
    m.add_class::<TemplateStage>()?;
    m.add_class::<Run>()?;
    m.add_class::<PyProgressBar>()?;
    m.add_function(wrap_pyfunction!(scan_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(write_group, m)?)?;
    m.add_class::<partials::PyMetricPartial>()?;
    m.add_function(wrap_pyfunction!(detectors::detect_series, m)?)?;
    Ok(())
}
