//! Correlation of closed incidents into one incident per cause: incidents close in time whose
//! series are one part of the system (the total, a service and its hosts, the detectors of one
//! service) merge, keeping their members, a root series and the worst severity.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{DetectorKind, Incident, Severity};
use crate::metrics::SeriesKey;
use crate::time::Timestamp;

/// Incidents this close in time (seconds between one's end and the other's start) can be one
/// cause: detectors of one failure fire a few buckets apart (an error rate first, the volume
/// once retries pile up, a new template when its warm-up confirms it).
pub const CORRELATE_WINDOW_SECS: i64 = 300;

/// One incident merged into a correlated one (a row of its `members` list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentMember {
    /// The member's own id (what it would be called uncorrelated).
    pub incident_id: String,
    /// First anomalous bucket.
    pub start: Timestamp,
    /// End of the last anomalous bucket (exclusive).
    pub end: Timestamp,
    /// Which detector fired.
    pub detector: DetectorKind,
    /// Metric name.
    pub metric: String,
    /// Canonical series key.
    pub series: String,
    /// The member's worst severity.
    pub severity: Severity,
}

impl IncidentMember {
    /// The member record of an uncorrelated incident.
    pub fn of(i: &Incident) -> IncidentMember {
        IncidentMember {
            incident_id: i.incident_id.clone(),
            start: i.start,
            end: i.end,
            detector: i.detector,
            metric: i.metric.clone(),
            series: i.series.clone(),
            severity: i.severity,
        }
    }
}

/// The part of the system a series covers: `service` and `host` labels, `None` for all.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Scope {
    service: Option<String>,
    host: Option<String>,
}

impl Scope {
    fn of(series: &str) -> Scope {
        let mut scope = Scope {
            service: None,
            host: None,
        };
        for part in series.split(',') {
            match part.split_once('=') {
                Some(("service", v)) => scope.service = Some(v.to_owned()),
                Some(("host", v)) => scope.host = Some(v.to_owned()),
                _ => {}
            }
        }
        scope
    }

    fn is_total(&self) -> bool {
        self.service.is_none() && self.host.is_none()
    }

    /// Whether one failure can explain both: the total covers everything, a service its hosts
    /// and its own detectors; a host-only series (syslog) joins its host's series.
    fn related(&self, other: &Scope) -> bool {
        if self.is_total() || other.is_total() {
            return true;
        }
        match (&self.service, &other.service) {
            (Some(a), Some(b)) => a == b,
            _ => self.host.is_some() && self.host == other.host,
        }
    }
}

/// Incidents that may still grow together: closed members and their span.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Group {
    members: Vec<Incident>,
    start: Timestamp,
    end: Timestamp,
}

impl Group {
    fn near(&self, start: Timestamp, end: Timestamp) -> bool {
        near(self.start, self.end, start, end)
    }

    /// Whether an incident joins: one member is both close in time and related, so the groups
    /// are the connected parts of that relation whatever the order incidents close in.
    fn joins(&self, start: Timestamp, end: Timestamp, series: &str) -> bool {
        let scope = Scope::of(series);
        self.members
            .iter()
            .any(|m| near(m.start, m.end, start, end) && Scope::of(&m.series).related(&scope))
    }
}

/// Whether two spans are at most [`CORRELATE_WINDOW_SECS`] apart.
fn near(a_start: Timestamp, a_end: Timestamp, b_start: Timestamp, b_end: Timestamp) -> bool {
    let w = CORRELATE_WINDOW_SECS * 1_000_000;
    b_start.0 <= a_end.0 + w && b_end.0 + w >= a_start.0
}

/// The correlation stage: fed the incidents the policy closes, it emits correlated incidents
/// once no incident still open (or yet to start) can join them. Serializable with the policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Correlator {
    groups: Vec<Group>,
}

impl Correlator {
    /// Adds a closed incident: it joins (and bridges) every group it is related to.
    pub fn add(&mut self, incident: Incident) {
        let (joined, rest): (Vec<Group>, Vec<Group>) = std::mem::take(&mut self.groups)
            .into_iter()
            .partition(|g| g.joins(incident.start, incident.end, &incident.series));
        self.groups = rest;
        let mut group = Group {
            start: incident.start,
            end: incident.end,
            members: vec![incident],
        };
        for g in joined {
            group.start = group.start.min(g.start);
            group.end = group.end.max(g.end);
            group.members.extend(g.members);
        }
        self.groups.push(group);
    }

