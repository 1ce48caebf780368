//! `loglens serve`: the long-running service. Sources (HTTP, syslog UDP/TCP) append accepted
//! lines to a durable spool; every flush interval the batch pipeline (`loglens_engine::process`)
//! commits the closed spool segments and the tailed files, then detection and alerting advance.

mod elastic;
mod gelf;
mod http;
mod loki;
mod metrics;
mod otlp;
mod protobuf;
mod pyformat;
mod splunk;
mod spool;
mod syslog;
mod tls;

use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use loglens_engine::input::{resolve, InputFile, Parsers};
use loglens_engine::{Config, ProcessOptions};
use serde::Deserialize;

use metrics::{Metrics, SourceMetrics};
use spool::{Segment, Spool, Stream};

/// Options of `loglens serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file; its `[[source]]` tables add sources.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The data directory [default: the config's, else ./loglens-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen for HTTP on this address: `POST /ingest`, OTLP `POST /v1/logs`, Loki
    /// `POST /loki/api/v1/push`, Elasticsearch `POST /_bulk`, Splunk HEC
    /// `POST /services/collector/event`; `GET /health`, `GET /metrics`.
    #[arg(long)]
    pub http: Option<String>,
    /// Require the token in this environment variable on every HTTP ingestion request
    /// (`Authorization: Bearer <token>`, `Splunk <token>`, or Basic with it as the password).
    #[arg(long, value_name = "VAR")]
    pub http_token_env: Option<String>,
    /// Serve HTTPS: this PEM certificate chain (the server's certificate first), with
    /// `--http-tls-key`.
    #[arg(long, value_name = "FILE", requires = "http_tls_key")]
    pub http_tls_cert: Option<PathBuf>,
    /// The PEM private key of `--http-tls-cert`.
    #[arg(long, value_name = "FILE", requires = "http_tls_cert")]
    pub http_tls_key: Option<PathBuf>,
    /// Listen for syslog datagrams on this address.
    #[arg(long)]
    pub syslog_udp: Option<String>,
    /// Listen for syslog over TCP (octet-counting or newline framing) on this address.
    #[arg(long)]
    pub syslog_tcp: Option<String>,
    /// Listen for GELF datagrams (Docker's `gelf` log driver, Graylog libraries; compressed
    /// or not, chunked) on this address.
    #[arg(long)]
    pub gelf_udp: Option<String>,
    /// Listen for GELF over TCP (NUL-terminated messages) on this address.
    #[arg(long)]
    pub gelf_tcp: Option<String>,
    /// Follow files matching this glob (`*` and `?` in the file name), through rotation
    /// (repeatable).
    #[arg(long)]
    pub tail: Vec<String>,
    /// Seconds between flushes to the dataset.
    #[arg(long, default_value_t = 5.0)]
    pub flush_interval: f64,
    /// Flush early once this many MB are spooled.
    #[arg(long, default_value_t = 64)]
    pub flush_mb: u64,
    /// Spool bound in MB: above it HTTP answers 429, TCP stops reading, UDP drops (counted).
    #[arg(long, default_value_t = 512)]
    pub max_spool_mb: u64,
    /// Seconds between detect and alert runs (alert runs also without new records, and every
    /// 5 s while notifications wait for a receiver).
    #[arg(long, default_value_t = 60.0)]
    pub detect_interval: f64,
    /// Seconds between compactions: hours of records that ended over an hour ago and days of
    /// metrics and rollups that began over an hour ago, holding 8 parts or more, are rewritten
    /// as one file each (see `loglens compact`).
    #[arg(long, default_value_t = 3600.0)]
    pub compact_interval: f64,
}

