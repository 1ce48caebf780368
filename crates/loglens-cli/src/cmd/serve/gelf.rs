//! GELF, the Graylog Extended Log Format, as Docker's `gelf` log driver, Graylog's libraries
//! and graypy send it: over UDP (`--gelf-udp`; zlib, gzip or plain; up to 128 chunks a
//! message), over TCP (`--gelf-tcp`, NUL-terminated, framed by the syslog source's reader) and
//! over HTTP (`POST /gelf`). Each message becomes a JSON line for the `json`
//! format: `short_message` the message, `timestamp` the time, `level` the syslog severity,
//! `host`, and the additional `_fields` as attrs (Docker's `_container_name`, or `facility`,
//! names the service).

use std::collections::HashMap;
use std::io::Read;
use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::syslog::NetSink;

/// Why a GELF message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GelfError {
    #[error("GELF: {0}")]
    Decompress(String),
    #[error("GELF: message over {0} bytes once decompressed")]
    TooLarge(usize),
    #[error("GELF: not a JSON object: {0}")]
    Json(String),
    #[error("GELF: `short_message` is missing or empty")]
    NoMessage,
    #[error("GELF: chunk header is malformed")]
    Chunk,
}

/// A message's bytes as sent: gzip (`1f 8b`) and zlib (`78`) recognized by their first bytes,
/// as Graylog's inputs do, since senders do not say; decompressed up to `max` bytes.
pub fn decompress(payload: &[u8], max: usize) -> Result<Vec<u8>, GelfError> {
    let reader: Box<dyn Read + '_> = match payload {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(payload)),
        [0x78, ..] => Box::new(flate2::read::ZlibDecoder::new(payload)),
        _ if payload.len() > max => return Err(GelfError::TooLarge(max)),
        _ => return Ok(payload.to_vec()),
    };
    let mut out = Vec::new();
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| GelfError::Decompress(e.to_string()))?;
    if out.len() > max {
        return Err(GelfError::TooLarge(max));
    }
    Ok(out)
}

/// Record keys an additional field keeps its underscore beside, not to take their place.
const RECORD_KEYS: [&str; 9] = [
    "msg", "message", "log", "level", "severity", "lvl", "host", "hostname", "service",
];
/// Fields that name the service, first found first: additional ones, Docker's container, and
/// GELF 1.0's `facility` (graypy's logger name).
const SERVICE_FIELDS: [&str; 5] = ["_service", "_app", "_application", "_container_name", "facility"];

/// A GELF message as a JSON line (see the module docs); `now_micros` when it has no time.
pub fn message_line(message: &[u8], now_micros: i64) -> Result<String, GelfError> {
    let mut gelf: Map<String, Value> =
        serde_json::from_slice(message).map_err(|e| GelfError::Json(e.to_string()))?;
    let short = match gelf.remove("short_message") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        _ => return Err(GelfError::NoMessage),
    };
    let ts = gelf
        .remove("timestamp")
        .and_then(|t| t.as_f64().or_else(|| t.as_str()?.trim().parse().ok()))
        .map_or(now_micros, |s| (s * 1e6).round() as i64);
    let mut record = Map::from_iter([("ts".to_owned(), json!(ts)), ("message".to_owned(), json!(short))]);
    let level = gelf.remove("level").and_then(|l| l.as_u64());
    if let Some(level) = level.and_then(|l| loglens_core::Level::from_syslog_severity(u8::try_from(l).ok()?))
    {
        record.insert("level".into(), json!(level.as_str()));
    }
    if let Some(Value::String(host)) = gelf.remove("host") {
        record.insert("host".into(), json!(host));
    }
    if let Some(service) = SERVICE_FIELDS
        .iter()
        .find_map(|k| gelf.get(*k).and_then(Value::as_str))
    {
        record.insert("service".into(), json!(service.trim_start_matches('/')));
    }
    gelf.remove("version");
    gelf.remove("_id");
    for (key, value) in gelf {
        let name = key.strip_prefix('_').unwrap_or(&key);
        let taken = RECORD_KEYS.contains(&name) || loglens_core::format::is_time_key(name);
        let key = if taken || record.contains_key(name) {
            key.clone()
        } else {
            name.to_owned()
        };
        record.entry(key).or_insert(value);
    }
    Ok(Value::Object(record).to_string())
}

