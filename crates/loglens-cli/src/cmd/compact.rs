//! `loglens compact`: partitions written as many small parts rewritten as one file each,
//! swapped in atomically (see `loglens_store::compact_datasets`): hours of `records/` and days
//! of `metrics/` and `rollups/*/`. `loglens serve` runs the same every hour.

use anyhow::Context;
use loglens_store::{compact_datasets, CompactOptions, Compacted, DataDir, DatasetCompacted};
use serde_json::json;

use crate::cmd::DataDirArgs;
use crate::output::{thousands, Output};

/// Options of `loglens compact`.
#[derive(Debug, clap::Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Compact a partition (an hour of records, a day of metrics or rollups) once it holds
    /// this many part files.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..))]
    pub min_parts: u32,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Compacts every hour of records that ended at least an hour before the wall clock (the
/// current one is still written, and late records land in the hour before), and every day of
/// metrics and rollups that began by then (see `CompactOptions::ended_by_secs`).
pub fn compact(data: &DataDir, min_parts: u32) -> anyhow::Result<Compacted> {
    let lock = data
        .lock()
        .context("compaction needs the data directory to itself")?;
    let now = loglens_alert::run::wall_clock().secs();
    let options = CompactOptions {
        min_parts: min_parts as usize,
        ended_by_secs: now - 3600,
    };
    Ok(compact_datasets(data, &lock, &loglens_engine::run_id(), options)?)
}

/// Runs `loglens compact`.
pub fn run(args: CompactArgs, out: &mut Output) -> anyhow::Result<()> {
    let root = super::existing_data_dir(args.data.resolve()?)?;
    let data = DataDir::create(&root)?;
    let done = compact(&data, args.min_parts)?;
    for partition in &done.skipped {
        eprintln!(
            "loglens: warning: {}: parts written by different loglens versions (schemas differ); left as they are",
            partition.display()
        );
    }
    if args.json {
        // The totals keep their keys (they counted records only before metrics and rollups
        // were compacted); `datasets` breaks them down.
        let datasets: serde_json::Map<String, serde_json::Value> = (done.datasets.iter())
            .map(|d| {
                let counts = json!({
                    "partition": d.partition,
                    "partitions": d.partitions,
                    "parts_before": d.parts_before,
                    "rows": d.rows,
                });
                (d.dataset.clone(), counts)
            })
            .collect();
        let summary = json!({
            "partitions": done.partitions,
            "parts_before": done.parts_before,
            "rows": done.rows,
            "skipped": done.skipped,
            "datasets": datasets,
        });
        return out.line(&summary.to_string());
    }
    if done.partitions == 0 {
        return out.line(&format!(
            "nothing to compact: no ended hour or day holds {} part files or more",
            args.min_parts
        ));
    }
    out.line(&format!(
        "compacted {} partitions: {} part files into {}, {} rows",
        done.partitions,
        thousands(done.parts_before),
        done.partitions,
        thousands(done.rows)
    ))?;
    for d in done.datasets.iter().filter(|d| d.partitions > 0) {
        out.line(&format!(
            "  {}: {}, {} part files into {}, {} rows",
            d.dataset,
            partitions(d),
            thousands(d.parts_before),
            d.partitions,
            thousands(d.rows)
        ))?;
    }
    Ok(())
}

/// `1 hour`, `3 days`: the partitions of one dataset compacted.
pub fn partitions(d: &DatasetCompacted) -> String {
    let plural = if d.partitions == 1 { "" } else { "s" };
    format!("{} {}{plural}", thousands(d.partitions), d.partition)
}