/// `[[source]]` as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    kind: SourceKind,
    /// Its name (spool directory, metrics label) [default: the kind].
    name: Option<String>,
    /// `listen` address for network sources.
    listen: Option<String>,
    /// Glob of files for `file` sources.
    path: Option<String>,
    format: Option<String>,
    #[serde(default)]
    labels: LabelSection,
    /// For `http` sources: the environment variable holding the token clients must send.
    token_env: Option<String>,
    /// For `http` sources: serve HTTPS with this PEM certificate chain and `tls_key`.
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SourceKind {
    File,
    SyslogUdp,
    SyslogTcp,
    GelfUdp,
    GelfTcp,
    Http,
}

impl SourceKind {
    fn name(self) -> &'static str {
        match self {
            SourceKind::File => "file",
            SourceKind::SyslogUdp => "syslog_udp",
            SourceKind::SyslogTcp => "syslog_tcp",
            SourceKind::GelfUdp => "gelf_udp",
            SourceKind::GelfTcp => "gelf_tcp",
            SourceKind::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelSection {
    host: Option<String>,
    service: Option<String>,
}

/// Set by SIGTERM/SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
}

/// The sources: flags first, then the config's `[[source]]` tables.
fn sources_of(args: &ServeArgs, config: &Config) -> anyhow::Result<Vec<SourceSection>> {
    let flag = |kind, listen: Option<&String>, path: Option<&String>| SourceSection {
        kind,
        name: None,
        listen: listen.cloned(),
        path: path.cloned(),
        format: None,
        labels: LabelSection::default(),
        token_env: None,
        tls_cert: None,
        tls_key: None,
    };
    let mut all = Vec::new();
    if let Some(a) = &args.http {
        all.push(SourceSection {
            token_env: args.http_token_env.clone(),
            tls_cert: args.http_tls_cert.clone(),
            tls_key: args.http_tls_key.clone(),
            ..flag(SourceKind::Http, Some(a), None)
        });
    } else if args.http_token_env.is_some() {
        bail!("--http-token-env needs --http");
    } else if args.http_tls_cert.is_some() {
        bail!("--http-tls-cert needs --http");
    }
    if let Some(a) = &args.syslog_udp {
        all.push(flag(SourceKind::SyslogUdp, Some(a), None));
    }
    if let Some(a) = &args.syslog_tcp {
        all.push(flag(SourceKind::SyslogTcp, Some(a), None));
    }
    if let Some(a) = &args.gelf_udp {
        all.push(flag(SourceKind::GelfUdp, Some(a), None));
    }
    if let Some(a) = &args.gelf_tcp {
        all.push(flag(SourceKind::GelfTcp, Some(a), None));
    }
    for glob in &args.tail {
        all.push(flag(SourceKind::File, None, Some(glob)));
    }
    for (i, raw) in config.sources.iter().enumerate() {
        let mut s: SourceSection = raw
            .clone()
            .try_into()
            .map_err(|e| anyhow::anyhow!("source[{i}]: {e}"))?;
        match s.kind {
            SourceKind::File if s.path.is_none() => bail!("source[{i}]: a file source needs `path`"),
            SourceKind::File => {
                let path = config.base_dir.join(s.path.as_deref().unwrap_or_default());
                s.path = Some(path.display().to_string());
            }
            _ if s.listen.is_none() => bail!("source[{i}]: a {} source needs `listen`", s.kind.name()),
            _ => {}
        }
        if s.token_env.is_some() && s.kind != SourceKind::Http {
            bail!("source[{i}]: `token_env` applies to http sources");
        }
        match (&s.tls_cert, &s.tls_key) {
            (Some(_), Some(_))
                if matches!(
                    s.kind,
                    SourceKind::SyslogUdp | SourceKind::GelfUdp | SourceKind::File
                ) =>
            {
                bail!("source[{i}]: `tls_cert` and `tls_key` apply to http, syslog_tcp and gelf_tcp sources")
            }
            (Some(cert), Some(key)) => {
                s.tls_cert = Some(config.base_dir.join(cert));
                s.tls_key = Some(config.base_dir.join(key));
            }
            (None, None) => {}
            _ => bail!("source[{i}]: `tls_cert` and `tls_key` go together"),
        }
        all.push(s);
    }
    if all.is_empty() {
        bail!("nothing to serve: give --http, --syslog-udp, --syslog-tcp, --gelf-udp, --gelf-tcp or --tail, or [[source]] tables in --config");
    }
    if all.iter().filter(|s| s.kind == SourceKind::Http).count() > 1 {
        bail!("only one HTTP source can listen");
    }
    // Unique names: the kind, numbered from the second of a kind on.
    let mut seen = BTreeMap::<String, usize>::new();
    for s in &mut all {
        let base = s.name.clone().unwrap_or_else(|| s.kind.name().to_owned());
        let n = seen.entry(base.clone()).or_default();
        *n += 1;
        s.name = Some(if *n == 1 { base } else { format!("{base}-{n}") });
    }
    Ok(all)
}

/// The HTTP token from the environment variable `var`, which must be set and not empty.
fn http_token(var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        Ok(_) => bail!("the HTTP token variable {var} is empty"),
        Err(_) => bail!("the HTTP token variable {var} is not set"),
    }
}