/// How long the chunks of a message wait for the rest (GELF's own limit).
const CHUNK_WAIT: Duration = Duration::from_secs(5);
/// Most chunks a message has.
const MAX_CHUNKS: usize = 128;
/// Most bytes of chunks held at once; past it the oldest message waiting is dropped.
const MAX_HELD: usize = 64 << 20;

struct Partial {
    first_seen: Instant,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
}

/// Reassembles chunked UDP messages: bounded in time and bytes.
#[derive(Default)]
pub struct Chunks {
    partial: HashMap<[u8; 8], Partial>,
    held: usize,
    /// Messages given up on (expired or pushed out), for the dropped counter.
    pub dropped: u64,
}

impl Chunks {
    /// A datagram: a whole message (`Some`), a chunk completing one (`Some`), or a chunk
    /// waiting for the rest (`None`).
    pub fn take(&mut self, datagram: &[u8], now: Instant) -> Result<Option<Vec<u8>>, GelfError> {
        let [0x1e, 0x0f, rest @ ..] = datagram else {
            return Ok(Some(datagram.to_vec()));
        };
        let (Some(id), Some(&seq), Some(&count)) = (rest.get(..8), rest.get(8), rest.get(9)) else {
            return Err(GelfError::Chunk);
        };
        let (seq, count) = (usize::from(seq), usize::from(count));
        if count == 0 || count > MAX_CHUNKS || seq >= count {
            return Err(GelfError::Chunk);
        }
        let id: [u8; 8] = id.try_into().map_err(|_| GelfError::Chunk)?;
        let data = &rest[10..];
        self.expire(now);
        let partial = self.partial.entry(id).or_insert_with(|| Partial {
            first_seen: now,
            parts: vec![None; count],
            bytes: 0,
        });
        if partial.parts.len() != count {
            return Err(GelfError::Chunk);
        }
        if partial.parts[seq].is_none() {
            partial.bytes += data.len();
            self.held += data.len();
            partial.parts[seq] = Some(data.to_vec());
        }
        if partial.parts.iter().all(Option::is_some) {
            let done = self.partial.remove(&id).map(|p| {
                self.held -= p.bytes;
                p.parts.into_iter().flatten().flatten().collect()
            });
            return Ok(done);
        }
        while self.held > MAX_HELD {
            self.drop_oldest();
        }
        Ok(None)
    }

    /// Drops the messages whose chunks waited past [`CHUNK_WAIT`].
    pub fn expire(&mut self, now: Instant) {
        let before = self.partial.len();
        let held = &mut self.held;
        self.partial.retain(|_, p| {
            let keep = now.duration_since(p.first_seen) < CHUNK_WAIT;
            if !keep {
                *held -= p.bytes;
            }
            keep
        });
        self.dropped += (before - self.partial.len()) as u64;
    }

    fn drop_oldest(&mut self) {
        let oldest = self
            .partial
            .iter()
            .min_by_key(|(_, p)| p.first_seen)
            .map(|(id, _)| *id);
        if let Some(p) = oldest.and_then(|id| self.partial.remove(&id)) {
            self.held -= p.bytes;
            self.dropped += 1;
        }
    }
}

