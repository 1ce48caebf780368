//! loglens's synthetic logs, in one place.
//!
//! The generator is a small fleet (web, API, gateway, payments, checkout, worker and database
//! hosts, each with its system syslog) writing realistic logs, with incidents injected at known
//! times so detection can be scored; [`write`](mod@write) puts its output on disk
//! (`loglens generate`). [`synth`] is the benchmarks' simpler synthesizer, for the formats the
//! fleet does not write, and [`workload`] picks between the two for an in-memory benchmark
//! workload.
//!
//! Arrivals are Poisson at millisecond resolution, generated a minute at a time. Time enters as
//! [`GenOptions::start`], randomness comes from the seeded portable [`rng::Rng`], and text
//! leaves through [`Generator::next_chunk`]. Every line is rendered by `loglens_core`'s
//! `Format::render`, so generator and parsers cannot drift apart. Each stream has its own
//! random generator, so streams do not perturb one another.
//!
//! ```
//! use loglens_gen::{GenOptions, Generator};
//!
//! let mut generator = Generator::new(GenOptions { lines: 2_000, duration_secs: 3_600, ..GenOptions::default() })
//!     .expect("valid options");
//! let mut lines = 0;
//! while let Some(chunks) = generator.next_chunk() {
//!     lines += chunks.iter().map(|text| text.lines().count()).sum::<usize>();
//! }
//! assert!(lines > 1_000);
//! assert!(!generator.incidents().is_empty());
//! ```
#![deny(missing_docs)]

pub mod access;
pub mod corrupt;
pub mod incident;
pub mod profile;
pub mod rng;
pub mod synth;
pub mod templates;
pub mod text;
pub mod vocab;
pub mod workload;
pub mod write;

use access::{AccessFx, AccessSet};
pub use incident::{Effect, IncidentKind, InjectedIncident};
use incident::{ServiceTarget, Targets};
use loglens_core::format::{Format, LineParser};
use loglens_core::time::Timestamp;
use profile::Shape;
use rng::Rng;
use templates::TemplateSet;
use text::LineBuf;
use vocab::{Pools, VarCtx};
pub use write::{generate, generate_with_threads, FileSummary, GenerateSummary, WriteError};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Seed of every random choice: same seed and options, same bytes.
    pub seed: u64,
    /// First instant of the span (whole seconds are used).
    pub start: Timestamp,
    /// Length of the span in seconds.
    pub duration_secs: i64,
    /// Approximate total number of lines.
    pub lines: u64,
    /// Formats whose streams are generated; empty = every stream.
    pub formats: Vec<Format>,
    /// Whether to inject incidents.
    pub incidents: bool,
    /// Fraction of lines deliberately damaged so they do not parse (0 disables).
    pub corrupt_rate: f64,
    /// Whether to label every line with the template that wrote it
    /// ([`Generator::truth_chunks`]), for scoring template mining.
    pub template_truth: bool,
}

/// 2026-11-01T00:00:00Z: the default start, fixed so runs are reproducible.
pub const DEFAULT_START_SECS: i64 = 1_793_491_200;

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 42,
            start: Timestamp::from_secs(DEFAULT_START_SECS),
            duration_secs: 86_400,
            lines: 200_000,
            formats: Vec::new(),
            incidents: true,
            corrupt_rate: 0.0005,
            template_truth: false,
        }
    }
}

/// Options the generator cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenError {
    /// The span is not a positive number of seconds.
    #[error("the duration must be positive, got {0} s")]
    Duration(i64),
    /// The corrupt rate is outside `[0, 1]`.
    #[error("corrupt rate must be between 0 and 1, got {0}")]
    CorruptRate(f64),
    /// Zero lines were asked for.
    #[error("the line target must be at least 1")]
    Lines,
    /// A selected format has no stream.
    #[error("no generated stream uses format {0} (generated: combined, syslog3164, syslog5424, json, logfmt, pylog)")]
    NoStream(Format),
}

/// What writes a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Web,
    Api,
    Gateway,
    Payments,
    Checkout,
    Worker,
    Postgres,
    System,
}

