//! `loglens detect`: metrics, anomalies and incidents over the data directory, with a table of
//! the incidents found.

use anyhow::Context;
use loglens_engine::detect::{detect, rebuild, DetectSummary};

use crate::cmd::DataDirArgs;
use crate::output::{thousands, Output};

/// Options of `loglens detect`.
#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Incidents to list (most severe, then earliest first).
    #[arg(long, short = 'n', default_value_t = 30)]
    pub limit: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Forget the saved detection state and the metrics, anomalies, incidents and rollups
    /// derived from it, and detect again over every stored record (after changing [detect]
    /// settings, or to repair).
    #[arg(long)]
    pub rebuild: bool,
}

/// Runs `loglens detect`.
pub fn run(args: DetectArgs, out: &mut Output) -> anyhow::Result<()> {
    let config = args.data.config()?;
    let data_dir = super::existing_data_dir(config.data_dir(args.data.data_dir.as_deref()))?;
    let bar = loglens_engine::progress::Bar::unless_json(args.json);
    let progress = bar
        .as_deref()
        .map(|bar| bar as &dyn loglens_engine::progress::Progress);
    let run = if args.rebuild { rebuild } else { detect };
    let summary = run(&data_dir, &config.detect, &loglens_engine::run_id(), progress)
        .with_context(|| format!("detecting anomalies in {}", data_dir.display()))?;
    if args.json {
        return out.line(&serde_json::to_string_pretty(&summary)?);
    }
    print_summary(&summary, &data_dir.display().to_string(), args.limit, out)
}

/// Prints what a detect run found (also used by `process --detect`).
pub fn print_summary(s: &DetectSummary, dir: &str, limit: usize, out: &mut Output) -> anyhow::Result<()> {
    if let Some(why) = &s.rebuilt {
        out.line(&format!("detect: rebuilt from the stored records ({why})"))?;
    }
    if s.late_records > 0 {
        out.line(&format!(
            "detect: {} late records for buckets already judged: kept and counted in rollups/, not judged",
            thousands(s.late_records)
        ))?;
    }
    out.line(&format!(
        "detect: {} new records in {}-second buckets (judged until {}), {} series watched, {} anomalous buckets, {} incidents ({} open) ({:.2} s)",
        thousands(s.records),
        s.bucket_secs,
        s.judged_until.as_deref().unwrap_or("-"),
        thousands(s.series_watched),
        thousands(s.anomalies),
        thousands(s.incidents.len() as u64),
        thousands(s.open_incidents),
        s.elapsed_secs
    ))?;
    if s.incidents.is_empty() {
        return Ok(());
    }
    out.line(&format!(
        "  {:<8} {:<20} {:>6}  {:<13} {:<14} {:<34} {:>10} {:>10}  template",
        "severity", "start", "min", "detector", "metric", "series", "observed", "expected"
    ))?;
    for i in s.incidents.iter().take(limit) {
        let minutes = minutes_between(&i.start, &i.end);
        // A correlated incident shows the series that explains it and how many it merged.
        let series = if i.members > 1 {
            format!("{} (+{} related)", i.root, i.members - 1)
        } else {
            i.series.clone()
        };
        out.line(&format!(
            "  {:<8} {:<20} {:>6}  {:<13} {:<14} {:<34} {:>10} {:>10}  {}",
            i.severity,
            i.start,
            minutes,
            i.detector,
            i.metric,
            series,
            number(i.observed),
            number(i.expected),
            i.template.as_deref().unwrap_or("-")
        ))?;
    }
    if s.incidents.len() > limit {
        out.line(&format!(
            "  … {} more (--limit, or query incidents/)",
            s.incidents.len() - limit
        ))?;
    }
    out.line(&format!(
        "output: {dir}/metrics/date=*/*.parquet, {dir}/rollups/, {dir}/anomalies/, {dir}/incidents/"
    ))
}

fn minutes_between(start: &str, end: &str) -> String {
    let parse = |t: &str| loglens_core::Timestamp::parse_rfc3339(t, 0).ok();
    match (parse(start), parse(end)) {
        (Some(a), Some(b)) => format!("{}", (b.secs() - a.secs()) / 60),
        _ => "?".to_owned(),
    }
}

fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
