//! How far a long run has got, told to whoever shows it: the stages count, and [`Bar`], the
//! progress bar of `loglens process` and of `python -m loglens process` (whose distributed
//! driver reports to it too), draws them on a terminal.
//!
//! Why bytes on disk? They are known before reading starts (a file's size), so they give an
//! honest fraction and ETA even for gzip inputs, whose decompressed size is unknown until read.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A stage of a run, as progress reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading, parsing, templating and writing the inputs.
    Process,
    /// Turning records into metrics and judging them.
    Detect,
}

impl Stage {
    /// The name shown to people.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Process => "process",
            Stage::Detect => "detect",
        }
    }
}

/// Receives a run's progress. Called from the thread that reads the inputs, a few times per MiB.
pub trait Progress: Send + Sync {
    /// A stage starts; `total_bytes` is what it will read from disk when known.
    fn begin(&self, stage: Stage, total_bytes: Option<u64>);
    /// So far in this stage: `lines` read and `bytes` of disk read.
    fn update(&self, lines: u64, bytes: u64);
    /// The stage is over.
    fn end(&self);
}

/// How long a stage runs before its bar appears, so short runs stay quiet;
/// `LOGLENS_PROGRESS_AFTER` (seconds) sets another.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// The progress bar of long runs on a terminal: stage, bytes read of the total, lines, lines/s
/// and ETA. Shown only once a stage has run for [`QUIET_FOR`], and only on a terminal's stderr.
pub struct Bar {
    bar: ProgressBar,
    quiet_for: Duration,
    started: Mutex<Option<Instant>>,
}

impl Bar {
    /// A bar for a terminal's stderr; `None` when stderr is no terminal or the output is JSON
    /// (a machine reads it).
    pub fn unless_json(json: bool) -> Option<Arc<Bar>> {
        use std::io::IsTerminal;
        (!json && std::io::stderr().is_terminal()).then(|| {
            let quiet_for = std::env::var("LOGLENS_PROGRESS_AFTER")
                .ok()
                .and_then(|secs| Duration::try_from_secs_f64(secs.parse().ok()?).ok())
                .unwrap_or(QUIET_FOR);
            Arc::new(Bar {
                bar: ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
                quiet_for,
                started: Mutex::new(None),
            })
        })
    }
}

impl Progress for Bar {
    fn begin(&self, stage: Stage, total_bytes: Option<u64>) {
        let template = "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}";
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        // A finished bar draws nothing more: `process --detect` shows a second stage on it.
        self.bar.reset();
        self.bar.set_style(style);
        self.bar.set_prefix(stage.name());
        self.bar.set_length(total_bytes.unwrap_or(0));
        self.bar.set_position(0);
        if let Ok(mut started) = self.started.lock() {
            *started = Some(Instant::now());
        }
    }

    fn update(&self, lines: u64, bytes: u64) {
        let elapsed = self
            .started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map_or(Duration::ZERO, |s| s.elapsed());
        if self.bar.is_hidden() && elapsed >= self.quiet_for {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        let rate = lines as f64 / elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} lines, {} lines/s",
            HumanCount(lines),
            HumanCount(rate as u64)
        ));
        self.bar.set_position(bytes);
    }

    fn end(&self) {
        self.bar.finish_and_clear();
        self.bar.set_draw_target(ProgressDrawTarget::hidden());
    }
}

/// A reader that counts the bytes it hands out, so compressed inputs report disk bytes.
pub(crate) struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    pub(crate) fn new(inner: R, read: Arc<AtomicU64>) -> Self {
        Counted { inner, read }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_reads_count_what_they_return() {
        let read = Arc::new(AtomicU64::new(0));
        let mut counted = Counted::new(&b"hello world"[..], read.clone());
        let mut out = Vec::new();
        counted.read_to_end(&mut out).expect("read");
        assert_eq!(read.load(Ordering::Relaxed), 11);
    }
}