/// A network source's bound socket.
enum Socket {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

/// A followed glob.
struct Tail {
    pattern: String,
    format: Option<String>,
    labels: LabelSection,
    metrics: Arc<SourceMetrics>,
}

/// Runs `loglens serve` until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let alerting = match &args.config {
        Some(path) if !config.alert_rules.is_empty() => Some(loglens_alert::AlertConfig::load(path)?),
        _ => None,
    };
    let data_dir = config.data_dir(args.data_dir.as_deref());
    let parsers = Parsers::from_config(&config)?;
    let sources = sources_of(&args, &config)?;
    // With `state/` in place before the first flush, the first status is published too.
    loglens_store::DataDir::create(&data_dir)
        .with_context(|| format!("data directory {}", data_dir.display()))?;
    let mut all_metrics = Vec::new();
    let mut spools: Vec<(Arc<Spool>, Arc<SourceMetrics>)> = Vec::new();
    let mut left: Vec<(Segment, Arc<SourceMetrics>)> = Vec::new();
    let mut tails = Vec::new();
    let mut starters: Vec<Box<dyn FnOnce(Arc<Metrics>) + Send>> = Vec::new();
    for s in &sources {
        let name = s.name.clone().unwrap_or_default();
        let target = s.listen.clone().or_else(|| s.path.clone()).unwrap_or_default();
        let m = SourceMetrics::new(&name, s.kind.name(), target.clone());
        all_metrics.push(m.clone());
        if let Some(format) = &s.format {
            if parsers.by_name(format).is_none() {
                bail!("source {name}: unknown format {format:?}");
            }
        }
        if s.kind == SourceKind::File {
            check_glob(&target)?;
            tails.push(Tail {
                pattern: target,
                format: s.format.clone(),
                labels: s.labels.clone(),
                metrics: m,
            });
            continue;
        }
        let dir = spool::dir_of(&data_dir, &name);
        let (spool, found) = Spool::open(dir.clone()).with_context(|| format!("spool {}", dir.display()))?;
        let spool = Arc::new(spool);
        left.extend(found.into_iter().map(|seg| (seg, m.clone())));
        spools.push((spool.clone(), m.clone()));
        let (host, service) = (s.labels.host.clone(), s.labels.service.clone());
        let bind_error = |e: std::io::Error| {
            anyhow::anyhow!("{} source {name}: cannot listen on {target}: {e}", s.kind.name())
        };
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => Some(tls::config(cert, key)?),
            _ => None,
        };
        match s.kind {
            SourceKind::Http => {
                let token = s.token_env.as_deref().map(http_token).transpose()?;
                let listener = TcpListener::bind(&target).map_err(bind_error)?;
                let defaults = Stream {
                    format: s.format.clone(),
                    host,
                    service,
                };
                let parsers = parsers.clone();
                starters.push(Box::new(move |metrics| {
                    let ctx = http::HttpContext {
                        spool,
                        source: m,
                        metrics,
                        parsers,
                        defaults,
                        token,
                        tls,
                    };
                    http::serve(listener, ctx);
                }));
            }
            SourceKind::SyslogUdp | SourceKind::SyslogTcp | SourceKind::GelfUdp | SourceKind::GelfTcp => {
                let protocol = match s.kind {
                    SourceKind::GelfUdp | SourceKind::GelfTcp => syslog::Protocol::Gelf,
                    _ => syslog::Protocol::Syslog,
                };
                let socket = match s.kind {
                    SourceKind::SyslogUdp | SourceKind::GelfUdp => {
                        Socket::Udp(UdpSocket::bind(&target).map_err(bind_error)?)
                    }
                    _ => Socket::Tcp(TcpListener::bind(&target).map_err(bind_error)?),
                };
                starters.push(Box::new(move |metrics| {
                    let sink = syslog::NetSink {
                        spool,
                        source: m,
                        metrics,
                        host,
                        service,
                        protocol,
                    };
                    match (socket, protocol) {
                        (Socket::Udp(socket), syslog::Protocol::Syslog) => syslog::serve_udp(socket, sink),
                        (Socket::Udp(socket), syslog::Protocol::Gelf) => gelf::serve_udp(socket, sink),
                        (Socket::Tcp(listener), _) => syslog::serve_tcp(listener, sink, tls),
                    }
                }));
            }
            SourceKind::File => {}
        }
    }
    let metrics = Arc::new(Metrics::new(all_metrics, args.max_spool_mb << 20));
    for (seg, m) in &left {
        metrics.queued(seg.lines, seg.bytes);
        metrics.replayed_lines.fetch_add(seg.lines, Ordering::Relaxed);
        m.lines_in.fetch_add(seg.lines, Ordering::Relaxed);
    }
    install_signals();
    for start in starters {
        let metrics = metrics.clone();
        std::thread::spawn(move || start(metrics));
    }
    for s in &sources {
        eprintln!(
            "loglens serve: {} {} on {}{}",
            s.kind.name(),
            s.name.as_deref().unwrap_or_default(),
            s.listen.as_deref().or(s.path.as_deref()).unwrap_or_default(),
            if s.tls_cert.is_some() { " (HTTPS)" } else { "" }
        );
    }
    eprintln!("loglens serve: writing {}", data_dir.display());
    let mut flusher = Flusher {
        data_dir,
        parsers,
        config,
        alerting,
        spools,
        tails,
        pending: left,
        metrics,
        runs: 0,
        written_since_detect: false,
        undelivered: 0,
        tails_seen: Vec::new(),
    };
    flusher.serve(&args)
}

