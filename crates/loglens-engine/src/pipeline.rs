//! The batch pipeline of `loglens process`: one reader thread cuts files into chunks of whole
//! lines, worker threads parse them and write Parquet, each into its own part files.
//!
//! Why per-worker writers? Parquet encoding costs about as much as parsing; giving each worker
//! its own files keeps both cores busy without a single writer becoming the bottleneck. Memory
//! is bounded by the channel (a few chunks in flight) and by each writer's open partitions.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver};
use loglens_core::format::{LineParser, ParseContext, ParseError};
use loglens_core::template::{MinerConfig, TemplateMiner};
use loglens_core::zone::LocalZone;
use loglens_core::Timestamp;
use loglens_store::{
    merge_templates, DataDir, Dataset, Labels, PartNamer, PartitionedWriter, RecordTemplate, UnparsedLine,
    UnparsedWriter, WriterLimits,
};
use memchr::memchr_iter;
use serde::Serialize;

use crate::checkpoint::{Checkpoints, FilePlan, Fingerprint, ReadPlan};
use crate::input::{modified, InputFile, Parsers, STDIN};
use crate::mine::{
    load_miner, save_miner, MessageBatch, MinedTemplates, OrderedMiner, Origin, TemplateTally,
};
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
    /// The zone of timestamps that carry none.
    pub zone: LocalZone,
    /// Target bytes per chunk handed to a worker.
    pub chunk_bytes: usize,
    /// Read every file from the start, ignoring checkpoints.
    pub reprocess: bool,
    /// Mine log templates and fill `template_id` (a second pass over the input).
    pub mine_templates: bool,
    /// Treat every input as complete: read an unterminated last line instead of holding it
    /// back until its newline arrives.
    pub final_inputs: bool,
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
            zone: LocalZone::Unknown,
            chunk_bytes: 1 << 20,
            reprocess: false,
            mine_templates: true,
            final_inputs: false,
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
    /// Files skipped because another input has the same content (a rotated copy), read once.
    pub files_duplicate: u64,
    /// Unterminated last lines held back until their newline arrives (or `--final`).
    pub lines_held_back: u64,
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
    /// Distinct templates of this run's records.
    pub templates: u64,
    /// Of those, templates no earlier run had seen.
    pub templates_new: u64,
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
    /// The input's place in the run, to order records the same way on any thread count.
    input: usize,
}

