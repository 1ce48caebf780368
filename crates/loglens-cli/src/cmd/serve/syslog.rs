//! Syslog sources of `loglens serve`: UDP datagrams and TCP streams (octet-counting and
//! newline/NUL framing), RFC 5424 and 3164; the TCP framing also serves GELF over TCP. Messages a relay must complete (Python's
//! `SysLogHandler` sends `<PRI>message` only) get the receive time and the sender's address.

use std::io::Read;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::metrics::{Metrics, SourceMetrics};
use super::spool::{Spool, Stream};
use super::tls;

/// Longest message kept; a longer frame is refused and counted.
pub const MAX_FRAME: usize = 64 * 1024;
/// Most TCP connections served at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 256;

/// What a network source's messages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RFC 5424 and 3164.
    Syslog,
    /// GELF over TCP: uncompressed JSON objects, NUL-terminated (Docker's `gelf` driver).
    Gelf,
}

/// What one network source (syslog, GELF) writes to.
pub struct NetSink {
    /// The source's spool.
    pub spool: Arc<Spool>,
    /// Its counters.
    pub source: Arc<SourceMetrics>,
    /// The shared metrics (queue bound).
    pub metrics: Arc<Metrics>,
    /// Labels from the config.
    pub host: Option<String>,
    /// Labels from the config.
    pub service: Option<String>,
    /// What its TCP frames are.
    pub protocol: Protocol,
}

/// Lines of one batch, split by format.
#[derive(Default)]
struct Batch {
    rfc5424: (Vec<u8>, u64),
    rfc3164: (Vec<u8>, u64),
    json: (Vec<u8>, u64),
}

impl NetSink {
    /// The stream of this source's lines in `format`.
    pub fn stream(&self, format: &str) -> Stream {
        Stream {
            format: Some(format.to_owned()),
            host: self.host.clone(),
            service: self.service.clone(),
        }
    }

    /// Checks one frame and adds it to the batch, or counts it rejected.
    fn take(&self, frame: &[u8], peer: IpAddr, batch: &mut Batch) {
        if self.protocol == Protocol::Gelf {
            let now = loglens_alert::run::wall_clock().0;
            match super::gelf::message_line(trim_end(frame), now) {
                Ok(line) => push(&mut batch.json, &line),
                Err(_) => _ = self.source.rejected.fetch_add(1, Ordering::Relaxed),
            }
            return;
        }
        match normalize(frame, peer) {
            Some((true, line)) => push(&mut batch.rfc5424, &line),
            Some((false, line)) => push(&mut batch.rfc3164, &line),
            None => {
                self.source.rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Spools a batch; returns false when writing failed.
    fn write(&self, batch: &mut Batch) -> bool {
        for (format, (data, lines)) in [
            ("syslog5424", &mut batch.rfc5424),
            ("syslog3164", &mut batch.rfc3164),
            ("json", &mut batch.json),
        ] {
            if *lines == 0 {
                continue;
            }
            if !self.append(&self.stream(format), data, *lines) {
                return false;
            }
            data.clear();
            *lines = 0;
        }
        true
    }

    /// Spools `lines` lines and counts them; false (the error recorded) when writing failed.
    pub fn append(&self, stream: &Stream, data: &[u8], lines: u64) -> bool {
        if let Err(e) = self.spool.append(stream, data, lines) {
            self.source.error(format!("spool: {e}"));
            return false;
        }
        self.source.lines_in.fetch_add(lines, Ordering::Relaxed);
        self.source
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.metrics.queued(lines, data.len() as u64);
        true
    }
}

fn push(into: &mut (Vec<u8>, u64), line: &str) {
    into.0.extend_from_slice(line.as_bytes());
    into.0.push(b'\n');
    into.1 += 1;
}

/// A frame as one spool line: `(is RFC 5424, line)`, or `None` for garbage (no valid PRI,
/// empty, oversized). Newlines inside become spaces (the spool is line-based).
pub fn normalize(frame: &[u8], peer: IpAddr) -> Option<(bool, String)> {
    let frame = trim_end(frame);
    if frame.is_empty() || frame.len() > MAX_FRAME || frame[0] != b'<' {
        return None;
    }
    let close = frame.iter().take(5).position(|&b| b == b'>')?;
    let pri: u16 = std::str::from_utf8(&frame[1..close]).ok()?.parse().ok()?;
    if close < 2 || pri > 191 {
        return None;
    }
    let text = String::from_utf8_lossy(frame).replace(['\n', '\r'], " ");
    let rest = &text[close + 1..];
    if rest.starts_with("1 ") {
        return Some((true, text));
    }
    if has_time(rest.as_bytes()) {
        return Some((false, text));
    }
    // RFC 3164 §4.3.3: a relay adds the TIMESTAMP and HOSTNAME a message lacks.
    let now = loglens_alert::run::wall_clock().to_rfc3339();
    Some((false, format!("{}{now} {peer} {rest}", &text[..=close])))
}

fn trim_end(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0' | b' '] = b {
        b = rest;
    }
    b
}

/// Whether a 3164 message starts with its timestamp (`Mmm dd hh:mm:ss` or RFC 3339).
fn has_time(b: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
    ];
    let bsd = b.len() > 4 && MONTHS.contains(&&b[..3]) && b[3] == b' ';
    let iso = b.first().is_some_and(u8::is_ascii_digit) && b.get(10) == Some(&b'T');
    bsd || iso
}

/// Serves UDP datagrams until the process exits; a full spool drops them, counted.
pub fn serve_udp(socket: UdpSocket, sink: NetSink) {
    let mut buf = vec![0u8; 65536];
    let mut batch = Batch::default();
    let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
    loop {
        let mut pending = 0;
        // Batch datagrams so one spool write serves many; a quiet socket flushes at the timeout.
        while pending < 512 {
            match socket.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    if sink.metrics.full() {
                        sink.source.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    sink.take(&buf[..n], peer.ip(), &mut batch);
                    pending += 1;
                }
                Err(_) => break,
            }
        }
        sink.write(&mut batch);
    }
}

