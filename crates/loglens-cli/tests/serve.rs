//! End-to-end tests of `loglens serve` (issue #14) on loopback, through the real binary: HTTP
//! and syslog ingestion land in Parquet, /metrics and /health count what happened, kill -9
//! loses no acknowledged line, a flood is answered 429 without losing accepted lines,
//! tailed files survive rotation by rename and by copytruncate, and alert runs retry
//! undelivered notifications without waiting for new data.
#![cfg(unix)]
// A failed setup step (bind, spawn, temp dir) should fail the test on the spot.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{read_dataset, strings};

/// Every wait is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `loglens serve`, killed when dropped.
struct Serve {
    child: Child,
    http: String,
}

impl Serve {
    fn start(data: &Path, extra: &[String]) -> Serve {
        let http = format!("127.0.0.1:{}", free_port());
        Self::start_on(data, &http, extra)
    }

    fn start_on(data: &Path, http: &str, extra: &[String]) -> Serve {
        // Flush fast unless the test chose its own interval.
        let flush: &[&str] = if extra.iter().any(|a| a == "--flush-interval") {
            &[]
        } else {
            &["--flush-interval", "0.2"]
        };
        let child = Command::new(assert_cmd::cargo::cargo_bin("loglens"))
            .args(["serve", "--http", http, "--data-dir"])
            .arg(data)
            .args(flush)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let serve = Serve {
            child,
            http: http.to_owned(),
        };
        wait_for(|| get(&serve.http, "/health").0 == 200);
        serve
    }

