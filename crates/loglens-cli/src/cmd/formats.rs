//! `loglens formats`: which formats loglens knows (`list`) and how each one reads the first
//! lines of a file (`test`): the format detection picks, and why the others fail.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;
use loglens_core::format::multiline::Continuation;
use loglens_core::format::{sample_verdicts, LineVerdict};
use loglens_core::format::{Format, ParseContext};
use loglens_engine::config::parse_zone;
use loglens_engine::input::{modified, Parsers};

use crate::output::Output;

/// Options of `loglens formats`.
#[derive(Debug, clap::Args)]
pub struct FormatsArgs {
    #[command(subcommand)]
    pub command: FormatsCommand,
}

/// What `loglens formats` does.
#[derive(Debug, clap::Subcommand)]
pub enum FormatsCommand {
    /// List the formats: the config's user formats, the built-ins and the generic fallback.
    List {
        /// Configuration file with user formats (`[[format]]`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show how each format reads the first lines of FILE (plain or gzip), and which one
    /// detection picks for it.
    Test {
        /// The log file to try.
        file: PathBuf,
        /// Configuration file with user formats (`[[format]]`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Lines to try (detection samples the first 100).
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        /// Zone of timestamps that carry none [default: the config's, else UTC].
        #[arg(long)]
        timezone: Option<String>,
    },
}

/// Runs `loglens formats`.
pub fn run(args: FormatsArgs, out: &mut Output) -> anyhow::Result<()> {
    match args.command {
        FormatsCommand::List { config } => list(&parsers(config.as_deref())?.0, out),
        FormatsCommand::Test {
            file,
            config,
            lines,
            timezone,
        } => {
            let (parsers, zone) = parsers(config.as_deref())?;
            let zone = match timezone {
                Some(tz) => parse_zone(&tz).map_err(|m| anyhow::anyhow!("--timezone: {m}"))?,
                None => zone,
            };
            let ctx = ParseContext {
                reference: modified(&file),
                zone,
            };
            let sample = first_lines(&file, lines.max(1))?;
            test(&parsers, &ctx, &file, &sample, out)
        }
    }
}

fn parsers(config: Option<&Path>) -> anyhow::Result<(Parsers, loglens_core::zone::LocalZone)> {
    let config = match config {
        Some(path) => loglens_engine::Config::load(path)?,
        None => loglens_engine::Config::default(),
    };
    Ok((Parsers::from_config(&config)?, config.zone()))
}

fn list(parsers: &Parsers, out: &mut Output) -> anyhow::Result<()> {
    out.line(&format!("{:<16}  {}", "format", "what it reads (example)"))?;
    for parser in parsers.iter() {
        let name = parser.name();
        let (what, example) = match name.parse::<Format>() {
            Ok(format) if format.name() == name => (format.description(), Some(format.example())),
            _ if name == "generic" => (
                "fallback: a line that starts with a timestamp, then an optional level and the message",
                None,
            ),
            _ => (
                parser
                    .description()
                    .unwrap_or("user format from the config ([[format]] regex)"),
                parser.example(),
            ),
        };
        out.line(&format!("{name:<16}  {what}"))?;
        if let Some(example) = example {
            out.line(&format!("{:<16}    {example}", ""))?;
        }
    }
    Ok(())
}

/// Up to `n` lines from the start of `path` (gzip decompressed), without their terminators.
fn first_lines(path: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut reader: Box<dyn Read> = Box::new(file);
    if path.extension().is_some_and(|e| e == "gz") {
        reader = Box::new(flate2::read::MultiGzDecoder::new(reader));
    }
    let mut lines = Vec::new();
    for (i, line) in BufReader::new(reader).split(b'\n').take(n).enumerate() {
        let bytes = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        let text = String::from_utf8_lossy(&bytes);
        lines.push(text.strip_suffix('\r').unwrap_or(&text).to_owned());
    }
    Ok(lines)
}

fn test(
    parsers: &Parsers,
    ctx: &ParseContext,
    path: &Path,
    sample: &[String],
    out: &mut Output,
) -> anyhow::Result<()> {
    let lines: Vec<&str> = sample.iter().map(String::as_str).collect();
    let detected = parsers.detect(&lines, ctx);
    out.line(&format!(
        "{}: {} lines tried; detected format: {} ({})",
        path.display(),
        lines.len(),
        detected.parser.as_ref().map_or(
            "none (no format reads at least half of them: they would go to unparsed/)",
            |p| p.name()
        ),
        detected.reason
    ))?;
    let detected = detected.parser;
    out.line("")?;
    out.line(&format!(
        "{:<16}  {:>6}  {:>6}  first failure",
        "format", "parsed", "joined"
    ))?;
    // Counted as detection counts them: stack traces' lines and `#` headers are not records,
    // and a format that joins the lines it refuses is not failed by those it joins.
    for parser in parsers.iter() {
        let verdicts = sample_verdicts(parser.as_ref(), &lines, ctx);
        let count = |want: fn(&LineVerdict) -> bool| verdicts.iter().filter(|v| want(v)).count();
        let read = count(|v| *v == LineVerdict::Read);
        let joined = count(|v| *v == LineVerdict::Joined);
        let scored = read + joined + count(|v| matches!(v, LineVerdict::Refused(_)));
        let failure = verdicts
            .iter()
            .enumerate()
            .find_map(|(i, v)| match v {
                LineVerdict::Refused(e) => Some(format!("line {}: {e}", i + 1)),
                _ => None,
            })
            .unwrap_or_default();
        out.line(&format!(
            "{:<16}  {:>6}  {:>6}  {failure}",
            parser.name(),
            format!("{read}/{scored}"),
            joined
        ))?;
    }
    out.line("")?;
    out.line("per line (the detected format, else the first that reads it):")?;
    // Whether the line before is a record of the detected format (or joined one), as the
    // pipeline sees it: a continuation line right after joins it.
    let mut open = false;
    let continuation = detected
        .as_ref()
        .map_or(Continuation::default(), |p| p.continuation());
    for (i, line) in lines.iter().enumerate() {
        let read_by_detected = detected.as_ref().is_some_and(|p| p.parse(line, ctx).is_ok());
        if !read_by_detected && open && continuation.joins(line) {
            out.line(&format!(
                "{:>5}  {:<24}  {}",
                i + 1,
                "joins the record above",
                clip(line, 80)
            ))?;
            continue;
        }
        open = read_by_detected;
        let reader = detected
            .as_ref()
            .filter(|_| read_by_detected)
            .or_else(|| parsers.iter().find(|p| p.parse(line, ctx).is_ok()));
        let verdict = match (reader, &detected) {
            (Some(p), _) => p.name().to_owned(),
            (None, Some(d)) => match d.parse(line, ctx) {
                Err(e) => format!("unparsed ({}: {e})", d.name()),
                Ok(_) => d.name().to_owned(),
            },
            (None, None) => "unparsed (no format reads it)".to_owned(),
        };
        out.line(&format!("{:>5}  {verdict:<24}  {}", i + 1, clip(line, 80)))?;
    }
    Ok(())
}

/// The first `n` characters of `line`, with an ellipsis when cut.
fn clip(line: &str, n: usize) -> String {
    match line.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}
