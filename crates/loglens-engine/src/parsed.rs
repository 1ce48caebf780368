//! A chunk of lines parsed once: its text and, per parsed line, the record as spans of that
//! text, so the records can travel from the parsing worker through the template stage to a
//! writing worker without being parsed again or copied field by field.
//!
//! Why spans? A [`Record`] borrows from its line, and the line's chunk has to move between
//! threads; spans (offsets) move with it and turn back into a borrowing `Record` where it is
//! written. Only fields a parser had to build (unescaped JSON strings) are copied, into a side
//! buffer.

use std::borrow::Cow;
use std::ops::Range;

use loglens_core::format::multiline::{Continuation, MAX_RECORD_BYTES, MAX_RECORD_LINES};
use loglens_core::format::{LineParser, ParseContext, ParseError};
use loglens_core::{Access, Level, Record, Timestamp};
use memchr::memchr_iter;

/// Text of a [`ParsedText`]: a byte range of its lines, or past their end, of its side buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

/// The text of a chunk's lines (invalid UTF-8 replaced) and of the fields built while parsing.
#[derive(Debug, Default)]
pub(crate) struct ParsedText {
    lines: String,
    built: String,
}

impl ParsedText {
    /// The text of a chunk's bytes and how many of its lines were not valid UTF-8 (each such
    /// line has its invalid bytes replaced with U+FFFD, line by line, as a parser sees it).
    pub(crate) fn of(data: Vec<u8>) -> (ParsedText, u64) {
        let (lines, invalid) = match String::from_utf8(data) {
            Ok(text) => (text, 0),
            Err(e) => lossy_lines(&e.into_bytes()),
        };
        (
            ParsedText {
                lines,
                built: String::new(),
            },
            invalid,
        )
    }

    /// The text of `span`.
    pub(crate) fn get(&self, span: Span) -> &str {
        span_text(&self.lines, &self.built, span)
    }
}

/// The text of `span` over `lines` and, past their end, `built`.
fn span_text<'t>(lines: &'t str, built: &'t str, span: Span) -> &'t str {
    let base = lines.len();
    if span.start < base || span.start == span.end {
        lines.get(span.start..span.end).unwrap_or_default()
    } else {
        built.get(span.start - base..span.end - base).unwrap_or_default()
    }
}

/// Builds spans for the fields of records parsed from `lines`; fields that do not point into
/// `lines` are copied to `built`.
struct Spanner<'t> {
    lines: &'t str,
    built: &'t mut String,
}

impl Spanner<'_> {
    fn span(&mut self, text: &str) -> Span {
        let base = self.lines.as_ptr() as usize;
        let at = text.as_ptr() as usize;
        // Pointer arithmetic on addresses only: a borrowed field lies inside the lines.
        if at >= base && at + text.len() <= base + self.lines.len() {
            let start = at - base;
            return Span {
                start,
                end: start + text.len(),
            };
        }
        let start = self.lines.len() + self.built.len();
        self.built.push_str(text);
        Span {
            start,
            end: start + text.len(),
        }
    }

    fn opt(&mut self, text: Option<&str>) -> Option<Span> {
        text.map(|t| self.span(t))
    }

    /// `message` with `line` (a later line of `lines`) appended after a newline: the same span
    /// grown when the message ends right before that line, else a copy in `built`.
    fn append_line(&mut self, message: Span, line: &str) -> Span {
        let line_start = (line.as_ptr() as usize).wrapping_sub(self.lines.as_ptr() as usize);
        if message.end <= self.lines.len() && self.lines.get(message.end..line_start) == Some("\n") {
            return Span {
                start: message.start,
                end: line_start + line.len(),
            };
        }
        let built_end = self.lines.len() + self.built.len();
        let start = if message.end == built_end && message.start >= self.lines.len() {
            message.start
        } else {
            let copied = span_text(self.lines, self.built, message).to_owned();
            self.built.push_str(&copied);
            built_end
        };
        self.built.push('\n');
        self.built.push_str(line);
        Span {
            start,
            end: self.lines.len() + self.built.len(),
        }
    }
}

