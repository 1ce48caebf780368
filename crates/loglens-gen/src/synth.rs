//! The benchmarks' synthesizer: [`Synth`] renders varied records (IPs, paths, agents,
//! statuses, messages) of any built-in format with loglens's own renderers, from a seed. It
//! covers what the fleet of [`crate::Generator`] does not write (the `common` format) and
//! feeds the shell benchmarks through the `loglens-synth` binary.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;

use loglens_core::format::Format;
use loglens_core::time::days_from_civil;
use loglens_core::{Access, Level, Record, Timestamp};

use crate::rng::SplitMix64;

/// First timestamp of synthesized logs: 2026-03-02T00:00:00Z.
pub fn start_time() -> Timestamp {
    Timestamp(days_from_civil(2026, 3, 2) * 86_400 * 1_000_000)
}

/// A deterministic source of realistic log lines.
#[derive(Debug, Clone)]
pub struct Synth {
    rng: SplitMix64,
    ts: i64,
}

const METHODS: &[(&str, u32)] = &[
    ("GET", 800),
    ("POST", 120),
    ("PUT", 30),
    ("DELETE", 20),
    ("HEAD", 20),
    ("OPTIONS", 10),
    ("PATCH", 5),
];
const PROTOCOLS: &[(&str, u32)] = &[("HTTP/1.1", 85), ("HTTP/2.0", 13), ("HTTP/1.0", 2)];
const STATUSES: &[(u16, u32)] = &[
    (200, 780),
    (304, 60),
    (404, 60),
    (301, 20),
    (302, 20),
    (201, 15),
    (204, 10),
    (400, 10),
    (401, 8),
    (403, 6),
    (499, 4),
    (500, 8),
    (502, 4),
    (503, 4),
    (504, 2),
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "kube-probe/1.29",
    "Prometheus/2.51.0",
];
const REFERERS: &[&str] = &[
    "https://www.google.com/",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://shop.example.com/search?q=shoes",
    "https://www.bing.com/search?q=example+shop",
    "https://t.co/x7Yq2",
];
const WORDS: &[&str] = &[
    "shoes",
    "red+dress",
    "laptop",
    "usb-c+cable",
    "coffee",
    "headphones",
    "gift",
    "sale",
    "jacket",
    "lamp",
];
const HOSTS: &[&str] = &[
    "web-01",
    "web-02",
    "web-03",
    "api-01",
    "api-02",
    "db-01",
    "cache-01",
    "worker-01",
];
const USERS: &[&str] = &["alice", "bob", "deploy", "admin", "carol"];
const LEVELS: &[(Level, u32)] = &[
    (Level::Info, 780),
    (Level::Debug, 80),
    (Level::Notice, 30),
    (Level::Warn, 70),
    (Level::Error, 35),
    (Level::Critical, 5),
];
const SERVICES: &[&str] = &["api", "checkout", "auth", "search", "worker", "billing"];
const LOGGERS: &[&str] = &[
    "root",
    "app.api.views",
    "app.db",
    "app.tasks",
    "celery.worker",
    "urllib3.connectionpool",
    "gunicorn.error",
];

impl Synth {
    /// A synthesizer; the same seed gives the same lines.
    pub fn new(seed: u64) -> Self {
        Synth {
            rng: SplitMix64::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            ts: start_time().0,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            if x < u64::from(*w) {
                return *item;
            }
            x -= u64::from(*w);
        }
        items[0].0
    }

    /// The next timestamp: 0–20 ms after the previous one, with microseconds.
    fn tick(&mut self) -> Timestamp {
        self.ts += self.below(20_000) as i64;
        Timestamp(self.ts)
    }

    fn client_ip(&mut self) -> String {
        // 5000 clients, a few busy and a long tail (low numbers are drawn most), ~2% on IPv6.
        let bound = 1 + self.below(5000);
        let client = self.below(bound);
        let mut h = client.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 16;
        if (3000..3200).contains(&client) {
            return format!(
                "2001:db8:{:x}:{:x}::{:x}",
                h & 0xffff,
                (h >> 16) & 0xffff,
                (h >> 32) & 0xfff
            );
        }
        let mut octet = || {
            let o = h % 254 + 1;
            h /= 254;
            o
        };
        format!("{}.{}.{}.{}", octet(), octet(), octet(), octet())
    }

