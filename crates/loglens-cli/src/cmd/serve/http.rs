//! The HTTP listener of `loglens serve`: `POST /ingest` (plain lines, NDJSON, or the form
//! Python's `logging.handlers.HTTPHandler` posts; gzip or deflate bodies as shippers compress
//! them), `POST /v1/logs` (OTLP/HTTP), `POST /loki/api/v1/push` (Loki's push API),
//! `POST /_bulk` (Elasticsearch's bulk API), `POST /services/collector/event` (Splunk's HTTP
//! Event Collector), `POST /gelf` (GELF), `GET /health`, `GET /metrics`. A small blocking HTTP/1.1 server, one thread per
//! connection (bounded), keep-alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use loglens_engine::input::Parsers;

use super::metrics::{Metrics, SourceMetrics};
use super::spool::{Spool, Stream};
use super::{elastic, gelf, loki, otlp, splunk, tls};

/// Largest request body accepted; a larger one is answered 413.
pub const MAX_BODY: usize = 16 << 20;
/// Longest line accepted in a body; a longer one is refused and counted.
const MAX_LINE: usize = 1 << 20;
/// Longest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Most connections served at once; more are answered 503.
const MAX_CONNECTIONS: usize = 256;

/// What the HTTP source needs.
pub struct HttpContext {
    /// The source's spool.
    pub spool: Arc<Spool>,
    /// Its counters.
    pub source: Arc<SourceMetrics>,
    /// All counters.
    pub metrics: Arc<Metrics>,
    /// Known formats, to check `?format=`.
    pub parsers: Parsers,
    /// Default labels and format of the source.
    pub defaults: Stream,
    /// The token ingestion requests must carry, if any.
    pub token: Option<String>,
    /// HTTPS: every connection is TLS with this configuration.
    pub tls: Option<tls::Config>,
}

struct Request {
    method: String,
    path: String,
    query: String,
    content_type: String,
    /// `Content-Encoding`, lower case ("" when none).
    encoding: String,
    /// `Authorization`, as sent ("" when none).
    authorization: String,
    body: Vec<u8>,
    close: bool,
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    retry_after: bool,
    /// Sent as Elasticsearch's answer (`X-Elastic-Product: Elasticsearch`): Elastic's own
    /// clients refuse any answer without that header.
    elastic: bool,
}

/// Whether an `Authorization` header carries `token`, in any of the forms shippers send one: `Bearer`, `Splunk` (HEC), `ApiKey`, or `Basic` with it as the password.
fn authorized(authorization: &str, token: &str) -> bool {
    let (scheme, credentials) = authorization.split_once(' ').unwrap_or((authorization, ""));
    let credentials = credentials.trim();
    let sent = if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .unwrap_or_default();
        let pair = String::from_utf8_lossy(&decoded).into_owned();
        pair.split_once(':').map(|(_, password)| password.to_owned())
    } else if ["bearer", "splunk", "apikey"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        Some(credentials.to_owned())
    } else {
        None
    };
    sent.is_some_and(|sent| same_secret(sent.as_bytes(), token.as_bytes()))
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Response {
    fn json(status: u16, body: serde_json::Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
            retry_after: false,
            elastic: false,
        }
    }

    fn error(status: u16, message: &str) -> Response {
        Response::json(status, serde_json::json!({ "error": message }))
    }

    /// This answer, sent as Elasticsearch's.
    fn with_elastic_product(self) -> Response {
        Response {
            elastic: true,
            ..self
        }
    }
}

