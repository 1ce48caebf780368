//! Log formats: each built-in [`Format`] parses a line into a [`Record`] and renders a record
//! back into a line (the generator and the round-trip property tests use the renderer).
//! User formats (a regex with named groups) implement the same [`LineParser`] trait.
//!
//! Why one trait for parsing and a separate function for rendering? Every format parses, but
//! only built-in formats render: a user regex has no inverse.

use std::fmt;
use std::str::FromStr;

use crate::record::Record;
use crate::time::{TimeError, Timestamp};

pub mod apache_error;
pub mod combined;
pub mod cri;
pub mod docker;
mod fields;
pub use fields::{is_time_key, FieldKeys, KeyMapping};
pub mod generic;
pub mod journald;
pub mod jsonl;
pub mod logcat;
pub mod logfmt;
pub mod mapped;
pub mod multiline;
pub mod mysql;
pub mod mysql_slow;
pub mod otel;
pub mod postgres;
pub mod pylog;
pub mod redis;
pub mod regex;
pub mod syslog3164;
pub mod syslog5424;
pub mod w3c;
pub mod zeek;

/// What a parser needs to know besides the line: data, never a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseContext {
    /// The time the line was written at the latest (the file's modification time): formats
    /// without a year (RFC 3164) take the year that puts the line at or before it.
    pub reference: Timestamp,
    /// The zone of timestamps that carry none.
    pub zone: crate::zone::LocalZone,
}

/// Why a line did not parse. The `Display` text is what the unparsed dataset stores;
/// [`ParseError::kind`] is the coarse reason the summary counts by.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The line does not have the format's shape at all.
    #[error("not {0}")]
    Layout(&'static str),
    /// A required field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field is present but its value is not valid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, e.g. `status`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The timestamp could not be read.
    #[error("bad timestamp: {0}")]
    Time(#[from] TimeError),
    /// The line is not valid JSON (with serde_json's explanation).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The line is empty or only white space.
    #[error("empty line")]
    Empty,
    /// A continuation line (a stack trace's) after a record that already holds
    /// [`multiline::MAX_RECORD_LINES`] lines or [`multiline::MAX_RECORD_BYTES`] bytes.
    #[error(
        "continues a multi-line record already at its cap ({} lines, {} bytes)",
        multiline::MAX_RECORD_LINES,
        multiline::MAX_RECORD_BYTES
    )]
    RecordFull,
    /// A header directive (`#Fields:`, `#separator`…) of a format whose header names its
    /// columns: it describes the file, it is not an event.
    #[error("header line (a #directive), not an event")]
    Header,
}

impl ParseError {
    /// A short, stable reason class for counting (the full text may name columns).
    pub fn kind(&self) -> &'static str {
        match self {
            ParseError::Layout(_) => "layout mismatch",
            ParseError::Missing(field) => field,
            ParseError::Invalid { field, .. } => field,
            ParseError::Time(_) => "bad timestamp",
            ParseError::Json(_) => "invalid JSON",
            ParseError::Empty => "empty line",
            ParseError::RecordFull => "multi-line record cap",
            ParseError::Header => "header line",
        }
    }
}

/// Turns one line into a record. Implementations are cheap to call and hold no per-line state,
/// so one parser serves every thread.
pub trait LineParser: Send + Sync {
    /// The format name stored in the `format` column.
    fn name(&self) -> &str;
    /// Parses a line (without its line terminator).
    fn parse<'a>(&self, line: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError>;

    /// Parses a line into every record it holds, handing each to `each`: one for most
    /// formats, several for a batch line (OTLP/JSON `resourceLogs`).
    fn parse_each<'a>(
        &self,
        line: &'a str,
        ctx: &ParseContext,
        each: &mut dyn FnMut(Record<'a>),
    ) -> Result<(), ParseError> {
        each(self.parse(line, ctx)?);
        Ok(())
    }

    /// One line on what the format reads, for `loglens formats list` (built-in Rust formats
    /// answer through [`Format::description`]).
    fn description(&self) -> Option<&str> {
        None
    }

    /// A line of the format, for `loglens formats list`.
    fn example(&self) -> Option<&str> {
        None
    }

    /// Whether a file's header names this format's columns (W3C `#Fields:`, Zeek `#fields`),
    /// so the parser should be fitted to each file with [`LineParser::for_file`].
    fn has_header(&self) -> bool {
        false
    }