/// The typed fields of an access log line, as spans.
#[derive(Debug, Clone)]
struct AccessSpans {
    client_ip: Span,
    user: Option<Span>,
    method: Option<Span>,
    path: Option<Span>,
    protocol: Option<Span>,
    status: u16,
    bytes: Option<u64>,
    latency_ms: Option<f64>,
    referer: Option<Span>,
    user_agent: Option<Span>,
}

/// One parsed line as spans of its chunk's text.
#[derive(Debug, Clone)]
pub(crate) struct ParsedRecord {
    /// The line number within the input of its first line.
    pub(crate) line: u64,
    /// Its physical lines: 1, or more when continuation lines (a stack trace) joined it.
    pub(crate) lines: u32,
    ts: Timestamp,
    level: Option<Level>,
    host: Option<Span>,
    service: Option<Span>,
    message: Span,
    /// Its access fields' index in the chunk's [`Fields::access`].
    access: Option<usize>,
    /// Its key/value pairs in the chunk's [`Fields::attrs`].
    attrs: Range<usize>,
}

/// The fields of a chunk's records that not every record has, kept beside the records so a
/// record stays small and costs no allocation of its own.
#[derive(Debug, Default)]
struct Fields {
    access: Vec<AccessSpans>,
    attrs: Vec<(Span, Span)>,
    /// Records the chunk is expected to give: the access list is sized for them once it is
    /// needed (in an access log every record has access fields; elsewhere none has).
    expected: usize,
}

impl Fields {
    /// Adds a record's access fields; their index.
    fn push_access(&mut self, access: AccessSpans) -> usize {
        if self.access.capacity() == 0 {
            self.access.reserve(self.expected);
        }
        self.access.push(access);
        self.access.len() - 1
    }
}

impl ParsedRecord {
    /// Its timestamp.
    pub(crate) fn ts(&self) -> Timestamp {
        self.ts
    }
}

/// The records of a chunk, as spans of its text.
#[derive(Debug, Default)]
pub(crate) struct ParsedRecords {
    pub(crate) text: ParsedText,
    pub(crate) records: Vec<ParsedRecord>,
    fields: Fields,
    /// Lines joined to the record before them (see [`Continuation`]).
    pub(crate) continuation_lines: u64,
    /// Lines that gave records (a batch line may give several).
    lines_with_records: u64,
}