/// Accepts connections until the process exits.
pub fn serve(listener: TcpListener, ctx: HttpContext) {
    let ctx = Arc::new(ctx);
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if live.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            ctx.source.dropped.fetch_add(1, Ordering::Relaxed);
            if ctx.tls.is_none() {
                let _ = respond(&mut stream, &Response::error(503, "too many connections"), true);
            }
            continue;
        }
        live.fetch_add(1, Ordering::Relaxed);
        let (ctx, live) = (ctx.clone(), live.clone());
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = stream.set_nodelay(true);
            match &ctx.tls {
                None => connection(&mut stream, &ctx),
                Some(config) => match tls::accept(config, stream) {
                    Some(mut stream) => {
                        connection(&mut stream, &ctx);
                        tls::close(stream);
                    }
                    None => {
                        ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
            live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Answers the requests of one connection, plain or TLS (after its handshake).
fn connection<S: Read + Write>(stream: &mut S, ctx: &HttpContext) {
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    loop {
        let request = match read_request(&mut reader, ctx) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(response) => {
                let _ = respond(reader.get_mut(), &response, true);
                return;
            }
        };
        let response = route(&request, ctx);
        if respond(reader.get_mut(), &response, request.close).is_err() || request.close {
            return;
        }
    }
}

/// Reads one request; `Ok(None)` at a clean end of the connection, `Err` with the answer
/// for a request that cannot be read.
fn read_request<S: Read + Write>(
    reader: &mut BufReader<S>,
    ctx: &HttpContext,
) -> Result<Option<Request>, Response> {
    let mut line = Vec::new();
    let mut head = 0;
    let mut read_line = |line: &mut Vec<u8>| -> Result<usize, Response> {
        line.clear();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - head) as u64)
            .read_until(b'\n', line)
            .map_err(|_| Response::error(400, "unreadable request"))?;
        head += n;
        if head >= MAX_HEAD {
            return Err(Response::error(431, "request head too large"));
        }
        Ok(n)
    };
    if read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let first = String::from_utf8_lossy(&line).trim_end().to_owned();
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Response::error(400, "malformed request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        content_type: String::new(),
        encoding: String::new(),
        authorization: String::new(),
        body: Vec::new(),
        close: version == "HTTP/1.0",
    };
    let (mut length, mut seen_length) = (0usize, false);
    let mut expect_continue = false;
    loop {
        if read_line(&mut line)? == 0 {
            return Err(Response::error(400, "unterminated request head"));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            break;
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(Response::error(400, "malformed header"));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let parsed: usize = value
                    .parse()
                    .map_err(|_| Response::error(400, "bad Content-Length"))?;
                // Two different lengths make the body's end ambiguous (request smuggling).
                if seen_length && parsed != length {
                    return Err(Response::error(400, "conflicting Content-Length headers"));
                }
                (length, seen_length) = (parsed, true);
            }
            "content-type" => request.content_type = value.to_ascii_lowercase(),
            "content-encoding" => request.encoding = value.to_ascii_lowercase(),
            "authorization" => request.authorization = value.to_owned(),
            "connection" => request.close = value.eq_ignore_ascii_case("close"),
            "transfer-encoding" => return Err(Response::error(411, "send a Content-Length")),
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if length > MAX_BODY {
        ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
        return Err(Response::error(413, &format!("body over {MAX_BODY} bytes")));
    }
    if expect_continue {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| Response::error(400, "connection lost"))?;
    }
    request.body = vec![0; length];
    Read::read_exact(reader, &mut request.body)
        .map_err(|_| Response::error(400, "body shorter than Content-Length"))?;
    // GELF senders mislabel their compression (graypy: `gzip,deflate` on zlib); GELF inputs
    // go by the body's first bytes instead.
    if request.path != "/gelf" {
        request.body = decoded(std::mem::take(&mut request.body), &request.encoding).inspect_err(|_| {
            ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
        })?;
    }
    Ok(Some(request))
}

/// The body as sent before its `Content-Encoding` (Vector, Fluent Bit and OpenTelemetry
/// shippers gzip theirs): decompressed up to [`MAX_BODY`], so a small body cannot expand
/// without bound. An encoding not listed is refused, not stored as text.
fn decoded(body: Vec<u8>, encoding: &str) -> Result<Vec<u8>, Response> {
    let reader: Box<dyn Read + '_> = match encoding {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(body.as_slice())),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(body.as_slice())),
        other => {
            return Err(Response::error(
                415,
                &format!("Content-Encoding {other:?} is not supported: send gzip, deflate or none"),
            ))
        }
    };
    let mut out = Vec::new();
    reader
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Response::error(400, &format!("body is not valid {encoding}: {e}")))?;
    if out.len() > MAX_BODY {
        return Err(Response::error(
            413,
            &format!("body over {MAX_BODY} bytes once decompressed"),
        ));
    }
    Ok(out)
}