    /// This format's parser fitted to the file whose first lines are `head`, when they hold
    /// its header; `None` otherwise (and for formats without one).
    fn for_file(&self, _head: &[&str]) -> Option<Box<dyn LineParser>> {
        None
    }

    /// Which refused lines continue the record before them (see [`multiline`]).
    fn continuation(&self) -> multiline::Continuation {
        multiline::Continuation::StackTrace
    }

    /// Whether a record of this format is read from its whole block of lines (the first one
    /// [`LineParser::parse`] read, then those it joined) by [`LineParser::parse_block`].
    fn reads_blocks(&self) -> bool {
        false
    }

    /// The record of a block of lines joined by newlines (see [`LineParser::reads_blocks`]);
    /// by default, the first line's.
    fn parse_block<'a>(&self, block: &'a str, ctx: &ParseContext) -> Result<Record<'a>, ParseError> {
        self.parse(block.split('\n').next().unwrap_or_default(), ctx)
    }
}

/// Whether `line` starts a record of `parser`'s file (a chunk of input may be cut before it):
/// a line the format reads, or one that cannot continue a record. Without a parser, any line
/// but a stack trace's.
pub fn starts_record(parser: Option<&dyn LineParser>, line: &str, ctx: &ParseContext) -> bool {
    match parser {
        Some(p) if p.continuation() == multiline::Continuation::Any => {
            !multiline::Continuation::Any.joins(line) || p.parse_each(line, ctx, &mut |_| {}).is_ok()
        }
        _ => !multiline::continues_record(line),
    }
}

/// The value of a header directive `name` (e.g. `#Fields:`) on `line`, trimmed.
pub(crate) fn header_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let value = line.strip_prefix(name)?;
    value.starts_with([' ', '\t']).then(|| value.trim())
}

/// The built-in formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// nginx/Apache combined log format, optionally followed by the request time in seconds.
    Combined,
    /// NCSA Common Log Format.
    Common,
    /// BSD syslog, RFC 3164 (`<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, PRI optional).
    Syslog3164,
    /// IETF syslog, RFC 5424.
    Syslog5424,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs (Heroku / Go logfmt).
    Logfmt,
    /// Python logging `%(asctime)s - %(name)s - %(levelname)s - %(message)s`.
    PythonLogging,
    /// systemd journal export, `journalctl -o json`.
    Journald,
    /// Docker's json-file logging driver.
    Docker,
    /// CRI container logs (containerd, CRI-O, Kubernetes).
    Cri,
    /// PostgreSQL with the default `log_line_prefix` `%m [%p] `.
    Postgres,
    /// MySQL 8.0 error log.
    Mysql,
    /// Redis server log.
    Redis,
    /// Apache httpd error log (2.2 and 2.4).
    ApacheError,
    /// Android logcat, `threadtime` layout.
    Logcat,
    /// W3C extended log file format (IIS), columns named by `#Fields:`.
    W3c,
    /// Zeek (Bro) TSV logs, columns named by `#fields`.
    Zeek,
    /// OpenTelemetry logs as JSON (OTLP/JSON batches, log records, the data model).
    Otel,
}

impl Format {
    /// Every built-in format, in the order auto-detection prefers on a tie.
    /// Formats whose lines another format also reads come first: Docker's and the journal's
    /// JSON objects before `json`.
    pub const ALL: [Format; 18] = [
        Format::Combined,
        Format::Common,
        Format::W3c,
        Format::Zeek,
        Format::Syslog5424,
        Format::PythonLogging,
        Format::Docker,
        Format::Journald,
        Format::Otel,
        Format::Cri,
        Format::Postgres,
        Format::Mysql,
        Format::Redis,
        Format::ApacheError,
        Format::Logcat,
        Format::Syslog3164,
        Format::Json,
        Format::Logfmt,
    ];