    /// The groups nothing can join any more, correlated: `now` is the first bucket not yet
    /// judged (new incidents start there or later) and `open` the (start, series) of the
    /// incidents still growing.
    pub fn ready(&mut self, now: Timestamp, open: &[(Timestamp, &str)]) -> Vec<Incident> {
        let (done, wait): (Vec<Group>, Vec<Group>) =
            std::mem::take(&mut self.groups).into_iter().partition(|g| {
                !g.near(now, now) && !open.iter().any(|(start, series)| g.joins(*start, now, series))
            });
        self.groups = wait;
        done.into_iter().filter_map(|g| correlated(g.members)).collect()
    }

    /// The end of the data: every group, correlated.
    pub fn finish(&mut self) -> Vec<Incident> {
        std::mem::take(&mut self.groups)
            .into_iter()
            .filter_map(|g| correlated(g.members))
            .collect()
    }
}

/// The most specific series that explains every member: one host when only one host shows
/// the failure (its service and the total follow from it), its service when several hosts or
/// only service-wide series do, else the total.
pub fn root_of<'a>(series: impl IntoIterator<Item = &'a str>) -> String {
    let scopes: BTreeSet<Scope> = series
        .into_iter()
        .map(Scope::of)
        .filter(|s| !s.is_total())
        .collect();
    let services: BTreeSet<&Option<String>> = scopes.iter().map(|s| &s.service).collect();
    let hosts: BTreeSet<&String> = scopes.iter().filter_map(|s| s.host.as_ref()).collect();
    let (Some(service), 1) = (services.first(), services.len()) else {
        return "total".to_owned();
    };
    let key = SeriesKey {
        service: (*service).clone(),
        host: (hosts.len() == 1)
            .then(|| hosts.first().map(|h| (*h).clone()))
            .flatten(),
        ..SeriesKey::default()
    };
    key.canonical()
}