fn respond(w: &mut impl Write, r: &Response, close: bool) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    if r.retry_after {
        head.push_str("Retry-After: 1\r\n");
    }
    if r.status == 401 {
        head.push_str("WWW-Authenticate: Bearer realm=\"loglens\"\r\n");
    }
    if r.elastic {
        head.push_str("X-Elastic-Product: Elasticsearch\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(&r.body);
    w.write_all(&message)
}

fn route(request: &Request, ctx: &HttpContext) -> Response {
    let open = request.method == "GET" && request.path != "/ingest";
    let allowed = |token: &String| authorized(&request.authorization, token);
    if !open && !ctx.token.as_ref().is_none_or(allowed) {
        ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
        return Response::error(
            401,
            "missing or wrong token: send Authorization: Bearer <token> (or Splunk <token>, \
             or Basic with the token as the password)",
        );
    }
    // Elasticsearch's index API names its index in the path (`/<index>/_doc`).
    let document = elastic::DocumentPath::parse(&request.path);
    if let ("POST" | "PUT", Some(target)) = (request.method.as_str(), &document) {
        return index_document(request, target, ctx).with_elastic_product();
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/ingest") => ingest(request, &request.body, ctx),
        // HTTPHandler's default method sends the record in the query string.
        ("GET", "/ingest") => ingest(request, request.query.as_bytes(), ctx),
        ("POST", "/v1/logs") => otlp_logs(request, ctx),
        ("POST", "/loki/api/v1/push") => loki_push(request, ctx),
        ("POST", "/gelf") => gelf_message(request, ctx),
        ("POST" | "PUT", path) if path == "/_bulk" || path.ends_with("/_bulk") => {
            let index = path.strip_suffix("/_bulk").map(|i| i.trim_start_matches('/'));
            bulk(request, index.filter(|i| !i.is_empty()), ctx).with_elastic_product()
        }
        ("POST", "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0") => {
            hec_events(request, ctx)
        }
        ("POST", "/services/collector/raw" | "/services/collector/raw/1.0") => {
            let answer = ingest(request, &request.body, ctx);
            match answer.status {
                200 => Response::json(200, splunk::success()),
                400 => Response::json(400, splunk::HecError::NoData.answer()),
                _ => answer,
            }
        }
        ("GET", "/services/collector/health" | "/services/collector/health/1.0") => {
            Response::json(200, serde_json::json!({ "text": "HEC is healthy", "code": 17 }))
        }
        // What Elasticsearch shippers ask before their first bulk (version, health check).
        ("GET", "/") => Response::json(200, elastic::banner()).with_elastic_product(),
        ("GET", "/_cluster/health") => Response::json(
            200,
            serde_json::json!({ "cluster_name": "loglens", "status": "green" }),
        )
        .with_elastic_product(),
        ("GET", "/health") => Response::json(200, ctx.metrics.health()),
        ("GET", "/metrics") => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: ctx.metrics.render().into_bytes(),
            retry_after: false,
            elastic: false,
        },
        (_, path) if RECEIVERS.contains(&path) || path.ends_with("/_bulk") => {
            Response::error(405, "method not allowed")
        }
        _ => not_found(),
    }
}

/// The paths of the receivers above, for a 405 when asked with another method.
const RECEIVERS: &[&str] = &[
    "/ingest",
    "/v1/logs",
    "/loki/api/v1/push",
    "/gelf",
    "/services/collector",
    "/services/collector/event",
    "/services/collector/raw",
    "/health",
    "/metrics",
];

fn not_found() -> Response {
    Response::error(
        404,
        "not found: POST /ingest, POST /v1/logs, POST /loki/api/v1/push, POST /_bulk, \
         POST /<index>/_doc, POST /services/collector/event, POST /gelf, GET /health, GET /metrics",
    )
}

