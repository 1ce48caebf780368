//! The batch pipeline of `loglens process`: one reader thread cuts files into chunks of whole
//! lines, worker threads parse each chunk once, one template stage thread gives the records
//! their template ids in input order, and the workers write Parquet, each into its own part
//! files.
//!
//! Why per-worker writers? Parquet encoding costs about as much as parsing; giving each worker
//! its own files keeps both cores busy without a single writer becoming the bottleneck. Memory
//! is bounded by the chunks alive at once (a fixed number of slots, taken when a chunk is read
//! and given back when it is written) and by each writer's open partitions.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, select_biased, unbounded, Receiver, Sender, TryRecvError};
use loglens_core::format::multiline::head;
use loglens_core::format::{starts_record, LineParser, ParseContext, ParseError};
use loglens_core::metrics::Observation;
use loglens_core::partial::MetricPartial;
use loglens_core::template::{ParamScratch, TemplateStage};
use loglens_core::zone::LocalZone;
use loglens_core::Timestamp;
use loglens_store::{
    merge_templates, write_atomic, DataDir, Dataset, Labels, LineRange, PartNamer, PartitionedWriter,
    RecordTemplate, Recovery, RunCommit, UnparsedLine, UnparsedWriter, WriteLock, WriterLimits,
};
use memchr::memchr_iter;
use serde::Serialize;

use crate::checkpoint::{Checkpoints, FilePlan, Fingerprint, ReadPlan};
use crate::input::{fit, modified, FailedInput, InputFile, Parsers, STDIN};
use crate::long_lines::{pieces, read_len, CappedLines, Front, Piece};
use crate::mine::{
    load_miner, miner_config, run_templates, save_miner, Assigned, InOrder, Origin, TemplateTally, Templater,
};
use crate::parsed::{record_boundary, ParsedRecords, ParsedText};
use crate::progress::{Counted, Progress, Stage};
use crate::EngineError;

/// The default line cap: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

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
    /// Mine log templates and fill `template_id` and `params`.
    pub mine_templates: bool,
    /// Treat every input as complete: read an unterminated last line instead of holding it
    /// back until its newline arrives.
    pub final_inputs: bool,
    /// Told how far reading has got (the CLI's progress bar); `None` reports nothing.
    pub progress: Option<Arc<dyn Progress>>,
    /// Longest line kept whole; a longer one is kept truncated as an unparsed row with its
    /// length, so one runaway line cannot take the memory of the run.
    pub max_line_bytes: usize,
    /// Inputs that failed before the run (missing paths, unreadable directories), to report
    /// with the run's own failures.
    pub failed: Vec<FailedInput>,
    /// Inputs read whole and never checkpointed, like standard input's spool, with the source
    /// name their records carry: `loglens serve`'s spool segments, which are deleted once the
    /// run committed (their content could repeat another file's first bytes).
    pub transient: BTreeMap<PathBuf, String>,
    /// Width of the metric buckets of the run's partial (`[detect] bucket`), seconds.
    pub bucket_secs: i64,
    /// Cells a worker's metric partial holds before it is saved as a part of the run's
    /// (default [`PARTIAL_CELLS`]).
    pub partial_cells: usize,
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
            progress: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            failed: Vec::new(),
            transient: BTreeMap::new(),
            bucket_secs: 60,
            partial_cells: PARTIAL_CELLS,
        }
    }
}

/// How a run ended; `loglens process` exits 0, 3 and 1 for them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every input was read to its end (or was unchanged), and all of it committed.
    #[default]
    Complete,
    /// Some inputs failed (listed in `failed`); everything else was committed.
    Partial,
    /// Nothing was committed (an error stopped the run), or no input could be read.
    Failed,
}

/// What a run read and wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessSummary {
    /// The run's id, part of every file name it wrote.
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Inputs that could not be read, or not to their end, with the reason. A file that failed
    /// midway (a truncated gzip file) has its lines up to the last whole one before the error
    /// committed and checkpointed; the next run resumes it there.
    pub failed: Vec<FailedInput>,
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
    /// Lines parsed, by format name (continuation lines joined to a record included).
    pub parsed: BTreeMap<String, u64>,
    /// Lines joined to the record before them (stack traces, indented lines), so records
    /// number `parsed_total() - continuation_lines`.
    pub continuation_lines: u64,
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
    /// Why each file has its format: what detection saw in its first lines
    /// (`combined: 64 of 64 sample lines parse (next: …)`), or that it was given.
    pub file_detection: BTreeMap<String, String>,
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

    pub(crate) fn merge(&mut self, worker: WorkerStats) {
        for (k, v) in worker.parsed {
            *self.parsed.entry(k).or_default() += v;
        }
        for (k, v) in worker.unparsed {
            *self.unparsed.entry(k).or_default() += v;
        }
        self.invalid_utf8 += worker.invalid_utf8;
        self.continuation_lines += worker.continuation_lines;
        self.records_written += worker.records_written;
        self.record_files += worker.record_files;
        self.unparsed_written += worker.unparsed_written;
    }
}

/// The parser and labels that apply to one file, shared by its chunks.
pub(crate) struct FileJob {
    pub(crate) source: String,
    pub(crate) parser: Option<Arc<dyn LineParser>>,
    pub(crate) host: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) ctx: ParseContext,
    /// The input's place in the run, to order records the same way on any thread count.
    pub(crate) input: usize,
}