/// A host: name, address, application service.
const HOSTS: [(&str, &str, &str); 12] = [
    ("web-01", "10.0.1.11", "web"),
    ("web-02", "10.0.1.12", "web"),
    ("web-03", "10.0.1.13", "web"),
    ("api-01", "10.0.2.11", "api"),
    ("api-02", "10.0.2.12", "api"),
    ("gw-01", "10.0.0.10", "gateway"),
    ("pay-01", "10.0.3.11", "payments"),
    ("pay-02", "10.0.3.12", "payments"),
    ("shop-01", "10.0.4.11", "checkout"),
    ("shop-02", "10.0.4.12", "checkout"),
    ("worker-01", "10.0.5.11", "worker"),
    ("db-01", "10.0.6.11", "postgres"),
];

/// The application stream of a host's service.
struct AppStream {
    service: &'static str,
    file: &'static str,
    format: Format,
    kind: Kind,
    /// Share of all lines, summed over the service's hosts.
    weight: f64,
    shape: Shape,
}

const APPS: [AppStream; 7] = [
    AppStream {
        service: "web",
        file: "access.log",
        format: Format::Combined,
        kind: Kind::Web,
        weight: 0.42,
        shape: Shape {
            depth: 0.85,
            weekend: 0.75,
        },
    },
    AppStream {
        service: "api",
        file: "access.log",
        format: Format::Combined,
        kind: Kind::Api,
        weight: 0.20,
        shape: Shape {
            depth: 0.75,
            weekend: 0.85,
        },
    },
    AppStream {
        service: "gateway",
        file: "gateway.log",
        format: Format::Logfmt,
        kind: Kind::Gateway,
        weight: 0.10,
        shape: Shape {
            depth: 0.8,
            weekend: 0.8,
        },
    },
    AppStream {
        service: "payments",
        file: "payments.jsonl",
        format: Format::Json,
        kind: Kind::Payments,
        weight: 0.06,
        shape: Shape {
            depth: 0.85,
            weekend: 0.8,
        },
    },
    AppStream {
        service: "checkout",
        file: "checkout.jsonl",
        format: Format::Json,
        kind: Kind::Checkout,
        weight: 0.06,
        shape: Shape {
            depth: 0.85,
            weekend: 0.8,
        },
    },
    AppStream {
        service: "worker",
        file: "worker.log",
        format: Format::PythonLogging,
        kind: Kind::Worker,
        weight: 0.05,
        shape: Shape {
            depth: 0.4,
            weekend: 0.9,
        },
    },
    AppStream {
        service: "postgres",
        file: "postgresql.log",
        format: Format::Syslog5424,
        kind: Kind::Postgres,
        weight: 0.05,
        shape: Shape {
            depth: 0.6,
            weekend: 0.85,
        },
    },
];

/// Share of all lines of the system syslogs, summed over hosts.
const SYSTEM_WEIGHT: f64 = 0.06;
const SYSTEM_SHAPE: Shape = Shape {
    depth: 0.2,
    weekend: 1.0,
};
/// The label of system syslog files (their lines name their own programs).
const SYSTEM_SERVICE: &str = "system";

/// Stop a chunk once this much text is buffered.
const CHUNK_BYTES: usize = 1 << 20;
/// Stop a chunk after this many simulated seconds.
const CHUNK_SECS: i64 = 3_600;

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Path relative to the output directory, `/`-separated: `logs/<host>/<file>`.
    pub path: String,
    /// The format its lines are rendered in.
    pub format: Format,
    /// The emitting host.
    pub host: String,
    /// The service label (`system` for the per-host syslog, whose lines name their programs).
    pub service: String,
}

/// Counts of one stream so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Lines written, damaged ones included.
    pub lines: u64,
    /// Damaged lines.
    pub corrupt_lines: u64,
    /// Time of the first line.
    pub first: Option<Timestamp>,
    /// Time of the last line.
    pub last: Option<Timestamp>,
}

struct Stream {
    kind: Kind,
    format: Format,
    host: &'static str,
    service: &'static str,
    host_ip: &'static str,
    boot_secs: i64,
    rng: Rng,
    corrupt_rng: Rng,
    /// Mean lines per second over the span.
    rate: f64,
    shape: Shape,
    shape_mean: f64,
    effects: Vec<(i64, i64, Effect)>,
    cursor: usize,
    buf: LineBuf,
    parser: Box<dyn LineParser>,
    stats: StreamStats,
}