/// Serves GELF datagrams until the process exits; a full spool drops them, counted.
pub fn serve_udp(socket: UdpSocket, sink: NetSink) {
    let mut buf = vec![0u8; 65536];
    let mut chunks = Chunks::default();
    let (mut data, mut lines) = (Vec::new(), 0u64);
    let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
    let stream = sink.stream("json");
    loop {
        // Batch datagrams so one spool write serves many; a quiet socket flushes at the timeout.
        for _ in 0..512 {
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                break;
            };
            if sink.metrics.full() {
                sink.source.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let now = loglens_alert::run::wall_clock().0;
            let line = chunks
                .take(&buf[..n], Instant::now())
                .and_then(|whole| whole.map(|m| decompress(&m, super::http::MAX_BODY)).transpose())
                .and_then(|message| message.map(|m| message_line(&m, now)).transpose());
            match line {
                Ok(Some(line)) => {
                    data.extend_from_slice(line.as_bytes());
                    data.push(b'\n');
                    lines += 1;
                }
                Ok(None) => {}
                Err(_) => _ = sink.source.rejected.fetch_add(1, Ordering::Relaxed),
            }
        }
        chunks.expire(Instant::now());
        sink.source
            .dropped
            .fetch_add(std::mem::take(&mut chunks.dropped), Ordering::Relaxed);
        if lines > 0 && sink.append(&stream, &data, lines) {
            (data, lines) = (Vec::new(), 0);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_becomes_a_json_line() {
        // GELF 1.1's example message, as Graylog's documentation gives it.
        let message = br#"{"version": "1.1", "host": "example.org", "short_message": "A short message that helps you identify what is going on", "full_message": "Backtrace here\n\nmore stuff", "timestamp": 1385053862.3072, "level": 1, "_user_id": 9001, "_some_info": "foo", "_some_env_var": "bar"}"#;
        let line: Value = serde_json::from_str(&message_line(message, 0).unwrap()).unwrap();
        assert_eq!(
            line,
            json!({"ts": 1_385_053_862_307_200i64, "message": "A short message that helps you identify what is going on",
                "level": "alert", "host": "example.org", "full_message": "Backtrace here\n\nmore stuff",
                "user_id": 9001, "some_info": "foo", "some_env_var": "bar"})
        );
        // Docker's gelf driver: the container names the service; `_level` keeps its underscore.
        let docker = br#"{"version":"1.1","host":"node-1","short_message":"GET / 200","level":6,"_container_name":"/web","_image_name":"nginx","_level":"x"}"#;
        let line: Value = serde_json::from_str(&message_line(docker, 7).unwrap()).unwrap();
        assert_eq!(line["service"], "web");
        assert_eq!(line["ts"], 7);
        assert_eq!(
            (line["level"].as_str(), line["_level"].as_str()),
            (Some("info"), Some("x"))
        );
        assert_eq!(message_line(br#"{"host":"h"}"#, 0), Err(GelfError::NoMessage));
        assert!(matches!(message_line(b"[]", 0), Err(GelfError::Json(_))));
    }

    #[test]
    fn payloads_are_decompressed_by_their_magic_bytes() {
        use std::io::Write as _;
        let text = br#"{"short_message":"x"}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(text).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        for payload in [text.to_vec(), z.finish().unwrap(), gz.finish().unwrap()] {
            assert_eq!(decompress(&payload, 1 << 20).unwrap(), text);
        }
        let mut bomb = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        bomb.write_all(&vec![b' '; 1 << 20]).unwrap();
        assert_eq!(
            decompress(&bomb.finish().unwrap(), 1000),
            Err(GelfError::TooLarge(1000))
        );
    }

    fn chunk(id: u8, seq: u8, count: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1e, 0x0f, id, 0, 0, 0, 0, 0, 0, 0, seq, count];
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn chunks_are_reassembled_in_any_order_and_expire() {
        let mut chunks = Chunks::default();
        let t0 = Instant::now();
        assert_eq!(chunks.take(&chunk(1, 1, 3, b"b"), t0), Ok(None));
        assert_eq!(chunks.take(&chunk(2, 0, 2, b"lost"), t0), Ok(None));
        assert_eq!(chunks.take(&chunk(1, 2, 3, b"c"), t0), Ok(None));
        assert_eq!(
            chunks.take(&chunk(1, 1, 3, b"b"), t0),
            Ok(None),
            "a duplicate is ignored"
        );
        assert_eq!(chunks.take(&chunk(1, 0, 3, b"a"), t0), Ok(Some(b"abc".to_vec())));
        assert_eq!(chunks.take(b"{}", t0), Ok(Some(b"{}".to_vec())), "not chunked");
        assert_eq!(chunks.take(&chunk(3, 2, 2, b"x"), t0), Err(GelfError::Chunk));
        assert_eq!(chunks.take(&chunk(3, 0, 129, b"x"), t0), Err(GelfError::Chunk));
        chunks.expire(t0 + CHUNK_WAIT);
        assert_eq!((chunks.dropped, chunks.held, chunks.partial.len()), (1, 0, 0));
    }
}