    /// SIGTERM, then the exit status within 10 s.
    fn stop(mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "serve did not stop within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metric(&self, line_prefix: &str) -> u64 {
        let (_, text) = get(&self.http, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{line_prefix} missing in:\n{text}"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < TIMEOUT, "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 request; (status, body), or (0, "") when the connection failed.
fn request(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    exchange(&mut s, head, body)
}

/// One HTTPS request, trusting only the test CA (`tests/testdata/tls`).
fn tls_request(addr: &str, head: &str, body: &[u8]) -> (u16, String) {
    match tls_connect(addr) {
        Some(mut tls) => exchange(&mut tls, head, body),
        None => (0, String::new()),
    }
}

/// A TLS connection to `addr` (as `localhost`), trusting only the test CA.
fn tls_connect(addr: &str) -> Option<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let ca = test_tls().join("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    Some(rustls::StreamOwned::new(tls, tcp))
}

/// The test certificates: a throwaway CA, and a certificate for localhost it signed.
fn test_tls() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/tls")
}

/// Sends a request on `s` and reads the whole answer (the request asks to close).
fn exchange(s: &mut (impl Read + Write), head: &str, body: &[u8]) -> (u16, String) {
    let mut req = format!(
        "{head}\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    if s.write_all(&req).is_err() {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    request(addr, &format!("GET {path} HTTP/1.1"), b"")
}

fn post(addr: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    request(
        addr,
        &format!("POST {path} HTTP/1.1\r\nContent-Type: {content_type}"),
        body,
    )
}

fn ndjson(ids: std::ops::Range<u64>) -> Vec<u8> {
    ids.map(|i| format!("{{\"ts\":\"2026-11-01T12:00:00Z\",\"level\":\"info\",\"msg\":\"line {i}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The rows of `records` as the text of `columns`, sorted.
fn sorted_rows<const N: usize>(
    records: &[arrow_array::RecordBatch],
    columns: [&str; N],
) -> Vec<[Option<String>; N]> {
    let values = columns.map(|c| strings(records, c));
    let mut rows: Vec<_> = (0..values[0].len())
        .map(|i| std::array::from_fn(|c| values[c][i].clone()))
        .collect();
    rows.sort();
    rows
}

/// How often each message is stored in `records/`.
fn messages(data: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in strings(&read_dataset(&data.join("records")), "message")
        .into_iter()
        .flatten()
    {
        *out.entry(m).or_insert(0) += 1;
    }
    out
}

#[test]
fn http_and_syslog_land_in_parquet_with_metrics_and_health() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (udp, tcp) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let serve = Serve::start(
        &data,
        &[
            "--syslog-udp".into(),
            udp.clone(),
            "--syslog-tcp".into(),
            tcp.clone(),
        ],
    );
    let h = serve.http.clone();

    let (status, body) = post(&h, "/ingest?service=api", "application/x-ndjson", &ndjson(0..100));
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":100,"rejected":0}"#));
    let plain = b"2026-11-01T12:00:01Z ERROR plain text line\n";
    assert_eq!(post(&h, "/ingest?format=generic", "text/plain", plain).0, 200);
    // Garbage is refused and counted; the service stays up.
    assert_eq!(post(&h, "/ingest", "application/x-ndjson", b"{not json\n").0, 400);
    assert_eq!(post(&h, "/ingest?format=nope", "text/plain", plain).0, 400);
    // A body over the limit is refused from its Content-Length, before it is read.
    let mut s = TcpStream::connect(&h).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..20 {
        sock.send_to(format!("<11>app: udp {i}\0").as_bytes(), &udp)
            .unwrap();
    }
    sock.send_to(b"\xff\xfe garbage", &udp).unwrap();
    let mut s = TcpStream::connect(&tcp).unwrap();
    let framed = "<14>1 2026-11-01T12:00:00Z h app - - - tcp octet";
    s.write_all(format!("{} {framed}", framed.len()).as_bytes())
        .unwrap();
    s.write_all(b"<13>Nov  1 12:00:00 h2 app: tcp newline\n<13>Nov  1 12:00:00 h2 app: tcp nul\0")
        .unwrap();
    // Disconnecting mid-frame loses only that frame.
    s.write_all(b"<13>Nov  1 12:00:00 h2 app: never finish").unwrap();
    drop(s);

    let expected = 100 + 1 + 20 + 3;
    wait_for(|| messages(&data).values().sum::<usize>() >= expected);
    let stored = messages(&data);
    assert_eq!(stored.values().sum::<usize>(), expected, "{stored:?}");
    assert!(stored.contains_key("line 99") && stored.contains_key("udp 19"));
    assert!(stored.contains_key("tcp octet") && stored.contains_key("tcp nul"));
    assert!(!stored.keys().any(|m| m.contains("never finish")));

    wait_for(|| serve.metric("loglens_lines_out_total{source=\"syslog_tcp\",kind=\"syslog_tcp\"}") == 3);
    assert_eq!(
        serve.metric("loglens_lines_in_total{source=\"http\",kind=\"http\"}"),
        101
    );
    assert_eq!(
        serve.metric("loglens_lines_out_total{source=\"http\",kind=\"http\"}"),
        101
    );
    assert_eq!(
        serve.metric("loglens_lines_in_total{source=\"syslog_udp\",kind=\"syslog_udp\"}"),
        20
    );
    assert_eq!(
        serve.metric("loglens_rejected_total{source=\"http\",kind=\"http\"}"),
        3
    );
    assert_eq!(
        serve.metric("loglens_rejected_total{source=\"syslog_udp\",kind=\"syslog_udp\"}"),
        1
    );
    assert_eq!(serve.metric("loglens_queue_depth_lines"), 0);
    assert!(serve.metric("loglens_flush_duration_seconds_count") >= 1);
    let (status, health) = get(&h, "/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    let kinds: Vec<&str> = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["http", "syslog_udp", "syslog_tcp"]);
    assert_eq!(health["sources"][0]["lines_out"], 101);
    // The dashboard's live counters: state/serve.json, rewritten every second, gone at exit.
    let status_path = data.join("state/serve.json");
    let status = || -> serde_json::Value {
        std::fs::read(&status_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    wait_for(|| status()["lines_out_total"] == expected as u64);
    let published = status();
    assert_eq!(published["rejected_total"], 4, "{published}");
    assert_eq!(published["pid"], serve.child.id(), "{published}");
    assert!(
        published["updated"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{published}"
    );
    assert!(serve.stop().success());
    assert!(!status_path.exists(), "serve.json is removed when serve stops");
}

#[test]
fn kill_9_during_ingestion_loses_no_acknowledged_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let serve = Serve::start(&data, &[]);
    let h = serve.http.clone();
    let mut acked = 0u64;
    // Batches of 50 until well past a few flushes; then kill -9 while the sender keeps going.
    let sender = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for batch in 0..400u64 {
            let ids = batch * 50..batch * 50 + 50;
            match post(&h, "/ingest", "application/x-ndjson", &ndjson(ids.clone())) {
                (200, _) => acked.push(ids),
                _ => break,
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(700));
    let mut serve = serve;
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    let batches = sender.join().unwrap();
    for ids in &batches {
        acked += ids.end - ids.start;
    }
    assert!(acked > 0);
    let http = serve.http.clone();
    drop(serve);
    let serve = Serve::start_on(&data, &http, &[]);
    let want: Vec<String> = batches
        .iter()
        .flat_map(|r| r.clone())
        .map(|i| format!("line {i}"))
        .collect();
    wait_for(|| {
        let stored = messages(&data);
        want.iter().all(|m| stored.contains_key(m))
    });
    let stored = messages(&data);
    let duplicates: usize = stored.values().map(|n| n - 1).sum();
    // Duplicates only from segments committed but not yet deleted at the kill (one flush).
    assert!(duplicates <= serve.metric("loglens_replayed_lines_total") as usize);
    assert!(serve.stop().success());
}

#[test]
fn a_flood_gets_429_and_loses_no_accepted_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A 1 MB spool that never flushes on time: the flood must hit the bound.
    let serve = Serve::start(
        &data,
        &[
            "--max-spool-mb".into(),
            "1".into(),
            "--flush-interval".into(),
            "3600".into(),
        ],
    );
    let (mut accepted, mut throttled, mut next) = (0u64, 0u64, 0u64);
    while throttled < 5 {
        assert!(next < 100_000, "never throttled");
        let (status, _) = post(
            &serve.http,
            "/ingest",
            "application/x-ndjson",
            &ndjson(next..next + 500),
        );
        match status {
            200 => accepted += 500,
            429 => throttled += 1,
            other => panic!("status {other}"),
        }
        next += 500;
    }
    assert_eq!(
        serve.metric("loglens_dropped_total{source=\"http\",kind=\"http\"}"),
        throttled
    );
    // Shutdown flushes everything accepted.
    assert!(serve.stop().success());
    assert_eq!(messages(&data).values().sum::<usize>() as u64, accepted);
}

fn append(path: &Path, ids: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in ids {
        writeln!(f, "2026-11-01T12:00:00Z INFO app line {i}").unwrap();
    }
}

fn tail_dir(tmp: &Path) -> (PathBuf, PathBuf, Serve) {
    let logs = tmp.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let data = tmp.join("data");
    let glob = format!("{}/app.log", logs.display());
    let serve = Serve::start(&data, &["--tail".into(), glob]);
    (logs.join("app.log"), data, serve)
}

/// Every `app line N` for N below `n` is stored exactly once.
fn wait_exactly_once(data: &Path, n: u64) {
    wait_for(|| messages(data).len() as u64 >= n);
    std::thread::sleep(Duration::from_millis(600));
    let stored = messages(data);
    assert_eq!(stored.len() as u64, n, "{stored:?}");
    assert!(stored.values().all(|&c| c == 1), "duplicates: {stored:?}");
}

#[test]
fn tails_survive_rotation_by_rename() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, data, serve) = tail_dir(tmp.path());
    append(&log, 0..100);
    wait_exactly_once(&data, 100);
    append(&log, 100..150);
    std::fs::rename(&log, log.with_extension("log.1")).unwrap();
    append(&log, 150..200);
    wait_exactly_once(&data, 200);
    assert!(serve.stop().success());
}

#[test]
fn tails_survive_copytruncate() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, data, serve) = tail_dir(tmp.path());
    append(&log, 0..100);
    wait_exactly_once(&data, 100);
    append(&log, 100..150);
    std::fs::copy(&log, log.with_extension("log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, 150..200);
    wait_exactly_once(&data, 200);
    assert!(serve.stop().success());
}

#[test]
fn gzip_bodies_json_arrays_and_pretty_objects_are_ingested_and_unknown_encodings_refused() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let serve = Serve::start(&data, &[]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&ndjson(0..50)).unwrap();
    let body = gz.finish().unwrap();
    let head = "POST /ingest?service=api HTTP/1.1\r\nContent-Type: application/x-ndjson";
    let (status, answer) = request(&serve.http, &format!("{head}\r\nContent-Encoding: gzip"), &body);
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"accepted":50,"rejected":0}"#)
    );
    let (status, answer) = request(&serve.http, &format!("{head}\r\nContent-Encoding: br"), &body);
    assert_eq!(status, 415, "{answer}");
    assert!(answer.contains("not supported"), "{answer}");
    // Fluent Bit's `format json`: one JSON array of records, pretty or not, gzipped.
    let records: Vec<String> = (50..70)
        .map(|i| format!("{{\"ts\":\"2026-11-01T12:00:00Z\",\n \"level\":\"info\",\"msg\":\"line {i}\"}}"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(format!("[{}]", records.join(",\n")).as_bytes())
        .unwrap();
    let body = gz.finish().unwrap();
    let head = "POST /ingest HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip";
    let (status, answer) = request(&serve.http, head, &body);
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"accepted":20,"rejected":0}"#)
    );
    // One object over several lines, as `curl -d @event.json` sends a pretty-printed file.
    let pretty = b"{\n  \"ts\": \"2026-11-01T12:00:00Z\",\n  \"msg\": \"line 70\"\n}\n";
    let (status, answer) = post(&serve.http, "/ingest", "application/json", pretty);
    assert_eq!((status, answer.as_str()), (200, r#"{"accepted":1,"rejected":0}"#));
    wait_exactly_once(&data, 71);
    assert!(serve.stop().success());
}

/// A Loki `PushRequest` as Promtail sends it: protobuf, snappy-compressed.
fn promtail_push(labels: &str, lines: &[(u64, &str)]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
        varint(out, number << 3 | 2);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut stream = Vec::new();
    field(&mut stream, 1, labels.as_bytes());
    for &(seconds, line) in lines {
        let mut timestamp = vec![1 << 3];
        varint(&mut timestamp, seconds);
        let mut entry = Vec::new();
        field(&mut entry, 1, &timestamp);
        field(&mut entry, 2, line.as_bytes());
        field(&mut stream, 2, &entry);
    }
    let mut push = Vec::new();
    field(&mut push, 1, &stream);
    snap::raw::Encoder::new().compress_vec(&push).unwrap()
}

#[test]
fn loki_pushes_in_json_and_protobuf_land_with_their_labels() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let serve = Serve::start(&data, &[]);
    // Fluent Bit's and Vector's `loki` outputs: JSON, gzipped; lines without a time of their own.
    let body = br#"{"streams":[{"stream":{"job":"payments","host":"pay-01","level":"error"},
        "values":[["1793534400000000000","card declined"],["1793534401500000000","{\"msg\":\"retry failed\",\"order\":7}"]]}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body).unwrap();
    let head = "POST /loki/api/v1/push HTTP/1.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip";
    assert_eq!(
        request(&serve.http, head, &gz.finish().unwrap()),
        (204, String::new())
    );
    // Promtail's protobuf, nginx lines parsed as the format the URL names.
    let line = r#"10.0.0.1 - - [01/Nov/2026:12:00:00 +0000] "GET /cart HTTP/1.1" 503 12 "-" "curl/8""#;
    let push = promtail_push(r#"{job="nginx", host="web-1"}"#, &[(1_793_534_400, line)]);
    let path = "/loki/api/v1/push?format=combined";
    assert_eq!(
        post(&serve.http, path, "application/x-protobuf", &push),
        (204, String::new())
    );
    let (status, why) = post(
        &serve.http,
        "/loki/api/v1/push",
        "application/x-protobuf",
        b"junk",
    );
    assert_eq!((status, why.contains("snappy")), (400, true), "{why}");
    let (status, why) = post(
        &serve.http,
        "/loki/api/v1/push",
        "application/json",
        b"{\"streams\":[{}]}",
    );
    assert_eq!((status, why.contains("Loki push")), (400, true), "{why}");
    wait_for(|| messages(&data).len() >= 3);
    assert!(serve.stop().success());
    let records = read_dataset(&data.join("records"));
    let mut got: Vec<_> = sorted_rows(&records, ["message", "service", "host", "level", "path"])
        .into_iter()
        .map(|row| row.map(Option::unwrap_or_default))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            [
                "GET /cart HTTP/1.1".into(),
                "nginx".into(),
                "web-1".into(),
                "error".into(),
                "/cart".into()
            ],
            [
                "card declined".into(),
                "payments".into(),
                "pay-01".into(),
                "error".into(),
                String::new()
            ],
            [
                "retry failed".into(),
                "payments".into(),
                "pay-01".into(),
                "error".into(),
                String::new()
            ],
        ]
    );
    let ts: Vec<i64> = records
        .iter()
        .flat_map(|b| {
            let ts = b.column_by_name("ts").unwrap();
            let ts = ts
                .as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .unwrap();
            ts.values().to_vec()
        })
        .collect();
    assert!(
        ts.contains(&1_793_534_401_500_000),
        "the entry's time, to the microsecond: {ts:?}"
    );
}

#[test]
fn elasticsearch_bulk_requests_land_and_answer_per_item() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let serve = Serve::start(&data, &[]);
    let (status, banner) = get(&serve.http, "/");
    assert_eq!(
        (status, banner.contains("\"number\":\"8.")),
        (200, true),
        "{banner}"
    );
    // Fluent Bit's `es` output: `create` actions, a flat record with `@timestamp`.
    let fluent_bit = br#"{"create":{"_index":"fluent-bit"}}
{"@timestamp":"2026-11-01T12:00:00.250Z","log":"GET /cart 503","stream":"stdout","kubernetes":{"host":"node-1"}}
"#;
    let (status, answer) = post(&serve.http, "/_bulk", "application/x-ndjson", fluent_bit);
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["errors"], false);
    assert_eq!(answer["items"][0]["create"]["status"], 201);
    // ECS documents, nested, to an index in the path; a delete refused on its own.
    let ecs = br#"{"index":{}}
{"@timestamp":"2026-11-01T12:00:01Z","message":"payment declined","log":{"level":"error"},"service":{"name":"payments"},"host":{"name":"pay-01"}}
{"delete":{"_id":"x"}}
"#;
    let (status, answer) = request(
        &serve.http,
        "PUT /logs-payments/_bulk HTTP/1.1\r\nContent-Type: application/json",
        ecs,
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((status, &answer["errors"]), (200, &serde_json::json!(true)));
    assert_eq!(answer["items"][0]["index"]["_index"], "logs-payments");
    assert_eq!(answer["items"][1]["delete"]["status"], 400);
    let (status, why) = post(&serve.http, "/_bulk", "application/x-ndjson", b"{\"index\":{}}\n");
    assert_eq!((status, why.contains("no document line")), (400, true), "{why}");
    // Elastic's clients index a document at a time too (the index API).
    let doc =
        br#"{"@timestamp":"2026-11-01T12:00:02Z","message":"refund sent","service":{"name":"payments"}}"#;
    let (status, answer) = post(&serve.http, "/logs-payments/_doc", "application/json", doc);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((status, &answer["result"]), (201, &serde_json::json!("created")));
    let (status, why) = post(
        &serve.http,
        "/logs-payments/_create/7",
        "application/json",
        b"[1]",
    );
    assert_eq!(
        (status, why.contains("document_parsing_exception")),
        (400, true),
        "{why}"
    );
    // A receiver asked with the wrong method says so, not that it does not exist.
    for path in ["/_bulk", "/logs/_bulk", "/loki/api/v1/push", "/v1/logs", "/gelf"] {
        assert_eq!(get(&serve.http, path).0, 405, "GET {path}");
    }
    wait_for(|| messages(&data).len() >= 3);
    assert!(serve.stop().success());
    let records = read_dataset(&data.join("records"));
    let got = sorted_rows(&records, ["message", "service", "host", "level"]);
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        [
            [some("GET /cart 503"), None, None, None],
            [
                some("payment declined"),
                some("payments"),
                some("pay-01"),
                some("error")
            ],
            [some("refund sent"), some("payments"), None, None],
        ]
    );
}

