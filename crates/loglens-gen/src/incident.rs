//! Incidents: what they are ([`IncidentKind`]), when they happen and what they do to the
//! streams they touch. The schedule splits the span (after a quiet lead-in that gives
//! detectors a baseline) into equal slots, one incident per slot, so incidents never overlap.

use super::rng::Rng;
use loglens_core::time::Timestamp;

/// The kinds of injected incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IncidentKind {
    /// A service's 5xx / ERROR share jumps for 5–30 minutes, with at least one error line per
    /// 15 s per stream however quiet the service.
    ErrorBurst,
    /// A service's latency is multiplied by 5–20.
    LatencySpike,
    /// A service's volume falls to 10–20 % of normal.
    TrafficDrop,
    /// An ERROR message of a never-seen template appears repeatedly in a service.
    NewError,
    /// A host emits nothing at all for 10–60 minutes.
    HostSilent,
}

impl IncidentKind {
    /// Every kind.
    pub const ALL: [IncidentKind; 5] = [
        IncidentKind::ErrorBurst,
        IncidentKind::LatencySpike,
        IncidentKind::TrafficDrop,
        IncidentKind::NewError,
        IncidentKind::HostSilent,
    ];

    /// The name written to the ground truth (`error_burst`, …).
    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::ErrorBurst => "error_burst",
            IncidentKind::LatencySpike => "latency_spike",
            IncidentKind::TrafficDrop => "traffic_drop",
            IncidentKind::NewError => "new_error",
            IncidentKind::HostSilent => "host_silent",
        }
    }

    /// The range of durations in seconds.
    fn durations(self) -> (f64, f64) {
        match self {
            IncidentKind::ErrorBurst | IncidentKind::LatencySpike => (300.0, 1800.0),
            IncidentKind::TrafficDrop => (600.0, 2700.0),
            IncidentKind::NewError => (600.0, 2400.0),
            IncidentKind::HostSilent => (600.0, 3600.0),
        }
    }
}

/// What an incident does to each stream it touches while it lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// Volume multiplier (0 = silent).
    pub volume: f64,
    /// Share of lines forced to errors (0 = baseline).
    pub error_share: f64,
    /// Latency multiplier.
    pub latency: f64,
    /// Incident-only template index, if the incident emits one.
    pub novel: Option<usize>,
    /// Rate of the incident-only lines as a share of the stream's mean rate.
    pub novel_share: f64,
}

impl Effect {
    /// No incident.
    pub const NONE: Effect = Effect {
        volume: 1.0,
        error_share: 0.0,
        latency: 1.0,
        novel: None,
        novel_share: 0.0,
    };
}

/// One injected incident: the ground truth detection is scored against.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedIncident {
    /// What happens.
    pub kind: IncidentKind,
    /// First affected instant.
    pub start: Timestamp,
    /// First instant after the incident.
    pub end: Timestamp,
    /// The affected service (for `host_silent`, the host's application service).
    pub service: String,
    /// The affected host, `None` when the whole service is affected.
    pub host: Option<String>,
    /// A human-readable account of the incident.
    pub description: String,
    /// What it does to the streams.
    pub effect: Effect,
}

/// A service incidents may target.
#[derive(Debug, Clone)]
pub struct ServiceTarget {
    /// Service name.
    pub name: &'static str,
    /// Whether its lines carry typed request latencies (access logs): preferred for spikes.
    pub typed_latency: bool,
    /// Whether its lines carry any latency at all.
    pub has_latency: bool,
    /// Whether it is an access log (errors are 5xx statuses).
    pub http: bool,
    /// The messages of its incident-only templates, in index order.
    pub novel: Vec<String>,
}

/// What the schedule may target: the services and hosts present in the selected streams.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Application services.
    pub services: Vec<ServiceTarget>,
    /// Hosts with their application service.
    pub hosts: Vec<(&'static str, &'static str)>,
}

/// Smallest slot one incident gets, in seconds.
const MIN_SLOT: i64 = 240;

