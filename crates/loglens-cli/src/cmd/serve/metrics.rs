//! Counters of `loglens serve`, shared by sources and the flusher, rendered as Prometheus text
//! (`GET /metrics`, names prefixed `loglens_`) and as JSON per source (`GET /health`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Reads one per-source counter.
type CounterOf = fn(&SourceMetrics) -> u64;
/// Upper bounds (seconds) of the flush latency histogram's buckets.
const FLUSH_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Counters of one source.
#[derive(Default)]
pub struct SourceMetrics {
    /// The source's name (its spool directory).
    pub name: String,
    /// `http`, `syslog_udp`, `syslog_tcp` or `file`.
    pub kind: &'static str,
    /// Where it listens or what it reads.
    pub target: String,
    /// Lines accepted into the spool (for files: read by a flush).
    pub lines_in: AtomicU64,
    /// Lines committed to the dataset.
    pub lines_out: AtomicU64,
    /// Bytes accepted.
    pub bytes_in: AtomicU64,
    /// Lines, frames or requests refused as malformed or oversized.
    pub rejected: AtomicU64,
    /// Lines dropped because the spool was full (UDP), or requests answered 429 (HTTP).
    pub dropped: AtomicU64,
    /// The last error, if any.
    pub last_error: Mutex<Option<String>>,
}

impl SourceMetrics {
    /// Counters for a new source.
    pub fn new(name: &str, kind: &'static str, target: String) -> Arc<SourceMetrics> {
        Arc::new(SourceMetrics {
            name: name.to_owned(),
            kind,
            target,
            ..Default::default()
        })
    }

    /// Records an error to show in `/health`.
    pub fn error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }
}

/// Everything `/metrics` and `/health` show.
pub struct Metrics {
    /// Per source.
    pub sources: Vec<Arc<SourceMetrics>>,
    /// Bytes in the spool not yet committed (the queue).
    pub pending_bytes: AtomicU64,
    /// Lines in the spool not yet committed.
    pub pending_lines: AtomicU64,
    /// The bound on `pending_bytes`, above which sources push back.
    pub max_pending_bytes: u64,
    /// Lines the pipeline could not parse (kept in `unparsed/`).
    pub parse_errors: AtomicU64,
    /// Lines read again after a restart from segments a killed service left: the duplicates
    /// of the at-least-once window are among them.
    pub replayed_lines: AtomicU64,
    /// Flushes that committed.
    pub flushes: AtomicU64,
    /// Flushes that failed (their segments are retried).
    pub flush_failures: AtomicU64,
    flush_buckets: [AtomicU64; FLUSH_BUCKETS.len()],
    flush_micros: AtomicU64,
    /// Incidents whose end is recent (still firing).
    pub incidents_open: AtomicU64,
    /// Notifications delivered by the alert runs.
    pub alerts_sent: AtomicU64,
    /// Detect runs.
    pub detect_runs: AtomicU64,
    /// The last flush's outcome, for `/health`.
    pub last_flush: Mutex<Option<String>>,
    started: Instant,
}

