//! `loglens process`: parse files and directories into the data directory and print what was
//! read, parsed, kept as unparsed and written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use loglens_engine::config::Config;
use loglens_engine::progress::Progress;
use loglens_engine::{ProcessRequest, ProcessSummary, RunStatus};

use crate::output::{thousands, Output};

/// Options of `loglens process`.
#[derive(Debug, clap::Args)]
pub struct ProcessArgs {
    /// Files and directories to read (plain or gzip; `-` reads standard input). Default: the
    /// config's inputs.
    pub paths: Vec<PathBuf>,
    /// Configuration file with inputs, labels and user formats.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The data directory to write [default: the config's, else ./loglens-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Parse every file with this format instead of detecting it.
    #[arg(long)]
    pub format: Option<String>,
    /// Worker threads [default: the number of cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Zone of timestamps that carry none: Europe/Paris (daylight saving followed) or +02:00
    /// [default: UTC].
    #[arg(long)]
    pub timezone: Option<String>,
    /// Read every file from the start, ignoring the checkpoints of earlier runs.
    #[arg(long)]
    pub reprocess: bool,
    /// The inputs are complete: read an unterminated last line now instead of holding it back
    /// until its newline arrives (files still being written hold it back by default).
    #[arg(long = "final")]
    pub final_inputs: bool,
    /// Longest line kept whole, in bytes; a longer line is stored truncated as an unparsed row
    /// with its length [default: 1048576].
    #[arg(long)]
    pub max_line_bytes: Option<usize>,
    /// Skip template mining (records get no `template_id`).
    #[arg(long)]
    pub no_templates: bool,
    /// Run `loglens detect` after processing (metrics, anomalies, incidents).
    #[arg(long)]
    pub detect: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Exit status of a run where some inputs could not be read and the rest was committed.
pub const EXIT_PARTIAL: u8 = 3;

/// How `loglens process` exits, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  every input was read and committed
  3  partial: some inputs could not be read (missing, unreadable, a truncated .gz); each is
     listed with its reason, everything else was committed, and the next run retries them
     (a file that failed midway resumes after its last whole line, which was committed)
  1  error: nothing was committed (bad config, a write error), or no input could be read

A run commits atomically: killed at any moment, the next run completes or removes what it
left, so every line is stored exactly once.";

/// Runs `loglens process`.
pub fn run(args: ProcessArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let request = ProcessRequest {
        paths: args.paths.clone(),
        data_dir: args.data_dir.clone(),
        format: args.format.clone(),
        threads: args.threads,
        timezone: args.timezone.clone(),
        reprocess: args.reprocess,
        final_inputs: args.final_inputs,
        max_line_bytes: args.max_line_bytes,
        no_templates: args.no_templates,
    };
    let mut options = request.options(&config)?;
    let bar = loglens_engine::progress::Bar::unless_json(args.json);
    options.progress = bar.clone().map(|bar| bar as Arc<dyn Progress>);
    let summary = loglens_engine::process(options, loglens_engine::run_id()).context("processing stopped")?;
    for warning in &summary.warnings {
        eprintln!("loglens: warning: {warning}");
    }
    for failed in &summary.failed {
        eprintln!(
            "loglens: warning: {}: not read: {}",
            failed.path.display(),
            failed.reason
        );
    }
    if args.json {
        out.line(&serde_json::to_string_pretty(&summary)?)?;
    } else {
        print_summary(&summary, out)?;
    }
    if summary.status == RunStatus::Failed {
        bail!(
            "no input could be read ({} failed; see the warnings above)",
            summary.failed.len()
        );
    }
    if args.detect {
        let found = loglens_engine::detect::detect(
            &summary.data_dir,
            &config.detect,
            &loglens_engine::run_id(),
            bar.as_deref().map(|bar| bar as &dyn Progress),
        )
        .context("detecting anomalies")?;
        if args.json {
            out.line(&serde_json::to_string_pretty(&found)?)?;
        } else {
            crate::cmd::detect::print_summary(&found, &summary.data_dir.display().to_string(), 30, out)?;
        }
    }
    Ok(match summary.status {
        RunStatus::Partial => ExitCode::from(EXIT_PARTIAL),
        _ => ExitCode::SUCCESS,
    })
}

fn print_summary(s: &ProcessSummary, out: &mut Output) -> anyhow::Result<()> {
    let secs = s.elapsed_secs.max(1e-9);
    out.line(&format!(
        "processed {} files: {} lines, {:.1} MB in {:.2} s ({} lines/s, {:.1} MB/s)",
        s.files,
        thousands(s.lines),
        s.bytes as f64 / 1e6,
        s.elapsed_secs,
        thousands((s.lines as f64 / secs) as u64),
        s.bytes as f64 / 1e6 / secs
    ))?;
    if !s.failed.is_empty() {
        out.line(&format!(
            "  {} inputs not read (retried by the next run):",
            s.failed.len()
        ))?;
        for failed in &s.failed {
            out.line(&format!("    {}: {}", failed.path.display(), failed.reason))?;
        }
    }
    if s.files_resumed + s.files_unchanged > 0 {
        out.line(&format!(
            "  {} files continued from their checkpoint, {} unchanged since the last run (--reprocess reads all again)",
            s.files_resumed, s.files_unchanged
        ))?;
    }
    if s.files_duplicate > 0 {
        out.line(&format!(
            "  {} files skipped: the same content as another input (a rotated copy), read once",
            s.files_duplicate
        ))?;
    }
    if s.lines_held_back > 0 {
        out.line(&format!(
            "  {} unterminated last lines held back until their newline arrives (--final reads them now)",
            s.lines_held_back
        ))?;
    }
    // Reasons are counted by their full text; the most frequent come first.
    const SHOWN_REASONS: usize = 12;
    let mut reasons: Vec<(&String, &u64)> = s.unparsed.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let row = |n: u64, label: &str| format!("  {:>11}  {label}", thousands(n));
    out.line(&row(s.parsed_total(), "parsed"))?;
    for (format, n) in &s.parsed {
        out.line(&row(*n, &format!("  {format}")))?;
    }
    if s.continuation_lines > 0 {
        out.line(&row(
            s.continuation_lines,
            "  of which continuation lines (stack traces…) joined to the record before them",
        ))?;
    }
    out.line(&row(
        s.unparsed_total(),
        "unparsed (kept with file, line and reason in unparsed/)",
    ))?;
    for (reason, n) in reasons.iter().take(SHOWN_REASONS) {
        out.line(&row(**n, &format!("  {reason}")))?;
    }
    if reasons.len() > SHOWN_REASONS {
        let rest: u64 = reasons[SHOWN_REASONS..].iter().map(|(_, n)| **n).sum();
        out.line(&row(
            rest,
            &format!("  ({} more reasons)", reasons.len() - SHOWN_REASONS),
        ))?;
    }
    if s.invalid_utf8 > 0 {
        out.line(&format!(
            "  lines with invalid UTF-8 (replaced, still parsed): {}",
            thousands(s.invalid_utf8)
        ))?;
    }
    out.line(&row(
        s.records_written,
        &format!("records written in {} files", s.record_files),
    ))?;
    if s.templates > 0 {
        out.line(&row(
            s.templates,
            &format!(
                "templates ({} new; `loglens templates` lists them)",
                s.templates_new
            ),
        ))?;
    }
    let dir = s.data_dir.display();
    out.line(&format!(
        "output: {dir}/records/date=*/hour=*/*.parquet, {dir}/unparsed/*.parquet, {dir}/templates/"
    ))?;
    out.line(&format!(
        "query (DuckDB SQL; pandas and polars read the same files): SELECT format, count(*) FROM read_parquet('{dir}/records/**/*.parquet', hive_partitioning=true) GROUP BY 1"
    ))
}