impl ParsedRecords {
    /// Parses every line of `text` with `parser`; lines it refuses (every line without a
    /// parser: `None`) go to `refused(line, text, error)`, which may fail (and stops the parse),
    /// except continuation lines right after a record, which join it up to its cap.
    pub(crate) fn parse<E>(
        text: ParsedText,
        first_line: u64,
        parser: Option<&dyn LineParser>,
        ctx: &ParseContext,
        mut refused: impl FnMut(u64, &str, Option<ParseError>) -> Result<(), E>,
    ) -> Result<ParsedRecords, E> {
        let ParsedText { lines, mut built } = text;
        // A record per line is the usual case: sized for it, the list never grows while filled.
        let expected = memchr_iter(b'\n', lines.as_bytes()).count() + 1;
        let mut records = Vec::with_capacity(expected);
        let mut fields = Fields {
            expected,
            ..Fields::default()
        };
        let mut continuation_lines = 0;
        let mut lines_with_records = 0;
        let mut spanner = Spanner {
            lines: &lines,
            built: &mut built,
        };
        // Whether the last record is right before this line, so a continuation may join it.
        let mut open = false;
        let continuation = parser.map_or(Continuation::default(), |p| p.continuation());
        // The record whose block of lines is still growing, for formats that read blocks.
        let block_reader = parser.filter(|p| p.reads_blocks());
        let mut block: Option<usize> = None;
        let close_block = |block: &mut Option<usize>,
                           records: &mut [ParsedRecord],
                           spanner: &mut Spanner<'_>,
                           fields: &mut Fields| {
            if let (Some(reader), Some(i)) = (block_reader, block.take()) {
                reread_block(reader, ctx, &mut records[i], spanner, fields);
            }
        };
        for (line_no, line) in lines_of(&lines, first_line) {
            let before = records.len();
            let parsed = parser.map(|p| {
                p.parse_each(line, ctx, &mut |record| {
                    records.push(span_record(&record, line_no, &mut spanner, &mut fields));
                })
            });
            let error = match parsed {
                Some(Ok(())) if records.len() > before => {
                    lines_with_records += 1;
                    open = true;
                    close_block(&mut block, &mut records, &mut spanner, &mut fields);
                    block = Some(records.len() - 1);
                    continue;
                }
                Some(Ok(())) => None,
                Some(Err(e)) => {
                    // A batch line that failed part-way keeps no record.
                    records.truncate(before);
                    Some(e)
                }
                None => None,
            };
            let last = records.last_mut().filter(|_| open && continuation.joins(line));
            match last {
                Some(last) if has_room(last, line) => {
                    last.message = spanner.append_line(last.message, line);
                    last.lines += 1;
                    continuation_lines += 1;
                }
                Some(_) => {
                    close_block(&mut block, &mut records, &mut spanner, &mut fields);
                    refused(line_no, line, Some(ParseError::RecordFull))?;
                }
                None => {
                    open = false;
                    close_block(&mut block, &mut records, &mut spanner, &mut fields);
                    refused(line_no, line, error)?;
                }
            }
        }
        close_block(&mut block, &mut records, &mut spanner, &mut fields);
        Ok(ParsedRecords {
            text: ParsedText { lines, built },
            records,
            fields,
            continuation_lines,
            lines_with_records,
        })
    }

    /// Physical lines of the records: lines that parsed, continuation lines included.
    pub(crate) fn lines_parsed(&self) -> u64 {
        self.lines_with_records + self.continuation_lines
    }

    /// The message of a record.
    pub(crate) fn message(&self, record: &ParsedRecord) -> &str {
        self.text.get(record.message)
    }

    /// A record, borrowing from this chunk.
    pub(crate) fn record(&self, r: &ParsedRecord) -> Record<'_> {
        let text = |span: Span| self.text.get(span);
        let opt = |span: Option<Span>| span.map(|s| self.text.get(s));
        Record {
            ts: r.ts,
            host: opt(r.host).map(Cow::Borrowed),
            service: opt(r.service).map(Cow::Borrowed),
            level: r.level,
            message: Cow::Borrowed(text(r.message)),
            access: r.access.and_then(|i| self.fields.access.get(i)).map(|a| Access {
                client_ip: text(a.client_ip),
                user: opt(a.user),
                method: opt(a.method),
                path: opt(a.path),
                protocol: opt(a.protocol),
                status: a.status,
                bytes: a.bytes,
                latency_ms: a.latency_ms,
                referer: opt(a.referer),
                user_agent: opt(a.user_agent),
            }),
            attrs: self
                .fields
                .attrs
                .get(r.attrs.clone())
                .unwrap_or_default()
                .iter()
                .map(|&(k, v)| (Cow::Borrowed(text(k)), Cow::Borrowed(text(v))))
                .collect(),
        }
    }
}