/// Whole lines of one file, starting at line `first_line` (1-based); `seq` is the chunk's place
/// in the whole run's input.
pub(crate) struct Chunk {
    pub(crate) job: Arc<FileJob>,
    pub(crate) seq: u64,
    pub(crate) first_line: u64,
    pub(crate) data: Vec<u8>,
    /// Set for a chunk holding one line longer than the cap: its full length in bytes (`data`
    /// keeps the first `max_line_bytes` of it).
    pub(crate) overlong: Option<u64>,
}

impl Chunk {
    /// The chunk of a piece of the lines starting at `first_line`.
    pub(crate) fn of_piece(piece: Piece, job: Arc<FileJob>, seq: u64, first_line: u64) -> Chunk {
        let (data, first_line, overlong) = match piece {
            Piece::Lines { data, first } => (data, first_line + first, None),
            Piece::Long { kept, line, full } => (kept, first_line + line, Some(full)),
        };
        Chunk {
            job,
            seq,
            first_line,
            data,
            overlong,
        }
    }
}

/// Runs the pipeline to completion and commits what it wrote in one step: records, unparsed
/// lines, templates, checkpoints, miner state and the run summary appear together or not at
/// all (see `loglens_store::RunCommit`), so a run killed at any moment is rolled back or
/// forward by the next one and no line is stored twice. An input that cannot be read is listed
/// in the summary's `failed` and skipped; any other error stops the run and commits nothing.
pub fn process(options: ProcessOptions, run_id: String) -> Result<ProcessSummary, EngineError> {
    let started = Instant::now();
    let RunStart {
        staging,
        checkpoints,
        mut summary,
        miner,
    } = RunStart::begin(&options, &run_id)?;
    let state_dir = staging.data_dir.dataset(Dataset::State);
    let spool = Spool::stdin_if_read(&options, &state_dir, &run_id)?;
    let mut plans = plan_inputs(&options, &checkpoints, spool.as_ref(), &mut summary)?;
    let (result, tally, mined, partial) = write_inputs(
        &options,
        &mut plans,
        miner,
        &staging.staged,
        &run_id,
        &mut summary,
    );
    if let Err(e) = result {
        return Err(record_failure(&staging.data_dir, summary, started, e));
    }
    // Dropped before the commit: a spool is read by both passes, and the commit needs neither.
    drop(spool);
    let output = RunOutput {
        tally,
        mined,
        metrics: partial,
    };
    staging.commit(plans, checkpoints, output, summary, started)
}

/// What a run starts from: write access, its checkpoints, a summary and the template stage.
pub(crate) struct RunStart {
    pub(crate) staging: Staging,
    pub(crate) checkpoints: Checkpoints,
    pub(crate) summary: ProcessSummary,
    pub(crate) miner: Option<TemplateStage>,
}

impl RunStart {
    pub(crate) fn begin(options: &ProcessOptions, run_id: &str) -> Result<RunStart, EngineError> {
        let staging = Staging::begin(&options.data_dir, run_id)?;
        let state_dir = staging.data_dir.dataset(Dataset::State);
        let checkpoints = if options.reprocess {
            Checkpoints::default()
        } else {
            Checkpoints::load(&state_dir)?
        };
        let summary = ProcessSummary {
            run_id: run_id.to_owned(),
            data_dir: options.data_dir.clone(),
            failed: options.failed.clone(),
            warnings: recovery_notes(staging.lock.recovery()),
            ..Default::default()
        };
        let miner = if options.mine_templates {
            Some(load_miner(&state_dir, miner_config())?)
        } else {
            None
        };
        Ok(RunStart {
            staging,
            checkpoints,
            summary,
            miner,
        })
    }
}

/// What a run's stages produced besides its part files, for the commit.
pub(crate) struct RunOutput {
    /// Records per template id.
    pub(crate) tally: TemplateTally,
    /// The template stage after the run (`None` without mining).
    pub(crate) mined: Option<TemplateStage>,
    /// The metric partial of every record written.
    pub(crate) metrics: MetricPartial,
}

/// A run's write access and staging area, from its start to its commit.
pub(crate) struct Staging {
    pub(crate) data_dir: DataDir,
    pub(crate) lock: WriteLock,
    pub(crate) run: RunCommit,
    pub(crate) staged: DataDir,
    pub(crate) run_id: String,
}

impl Staging {
    /// Takes the data directory's write lock and starts staging run `run_id`.
    pub(crate) fn begin(data_dir: &Path, run_id: &str) -> Result<Staging, EngineError> {
        let data_dir = DataDir::create(data_dir)?;
        let lock = data_dir.lock()?;
        let run = RunCommit::begin(&data_dir, &lock, run_id)?;
        let staged = run.staged()?;
        Ok(Staging {
            data_dir,
            lock,
            run,
            staged,
            run_id: run_id.to_owned(),
        })
    }