    fn path(&mut self) -> String {
        match self.below(20) {
            0..=4 => format!("/api/v1/products/{}", self.below(50_000)),
            5..=6 => format!(
                "/api/v1/users/{}/orders?limit={}",
                self.below(200_000),
                10 * (1 + self.below(5))
            ),
            7..=9 => format!("/static/js/app.{:08x}.js", self.below(8) * 0x1f3a_5c7b),
            10 => "/static/css/main.css".to_owned(),
            11..=12 => format!(
                "/images/products/{}_{}.jpg",
                self.below(50_000),
                self.pick(&["thumb", "large"])
            ),
            13 => format!("/search?q={}&page={}", self.pick(WORDS), 1 + self.below(5)),
            14 => "/".to_owned(),
            15 => "/health".to_owned(),
            16 => format!(
                "/cart/add?sku=SKU-{:06}&qty={}",
                self.below(1_000_000),
                1 + self.below(3)
            ),
            17 => "/checkout".to_owned(),
            18 => self
                .pick(&[
                    "/favicon.ico",
                    "/robots.txt",
                    "/wp-login.php",
                    "/.env",
                    "/sitemap.xml",
                ])
                .to_string(),
            _ => format!("/blog/{}-{}", self.pick(WORDS).replace('+', "-"), self.below(300)),
        }
    }

    fn request_id(&mut self) -> String {
        format!("{:016x}", self.next())
    }

    /// Appends one line of `format` (no line terminator) to `out`.
    pub fn line(&mut self, format: Format, out: &mut String) {
        let ts = self.tick();
        match format {
            Format::Combined | Format::Common | Format::W3c => self.access_line(format, ts, out),
            Format::Zeek => self.conn_line(ts, out),
            Format::Syslog3164 | Format::Syslog5424 => self.syslog_line(format, ts, out),
            Format::Json
            | Format::Logfmt
            | Format::Journald
            | Format::Docker
            | Format::Cri
            | Format::Postgres
            | Format::Mysql
            | Format::Redis
            | Format::ApacheError
            | Format::Logcat
            | Format::Otel => self.app_line(format, ts, out),
            Format::PythonLogging => self.python_line(ts, out),
        }
    }

    fn access_line(&mut self, format: Format, ts: Timestamp, out: &mut String) {
        let ip = self.client_ip();
        let method = self.weighted(METHODS);
        let path = self.path();
        let protocol = self.weighted(PROTOCOLS);
        let status = self.weighted(STATUSES);
        let bytes = match status {
            204 | 304 => 0,
            s if s >= 300 => 150 + self.below(400),
            _ if path.starts_with("/images") => 20_000 + self.below(400_000),
            _ => 200 + self.below(30_000),
        };
        let user = self.chance(3).then(|| *self.pick(USERS));
        let referer = self.chance(55).then(|| *self.pick(REFERERS));
        let agent = *self.pick(AGENTS);
        let latency = self
            .chance(90)
            .then(|| (self.below(250) + self.below(40) * self.below(40)) as f64);
        let message = format!("{method} {path} {protocol}");
        let access = Access {
            client_ip: &ip,
            user,
            method: Some(method),
            path: Some(&path),
            protocol: Some(protocol),
            status,
            bytes: Some(bytes),
            latency_ms: latency,
            referer,
            user_agent: Some(agent),
        };
        let mut record = Record::new(ts, Cow::Borrowed(message.as_str()));
        record.access = Some(access);
        format.render(&record, out);
    }

