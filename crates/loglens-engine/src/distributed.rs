//! Distributed processing: the pipeline of `loglens process` cut at its seams, so the workers
//! of a cluster (Dask, Ray) run its parse and write stages while one driver keeps its serial
//! stage (template ids in input order) and commits the run exactly as `process` does.
//!
//! A chunk is a byte range of whole lines of one input (a gzip file is one chunk). Workers scan
//! a chunk (its line count, hours and messages, masked as the miner masks them: each distinct
//! masked text once and an index, a sixth of the messages' bytes), the driver gives the
//! messages their template ids in input order, and workers write groups of mined chunks into
//! the run's staging area with those ids and return a mergeable [`ChunkPartial`]. Why scan and then parse again to
//! write? Ids depend on every message before them (a Drain template generalizes as messages
//! arrive), so no worker can write before the driver has mined its chunk; parsing twice costs
//! less than shipping parsed records to the driver and back. Why write groups, not chunks?
//! Records are partitioned by hour, and a chunk of one host's file spans many hours: written
//! alone, every chunk left a small file in each of its hours (4,070 files for 2M lines where
//! `process` writes 168), and creating, syncing and renaming them cost more than parsing. A
//! group holds chunks of about the same hours (of different files), so its files are few and
//! full.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use loglens_core::format::multiline::{head, MAX_RECORD_BYTES};
use loglens_core::format::{starts_record, ParseContext};
use loglens_core::partial::MetricPartial;
use loglens_core::template::{BatchMasker, MaskedBatch, MinerConfig, TemplatePattern, TemplateStage};
use loglens_core::zone::LocalZone;
use loglens_core::Timestamp;
use loglens_store::DataDir;
use serde::{Deserialize, Serialize};

use crate::input::{Parsers, STDIN};
use crate::long_lines::{pieces, CappedLines, LongLine, Piece};
use crate::mine::{Assigned, TemplateTally};
use crate::parsed::{ParsedRecords, ParsedText};
use crate::pipeline::{
    count_lines, file_job, fit_to_head, input_reason, open_at, parse_chunk, plan_inputs, read_head,
    write_records, Chunk, FileJob, InputPlan, ProcessOptions, ProcessSummary, ReadEnd, RunOutput, RunStart,
    WorkerStats, Writers, PARTIAL_CELLS, UTF8_BOM,
};
use crate::EngineError;

/// One piece of work: a byte range of whole lines of one input, with what parses it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkSpec {
    /// The chunk's place in the run's input; the driver mines chunks in this order.
    pub seq: u64,
    /// The input's place in the run.
    pub input: usize,
    /// The file.
    pub path: PathBuf,
    /// The `source` column.
    pub source: String,
    /// The parser's name; `None` when no format was recognized (lines go to `unparsed/`).
    pub format: Option<String>,
    /// Host label for records that name none.
    pub host: Option<String>,
    /// Service label for records that name none.
    pub service: Option<String>,
    /// Whether the file is gzip (then offsets count decompressed bytes).
    pub compressed: bool,
    /// The first byte of the chunk.
    pub start: u64,
    /// The byte after the chunk; `None` to the end of the input (a gzip file).
    pub end: Option<u64>,
    /// The file's modification time, for year-less timestamps.
    pub reference: Timestamp,
}

/// What a worker needs besides the chunk: the run's parsers and zone (every worker builds
/// them from the same configuration as the driver).
pub struct WorkerContext {
    /// The run's parsers.
    pub parsers: Parsers,
    /// The zone of timestamps that carry none.
    pub zone: LocalZone,
    /// Longest line kept whole.
    pub max_line_bytes: usize,
    /// Width of the metric partials' buckets (detect's `bucket_secs`).
    pub bucket_secs: i64,
    /// The driver's miner configuration ([`miner_config`](crate::miner_config)), which
    /// scans mask messages with; `None` when templates are not mined.
    pub miner: Option<MinerConfig>,
}