/// One incident for a group of members: the lead member (on the root series if one is, then
/// the most severe, then the earliest) gives id, detector, metric, series and peak; the span
/// covers every member and the severity is the worst. `None` for no members.
pub fn correlated(mut members: Vec<Incident>) -> Option<Incident> {
    members.sort_by(|a, b| {
        (a.start, a.detector, &a.metric, &a.series).cmp(&(b.start, b.detector, &b.metric, &b.series))
    });
    let root = root_of(members.iter().map(|m| m.series.as_str()));
    let mut lead_at = 0;
    let rank = |m: &Incident| (m.series == root, m.severity);
    for (i, m) in members.iter().enumerate() {
        if members.get(lead_at).is_some_and(|lead| rank(m) > rank(lead)) {
            lead_at = i;
        }
    }
    let lead = members.get(lead_at)?;
    let mut out = lead.clone();
    out.start = members.iter().map(|m| m.start).min().unwrap_or(lead.start);
    out.end = members.iter().map(|m| m.end).max().unwrap_or(lead.end);
    out.severity = members.iter().map(|m| m.severity).max().unwrap_or(lead.severity);
    out.members = members.iter().map(IncidentMember::of).collect();
    out.root = root;
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::{incident_id, Verdict};
    use proptest::prelude::*;

    const T0: i64 = 1_800_000_000;

    fn inc(
        detector: DetectorKind,
        metric: &str,
        series: &str,
        from: i64,
        to: i64,
        sev: Severity,
    ) -> Incident {
        let start = Timestamp::from_secs(T0 + from * 60);
        Incident {
            incident_id: incident_id(detector, metric, series, start),
            start,
            end: Timestamp::from_secs(T0 + to * 60),
            peak_ts: start,
            detector,
            metric: metric.to_owned(),
            series: series.to_owned(),
            observed: 1.0,
            peak: Verdict::warming(1.0),
            severity: sev,
            buckets: u32::try_from(to - from).unwrap(),
            root: series.to_owned(),
            members: Vec::new(),
        }
    }

    fn burst() -> Vec<Incident> {
        use DetectorKind::Poisson as P;
        use Severity::*;
        vec![
            inc(P, "error_rate", "total", 10, 20, Critical),
            inc(P, "error_rate", "service=api", 10, 20, Critical),
            inc(P, "error_rate", "service=api,host=web-1", 11, 20, Warning),
            inc(
                DetectorKind::NewTemplate,
                "template_count",
                "service=api,template=00000000000000aa",
                12,
                13,
                Critical,
            ),
            // Another service, an hour later: its own incident.
            inc(P, "volume", "service=db,host=db-1", 80, 90, Warning),
        ]
    }

    fn run(incidents: Vec<Incident>) -> Vec<Incident> {
        let mut c = Correlator::default();
        for i in incidents {
            c.add(i);
        }
        let mut out = c.finish();
        out.sort_by_key(|i| (i.start, i.incident_id.clone()));
        out
    }

    #[test]
    fn one_host_burst_is_one_incident_rooted_at_the_host() {
        let out = run(burst());
        assert_eq!(out.len(), 2);
        let api = &out[0];
        assert_eq!(api.members.len(), 4);
        assert_eq!(api.root, "service=api,host=web-1");
        assert_eq!(api.series, "service=api,host=web-1");
        assert_eq!(api.severity, Severity::Critical);
        assert_eq!(
            (api.start, api.end),
            (Timestamp::from_secs(T0 + 600), Timestamp::from_secs(T0 + 1200))
        );
        assert_eq!(api.incident_id, burst()[2].incident_id);
        assert_eq!(out[1].root, "service=db,host=db-1");
        assert_eq!(out[1].members.len(), 1);
    }

    #[test]
    fn roots() {
        assert_eq!(
            root_of(["total", "service=api,host=a", "service=api,host=b"]),
            "service=api"
        );
        assert_eq!(root_of(["total", "service=api", "service=db"]), "total");
        assert_eq!(root_of(["total"]), "total");
        assert_eq!(
            root_of(["service=api,template=00000000000000aa", "service=api"]),
            "service=api"
        );
        assert_eq!(root_of(["host=h1", "total"]), "host=h1");
    }

    #[test]
    fn a_group_waits_for_related_open_incidents_and_the_window() {
        let mut c = Correlator::default();
        let b = burst();
        c.add(b[1].clone());
        let at = |m: i64| Timestamp::from_secs(T0 + m * 60);
        // Within the window: nothing yet.
        assert!(c.ready(at(22), &[]).is_empty());
        // Past it, but a related incident is still open: wait.
        assert!(c.ready(at(30), &[(at(21), "service=api,host=web-2")]).is_empty());
        // An unrelated open incident does not hold it back.
        assert_eq!(c.ready(at(30), &[(at(21), "service=db")]).len(), 1);
    }

    proptest! {
        /// Grouping does not depend on the order incidents close in, and state saved as JSON
        /// mid-stream gives the same incidents.
        #[test]
        fn order_and_resume_do_not_matter(
            raw in proptest::collection::vec((0i64..200, 1i64..20, 0usize..6, any::<bool>()), 1..30),
            perm in any::<u64>(),
        ) {
            let series = ["total", "service=api", "service=api,host=a", "service=api,host=b", "service=db", "service=db,host=c"];
            let mut incidents: Vec<Incident> = raw.iter().enumerate().map(|(k, &(from, len, s, crit))| {
                let sev = if crit { Severity::Critical } else { Severity::Warning };
                let metric = if k % 2 == 0 { "volume" } else { "error_rate" };
                inc(DetectorKind::Poisson, metric, series[s], from, from + len, sev)
            }).collect();
            incidents.sort_by_key(|i| (i.start, i.incident_id.clone()));
            incidents.dedup_by_key(|i| i.incident_id.clone());
            let want = run(incidents.clone());
            let mut shuffled = incidents.clone();
            let mut x = perm | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(&run(shuffled.clone()), &want);
            let mut c = Correlator::default();
            let half = shuffled.len() / 2;
            for i in &shuffled[..half] { c.add(i.clone()); }
            let mut c: Correlator = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
            for i in &shuffled[half..] { c.add(i.clone()); }
            let mut resumed = c.finish();
            resumed.sort_by_key(|i| (i.start, i.incident_id.clone()));
            prop_assert_eq!(resumed, want);
        }
    }
}