/// The answer to a request met while the spool is full: the source counts it and the client
/// retries after a second.
fn backpressure(ctx: &HttpContext) -> Option<Response> {
    if !ctx.metrics.full() {
        return None;
    }
    ctx.source.dropped.fetch_add(1, Ordering::Relaxed);
    Some(Response {
        retry_after: true,
        elastic: false,
        ..Response::error(429, "spool full; retry later")
    })
}

/// The answer to a body that cannot be read, counted: 413 when it was too large once
/// decompressed, else 400 with the reason.
fn refused(ctx: &HttpContext, too_large: bool, why: &dyn std::fmt::Display) -> Response {
    ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
    Response::error(if too_large { 413 } else { 400 }, &why.to_string())
}

/// The answer to a stream naming a format there is none of.
fn unknown_format(ctx: &HttpContext, stream: &Stream) -> Option<Response> {
    let format = stream.format.as_ref()?;
    let unknown = format!("unknown format {format:?}");
    ctx.parsers
        .by_name(format)
        .is_none()
        .then(|| refused(ctx, false, &unknown))
}

/// The source's stream with the request's `?format=`, `?service=`, `?host=` applied.
fn requested_stream(request: &Request, ctx: &HttpContext) -> Stream {
    let mut stream = ctx.defaults.clone();
    for (key, value) in form_pairs(&request.query) {
        match key.as_str() {
            "format" => stream.format = Some(value),
            "service" => stream.service = Some(value),
            "host" => stream.host = Some(value),
            _ => {}
        }
    }
    stream
}

/// Appends `accepted` lines to the spool, synced to disk, and counts them; the error is the
/// answer to give when the spool cannot take them.
fn spool_lines(ctx: &HttpContext, stream: &Stream, data: &[u8], accepted: u64) -> Result<(), Response> {
    let synced = ctx
        .spool
        .append(stream, data, accepted)
        .and_then(|file| file.sync_data());
    if let Err(e) = synced {
        ctx.source.error(format!("spool: {e}"));
        return Err(Response::error(503, &format!("spool: {e}")));
    }
    ctx.source.lines_in.fetch_add(accepted, Ordering::Relaxed);
    ctx.source
        .bytes_in
        .fetch_add(data.len() as u64, Ordering::Relaxed);
    ctx.metrics.queued(accepted, data.len() as u64);
    Ok(())
}

/// Spools `lines` (each without its newline) in one append; a line over [`MAX_LINE`] or
/// holding a NUL is refused and counted. `(accepted, rejected)`, or the answer to give when
/// the spool cannot take them.
fn spool_each(
    ctx: &HttpContext,
    stream: &Stream,
    lines: impl IntoIterator<Item = String>,
) -> Result<(u64, u64), Response> {
    let mut data = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for line in lines {
        if line.len() > MAX_LINE || line.contains('\0') {
            rejected += 1;
            continue;
        }
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
        accepted += 1;
    }
    ctx.source.rejected.fetch_add(rejected, Ordering::Relaxed);
    if accepted > 0 {
        spool_lines(ctx, stream, &data, accepted)?;
    }
    Ok((accepted, rejected))
}

/// Spools the request's lines, synced to disk before answering 200.
fn ingest(request: &Request, body: &[u8], ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let mut stream = requested_stream(request, ctx);
    // HTTPHandler's form has a `msg` field; other form posts (`curl -d`) are plain lines.
    let form = (request.method == "GET"
        || request
            .content_type
            .starts_with("application/x-www-form-urlencoded"))
        && form_pairs(&String::from_utf8_lossy(&body[..body.len().min(MAX_LINE)]))
            .iter()
            .any(|(k, _)| k == "msg");
    let ndjson = request.content_type.starts_with("application/x-ndjson")
        || request.content_type.starts_with("application/json");
    if form || ndjson {
        stream.format = Some("json".to_owned());
    }
    if let Some(unknown) = unknown_format(ctx, &stream) {
        return unknown;
    }
    let (data, accepted, rejected) = if form {
        match python_record(body) {
            Some(line) => (line.into_bytes(), 1, 0),
            None => (Vec::new(), 0, 1),
        }
    } else if ndjson && body.trim_ascii_start().starts_with(b"[") {
        array_lines(body)
    } else {
        match lines_of(body, ndjson) {
            // No line was an object: perhaps one object over several lines (`curl -d @event.json`).
            (_, 0, rejected) if ndjson && rejected > 1 => {
                one_object(body).unwrap_or((Vec::new(), 0, rejected))
            }
            lines => lines,
        }
    };
    ctx.source.rejected.fetch_add(rejected, Ordering::Relaxed);
    if accepted == 0 {
        let status = if rejected > 0 { 400 } else { 200 };
        return Response::json(status, serde_json::json!({ "accepted": 0, "rejected": rejected }));
    }
    if let Err(failed) = spool_lines(ctx, &stream, &data, accepted) {
        return failed;
    }
    Response::json(
        200,
        serde_json::json!({ "accepted": accepted, "rejected": rejected }),
    )
}