    /// Stages templates, miner state, checkpoints and the run summary next to the records the
    /// run staged, then commits all of it in one step; on an error nothing is committed and
    /// the failure is recorded.
    pub(crate) fn commit(
        self,
        plans: Vec<InputPlan>,
        mut checkpoints: Checkpoints,
        output: RunOutput,
        mut summary: ProcessSummary,
        started: Instant,
    ) -> Result<ProcessSummary, EngineError> {
        let RunOutput {
            tally,
            mut mined,
            metrics: partial,
        } = output;
        let Staging {
            data_dir,
            lock,
            run,
            staged,
            run_id,
        } = self;
        let staged_state = staged.dataset(Dataset::State);
        let committed = (|| {
            if let Some(mined) = &mut mined {
                let rows = tally.into_rows(mined);
                let live = data_dir.dataset(Dataset::Templates);
                let known = loglens_store::read_templates(&live)?;
                (summary.templates, summary.templates_new) = run_templates(&rows, &known);
                merge_templates(&live, &staged.dataset(Dataset::Templates), rows)?;
                save_miner(&staged_state, mined)?;
            }
            crate::partials::save(&staged_state, &run_id, partial)?;
            let read_ok = record_checkpoints(&plans, &mut checkpoints, &mut summary)?;
            checkpoints.save(&staged_state)?;
            summary.status = match (summary.failed.is_empty(), read_ok + summary.files_unchanged > 0) {
                (true, _) => RunStatus::Complete,
                (false, true) => RunStatus::Partial,
                (false, false) => RunStatus::Failed,
            };
            summary.elapsed_secs = started.elapsed().as_secs_f64();
            write_run_summary(&staged, &summary)?;
            Ok::<_, EngineError>(())
        })();
        if let Err(e) = committed {
            return Err(record_failure(&data_dir, summary, started, e));
        }
        run.commit()?;
        drop(lock);
        Ok(summary)
    }
}

/// Moves each input's checkpoint to where reading stopped (an input that failed midway: to the
/// last whole line before the error, marked for a retry; one that failed at once: not at all)
/// and lists the failures; returns how many inputs were read to their end.
fn record_checkpoints(
    plans: &[InputPlan],
    checkpoints: &mut Checkpoints,
    summary: &mut ProcessSummary,
) -> Result<u64, EngineError> {
    let mut read_ok = 0;
    for plan in plans {
        let Some(end) = &plan.end else { continue };
        match &end.failure {
            None => {
                read_ok += 1;
                if let Some(file) = &plan.file {
                    checkpoints.record(&plan.path, file, plan.compressed, end.consumed, end.last_line);
                }
            }
            Some(reason) => {
                if let Some(file) = plan.file.as_ref().filter(|_| end.consumed > plan.offset) {
                    checkpoints.record_incomplete(
                        &plan.path,
                        file,
                        plan.compressed,
                        end.consumed,
                        end.last_line,
                    );
                }
                summary.failed.push(FailedInput {
                    path: plan.input.path.clone(),
                    reason: reason.clone(),
                });
            }
        }
    }
    Ok(read_ok)
}

/// What recovering from earlier, killed runs did, for the summary's warnings.
fn recovery_notes(recovery: &Recovery) -> Vec<String> {
    let mut notes = Vec::new();
    for run in &recovery.rolled_forward {
        notes.push(format!(
            "run {run} was interrupted while committing; its commit was completed"
        ));
    }
    for run in &recovery.rolled_back {
        notes.push(format!(
            "run {run} was interrupted before committing; its staged files were removed and its input is read again"
        ));
    }
    if recovery.temp_files_removed > 0 {
        notes.push(format!(
            "removed {} temporary files ({:.1} MB) left by interrupted runs",
            recovery.temp_files_removed,
            recovery.temp_bytes_removed as f64 / 1e6
        ));
    }
    notes
}

/// Records a run that stopped on an error (nothing of it is committed) in `state/runs/`, and
/// returns the error.
pub(crate) fn record_failure(
    data_dir: &DataDir,
    mut summary: ProcessSummary,
    started: Instant,
    error: EngineError,
) -> EngineError {
    summary.status = RunStatus::Failed;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.warnings.push(format!("nothing was committed: {error}"));
    // Best effort: the error matters more than its record.
    let _ = write_run_summary(data_dir, &summary);
    error
}