/// What scanning a chunk found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkScan {
    /// Lines in the chunk.
    pub lines: u64,
    /// Records in the chunk (one message each).
    pub records: u64,
    /// The first and last hour (since 1970) of its records' timestamps; `None` without records.
    pub hours: Option<(i64, i64)>,
    /// Bytes of content (after decompression, without a byte order mark).
    pub bytes: u64,
    /// The content offset after the chunk, for the input's checkpoint.
    pub end: u64,
    /// Why reading stopped before the chunk's end (a gzip file cut off): its lines up to the
    /// last whole one before the error count, and the input is listed as failed, as with
    /// `process`.
    #[serde(default)]
    pub failure: Option<String>,
}

/// The template id of every record of a chunk, in order, and the line its first line has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChunkTemplates {
    /// The input's line number of the chunk's first line.
    pub first_line: u64,
    /// `(id, template)` of the ids the chunk's records got.
    pub table: Vec<(u64, String)>,
    /// Per record, its place in `table`; empty when templates are not mined.
    pub index: Vec<u32>,
}

/// Mined chunks that one task writes together: chunks of about the same hours, so their
/// records share part files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteGroup {
    /// Names the group's part files: the smallest `seq` of its chunks (unique in the run).
    pub id: u64,
    /// The chunks with the template ids of their records.
    pub chunks: Vec<(ChunkSpec, ChunkTemplates)>,
}

/// What writing a group of chunks produced: counts and template tallies, which the driver
/// merges. The group's metric partial is not among them: the worker saves it beside its part
/// files (`state/partials/<run-id>.w<group>-<n>.<day>.bin`) and `detect` merges it with the others,
/// so the driver neither merges nor saves a week's partial at the end of the run (2.7 s of a
/// 10M-line run's serial tail).
#[derive(Serialize, Deserialize)]
pub struct ChunkPartial {
    seqs: Vec<u64>,
    stats: WorkerStats,
    tally: TemplateTally,
}

impl ChunkPartial {
    /// The chunks it belongs to.
    pub fn seqs(&self) -> &[u64] {
        &self.seqs
    }
}

/// Encodes a [`WriteGroup`] or [`ChunkPartial`] for its trip between driver and worker in
/// postcard, a compact binary serde format: as JSON, a week's metric partials took the driver
/// longer to read than the workers took to write the records.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, EngineError> {
    postcard::to_stdvec(value).map_err(|e| EngineError::encode(what, e))
}

/// Decodes what [`encode`] encoded.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, EngineError> {
    postcard::from_bytes(bytes).map_err(|e| EngineError::Driver(format!("{what}: {e}")))
}

/// A chunk's content as read: whole lines, without a leading byte order mark, each line
/// longer than the cap kept to its first `cap` bytes.
struct ChunkContent {
    data: Vec<u8>,
    long: Vec<LongLine>,
    /// Bytes of content, long lines counted whole.
    bytes: u64,
    /// The content offset after the chunk.
    end: u64,
    /// Why reading stopped before the chunk's end.
    failure: Option<String>,
}

/// How much of a chunk is read at a time: a line longer than the cap is dropped past its first
/// `cap` bytes as it is read, so memory holds the chunk's ordinary lines, not a runaway line.
const READ_BLOCK: usize = 1 << 20;