#[test]
fn splunk_hec_events_land_and_bad_batches_are_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let serve = Serve::start(&data, &[]);
    let (status, health) = get(&serve.http, "/services/collector/health/1.0");
    assert_eq!((status, health.contains("\"code\":17")), (200, true), "{health}");
    // Stacked events as Vector's `splunk_hec_logs` and Fluent Bit's `splunk` send them.
    let events = br#"{"time":1793534400.25,"host":"web-1","sourcetype":"nginx","event":"GET /cart 503"}{"time":"1793534401","event":{"message":"payment declined","level":"error"},"fields":{"service":"payments"}}"#;
    let head = "POST /services/collector/event HTTP/1.1\r\nAuthorization: Splunk 0000\r\nContent-Type: application/json";
    let answer = request(&serve.http, head, events);
    assert_eq!(answer, (200, r#"{"code":0,"text":"Success"}"#.to_owned()));
    // The second event lacks `event`: nothing of the batch is stored, the answer names it.
    let bad = br#"{"event":"would be stored twice on resend"} {"time":1}"#;
    let (status, why) = request(&serve.http, head, bad);
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&why).unwrap(),
        serde_json::json!({"text": "Event field is required", "code": 12, "invalid-event-number": 1})
    );
    let raw = "POST /services/collector/raw?host=db-1 HTTP/1.1\r\nContent-Type: text/plain";
    let line = b"2026-11-01 12:00:02.000 UTC [42] LOG:  checkpoint starting: time\n";
    let answer = request(&serve.http, raw, line);
    assert_eq!(answer, (200, r#"{"code":0,"text":"Success"}"#.to_owned()));
    wait_for(|| messages(&data).len() >= 3);
    assert!(serve.stop().success());
    let records = read_dataset(&data.join("records"));
    let got = sorted_rows(&records, ["message", "service", "host", "level"]);
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        [
            [some("GET /cart 503"), None, some("web-1"), None],
            [
                some("checkpoint starting: time"),
                None,
                some("db-1"),
                some("info")
            ],
            [some("payment declined"), some("payments"), None, some("error")],
        ]
    );
}