    /// Every built-in name, comma-separated, for error messages.
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }

    /// The name used in configs, on the command line and in the `format` column.
    pub fn name(self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::Common => "common",
            Format::Syslog3164 => "syslog3164",
            Format::Syslog5424 => "syslog5424",
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::PythonLogging => "pylog",
            Format::Journald => "journald",
            Format::Docker => "docker",
            Format::Cri => "cri",
            Format::Postgres => "postgres",
            Format::Mysql => "mysql",
            Format::Redis => "redis",
            Format::ApacheError => "apache_error",
            Format::Logcat => "logcat",
            Format::W3c => "w3c",
            Format::Zeek => "zeek",
            Format::Otel => "otel",
        }
    }

    /// One line on what the format is, for `loglens formats list`.
    pub fn description(self) -> &'static str {
        match self {
            Format::Combined => "nginx/Apache combined access log (extra trailing fields kept as attrs)",
            Format::Common => "NCSA Common Log Format access log",
            Format::Syslog3164 => "BSD syslog (RFC 3164; also ISO times, journalctl -o short-iso)",
            Format::Syslog5424 => "IETF syslog (RFC 5424) with structured data",
            Format::Json => "JSON lines with ts/time/timestamp/@timestamp and level/msg keys",
            Format::Logfmt => "logfmt key=value pairs (Heroku, Go slog, logrus)",
            Format::PythonLogging => "Python logging `%(asctime)s - %(name)s - %(levelname)s - %(message)s`",
            Format::Journald => "systemd journal export, journalctl -o json",
            Format::Docker => "Docker json-file logging driver",
            Format::Cri => "CRI container logs (containerd, CRI-O, Kubernetes /var/log/pods)",
            Format::Postgres => "PostgreSQL, default log_line_prefix '%m [%p] '",
            Format::Mysql => "MySQL 8.0 error log",
            Format::Redis => "Redis server log",
            Format::ApacheError => "Apache httpd error log (2.2 and 2.4)",
            Format::Logcat => "Android logcat, -v threadtime",
            Format::W3c => "W3C extended log (IIS, CDNs), columns from the #Fields: header",
            Format::Zeek => "Zeek (Bro) TSV logs (conn, http, dns…), columns from the #fields header",
            Format::Otel => "OpenTelemetry JSON logs: OTLP/JSON batches (Collector file exporter), log records, data model",
        }
    }

    /// A line of the format, for `loglens formats list`.
    pub fn example(self) -> &'static str {
        match self {
            Format::Combined => r#"203.0.113.7 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8.5.0""#,
            Format::Common => r#"203.0.113.7 - frank [10/Oct/2026:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326"#,
            Format::Syslog3164 => "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
            Format::Syslog5424 => r#"<165>1 2026-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#,
            Format::Json => r#"{"ts":"2026-10-11T22:14:15.003Z","level":"error","msg":"upstream timeout","service":"api"}"#,
            Format::Logfmt => r#"ts=2026-10-11T22:14:15Z level=warn msg="slow query" duration=1.2s"#,
            Format::PythonLogging => "2026-10-11 22:14:15,003 - worker.tasks - ERROR - Task failed: timeout",
            Format::Journald => r#"{"__REALTIME_TIMESTAMP":"1791756855003000","PRIORITY":"6","_HOSTNAME":"web-1","SYSLOG_IDENTIFIER":"sshd","_PID":"812","MESSAGE":"Accepted publickey for deploy"}"#,
            Format::Docker => r#"{"log":"GET /healthz 200\n","stream":"stdout","time":"2026-10-11T22:14:15.003417816Z"}"#,
            Format::Cri => "2026-10-11T22:14:15.003417816Z stderr F panic: runtime error: index out of range",
            Format::Postgres => r#"2026-10-11 22:14:15.003 UTC [4711] ERROR:  relation "users" does not exist at character 15"#,
            Format::Mysql => "2026-10-11T22:14:15.003417Z 0 [System] [MY-010931] [Server] /usr/sbin/mysqld: ready for connections.",
            Format::Redis => "1:M 11 Oct 2026 22:14:15.003 * Ready to accept connections tcp",
            Format::ApacheError => "[Sun Oct 11 22:14:15.003417 2026] [core:error] [pid 35708:tid 4328636416] [client 203.0.113.7:52144] AH00124: Request exceeded the limit of 10 internal redirects",
            Format::Logcat => "10-11 22:14:15.003  1702  2395 W ActivityManager: Slow operation: 61ms so far",
            Format::W3c => "2026-10-11 22:14:15 10.0.0.5 GET /default.htm - 80 - 203.0.113.7 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 15",
            Format::Otel => r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"1791756855003417000","severityText":"ERROR","body":{"stringValue":"payment failed"}}]}]}]}"#,
            Format::Zeek => "1791756855.003417\tCHhAvVGS1DHFjwGM9\t192.168.1.10\t52345\t93.184.216.34\t443\ttcp\tssl\t0.512345\t1024\t4096\tSF\tT\tF\t0\tShADadFf\t12\t1652\t14\t4832\t-",
        }
    }

    /// The parser of this format.
    pub fn parser(self) -> Box<dyn LineParser> {
        match self {
            Format::Combined => Box::new(combined::CombinedParser::combined()),
            Format::Common => Box::new(combined::CombinedParser::common()),
            Format::Syslog3164 => Box::new(syslog3164::Syslog3164Parser),
            Format::Syslog5424 => Box::new(syslog5424::Syslog5424Parser),
            Format::Json => Box::new(jsonl::JsonParser),
            Format::Logfmt => Box::new(logfmt::LogfmtParser),
            Format::PythonLogging => Box::new(pylog::PythonLoggingParser),
            Format::Journald => Box::new(journald::JournaldParser),
            Format::Docker => Box::new(docker::DockerParser),
            Format::Cri => Box::new(cri::CriParser),
            Format::Postgres => Box::new(postgres::PostgresParser),
            Format::Mysql => Box::new(mysql::MysqlParser),
            Format::Redis => Box::new(redis::RedisParser),
            Format::ApacheError => Box::new(apache_error::ApacheErrorParser),
            Format::Logcat => Box::new(logcat::LogcatParser),
            Format::W3c => Box::new(w3c::W3cParser::default()),
            Format::Zeek => Box::new(zeek::ZeekParser::default()),
            Format::Otel => Box::new(otel::OtelParser),
        }
    }

    /// Renders a record as one line of this format (no line terminator), appending to `out`.
    /// Fields the format cannot carry are left out.
    pub fn render(self, record: &Record<'_>, out: &mut String) {
        match self {
            Format::Combined => combined::render(record, out, true),
            Format::Common => combined::render(record, out, false),
            Format::Syslog3164 => syslog3164::render(record, out),
            Format::Syslog5424 => syslog5424::render(record, out),
            Format::Json => jsonl::render(record, out),
            Format::Logfmt => logfmt::render(record, out),
            Format::PythonLogging => pylog::render(record, out),
            Format::Journald => journald::render(record, out),
            Format::Docker => docker::render(record, out),
            Format::Cri => cri::render(record, out),
            Format::Postgres => postgres::render(record, out),
            Format::Mysql => mysql::render(record, out),
            Format::Redis => redis::render(record, out),
            Format::ApacheError => apache_error::render(record, out),
            Format::Logcat => logcat::render(record, out),
            Format::W3c => w3c::render(record, out),
            Format::Zeek => zeek::render(record, out),
            Format::Otel => otel::render(record, out),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not built in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?} (built-in formats: {list})", list = Format::names())]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "combined" | "nginx" | "apache" => Format::Combined,
            "common" | "clf" => Format::Common,
            "syslog3164" | "syslog" | "rfc3164" => Format::Syslog3164,
            "syslog5424" | "rfc5424" => Format::Syslog5424,
            "json" | "jsonl" | "ndjson" => Format::Json,
            "logfmt" => Format::Logfmt,
            "pylog" | "python" => Format::PythonLogging,
            "journald" | "journal" => Format::Journald,
            "docker" => Format::Docker,
            "cri" | "containerd" | "kubernetes" => Format::Cri,
            "postgres" | "postgresql" => Format::Postgres,
            "mysql" => Format::Mysql,
            "redis" => Format::Redis,
            "apache_error" => Format::ApacheError,
            "logcat" | "android" => Format::Logcat,
            "w3c" | "iis" => Format::W3c,
            "zeek" | "bro" => Format::Zeek,
            "otel" | "opentelemetry" | "otlp" => Format::Otel,
            _ => return Err(UnknownFormat(s.to_owned())),
        })
    }
}

