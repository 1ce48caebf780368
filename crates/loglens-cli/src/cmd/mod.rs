//! One module per subcommand.

pub mod alert;
pub mod dashboard;
pub mod detect;
pub mod formats;
pub mod generate;
pub mod process;
pub mod serve;
pub mod templates;

use std::path::PathBuf;

use loglens_engine::Config;

/// Where the data directory is: `--data-dir`, else the config's `[process] data_dir`, else
/// `./loglens-data`. Shared by every command that reads or writes it.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    /// Configuration file (its `[process] data_dir` is used when --data-dir is not given).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The data directory [default: the config's, else ./loglens-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArgs {
    /// The configuration, or the defaults when no file was named.
    pub fn config(&self) -> anyhow::Result<Config> {
        Ok(match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        })
    }

    /// The data directory these options name.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        Ok(data_dir_of(&self.config()?, self.data_dir.as_ref()))
    }
}

/// The data directory: the one given, else the config's, else `./loglens-data`.
pub fn data_dir_of(config: &Config, given: Option<&PathBuf>) -> PathBuf {
    given
        .cloned()
        .or_else(|| config.process.data_dir.as_ref().map(|d| config.base_dir.join(d)))
        .unwrap_or_else(|| PathBuf::from("loglens-data"))
}

/// A run id that sorts by start time and differs between concurrent runs.
pub fn run_id() -> String {
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