/// Plans the incidents of `[start, start + duration)`: per kind about one per day of span
/// (at least one when the span allows), shuffled into equal, non-overlapping slots.
pub fn schedule(rng: &mut Rng, start: i64, duration: i64, targets: &Targets) -> Vec<InjectedIncident> {
    let lead_in = (duration / 8).min(2 * 3600);
    let tail = (duration / 20).min(1800);
    let usable = duration - lead_in - tail;
    let per_kind = ((duration as f64 / 86_400.0).round() as usize).max(1);
    let mut kinds: Vec<IncidentKind> = Vec::new();
    for kind in IncidentKind::ALL {
        let possible = match kind {
            IncidentKind::HostSilent => !targets.hosts.is_empty(),
            IncidentKind::LatencySpike => targets.services.iter().any(|s| s.has_latency),
            _ => !targets.services.is_empty(),
        };
        if possible {
            kinds.extend(std::iter::repeat_n(kind, per_kind));
        }
    }
    // Shuffle (Fisher–Yates), then drop what does not fit: with few slots every kind still
    // gets its first incident before any kind gets a second.
    for i in (1..kinds.len()).rev() {
        let j = rng.index(i + 1);
        kinds.swap(i, j);
    }
    let fit = usize::try_from(usable.max(0) / MIN_SLOT).unwrap_or(0);
    if kinds.len() > fit {
        let mut seen = Vec::new();
        let (mut firsts, mut rest): (Vec<IncidentKind>, Vec<IncidentKind>) = (Vec::new(), Vec::new());
        for k in kinds {
            if seen.contains(&k) {
                rest.push(k);
            } else {
                seen.push(k);
                firsts.push(k);
            }
        }
        firsts.extend(rest);
        firsts.truncate(fit);
        for i in (1..firsts.len()).rev() {
            let j = rng.index(i + 1);
            firsts.swap(i, j);
        }
        kinds = firsts;
    }
    if kinds.is_empty() {
        return Vec::new();
    }
    let slot = usable / kinds.len() as i64;
    let mut novel_used = vec![0usize; targets.services.len()];
    let mut incidents = Vec::with_capacity(kinds.len());
    for (i, kind) in kinds.into_iter().enumerate() {
        let slot_start = start + lead_in + i as i64 * slot;
        let (lo, hi) = kind.durations();
        let max_len = slot as f64 * 0.6;
        let len = rng.uniform(lo, hi).min(max_len).max(60.0_f64.min(max_len)) as i64;
        let room = (slot as f64 * 0.8) as i64 - len;
        let begin = slot_start + slot / 5 + rng.below(room.max(0) as u64 + 1) as i64;
        if let Some(incident) = plan(kind, rng, targets, &mut novel_used, begin, begin + len) {
            incidents.push(incident);
        }
    }
    incidents
}