/// OTLP/HTTP logs: a line of OTLP/JSON per log record, read by the `otel` format. The answer
/// is an `ExportLogsServiceResponse` in the request's encoding, with `partialSuccess` when a
/// record was refused (one longer than the longest line).
fn otlp_logs(request: &Request, ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let protobuf = matches!(
        request.content_type.split(';').next().map(str::trim),
        Some("application/x-protobuf" | "application/protobuf")
    );
    let lines = if protobuf {
        otlp::protobuf_lines(&request.body).map_err(|e| e.to_string())
    } else if request.content_type.starts_with("application/json") {
        otlp::json_lines(&request.body).ok_or_else(|| "not an OTLP/JSON logs request".to_owned())
    } else {
        let sent = &request.content_type;
        return Response::error(
            415,
            &format!("Content-Type {sent:?}: send application/x-protobuf or application/json"),
        );
    };
    let lines = match lines {
        Ok(lines) => lines,
        Err(why) => return refused(ctx, false, &why),
    };
    let mut stream = requested_stream(request, ctx);
    stream.format = Some("otel".to_owned());
    let rejected = match spool_each(ctx, &stream, lines) {
        Ok((_, rejected)) => rejected,
        Err(failed) => return failed,
    };
    let why = format!("{rejected} log records over {MAX_LINE} bytes");
    if protobuf {
        let mut body = Vec::new();
        if rejected > 0 {
            body = otlp::partial_success(rejected, &why);
        }
        return Response {
            status: 200,
            content_type: "application/x-protobuf",
            body,
            retry_after: false,
            elastic: false,
        };
    }
    let answer = if rejected > 0 {
        serde_json::json!({ "partialSuccess": {
            "rejectedLogRecords": rejected.to_string(), "errorMessage": why } })
    } else {
        serde_json::json!({})
    };
    Response::json(200, answer)
}

/// Loki's push API: each entry a JSON line with the entry's time and the stream's labels, or,
/// when the request (`?format=`) or the source names a format, the lines as sent in that
/// format, with the service and host the labels name. Answered 204 as Loki does.
fn loki_push(request: &Request, ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let streams = if request.content_type.starts_with("application/json") {
        loki::json_streams(&request.body)
    } else {
        loki::protobuf_streams(&request.body, MAX_BODY)
    };
    let streams = match streams {
        Ok(streams) => streams,
        Err(why) => return refused(ctx, matches!(why, loki::PushError::TooLarge(_)), &why),
    };
    let requested = requested_stream(request, ctx);
    if let Some(unknown) = unknown_format(ctx, &requested) {
        return unknown;
    }
    for push in streams {
        let (stream, lines) = match &requested.format {
            None => {
                let stream = Stream {
                    format: Some("json".to_owned()),
                    ..requested.clone()
                };
                (stream, push.json_lines())
            }
            Some(_) => {
                let stream = Stream {
                    service: requested.service.clone().or_else(|| push.service()),
                    host: requested.host.clone().or_else(|| push.host()),
                    ..requested.clone()
                };
                (stream, push.raw_lines())
            }
        };
        if let Err(failed) = spool_each(ctx, &stream, lines) {
            return failed;
        }
    }
    Response {
        status: 204,
        content_type: "text/plain",
        body: Vec::new(),
        retry_after: false,
        elastic: false,
    }
}