/// How often `state/serve.json` is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Alert runs while notifications wait for a receiver: each run sends those whose backoff is
/// over, so a receiver that comes back gets them within seconds, not a detect interval later.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Hours (records) and days (metrics, rollups) are compacted from this many parts.
const COMPACT_MIN_PARTS: u32 = 8;

/// The micro-batch loop: roll, process, delete committed segments, detect, alert.
struct Flusher {
    data_dir: PathBuf,
    parsers: Parsers,
    config: Config,
    alerting: Option<loglens_alert::AlertConfig>,
    spools: Vec<(Arc<Spool>, Arc<SourceMetrics>)>,
    tails: Vec<Tail>,
    /// Closed segments not yet committed (recovered at start, or left by a failed flush).
    pending: Vec<(Segment, Arc<SourceMetrics>)>,
    metrics: Arc<Metrics>,
    runs: u64,
    written_since_detect: bool,
    /// Notifications the last alert run left waiting (pending or retrying).
    undelivered: usize,
    /// Size and modification time of the tailed files at the last run.
    tails_seen: Vec<(PathBuf, Option<(u64, std::time::SystemTime)>)>,
}

impl Flusher {
    fn serve(&mut self, args: &ServeArgs) -> anyhow::Result<()> {
        let interval = Duration::from_secs_f64(args.flush_interval.max(0.05));
        let detect_every = Duration::from_secs_f64(args.detect_interval.max(1.0));
        let compact_every = Duration::from_secs_f64(args.compact_interval.max(1.0));
        let flush_bytes = args.flush_mb.max(1) << 20;
        let mut last_flush = Instant::now() - interval;
        let mut last_detect = Instant::now();
        let mut last_alert = Instant::now();
        let mut spooled_at_flush = 0;
        let mut last_status = Instant::now() - STATUS_EVERY;
        let mut last_compact = Instant::now();
        while !STOP.load(Ordering::SeqCst) {
            if last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                self.publish_status();
            }
            let spooled = self.metrics.pending_bytes.load(Ordering::Relaxed);
            if last_flush.elapsed() >= interval || spooled.saturating_sub(spooled_at_flush) >= flush_bytes {
                last_flush = Instant::now();
                self.flush();
                spooled_at_flush = self.metrics.pending_bytes.load(Ordering::Relaxed);
            }
            if self.written_since_detect && last_detect.elapsed() >= detect_every {
                (last_detect, last_alert) = (Instant::now(), Instant::now());
                self.detect();
                self.alert();
            } else if last_alert.elapsed() >= self.alert_every(detect_every) {
                // Without new records too: groups resolve and failed deliveries are retried
                // on the wall clock, not only when data arrives.
                last_alert = Instant::now();
                self.alert();
            }
            if last_compact.elapsed() >= compact_every {
                last_compact = Instant::now();
                self.compact();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("loglens serve: stopping; flushing the spool");
        self.flush();
        // Gone with the service, so the dashboard says it is not running.
        let _ = std::fs::remove_file(self.status_path());
        let left = self.metrics.pending_lines.load(Ordering::Relaxed);
        if left > 0 {
            eprintln!("loglens serve: {left} lines stay spooled (durable) for the next start");
        }
        Ok(())
    }

    /// Where the dashboard reads serve's counters (`state/serve.json`).
    fn status_path(&self) -> PathBuf {
        self.data_dir.join("state").join("serve.json")
    }

    /// Writes the live counters with the time and pid, atomically; a failure is only logged
    /// (the dashboard then shows the last counters, marked stale by their time).
    fn publish_status(&self) {
        let mut status = self.metrics.status();
        if let Some(fields) = status.as_object_mut() {
            fields.insert(
                "updated".into(),
                loglens_alert::run::wall_clock().to_rfc3339().into(),
            );
            fields.insert("pid".into(), std::process::id().into());
        }
        let path = self.status_path();
        if let Err(e) = loglens_store::write_atomic(&path, status.to_string().as_bytes()) {
            eprintln!("loglens serve: {}: {e}", path.display());
        }
    }

    /// One micro-batch; a failure keeps its segments for the next flush.
    fn flush(&mut self) {
        let started = Instant::now();
        for (spool, m) in &self.spools {
            match spool.roll() {
                Ok(closed) => self.pending.extend(closed.into_iter().map(|s| (s, m.clone()))),
                Err(e) => m.error(format!("spool: {e}")),
            }
        }
        let (inputs, transient, tailed) = match self.inputs() {
            Ok(i) => i,
            Err(e) => return self.failed(started, format!("{e:#}")),
        };
        // Nothing spooled and no tailed file changed: no run (each writes a summary).
        let seen: Vec<_> = inputs.iter().map(|i| (i.path.clone(), stat(&i.path))).collect();
        if inputs.is_empty() || (self.pending.is_empty() && seen == self.tails_seen) {
            return;
        }
        let mut options = ProcessOptions::new(inputs, self.parsers.clone(), self.data_dir.clone());
        options.threads = self.config.process.threads.unwrap_or(options.threads);
        options.zone = self.config.zone();
        options.transient = transient;
        // The run's metric partial must have detect's bucket width.
        options.bucket_secs = match self.config.detect.bucket_secs() {
            Ok(secs) => secs,
            Err(e) => return self.failed(started, format!("[detect] {e}")),
        };
        self.runs += 1;
        let run_id = format!("{}-{:06}", loglens_engine::run_id(), self.runs);
        let summary = match loglens_engine::process(options, run_id) {
            Ok(s) => s,
            Err(e) => return self.failed(started, e.to_string()),
        };
        self.tails_seen = seen;
        let mut spooled = 0;
        for (seg, m) in self.pending.drain(..) {
            if let Err(e) = seg.remove() {
                m.error(format!("{}: {e}", seg.path.display()));
            }
            m.lines_out.fetch_add(seg.lines, Ordering::Relaxed);
            self.metrics.dequeued(seg.lines, seg.bytes);
            spooled += seg.lines;
        }
        // The run does not split its count by input: tailed lines go to the first file source.
        let from_files = summary.lines.saturating_sub(spooled);
        if let Some(t) = tailed.first() {
            self.tails[*t]
                .metrics
                .lines_in
                .fetch_add(from_files, Ordering::Relaxed);
            self.tails[*t]
                .metrics
                .lines_out
                .fetch_add(from_files, Ordering::Relaxed);
        }
        self.metrics
            .parse_errors
            .fetch_add(summary.unparsed_total(), Ordering::Relaxed);
        self.metrics.flushes.fetch_add(1, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        self.metrics.observe_flush(secs);
        self.written_since_detect |= summary.records_written > 0;
        *self.metrics.last_flush.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
            "{}: {} lines, {} records in {secs:.2} s",
            summary.run_id, summary.lines, summary.records_written
        ));
    }