fn plan(
    kind: IncidentKind,
    rng: &mut Rng,
    targets: &Targets,
    novel_used: &mut [usize],
    start: i64,
    end: i64,
) -> Option<InjectedIncident> {
    let mut effect = Effect::NONE;
    let services = &targets.services;
    let (service, host, description) = match kind {
        IncidentKind::HostSilent => {
            let &(host, service) = rng.pick(&targets.hosts);
            effect.volume = 0.0;
            (
                service.to_owned(),
                Some(host.to_owned()),
                format!("{host} emits no log lines at all (every file of the host)"),
            )
        }
        IncidentKind::LatencySpike => {
            let typed: Vec<&ServiceTarget> = services.iter().filter(|s| s.typed_latency).collect();
            let any: Vec<&ServiceTarget> = services.iter().filter(|s| s.has_latency).collect();
            let pool = if typed.is_empty() { any } else { typed };
            let target = *rng.pick(&pool);
            effect.latency = rng.uniform(5.0, 20.0);
            (
                target.name.to_owned(),
                None,
                format!(
                    "{}: request latency multiplied by {:.1}",
                    target.name, effect.latency
                ),
            )
        }
        IncidentKind::ErrorBurst => {
            let target = rng.pick(services);
            effect.error_share = rng.uniform(0.1, 0.3);
            let what = if target.http {
                "of requests fail with 5xx"
            } else {
                "of lines are ERROR-level"
            };
            (
                target.name.to_owned(),
                None,
                format!("{}: about {:.0}% {what}", target.name, effect.error_share * 100.0),
            )
        }
        IncidentKind::TrafficDrop => {
            let target = rng.pick(services);
            effect.volume = rng.uniform(0.1, 0.2);
            (
                target.name.to_owned(),
                None,
                format!(
                    "{}: volume falls to {:.0}% of normal",
                    target.name,
                    effect.volume * 100.0
                ),
            )
        }
        IncidentKind::NewError => {
            let open: Vec<usize> = (0..services.len())
                .filter(|&i| novel_used[i] < services[i].novel.len())
                .collect();
            if open.is_empty() {
                return None;
            }
            let i = *rng.pick(&open);
            let index = novel_used[i];
            novel_used[i] += 1;
            effect.novel = Some(index);
            effect.novel_share = rng.uniform(0.02, 0.08);
            let target = &services[i];
            (
                target.name.to_owned(),
                None,
                format!(
                    "{}: a never-seen error appears repeatedly: {}",
                    target.name, target.novel[index]
                ),
            )
        }
    };
    Some(InjectedIncident {
        kind,
        start: Timestamp::from_secs(start),
        end: Timestamp::from_secs(end),
        service,
        host,
        description,
        effect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        let svc = |name, typed, http| ServiceTarget {
            name,
            typed_latency: typed,
            has_latency: true,
            http,
            novel: vec!["boom {order}".into(), "bang".into()],
        };
        Targets {
            services: vec![svc("web", true, true), svc("payments", false, false)],
            hosts: vec![("web-01", "web"), ("pay-01", "payments")],
        }
    }

    #[test]
    fn one_of_each_kind_per_day_without_overlap() {
        let start = 1_800_000_000;
        for days in [1, 3] {
            let duration = days * 86_400;
            let incidents = schedule(&mut Rng::new(11), start, duration, &targets());
            for kind in IncidentKind::ALL {
                let n = incidents.iter().filter(|i| i.kind == kind).count();
                let want = if kind == IncidentKind::NewError {
                    (days as usize).min(4)
                } else {
                    days as usize
                };
                assert_eq!(n, want, "{days} days: {kind:?}");
            }
            for w in incidents.windows(2) {
                assert!(w[0].end < w[1].start, "{w:?}");
            }
            for i in &incidents {
                assert!(i.start < i.end);
                assert!(i.start.secs() >= start && i.end.secs() <= start + duration);
                assert_eq!(i.host.is_some(), i.kind == IncidentKind::HostSilent);
                assert_eq!(i.effect.volume == 0.0, i.kind == IncidentKind::HostSilent);
                if i.kind == IncidentKind::LatencySpike {
                    assert_eq!(i.service, "web", "typed latencies are preferred");
                }
            }
        }
    }

    #[test]
    fn short_spans_keep_one_of_each_kind_while_they_fit() {
        let incidents = schedule(&mut Rng::new(2), 0, 2 * 3600, &targets());
        let mut kinds: Vec<IncidentKind> = incidents.iter().map(|i| i.kind).collect();
        kinds.sort();
        assert_eq!(kinds, IncidentKind::ALL.to_vec());
        let tiny = schedule(&mut Rng::new(2), 0, 900, &targets());
        assert!(tiny.len() < 5);
        assert!(schedule(&mut Rng::new(2), 0, 60, &targets()).is_empty());
        let no_hosts = Targets {
            hosts: vec![],
            ..targets()
        };
        assert!(schedule(&mut Rng::new(2), 0, 86_400, &no_hosts)
            .iter()
            .all(|i| i.kind != IncidentKind::HostSilent));
    }
}