/// The one pass: the reader (this thread) cuts inputs into chunks; workers parse each chunk
/// once; with a template stage, one thread gives the parsed records their template ids in input
/// order and hands them back to the workers to write. Returns the stage with everything it
/// mined.
fn write_inputs(
    options: &ProcessOptions,
    plans: &mut [InputPlan],
    stage: Option<TemplateStage>,
    data_dir: &DataDir,
    run_id: &str,
    summary: &mut ProcessSummary,
) -> (
    Result<(), EngineError>,
    TemplateTally,
    Option<TemplateStage>,
    MetricPartial,
) {
    let threads = options.threads.max(1);
    // Chunks alive at once, from read to written. Why slots rather than bounded channels? A
    // worker both feeds the stage and drains it; a full channel in either direction could
    // block every worker while the stage waits for them. With slots no send ever blocks, and
    // memory is still bounded.
    let slots = threads * 4;
    let (slot_tx, slot_rx) = bounded::<()>(slots);
    for _ in 0..slots {
        let _ = slot_tx.send(());
    }
    let (chunk_tx, chunk_rx) = unbounded::<Chunk>();
    let (parsed_tx, parsed_rx) = unbounded::<ParsedChunk>();
    let (write_tx, write_rx) = unbounded::<ParsedChunk>();
    let stop = AtomicBool::new(false);
    let mining = stage.is_some();
    let (read_result, worker_results, stage) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let worker = Worker {
                    chunks: Some(chunk_rx.clone()),
                    to_stage: mining.then(|| parsed_tx.clone()),
                    writes: write_rx.clone(),
                    slots: slot_tx.clone(),
                    stop: &stop,
                };
                let writers = Writers::new(data_dir, run_id, w, options.bucket_secs, options.partial_cells);
                scope.spawn(move || worker.run(writers))
            })
            .collect();
        drop((chunk_rx, parsed_tx, write_rx, slot_tx));
        let stage = match stage {
            Some(stage) => {
                let stop = &stop;
                Some(scope.spawn(move || {
                    let _stop_on_panic = StopOnPanic(stop);
                    template_stage(stage, parsed_rx, write_tx)
                }))
            }
            None => {
                // Without a stage, the workers write what they parse.
                drop((parsed_rx, write_tx));
                None
            }
        };
        let mut seq = 0;
        let disk = Arc::new(AtomicU64::new(0));
        if let Some(progress) = &options.progress {
            progress.begin(
                Stage::Process,
                Some(plans.iter().map(InputPlan::disk_bytes).sum()),
            );
        }
        let read_result = plans.iter_mut().try_for_each(|plan| {
            let end = read_chunks(plan, options, summary, &disk, &mut seq, &mut |chunk| {
                take_slot(&slot_rx, &stop) && chunk_tx.send(chunk).is_ok()
            })?;
            plan.end = Some(end);
            Ok(())
        });
        drop(chunk_tx);
        if let Some(progress) = &options.progress {
            progress.end();
        }
        let results: Vec<_> = workers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(EngineError::Panic)))
            .collect();
        let stage = stage.map(|h| h.join().map_err(|_| EngineError::Panic));
        (read_result, results, stage)
    });
    let mut tally = TemplateTally::default();
    let mut partial = MetricPartial::new(options.bucket_secs);
    let mut first_error = read_result.err();
    for result in worker_results {
        match result {
            Ok((stats, worker_tally, worker_partial)) => {
                summary.merge(stats);
                tally.merge(worker_tally);
                // Same width on every worker, so this cannot fail.
                if let Err(e) = partial.merge(worker_partial) {
                    first_error.get_or_insert(e.into());
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let stage = match stage {
        Some(Ok(stage)) => Some(stage),
        Some(Err(e)) => {
            first_error.get_or_insert(e);
            None
        }
        None => None,
    };
    (first_error.map_or(Ok(()), Err), tally, stage, partial)
}

/// A chunk parsed once, on its way to the template stage and the writer.
pub(crate) struct ParsedChunk {
    pub(crate) job: Arc<FileJob>,
    pub(crate) seq: u64,
    pub(crate) records: ParsedRecords,
    /// The template of each record, in order, once the stage ran.
    pub(crate) templates: Vec<Assigned>,
}

/// The template stage: takes parsed chunks in any order, mines their messages in input order,
/// and passes each chunk on to be written with its records' template ids.
fn template_stage(
    stage: TemplateStage,
    parsed: Receiver<ParsedChunk>,
    writes: Sender<ParsedChunk>,
) -> TemplateStage {
    let mut templater = Templater::new(stage);
    let mut in_order = InOrder::new();
    for chunk in parsed.iter() {
        for mut chunk in in_order.accept(chunk.seq, chunk) {
            let records = &chunk.records;
            chunk.templates = records
                .records
                .iter()
                .map(|r| templater.assign(head(records.message(r))))
                .collect();
            // Only fails when every worker stopped, after an error they report.
            let _ = writes.send(chunk);
        }
    }
    templater.into_stage()
}

/// One worker's channels: chunks to parse, parsed chunks to the stage, chunks to write.
struct Worker<'s> {
    /// `None` once the reader is done.
    chunks: Option<Receiver<Chunk>>,
    /// `None` without a template stage (the worker writes what it parses) and once the reader
    /// is done (so the stage sees its input end).
    to_stage: Option<Sender<ParsedChunk>>,
    writes: Receiver<ParsedChunk>,
    /// Gives a chunk's slot back once it is written.
    slots: Sender<()>,
    /// Set by the first worker that fails, so the reader stops.
    stop: &'s AtomicBool,
}

enum Job {
    Parse(Chunk),
    Write(ParsedChunk),
    ReadingDone,
    Done,
}

impl Worker<'_> {
    /// Writing comes first: it frees slots and memory. Without a stage (or once it is gone)
    /// there is nothing to write and the worker only parses.
    fn next_job(&self) -> Job {
        let writes_open = match self.writes.try_recv() {
            Ok(parsed) => return Job::Write(parsed),
            Err(TryRecvError::Empty) => true,
            Err(TryRecvError::Disconnected) => false,
        };
        let parse = |chunks: &Receiver<Chunk>| chunks.recv().map_or(Job::ReadingDone, Job::Parse);
        match (&self.chunks, writes_open) {
            (Some(chunks), true) => select_biased! {
                recv(self.writes) -> parsed => parsed.map_or_else(|_| parse(chunks), Job::Write),
                recv(chunks) -> chunk => chunk.map_or(Job::ReadingDone, Job::Parse),
            },
            (Some(chunks), false) => parse(chunks),
            (None, true) => self.writes.recv().map_or(Job::Done, Job::Write),
            (None, false) => Job::Done,
        }
    }

    /// Runs jobs until there are none. After a failure it keeps taking jobs without doing
    /// them, so chunks still reach the stage in order and give their slots back: nothing
    /// waits forever, and the first error is returned.
    fn run(
        mut self,
        mut writers: Writers,
    ) -> Result<(WorkerStats, TemplateTally, MetricPartial), EngineError> {
        let _stop_on_panic = StopOnPanic(self.stop);
        let mut stats = WorkerStats::default();
        let mut tally = TemplateTally::default();
        let mut result = Ok(());
        loop {
            match self.next_job() {
                Job::Parse(chunk) => {
                    let parsed = self.parse(chunk, &mut result, &mut writers.unparsed, &mut stats);
                    match &self.to_stage {
                        Some(stage) => {
                            // Only fails when the stage is gone, which its join reports.
                            let _ = stage.send(parsed);
                        }
                        None => self.write(&parsed, &mut result, &mut writers, &mut tally),
                    }
                }
                Job::Write(parsed) => self.write(&parsed, &mut result, &mut writers, &mut tally),
                Job::ReadingDone => (self.chunks, self.to_stage) = (None, None),
                Job::Done => break,
            }
            if result.is_err() {
                self.stop.store(true, Ordering::Relaxed);
            }
        }
        // Close the files either way, so what was written stays readable.
        let closed_records = writers.records.finish();
        let closed_unparsed = writers.unparsed.finish();
        result?;
        let (rows, files) = closed_records?;
        stats.records_written = rows;
        stats.record_files = files;
        stats.unparsed_written = closed_unparsed?;
        Ok((stats, tally, writers.partial))
    }

    /// Parses a chunk, or after a failure only stands in for it with no records (the stage
    /// still has to see every chunk in order).
    fn parse(
        &self,
        chunk: Chunk,
        result: &mut Result<(), EngineError>,
        unparsed: &mut UnparsedWriter,
        stats: &mut WorkerStats,
    ) -> ParsedChunk {
        let empty = ParsedChunk {
            job: chunk.job.clone(),
            seq: chunk.seq,
            records: ParsedRecords::default(),
            templates: Vec::new(),
        };
        if result.is_err() {
            return empty;
        }
        match parse_chunk(chunk, unparsed, stats) {
            Ok(parsed) => parsed,
            Err(e) => {
                *result = Err(e);
                empty
            }
        }
    }

    /// Writes a parsed chunk's records (unless a failure came first) and gives its slot back.
    fn write(
        &self,
        parsed: &ParsedChunk,
        result: &mut Result<(), EngineError>,
        writers: &mut Writers,
        tally: &mut TemplateTally,
    ) {
        if result.is_ok() {
            *result = write_records(parsed, &mut writers.records, &mut writers.partial, tally)
                .and_then(|()| writers.save_partial_if_full());
        }
        let _ = self.slots.send(());
    }
}

/// Tells the reader to stop when a worker or the stage panics, so it does not wait for the
/// slots of the chunks they held.
struct StopOnPanic<'s>(&'s AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Takes a slot for one more chunk; `false` once the workers stopped (after a failure or
/// when every worker is gone).
fn take_slot(slots: &Receiver<()>, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        match slots.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return false,
        }
    }
}

