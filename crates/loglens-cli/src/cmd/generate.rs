//! `loglens generate`: write a deterministic set of realistic logs with injected incidents,
//! their ground truth, a manifest and a ready-to-use `loglens.toml`, then print a summary.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use loglens_core::format::Format;
use loglens_core::time::parse_duration_secs;
use loglens_core::Timestamp;
use loglens_gen::write::{CONFIG, GROUND_TRUTH, MANIFEST, TRUTH_DIR};
use loglens_gen::{generate_with_threads, GenOptions, GenerateSummary};

use crate::output::{thousands, Output};

/// Options of `loglens generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Output directory: logs/<host>/<file>, ground_truth.json, manifest.json, loglens.toml.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Seed of every random choice: the same seed and options give byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First instant of the span (RFC 3339).
    #[arg(long, default_value = "2026-11-01T00:00:00Z")]
    pub start: String,
    /// Length of the span, whole seconds: numbers with s, m, h or d (90m, 1d, 1h30m); a bare
    /// number is seconds.
    #[arg(long, default_value = "1d")]
    pub duration: String,
    /// Approximate total number of lines.
    #[arg(long, default_value_t = 200_000)]
    pub lines: u64,
    /// Only the streams of these formats (comma-separated: combined, syslog3164, syslog5424,
    /// json, logfmt, pylog) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub formats: Vec<String>,
    /// Inject no incidents (ground_truth.json is then an empty list).
    #[arg(long)]
    pub no_incidents: bool,
    /// Fraction of lines deliberately damaged so they do not parse (0 disables).
    #[arg(long, default_value_t = 0.0005)]
    pub corrupt_rate: f64,
    /// Also write the template ground truth: truth/<log path>.templates labels every line with
    /// the template that wrote it, truth/templates.tsv lists the templates (for
    /// `bench/detect-score`'s grouping accuracy).
    #[arg(long)]
    pub template_truth: bool,
    /// Threads writing files in parallel; the output is the same for any count
    /// [default: the number of cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

impl GenerateArgs {
    fn options(&self) -> anyhow::Result<GenOptions> {
        let start =
            Timestamp::parse_rfc3339(&self.start, 0).map_err(|e| anyhow!("--start {:?}: {e}", self.start))?;
        let duration_secs = parse_duration_secs(&self.duration).context("--duration")?;
        let formats = self
            .formats
            .iter()
            .filter(|f| !f.trim().is_empty())
            .map(|f| f.trim().parse::<Format>().context("--formats"))
            .collect::<anyhow::Result<Vec<Format>>>()?;
        Ok(GenOptions {
            seed: self.seed,
            start,
            duration_secs,
            lines: self.lines,
            formats,
            incidents: !self.no_incidents,
            corrupt_rate: self.corrupt_rate,
            template_truth: self.template_truth,
        })
    }
}

/// Runs `loglens generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let summary = generate_with_threads(&args.out, options, threads)
        .with_context(|| format!("generating logs into {}", args.out.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    print_summary(&summary, elapsed, &mut Output::stdout())
}

fn print_summary(summary: &GenerateSummary, elapsed: f64, out: &mut Output) -> anyhow::Result<()> {
    let lines = summary.lines();
    let rate = if elapsed > 0.0 {
        lines as f64 / elapsed
    } else {
        0.0
    };
    out.line(&format!(
        "Generated {} lines ({} damaged) in {} files, {:.1} MB, {} to {}",
        thousands(lines),
        thousands(summary.corrupt_lines()),
        summary.files.len(),
        summary.bytes() as f64 / 1e6,
        summary.start.to_rfc3339(),
        summary.end.to_rfc3339(),
    ))?;
    out.line(&format!(
        "Took {elapsed:.2} s: {} lines/s",
        thousands(rate as u64)
    ))?;
    out.line("Lines per format:")?;
    for (format, n) in summary.lines_by_format() {
        out.line(&format!("  {format:<11} {:>12}", thousands(n)))?;
    }
    out.line(&format!("Incidents: {}", summary.incidents.len()))?;
    for i in &summary.incidents {
        let who = match &i.host {
            Some(host) => format!("{} on {host}", i.service),
            None => i.service.clone(),
        };
        out.line(&format!(
            "  {:<13} {} .. {}  {:<18} {}",
            i.kind.name(),
            i.start.to_rfc3339(),
            i.end.to_rfc3339(),
            who,
            i.description
        ))?;
    }
    let dir = &summary.out_dir;
    out.line(&format!("Logs:         {}", dir.join("logs").display()))?;
    out.line(&format!("Ground truth: {}", dir.join(GROUND_TRUTH).display()))?;
    out.line(&format!("Manifest:     {}", dir.join(MANIFEST).display()))?;
    out.line(&format!("Config:       {}", dir.join(CONFIG).display()))?;
    let truth = dir.join(TRUTH_DIR);
    if truth.is_dir() {
        out.line(&format!("Templates:    {} (a label per line)", truth.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> GenerateArgs {
        use clap::{FromArgMatches, Parser};
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: GenerateArgs,
        }
        let argv = ["generate", "--out", "x"].iter().chain(extra).copied();
        let matches = <Wrap as clap::CommandFactory>::command().get_matches_from(argv);
        Wrap::from_arg_matches(&matches).expect("parses").args
    }

    #[test]
    fn defaults_and_options() {
        let o = args(&[]).options().expect("valid");
        assert_eq!(o, GenOptions::default());
        let o = args(&[
            "--formats",
            "nginx,json",
            "--duration",
            "2h",
            "--no-incidents",
            "--corrupt-rate",
            "0",
        ])
        .options()
        .expect("valid");
        assert_eq!(o.formats, vec![Format::Combined, Format::Json]);
        assert_eq!((o.duration_secs, o.incidents, o.corrupt_rate), (7200, false, 0.0));
        assert!(args(&["--formats", "xml"]).options().is_err());
        assert!(args(&["--duration", "1w"]).options().is_err());
        // The configuration's duration grammar: bare numbers are seconds, and the span is whole
        // seconds, so a fraction of one is refused rather than dropped.
        assert_eq!(
            args(&["--duration", "90"])
                .options()
                .expect("valid")
                .duration_secs,
            90
        );
        assert_eq!(
            args(&["--duration", "1h30m"])
                .options()
                .expect("valid")
                .duration_secs,
            5400
        );
        let e = args(&["--duration", "1500ms"]).options().expect_err("a fraction");
        assert!(format!("{e:#}").contains("whole number of seconds"), "{e:#}");
        assert!(args(&["--start", "yesterday"]).options().is_err());
    }
}