/// Whole lines of one file, starting at line `first_line` (1-based); `seq` is the chunk's place
/// in the whole run's input.
struct Chunk {
    job: Arc<FileJob>,
    seq: u64,
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
    let mut summary = ProcessSummary {
        run_id: run_id.clone(),
        data_dir: options.data_dir.clone(),
        ..Default::default()
    };
    let spool = Spool::stdin_if_read(&options, &state_dir, &run_id)?;
    let mut plans = plan_inputs(&options, &checkpoints, spool.as_ref(), &mut summary)?;
    let mined = if options.mine_templates {
        let miner = load_miner(&state_dir, MinerConfig::default())?;
        Some(mine_inputs(&options, &mut plans, miner, &mut summary)?)
    } else {
        None
    };
    let (result, tally) = write_inputs(
        &options,
        &mut plans,
        mined.as_ref(),
        &data_dir,
        &run_id,
        &mut summary,
    );
    let mut first_error = result.err();
    if let (None, Some(mined)) = (&first_error, &mined) {
        let rows = tally.into_rows(mined);
        summary.templates = rows.len() as u64;
        let known = loglens_store::read_templates(&data_dir.dataset(Dataset::Templates))?;
        summary.templates_new = rows
            .iter()
            .filter(|r| !known.iter().any(|k| k.id == r.id))
            .count() as u64;
        if let Err(e) = merge_templates(&data_dir.dataset(Dataset::Templates), rows) {
            first_error = Some(e.into());
        }
    }
    if first_error.is_none() {
        for plan in &plans {
            if let (Some(end), Some(file)) = (plan.end, &plan.file) {
                checkpoints.record(&plan.path, file, plan.compressed, end.consumed, end.last_line);
            }
        }
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    write_run_summary(&data_dir, &summary)?;
    // Only a run whose every record is safely written moves the checkpoints: after a failure
    // the next run reads the same lines again rather than risk skipping any.
    if first_error.is_none() {
        checkpoints.save(&state_dir)?;
        if let Some(mined) = &mined {
            save_miner(&state_dir, mined)?;
        }
    }
    drop(spool);
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Pass one: parse every input and mine the messages in input order.
fn mine_inputs(
    options: &ProcessOptions,
    plans: &mut [InputPlan],
    miner: TemplateMiner,
    summary: &mut ProcessSummary,
) -> Result<MinedTemplates, EngineError> {
    let threads = options.threads.max(1);
    let (tx, rx) = bounded::<Chunk>(threads * 2);
    let (batch_tx, batch_rx) = bounded::<MessageBatch>(threads * 2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (rx, batch_tx) = (rx.clone(), batch_tx.clone());
                scope.spawn(move || {
                    for chunk in rx.iter() {
                        if batch_tx.send(messages_of(&chunk)).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop((rx, batch_tx));
        let miner = scope.spawn(move || {
            let mut miner = OrderedMiner::continuing(miner);
            for batch in batch_rx.iter() {
                miner.accept(batch);
            }
            miner.finish()
        });
        let mut seq = 0;
        let read = plans.iter_mut().try_for_each(|plan| {
            read_chunks(plan, options, summary, &mut seq, &mut |chunk| {
                tx.send(chunk).is_ok()
            })
            .map(|_| ())
        });
        drop(tx);
        let panicked = workers.into_iter().any(|w| w.join().is_err());
        let mined = miner.join().map_err(|_| EngineError::Panic)?;
        read?;
        if panicked {
            return Err(EngineError::Panic);
        }
        Ok(mined)
    })
}

/// The messages of the lines of a chunk that parse.
fn messages_of(chunk: &Chunk) -> MessageBatch {
    let mut batch = MessageBatch::new(chunk.seq);
    if let Some(parser) = &chunk.job.parser {
        for_each_line(chunk, |_, text, _| {
            if let Ok(record) = parser.parse(text, &chunk.job.ctx) {
                batch.push(&record.message);
            }
        });
    }
    batch
}

/// Pass two: parse again, give each record its template, write Parquet on every worker.
fn write_inputs(
    options: &ProcessOptions,
    plans: &mut [InputPlan],
    mined: Option<&MinedTemplates>,
    data_dir: &DataDir,
    run_id: &str,
    summary: &mut ProcessSummary,
) -> (Result<(), EngineError>, TemplateTally) {
    let threads = options.threads.max(1);
    let (tx, rx) = bounded::<Chunk>(threads * 2);
    let (read_result, worker_results) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let rx = rx.clone();
                let writer = Writers::new(data_dir, run_id, w);
                scope.spawn(move || work(rx, writer, mined))
            })
            .collect();
        drop(rx);
        let mut seq = 0;
        let read_result = plans.iter_mut().try_for_each(|plan| {
            let end = read_chunks(plan, options, summary, &mut seq, &mut |chunk| {
                tx.send(chunk).is_ok()
            })?;
            plan.end = Some(end);
            Ok(())
        });
        drop(tx);
        let results: Vec<_> = workers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(EngineError::Panic)))
            .collect();
        (read_result, results)
    });
    let mut tally = TemplateTally::default();
    let mut first_error = read_result.err();
    for result in worker_results {
        match result {
            Ok((stats, worker_tally)) => {
                summary.merge(stats);
                tally.merge(worker_tally);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (first_error.map_or(Ok(()), Err), tally)
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

/// Whether the file starts with the gzip magic bytes (so rotated `access.log.2.gz` and
/// misnamed files are both recognized).
pub(crate) fn is_gzip(path: &Path) -> Result<bool, EngineError> {
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

/// One input as this run reads it: where to start, and (once read) where it ended.
struct InputPlan {
    /// The file to open (for standard input, its spool file).
    path: PathBuf,
    /// The `source` column: the path, or `<stdin>`.
    source: String,
    /// The input as configured: parser and labels.
    input: InputFile,
    index: usize,
    compressed: bool,
    /// When the content was last written, for year-less timestamps.
    reference: Timestamp,
    offset: u64,
    lines_before: u64,
    /// How the checkpoints planned it (files have one, standard input has none, so its
    /// progress is not checkpointed).
    file: Option<FilePlan>,
    /// Whether the input is complete, so an unterminated last line is a line: compressed,
    /// rotated away, standard input, or `--final`.
    complete: bool,
    /// The parser and labels, fixed at the first chunk (detection runs once per input).
    job: Option<Arc<FileJob>>,
    /// Where reading stopped, set by the writing pass.
    end: Option<ReadEnd>,
}

/// Where reading an input stopped.
#[derive(Debug, Clone, Copy)]
struct ReadEnd {
    /// Content bytes consumed, counting the checkpoint offset.
    consumed: u64,
    /// The last line number read.
    last_line: u64,
}

/// A fingerprint of this length covers a file's first KiB: two files sharing it are copies.
const FULL_FINGERPRINT: u64 = 1024;

/// Decides, for every input, whether and from where to read it.
fn plan_inputs(
    options: &ProcessOptions,
    checkpoints: &Checkpoints,
    spool: Option<&Spool>,
    summary: &mut ProcessSummary,
) -> Result<Vec<InputPlan>, EngineError> {
    let mut plans = Vec::with_capacity(options.inputs.len());
    let mut claimed: Vec<(Fingerprint, PathBuf)> = Vec::new();
    for (index, input) in options.inputs.iter().enumerate() {
        let path = &input.path;
        let mut plan = InputPlan {
            path: path.clone(),
            // One name per file however it was typed (`logs/a.log`, `./logs/../logs/a.log`), and
            // one that leads back to the raw line from any directory.
            source: std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            input: input.clone(),
            index,
            compressed: false,
            reference: Timestamp::default(),
            offset: 0,
            lines_before: 0,
            file: None,
            complete: options.final_inputs,
            job: None,
            end: None,
        };
        if path.as_os_str() == STDIN {
            let Some(spool) = spool else { continue };
            plan.path = spool.path.clone();
            plan.source = "<stdin>".to_owned();
            plan.reference = spool.written;
            plan.complete = true;
            plan.compressed = is_gzip(&plan.path)?;
            plans.push(plan);
            continue;
        }
        plan.compressed = is_gzip(path)?;
        plan.reference = modified(path);
        let file = checkpoints.plan(path, plan.compressed)?;
        // One content, one reading: a rotated file still present under two names (`app.log.1`
        // and `app.log.1.gz` while gzip runs, or a copytruncate copy) is read under the first.
        let identity = file
            .continues
            .or(file.fingerprint.filter(|f| f.len == FULL_FINGERPRINT));
        if let Some(identity) = identity {
            if let Some(first) = claimed.iter().find(|(id, _)| *id == identity) {
                summary.files_duplicate += 1;
                summary.warnings.push(format!(
                    "{}: same content as {}; read once",
                    path.display(),
                    first.1.display()
                ));
                continue;
            }
            claimed.push((identity, path.clone()));
        }
        match file.read {
            ReadPlan::Unchanged => {
                summary.files_unchanged += 1;
                continue;
            }
            ReadPlan::FromStart => {}
            ReadPlan::Resume { offset, lines } => {
                summary.files_resumed += 1;
                (plan.offset, plan.lines_before) = (offset, lines);
            }
        }
        plan.complete |= plan.compressed || file.rotated;
        plan.file = Some(file);
        plans.push(plan);
    }
    Ok(plans)
}

/// Standard input saved to a file under `state/`, so both passes can read it; removed when
/// dropped.
struct Spool {
    path: PathBuf,
    /// When it was read, standing in for a file's modification time.
    written: Timestamp,
}

impl Spool {
    /// Copies standard input to the spool when `-` is one of the inputs.
    fn stdin_if_read(
        options: &ProcessOptions,
        state_dir: &Path,
        run_id: &str,
    ) -> Result<Option<Spool>, EngineError> {
        if !options.inputs.iter().any(|i| i.path.as_os_str() == STDIN) {
            return Ok(None);
        }
        let spool = Spool {
            path: state_dir.join(format!(".stdin-{run_id}.spool")),
            written: now(),
        };
        let mut file = std::fs::File::create(&spool.path).map_err(|e| EngineError::io(&spool.path, e))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file)
            .map_err(|e| EngineError::io(Path::new("<stdin>"), e))?;
        Ok(Some(spool))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // Best effort: a leftover spool is a hidden file no reader looks at.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(Timestamp::default(), |d| Timestamp(d.as_micros() as i64))
}

/// Cuts one input into chunks of whole lines and hands them to `send` (which says `false` when
/// nobody listens any more). Detects the format at the first chunk if the plan has none yet.
/// The summary's read counters move on the pass that writes, so each input counts once.
fn read_chunks(
    plan: &mut InputPlan,
    options: &ProcessOptions,
    summary: &mut ProcessSummary,
    seq: &mut u64,
    send: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadEnd, EngineError> {
    let writing = plan.job.is_some() || !options.mine_templates;
    let path = plan.path.clone();
    let mut reader = open_at(&path, plan.compressed, plan.offset)?;
    let ctx = ParseContext {
        reference: plan.reference,
        zone: options.zone,
    };
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line = plan.lines_before + 1;
    let mut consumed = plan.offset;
    if writing {
        summary.files += 1;
    }
    loop {
        let mut data = std::mem::take(&mut carry);
        data.reserve(options.chunk_bytes);
        let n = (&mut reader)
            .take(options.chunk_bytes as u64)
            .read_to_end(&mut data)
            .map_err(|e| EngineError::io(&path, e))?;
        let eof = n < options.chunk_bytes;
        if consumed == 0 && data.starts_with(UTF8_BOM) {
            // A BOM is an encoding mark, not content: the first line starts after it.
            data.drain(..UTF8_BOM.len());
            consumed += UTF8_BOM.len() as u64;
        }
        if eof && !plan.complete && data.last().is_some_and(|&b| b != b'\n') {
            // The writer may still be writing this line: read it once its newline arrives.
            let whole = memchr::memrchr(b'\n', &data).map_or(0, |last| last + 1);
            data.truncate(whole);
            if writing {
                summary.lines_held_back += 1;
            }
        }
        if data.is_empty() {
            break;
        }
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
        let job = match &plan.job {
            Some(job) => job.clone(),
            None => {
                let job = Arc::new(file_job(plan, &data, ctx, options, summary));
                plan.job = Some(job.clone());
                job
            }
        };
        if writing {
            summary.lines += lines;
            summary.bytes += data.len() as u64;
        }
        consumed += data.len() as u64;
        let chunk = Chunk {
            job,
            seq: *seq,
            first_line: next_line,
            data,
        };
        *seq += 1;
        next_line += lines;
        if !send(chunk) || eof {
            // A refused chunk means every worker stopped, after an error they report.
            break;
        }
    }
    Ok(ReadEnd {
        consumed,
        last_line: next_line - 1,
    })
}

/// The parser and labels of an input, detecting the format from its first chunk if needed.
fn file_job(
    plan: &InputPlan,
    first_chunk: &[u8],
    ctx: ParseContext,
    options: &ProcessOptions,
    summary: &mut ProcessSummary,
) -> FileJob {
    let source = plan.source.clone();
    let parser = plan
        .input
        .parser
        .clone()
        .or_else(|| detect(first_chunk, &options.parsers, &ctx));
    let format = parser.as_ref().map_or("unrecognized", |p| p.name()).to_owned();
    if parser.is_none() {
        summary.warnings.push(format!(
            "{source}: no format recognized in the first lines; its lines are kept in unparsed/ (use --format or a [[format]] regex)"
        ));
    }
    summary.file_formats.insert(source.clone(), format);
    FileJob {
        source,
        parser,
        host: plan.input.host.clone(),
        service: plan.input.service.clone(),
        ctx,
        input: plan.index,
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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

fn work(
    rx: Receiver<Chunk>,
    mut writers: Writers,
    mined: Option<&MinedTemplates>,
) -> Result<(WorkerStats, TemplateTally), EngineError> {
    let mut stats = WorkerStats::default();
    let mut tally = TemplateTally::default();
    let mut result = Ok(());
    for chunk in rx.iter() {
        result = parse_chunk(&chunk, &mut writers, &mut stats, mined, &mut tally);
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
    Ok((stats, tally))
}

/// Calls `each(line number, text, was valid UTF-8)` for every line of a chunk, without its
/// line ending; invalid UTF-8 is replaced with U+FFFD.
fn for_each_line(chunk: &Chunk, mut each: impl FnMut(u64, &str, bool)) {
    let mut start = 0;
    let data = &chunk.data;
    let ends = memchr_iter(b'\n', data).chain((data.last() != Some(&b'\n')).then_some(data.len()));
    for (line_no, end) in (chunk.first_line..).zip(ends) {
        let mut raw = &data[start..end];
        start = end + 1;
        if let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        match std::str::from_utf8(raw) {
            Ok(text) => each(line_no, text, true),
            Err(_) => each(line_no, &String::from_utf8_lossy(raw), false),
        }
    }
}

fn parse_chunk(
    chunk: &Chunk,
    writers: &mut Writers,
    stats: &mut WorkerStats,
    mined: Option<&MinedTemplates>,
    tally: &mut TemplateTally,
) -> Result<(), EngineError> {
    let job = &chunk.job;
    let format = job.parser.as_ref().map_or("unrecognized", |p| p.name());
    let labels = Labels {
        source: &job.source,
        format,
        host: job.host.as_deref(),
        service: job.service.as_deref(),
    };
    let mut parsed = 0u64;
    let mut result = Ok(());
    for_each_line(chunk, |line_no, text, valid_utf8| {
        if result.is_err() {
            return;
        }
        stats.invalid_utf8 += u64::from(!valid_utf8);
        let outcome = match &job.parser {
            Some(parser) => parser
                .parse(text, &job.ctx)
                .map_err(|e| (summary_reason(&e), e.to_string())),
            None => Err((
                "format not recognized".to_owned(),
                "format not recognized".to_owned(),
            )),
        };
        result = match outcome {
            Ok(record) => {
                parsed += 1;
                let matched = mined.and_then(|m| m.lookup(&record.message));
                if let Some(m) = &matched {
                    let service = record.service.as_deref().or(labels.service);
                    let origin = Origin {
                        ts: record.ts,
                        input: job.input,
                        line: line_no,
                    };
                    tally.add(m.id, &record, service, origin);
                }
                let template = matched.as_ref().map(|m| RecordTemplate {
                    id: m.id,
                    params: m.params.as_deref(),
                });
                writers.records.push(&record, line_no, &labels, template)
            }
            Err((kind, reason)) => {
                *stats.unparsed.entry(kind).or_default() += 1;
                writers.unparsed.push(&UnparsedLine {
                    source: &job.source,
                    line: line_no,
                    format,
                    reason: &reason,
                    raw: text,
                })
            }
        };
    });
    if parsed > 0 {
        *stats.parsed.entry(format.to_owned()).or_default() += parsed;
    }
    Ok(result?)
}