/// Parses `data` (whole lines, as read from a file) as `process` parses a chunk of it: a line
/// that continues a record (a stack trace) joins it, a batch line may give several records, a
/// block format reads its block. Records go to `records` with `labels`; each refused line goes
/// to `refused` with its number and the reason `unparsed/` gives. Returns the lines that were
/// not valid UTF-8 (kept with U+FFFD). A format whose header names its columns (W3C, Zeek)
/// reads it from `data`'s first lines, as from a file's. For callers outside the pipeline (the
/// Python binding).
pub fn parse_into_columns(
    data: Vec<u8>,
    parser: std::sync::Arc<dyn LineParser>,
    ctx: &ParseContext,
    labels: &loglens_store::Labels<'_>,
    records: &mut loglens_store::RecordColumns,
    refused: &mut dyn FnMut(u64, &str, String),
) -> u64 {
    let parser = if parser.has_header() {
        crate::pipeline::fit_to_head(parser, crate::pipeline::head_of(&data))
    } else {
        parser
    };
    let (text, invalid) = ParsedText::of(data);
    let parsed = ParsedRecords::parse(text, 1, Some(parser.as_ref()), ctx, |line, raw, error| {
        refused(line, raw, crate::pipeline::refusal(error).1);
        Ok::<(), std::convert::Infallible>(())
    });
    let Ok(parsed) = parsed;
    for r in &parsed.records {
        let lines = loglens_store::LineRange {
            first: r.line,
            count: r.lines,
        };
        records.push(&parsed.record(r), lines, labels, None);
    }
    invalid
}

