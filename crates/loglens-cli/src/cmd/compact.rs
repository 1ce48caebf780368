//! `loglens compact`: hours of `records/` written as many small parts (each `process` run and
//! each serve flush adds its own) rewritten as one file each, swapped in atomically (see
//! `loglens_store::compact_records`). `loglens serve` runs the same every hour.

use anyhow::Context;
use loglens_store::{compact_records, CompactOptions, Compacted, DataDir};
use serde_json::json;

use crate::cmd::DataDirArgs;
use crate::output::{thousands, Output};

/// Options of `loglens compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Compact an hour once it holds this many part files.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..))]
    pub min_parts: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Compacts every hour that ended at least an hour before the wall clock: the current one
/// may still be written (and late records land in the one before).
pub fn compact(data: &DataDir, min_parts: u32) -> anyhow::Result<Compacted> {
    let lock = data
        .lock()
        .context("compaction needs the data directory to itself")?;
    let now = loglens_alert::run::wall_clock().secs();
    let options = CompactOptions {
        min_parts: min_parts as usize,
        ended_by_secs: now - 3600,
    };
    Ok(compact_records(data, &lock, &loglens_engine::run_id(), options)?)
}

/// Runs `loglens compact`.
pub fn run(args: CompactArgs, out: &mut Output) -> anyhow::Result<()> {
    let root = args.data.resolve()?;
    let data = DataDir::create(&root)?;
    let done = compact(&data, args.min_parts)?;
    for hour in &done.skipped {
        eprintln!(
            "loglens: warning: {}: parts written by different loglens versions (schemas differ); left as they are",
            hour.display()
        );
    }
    if args.json {
        let summary = json!({
            "partitions": done.partitions,
            "parts_before": done.parts_before,
            "rows": done.rows,
            "skipped": done.skipped,
        });
        return out.line(&summary.to_string());
    }
    out.line(&format!(
        "compacted {} hours: {} part files into {}, {} records",
        done.partitions,
        thousands(done.parts_before),
        done.partitions,
        thousands(done.rows)
    ))
}
