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

/// `dir`, if it exists: commands that read what `process` wrote (detect, alert run, compact)
/// stop on a data directory that is not there, rather than create an empty one and report
/// nothing found (a mistyped `--data-dir` looked like a quiet week).
pub fn existing_data_dir(dir: PathBuf) -> anyhow::Result<PathBuf> {
    if dir.is_dir() {
        return Ok(dir);
    }
    anyhow::bail!(
        "no data directory at {}: run `loglens process` on some logs first, or name the one it wrote with --data-dir (or the config's [process] data_dir)",
        dir.display()
    )
}
