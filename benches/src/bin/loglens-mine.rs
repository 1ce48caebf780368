//! `loglens-mine FILE [--format F] [--runs N] [--messages-out PATH]`: template-mining throughput
//! on one core. Parses every line of FILE with the format's parser (outside the timing), keeps
//! the message parts in memory, then mines them with `TemplateMiner` and the default
//! `MinerConfig`, RUNS times on fresh miners, and prints the fastest run as one JSON object
//! (wall seconds and lines/s, and the least CPU time of the mining thread: on a machine busy
//! with other work the wall clock overstates the cost).
//! `--messages-out` writes the message parts, one a line, so a peer (bench/drain3_peer.py)
//! mines exactly the same text. `--distinct` also counts the different masked texts.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use loglens_core::format::Format;
use loglens_core::template::{Masker, MinerConfig, TemplateMiner};

const USAGE: &str =
    "usage: loglens-mine FILE [--format syslog3164] [--runs 3] [--messages-out PATH] [--distinct]";

struct Args {
    file: PathBuf,
    format: Format,
    runs: usize,
    messages_out: Option<PathBuf>,
    distinct: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut file = None;
    let mut args = Args {
        file: PathBuf::new(),
        format: Format::Syslog3164,
        runs: 3,
        messages_out: None,
        distinct: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--format" => {
                let v = value("--format")?;
                args.format = v.parse().map_err(|_| format!("unknown format {v}"))?;
            }
            "--runs" => {
                let v = value("--runs")?;
                args.runs = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--runs: not a positive number: {v}"))?;
            }
            "--messages-out" => args.messages_out = Some(PathBuf::from(value("--messages-out")?)),
            "--distinct" => args.distinct = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other if file.is_none() && !other.starts_with('-') => file = Some(PathBuf::from(other)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    args.file = file.ok_or_else(|| USAGE.to_owned())?;
    Ok(args)
}

/// The message part of every line that parses (lines that do not are counted, not mined).
fn messages(text: &str, format: Format) -> (Vec<String>, usize) {
    let parser = format.parser();
    let ctx = loglens_gen::workload::context();
    let mut out = Vec::new();
    let mut unparsed = 0;
    for line in text.lines() {
        match parser.parse(line, &ctx) {
            Ok(record) => out.push(record.message.into_owned()),
            Err(_) => unparsed += 1,
        }
    }
    (out, unparsed)
}

/// CPU seconds this thread has run (user + system), from `/proc/thread-self/stat` in clock
/// ticks of 1/100 s; `None` where that file does not exist. Why CPU time too? On a loaded
/// machine the wall clock also counts the time other processes held the core.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which can hold spaces) start at field 3; utime is 14.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// One run's figures.
struct Run {
    secs: f64,
    cpu_secs: Option<f64>,
    clusters: usize,
    templates: usize,
}

/// Mines every message in one fresh miner.
fn mine(messages: &[String]) -> Run {
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    let mut miner = TemplateMiner::new(MinerConfig::default());
    for m in messages {
        std::hint::black_box(miner.add(m));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_seconds()
        .zip(cpu_start)
        .map(|(end, start)| end - start);
    Run {
        secs,
        cpu_secs,
        clusters: miner.cluster_count(),
        templates: miner.snapshot().templates().len(),
    }
}

fn write_messages(path: &PathBuf, messages: &[String]) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for m in messages {
        // A message never holds a line break in line-oriented formats; keep one a line anyway.
        writeln!(out, "{}", m.replace(['\n', '\r'], " "))?;
    }
    out.flush()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loglens-mine: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let (messages, unparsed) = messages(&text, args.format);
    drop(text);
    if let Some(path) = &args.messages_out {
        if let Err(e) = write_messages(path, &messages) {
            eprintln!("loglens-mine: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let runs: Vec<Run> = (0..args.runs).map(|_| mine(&messages)).collect();
    let Some(best) = runs.iter().min_by(|a, b| a.secs.total_cmp(&b.secs)) else {
        return ExitCode::FAILURE;
    };
    let best_cpu = runs.iter().filter_map(|r| r.cpu_secs).min_by(f64::total_cmp);
    // How many different texts the masker makes of the messages (what the miner's match
    // cache keys on), outside the timing.
    let distinct = args.distinct.then(|| {
        let config = MinerConfig::default();
        let masker = Masker::new(config.masks, config.builtin);
        let texts: std::collections::HashSet<String> = messages.iter().map(|m| masker.mask(m)).collect();
        texts.len()
    });
    let lines = messages.len();
    let bytes: usize = messages.iter().map(String::len).sum();
    let report = serde_json::json!({
        "tool": "loglens",
        "lines": lines,
        "unparsed": unparsed,
        "message_bytes": bytes,
        "seconds": best.secs,
        "lines_per_sec": lines as f64 / best.secs.max(1e-9),
        "cpu_seconds": best_cpu,
        "lines_per_cpu_sec": best_cpu.map(|c| lines as f64 / c.max(1e-9)),
        "masked_distinct": distinct,
        "clusters": best.clusters,
        "templates": best.templates,
        "runs": args.runs,
    });
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{report}").is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