impl Metrics {
    /// Metrics over these sources.
    pub fn new(sources: Vec<Arc<SourceMetrics>>, max_pending_bytes: u64) -> Metrics {
        Metrics {
            sources,
            pending_bytes: AtomicU64::new(0),
            pending_lines: AtomicU64::new(0),
            max_pending_bytes,
            parse_errors: AtomicU64::new(0),
            replayed_lines: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            flush_failures: AtomicU64::new(0),
            flush_buckets: Default::default(),
            flush_micros: AtomicU64::new(0),
            incidents_open: AtomicU64::new(0),
            alerts_sent: AtomicU64::new(0),
            detect_runs: AtomicU64::new(0),
            last_flush: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// Whether the spool is over its bound: sources refuse or hold new input.
    pub fn full(&self) -> bool {
        self.pending_bytes.load(Ordering::Relaxed) >= self.max_pending_bytes
    }

    /// Counts lines entering the spool.
    pub fn queued(&self, lines: u64, bytes: u64) {
        self.pending_lines.fetch_add(lines, Ordering::Relaxed);
        self.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts lines leaving the spool (committed).
    pub fn dequeued(&self, lines: u64, bytes: u64) {
        let sub = |a: &AtomicU64, n: u64| {
            let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        };
        sub(&self.pending_lines, lines);
        sub(&self.pending_bytes, bytes);
    }

    /// Records one flush's duration.
    pub fn observe_flush(&self, secs: f64) {
        for (bound, bucket) in FLUSH_BUCKETS.iter().zip(&self.flush_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.flush_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let per_source: [(&str, &str, CounterOf); 5] = [
            ("lines_in_total", "Lines accepted, per source.", |s| {
                s.lines_in.load(Ordering::Relaxed)
            }),
            (
                "lines_out_total",
                "Lines committed to the dataset, per source.",
                |s| s.lines_out.load(Ordering::Relaxed),
            ),
            ("bytes_in_total", "Bytes accepted, per source.", |s| {
                s.bytes_in.load(Ordering::Relaxed)
            }),
            (
                "rejected_total",
                "Malformed or oversized input refused, per source.",
                |s| s.rejected.load(Ordering::Relaxed),
            ),
            (
                "dropped_total",
                "Input refused because the spool was full (UDP drops, HTTP 429s), per source.",
                |s| s.dropped.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, get) in per_source {
            let _ = writeln!(out, "# HELP loglens_{name} {help}\n# TYPE loglens_{name} counter");
            for s in &self.sources {
                let _ = writeln!(
                    out,
                    "loglens_{name}{{source=\"{}\",kind=\"{}\"}} {}",
                    s.name,
                    s.kind,
                    get(s)
                );
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let scalars = [
            (
                "parse_errors_total",
                "counter",
                "Lines the parsers could not read (kept in unparsed/).",
                load(&self.parse_errors),
            ),
            (
                "replayed_lines_total",
                "counter",
                "Lines read again after a restart (the at-least-once window).",
                load(&self.replayed_lines),
            ),
            (
                "flush_failures_total",
                "counter",
                "Flushes that failed; their input is retried.",
                load(&self.flush_failures),
            ),
            (
                "queue_depth_lines",
                "gauge",
                "Lines spooled and not yet committed.",
                load(&self.pending_lines),
            ),
            (
                "queue_depth_bytes",
                "gauge",
                "Bytes spooled and not yet committed.",
                load(&self.pending_bytes),
            ),
            (
                "queue_limit_bytes",
                "gauge",
                "Spool bound above which sources push back.",
                self.max_pending_bytes,
            ),
            (
                "incidents_open",
                "gauge",
                "Incidents that ended within the last 5 minutes.",
                load(&self.incidents_open),
            ),
            (
                "alerts_sent_total",
                "counter",
                "Notifications delivered.",
                load(&self.alerts_sent),
            ),
            (
                "detect_runs_total",
                "counter",
                "Detect runs.",
                load(&self.detect_runs),
            ),
        ];
        for (name, kind, help, value) in scalars {
            let _ = writeln!(
                out,
                "# HELP loglens_{name} {help}\n# TYPE loglens_{name} {kind}\nloglens_{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP loglens_flush_duration_seconds Time to commit one micro-batch.\n# TYPE loglens_flush_duration_seconds histogram"
        );
        for (bound, bucket) in FLUSH_BUCKETS.iter().zip(&self.flush_buckets) {
            let _ = writeln!(
                out,
                "loglens_flush_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.flushes) + load(&self.flush_failures);
        let _ = writeln!(
            out,
            "loglens_flush_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "loglens_flush_duration_seconds_sum {}",
            load(&self.flush_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "loglens_flush_duration_seconds_count {count}");
        out
    }

    /// What serve publishes in `state/serve.json` for the dashboard's Pipeline page: `/health`
    /// plus the totals over sources and the counters of `/metrics`.
    pub fn status(&self) -> serde_json::Value {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sum = |get: CounterOf| self.sources.iter().map(|s| get(s)).sum::<u64>();
        let mut status = self.health();
        let totals = serde_json::json!({
            "lines_in_total": sum(|s| s.lines_in.load(Ordering::Relaxed)),
            "lines_out_total": sum(|s| s.lines_out.load(Ordering::Relaxed)),
            "rejected_total": sum(|s| s.rejected.load(Ordering::Relaxed)),
            "dropped_total": sum(|s| s.dropped.load(Ordering::Relaxed)),
            "parse_errors_total": load(&self.parse_errors),
            "flush_failures_total": load(&self.flush_failures),
            "incidents_open": load(&self.incidents_open),
            "alerts_sent_total": load(&self.alerts_sent),
            "detect_runs_total": load(&self.detect_runs),
        });
        if let (Some(status), serde_json::Value::Object(totals)) = (status.as_object_mut(), totals) {
            status.extend(totals);
        }
        status
    }

    /// The `/health` JSON.
    pub fn health(&self) -> serde_json::Value {
        let sources: Vec<serde_json::Value> = self
            .sources
            .iter()
            .map(|s| {
                let error = s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
                serde_json::json!({
                    "name": s.name,
                    "kind": s.kind,
                    "target": s.target,
                    "status": if error.is_some() { "degraded" } else { "ok" },
                    "lines_in": s.lines_in.load(Ordering::Relaxed),
                    "lines_out": s.lines_out.load(Ordering::Relaxed),
                    "rejected": s.rejected.load(Ordering::Relaxed),
                    "dropped": s.dropped.load(Ordering::Relaxed),
                    "last_error": error,
                })
            })
            .collect();
        let last_flush = self.last_flush.lock().unwrap_or_else(|p| p.into_inner()).clone();
        serde_json::json!({
            "status": if self.full() { "backpressure" } else { "ok" },
            "uptime_secs": self.started.elapsed().as_secs(),
            "queue_depth_lines": self.pending_lines.load(Ordering::Relaxed),
            "queue_depth_bytes": self.pending_bytes.load(Ordering::Relaxed),
            "flushes": self.flushes.load(Ordering::Relaxed),
            "last_flush": last_flush,
            "sources": sources,
        })
    }
}