    /// A Zeek `conn.log` line: one connection from a client to a server.
    fn conn_line(&mut self, ts: Timestamp, out: &mut String) {
        let (proto, service, port) = *self.pick(&[
            ("tcp", "ssl", "443"),
            ("tcp", "http", "80"),
            ("udp", "dns", "53"),
            ("tcp", "ssh", "22"),
        ]);
        let state = *self.pick(&["SF", "SF", "SF", "S0", "REJ", "RSTO"]);
        let (orig_bytes, resp_bytes) = (self.below(4_000), self.below(400_000));
        let values = [
            ("uid", format!("C{:017x}", self.next() >> 4)),
            ("id.orig_h", self.client_ip()),
            ("id.orig_p", (1024 + self.below(60_000)).to_string()),
            (
                "id.resp_h",
                format!("10.0.{}.{}", self.below(4), 1 + self.below(250)),
            ),
            ("id.resp_p", port.to_owned()),
            ("proto", proto.to_owned()),
            ("service", service.to_owned()),
            ("duration", format!("{:.6}", self.below(5_000_000) as f64 / 1e6)),
            ("orig_bytes", orig_bytes.to_string()),
            ("resp_bytes", resp_bytes.to_string()),
            ("conn_state", state.to_owned()),
            ("history", "ShADadFf".to_owned()),
        ];
        let mut record = Record::new(ts, "");
        record.attrs = values
            .iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(v.as_str())))
            .collect();
        Format::Zeek.render(&record, out);
    }

    fn syslog_line(&mut self, format: Format, ts: Timestamp, out: &mut String) {
        let host = *self.pick(HOSTS);
        let pid = (300 + self.below(60_000)).to_string();
        let ip = self.client_ip();
        let port = 1024 + self.below(60_000);
        let user = *self.pick(USERS);
        let (service, facility, level, message): (&str, &str, Level, String) = match self.below(10) {
            0..=2 => (
                "sshd",
                "auth",
                Level::Info,
                if self.chance(70) {
                    format!("Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{}", self.request_id())
                } else {
                    format!("Failed password for invalid user {user} from {ip} port {port} ssh2")
                },
            ),
            3 => ("CRON", "cron", Level::Info, format!("({user}) CMD (/usr/local/bin/backup.sh --incremental > /dev/null 2>&1)")),
            4 => (
                "systemd",
                "daemon",
                Level::Info,
                format!("Started {}.service - {}.", self.pick(&["nginx", "app-worker", "logrotate"]), "Periodic job"),
            ),
            5 => (
                "kernel",
                "kern",
                Level::Warn,
                format!("TCP: request_sock_TCP: Possible SYN flooding on port {}. Sending cookies.", self.pick(&[80, 443])),
            ),
            6 => ("postfix/smtpd", "mail", Level::Info, format!("connect from unknown[{ip}]")),
            7 => ("sudo", "authpriv", Level::Notice, format!("{user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx")),
            8 => (
                "app-worker",
                "local0",
                self.weighted(LEVELS),
                format!("job {} finished in {} ms (queue={})", self.request_id(), self.below(5000), self.pick(&["default", "emails", "reports"])),
            ),
            _ => ("nginx", "local7", Level::Error, format!("upstream timed out (110: Connection timed out) while reading response header from upstream, client: {ip}")),
        };
        let mut record = Record::new(ts, message);
        record.host = Some(Cow::Borrowed(host));
        record.service = Some(Cow::Borrowed(service));
        // /var/log files written by rsyslog carry no PRI; network syslog does.
        record.level = (format == Format::Syslog5424 || self.chance(60)).then_some(level);
        record.attrs.push(("facility".into(), facility.into()));
        record.attrs.push(("pid".into(), pid.into()));
        if format == Format::Syslog5424 {
            if self.chance(40) {
                record.attrs.push((
                    "msgid".into(),
                    Cow::Borrowed(*self.pick(&["ID47", "AUDIT", "REQ"])),
                ));
            }
            if self.chance(30) {
                record
                    .attrs
                    .push(("meta@32473.request_id".into(), self.request_id().into()));
                record.attrs.push((
                    "meta@32473.zone".into(),
                    Cow::Borrowed(*self.pick(&["eu-west-1a", "us-east-1b"])),
                ));
            }
        }
        format.render(&record, out);
    }

    fn app_line(&mut self, format: Format, ts: Timestamp, out: &mut String) {
        let level = self.weighted(LEVELS);
        let service = *self.pick(SERVICES);
        let host = *self.pick(HOSTS);
        let method = self.weighted(METHODS);
        let path = self.path();
        let status = self.weighted(STATUSES);
        let message = match level {
            Level::Error | Level::Critical => {
                format!(
                    "request failed: {}",
                    self.pick(&[
                        "upstream timeout",
                        "connection reset by peer",
                        "deadlock detected"
                    ])
                )
            }
            Level::Warn => format!("slow query took {} ms", 500 + self.below(4000)),
            Level::Debug => format!(
                "cache {} for key user:{}",
                self.pick(&["hit", "miss"]),
                self.below(100_000)
            ),
            _ => "request completed".to_owned(),
        };
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.service = Some(service.into());
        record.host = Some(host.into());
        record.attrs.push(("request_id".into(), self.request_id().into()));
        record.attrs.push(("method".into(), method.into()));
        record.attrs.push(("path".into(), path.into()));
        record.attrs.push(("status".into(), status.to_string().into()));
        record.attrs.push((
            "duration_ms".into(),
            format!("{}.{:03}", self.below(800), self.below(1000)).into(),
        ));
        if self.chance(60) {
            record
                .attrs
                .push(("user_id".into(), self.below(200_000).to_string().into()));
        }
        format.render(&record, out);
    }

    fn python_line(&mut self, ts: Timestamp, out: &mut String) {
        let level = self.weighted(LEVELS);
        let logger = *self.pick(LOGGERS);
        let message = match self.below(6) {
            0 => format!(
                "Starting new HTTPS connection (1): api.partner.example:{}",
                self.pick(&[443, 8443])
            ),
            1 => format!(
                "Task app.tasks.send_email[{}] succeeded in {}.{:03}s: None",
                self.request_id(),
                self.below(5),
                self.below(1000)
            ),
            2 => format!(
                "GET /api/v1/products/{} 200 {} ms",
                self.below(50_000),
                self.below(300)
            ),
            3 => format!(
                "Retrying (Retry(total={}, connect=None, read=None)) after connection broken",
                self.below(3)
            ),
            4 => format!("User {} logged in from {}", self.below(200_000), self.client_ip()),
            _ => format!(
                "query returned {} rows in {} ms",
                self.below(10_000),
                self.below(900)
            ),
        };
        let mut record = Record::new(ts, message);
        record.level = Some(level);
        record.service = Some(logger.into());
        Format::PythonLogging.render(&record, out);
    }
}