impl Stream {
    /// The effect active at second `t` and the first second after `t` where that may change
    /// (effects are sorted, do not overlap, and `t` only grows between calls).
    fn effect_at(&mut self, t: i64) -> (Effect, i64) {
        while let Some(&(_, end, _)) = self.effects.get(self.cursor) {
            if end > t {
                break;
            }
            self.cursor += 1;
        }
        match self.effects.get(self.cursor) {
            Some(&(start, end, effect)) if start <= t => (effect, end),
            Some(&(start, _, _)) => (Effect::NONE, start),
            None => (Effect::NONE, i64::MAX),
        }
    }
}

/// Compiled vocabularies, one per stream kind.
#[derive(Clone)]
struct Sets {
    web: AccessSet,
    api: AccessSet,
    gateway: TemplateSet,
    payments: TemplateSet,
    checkout: TemplateSet,
    worker: TemplateSet,
    postgres: TemplateSet,
    system: TemplateSet,
}

impl Sets {
    fn new() -> Sets {
        use templates::*;
        Sets {
            web: AccessSet::new(true),
            api: AccessSet::new(false),
            gateway: TemplateSet::new(GATEWAY, GATEWAY_NEW),
            payments: TemplateSet::new(PAYMENTS, PAYMENTS_NEW),
            checkout: TemplateSet::new(CHECKOUT, CHECKOUT_NEW),
            worker: TemplateSet::new(WORKER, WORKER_NEW),
            postgres: TemplateSet::new(POSTGRES, POSTGRES_NEW),
            system: TemplateSet::new(SYSTEM, &[]),
        }
    }

    fn templates(&self, kind: Kind) -> &TemplateSet {
        match kind {
            Kind::Gateway => &self.gateway,
            Kind::Payments => &self.payments,
            Kind::Checkout => &self.checkout,
            Kind::Worker => &self.worker,
            Kind::Postgres => &self.postgres,
            Kind::Web | Kind::Api | Kind::System => &self.system,
        }
    }
}

/// The incident-only messages of a service, for ground-truth descriptions.
fn novel_texts(kind: Kind) -> Vec<String> {
    use templates::*;
    let endpoints = |defs: &[access::EndpointDef]| {
        defs.iter()
            .map(|d| format!("{} {} -> 500", d.method, d.path))
            .collect()
    };
    let texts = |defs: &[TplDef]| defs.iter().map(|d| d.text.to_owned()).collect();
    match kind {
        Kind::Web => endpoints(access::WEB_NEW),
        Kind::Api => endpoints(access::API_NEW),
        Kind::Gateway => texts(GATEWAY_NEW),
        Kind::Payments => texts(PAYMENTS_NEW),
        Kind::Checkout => texts(CHECKOUT_NEW),
        Kind::Worker => texts(WORKER_NEW),
        Kind::Postgres => texts(POSTGRES_NEW),
        Kind::System => Vec::new(),
    }
}