/// Reads a chunk's content.
fn read_chunk(spec: &ChunkSpec, max_line_bytes: usize) -> Result<ChunkContent, EngineError> {
    let reader = open_at(
        &spec.path,
        spec.compressed,
        spec.start,
        &Arc::new(AtomicU64::new(0)),
    )?;
    let expected = spec
        .end
        .map_or(READ_BLOCK as u64, |end| end.saturating_sub(spec.start));
    let mut reader = reader.take(spec.end.map_or(u64::MAX, |_| expected));
    // Sized at once: growing by doubling copies the chunk and faults in fresh pages.
    let mut lines = CappedLines::with_capacity(max_line_bytes, expected as usize);
    let (mut read, mut bom, mut failure) = (0u64, 0u64, None);
    loop {
        let from = lines.buffer().len();
        // Read in place (no block buffer to zero and copy from); what came before an error
        // is kept.
        let result = (&mut reader).take(READ_BLOCK as u64).read_to_end(lines.buffer());
        let n = lines.buffer().len() - from;
        if read == 0 && spec.start == 0 && lines.buffer().starts_with(UTF8_BOM) {
            lines.buffer().drain(..UTF8_BOM.len());
            bom = UTF8_BOM.len() as u64;
        }
        read += n as u64;
        lines.accept(from);
        match result {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                // As `process` does: the whole lines before the error count, the partial one
                // is read again by the next run.
                read -= lines.drop_partial_line();
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let (data, long) = lines.finish();
    Ok(ChunkContent {
        data,
        long,
        bytes: read - bom,
        end: spec.start + read,
        failure,
    })
}

/// Scans a chunk: counts its lines and masks every record's message, in order, for the
/// driver's miner (no messages when templates are not mined). Why mask here? Masking is most
/// of mining a message and needs nothing from the messages before it, and a chunk's messages
/// mask to a few distinct texts (about 1 in 20 on the demo's logs), which is what the driver
/// receives instead of every message.
pub fn scan_chunk(
    spec: &ChunkSpec,
    context: &WorkerContext,
) -> Result<(ChunkScan, MaskedBatch), EngineError> {
    let content = read_chunk(spec, context.max_line_bytes)?;
    let lines = count_lines(&content.data);
    let job = file_job_of(spec, context)?;
    let mut hours: Option<(i64, i64)> = None;
    let mut records = 0;
    let mut masker = (context.miner.as_ref()).map(|config| BatchMasker::new(config, lines as usize));
    // Lines longer than the cap are unparsed rows (written by `write_group`), not records.
    for piece in pieces(content.data, &content.long) {
        let Piece::Lines { data, .. } = piece else {
            continue;
        };
        let (text, _) = ParsedText::of(data);
        let parsed = ParsedRecords::parse(text, 1, job.parser.as_deref(), &job.ctx, |_, _, _| {
            Ok::<(), EngineError>(())
        })?;
        for record in &parsed.records {
            if let Some(masker) = &mut masker {
                masker.push(head(parsed.message(record)));
            }
            let hour = record.ts().secs().div_euclid(3600);
            hours = Some(hours.map_or((hour, hour), |(lo, hi)| (lo.min(hour), hi.max(hour))));
        }
        records += parsed.records.len() as u64;
    }
    let scan = ChunkScan {
        lines,
        records,
        hours,
        bytes: content.bytes,
        end: content.end,
        failure: content.failure,
    };
    Ok((scan, masker.map(|mut m| m.finish()).unwrap_or_default()))
}

/// Writes a group's records (with the ids the driver gave them), unparsed lines and metric
/// partial into the run's staging area `staged`, in files named after the group, and returns
/// its counts. Writing the same group again (a retried task) replaces its files.
pub fn write_group(
    group: &WriteGroup,
    context: &WorkerContext,
    staged: &Path,
    run_id: &str,
) -> Result<ChunkPartial, EngineError> {
    let staged = DataDir::create(staged)?;
    let (worker, cells) = (group.id as usize, PARTIAL_CELLS);
    let mut writers = Writers::new(&staged, run_id, worker, context.bucket_secs, cells);
    let mut stats = WorkerStats::default();
    let mut tally = TemplateTally::default();
    for (spec, templates) in &group.chunks {
        let content = read_chunk(spec, context.max_line_bytes)?;
        let job = Arc::new(file_job_of(spec, context)?);
        let mined = !templates.index.is_empty() || !templates.table.is_empty();
        let table = table_patterns(templates);
        let mut index = templates.index.as_slice();
        for piece in pieces(content.data, &content.long) {
            let chunk = Chunk::of_piece(piece, job.clone(), spec.seq, templates.first_line);
            let mut parsed = parse_chunk(chunk, &mut writers.unparsed, &mut stats)?;
            if mined {
                let records = parsed.records.records.len();
                let Some((ids, rest)) = index.split_at_checked(records) else {
                    return Err(count_mismatch(spec, templates));
                };
                parsed.templates = assigned_templates(spec, &table, ids)?;
                index = rest;
            }
            write_records(&parsed, &mut writers.records, &mut writers.partial, &mut tally)?;
            writers.save_partial_if_full()?;
        }
        if mined && !index.is_empty() {
            return Err(count_mismatch(spec, templates));
        }
    }
    writers.save_partial()?;
    let (rows, files) = writers.records.finish()?;
    stats.records_written = rows;
    stats.record_files = files;
    stats.unparsed_written = writers.unparsed.finish()?;
    Ok(ChunkPartial {
        seqs: group.chunks.iter().map(|(spec, _)| spec.seq).collect(),
        stats,
        tally,
    })
}

/// The error of a chunk whose records are not those the driver gave ids to.
fn count_mismatch(spec: &ChunkSpec, templates: &ChunkTemplates) -> EngineError {
    chunk_error(
        spec,
        format!(
            "its records differ from the {} the driver gave template ids to (was the file changed during the run?)",
            templates.index.len()
        ),
    )
}

fn chunk_error(spec: &ChunkSpec, message: String) -> EngineError {
    EngineError::Chunk {
        path: spec.path.clone(),
        seq: spec.seq,
        message,
    }
}

/// The templates of a chunk's table, each made once for all its records.
fn table_patterns(templates: &ChunkTemplates) -> Vec<Assigned> {
    (templates.table.iter())
        .map(|(id, template)| Assigned {
            id: *id,
            pattern: Arc::new(TemplatePattern::new(template)),
        })
        .collect()
}

/// The template of each record, from its place in the chunk's table.
fn assigned_templates(
    spec: &ChunkSpec,
    table: &[Assigned],
    index: &[u32],
) -> Result<Vec<Assigned>, EngineError> {
    (index.iter())
        .map(|&i| table.get(i as usize).cloned())
        .collect::<Option<_>>()
        .ok_or_else(|| chunk_error(spec, "template index out of range".to_owned()))
}

fn file_job_of(spec: &ChunkSpec, context: &WorkerContext) -> Result<FileJob, EngineError> {
    let parser = match &spec.format {
        None => None,
        Some(name) => Some(
            context
                .parsers
                .by_name(name)
                .ok_or_else(|| EngineError::setting("format", format!("unknown format {name:?}")))?,
        ),
    };
    // A format whose header names its columns reads it from the file's start, as the
    // driver's detection did.
    let parser = match parser {
        Some(p) if p.has_header() => Some(fit_to_head(p, &read_head(&spec.path, spec.compressed)?)),
        other => other,
    };
    Ok(FileJob {
        source: spec.source.clone(),
        parser,
        host: spec.host.clone(),
        service: spec.service.clone(),
        ctx: ParseContext {
            reference: spec.reference,
            zone: context.zone,
        },
        input: spec.input,
    })
}

/// The driver of a distributed run: holds the data directory's write lock from `begin` to
/// `finish`, plans the chunks, mines templates in input order, and commits.
pub struct DistributedRun {
    start: RunStart,
    plans: Vec<InputPlan>,
    chunks: Vec<ChunkSpec>,
    /// Per chunk, its plan.
    plan_of: Vec<usize>,
    /// Per plan, the number of its next line.
    next_line: Vec<u64>,
    /// The next chunk to mine.
    next: u64,
    /// Mined chunks not yet handed out in a [`WriteGroup`].
    pending: Vec<Mined>,
    /// Content bytes of `pending`.
    pending_bytes: u64,
    /// Bytes of a write group, and of mined chunks held back to form groups.
    group_bytes: u64,
    window_bytes: u64,
    /// Chunks whose partials were absorbed.
    written: BTreeSet<u64>,
    /// Per chunk, its bytes on disk (a gzip file's size: its chunk is the whole file) and,
    /// once mined, its lines: what a progress bar counts as chunks are written.
    disk_bytes: Vec<u64>,
    chunk_lines: Vec<u64>,
    /// Lines and bytes on disk of the chunks written.
    progress: (u64, u64),
    /// The absorbed partials' template tallies, merged.
    tally: TemplateTally,
    bucket_secs: i64,
    started: Instant,
}

/// A mined chunk waiting for its write group.
struct Mined {
    seq: u64,
    bytes: u64,
    hours: Option<(i64, i64)>,
    templates: ChunkTemplates,
}

/// Chunks a write group holds, and groups formed at once: chunks of the same hours in
/// different files (hosts) meet in one group when a window holds them all.
const GROUP_CHUNKS: u64 = 8;
const WINDOW_GROUPS: u64 = 8;

impl DistributedRun {
    /// Takes the write lock, plans the inputs as `process` does (checkpoints, rotated copies,
    /// format detection) and cuts them into chunks of about `options.chunk_bytes`.
    pub fn begin(options: &ProcessOptions, run_id: &str) -> Result<DistributedRun, EngineError> {
        let started = Instant::now();
        if options.inputs.iter().any(|i| i.path.as_os_str() == STDIN) {
            return Err(EngineError::setting(
                "--engine",
                "standard input cannot be processed by a distributed engine (use --engine local)",
            ));
        }
        let mut start = RunStart::begin(options, run_id)?;
        let mut plans = plan_inputs(options, &start.checkpoints, None, &mut start.summary)?;
        let mut run = DistributedRun {
            start,
            plans: Vec::new(),
            chunks: Vec::new(),
            plan_of: Vec::new(),
            next_line: Vec::new(),
            next: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            group_bytes: options.chunk_bytes as u64 * GROUP_CHUNKS,
            window_bytes: options.chunk_bytes as u64 * GROUP_CHUNKS * WINDOW_GROUPS,
            written: BTreeSet::new(),
            disk_bytes: Vec::new(),
            chunk_lines: Vec::new(),
            progress: (0, 0),
            tally: TemplateTally::default(),
            bucket_secs: options.bucket_secs,
            started,
        };
        for (p, plan) in plans.iter_mut().enumerate() {
            run.next_line.push(plan.lines_before + 1);
            match run.plan_chunks(plan, options) {
                Ok(specs) => {
                    run.plan_of.extend(specs.iter().map(|_| p));
                    run.chunks.extend(specs);
                }
                Err(e) => {
                    plan.end = Some(ReadEnd {
                        consumed: plan.offset,
                        last_line: plan.lines_before,
                        failure: Some(input_reason(e)),
                    });
                }
            }
        }
        run.plans = plans;
        run.disk_bytes = run.chunks.iter().map(disk_bytes).collect();
        run.chunk_lines = vec![0; run.chunks.len()];
        Ok(run)
    }

    /// The chunks of one input; none when it has no whole line to read.
    fn plan_chunks(
        &mut self,
        plan: &mut InputPlan,
        options: &ProcessOptions,
    ) -> Result<Vec<ChunkSpec>, EngineError> {
        let summary = &mut self.start.summary;
        let mut head = Vec::new();
        open_at(
            &plan.path,
            plan.compressed,
            plan.offset,
            &Arc::new(AtomicU64::new(0)),
        )?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|e| EngineError::io(&plan.path, e))?;
        summary.files += 1;
        let bom = if plan.offset == 0 && head.starts_with(UTF8_BOM) {
            head.drain(..UTF8_BOM.len());
            UTF8_BOM.len() as u64
        } else {
            0
        };
        // Compressed inputs are complete: their last line is read without its newline.
        let readable = if plan.compressed {
            None
        } else {
            let (end, held_back) = readable_end(plan)?;
            summary.lines_held_back += u64::from(held_back);
            // Detection samples what the run reads, as `process` does: not a last line held
            // back until its newline arrives.
            let whole_lines = end.saturating_sub(plan.offset + bom);
            head.truncate(usize::try_from(whole_lines).unwrap_or(usize::MAX));
            Some(end)
        };
        if head.is_empty() {
            // Nothing to read (an empty file, or one unterminated line): no format to detect.
            return Ok(nothing_to_read(plan));
        }
        let ctx = ParseContext {
            reference: plan.reference,
            zone: options.zone,
        };
        let job = file_job(plan, &head, ctx, options, summary);
        let ranges = match readable {
            None => vec![(plan.offset, None)],
            Some(end) => {
                let starts = |line: &str| starts_record(job.parser.as_deref(), line, &job.ctx);
                line_ranges(&plan.path, (plan.offset, end), options.chunk_bytes as u64, starts)?
                    .into_iter()
                    .map(|(s, e)| (s, Some(e)))
                    .collect()
            }
        };
        if ranges.is_empty() {
            return Ok(nothing_to_read(plan));
        }
        let first = self.chunks.len() as u64;
        Ok(ranges
            .into_iter()
            .enumerate()
            .map(|(i, (start, end))| ChunkSpec {
                seq: first + i as u64,
                input: plan.index,
                path: plan.path.clone(),
                source: job.source.clone(),
                format: job.parser.as_ref().map(|p| p.name().to_owned()),
                host: job.host.clone(),
                service: job.service.clone(),
                compressed: plan.compressed,
                start,
                end,
                reference: plan.reference,
            })
            .collect())
    }

    /// The chunks to scan and write, in input order.
    pub fn chunks(&self) -> &[ChunkSpec] {
        &self.chunks
    }

    /// Bytes on disk of all the chunks: what a progress bar runs to.
    pub fn total_bytes(&self) -> u64 {
        self.disk_bytes.iter().sum()
    }

    /// Lines and bytes on disk of the chunks written so far (their partials absorbed).
    pub fn written(&self) -> (u64, u64) {
        self.progress
    }

    /// The run's staging area, where workers write their parts.
    pub fn staged_dir(&self) -> &Path {
        self.start.staging.staged.root()
    }

    /// Takes chunk `seq`'s scan and gives its (masked) messages their template ids. Chunks must come in
    /// order (`seq` 0, 1, 2…), as in `process`, so the ids are those `process` gives. Returns
    /// the write groups ready: none until the mined chunks held back fill a window, so that
    /// chunks of the same hours can share a group.
    pub fn assign(
        &mut self,
        seq: u64,
        scan: &ChunkScan,
        messages: &MaskedBatch,
    ) -> Result<Vec<WriteGroup>, EngineError> {
        if seq != self.next {
            return Err(EngineError::Driver(format!(
                "chunk {seq} was mined out of order (expected chunk {})",
                self.next
            )));
        }
        let (Some(&p), Some(lines)) = (
            self.plan_of.get(seq as usize),
            self.chunk_lines.get_mut(seq as usize),
        ) else {
            return Err(EngineError::Driver(format!(
                "chunk {seq} is not a chunk of the run (it has {})",
                self.chunks.len()
            )));
        };
        *lines = scan.lines;
        let first_line = self.next_line[p];
        self.next_line[p] += scan.lines;
        let summary = &mut self.start.summary;
        summary.lines += scan.lines;
        summary.bytes += scan.bytes;
        let plan = &mut self.plans[p];
        if let Some(reason) = &scan.failure {
            // Only an input's last chunk may stop early (a gzip file is one chunk): later
            // chunks of a plain file that failed midway were read past the error.
            if self.plan_of.get(seq as usize + 1) == Some(&p) {
                return Err(chunk_error(&self.chunks[seq as usize], reason.clone()));
            }
        }
        plan.end = Some(ReadEnd {
            consumed: scan.end,
            last_line: self.next_line[p] - 1,
            failure: scan.failure.clone(),
        });
        self.next += 1;
        let mut templates = ChunkTemplates {
            first_line,
            ..Default::default()
        };
        if let Some(stage) = &mut self.start.miner {
            templates.index = table_of(stage, messages, &mut templates.table);
            if templates.index.len() as u64 != scan.records {
                return Err(EngineError::Driver(format!(
                    "chunk {seq} has {} records but {} messages were given",
                    scan.records,
                    templates.index.len()
                )));
            }
        }
        self.pending.push(Mined {
            seq,
            bytes: scan.bytes,
            hours: scan.hours,
            templates,
        });
        self.pending_bytes += scan.bytes;
        if self.pending_bytes >= self.window_bytes {
            return Ok(self.remaining_groups());
        }
        Ok(Vec::new())
    }

    /// Every mined chunk not yet handed out, in write groups: call it after the last chunk
    /// was mined.
    pub fn remaining_groups(&mut self) -> Vec<WriteGroup> {
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        // By first hour: the chunks of one time range of several hosts' files come together.
        pending.sort_by_key(|m| (m.hours.map_or(i64::MAX, |h| h.0), m.seq));
        let mut groups: Vec<WriteGroup> = Vec::new();
        let mut bytes = 0;
        for mined in pending {
            if groups.is_empty() || bytes >= self.group_bytes {
                groups.push(WriteGroup {
                    id: mined.seq,
                    chunks: Vec::new(),
                });
                bytes = 0;
            }
            bytes += mined.bytes.max(1);
            let Some(group) = groups.last_mut() else {
                continue;
            };
            group.id = group.id.min(mined.seq);
            group
                .chunks
                .push((self.chunks[mined.seq as usize].clone(), mined.templates));
        }
        groups
    }

    /// Merges a write group's partial into the run's, as soon as the group is written (so
    /// the driver merges while workers still write, not all at the end). A chunk written twice
    /// is an error.
    pub fn absorb(&mut self, partial: ChunkPartial) -> Result<(), EngineError> {
        for &seq in &partial.seqs {
            if !self.written.insert(seq) {
                return Err(EngineError::Driver(format!("chunk {seq} was written twice")));
            }
            let at = seq as usize;
            self.progress.0 += self.chunk_lines.get(at).copied().unwrap_or(0);
            self.progress.1 += self.disk_bytes.get(at).copied().unwrap_or(0);
        }
        self.start.summary.merge(partial.stats);
        self.tally.merge(partial.tally);
        Ok(())
    }

    /// Commits the run as `process` does, once every chunk was mined and its partial absorbed.
    pub fn finish(self) -> Result<ProcessSummary, EngineError> {
        if self.next != self.chunks.len() as u64
            || !self.pending.is_empty()
            || self.written.len() != self.chunks.len()
        {
            return Err(EngineError::Driver(format!(
                "the run has {} chunks but {} were mined and {} written",
                self.chunks.len(),
                self.next,
                self.written.len()
            )));
        }
        let RunStart {
            staging,
            checkpoints,
            summary,
            miner,
        } = self.start;
        let output = RunOutput {
            tally: self.tally,
            mined: miner,
            // Saved by the workers, one partial per group.
            metrics: MetricPartial::new(self.bucket_secs),
        };
        staging.commit(self.plans, checkpoints, output, summary, self.started)
    }
}

/// A chunk's bytes on disk: its range, or a gzip file's size.
fn disk_bytes(spec: &ChunkSpec) -> u64 {
    match spec.end {
        Some(end) => end.saturating_sub(spec.start),
        None => std::fs::metadata(&spec.path).map_or(0, |m| m.len()),
    }
}

/// Mines `messages` in order; returns each one's place in `table`, which gets the ids handed
/// out with their templates.
fn table_of(stage: &mut TemplateStage, messages: &MaskedBatch, table: &mut Vec<(u64, String)>) -> Vec<u32> {
    // Per id handed out (`Assigned::issued`, a dense index), its place in `table`.
    let mut places: Vec<u32> = Vec::new();
    (stage.assign_masked_batch(messages).into_iter())
        .map(|assigned| {
            if places.len() <= assigned.issued {
                places.resize(assigned.issued + 1, u32::MAX);
            }
            if places[assigned.issued] == u32::MAX {
                let issued = &stage.issued()[assigned.issued];
                table.push((issued.id, issued.template.clone()));
                places[assigned.issued] = (table.len() - 1) as u32;
            }
            places[assigned.issued]
        })
        .collect()
}

/// No chunks for an input with no whole line to read: it ends where it began.
fn nothing_to_read(plan: &mut InputPlan) -> Vec<ChunkSpec> {
    plan.end = Some(ReadEnd {
        consumed: plan.offset,
        last_line: plan.lines_before,
        failure: None,
    });
    Vec::new()
}

/// Where reading a plain file stops: its size, or for an input that may still grow, the end of
/// its last whole line (and whether an unterminated line is held back).
fn readable_end(plan: &InputPlan) -> Result<(u64, bool), EngineError> {
    let io = |e| EngineError::io(&plan.path, e);
    let size = std::fs::metadata(&plan.path).map_err(io)?.len();
    if plan.complete || size <= plan.offset {
        return Ok((size.max(plan.offset), false));
    }
    let mut file = std::fs::File::open(&plan.path).map_err(io)?;
    let mut end = size;
    let mut buf = vec![0u8; 64 * 1024];
    while end > plan.offset {
        let from = end.saturating_sub(buf.len() as u64).max(plan.offset);
        let block = &mut buf[..(end - from) as usize];
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        file.read_exact(block).map_err(io)?;
        if let Some(last) = memchr::memrchr(b'\n', block) {
            let whole = from + last as u64 + 1;
            return Ok((whole, whole < size));
        }
        end = from;
    }
    Ok((plan.offset, true))
}

/// Cuts `[start, end)` of a file into ranges of about `target` bytes that end after a newline
/// (or at `end`) and before a line that starts a record, so no multi-line record is split
/// (unless its continuation lines run past the multi-line cap).
fn line_ranges(
    path: &Path,
    (start, end): (u64, u64),
    target: u64,
    starts: impl Fn(&str) -> bool,
) -> Result<Vec<(u64, u64)>, EngineError> {
    let io = |e| EngineError::io(path, e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut ranges = Vec::new();
    let mut from = start;
    let mut buf = vec![0u8; 64 * 1024];
    while from < end {
        let mut cut = line_start_from(
            &mut file,
            from.saturating_add(target.max(1)).min(end),
            end,
            &mut buf,
        )
        .map_err(io)?;
        let limit = cut.saturating_add(MAX_RECORD_BYTES as u64);
        while cut < end && cut < limit && !starts_at(&mut file, cut, end, &mut buf, &starts).map_err(io)? {
            cut = line_start_from(&mut file, cut + 1, end, &mut buf).map_err(io)?;
        }
        ranges.push((from, cut));
        from = cut;
    }
    Ok(ranges)
}

/// The start of the first line at or after `at` (`at` itself when a newline is right before
/// it), or `end`.
fn line_start_from(file: &mut std::fs::File, mut at: u64, end: u64, buf: &mut [u8]) -> std::io::Result<u64> {
    while at < end {
        file.seek(SeekFrom::Start(at - 1))?;
        let want = buf.len().min((end - (at - 1)) as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Ok(end);
        }
        if let Some(nl) = memchr::memchr(b'\n', &buf[..n]) {
            return Ok(at - 1 + nl as u64 + 1);
        }
        at = (at - 1 + n as u64 + 1).min(end);
    }
    Ok(end)
}

/// Whether the line starting at `at` `starts` a record.
fn starts_at(
    file: &mut std::fs::File,
    at: u64,
    end: u64,
    buf: &mut [u8],
    starts: &impl Fn(&str) -> bool,
) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(at))?;
    let want = buf.len().min((end - at) as usize);
    let n = file.read(&mut buf[..want])?;
    let line = &buf[..n];
    let line = memchr::memchr(b'\n', line).map_or(line, |nl| &line[..nl]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(starts(&String::from_utf8_lossy(line)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ranges_cover_the_file_and_end_after_newlines(
            lines in proptest::collection::vec("(\\t[a-z]{1,40})|[a-z]{0,40}", 0..60),
            target in 1u64..200,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a.log");
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&path, &text).unwrap();
            let ranges = line_ranges(&path, (0, text.len() as u64), target, |l| starts_record(None, l, &ParseContext::default())).unwrap();
            let mut at = 0;
            for (s, e) in &ranges {
                prop_assert_eq!(*s, at);
                prop_assert!(e > s);
                prop_assert_eq!(text.as_bytes()[*e as usize - 1], b'\n');
                // A range never starts on a stack trace's (indented) line, but for the first.
                if *s > 0 {
                    prop_assert!(text.as_bytes()[*s as usize] != b'\t');
                }
                at = *e;
            }
            prop_assert_eq!(at, text.len() as u64);
        }
    }
}