/// Elasticsearch's bulk API: the `index` and `create` documents spooled as JSON lines, and
/// the bulk response with an item per action (`update` and `delete` refused per item).
fn bulk(request: &Request, index: Option<&str>, ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let started = std::time::Instant::now();
    let now = loglens_alert::run::wall_clock();
    let items = match elastic::items(&request.body, index, now.0) {
        Ok(items) => items,
        Err(why) => return refused(ctx, false, &why),
    };
    let mut stream = requested_stream(request, ctx);
    stream.format = Some("json".to_owned());
    let first = ctx.source.lines_in.load(Ordering::Relaxed);
    let mut items = items;
    for item in &mut items {
        if item.outcome.as_ref().is_ok_and(|line| line.len() > MAX_LINE) {
            item.outcome = Err(format!("document over {MAX_LINE} bytes"));
        }
    }
    let refused = items.iter().filter(|i| i.outcome.is_err()).count() as u64;
    ctx.source.rejected.fetch_add(refused, Ordering::Relaxed);
    let documents = items.iter().filter_map(|i| i.outcome.clone().ok());
    if let Err(failed) = spool_each(ctx, &stream, documents) {
        return failed;
    }
    let took = started.elapsed().as_millis() as u64;
    Response::json(200, elastic::response(&items, took, first))
}

/// Elasticsearch's index API (`POST /<index>/_doc`, `PUT /<index>/_doc/<id>`,
/// `PUT /<index>/_create/<id>`): one document, spooled as a bulk `index` item is, answered
/// 201 as Elasticsearch answers a created document.
fn index_document(request: &Request, target: &elastic::DocumentPath<'_>, ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let now = loglens_alert::run::wall_clock();
    let first = ctx.source.lines_in.load(Ordering::Relaxed);
    let item = target.item(&request.body, now.0);
    let line = match &item.outcome {
        Ok(line) if line.len() > MAX_LINE => {
            return refused(ctx, true, &format!("document over {MAX_LINE} bytes"))
        }
        Ok(line) => line.clone(),
        Err(why) => {
            ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
            return Response::json(400, elastic::document_error(why));
        }
    };
    let mut stream = requested_stream(request, ctx);
    stream.format = Some("json".to_owned());
    if let Err(failed) = spool_each(ctx, &stream, std::iter::once(line)) {
        return failed;
    }
    Response::json(201, elastic::created(&item, first))
}

/// Splunk HEC events: each a JSON line, answered as HEC answers (`{"text":"Success","code":0}`;
/// an invalid event refuses the body, naming the event).
fn hec_events(request: &Request, ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let now = loglens_alert::run::wall_clock();
    let lines = match splunk::event_lines(&request.body, now.0) {
        Ok(lines) => lines,
        Err(why) => {
            ctx.source.rejected.fetch_add(1, Ordering::Relaxed);
            return Response::json(400, why.answer());
        }
    };
    let mut stream = requested_stream(request, ctx);
    stream.format = Some("json".to_owned());
    match spool_each(ctx, &stream, lines) {
        Ok(_) => Response::json(200, splunk::success()),
        Err(failed) => failed,
    }
}

/// GELF over HTTP, as Graylog's HTTP input takes it: one message (compressed or not), 202.
fn gelf_message(request: &Request, ctx: &HttpContext) -> Response {
    if let Some(busy) = backpressure(ctx) {
        return busy;
    }
    let now = loglens_alert::run::wall_clock().0;
    let line =
        gelf::decompress(&request.body, MAX_BODY).and_then(|message| gelf::message_line(&message, now));
    let line = match line {
        Ok(line) => line,
        Err(why) => return refused(ctx, matches!(why, gelf::GelfError::TooLarge(_)), &why),
    };
    let mut stream = requested_stream(request, ctx);
    stream.format = Some("json".to_owned());
    match spool_each(ctx, &stream, [line]) {
        Ok((1, _)) => Response {
            status: 202,
            content_type: "text/plain",
            body: Vec::new(),
            retry_after: false,
            elastic: false,
        },
        Ok(_) => Response::error(413, &format!("message over {MAX_LINE} bytes")),
        Err(failed) => failed,
    }
}