    fn failed(&self, started: Instant, message: String) {
        eprintln!("loglens serve: flush failed (retried): {message}");
        self.metrics.flush_failures.fetch_add(1, Ordering::Relaxed);
        self.metrics.observe_flush(started.elapsed().as_secs_f64());
        *self.metrics.last_flush.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(format!("failed: {message}"));
    }

    /// The run's inputs: pending segments (transient) and the tailed files; also which tails
    /// matched files.
    #[allow(clippy::type_complexity)]
    fn inputs(&self) -> anyhow::Result<(Vec<InputFile>, BTreeMap<PathBuf, String>, Vec<usize>)> {
        let mut inputs = Vec::new();
        let mut transient = BTreeMap::new();
        for (seg, m) in &self.pending {
            let parser = seg.stream.format.as_deref().and_then(|f| self.parsers.by_name(f));
            inputs.push(InputFile {
                path: seg.path.clone(),
                parser,
                host: seg.stream.host.clone(),
                service: seg.stream.service.clone(),
            });
            transient.insert(seg.path.clone(), m.name.clone());
        }
        let mut tailed = Vec::new();
        for (i, tail) in self.tails.iter().enumerate() {
            let files = match expand_glob(&tail.pattern) {
                Ok(files) => files,
                Err(e) => {
                    tail.metrics.error(format!("{}: {e}", tail.pattern));
                    continue;
                }
            };
            if files.is_empty() {
                continue;
            }
            tailed.push(i);
            for mut input in resolve(files, &self.config, &self.parsers, tail.format.as_deref())? {
                input.host = input.host.or_else(|| tail.labels.host.clone());
                input.service = input.service.or_else(|| tail.labels.service.clone());
                inputs.push(input);
            }
        }
        Ok((inputs, transient, tailed))
    }

