//! `loglens._engine`: the loglens engine for Python. Parses lines to pyarrow record batches
//! (Arrow C data interface, no copy), mines templates, and runs `process` and `detect` as the
//! CLI does; engine errors become `loglens.LoglensError` with the CLI's messages.

use std::path::PathBuf;

use arrow_pyarrow::ToPyArrow;
use loglens_core::format::ParseContext;
use loglens_core::template::{MinerConfig, TemplateMiner, TemplateStageState};
use loglens_engine::config::{parse_zone, Config};
use loglens_engine::input::{expand, resolve, Parsers};
use loglens_engine::{EngineError, ProcessOptions};
use loglens_store::{Labels, RecordColumns};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    _engine,
    LoglensError,
    PyException,
    "An error of the loglens engine."
);

fn engine_err(context: &str, e: EngineError) -> PyErr {
    LoglensError::new_err(format!("{context}: {e}"))
}

fn load_config(config: Option<PathBuf>) -> PyResult<Config> {
    match config {
        Some(path) => Config::load(&path).map_err(|e| LoglensError::new_err(e.to_string())),
        None => Ok(Config::default()),
    }
}

/// A run id that sorts by start time and differs between concurrent runs (as the CLI's).
fn run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = loglens_core::Timestamp::from_secs(now.as_secs() as i64).to_civil(0);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:x}",
        ts.year,
        ts.month,
        ts.day,
        ts.hour,
        ts.minute,
        ts.second,
        std::process::id()
    )
}

/// The data directory as the CLI picks it: given, else the config's, else ./loglens-data.
fn data_dir_of(config: &Config, given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| config.process.data_dir.as_ref().map(|d| config.base_dir.join(d)))
        .unwrap_or_else(|| PathBuf::from("loglens-data"))
}

/// Runs `loglens process` in this process; returns the run summary as JSON text.
#[pyfunction]
#[pyo3(signature = (paths, config=None, data_dir=None, threads=None, timezone=None, format=None, final_inputs=false, no_templates=false))]
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
) -> PyResult<String> {
    let config = load_config(config)?;
    let paths = if paths.is_empty() {
        if config.inputs.is_empty() {
            return Err(LoglensError::new_err(
                "nothing to process: name files or directories, or a --config with [[input]] entries",
            ));
        }
        config
            .inputs
            .iter()
            .map(|i| config.base_dir.join(&i.path))
            .collect()
    } else {
        paths
    };
    let parsers = Parsers::from_config(&config).map_err(|e| engine_err("config", e))?;
    let (files, failed) = expand(&paths);
    if files.is_empty() {
        if let Some(first) = failed.first() {
            return Err(LoglensError::new_err(format!(
                "{}: {}",
                first.path.display(),
                first.reason
            )));
        }
    }
    let inputs = resolve(files, &config, &parsers, format.as_deref()).map_err(|e| engine_err("inputs", e))?;
    let zone = match &timezone {
        Some(tz) => parse_zone(tz).map_err(|m| LoglensError::new_err(format!("--timezone: {m}")))?,
        None => config.zone(),
    };
    let mut options = ProcessOptions::new(inputs, parsers, data_dir_of(&config, data_dir));
    options.threads = threads.or(config.process.threads).unwrap_or(options.threads);
    options.zone = zone;
    options.final_inputs = final_inputs;
    options.mine_templates = !no_templates;
    options.failed = failed;
    let summary = py
        .detach(|| loglens_engine::process(options, run_id()))
        .map_err(|e| engine_err("processing stopped", e))?;
    serde_json::to_string(&summary).map_err(|e| LoglensError::new_err(e.to_string()))
}

/// Runs `loglens detect` over a data directory; returns the summary as JSON text.
#[pyfunction]
#[pyo3(signature = (data_dir, config=None))]
fn detect(py: Python<'_>, data_dir: PathBuf, config: Option<PathBuf>) -> PyResult<String> {
    let config = load_config(config)?;
    let found = py
        .detach(|| loglens_engine::detect::detect(&data_dir, &config.detect, &run_id(), None))
        .map_err(|e| engine_err("detecting anomalies", e))?;
    serde_json::to_string(&found).map_err(|e| LoglensError::new_err(e.to_string()))
}

/// Parses `lines` with the format `format` into a pyarrow RecordBatch of the records schema
/// (lines that do not parse are skipped; `line` is the 1-based place in `lines`).
#[pyfunction]
#[pyo3(signature = (format, lines, source="<python>"))]
fn parse_lines(py: Python<'_>, format: &str, lines: Vec<String>, source: &str) -> PyResult<Py<PyAny>> {
    let parsers = Parsers::from_config(&Config::default()).map_err(|e| engine_err("formats", e))?;
    let parser = parsers
        .by_name(format)
        .ok_or_else(|| LoglensError::new_err(format!("unknown format {format:?}")))?;
    let ctx = ParseContext::default();
    let labels = Labels {
        source,
        format: parser.name(),
        host: None,
        service: None,
    };
    let mut columns = RecordColumns::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if let Ok(record) = parser.parse(line, &ctx) {
            columns.push(&record, i as u64 + 1, &labels, None);
        }
    }
    let batch = columns
        .finish()
        .map_err(|e| LoglensError::new_err(e.to_string()))?;
    Ok(batch.to_pyarrow(py)?.unbind())
}

/// The template stage of the engine: gives messages template ids in the order it sees them,
/// as `loglens process` does; its state is JSON so a driver can keep or ship it.
#[pyclass]
struct TemplateStage {
    stage: loglens_core::template::TemplateStage,
}

#[pymethods]
impl TemplateStage {
    #[new]
    #[pyo3(signature = (state_json=None))]
    fn new(state_json: Option<&str>) -> PyResult<Self> {
        let stage = match state_json {
            None => loglens_core::template::TemplateStage::new(TemplateMiner::new(MinerConfig::default())),
            Some(text) => {
                let state: TemplateStageState = serde_json::from_str(text)
                    .map_err(|e| LoglensError::new_err(format!("template state: {e}")))?;
                loglens_core::template::TemplateStage::from_state(MinerConfig::default(), state)
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
    fn aliases(&self) -> Vec<(u64, String, u64, String)> {
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
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LoglensError", m.py().get_type::<LoglensError>())?;
    m.add_function(wrap_pyfunction!(process, m)?)?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(parse_lines, m)?)?;
    m.add_class::<TemplateStage>()?;
    Ok(())
}
