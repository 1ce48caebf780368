//! The batch pipeline of `loglens process`: one reader thread cuts files into chunks of whole
//! lines, worker threads parse them and write Parquet, each into its own part files.
//!
//! Why per-worker writers? Parquet encoding costs about as much as parsing; giving each worker
//! its own files keeps both cores busy without a single writer becoming the bottleneck. Memory
//! is bounded by the channel (a few chunks in flight) and by each writer's open partitions.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, Sender};
use loglens_core::format::{LineParser, ParseContext, ParseError};
use loglens_core::Timestamp;
use loglens_store::{
    DataDir, Dataset, Labels, PartNamer, PartitionedWriter, UnparsedLine, UnparsedWriter, WriterLimits,
};
use memchr::memchr_iter;
use serde::Serialize;

use crate::checkpoint::{Checkpoints, ReadPlan};
use crate::input::{modified, InputFile, Parsers, STDIN};
use crate::EngineError;

/// Options of one batch run.
pub struct ProcessOptions {
    /// The files to read, with their parsers and labels.
    pub inputs: Vec<InputFile>,
    /// Parsers for detection.
    pub parsers: Parsers,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Worker threads (at least one).
    pub threads: usize,
    /// Zone, seconds east of UTC, of timestamps that carry none.
    pub default_offset_secs: i32,
    /// Target bytes per chunk handed to a worker.
    pub chunk_bytes: usize,
    /// Read every file from the start, ignoring checkpoints.
    pub reprocess: bool,
}

impl ProcessOptions {
    /// Options with the defaults: every core, UTC for zone-less timestamps, 1 MiB chunks,
    /// checkpoints honoured.
    pub fn new(inputs: Vec<InputFile>, parsers: Parsers, data_dir: PathBuf) -> Self {
        ProcessOptions {
            inputs,
            parsers,
            data_dir,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            default_offset_secs: 0,
            chunk_bytes: 1 << 20,
            reprocess: false,
        }
    }
}

/// What a run read and wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessSummary {
    /// The run's id, part of every file name it wrote.
    pub run_id: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Files read (from the start or from a checkpoint).
    pub files: u64,
    /// Files read from their checkpoint on, because they were appended to.
    pub files_resumed: u64,
    /// Files skipped because nothing was added since the last run.
    pub files_unchanged: u64,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Lines read.
    pub lines: u64,
    /// Lines parsed, by format name.
    pub parsed: BTreeMap<String, u64>,
    /// Lines not parsed, by reason.
    pub unparsed: BTreeMap<String, u64>,
    /// Lines whose invalid UTF-8 was replaced with U+FFFD before parsing.
    pub invalid_utf8: u64,
    /// Rows written to `records/`.
    pub records_written: u64,
    /// Part files written to `records/`.
    pub record_files: u64,
    /// Rows written to `unparsed/`.
    pub unparsed_written: u64,
    /// The format used for each file.
    pub file_formats: BTreeMap<String, String>,
    /// Things the user should know (files whose format was not recognized…).
    pub warnings: Vec<String>,
    /// Wall time in seconds.
    pub elapsed_secs: f64,
}

impl ProcessSummary {
    /// Lines parsed in total.
    pub fn parsed_total(&self) -> u64 {
        self.parsed.values().sum()
    }

    /// Lines not parsed in total.
    pub fn unparsed_total(&self) -> u64 {
        self.unparsed.values().sum()
    }

    fn merge(&mut self, worker: WorkerStats) {
        for (k, v) in worker.parsed {
            *self.parsed.entry(k).or_default() += v;
        }
        for (k, v) in worker.unparsed {
            *self.unparsed.entry(k).or_default() += v;
        }
        self.invalid_utf8 += worker.invalid_utf8;
        self.records_written += worker.records_written;
        self.record_files += worker.record_files;
        self.unparsed_written += worker.unparsed_written;
    }
}

/// The parser and labels that apply to one file, shared by its chunks.
struct FileJob {
    source: String,
    parser: Option<Arc<dyn LineParser>>,
    host: Option<String>,
    service: Option<String>,
    ctx: ParseContext,
}