#[test]
fn with_a_token_only_requests_that_carry_it_are_ingested() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let http = format!("127.0.0.1:{}", free_port());
    let serve = |token: Option<&str>| {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("loglens"));
        command
            .args([
                "serve",
                "--http",
                &http,
                "--http-token-env",
                "INGEST_TOKEN",
                "--data-dir",
            ])
            .arg(&data)
            .args(["--flush-interval", "0.2"])
            .env_remove("INGEST_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            command.env("INGEST_TOKEN", token);
        }
        command
    };
    // No variable: a clear error at start, naming it.
    let out = serve(None).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        (out.status.code(), stderr.contains("INGEST_TOKEN is not set")),
        (Some(1), true),
        "{stderr}"
    );
    let child = serve(Some("s3cret")).stderr(Stdio::null()).spawn().unwrap();
    let serve = Serve { child, http };
    wait_for(|| get(&serve.http, "/health").0 == 200);
    let line = |i: u64| ndjson(i..i + 1);
    let head = "POST /ingest HTTP/1.1\r\nContent-Type: application/x-ndjson";
    let (status, why) = request(&serve.http, head, &line(0));
    assert_eq!((status, why.contains("Bearer")), (401, true), "{why}");
    let with = |auth: &str| format!("{head}\r\nAuthorization: {auth}");
    assert_eq!(request(&serve.http, &with("Bearer wrong"), &line(1)).0, 401);
    assert_eq!(request(&serve.http, &with("Bearer s3cret"), &line(2)).0, 200);
    // Basic with the token as the password, as Fluent Bit's `http_passwd` sends it.
    assert_eq!(
        request(&serve.http, &with("Basic Zmx1ZW50OnMzY3JldA=="), &line(3)).0,
        200
    );
    let hec = "POST /services/collector/event HTTP/1.1\r\nAuthorization: Splunk s3cret";
    let event = br#"{"time":1793534400,"event":"line 4"}"#;
    assert_eq!(request(&serve.http, hec, event).0, 200);
    assert_eq!(
        get(&serve.http, "/ingest?msg=x").0,
        401,
        "GET /ingest ingests: it needs the token"
    );
    assert_eq!(
        get(&serve.http, "/metrics").0,
        200,
        "reading the status needs none"
    );
    wait_for(|| messages(&data).len() >= 3);
    assert!(serve.stop().success());
    assert_eq!(
        messages(&data).into_keys().collect::<Vec<_>>(),
        ["line 2", "line 3", "line 4"]
    );
}