/// A JSON array of objects, as Fluent Bit's `format json` and Vector's `json` codec without
/// newline framing post them: a line per object, compact; an element that is not an object
/// (or is too long) is refused, and so is the whole body when it is not valid JSON.
fn array_lines(body: &[u8]) -> (Vec<u8>, u64, u64) {
    let Ok(elements) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body) else {
        return (Vec::new(), 0, 1);
    };
    let mut data = Vec::with_capacity(body.len() + 1);
    let (mut accepted, mut rejected) = (0, 0);
    for element in elements {
        let text = element.get();
        // Pretty-printed elements span lines: written again on one (objects' keys sorted).
        let line = if text.contains(['\n', '\r']) {
            serde_json::from_str::<serde_json::Value>(text)
                .map_or_else(|_| text.to_owned(), |v| v.to_string())
        } else {
            text.to_owned()
        };
        if !line.starts_with('{') || line.len() > MAX_LINE {
            rejected += 1;
            continue;
        }
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
        accepted += 1;
    }
    (data, accepted, rejected)
}

/// A body that is one JSON object written over several lines, as one compact line.
fn one_object(body: &[u8]) -> Option<(Vec<u8>, u64, u64)> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    let mut line = serde_json::Value::Object(object).to_string().into_bytes();
    if line.len() > MAX_LINE {
        return None;
    }
    line.push(b'\n');
    Some((line, 1, 0))
}

/// The non-empty lines of a body, each ending with a newline; oversized lines (and, for
/// NDJSON, lines that are not a JSON object) are refused.
fn lines_of(body: &[u8], ndjson: bool) -> (Vec<u8>, u64, u64) {
    let mut data = Vec::with_capacity(body.len() + 1);
    let (mut accepted, mut rejected) = (0, 0);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad_json =
            ndjson && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line).is_err();
        if line.len() > MAX_LINE || bad_json || line.contains(&0) {
            rejected += 1;
            continue;
        }
        data.extend_from_slice(line);
        data.push(b'\n');
        accepted += 1;
    }
    (data, accepted, rejected)
}

/// The JSON line of a record posted by `logging.handlers.HTTPHandler` (the record's
/// attributes, form-encoded), or `None` when it has no `msg`.
fn python_record(body: &[u8]) -> Option<String> {
    let fields: std::collections::HashMap<String, String> =
        form_pairs(&String::from_utf8_lossy(body)).into_iter().collect();
    let msg = fields.get("msg")?;
    let mut record = serde_json::Map::new();
    let created = fields.get("created").and_then(|c| c.parse::<f64>().ok());
    let ts = created.unwrap_or_else(|| loglens_alert::run::wall_clock().secs() as f64);
    record.insert("ts".into(), serde_json::json!(ts));
    for (from, to) in [
        ("levelname", "level"),
        ("name", "logger"),
        ("module", "module"),
        ("funcName", "function"),
        ("lineno", "line"),
    ] {
        if let Some(v) = fields.get(from) {
            record.insert(to.into(), serde_json::json!(v));
        }
    }
    // HTTPHandler sends the format string and its args apart; apply them as getMessage() does.
    let message = fields
        .get("args")
        .and_then(|args| super::pyformat::format(msg, args))
        .unwrap_or_else(|| msg.clone());
    record.insert("msg".into(), serde_json::json!(message.replace('\n', " ")));
    let mut line = serde_json::Value::Object(record).to_string();
    line.push('\n');
    Some(line)
}