/// Whether detection scores `line`: not empty, not a `#` header or comment, not a line that
/// continues the record before it (a stack trace's).
pub fn scored(line: &str) -> bool {
    !line.trim().is_empty() && !line.starts_with('#') && !multiline::continues_record(line)
}

/// Picks the parser that reads most of `sample` (at least half of its non-empty lines that
/// can start a record: a stack trace's lines and `#` header or comment lines are not scored);
/// candidates earlier in the slice win ties. Returns the candidate's index.
pub fn detect(sample: &[&str], candidates: &[&dyn LineParser], ctx: &ParseContext) -> Option<usize> {
    detection(sample, candidates, ctx).winner
}

/// What detection saw: the lines it scored, how many each candidate parsed, and the winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Sample lines scored (see [`scored`]).
    pub scored: usize,
    /// Lines each candidate parsed, in candidate order.
    pub parsed: Vec<usize>,
    /// Lines each candidate would join to the record before them (formats whose
    /// [`LineParser::continuation`] is `Any`; 0 for the others), in candidate order.
    pub joined: Vec<usize>,
    /// `#` lines each candidate read (a MySQL slow log's `# Time:`), scored for it alone:
    /// for the others they are comments or headers.
    pub headers: Vec<usize>,
    /// The candidate picked: the first with the most lines, if those are at least half of the
    /// scored lines it does not join (and, when it joins some, at least two and a tenth of
    /// all).
    pub winner: Option<usize>,
}