#[test]
fn https_serves_the_same_endpoints_and_bad_key_files_stop_it_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let http = format!("127.0.0.1:{}", free_port());
    let tls = test_tls();
    let serve = |cert: &str, key: &str| {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("loglens"));
        command
            .args(["serve", "--http", &http, "--http-tls-cert"])
            .arg(tls.join(cert))
            .arg("--http-tls-key")
            .arg(tls.join(key))
            .arg("--data-dir")
            .arg(&data)
            .args(["--flush-interval", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    // A key that does not go with the certificate, or a file that is not there: an error at
    // start naming the file.
    for (cert, key, named) in [
        ("cert.pem", "ca.pem", "ca.pem"),
        ("missing.pem", "key.pem", "missing.pem"),
    ] {
        let out = serve(cert, key).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            (out.status.code(), stderr.contains(named)),
            (Some(1), true),
            "{stderr}"
        );
    }
    let child = serve("cert.pem", "key.pem")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serve = Serve { child, http };
    wait_for(|| tls_request(&serve.http, "GET /health HTTP/1.1", b"").0 == 200);
    let head = "POST /ingest HTTP/1.1\r\nContent-Type: application/x-ndjson";
    assert_eq!(tls_request(&serve.http, head, &ndjson(0..2)).0, 200);
    let (status, _) = request(&serve.http, head, &ndjson(2..3));
    assert_ne!(status, 200, "plain HTTP on the HTTPS port lands nothing");
    wait_for(|| messages(&data).len() >= 2);
    assert!(serve.stop().success());
    assert_eq!(
        messages(&data).into_keys().collect::<Vec<_>>(),
        ["line 0", "line 1"]
    );
}