/// Generates the fleet's logs chunk by chunk.
pub struct Generator {
    options: GenOptions,
    pools: Pools,
    sets: Sets,
    streams: Vec<Stream>,
    infos: Vec<StreamInfo>,
    incidents: Vec<InjectedIncident>,
    now: i64,
    end: i64,
    chunks: Vec<String>,
    /// Per stream, the ground-truth labels of `chunks`' lines (8 hex digits and `\n` each),
    /// when [`GenOptions::template_truth`] is on.
    truth_chunks: Vec<String>,
    slots: Vec<u64>,
    effects: Vec<Effect>,
    scratch: String,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("options", &self.options)
            .field("streams", &self.infos)
            .field("incidents", &self.incidents)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Plans the fleet, its volumes and its incidents.
    pub fn new(options: GenOptions) -> Result<Generator, GenError> {
        if options.duration_secs <= 0 {
            return Err(GenError::Duration(options.duration_secs));
        }
        if !(0.0..=1.0).contains(&options.corrupt_rate) {
            return Err(GenError::CorruptRate(options.corrupt_rate));
        }
        if options.lines == 0 {
            return Err(GenError::Lines);
        }
        let generated: Vec<Format> = APPS
            .iter()
            .map(|a| a.format)
            .chain([Format::Syslog3164])
            .collect();
        if let Some(&missing) = options.formats.iter().find(|f| !generated.contains(f)) {
            return Err(GenError::NoStream(missing));
        }
        let wanted = |f: Format| options.formats.is_empty() || options.formats.contains(&f);
        let start = options.start.secs();
        let duration = options.duration_secs;
        let seed = options.seed;

        // (host, address, app, weight, kind, file, format, shape, service)
        let mut plan = Vec::new();
        for &(host, ip, service) in &HOSTS {
            let hosts_of_service = HOSTS.iter().filter(|h| h.2 == service).count() as f64;
            if let Some(app) = APPS.iter().find(|a| a.service == service) {
                if wanted(app.format) {
                    plan.push((
                        host,
                        ip,
                        app.weight / hosts_of_service,
                        app.kind,
                        app.file,
                        app.format,
                        app.shape,
                        app.service,
                    ));
                }
            }
            if wanted(Format::Syslog3164) {
                let weight = SYSTEM_WEIGHT / HOSTS.len() as f64;
                plan.push((
                    host,
                    ip,
                    weight,
                    Kind::System,
                    "syslog",
                    Format::Syslog3164,
                    SYSTEM_SHAPE,
                    SYSTEM_SERVICE,
                ));
            }
        }
        let total_weight: f64 = plan.iter().map(|p| p.2).sum();
        let target_rate = options.lines as f64 / duration as f64;
        let mut streams = Vec::with_capacity(plan.len());
        let mut infos = Vec::with_capacity(plan.len());
        for (host, ip, weight, kind, file, format, shape, service) in plan {
            let path = format!("logs/{host}/{file}");
            let mut boot_rng = Rng::derive(seed, &format!("boot {host}"));
            streams.push(Stream {
                kind,
                format,
                host,
                service,
                host_ip: ip,
                boot_secs: start - 3600 - boot_rng.below(40 * 86_400) as i64,
                rng: Rng::derive(seed, &path),
                corrupt_rng: Rng::derive(seed, &format!("corrupt {path}")),
                rate: target_rate * weight / total_weight,
                shape,
                shape_mean: shape.mean(start, duration),
                effects: Vec::new(),
                cursor: 0,
                buf: LineBuf::default(),
                parser: format.parser(),
                stats: StreamStats::default(),
            });
            infos.push(StreamInfo {
                path,
                format,
                host: host.to_owned(),
                service: service.to_owned(),
            });
        }

        let sets = Sets::new();
        let incidents = if options.incidents {
            let mut targets = Targets::default();
            for s in &streams {
                if s.kind == Kind::System {
                    continue;
                }
                if !targets.services.iter().any(|t| t.name == s.service) {
                    targets.services.push(ServiceTarget {
                        name: s.service,
                        typed_latency: matches!(s.kind, Kind::Web | Kind::Api),
                        has_latency: matches!(
                            s.kind,
                            Kind::Web | Kind::Api | Kind::Gateway | Kind::Payments | Kind::Checkout
                        ),
                        http: matches!(s.kind, Kind::Web | Kind::Api),
                        novel: novel_texts(s.kind),
                    });
                }
            }
            for s in &streams {
                if !targets.hosts.iter().any(|h| h.0 == s.host) {
                    let app = HOSTS.iter().find(|h| h.0 == s.host).map_or(s.service, |h| h.2);
                    targets.hosts.push((s.host, app));
                }
            }
            incident::schedule(&mut Rng::derive(seed, "incidents"), start, duration, &targets)
        } else {
            Vec::new()
        };
        for incident in &incidents {
            let (from, to) = (incident.start.secs(), incident.end.secs());
            for s in &mut streams {
                let hit = match &incident.host {
                    Some(host) => s.host == host,
                    None => s.kind != Kind::System && s.service == incident.service,
                };
                if hit {
                    s.effects.push((from, to, incident.effect));
                }
            }
        }
        for s in &mut streams {
            s.effects.sort_by_key(|e| e.0);
        }

        let chunks = vec![String::new(); streams.len()];
        Ok(Generator {
            truth_chunks: chunks.clone(),
            options,
            pools: Pools::new(seed),
            sets,
            streams,
            infos,
            incidents,
            now: start,
            end: start + duration,
            chunks,
            slots: Vec::new(),
            effects: Vec::new(),
            scratch: String::new(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &GenOptions {
        &self.options
    }

    /// The generated files, in a fixed order; chunks and stats are index-aligned with it.
    pub fn streams(&self) -> &[StreamInfo] {
        &self.infos
    }

    /// The injected incidents, in time order.
    pub fn incidents(&self) -> &[InjectedIncident] {
        &self.incidents
    }

    /// Line counts and times of each stream so far.
    pub fn stats(&self) -> Vec<StreamStats> {
        self.streams.iter().map(|s| s.stats).collect()
    }

    /// First instant of the span.
    pub fn start(&self) -> Timestamp {
        Timestamp::from_secs(self.options.start.secs())
    }

    /// First instant after the span.
    pub fn end(&self) -> Timestamp {
        Timestamp::from_secs(self.end)
    }

    /// Splits the generator into at most `parts` generators over disjoint sets of streams,
    /// balanced by volume, for generating on several threads. Streams draw from their own
    /// random generators, so each part produces exactly the lines the whole would have for
    /// its streams. Returns each part with the indices (into [`Generator::streams`]) of its
    /// streams; a generator already part-way through its span is split where it stands.
    pub fn split(self, parts: usize) -> Vec<(Vec<usize>, Generator)> {
        let parts = parts.clamp(1, self.streams.len().max(1));
        let mut order: Vec<usize> = (0..self.streams.len()).collect();
        // Largest first, each to the lightest part (ties by index, so the split is stable).
        order.sort_by(|&a, &b| {
            self.streams[b]
                .rate
                .total_cmp(&self.streams[a].rate)
                .then(a.cmp(&b))
        });
        let mut load = vec![0.0f64; parts];
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); parts];
        for i in order {
            let lightest = (0..parts)
                .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
                .unwrap_or(0);
            load[lightest] += self.streams[i].rate;
            members[lightest].push(i);
        }
        let mut streams: Vec<Option<Stream>> = self.streams.into_iter().map(Some).collect();
        members
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|mut indices| {
                indices.sort_unstable();
                let part = Generator {
                    options: self.options.clone(),
                    pools: self.pools.clone(),
                    sets: self.sets.clone(),
                    streams: indices.iter().filter_map(|&i| streams[i].take()).collect(),
                    infos: indices.iter().map(|&i| self.infos[i].clone()).collect(),
                    incidents: self.incidents.clone(),
                    now: self.now,
                    end: self.end,
                    chunks: vec![String::new(); indices.len()],
                    truth_chunks: vec![String::new(); indices.len()],
                    slots: Vec::new(),
                    effects: Vec::new(),
                    scratch: String::new(),
                };
                (indices, part)
            })
            .collect()
    }

    /// Generates the next slice of time (up to an hour, or about 1 MiB of text) and returns
    /// each stream's new lines, `\n`-terminated and in time order; `None` once the span is
    /// done. The returned buffers are reused by the next call.
    pub fn next_chunk(&mut self) -> Option<&[String]> {
        if self.now >= self.end {
            return None;
        }
        for chunk in self.chunks.iter_mut().chain(&mut self.truth_chunks) {
            chunk.clear();
        }
        let stop = (self.now + CHUNK_SECS).min(self.end);
        let mut bytes = 0;
        while self.now < stop && bytes < CHUNK_BYTES {
            // One window per wall-clock minute (the traffic shape is constant within it).
            let (from, to) = (self.now, ((self.now.div_euclid(60) + 1) * 60).min(self.end));
            let outs = self.chunks.iter_mut().zip(self.truth_chunks.iter_mut());
            for (stream, (out, truth)) in self.streams.iter_mut().zip(outs) {
                let before = out.len();
                let truth = self.options.template_truth.then_some(truth);
                window(
                    stream,
                    from,
                    to,
                    &self.sets,
                    &self.pools,
                    self.options.corrupt_rate,
                    (&mut self.slots, &mut self.effects),
                    &mut self.scratch,
                    (out, truth),
                );
                bytes += out.len() - before;
            }
            self.now = to;
        }
        Some(&self.chunks)
    }

    /// Each stream's lines of the last [`Generator::next_chunk`] (what it returned).
    pub fn chunks(&self) -> &[String] {
        &self.chunks
    }

    /// The ground-truth labels of the lines [`Generator::next_chunk`] returned last, per stream:
    /// one line per log line, the [`templates::truth_label`] (8 hex digits) of the template
    /// that wrote it. Empty unless [`GenOptions::template_truth`] is on.
    pub fn truth_chunks(&self) -> &[String] {
        &self.truth_chunks
    }

    /// Every template the fleet can write, by ground-truth label (sorted, each once): what the
    /// labels of [`Generator::truth_chunks`] stand for.
    pub fn truth_templates(&self) -> Vec<(u32, String)> {
        let s = &self.sets;
        let mut all: Vec<(u32, String)> = [
            &s.gateway,
            &s.payments,
            &s.checkout,
            &s.worker,
            &s.postgres,
            &s.system,
        ]
        .into_iter()
        .flat_map(TemplateSet::truth)
        .chain(s.web.truth())
        .chain(s.api.truth())
        .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The slowest incident-only lines arrive, per stream and second. A failing service logs its
/// errors however quiet its traffic (retries, timeouts, failed jobs), so an incident is never
/// a handful of lines that chance alone could produce.
const INCIDENT_LINE_FLOOR: f64 = 1.0 / 15.0;

/// The rate (lines per second) of a stream's incident-only lines under `effect`, on top of
/// its traffic: a new error's lines at their share of the stream's mean rate `mean_rate`, or
/// the error lines a burst needs beyond its share of the current rate `now_rate` to reach
/// [`INCIDENT_LINE_FLOOR`]. None from a silent stream.
fn incident_only_rate(mean_rate: f64, now_rate: f64, effect: &Effect) -> f64 {
    if effect.volume == 0.0 {
        0.0
    } else if effect.novel.is_some() {
        (mean_rate * effect.novel_share).max(INCIDENT_LINE_FLOOR)
    } else if effect.error_share > 0.0 {
        (INCIDENT_LINE_FLOOR - now_rate * effect.volume * effect.error_share).max(0.0)
    } else {
        0.0
    }
}

/// Generates stream `s`'s lines of `[from, to)` (within one minute) into `out`, in time
/// order. Arrivals are Poisson: per stretch of constant rate, a Poisson count of lines at
/// uniformly random milliseconds.
#[allow(clippy::too_many_arguments)]
fn window(
    s: &mut Stream,
    from: i64,
    to: i64,
    sets: &Sets,
    pools: &Pools,
    corrupt_rate: f64,
    (slots, effects): (&mut Vec<u64>, &mut Vec<Effect>),
    scratch: &mut String,
    (out, mut truth): (&mut String, Option<&mut String>),
) {
    let minute_rate = s.rate * s.shape.at(from.div_euclid(60) * 60 + 30) / s.shape_mean;
    slots.clear();
    effects.clear();
    let mut a = from;
    while a < to {
        let (effect, change) = s.effect_at(a);
        let b = change.clamp(a + 1, to);
        let secs = (b - a) as f64;
        let span_ms = (b - a) as u64 * 1000;
        let base = (a - from) as u64 * 1000;
        // A slot is the millisecond offset, then the stretch's effect (15 bits), then whether
        // the line is an incident-only one (bit 0): a new error's line or a burst's extra error.
        let tag = (effects.len() as u64) << 1;
        effects.push(effect);
        for _ in 0..s.rng.poisson(minute_rate * effect.volume * secs) {
            slots.push((base + s.rng.below(span_ms)) << 16 | tag);
        }
        let extra = incident_only_rate(s.rate, minute_rate, &effect);
        if extra > 0.0 {
            for _ in 0..s.rng.poisson(extra * secs) {
                slots.push((base + s.rng.below(span_ms)) << 16 | tag | 1);
            }
        }
        a = b;
    }
    if slots.is_empty() {
        return;
    }
    slots.sort_unstable();
    for &slot in slots.iter() {
        let ts = Timestamp((from * 1000 + (slot >> 16) as i64) * 1000);
        let incident_only = slot & 1 == 1;
        let effect = effects[(slot >> 1 & 0x7FFF) as usize];
        // An incident-only line of a stretch without a new template is a burst's extra error.
        let burst_extra = incident_only && effect.novel.is_none();
        let error_share = if burst_extra { 1.0 } else { effect.error_share };
        let ctx = VarCtx {
            pools,
            host_ip: s.host_ip,
            boot_secs: s.boot_secs,
            ts,
            latency: effect.latency,
        };
        let start = out.len();
        let label = match s.kind {
            Kind::Web | Kind::Api => {
                let set = if s.kind == Kind::Web { &sets.web } else { &sets.api };
                let fx = AccessFx {
                    error_share,
                    latency: effect.latency,
                    novel: if incident_only { effect.novel } else { None },
                };
                set.render(&mut s.rng, &ctx, fx, &mut s.buf, ts, out)
            }
            kind => {
                let set = sets.templates(kind);
                let tpl = match effect.novel {
                    Some(i) if incident_only => set.novel(i),
                    _ => set.pick(&mut s.rng, error_share),
                };
                templates::render(
                    tpl, &mut s.rng, &ctx, &mut s.buf, s.format, ts, s.host, s.service, out,
                );
                tpl.truth
            }
        };
        if let Some(truth) = truth.as_deref_mut() {
            use std::fmt::Write as _;
            let _ = writeln!(truth, "{label:08x}");
        }
        if corrupt_rate > 0.0 && s.corrupt_rng.chance(corrupt_rate) {
            corrupt::corrupt(&out[start..], &mut s.corrupt_rng, s.parser.as_ref(), scratch);
            out.truncate(start);
            out.push_str(scratch);
            s.stats.corrupt_lines += 1;
        }
        out.push('\n');
        s.stats.lines += 1;
        s.stats.first.get_or_insert(ts);
        s.stats.last = Some(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(options: GenOptions) -> (Generator, Vec<String>) {
        let mut g = Generator::new(options).expect("valid options");
        let mut files = vec![String::new(); g.streams().len()];
        while let Some(chunks) = g.next_chunk() {
            for (file, chunk) in files.iter_mut().zip(chunks) {
                file.push_str(chunk);
            }
        }
        (g, files)
    }

    fn small() -> GenOptions {
        GenOptions {
            lines: 20_000,
            duration_secs: 6 * 3600,
            ..GenOptions::default()
        }
    }

    #[test]
    fn default_start_is_november_first() {
        assert_eq!(
            Timestamp::from_secs(DEFAULT_START_SECS).to_rfc3339(),
            "2026-11-01T00:00:00Z"
        );
    }

    #[test]
    fn options_are_validated() {
        let bad = |o: GenOptions| Generator::new(o).expect_err("invalid");
        assert_eq!(bad(GenOptions { lines: 0, ..small() }), GenError::Lines);
        assert_eq!(
            bad(GenOptions {
                corrupt_rate: 1.5,
                ..small()
            }),
            GenError::CorruptRate(1.5)
        );
        assert_eq!(
            bad(GenOptions {
                formats: vec![Format::Common],
                ..small()
            }),
            GenError::NoStream(Format::Common)
        );
    }

    #[test]
    fn same_seed_same_text_other_seed_other_text() {
        let (g, a) = run(small());
        let (_, b) = run(small());
        let (_, c) = run(GenOptions { seed: 7, ..small() });
        assert_eq!(a, b);
        assert_ne!(a, c);
        let total: u64 = g.stats().iter().map(|s| s.lines).sum();
        assert!(
            (15_000..25_000).contains(&total),
            "{total} lines for a target of 20000"
        );
        for (file, stats) in a.iter().zip(g.stats()) {
            assert_eq!(file.lines().count() as u64, stats.lines);
        }
    }

    #[test]
    fn streams_follow_the_format_filter_and_corruption_is_counted() {
        let (g, files) = run(GenOptions {
            formats: vec![Format::Combined],
            corrupt_rate: 0.01,
            ..small()
        });
        assert_eq!(g.streams().len(), 5);
        assert!(g.streams().iter().all(|s| s.format == Format::Combined));
        let parser = Format::Combined.parser();
        for (file, stats) in files.iter().zip(g.stats()) {
            let failed = file
                .lines()
                .filter(|l| parser.parse(l, &Default::default()).is_err())
                .count() as u64;
            assert_eq!(failed, stats.corrupt_lines);
            assert!(stats.corrupt_lines > 0);
        }
        let kinds: Vec<IncidentKind> = g.incidents().iter().map(|i| i.kind).collect();
        for kind in IncidentKind::ALL {
            assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
        }
    }

    #[test]
    fn host_silence_silences_the_host() {
        let (g, files) = run(GenOptions {
            corrupt_rate: 0.0,
            ..small()
        });
        let silent = g
            .incidents()
            .iter()
            .find(|i| i.kind == IncidentKind::HostSilent)
            .expect("a host_silent incident");
        let host = silent.host.as_deref().expect("a host");
        let parser = Format::Combined.parser();
        let mut checked = 0;
        for (info, file) in g.streams().iter().zip(&files) {
            if info.host != host || info.format != Format::Combined {
                continue;
            }
            for line in file.lines() {
                let ts = parser.parse(line, &Default::default()).expect("parses").ts;
                assert!(ts < silent.start || ts >= silent.end, "{line}");
                checked += 1;
            }
        }
        assert!(checked > 0 || !host.starts_with("web") && !host.starts_with("api"));
    }

    #[test]
    fn an_error_burst_logs_errors_however_quiet_its_service() {
        // 2,000 lines over 6 hours: every stream is quiet (a few lines a minute at most).
        let (g, files) = run(GenOptions {
            lines: 2_000,
            corrupt_rate: 0.0,
            ..small()
        });
        let bursts: Vec<&InjectedIncident> = g
            .incidents()
            .iter()
            .filter(|i| i.kind == IncidentKind::ErrorBurst)
            .collect();
        assert!(!bursts.is_empty());
        for burst in bursts {
            let (mut errors, mut streams) = (0, 0);
            for (info, file) in g.streams().iter().zip(&files) {
                if info.service != burst.service {
                    continue;
                }
                streams += 1;
                let parser = info.format.parser();
                errors += file
                    .lines()
                    .filter_map(|l| parser.parse(l, &Default::default()).ok())
                    .filter(|r| (burst.start..burst.end).contains(&r.ts))
                    .filter(|r| r.level.is_some_and(loglens_core::record::Level::is_error))
                    .count();
            }
            // At least one error per 15 s per stream on average; allow for Poisson chance.
            let secs = (burst.end.0 - burst.start.0) as f64 / 1e6;
            let floor = secs * INCIDENT_LINE_FLOOR * streams as f64;
            assert!(
                errors as f64 >= 0.6 * floor,
                "{}: {errors} errors in {secs} s over {streams} streams",
                burst.description
            );
        }
    }

    #[test]
    fn split_parts_produce_the_same_lines() {
        let (_, whole) = run(small());
        let g = Generator::new(small()).expect("valid");
        let parts = g.split(3);
        assert_eq!(parts.len(), 3);
        let mut seen = vec![false; whole.len()];
        for (indices, mut part) in parts {
            let mut files = vec![String::new(); indices.len()];
            while let Some(chunks) = part.next_chunk() {
                for (file, chunk) in files.iter_mut().zip(chunks) {
                    file.push_str(chunk);
                }
            }
            for (i, file) in indices.into_iter().zip(files) {
                assert_eq!(file, whole[i], "stream {i}");
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn every_line_is_labelled_with_the_template_that_wrote_it() {
        let mut g = Generator::new(GenOptions {
            template_truth: true,
            corrupt_rate: 0.0,
            ..small()
        })
        .expect("valid");
        let known: std::collections::HashMap<u32, String> = g.truth_templates().into_iter().collect();
        let mut labelled = vec![0u64; g.streams().len()];
        let mut seen = std::collections::HashSet::new();
        while g.next_chunk().is_some() {
            for ((chunk, labels), n) in g.chunks().iter().zip(g.truth_chunks()).zip(&mut labelled) {
                assert_eq!(chunk.lines().count(), labels.lines().count());
                for (line, label) in chunk.lines().zip(labels.lines()) {
                    let label = u32::from_str_radix(label, 16).expect("8 hex digits");
                    let text = known.get(&label).expect("a listed template");
                    // Every literal word of the template is in the line.
                    let literal = text.split(['{', '}']).step_by(2).flat_map(str::split_whitespace);
                    for word in literal.filter(|w| w.len() > 3) {
                        assert!(line.contains(word), "{line:?} from {text:?}");
                    }
                    seen.insert(label);
                    *n += 1;
                }
            }
        }
        let lines: Vec<u64> = g.stats().iter().map(|s| s.lines).collect();
        assert_eq!(labelled, lines);
        assert!(seen.len() > 60, "{} templates used", seen.len());
    }

    #[test]
    fn no_incidents_means_none() {
        let mut g = Generator::new(GenOptions {
            incidents: false,
            ..small()
        })
        .expect("valid");
        assert!(g.incidents().is_empty());
        assert!(g.next_chunk().is_some());
    }
}
