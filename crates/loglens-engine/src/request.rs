//! What a user asks `process` for (the CLI's flags, the Python package's arguments), turned
//! into the engine's [`ProcessOptions`] one way for both: inputs from the paths or the config,
//! the data directory, zone, limits and bucket width.

use std::path::PathBuf;

use crate::config::{parse_zone, Config};
use crate::input::{expand, resolve, Parsers};
use crate::{EngineError, ProcessOptions};

/// `loglens process`'s arguments, before they are checked against the configuration.
#[derive(Debug, Clone, Default)]
pub struct ProcessRequest {
    /// Files and directories to read; empty means the config's `[[input]]`s.
    pub paths: Vec<PathBuf>,
    /// The data directory (default: the config's, else `./loglens-data`).
    pub data_dir: Option<PathBuf>,
    /// A format every file is parsed with instead of detection.
    pub format: Option<String>,
    /// Worker threads (default: the config's, else every core).
    pub threads: Option<usize>,
    /// Zone of timestamps that carry none (default: the config's, else UTC).
    pub timezone: Option<String>,
    /// Read every file from the start, ignoring checkpoints.
    pub reprocess: bool,
    /// The inputs are complete: read an unterminated last line now.
    pub final_inputs: bool,
    /// Longest line kept whole, in bytes.
    pub max_line_bytes: Option<usize>,
    /// Skip template mining.
    pub no_templates: bool,
}

impl ProcessRequest {
    /// The engine's options for this request under `config`. Inputs that cannot be read are
    /// carried in the options (the run reports them) unless none can, which is an error naming
    /// the first.
    pub fn options(&self, config: &Config) -> Result<ProcessOptions, EngineError> {
        let paths = if self.paths.is_empty() {
            if config.inputs.is_empty() {
                return Err(EngineError::NothingToProcess);
            }
            (config.inputs.iter())
                .map(|i| config.base_dir.join(&i.path))
                .collect()
        } else {
            self.paths.clone()
        };
        let parsers = Parsers::from_config(config)?;
        let (files, failed) = expand(&paths);
        if let (true, Some(first)) = (files.is_empty(), failed.first()) {
            return Err(EngineError::Input {
                path: first.path.clone(),
                reason: first.reason.clone(),
            });
        }
        let inputs = resolve(files, config, &parsers, self.format.as_deref())?;
        let zone = match &self.timezone {
            Some(tz) => parse_zone(tz).map_err(|m| EngineError::setting("--timezone", m))?,
            None => config.zone(),
        };
        let mut options = ProcessOptions::new(inputs, parsers, config.data_dir(self.data_dir.as_deref()));
        options.threads = self.threads.or(config.process.threads).unwrap_or(options.threads);
        options.zone = zone;
        options.reprocess = self.reprocess;
        options.final_inputs = self.final_inputs;
        options.max_line_bytes = self.max_line_bytes.unwrap_or(options.max_line_bytes).max(1);
        options.mine_templates = !self.no_templates;
        options.failed = failed;
        options.bucket_secs =
            (config.detect.bucket_secs()).map_err(|e| EngineError::setting("[detect]", e))?;
        Ok(options)
    }
}