#[test]
fn syslog_over_tls_lands_octet_counted_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tcp = format!("127.0.0.1:{}", free_port());
    let config = tmp.path().join("loglens.toml");
    let tls = test_tls();
    std::fs::write(
        &config,
        format!(
            "[[source]]\nkind = \"syslog_tcp\"\nname = \"syslog_tls\"\nlisten = \"{tcp}\"\n\
             tls_cert = {:?}\ntls_key = {:?}\n",
            tls.join("cert.pem"),
            tls.join("key.pem")
        ),
    )
    .unwrap();
    let serve = Serve::start(&data, &["--config".into(), config.display().to_string()]);
    // As rsyslog's omfwd with TLS sends (RFC 5425: octet counting inside the session).
    let mut tls = tls_connect(&tcp).unwrap();
    for i in 0..3 {
        let frame = format!("<14>1 2026-11-01T12:00:0{i}Z web-1 shop - - - tls {i}");
        tls.write_all(format!("{} {frame}", frame.len()).as_bytes())
            .unwrap();
    }
    tls.flush().unwrap();
    // Plain syslog on the TLS port fails the handshake and lands nothing.
    let mut plain = TcpStream::connect(&tcp).unwrap();
    plain.write_all(b"<13>Nov  1 12:00:00 h2 app: plain\n").unwrap();
    wait_for(|| messages(&data).len() >= 3);
    wait_for(|| serve.metric("loglens_rejected_total{source=\"syslog_tls\",kind=\"syslog_tcp\"}") == 1);
    drop((tls, plain));
    assert!(serve.stop().success());
    assert_eq!(
        messages(&data).into_keys().collect::<Vec<_>>(),
        ["tls 0", "tls 1", "tls 2"]
    );
}

