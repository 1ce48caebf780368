//! One module per subcommand.

pub mod alert;
pub mod compact;
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
        Ok(self.config()?.data_dir(self.data_dir.as_deref()))
    }
}
