//! The file side of `loglens generate`: streams the generator's chunks into
//! `DIR/logs/<host>/<file>`, sets each file's mtime to its last line, and writes the ground
//! truth, the manifest and a ready-to-use `loglens.toml`.
//!
//! Memory stays bounded whatever the size: the generator hands over about 1 MiB of text at a
//! time, which goes straight through a buffered writer per file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use loglens_core::Timestamp;
use serde::Serialize;

use crate::{GenError, GenOptions, Generator, InjectedIncident, StreamInfo};

/// Why the generated logs could not be written; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The options cannot be used.
    #[error(transparent)]
    Options(#[from] GenError),
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A writer thread panicked (a bug).
    #[error("a writer thread panicked")]
    Panic,
}

impl WriteError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        WriteError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// One written file and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Where, what format, which host and service.
    pub stream: StreamInfo,
    /// Lines written (damaged ones included).
    pub lines: u64,
    /// Lines deliberately damaged so they do not parse.
    pub corrupt_lines: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Time of the last line (also the file's mtime), `None` for an empty file.
    pub last: Option<Timestamp>,
}

/// What `generate` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    /// The output directory.
    pub out_dir: PathBuf,
    /// The files, in the generator's stream order.
    pub files: Vec<FileSummary>,
    /// The injected incidents (also in `ground_truth.json`).
    pub incidents: Vec<InjectedIncident>,
    /// First instant of the span.
    pub start: Timestamp,
    /// First instant after the span.
    pub end: Timestamp,
}

impl GenerateSummary {
    /// Total lines over every file.
    pub fn lines(&self) -> u64 {
        self.files.iter().map(|f| f.lines).sum()
    }

    /// Total damaged lines.
    pub fn corrupt_lines(&self) -> u64 {
        self.files.iter().map(|f| f.corrupt_lines).sum()
    }

    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Lines per format name, sorted by name.
    pub fn lines_by_format(&self) -> BTreeMap<&'static str, u64> {
        let mut by = BTreeMap::new();
        for f in &self.files {
            *by.entry(f.stream.format.name()).or_insert(0) += f.lines;
        }
        by
    }
}

/// The ground-truth file name inside the output directory.
pub const GROUND_TRUTH: &str = "ground_truth.json";
/// The manifest file name inside the output directory.
pub const MANIFEST: &str = "manifest.json";
/// The configuration file name inside the output directory.
pub const CONFIG: &str = "loglens.toml";
/// With [`GenOptions::template_truth`]: the directory of the template ground truth, which
/// holds `<log path>.templates` per log file (one label per line) and [`TRUTH_TEMPLATES`].
pub const TRUTH_DIR: &str = "truth";
/// Inside [`TRUTH_DIR`]: every label with its template text, tab-separated.
pub const TRUTH_TEMPLATES: &str = "templates.tsv";

/// Generates logs into `out_dir` (created if missing; files of an earlier run with the same
/// names are replaced), on as many threads as there are cores.
pub fn generate(out_dir: &Path, options: GenOptions) -> Result<GenerateSummary, WriteError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    generate_with_threads(out_dir, options, threads)
}

/// A file being written, and its path for errors.
type Writer = (BufWriter<File>, PathBuf);

fn create(path: PathBuf) -> Result<Writer, WriteError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| WriteError::io(dir, e))?;
    }
    let file = File::create(&path).map_err(|e| WriteError::io(&path, e))?;
    Ok((BufWriter::with_capacity(1 << 16, file), path))
}

/// A stream's log file and, with template truth on, its labels file.
type StreamWriters = (Writer, Option<Writer>);