#[test]
fn otlp_requests_in_protobuf_and_json_land_as_the_same_records() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let serve = Serve::start(&data, &[]);
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd/serve/testdata");
    let protobuf = std::fs::read(testdata.join("otlp_logs.binpb")).unwrap();
    let json = std::fs::read(testdata.join("otlp_logs.expected.json")).unwrap();
    // An ExportLogsServiceResponse: empty in protobuf, `{}` in JSON.
    let answer = post(&serve.http, "/v1/logs", "application/x-protobuf", &protobuf);
    assert_eq!(answer, (200, String::new()));
    let answer = post(&serve.http, "/v1/logs", "application/json", &json);
    assert_eq!(answer, (200, "{}".to_owned()));
    let (status, why) = post(&serve.http, "/v1/logs", "application/x-protobuf", &protobuf[..40]);
    assert_eq!((status, why.contains("truncated")), (400, true), "{why}");
    let (status, why) = post(&serve.http, "/v1/logs", "text/plain", b"hello");
    assert_eq!(
        (status, why.contains("application/x-protobuf")),
        (415, true),
        "{why}"
    );
    assert_eq!(get(&serve.http, "/v1/logs").0, 405);
    wait_for(|| messages(&data).values().sum::<usize>() >= 6);
    assert!(serve.stop().success());
    let stored = messages(&data);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["payment failed", "queue deep", r#"{"event":"login"}"#]
    );
    assert!(stored.values().all(|&n| n == 2), "once per request: {stored:?}");
    let records = read_dataset(&data.join("records"));
    let services: BTreeMap<_, _> = strings(&records, "message")
        .into_iter()
        .zip(strings(&records, "service"))
        .collect();
    assert_eq!(
        services[&Some("queue deep".to_owned())],
        Some("worker".to_owned())
    );
    assert_eq!(
        services[&Some("payment failed".to_owned())],
        Some("checkout".to_owned())
    );
    assert!(!data.join("unparsed").exists() || read_dataset(&data.join("unparsed")).is_empty());
}

#[test]
fn serve_with_only_tails_publishes_its_status_from_the_start() {
    // No HTTP or syslog source, so no spool creates `state/` before the first flush.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let errors = tmp.path().join("stderr");
    let glob = format!("{}/*.log", tmp.path().display());
    let child = Command::new(assert_cmd::cargo::cargo_bin("loglens"))
        .args(["serve", "--tail", &glob, "--flush-interval", "0.2", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errors).unwrap())
        .spawn()
        .unwrap();
    // Killed when dropped, should the wait fail.
    let serve = Serve {
        child,
        http: String::new(),
    };
    wait_for(|| data.join("state/serve.json").exists());
    assert!(serve.stop().success());
    let stderr = std::fs::read_to_string(&errors).unwrap();
    assert!(stderr.contains("loglens serve: writing"), "{stderr}");
    assert!(!stderr.contains("serve.json"), "{stderr}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = common::loglens()
        .args(["serve", "--http", &addr, "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("cannot listen"), "{err}");
    let out = common::loglens()
        .args(["serve", "--tail", "/nonexistent-dir/*.log", "--data-dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir"));
}

/// (status answered, idempotency key) of each request a receiver got.
type Requests = std::sync::Arc<std::sync::Mutex<Vec<(u16, String)>>>;

/// A webhook receiver on loopback that answers 503 until `down` has passed since the first
/// request, then 200; returns its address and the requests it got.
fn flaky_receiver(down: Duration) -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut first: Option<Instant> = None;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 65536];
            // Read the head, then the body its Content-Length announces.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&request);
            let key = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Idempotency-Key:")
                        .or_else(|| l.strip_prefix("idempotency-key:"))
                })
                .map(|v| v.trim().to_owned())
                .unwrap_or_default();
            let started = *first.get_or_insert_with(Instant::now);
            let status = if started.elapsed() < down { 503 } else { 200 };
            log.lock().unwrap().push((status, key));
            let reason = if status == 200 {
                "OK"
            } else {
                "Service Unavailable"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (addr, seen)
}

