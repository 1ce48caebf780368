//! `loglens generate` (stub).

/// Options of `loglens generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {}

/// Runs `loglens generate`.
pub fn run(_args: GenerateArgs) -> anyhow::Result<()> {
    Ok(())
}