/// `n` lines of `format` from [`Synth`], each ending with `\n`.
pub fn lines(format: Format, n: usize, seed: u64) -> String {
    let mut synth = Synth::new(seed);
    let mut text = String::with_capacity(n * 200);
    for _ in 0..n {
        synth.line(format, &mut text);
        text.push('\n');
    }
    text
}

/// Writes `n` lines of `format` from [`Synth`] to `path`, returning the bytes written.
pub fn write_file(format: Format, n: usize, seed: u64, path: &Path) -> std::io::Result<u64> {
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut synth = Synth::new(seed);
    let mut line = String::with_capacity(512);
    let mut bytes = 0u64;
    for _ in 0..n {
        line.clear();
        synth.line(format, &mut line);
        line.push('\n');
        file.write_all(line.as_bytes())?;
        bytes += line.len() as u64;
    }
    file.flush()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::context;

    #[test]
    fn deterministic_and_one_line_per_record() {
        for format in Format::ALL {
            let a = lines(format, 200, 3);
            assert_eq!(a, lines(format, 200, 3), "{format}");
            assert_eq!(a.lines().count(), 200, "{format}");
            assert!(a.lines().all(|l| !l.is_empty()), "{format}");
        }
    }

    /// The shell benchmarks compare runs over `loglens-synth` files, so a seed's lines must not
    /// change unnoticed.
    #[test]
    fn a_seed_gives_the_same_lines_as_before() {
        assert_eq!(
            lines(Format::Common, 2, 3),
            "52.175.194.242 - - [02/Mar/2026:00:00:00 +0000] \"GET /static/js/app.9c23ce67.js HTTP/1.1\" 200 27150\n\
             19.207.198.15 - - [02/Mar/2026:00:00:00 +0000] \"GET /api/v1/products/37485 HTTP/1.1\" 404 509\n"
        );
        let json = lines(Format::Json, 1, 3);
        assert!(
            json.starts_with(
                r#"{"ts":"2026-03-02T00:00:00.008Z","level":"info","service":"billing","host":"web-02""#
            ),
            "{json}"
        );
    }

    #[test]
    fn synthesized_lines_parse() {
        for format in Format::ALL {
            let parser = format.parser();
            for line in lines(format, 500, 1).lines() {
                assert!(parser.parse(line, &context()).is_ok(), "{format}: {line}");
            }
        }
    }
}