#[test]
fn serve_retries_undelivered_notifications_without_new_data() {
    let tmp = tempfile::tempdir().unwrap();
    // Two days ending about now, so recent incidents are within the late lookback (24 h).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = loglens_core::Timestamp::from_secs((now - 2 * 86_400) / 60 * 60).to_rfc3339();
    let (gen, data) = (tmp.path().join("gen"), tmp.path().join("data"));
    let loglens = || Command::new(assert_cmd::cargo::cargo_bin("loglens"));
    let ok = |c: &mut Command| assert!(c.stdout(Stdio::null()).status().unwrap().success());
    ok(loglens()
        .args([
            "generate",
            "--lines",
            "100000",
            "--duration",
            "2d",
            "--seed",
            "11",
            "--start",
            &start,
            "--out",
        ])
        .arg(&gen));
    ok(loglens()
        .args(["process", "--detect", "--config"])
        .arg(gen.join("loglens.toml"))
        .arg("--data-dir")
        .arg(&data));
    let (addr, seen) = flaky_receiver(Duration::from_secs(3));
    let config = tmp.path().join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "[alerting]\nresolve_after = \"5m\"\nbackoff_base = \"200ms\"\n\n\
             [[receiver]]\nname = \"oncall\"\nkind = \"webhook\"\nurl = \"http://{addr}/hook\"\nmax_attempts = 1\n\n\
             [[rule]]\nname = \"incidents\"\nkind = \"incident\"\nmin_severity = \"warning\"\n\
             receivers = [\"oncall\"]\ngroup_by = [\"root\"]\ngroup_wait = \"0s\"\n"
        ),
    )
    .unwrap();
    // No line is sent to serve: its alert runs alone must notify, then retry.
    let serve = Serve::start(
        &data,
        &[
            "--config".into(),
            config.display().to_string(),
            "--detect-interval".into(),
            "1".into(),
        ],
    );
    wait_for(|| {
        let seen = seen.lock().unwrap();
        let failed: Vec<&String> = seen.iter().filter(|(s, _)| *s == 503).map(|(_, k)| k).collect();
        seen.iter().any(|(s, k)| *s == 200 && failed.contains(&k))
    });
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|(_, k)| !k.is_empty()), "{seen:?}");
    // Each notification is delivered once: no key is acknowledged twice.
    let delivered: Vec<&String> = seen.iter().filter(|(s, _)| *s == 200).map(|(_, k)| k).collect();
    let unique: std::collections::BTreeSet<&&String> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "{seen:?}");
    wait_for(|| serve.metric("loglens_alerts_sent_total") >= 1);
    assert!(serve.stop().success());
}

#[test]
fn serve_compacts_closed_hours_of_many_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Nine `process` runs, nine parts in one hour long past.
    for run in 0..9 {
        let log = tmp.path().join(format!("app-{run}.log"));
        let lines: String = (0..20)
            .map(|i| format!("2026-01-01T05:{i:02}:{run:02}Z level=info msg=\"job {run}-{i} done\"\n"))
            .collect();
        std::fs::write(&log, lines).unwrap();
        let ok = Command::new(assert_cmd::cargo::cargo_bin("loglens"))
            .args(["process", "--data-dir"])
            .arg(&data)
            .arg(&log)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let hour = data.join("records/date=2026-01-01/hour=05");
    let parts = || common::parquet_files(&hour);
    assert_eq!(parts().len(), 9);
    let serve = Serve::start(&data, &["--compact-interval".into(), "1".into()]);
    wait_for(|| parts().len() == 1);
    assert!(serve.stop().success());
    assert_eq!(common::count_rows(&hour), 180, "every record, once");
}