impl Detection {
    /// The candidate with the most lines other than the winner (the first of equals), with its
    /// count, if it parsed any.
    pub fn runner_up(&self) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for (i, &n) in self.parsed.iter().enumerate() {
            if Some(i) != self.winner && n > 0 && best.is_none_or(|(_, b)| n > b) {
                best = Some((i, n));
            }
        }
        best
    }

    /// Why, in words, naming candidates with `name`: `combined: 64 of 64 sample lines parse
    /// (next: vhost_combined, 0)`.
    pub fn explain<'n>(&self, name: impl Fn(usize) -> &'n str) -> String {
        let next = match self.runner_up() {
            Some((i, n)) => format!("next: {} with {n}", name(i)),
            None => "no other format parses any".to_owned(),
        };
        match self.winner {
            _ if self.scored == 0 => {
                "no sample line can start a record (empty, `#` comments or continuation lines)".to_owned()
            }
            Some(w) => {
                let joined = match self.joined.get(w) {
                    Some(&n) if n > 0 => format!(", {n} more continue their records"),
                    _ => String::new(),
                };
                format!(
                    "{}: {} of {} sample lines parse{joined} ({next})",
                    name(w),
                    self.parsed[w],
                    self.scored + self.headers.get(w).copied().unwrap_or(0)
                )
            }
            None => match self.runner_up() {
                Some((i, n)) => format!(
                    "no format parses half of the {} sample lines (best: {} with {n})",
                    self.scored,
                    name(i)
                ),
                None => format!("no format parses any of the {} sample lines", self.scored),
            },
        }
    }
}

/// [`detect`] with the counts behind its choice.
pub fn detection(sample: &[&str], candidates: &[&dyn LineParser], ctx: &ParseContext) -> Detection {
    // Whether each line is scored does not depend on the format: decided once, not once per
    // candidate (that was 4% of `process` on the demo's 100k-line week).
    let scored_mask = scored_mask(sample);
    let scored_lines = scored_mask.iter().filter(|&&s| s).count();
    let tallies: Vec<Tally> = candidates
        .iter()
        .map(|p| tally(*p, sample, &scored_mask, ctx))
        .collect();
    let mut winner: Option<usize> = None;
    for (i, t) in tallies.iter().enumerate() {
        let (ok, scored) = (t.parsed, scored_lines + t.headers);
        // A format that joins the lines it refuses must also start records on at least two
        // lines and a tenth of them: else it would win a file of another format on its first
        // line alone. A tenth still lets entries of 7 lines (a MySQL slow log) or 9 (a slow
        // query's SQL after a logback line) through.
        let starts_enough = t.joined == 0 || (ok >= 2 && ok * 10 >= scored);
        let enough = ok * 2 >= scored - t.joined && starts_enough;
        if enough && ok > 0 && winner.is_none_or(|w| ok > tallies[w].parsed) {
            winner = Some(i);
        }
    }
    Detection {
        scored: scored_lines,
        parsed: tallies.iter().map(|t| t.parsed).collect(),
        joined: tallies.iter().map(|t| t.joined).collect(),
        headers: tallies.iter().map(|t| t.headers).collect(),
        winner,
    }
}