/// Writes `state/runs/<run-id>.json` under `data_dir` (a run's staging area, so the summary is
/// committed with the run; the live directory for a run that failed).
fn write_run_summary(data_dir: &DataDir, summary: &ProcessSummary) -> Result<(), EngineError> {
    let dir = data_dir.dataset(Dataset::State).join("runs");
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
    let json = serde_json::to_vec_pretty(summary).map_err(|e| EngineError::encode("run summary", e))?;
    Ok(write_atomic(
        &dir.join(format!("{}.json", summary.run_id)),
        &json,
    )?)
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
/// Bytes a gzip file reads from disk are added to `disk`, for progress; a plain file's are
/// counted by its reader.
pub(crate) fn open_at(
    path: &Path,
    compressed: bool,
    offset: u64,
    disk: &Arc<AtomicU64>,
) -> Result<Box<dyn Read + Send>, EngineError> {
    let io = |e| EngineError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    if !compressed {
        // Not wrapped in `Counted`: std reads a plain file straight into a chunk's spare
        // capacity, where through a wrapper's `read` it zeroes the capacity first (1% of
        // `process`). [`read_chunks`] counts these bytes itself.
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        return Ok(Box::new(file));
    }
    let file = Counted::new(file, disk.clone());
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
pub(crate) struct InputPlan {
    /// The file to open (for standard input, its spool file).
    pub(crate) path: PathBuf,
    /// The `source` column: the path, or `<stdin>`.
    pub(crate) source: String,
    /// The input as configured: parser and labels.
    pub(crate) input: InputFile,
    pub(crate) index: usize,
    pub(crate) compressed: bool,
    /// When the content was last written, for year-less timestamps.
    pub(crate) reference: Timestamp,
    pub(crate) offset: u64,
    pub(crate) lines_before: u64,
    /// How the checkpoints planned it (files have one, standard input has none, so its
    /// progress is not checkpointed).
    pub(crate) file: Option<FilePlan>,
    /// Whether the input is complete, so an unterminated last line is a line: compressed,
    /// rotated away, standard input, or `--final`.
    pub(crate) complete: bool,
    /// The parser and labels, fixed at the first chunk (detection runs once per input).
    pub(crate) job: Option<Arc<FileJob>>,
    /// Where reading stopped, set by the writing pass.
    pub(crate) end: Option<ReadEnd>,
}

impl InputPlan {
    /// Bytes on disk this run will read: from the checkpoint on for a plain file, all of a
    /// compressed one (its checkpoint counts decompressed bytes, skipped by reading).
    fn disk_bytes(&self) -> u64 {
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if self.compressed {
            size
        } else {
            size.saturating_sub(self.offset)
        }
    }
}

/// Where reading an input stopped.
#[derive(Debug, Clone)]
pub(crate) struct ReadEnd {
    /// Content bytes consumed, counting the checkpoint offset.
    pub(crate) consumed: u64,
    /// The last line number read.
    pub(crate) last_line: u64,
    /// Why reading stopped before the end, if it did (the input could not be opened or read).
    pub(crate) failure: Option<String>,
}

/// A fingerprint of this length covers a file's first KiB: two files sharing it are copies.
const FULL_FINGERPRINT: u64 = 1024;

/// Decides, for every input, whether and from where to read it.
pub(crate) fn plan_inputs(
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
        if let Some(source) = options.transient.get(path) {
            plan.source = source.clone();
            plan.reference = modified(path);
            plan.complete = true;
            plans.push(plan);
            continue;
        }
        let checked = is_gzip(path).and_then(|gz| Ok((gz, checkpoints.plan(path, gz)?)));
        let file = match checked {
            Ok((compressed, file)) => {
                plan.compressed = compressed;
                file
            }
            Err(e) => {
                summary.failed.push(FailedInput {
                    path: path.clone(),
                    reason: input_reason(e),
                });
                continue;
            }
        };
        plan.reference = modified(path);
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
pub(crate) struct Spool {
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
fn read_chunks(
    plan: &mut InputPlan,
    options: &ProcessOptions,
    summary: &mut ProcessSummary,
    disk: &Arc<AtomicU64>,
    seq: &mut u64,
    send: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadEnd, EngineError> {
    let path = plan.path.clone();
    let mut reader = match open_at(&path, plan.compressed, plan.offset, disk) {
        Ok(reader) => reader,
        Err(e) => {
            return Ok(ReadEnd {
                consumed: plan.offset,
                last_line: plan.lines_before,
                failure: Some(input_reason(e)),
            })
        }
    };
    let ctx = ParseContext {
        reference: plan.reference,
        zone: options.zone,
    };
    let cap = options.max_line_bytes;
    // Lines gathered and not handed over yet; a line longer than the cap is kept to its first
    // `cap` bytes as it is read, so a runaway line costs the cap, not its length.
    let mut lines = CappedLines::with_capacity(cap, options.chunk_bytes);
    let mut next_line = plan.lines_before + 1;
    let mut consumed = plan.offset;
    let mut failure = None;
    summary.files += 1;
    loop {
        let from = lines.buffer().len();
        lines.buffer().reserve(options.chunk_bytes);
        let result = (&mut reader)
            .take(options.chunk_bytes as u64)
            .read_to_end(lines.buffer());
        let read = lines.buffer().len() - from;
        if !plan.compressed {
            disk.fetch_add(read as u64, Ordering::Relaxed);
        }
        if consumed == 0 && from == 0 && lines.buffer().starts_with(UTF8_BOM) {
            // A BOM is an encoding mark, not content: the first line starts after it.
            lines.buffer().drain(..UTF8_BOM.len());
            consumed += UTF8_BOM.len() as u64;
        }
        lines.accept(from);
        let eof = match result {
            Ok(_) => read < options.chunk_bytes,
            Err(e) => {
                // The whole lines read before the error count; the partial last one is read
                // again by the next run.
                lines.drop_partial_line();
                failure = Some(e.to_string());
                true
            }
        };
        if eof && !plan.complete && lines.has_partial_line() {
            // The writer may still be writing this line: read it once its newline arrives.
            lines.drop_partial_line();
            summary.lines_held_back += 1;
        }
        let Front {
            data,
            long,
            lines: count,
        } = if eof {
            // A complete input's last line counts as ended without its newline.
            let (data, long) = std::mem::replace(&mut lines, CappedLines::with_capacity(cap, 0)).finish();
            let lines = count_lines(&data);
            Front { data, long, lines }
        } else {
            let whole = lines.whole_lines_end();
            if whole == 0 {
                // One line longer than a read: keep reading into it.
                continue;
            }
            // Hand over whole records only; the format decides where one starts (the file's
            // first chunk picks it), and the last may go on in the next read.
            let job = job_of(plan, lines.gathered(), ctx, options, summary);
            let starts = |line: &str| starts_record(job.parser.as_deref(), line, &job.ctx);
            lines.take_front(record_boundary(lines.gathered(), whole - 1, starts))
        };
        if data.is_empty() {
            break;
        }
        let job = job_of(plan, &data, ctx, options, summary);
        let bytes = read_len(&data, &long, cap);
        summary.lines += count;
        summary.bytes += bytes;
        consumed += bytes;
        let first_line = next_line;
        next_line += count;
        if let Some(progress) = &options.progress {
            progress.update(summary.lines, disk.load(Ordering::Relaxed));
        }
        let mut refused = false;
        for piece in pieces(data, &long) {
            let chunk = Chunk::of_piece(piece, job.clone(), *seq, first_line);
            *seq += 1;
            if !send(chunk) {
                refused = true;
                break;
            }
        }
        if refused || eof {
            // A refused chunk means every worker stopped, after an error they report.
            break;
        }
    }
    Ok(ReadEnd {
        consumed,
        last_line: next_line - 1,
        failure,
    })
}

/// The parser and labels of an input, fixed at its first chunk.
fn job_of(
    plan: &mut InputPlan,
    first_chunk: &[u8],
    ctx: ParseContext,
    options: &ProcessOptions,
    summary: &mut ProcessSummary,
) -> Arc<FileJob> {
    if let Some(job) = &plan.job {
        return job.clone();
    }
    let job = Arc::new(file_job(plan, first_chunk, ctx, options, summary));
    plan.job = Some(job.clone());
    job
}

/// The reason an input failed, without its path (which the failure names separately).
pub(crate) fn input_reason(error: EngineError) -> String {
    match error {
        EngineError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// The parser and labels of an input, detecting the format from its first chunk if needed.
pub(crate) fn file_job(
    plan: &InputPlan,
    first_chunk: &[u8],
    ctx: ParseContext,
    options: &ProcessOptions,
    summary: &mut ProcessSummary,
) -> FileJob {
    let source = plan.source.clone();
    // A run resumed from a checkpoint starts mid-file: detection and a header (W3C, Zeek)
    // are read from the file's start.
    let from_start = (plan.offset > 0)
        .then(|| read_head(&plan.path, plan.compressed).ok())
        .flatten();
    let head = from_start.as_deref().unwrap_or(first_chunk);
    let head = String::from_utf8_lossy(&head[..head.len().min(HEAD_BYTES)]);
    let sample: Vec<&str> = head.lines().take(SAMPLE_LINES).collect();
    let (parser, why) = match &plan.input.parser {
        Some(given) => (
            Some(fit(given.clone(), &sample)),
            format!(
                "{}: given (--format, or the [[input]] covering the file)",
                given.name()
            ),
        ),
        None => {
            let detected = options.parsers.detect(&sample, &ctx);
            (detected.parser, detected.reason)
        }
    };
    let format = parser.as_ref().map_or("unrecognized", |p| p.name()).to_owned();
    if parser.is_none() {
        summary.warnings.push(format!(
            "{source}: no format recognized in the first lines ({why}); its lines are kept in unparsed/ (use --format or a [[format]] regex)"
        ));
    }
    summary.file_formats.insert(source.clone(), format);
    summary.file_detection.insert(source.clone(), why);
    FileJob {
        source,
        parser,
        host: plan.input.host.clone(),
        service: plan.input.service.clone(),
        ctx,
        input: plan.index,
    }
}

pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Lines in a chunk: newlines, plus one for a last line without a newline.
pub(crate) fn count_lines(data: &[u8]) -> u64 {
    let newlines = memchr_iter(b'\n', data).count() as u64;
    newlines + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}

/// How much of a file's start format detection (and header fitting) reads.
const HEAD_BYTES: usize = 64 * 1024;

/// The head of `data` that format detection and header fitting read.
pub(crate) fn head_of(data: &[u8]) -> &[u8] {
    &data[..data.len().min(HEAD_BYTES)]
}

/// The first [`HEAD_BYTES`] of a file (decompressed), where its header is.
pub(crate) fn read_head(path: &Path, compressed: bool) -> Result<Vec<u8>, EngineError> {
    let mut head = Vec::new();
    open_at(path, compressed, 0, &Arc::new(AtomicU64::new(0)))?
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| EngineError::io(path, e))?;
    Ok(head)
}

/// `parser` fitted to the header among the first lines of `head` (see [`fit`]).
pub(crate) fn fit_to_head(parser: Arc<dyn LineParser>, head: &[u8]) -> Arc<dyn LineParser> {
    let text = String::from_utf8_lossy(head);
    let sample: Vec<&str> = text.lines().take(SAMPLE_LINES).collect();
    fit(parser, &sample)
}
const SAMPLE_LINES: usize = 100;

/// Why a line was refused: the summary's kind (see [`summary_reason`]) and the reason its
/// `unparsed/` row gives; no error means no format was recognized.
pub(crate) fn refusal(error: Option<ParseError>) -> (String, String) {
    match error {
        Some(e) => (summary_reason(&e), e.to_string()),
        None => (
            "format not recognized".to_owned(),
            "format not recognized".to_owned(),
        ),
    }
}

/// The reason a summary counts an error under: its text, except that JSON errors (whose text
/// names a column) are counted together.
fn summary_reason(error: &ParseError) -> String {
    match error {
        ParseError::Json(_) => "invalid JSON".to_owned(),
        other => other.to_string(),
    }
}

/// The output files of one worker, and the metric partial of the records it wrote.
pub(crate) struct Writers {
    pub(crate) records: PartitionedWriter,
    pub(crate) unparsed: UnparsedWriter,
    pub(crate) partial: MetricPartial,
    /// The staged `state/`, where full partials are saved as parts.
    state_dir: PathBuf,
    run_id: String,
    worker: usize,
    parts_saved: usize,
    partial_cells: usize,
}

/// Cells a writer's metric partial holds at most (about 100 bytes each with their table) before
/// it is saved as a part of the run's partial and started afresh: a day of 10M lines held a
/// million cells in each worker (126 MB of the run's peak for two). Parts overlap (the same
/// bucket and labels in several); `detect` merges them.
pub const PARTIAL_CELLS: usize = 128 * 1024;

impl Writers {
    /// A worker's writers; its metric partial is saved as a part once it holds
    /// `partial_cells` cells.
    pub(crate) fn new(
        data_dir: &DataDir,
        run_id: &str,
        worker: usize,
        bucket_secs: i64,
        partial_cells: usize,
    ) -> Self {
        Writers {
            partial: MetricPartial::new(bucket_secs),
            partial_cells,
            state_dir: data_dir.dataset(Dataset::State),
            run_id: run_id.to_owned(),
            worker,
            parts_saved: 0,
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

    /// Saves the metric partial as a part of the run's once it is full, so a writer's memory
    /// does not grow with the span and the labels of its input.
    pub(crate) fn save_partial_if_full(&mut self) -> Result<(), EngineError> {
        if self.partial.cells() < self.partial_cells {
            return Ok(());
        }
        self.save_partial()
    }

    /// Saves what the metric partial holds as the next part of the run's partial, named after
    /// this writer (`<run>.w<worker>-<n>`, a file per day: the same again for a retried
    /// Dask/Ray group).
    pub(crate) fn save_partial(&mut self) -> Result<(), EngineError> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let part = format!("w{:06}-{:04}", self.worker, self.parts_saved);
        let empty = MetricPartial::new(self.partial.bucket_secs());
        let full = std::mem::replace(&mut self.partial, empty);
        crate::partials::save_part(&self.state_dir, &self.run_id, &part, full)?;
        self.parts_saved += 1;
        Ok(())
    }
}

#[derive(Default, Serialize, serde::Deserialize)]
pub(crate) struct WorkerStats {
    pub(crate) parsed: BTreeMap<String, u64>,
    pub(crate) unparsed: BTreeMap<String, u64>,
    invalid_utf8: u64,
    continuation_lines: u64,
    pub(crate) records_written: u64,
    pub(crate) record_files: u64,
    pub(crate) unparsed_written: u64,
}

/// Parses a chunk once: records are kept for the template stage and the writer, lines that
/// do not parse are written to `unparsed/` at once.
pub(crate) fn parse_chunk(
    chunk: Chunk,
    unparsed: &mut UnparsedWriter,
    stats: &mut WorkerStats,
) -> Result<ParsedChunk, EngineError> {
    let Chunk {
        job,
        seq,
        first_line,
        data,
        overlong,
    } = chunk;
    if let Some(full) = overlong {
        return overlong_line(job, seq, first_line, &data, full, unparsed, stats);
    }
    let (text, invalid) = ParsedText::of(data);
    stats.invalid_utf8 += invalid;
    let format = job.parser.as_ref().map_or("unrecognized", |p| p.name());
    let refused = |line_no: u64, text: &str, error: Option<ParseError>| {
        let (kind, reason) = refusal(error);
        *stats.unparsed.entry(kind).or_default() += 1;
        unparsed.push(&UnparsedLine {
            source: &job.source,
            line: line_no,
            format,
            reason: &reason,
            raw: text,
        })
    };
    let records = ParsedRecords::parse(text, first_line, job.parser.as_deref(), &job.ctx, refused)?;
    if !records.records.is_empty() {
        *stats.parsed.entry(format.to_owned()).or_default() += records.lines_parsed();
    }
    stats.continuation_lines += records.continuation_lines;
    Ok(ParsedChunk {
        job: job.clone(),
        seq,
        records,
        templates: Vec::new(),
    })
}

/// The row of a line longer than the cap: unparsed, truncated, with its full length.
fn overlong_line(
    job: Arc<FileJob>,
    seq: u64,
    line: u64,
    kept: &[u8],
    full: u64,
    unparsed: &mut UnparsedWriter,
    stats: &mut WorkerStats,
) -> Result<ParsedChunk, EngineError> {
    let kind = "line longer than the cap (kept truncated)";
    *stats.unparsed.entry(kind.to_owned()).or_default() += 1;
    unparsed.push(&UnparsedLine {
        source: &job.source,
        line,
        format: job.parser.as_ref().map_or("unrecognized", |p| p.name()),
        reason: &format!(
            "line of {full} bytes is longer than the cap; its first {} bytes are kept",
            kept.len()
        ),
        raw: &String::from_utf8_lossy(kept),
    })?;
    let (text, _) = ParsedText::of(Vec::new());
    let records = ParsedRecords::parse(text, line, None, &job.ctx, |_, _, _| Ok::<(), EngineError>(()))?;
    Ok(ParsedChunk {
        job,
        seq,
        records,
        templates: Vec::new(),
    })
}

/// Writes the records of a parsed chunk with their templates (if mined), tallying each id and
/// adding each record to the worker's metric partial (under the template id as written;
/// detect resolves ids to their current template).
pub(crate) fn write_records(
    parsed: &ParsedChunk,
    writer: &mut PartitionedWriter,
    partial: &mut MetricPartial,
    tally: &mut TemplateTally,
) -> Result<(), EngineError> {
    let job = &parsed.job;
    let labels = Labels {
        source: &job.source,
        format: job.parser.as_ref().map_or("unrecognized", |p| p.name()),
        host: job.host.as_deref(),
        service: job.service.as_deref(),
    };
    // Kept across records: extracting parameters would otherwise allocate three vectors each.
    let mut scratch = ParamScratch::default();
    let mut params = Vec::new();
    for (i, parsed_record) in parsed.records.records.iter().enumerate() {
        let record = parsed.records.record(parsed_record);
        let assigned = parsed.templates.get(i);
        let params_fit = assigned.is_some_and(|a| {
            let message = parsed.records.message(parsed_record);
            a.pattern
                .parameters_into(head(message), &mut scratch, &mut params)
        });
        if let Some(a) = assigned {
            let service = record.service.as_deref().or(labels.service);
            let origin = Origin {
                ts: record.ts,
                input: job.input,
                line: parsed_record.line,
            };
            tally.add(a.id, &record, service, origin);
        }
        let access = record.access.as_ref();
        let observation = Observation {
            ts: record.ts,
            service: record.service.as_deref().or(labels.service),
            host: record.host.as_deref().or(labels.host),
            level: record.level,
            status: access.map(|a| a.status),
            latency_ms: access.and_then(|a| a.latency_ms),
            bytes: access.and_then(|a| a.bytes),
            template: assigned.map(|a| a.id),
        };
        partial.add(&observation, Some(labels.source));
        let template = assigned.map(|a| RecordTemplate {
            id: a.id,
            params: params_fit.then_some(params.as_slice()),
        });
        let lines = LineRange {
            first: parsed_record.line,
            count: parsed_record.lines,
        };
        writer.push(&record, lines, &labels, template)?;
    }
    Ok(())
}