    /// How long after an alert run the next one is due: the detect interval, or
    /// [`RETRY_EVERY`] while notifications wait for a receiver to come back.
    fn alert_every(&self, detect_every: Duration) -> Duration {
        match self.undelivered {
            0 => detect_every,
            _ => detect_every.min(RETRY_EVERY),
        }
    }

    fn detect(&mut self) {
        self.written_since_detect = false;
        let run_id = format!("{}-{:06}", loglens_engine::run_id(), self.runs);
        let found = match loglens_engine::detect::detect(&self.data_dir, &self.config.detect, &run_id, None) {
            Ok(found) => found,
            Err(e) => return eprintln!("loglens serve: detect failed: {e}"),
        };
        self.metrics.detect_runs.fetch_add(1, Ordering::Relaxed);
        let now = loglens_alert::run::wall_clock();
        let open = found
            .incidents
            .iter()
            .filter_map(|i| loglens_core::Timestamp::parse_rfc3339(&i.end, 0).ok())
            .filter(|end| end.secs() >= now.secs() - 300)
            .count();
        self.metrics.incidents_open.store(open as u64, Ordering::Relaxed);
    }

    /// Rewrites the hours and days `loglens compact` would and that hold many small parts (a
    /// flush every 5 s writes hundreds an hour, a detect every minute 1,440 a day per dataset)
    /// as one file each; a failure is logged and retried next hour.
    fn compact(&mut self) {
        let done = loglens_store::DataDir::create(&self.data_dir)
            .map_err(anyhow::Error::from)
            .and_then(|data| crate::cmd::compact::compact(&data, COMPACT_MIN_PARTS));
        match done {
            Ok(done) if done.partitions > 0 => {
                let each: Vec<String> = (done.datasets.iter())
                    .filter(|d| d.partitions > 0)
                    .map(|d| format!("{}: {}", d.dataset, crate::cmd::compact::partitions(d)))
                    .collect();
                eprintln!(
                    "loglens serve: compacted {} partitions ({} part files; {})",
                    done.partitions,
                    done.parts_before,
                    each.join(", ")
                );
            }
            Ok(_) => {}
            Err(e) => eprintln!("loglens serve: compaction failed: {e:#}"),
        }
    }