/// [`generate`] on `threads` threads, each writing a disjoint set of files. The output does
/// not depend on the thread count: every stream draws from its own random generator.
pub fn generate_with_threads(
    out_dir: &Path,
    options: GenOptions,
    threads: usize,
) -> Result<GenerateSummary, WriteError> {
    let generator = Generator::new(options.clone())?;
    let streams = generator.streams().to_vec();
    let incidents = generator.incidents().to_vec();
    let (start, end) = (generator.start(), generator.end());
    let truth_templates = options.template_truth.then(|| generator.truth_templates());
    let stale_truth = out_dir.join(TRUTH_DIR);
    if !options.template_truth && stale_truth.join(TRUTH_TEMPLATES).is_file() {
        // An earlier run's labels would not match the new files.
        fs::remove_dir_all(&stale_truth).map_err(|e| WriteError::io(&stale_truth, e))?;
    }
    let mut writers: Vec<Option<StreamWriters>> = Vec::with_capacity(streams.len());
    for stream in &streams {
        let log = create(out_dir.join(&stream.path))?;
        let truth = match options.template_truth {
            true => Some(create(truth_path(out_dir, &stream.path))?),
            false => None,
        };
        writers.push(Some((log, truth)));
    }
    let parts: Vec<(Vec<usize>, Generator, Vec<StreamWriters>)> = generator
        .split(threads.max(1))
        .into_iter()
        .map(|(indices, part)| {
            let part_writers = indices.iter().filter_map(|&i| writers[i].take()).collect();
            (indices, part, part_writers)
        })
        .collect();
    let results: Vec<Result<Vec<(usize, FileSummary)>, WriteError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|(indices, part, part_writers)| {
                scope.spawn(move || write_part(indices, part, part_writers, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(WriteError::Panic)))
            .collect()
    });
    let mut files: Vec<Option<FileSummary>> = vec![None; streams.len()];
    for result in results {
        for (i, summary) in result? {
            files[i] = Some(summary);
        }
    }
    let summary = GenerateSummary {
        out_dir: out_dir.to_owned(),
        files: files.into_iter().flatten().collect(),
        incidents,
        start,
        end,
    };
    write_atomic(
        &out_dir.join(GROUND_TRUTH),
        &ground_truth_json(&summary.incidents),
    )?;
    write_atomic(&out_dir.join(MANIFEST), &manifest_json(&summary, &options))?;
    write_atomic(&out_dir.join(CONFIG), &config_toml(&summary))?;
    if let Some(templates) = truth_templates {
        let tsv: String = templates
            .iter()
            .map(|(label, text)| format!("{label:08x}\t{text}\n"))
            .collect();
        write_atomic(&out_dir.join(TRUTH_DIR).join(TRUTH_TEMPLATES), &tsv)?;
    }
    Ok(summary)
}

/// Where the labels of the log file at `log_path` (relative to `out_dir`) go.
fn truth_path(out_dir: &Path, log_path: &str) -> PathBuf {
    out_dir.join(TRUTH_DIR).join(format!("{log_path}.templates"))
}

/// Runs one part of the generator to the end, writing its files; returns their summaries
/// keyed by stream index.
fn write_part(
    indices: Vec<usize>,
    mut part: Generator,
    writers: Vec<StreamWriters>,
    start: Timestamp,
) -> Result<Vec<(usize, FileSummary)>, WriteError> {
    let (mut writers, mut truth_writers): (Vec<Writer>, Vec<Option<Writer>>) = writers.into_iter().unzip();
    let mut bytes = vec![0u64; writers.len()];
    while part.next_chunk().is_some() {
        let chunks = part.chunks().iter().zip(part.truth_chunks());
        for ((((writer, path), n), truth), (chunk, labels)) in writers
            .iter_mut()
            .zip(&mut bytes)
            .zip(&mut truth_writers)
            .zip(chunks)
        {
            if !chunk.is_empty() {
                writer
                    .write_all(chunk.as_bytes())
                    .map_err(|e| WriteError::io(path, e))?;
                *n += chunk.len() as u64;
            }
            if let Some((writer, path)) = truth {
                writer
                    .write_all(labels.as_bytes())
                    .map_err(|e| WriteError::io(path, e))?;
            }
        }
    }
    for (writer, path) in truth_writers.into_iter().flatten() {
        writer
            .into_inner()
            .map_err(|e| WriteError::io(&path, e.into_error()))?;
    }
    let stats = part.stats();
    let mut out = Vec::with_capacity(writers.len());
    for ((((writer, path), n), stat), (i, stream)) in writers
        .into_iter()
        .zip(bytes)
        .zip(stats)
        .zip(indices.into_iter().zip(part.streams().iter().cloned()))
    {
        let file = writer
            .into_inner()
            .map_err(|e| WriteError::io(&path, e.into_error()))?;
        // Formats without a year (RFC 3164) take it from the mtime, so it must be the last line's time.
        file.set_modified(system_time(stat.last.unwrap_or(start)))
            .map_err(|e| WriteError::io(&path, e))?;
        out.push((
            i,
            FileSummary {
                stream,
                lines: stat.lines,
                corrupt_lines: stat.corrupt_lines,
                bytes: n,
                last: stat.last,
            },
        ));
    }
    Ok(out)
}