/// Whole lines of one file, starting at line `first_line` (1-based).
struct Chunk {
    job: Arc<FileJob>,
    first_line: u64,
    data: Vec<u8>,
}

/// Runs the pipeline to completion. On an error every worker still closes its files, so what
/// was written stays readable; the first error is returned.
pub fn process(options: ProcessOptions, run_id: String) -> Result<ProcessSummary, EngineError> {
    let started = Instant::now();
    let data_dir = DataDir::create(&options.data_dir)?;
    let state_dir = data_dir.dataset(Dataset::State);
    let mut checkpoints = if options.reprocess {
        Checkpoints::default()
    } else {
        Checkpoints::load(&state_dir)?
    };
    let threads = options.threads.max(1);
    let (tx, rx) = bounded::<Chunk>(threads * 2);
    let mut summary = ProcessSummary {
        run_id: run_id.clone(),
        data_dir: options.data_dir.clone(),
        ..Default::default()
    };

    let (read_result, worker_results) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let rx = rx.clone();
                let writer = Writers::new(&data_dir, &run_id, w);
                scope.spawn(move || work(rx, writer))
            })
            .collect();
        drop(rx);
        let read_result = read_all(&options, tx, &mut summary, &mut checkpoints);
        let results: Vec<_> = workers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(EngineError::Panic)))
            .collect();
        (read_result, results)
    });
    let mut first_error = read_result.err();
    for result in worker_results {
        match result {
            Ok(stats) => summary.merge(stats),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    write_run_summary(&data_dir, &summary)?;
    // Only a run whose every record is safely written moves the checkpoints: after a failure
    // the next run reads the same lines again rather than risk skipping any.
    if first_error.is_none() {
        checkpoints.save(&state_dir)?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

fn write_run_summary(data_dir: &DataDir, summary: &ProcessSummary) -> Result<(), EngineError> {
    let dir = data_dir.dataset(Dataset::State).join("runs");
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    let path = dir.join(format!("{}.json", summary.run_id));
    let tmp = dir.join(format!(".{}.json.tmp", summary.run_id));
    let json = serde_json::to_vec_pretty(summary).map_err(|e| EngineError::Config(e.to_string()))?;
    std::fs::write(&tmp, json).map_err(|e| EngineError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| EngineError::io(&path, e))
}

fn read_all(
    options: &ProcessOptions,
    tx: Sender<Chunk>,
    summary: &mut ProcessSummary,
    checkpoints: &mut Checkpoints,
) -> Result<(), EngineError> {
    for input in &options.inputs {
        read_file(input, options, &tx, summary, checkpoints)?;
    }
    Ok(())
}

/// Whether the file starts with the gzip magic bytes (so rotated `access.log.2.gz` and
/// misnamed files are both recognized).
fn is_gzip(path: &Path) -> Result<bool, EngineError> {
    let mut magic = [0u8; 2];
    let mut file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let n = read_full(&mut file, &mut magic).map_err(|e| EngineError::io(path, e))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// Opens a file positioned at content offset `offset` (decompressed bytes for gzip).
fn open_at(path: &Path, compressed: bool, offset: u64) -> Result<Box<dyn Read + Send>, EngineError> {
    let io = |e| EngineError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    if !compressed {
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        return Ok(Box::new(file));
    }
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, file));
    std::io::copy(&mut (&mut decoder).take(offset), &mut std::io::sink()).map_err(io)?;
    Ok(Box::new(decoder))
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_file(
    input: &InputFile,
    options: &ProcessOptions,
    tx: &Sender<Chunk>,
    summary: &mut ProcessSummary,
    checkpoints: &mut Checkpoints,
) -> Result<(), EngineError> {
    let path = &input.path;
    let Some(opened) = open_input(input, checkpoints, summary)? else {
        return Ok(());
    };
    let (source, mut reader) = (opened.source, opened.reader);
    let ctx = ParseContext {
        reference: opened.reference,
        default_offset_secs: options.default_offset_secs,
    };
    let (offset, lines_before) = (opened.offset, opened.lines_before);
    let mut job: Option<Arc<FileJob>> = None;
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line = lines_before + 1;
    let mut consumed = offset;
    summary.files += 1;
    loop {
        let mut data = std::mem::take(&mut carry);
        data.reserve(options.chunk_bytes);
        let n = (&mut reader)
            .take(options.chunk_bytes as u64)
            .read_to_end(&mut data)
            .map_err(|e| EngineError::io(path, e))?;
        let eof = n < options.chunk_bytes;
        if data.is_empty() {
            break;
        }
        summary.bytes += n as u64;
        // Hand over whole lines only; the tail waits for the next read.
        if !eof {
            match memchr::memrchr(b'\n', &data) {
                Some(last) => carry = data.split_off(last + 1),
                None => {
                    // A single line longer than a chunk: keep reading into it.
                    carry = data;
                    continue;
                }
            }
        }
        let lines = count_lines(&data);
        let job = job.get_or_insert_with(|| {
            let parser = input.parser.clone().or_else(|| detect(&data, &options.parsers, &ctx));
            let format = parser.as_ref().map_or("unrecognized", |p| p.name()).to_owned();
            if parser.is_none() {
                summary.warnings.push(format!(
                    "{source}: no format recognized in the first lines; its lines are kept in unparsed/ (use --format or a [[format]] regex)"
                ));
            }
            summary.file_formats.insert(source.clone(), format);
            Arc::new(FileJob {
                source: source.clone(),
                parser,
                host: input.host.clone(),
                service: input.service.clone(),
                ctx,
            })
        });
        summary.lines += lines;
        consumed += data.len() as u64;
        let chunk = Chunk {
            job: job.clone(),
            first_line: next_line,
            data,
        };
        next_line += lines;
        if tx.send(chunk).is_err() {
            // Every worker has stopped, which only happens after an error they report.
            return Ok(());
        }
        if eof {
            break;
        }
    }
    if opened.checkpointed {
        checkpoints.record(path, consumed, next_line - 1)?;
    }
    Ok(())
}

/// An input opened where reading should start.
struct Opened {
    reader: Box<dyn Read + Send>,
    /// The `source` column: the path, or `<stdin>`.
    source: String,
    /// When the content was last written, for year-less timestamps.
    reference: Timestamp,
    offset: u64,
    lines_before: u64,
    /// Whether the input is a file whose progress is checkpointed (stdin is not).
    checkpointed: bool,
}

/// Opens an input after its checkpoint, or `None` when it has nothing new.
fn open_input(
    input: &InputFile,
    checkpoints: &Checkpoints,
    summary: &mut ProcessSummary,
) -> Result<Option<Opened>, EngineError> {
    let path = &input.path;
    if path.as_os_str() == STDIN {
        return open_stdin().map(Some);
    }
    let compressed = is_gzip(path)?;
    let (offset, lines_before) = match checkpoints.plan(path, compressed)? {
        ReadPlan::Unchanged => {
            summary.files_unchanged += 1;
            return Ok(None);
        }
        ReadPlan::FromStart => (0, 0),
        ReadPlan::Resume { offset, lines } => {
            summary.files_resumed += 1;
            (offset, lines)
        }
    };
    Ok(Some(Opened {
        reader: open_at(path, compressed, offset)?,
        source: path.display().to_string(),
        reference: modified(path),
        offset,
        lines_before,
        checkpointed: true,
    }))
}

/// Standard input, gzip or plain; written "now" as far as year inference is concerned.
fn open_stdin() -> Result<Opened, EngineError> {
    let stdin_path = Path::new("<stdin>");
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, std::io::stdin());
    let gzip = reader
        .fill_buf()
        .map_err(|e| EngineError::io(stdin_path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(Timestamp::default(), |d| Timestamp(d.as_micros() as i64));
    Ok(Opened {
        reader,
        source: "<stdin>".to_owned(),
        reference: now,
        offset: 0,
        lines_before: 0,
        checkpointed: false,
    })
}

/// Lines in a chunk: newlines, plus one for a last line without a newline.
fn count_lines(data: &[u8]) -> u64 {
    let newlines = memchr_iter(b'\n', data).count() as u64;
    newlines + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}

fn detect(data: &[u8], parsers: &Parsers, ctx: &ParseContext) -> Option<Arc<dyn LineParser>> {
    const SAMPLE_LINES: usize = 100;
    let text = String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]);
    let sample: Vec<&str> = text.lines().take(SAMPLE_LINES).collect();
    parsers.detect(&sample, ctx)
}

/// The reason a summary counts an error under: its text, except that JSON errors (whose text
/// names a column) are counted together.
fn summary_reason(error: &ParseError) -> String {
    match error {
        ParseError::Json(_) => "invalid JSON".to_owned(),
        other => other.to_string(),
    }
}

/// The output files of one worker.
struct Writers {
    records: PartitionedWriter,
    unparsed: UnparsedWriter,
}

impl Writers {
    fn new(data_dir: &DataDir, run_id: &str, worker: usize) -> Self {
        Writers {
            records: PartitionedWriter::new(
                data_dir.dataset(Dataset::Records),
                PartNamer::new(run_id, worker),
                WriterLimits::default(),
            ),
            unparsed: UnparsedWriter::new(
                data_dir.dataset(Dataset::Unparsed),
                PartNamer::new(run_id, worker),
            ),
        }
    }
}

#[derive(Default)]
struct WorkerStats {
    parsed: BTreeMap<String, u64>,
    unparsed: BTreeMap<String, u64>,
    invalid_utf8: u64,
    records_written: u64,
    record_files: u64,
    unparsed_written: u64,
}

fn work(rx: Receiver<Chunk>, mut writers: Writers) -> Result<WorkerStats, EngineError> {
    let mut stats = WorkerStats::default();
    let mut result = Ok(());
    for chunk in rx.iter() {
        result = parse_chunk(&chunk, &mut writers, &mut stats);
        if result.is_err() {
            break;
        }
    }
    // Dropping the receiver on error makes the reader stop; the files are closed either way.
    drop(rx);
    let closed_records = writers.records.finish();
    let closed_unparsed = writers.unparsed.finish();
    result?;
    let (rows, files) = closed_records?;
    stats.records_written = rows;
    stats.record_files = files;
    stats.unparsed_written = closed_unparsed?;
    Ok(stats)
}

fn parse_chunk(chunk: &Chunk, writers: &mut Writers, stats: &mut WorkerStats) -> Result<(), EngineError> {
    let job = &chunk.job;
    let format = job.parser.as_ref().map_or("unrecognized", |p| p.name());
    let labels = Labels {
        source: &job.source,
        format,
        host: job.host.as_deref(),
        service: job.service.as_deref(),
    };
    let mut parsed = 0u64;
    let mut start = 0;
    let data = &chunk.data;
    let ends = memchr_iter(b'\n', data).chain((data.last() != Some(&b'\n')).then_some(data.len()));
    for (line_no, end) in (chunk.first_line..).zip(ends) {
        let mut raw = &data[start..end];
        start = end + 1;
        if let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => {
                stats.invalid_utf8 += 1;
                String::from_utf8_lossy(raw)
            }
        };
        let outcome = match &job.parser {
            Some(parser) => parser
                .parse(&text, &job.ctx)
                .map_err(|e| (summary_reason(&e), e.to_string())),
            None => Err((
                "format not recognized".to_owned(),
                "format not recognized".to_owned(),
            )),
        };
        match outcome {
            Ok(record) => {
                writers.records.push(&record, line_no, &labels)?;
                parsed += 1;
            }
            Err((kind, reason)) => {
                *stats.unparsed.entry(kind).or_default() += 1;
                writers.unparsed.push(&UnparsedLine {
                    source: &job.source,
                    line: line_no,
                    format,
                    reason: &reason,
                    raw: &text,
                })?;
            }
        }
    }
    if parsed > 0 {
        *stats.parsed.entry(format.to_owned()).or_default() += parsed;
    }
    Ok(())
}