/// Accepts TCP connections until the process exits, one thread each; with `tls`, each
/// completes a TLS handshake first (syslog over TLS, RFC 5425, frames by octet counting).
pub fn serve_tcp(listener: TcpListener, sink: NetSink, tls: Option<tls::Config>) {
    let sink = Arc::new(sink);
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let Ok(peer) = stream.peer_addr().map(|a| a.ip()) else {
            continue;
        };
        if live.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            sink.source.rejected.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        live.fetch_add(1, Ordering::Relaxed);
        let (sink, live, tls) = (sink.clone(), live.clone(), tls.clone());
        std::thread::spawn(move || {
            match &tls {
                None => read_frames(stream, peer, &sink),
                Some(config) => match tls::accept(config, stream) {
                    Some(mut stream) => {
                        read_frames(&mut stream, peer, &sink);
                        tls::close(stream);
                    }
                    None => {
                        sink.source.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
            live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Reads frames from one connection; each read's complete frames are spooled together, so a
/// client disconnecting mid-frame loses only that unfinished frame.
fn read_frames(mut stream: impl Read, peer: IpAddr, sink: &NetSink) {
    let mut buf: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut batch = Batch::default();
    loop {
        // Backpressure: stop reading, and TCP flow control slows the sender.
        while sink.metrics.full() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        loop {
            match next_frame(&buf[at..]) {
                Frame::Complete { start, end, next } => {
                    sink.take(&buf[at + start..at + end], peer, &mut batch);
                    at += next;
                }
                Frame::Incomplete => break,
                Frame::Invalid => {
                    // No way to find the next frame: count it and drop the connection.
                    sink.source.rejected.fetch_add(1, Ordering::Relaxed);
                    sink.write(&mut batch);
                    return;
                }
            }
        }
        buf.drain(..at);
        if !sink.write(&mut batch) {
            return;
        }
    }
}

/// The next frame of a TCP stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A frame at `start..end`; the following one starts at `next`.
    Complete {
        /// First byte of the message.
        start: usize,
        /// End of the message.
        end: usize,
        /// Start of the next frame.
        next: usize,
    },
    /// More bytes are needed.
    Incomplete,
    /// Oversized or malformed beyond recovery.
    Invalid,
}

/// Cuts one frame: octet counting (`LEN SP MSG`, RFC 6587) when it starts with a digit,
/// otherwise up to the next newline or NUL (Python's `SysLogHandler` ends frames with NUL).
pub fn next_frame(buf: &[u8]) -> Frame {
    let skip = buf
        .iter()
        .position(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .unwrap_or(buf.len());
    let b = &buf[skip..];
    if b.is_empty() {
        return Frame::Incomplete;
    }
    if b[0].is_ascii_digit() {
        let Some(space) = b.iter().take(12).position(|&c| c == b' ') else {
            return if b.len() >= 12 {
                Frame::Invalid
            } else {
                Frame::Incomplete
            };
        };
        let Some(len) = std::str::from_utf8(&b[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return Frame::Invalid;
        };
        if len > MAX_FRAME {
            return Frame::Invalid;
        }
        let start = skip + space + 1;
        return if buf.len() >= start + len {
            Frame::Complete {
                start,
                end: start + len,
                next: start + len,
            }
        } else {
            Frame::Incomplete
        };
    }
    match memchr::memchr2(b'\n', b'\0', b) {
        Some(end) => Frame::Complete {
            start: skip,
            end: skip + end,
            next: skip + end + 1,
        },
        None if b.len() > MAX_FRAME => Frame::Invalid,
        None => Frame::Incomplete,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_octet_count_newline_and_nul() {
        let buf = b"12 <13>hi there<14>a\n<15>b\0";
        let frame = |start, end, next| Frame::Complete { start, end, next };
        assert_eq!(next_frame(buf), frame(3, 15, 15));
        assert_eq!(&buf[3..15], b"<13>hi there");
        assert_eq!(next_frame(&buf[15..]), frame(0, 5, 6));
        assert_eq!(next_frame(&buf[21..]), frame(0, 5, 6));
        // Blank separators between frames are skipped.
        assert_eq!(next_frame(b"\r\n\n<13>x\n"), frame(3, 8, 9));
        assert_eq!(next_frame(b"20 <13>short"), Frame::Incomplete);
        assert_eq!(next_frame(b"<13>no end yet"), Frame::Incomplete);
        assert_eq!(next_frame(b"99999999 x"), Frame::Invalid);
    }

    #[test]
    fn normalizes_and_completes_messages() {
        let peer: IpAddr = [127, 0, 0, 1].into();
        let (is5424, line) = normalize(b"<14>1 2026-11-01T12:00:00Z h app - - - hi\n", peer).unwrap();
        assert!(is5424);
        assert_eq!(line, "<14>1 2026-11-01T12:00:00Z h app - - - hi");
        let (is5424, line) = normalize(b"<11>app: boom\0", peer).unwrap();
        assert!(!is5424);
        assert!(
            line.starts_with("<11>20") && line.ends_with(" 127.0.0.1 app: boom"),
            "{line}"
        );
        assert_eq!(normalize(b"garbage", peer), None);
        assert_eq!(normalize(b"<999>x", peer), None);
    }
}