/// `a=1&b=x%20y` as decoded pairs.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_taken_in_each_form_shippers_send() {
        for ok in [
            "Bearer s3cret",
            "bearer  s3cret",
            "Splunk s3cret",
            "ApiKey s3cret",
            "Basic dXNlcjpzM2NyZXQ=",
        ] {
            assert!(authorized(ok, "s3cret"), "{ok}");
        }
        for bad in [
            "",
            "Bearer s3cre",
            "Bearer s3cret2",
            "Token s3cret",
            "Basic czNjcmV0",
            "Basic !!",
        ] {
            assert!(!authorized(bad, "s3cret"), "{bad}");
        }
    }

    #[test]
    fn decodes_forms() {
        assert_eq!(
            form_pairs("msg=disk+full%21&x=%zz&y"),
            vec![
                ("msg".to_owned(), "disk full!".to_owned()),
                ("x".to_owned(), "%zz".to_owned()),
                ("y".to_owned(), String::new())
            ]
        );
        assert_eq!(decode("100%"), "100%");
    }

    fn compressed(encoding: &str, data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut out = Vec::new();
        match encoding {
            "gzip" => {
                let mut w = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
                w.write_all(data).and_then(|()| w.finish().map(drop)).ok();
            }
            _ => {
                let mut w = flate2::write::ZlibEncoder::new(&mut out, flate2::Compression::fast());
                w.write_all(data).and_then(|()| w.finish().map(drop)).ok();
            }
        }
        out
    }

    #[test]
    fn bodies_are_decoded_as_their_content_encoding_says() {
        let lines = b"one\ntwo\n".to_vec();
        for encoding in ["gzip", "x-gzip", "deflate"] {
            let kind = if encoding == "deflate" { "deflate" } else { "gzip" };
            let body = compressed(kind, &lines);
            assert_eq!(decoded(body, encoding).ok(), Some(lines.clone()), "{encoding}");
        }
        // Two gzip members, as a shipper concatenating batches sends them.
        let mut two = compressed("gzip", b"a\n");
        two.extend(compressed("gzip", b"b\n"));
        assert_eq!(decoded(two, "gzip").ok(), Some(b"a\nb\n".to_vec()));
        assert_eq!(decoded(lines.clone(), "identity").ok(), Some(lines.clone()));
        assert_eq!(decoded(lines.clone(), "gzip").err().map(|r| r.status), Some(400));
        assert_eq!(decoded(lines.clone(), "br").err().map(|r| r.status), Some(415));
        // A bomb: 17 MiB of zeros in a few KiB is refused once past the bound.
        let bomb = compressed("gzip", &vec![0u8; MAX_BODY + (1 << 20)]);
        assert!(bomb.len() < 100_000);
        assert_eq!(decoded(bomb, "gzip").err().map(|r| r.status), Some(413));
    }

    #[test]
    fn json_arrays_become_a_line_per_object() {
        let body = b" [{\"a\":1,\"m\":\"x y\"},\n  {\n    \"b\": [1, 2]\n  }, 3, \"s\"]\n";
        let (data, ok, bad) = array_lines(body);
        assert_eq!((ok, bad), (2, 2));
        assert_eq!(data, b"{\"a\":1,\"m\":\"x y\"}\n{\"b\":[1,2]}\n");
        assert_eq!(array_lines(b"[{\"a\":1},"), (Vec::new(), 0, 1));
        assert_eq!(array_lines(b"[]"), (Vec::new(), 0, 0));
    }

    #[test]
    fn a_pretty_printed_object_is_one_line() {
        let body = b"{\n  \"ts\": \"2026-11-01T12:00:00Z\",\n  \"msg\": \"a b\"\n}\n";
        assert_eq!(
            one_object(body),
            Some((
                b"{\"msg\":\"a b\",\"ts\":\"2026-11-01T12:00:00Z\"}\n".to_vec(),
                1,
                0
            ))
        );
        assert_eq!(
            one_object(b"{\"a\":1}\n{\"b\":2}\n"),
            None,
            "two objects are two lines"
        );
    }

    #[test]
    fn keeps_good_lines_only() {
        let (data, ok, bad) = lines_of(b"{\"a\":1}\n\nnot json\r\n{\"b\":2}", true);
        assert_eq!((ok, bad), (2, 1));
        assert_eq!(data, b"{\"a\":1}\n{\"b\":2}\n");
    }
}