/// What one candidate made of a sample.
struct Tally {
    /// Lines it read (`headers` included).
    parsed: usize,
    /// Scored lines it would join to the record before them, as the pipeline would.
    joined: usize,
    /// `#` lines it read.
    headers: usize,
}

fn tally(parser: &dyn LineParser, sample: &[&str], scored_mask: &[bool], ctx: &ParseContext) -> Tally {
    let mut t = Tally {
        parsed: 0,
        joined: 0,
        headers: 0,
    };
    for (line, verdict) in sample.iter().zip(verdicts(parser, sample, scored_mask, ctx)) {
        match verdict {
            LineVerdict::Read => {
                t.parsed += 1;
                t.headers += usize::from(line.starts_with('#'));
            }
            LineVerdict::Joined => t.joined += 1,
            LineVerdict::Unscored | LineVerdict::Refused(_) => {}
        }
    }
    t
}

/// What detection makes of one sample line for one format.
#[derive(Debug, Clone, PartialEq)]
pub enum LineVerdict {
    /// The format reads it (a `#` line it reads included).
    Read,
    /// It continues the record above, a line the format read (formats that join any line).
    Joined,
    /// Not scored (see [`scored`]): empty, a `#` comment or header, a stack trace's line.
    Unscored,
    /// The format refuses it.
    Refused(ParseError),
}

/// The verdict of `parser` on every line of `sample`, in order: what detection counts and
/// `loglens formats test` shows.
pub fn sample_verdicts(parser: &dyn LineParser, sample: &[&str], ctx: &ParseContext) -> Vec<LineVerdict> {
    verdicts(parser, sample, &scored_mask(sample), ctx)
}

/// Whether each line of `sample` is [`scored`].
fn scored_mask(sample: &[&str]) -> Vec<bool> {
    sample.iter().map(|l| scored(l)).collect()
}

/// [`sample_verdicts`] with whether each line is [`scored`] already known.
fn verdicts(
    parser: &dyn LineParser,
    sample: &[&str],
    scored_mask: &[bool],
    ctx: &ParseContext,
) -> Vec<LineVerdict> {
    let joins_any = parser.continuation() == multiline::Continuation::Any;
    let mut open = false;
    sample
        .iter()
        .zip(scored_mask)
        .map(|(line, &scored)| {
            let header = line.starts_with('#');
            if !scored && !header {
                return LineVerdict::Unscored;
            }
            match parser.parse(line, ctx) {
                Ok(_) => {
                    open = true;
                    LineVerdict::Read
                }
                // A comment or header to this format: neither scored nor closing a record.
                Err(_) if header => LineVerdict::Unscored,
                Err(_) if joins_any && open && multiline::Continuation::Any.joins(line) => {
                    LineVerdict::Joined
                }
                Err(e) => {
                    open = false;
                    LineVerdict::Refused(e)
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn detection_explains_winner_runner_up_and_failure() {
        let names = ["combined", "common", "json"];
        let name = |i: usize| names[i];
        let seen = Detection {
            scored: 10,
            parsed: vec![9, 9, 0],
            joined: vec![0; 3],
            headers: vec![0; 3],
            winner: Some(0),
        };
        assert_eq!(seen.runner_up(), Some((1, 9)));
        assert_eq!(
            seen.explain(name),
            "combined: 9 of 10 sample lines parse (next: common with 9)"
        );
        let none = Detection {
            scored: 10,
            parsed: vec![4, 0, 2],
            joined: vec![0; 3],
            headers: vec![0; 3],
            winner: None,
        };
        assert_eq!(
            none.explain(name),
            "no format parses half of the 10 sample lines (best: combined with 4)"
        );
    }

    /// Each example line parses with its own format, and detection on it picks that format.
    #[test]
    fn examples_parse_and_are_detected() {
        let ctx = ParseContext::default();
        let parsers: Vec<Box<dyn LineParser>> = Format::ALL.iter().map(|f| f.parser()).collect();
        let candidates: Vec<&dyn LineParser> = parsers.iter().map(|p| p.as_ref()).collect();
        for (i, format) in Format::ALL.into_iter().enumerate() {
            let example = format.example();
            if let Err(e) = format.parser().parse(example, &ctx) {
                panic!("{format}: {e} in {example:?}");
            }
            assert_eq!(
                detect(&[example], &candidates, &ctx),
                Some(i),
                "{format}: {example}"
            );
        }
    }
}
