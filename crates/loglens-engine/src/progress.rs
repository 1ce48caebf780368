//! How far a long run has got, told to whoever shows it (the CLI's progress bar). The engine
//! only counts; drawing, terminals and when to show anything are the caller's business.
//!
//! Why bytes on disk? They are known before reading starts (a file's size), so they give an
//! honest fraction and ETA even for gzip inputs, whose decompressed size is unknown until read.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