/// Where to end a chunk of `data` whose last newline is at `last_newline` so that no record is
/// cut: before the last whole line that `starts` a record (see
/// [`loglens_core::format::starts_record`]), when one other than the first does; else right
/// after the last newline (a record longer than the chunk, whose later lines go beyond the
/// multi-line cap anyway).
pub(crate) fn record_boundary(data: &[u8], last_newline: usize, starts: impl Fn(&str) -> bool) -> usize {
    let after_last = last_newline + 1;
    let mut end = last_newline;
    while end > 0 && after_last - end <= MAX_RECORD_BYTES {
        let start = memchr::memrchr(b'\n', &data[..end]).map_or(0, |nl| nl + 1);
        if start == 0 {
            break;
        }
        let line = &data[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if starts(&String::from_utf8_lossy(line)) {
            return start;
        }
        end = start - 1;
    }
    after_last
}

fn lines_of(text: &str, first_line: u64) -> impl Iterator<Item = (u64, &str)> {
    let ends = memchr_iter(b'\n', text.as_bytes())
        .chain((!text.ends_with('\n') && !text.is_empty()).then_some(text.len()));
    let mut start = 0;
    (first_line..).zip(ends).map(move |(line_no, end)| {
        let mut line = text.get(start..end).unwrap_or_default();
        start = end + 1;
        if let Some(rest) = line.strip_suffix('\r') {
            line = rest;
        }
        (line_no, line)
    })
}

/// Whether `line` fits in `record` under the multi-line caps.
fn has_room(record: &ParsedRecord, line: &str) -> bool {
    record.lines < MAX_RECORD_LINES
        && record.message.end - record.message.start + 1 + line.len() <= MAX_RECORD_BYTES
}

/// `record` read again from its whole block of lines (its message so far: the first line's
/// text and the lines joined to it); as it was when the format cannot read the block.
fn reread_block(
    reader: &dyn LineParser,
    ctx: &ParseContext,
    record: &mut ParsedRecord,
    spanner: &mut Spanner<'_>,
    fields: &mut Fields,
) {
    // A copy: the block may lie in `built`, which spanning the new record appends to.
    let block = span_text(spanner.lines, spanner.built, record.message).to_owned();
    if let Ok(read) = reader.parse_block(&block, ctx) {
        *record = ParsedRecord {
            lines: record.lines,
            ..span_record(&read, record.line, spanner, fields)
        };
    }
}

fn span_record(
    record: &Record<'_>,
    line: u64,
    spanner: &mut Spanner<'_>,
    fields: &mut Fields,
) -> ParsedRecord {
    let first_attr = fields.attrs.len();
    for (k, v) in &record.attrs {
        let pair = (spanner.span(k), spanner.span(v));
        fields.attrs.push(pair);
    }
    let access = record.access.as_ref().map(|a| {
        fields.push_access(AccessSpans {
            client_ip: spanner.span(a.client_ip),
            user: spanner.opt(a.user),
            method: spanner.opt(a.method),
            path: spanner.opt(a.path),
            protocol: spanner.opt(a.protocol),
            status: a.status,
            bytes: a.bytes,
            latency_ms: a.latency_ms,
            referer: spanner.opt(a.referer),
            user_agent: spanner.opt(a.user_agent),
        })
    });
    ParsedRecord {
        line,
        lines: 1,
        ts: record.ts,
        level: record.level,
        host: spanner.opt(record.host.as_deref()),
        service: spanner.opt(record.service.as_deref()),
        message: spanner.span(&record.message),
        access,
        attrs: first_attr..fields.attrs.len(),
    }
}

/// The lines of bytes that are not all valid UTF-8: each line's invalid bytes replaced, and
/// how many lines had some.
fn lossy_lines(data: &[u8]) -> (String, u64) {
    let mut text = String::with_capacity(data.len() + 16);
    let mut invalid = 0;
    let mut start = 0;
    let ends = memchr_iter(b'\n', data).chain((data.last() != Some(&b'\n')).then_some(data.len()));
    for end in ends {
        let line = data.get(start..end).unwrap_or_default();
        match std::str::from_utf8(line) {
            Ok(valid) => text.push_str(valid),
            Err(_) => {
                invalid += 1;
                text.push_str(&String::from_utf8_lossy(line));
            }
        }
        if end < data.len() {
            text.push('\n');
        }
        start = end + 1;
    }
    (text, invalid)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `HEAD rest`: host HEAD upper-cased (an owned field, as a parser that unescapes builds
    /// it), message `rest`, attribute `k=HEAD`; HEAD may not start with white space or a
    /// capital letter.
    struct Words;

    impl LineParser for Words {
        fn name(&self) -> &str {
            "words"
        }

        fn parse<'a>(&self, line: &'a str, _: &ParseContext) -> Result<Record<'a>, ParseError> {
            let (head, rest) = line.split_once(' ').ok_or(ParseError::Layout("words"))?;
            if head.starts_with(|c: char| c.is_whitespace() || c.is_uppercase()) {
                return Err(ParseError::Layout("words"));
            }
            let mut record = Record::new(Timestamp::from_secs(1), rest);
            record.host = Some(Cow::Owned(head.to_uppercase()));
            record.attrs.push((Cow::Borrowed("k"), Cow::Borrowed(head)));
            Ok(record)
        }
    }

    fn stack_trace_starts(line: &str) -> bool {
        use loglens_core::format::starts_record;
        starts_record(None, line, &ParseContext::default())
    }

    #[test]
    fn chunks_end_before_the_last_record_start() {
        let data = b"head 1\nhead 2\n\tat a.B(B.java:1)\n\tat a.C(C.java:2)\npartial";
        let last = memchr::memrchr(b'\n', data).unwrap();
        assert_eq!(
            &data[record_boundary(data, last, stack_trace_starts)..],
            b"head 2\n\tat a.B(B.java:1)\n\tat a.C(C.java:2)\npartial"
        );
        let only_one_record = b"head 1\n\tat a.B(B.java:1)\n";
        assert_eq!(
            record_boundary(only_one_record, only_one_record.len() - 1, stack_trace_starts),
            only_one_record.len()
        );
    }

    #[test]
    fn chunks_of_a_format_joining_untimed_lines_end_before_a_line_it_reads() {
        use loglens_core::format::starts_record;
        let parsers = crate::input::Parsers::from_config(&crate::Config::default()).unwrap();
        let logback = parsers.by_name("logback").unwrap();
        let ctx = ParseContext::default();
        let starts = |line: &str| starts_record(Some(logback.as_ref()), line, &ctx);
        let data = b"2026-03-04 05:06:07.123 [db-1] WARN  c.e.Repo - slow query:\nSELECT 1\n\
                     2026-03-04 05:06:08.123 [db-2] WARN  c.e.Repo - slow query:\nSELECT o.id\nFROM orders o\npart";
        let last = memchr::memrchr(b'\n', data).unwrap();
        let cut = record_boundary(data, last, starts);
        assert!(
            data[cut..].starts_with(b"2026-03-04 05:06:08.123 [db-2]"),
            "{:?}",
            std::str::from_utf8(&data[cut..])
        );
        // Under the stack-trace rule, `FROM orders o` would start a record.
        assert!(data[record_boundary(data, last, stack_trace_starts)..].starts_with(b"FROM orders o"));
        // A NUL run never continues a record, so a chunk may end before it.
        let damaged =
            b"2026-03-04 05:06:07.123 [db-1] WARN  c.e.Repo - slow query:\nSELECT 1\n\0\0\0\nSELECT 2\n";
        let cut = record_boundary(damaged, damaged.len() - 1, starts);
        assert_eq!(&damaged[cut..], b"\0\0\0\nSELECT 2\n");
    }

    #[test]
    fn continuation_lines_join_the_record_before_them() {
        let data = b"web failed\n\tat a.B(B.java:1)\r\nCaused by: x.YException: no\n\t... 2 more\nbroken\n\tat orphan.After(Broken.java:2)\nweb ok".to_vec();
        let (text, _) = ParsedText::of(data);
        let mut refused = Vec::new();
        let parsed = ParsedRecords::parse(text, 1, Some(&Words), &ParseContext::default(), |line, _, _| {
            refused.push(line);
            Ok::<(), ()>(())
        })
        .unwrap();
        let messages: Vec<&str> = parsed.records.iter().map(|r| parsed.message(r)).collect();
        assert_eq!(
            messages,
            [
                "failed\n\tat a.B(B.java:1)\nCaused by: x.YException: no\n\t... 2 more",
                "ok"
            ]
        );
        let lines: Vec<(u64, u32)> = parsed.records.iter().map(|r| (r.line, r.lines)).collect();
        assert_eq!(lines, [(1, 4), (7, 1)]);
        // A continuation after an unparsed line has no record to join.
        assert_eq!(refused, [5, 6]);
        assert_eq!(parsed.continuation_lines, 3);
        assert_eq!(parsed.lines_parsed() + refused.len() as u64, 7);
    }

    #[test]
    fn records_stop_growing_at_the_cap() {
        let mut data = String::from("web failed\n");
        for i in 0..MAX_RECORD_LINES + 5 {
            data.push_str(&format!("\tat{i}\n"));
        }
        let (text, _) = ParsedText::of(data.into_bytes());
        let mut refused = Vec::new();
        let parsed = ParsedRecords::parse(text, 1, Some(&Words), &ParseContext::default(), |line, _, e| {
            refused.push((line, e));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(parsed.records[0].lines, MAX_RECORD_LINES);
        assert_eq!(refused.len(), 6);
        assert!(refused.iter().all(|(_, e)| *e == Some(ParseError::RecordFull)));
        assert_eq!(refused[0].0, u64::from(MAX_RECORD_LINES) + 1);
    }

    #[test]
    fn records_come_back_as_parsed_and_refused_lines_are_reported() {
        let data = b"web hello world\r\nbroken\nd\xffb last line".to_vec();
        let (text, invalid) = ParsedText::of(data);
        assert_eq!(invalid, 1);
        let mut refused = Vec::new();
        let ctx = ParseContext::default();
        let parsed = ParsedRecords::parse(text, 10, Some(&Words), &ctx, |line, text, _| {
            refused.push((line, text.to_owned()));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(refused, vec![(11, "broken".to_owned())]);
        let records: Vec<Record<'_>> = parsed.records.iter().map(|r| parsed.record(r)).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0], Words.parse("web hello world", &ctx).unwrap());
        assert_eq!(records[1], Words.parse("d\u{fffd}b last line", &ctx).unwrap());
        assert_eq!(parsed.records[1].line, 12);
        assert_eq!(parsed.message(&parsed.records[0]), "hello world");
    }
}