fn system_time(ts: Timestamp) -> SystemTime {
    if ts.0 >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_micros(ts.0.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_micros(ts.0.unsigned_abs())
    }
}

/// Writes `text` under a temporary name, then renames it into place.
fn write_atomic(path: &Path, text: &str) -> Result<(), WriteError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, text).map_err(|e| WriteError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| WriteError::io(path, e))
}

#[derive(Serialize)]
struct TruthEntry<'a> {
    kind: &'static str,
    start: String,
    end: String,
    service: &'a str,
    host: Option<&'a str>,
    description: &'a str,
}

fn ground_truth_json(incidents: &[InjectedIncident]) -> String {
    let entries: Vec<TruthEntry<'_>> = incidents
        .iter()
        .map(|i| TruthEntry {
            kind: i.kind.name(),
            start: i.start.to_rfc3339(),
            end: i.end.to_rfc3339(),
            service: &i.service,
            host: i.host.as_deref(),
            description: &i.description,
        })
        .collect();
    to_json(&entries)
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

#[derive(Serialize)]
struct ManifestOptions<'a> {
    seed: u64,
    start: String,
    end: String,
    duration_secs: i64,
    lines: u64,
    formats: Vec<&'a str>,
    incidents: bool,
    corrupt_rate: f64,
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    path: &'a str,
    format: &'static str,
    host: &'a str,
    service: &'a str,
    lines: u64,
    corrupt_lines: u64,
    bytes: u64,
    last: Option<String>,
}

#[derive(Serialize)]
struct ManifestTotals {
    files: usize,
    lines: u64,
    corrupt_lines: u64,
    bytes: u64,
    incidents: usize,
    lines_by_format: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    options: ManifestOptions<'a>,
    files: Vec<ManifestFile<'a>>,
    totals: ManifestTotals,
    ground_truth: &'static str,
    config: &'static str,
}

fn manifest_json(summary: &GenerateSummary, options: &GenOptions) -> String {
    let mut formats: Vec<&str> = summary.files.iter().map(|f| f.stream.format.name()).collect();
    formats.sort_unstable();
    formats.dedup();
    let manifest = Manifest {
        options: ManifestOptions {
            seed: options.seed,
            start: summary.start.to_rfc3339(),
            end: summary.end.to_rfc3339(),
            duration_secs: options.duration_secs,
            lines: options.lines,
            formats,
            incidents: options.incidents,
            corrupt_rate: options.corrupt_rate,
        },
        files: summary
            .files
            .iter()
            .map(|f| ManifestFile {
                path: &f.stream.path,
                format: f.stream.format.name(),
                host: &f.stream.host,
                service: &f.stream.service,
                lines: f.lines,
                corrupt_lines: f.corrupt_lines,
                bytes: f.bytes,
                last: f.last.map(Timestamp::to_rfc3339),
            })
            .collect(),
        totals: ManifestTotals {
            files: summary.files.len(),
            lines: summary.lines(),
            corrupt_lines: summary.corrupt_lines(),
            bytes: summary.bytes(),
            incidents: summary.incidents.len(),
            lines_by_format: summary.lines_by_format(),
        },
        ground_truth: GROUND_TRUTH,
        config: CONFIG,
    };
    to_json(&manifest)
}

#[derive(Serialize)]
struct ConfigInput<'a> {
    path: &'a str,
    format: &'static str,
    host: &'a str,
    service: &'a str,
}

#[derive(Serialize)]
struct ConfigFile<'a> {
    input: Vec<ConfigInput<'a>>,
}

fn config_toml(summary: &GenerateSummary) -> String {
    let config = ConfigFile {
        input: summary
            .files
            .iter()
            .map(|f| ConfigInput {
                path: &f.stream.path,
                format: f.stream.format.name(),
                host: &f.stream.host,
                service: &f.stream.service,
            })
            .collect(),
    };
    let mut text = String::from(
        "# Written by `loglens generate`: one input per generated file.\n\
         # Paths are relative to this file's directory.\n\n",
    );
    // A struct of strings always serializes to TOML.
    text.push_str(&toml::to_string(&config).unwrap_or_default());
    text
}