    /// One alert run at the wall clock: new notifications, and retries of those due.
    fn alert(&mut self) {
        let Some(alerting) = &self.alerting else { return };
        let options = loglens_alert::RunOptions {
            data_dir: self.data_dir.clone(),
            now: loglens_alert::run::wall_clock(),
            dry_run: false,
        };
        match loglens_alert::run(alerting, &options) {
            Ok(report) => {
                self.metrics
                    .alerts_sent
                    .fetch_add(report.delivered() as u64, Ordering::Relaxed);
                self.undelivered = report.deferred + report.retrying();
            }
            Err(e) => eprintln!("loglens serve: alert run failed: {e}"),
        }
    }
}

fn stat(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Checks at start that a tail glob's directory can be read.
fn check_glob(pattern: &str) -> anyhow::Result<()> {
    let (dir, _) = split_glob(pattern)?;
    std::fs::read_dir(&dir).with_context(|| format!("--tail {pattern}: cannot read {}", dir.display()))?;
    Ok(())
}

fn split_glob(pattern: &str) -> anyhow::Result<(PathBuf, String)> {
    let path = Path::new(pattern);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("--tail {pattern}: no file name"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir.to_string_lossy().contains(['*', '?']) {
        bail!("--tail {pattern}: wildcards only in the file name");
    }
    Ok((dir.to_owned(), name))
}

/// The files matching a glob, sorted; a tailed file's rotated `<name>.1` comes along, so
/// lines written just before a rename are read from it.
fn expand_glob(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let (dir, name) = split_glob(pattern)?;
    let rotated = format!("{name}.1");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if (wildcard(&name, &file) || file == rotated) && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// `*` and `?` matching.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn globs_match_file_names() {
        assert!(wildcard("app*.log", "app-1.log"));
        assert!(wildcard("*.log", ".log"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("*.log", "app.log.1"));
        assert!(wildcard("app.log*", "app.log.1"));
    }
}
