//! Throughput of loglens, per built-in format.
//!
//! * `parse/<format>`: one parser over ~10k realistic lines held in memory (no I/O, no
//!   threads): what a single core parses, in lines/s and MiB/s.
//! * `process/<format>`: the whole engine (`loglens_engine::process`: read the file, parse on
//!   every core, write partitioned Parquet into a fresh temporary data directory) over a
//!   ~200k-line file per format, in lines/s and MiB/s.
//!
//! The lines come from the project's generator restricted to one format (`common`, which it
//! does not generate, from the benchmark synthesizer); see `loglens_gen::workload`.
//!
//! Run `cargo bench -p loglens-benches` (about 2–3 minutes), or select benchmarks with a filter:
//! `cargo bench -p loglens-benches -- parse/` or `-- process/combined`. Environment knobs:
//! `LOGLENS_BENCH_PARSE_LINES`, `LOGLENS_BENCH_PROCESS_LINES`, `LOGLENS_BENCH_THREADS`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use loglens_core::format::Format;
use loglens_engine::config::Config;
use loglens_engine::input::{InputFile, Parsers};
use loglens_engine::{ProcessOptions, ProcessSummary};
use loglens_gen::workload::{context, workload};

const PARSE_LINES: usize = 10_000;
const PROCESS_LINES: usize = 200_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn threads() -> usize {
    env_usize(
        "LOGLENS_BENCH_THREADS",
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    )
}

fn parse(c: &mut Criterion) {
    let n = env_usize("LOGLENS_BENCH_PARSE_LINES", PARSE_LINES);
    let ctx = context();
    let mut group = c.benchmark_group("parse");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for format in Format::ALL {
        let (text, source) = workload(format, n, 1);
        let lines: Vec<&str> = text.lines().collect();
        eprintln!(
            "parse/{format}: {} lines, {} bytes from {source:?}",
            lines.len(),
            text.len()
        );
        let parser = format.parser();
        let ok = lines.iter().filter(|l| parser.parse(l, &ctx).is_ok()).count();
        if ok < lines.len() {
            eprintln!(
                "warning: parse/{format}: only {ok} of {} lines parse; the figure measures the error path",
                lines.len()
            );
        }
        group.throughput(Throughput::ElementsAndBytes {
            elements: lines.len() as u64,
            bytes: text.len() as u64,
        });
        group.bench_function(format.name(), |b| {
            b.iter(|| {
                let mut parsed = 0usize;
                for line in &lines {
                    parsed += usize::from(black_box(parser.parse(black_box(line), &ctx)).is_ok());
                }
                parsed
            })
        });
    }
    group.finish();
}

/// One run of the engine over `input`, forced to `format`, into `data_dir`.
fn run_engine(input: &Path, format: Format, data_dir: PathBuf, threads: usize, run: u64) -> ProcessSummary {
    let parsers = Parsers::from_config(&Config::default()).expect("built-in parsers");
    let parser = parsers.by_name(format.name());
    let inputs = vec![InputFile {
        path: input.to_owned(),
        parser,
        host: None,
        service: None,
    }];
    // The CLI's defaults (fresh data directory, so no checkpoints), except: parse and write
    // only, comparable with the peers (template mining has its own bench), and the input is
    // complete.
    let mut options = ProcessOptions::new(inputs, parsers, data_dir);
    options.threads = threads;
    options.mine_templates = false;
    options.final_inputs = true;
    loglens_engine::process(options, format!("bench-{run}")).expect("loglens_engine::process")
}

fn process(c: &mut Criterion) {
    let n = env_usize("LOGLENS_BENCH_PROCESS_LINES", PROCESS_LINES);
    let threads = threads();
    let scratch = tempfile::Builder::new()
        .prefix("loglens-bench-")
        .tempdir()
        .expect("temporary directory");
    let mut group = c.benchmark_group("process");
    // Iterations take a fraction of a second: flat sampling (the same iteration count in every
    // sample) keeps 10 samples within the measurement time instead of 55 iterations.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for format in Format::ALL {
        let input = scratch.path().join(format!("{format}.log"));
        let (text, source) = workload(format, n, 7);
        let n = text.lines().count();
        let bytes = text.len() as u64;
        std::fs::write(&input, text).expect("writing the benchmark input");
        eprintln!("process/{format}: {n} lines, {bytes} bytes from {source:?}");
        group.throughput(Throughput::ElementsAndBytes {
            elements: n as u64,
            bytes,
        });
        let mut run = 0u64;
        let mut checked = false;
        group.bench_function(format.name(), |b| {
            b.iter_batched(
                || tempfile::tempdir_in(scratch.path()).expect("temporary data directory"),
                |out| {
                    run += 1;
                    let summary = run_engine(&input, format, out.path().join("data"), threads, run);
                    assert_eq!(summary.lines, n as u64, "process/{format}: lines read");
                    if !checked && summary.parsed_total() < summary.lines {
                        eprintln!(
                            "warning: process/{format}: {} of {} lines parsed; the rest went to unparsed/",
                            summary.parsed_total(),
                            summary.lines
                        );
                    }
                    checked = true;
                    // Returned so the data directory is deleted outside the timed section.
                    out
                },
                BatchSize::PerIteration,
            )
        });
        std::fs::remove_file(&input).expect("removing the benchmark input");
    }
    group.finish();
}

criterion_group!(benches, parse, process);
criterion_main!(benches);
