//! Grouping and the notification state machine of one group: wait before the first notification
//! so a burst arrives as one, send updates when new alerts join, repeat while firing, announce the
//! resolution, and hold back a re-fire for a cooldown so a flapping series does not page on each flap.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::Timestamp;

const MICROS: i64 = 1_000_000;

/// The key of the group an alert belongs to: its values of the `group_by` labels, `key=value`
/// joined by `,` in the order given (a missing label is empty); `""` when `group_by` is empty.
pub fn group_key(labels: &BTreeMap<String, String>, group_by: &[String]) -> String {
    group_by
        .iter()
        .map(|k| format!("{k}={}", labels.get(k).map_or("", String::as_str)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Timing of a rule's notifications, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPolicy {
    /// Wait after a group's first alert started before notifying, to collect the burst.
    pub group_wait: i64,
    /// Minimum gap before an update when new alerts join a firing group.
    pub group_interval: i64,
    /// Resend while still firing after this long.
    pub repeat_interval: i64,
    /// After a resolved notification, a new firing of the group waits at least this long.
    pub cooldown: i64,
    /// Send a notification when the group stops firing.
    pub send_resolved: bool,
}

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyState {
    /// Alerts of the group are active.
    Firing,
    /// The group's alerts all ended.
    Resolved,
}

impl NotifyState {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyState::Firing => "firing",
            NotifyState::Resolved => "resolved",
        }
    }
}

/// A decision to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Firing or resolved.
    pub state: NotifyState,
    /// Start of the firing episode (earliest alert start): part of the idempotency key.
    pub episode_start: Timestamp,
    /// Notifications sent before this one in the episode (0 = first firing).
    pub seq: u32,
    /// Alert ids the notification is about (for resolved: those last notified as firing).
    pub alert_ids: BTreeSet<String>,
}

/// What is remembered of a group between runs (kept as JSON by `loglens-alert`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// The last state notified (or decided, when resolved notifications are off).
    pub state: Option<NotifyState>,
    /// When (µs) the last notification was decided.
    pub last_notified: i64,
    /// Alert ids in the last firing notification.
    pub notified: BTreeSet<String>,
    /// Start (µs) of the current or last firing episode.
    pub episode_start: i64,
    /// Notifications decided in the current episode.
    pub seq: u32,
}

impl GroupState {
    /// Advances the group to `now`, given its active alerts (id → start), and says whether to notify.
    pub fn step(
        &mut self,
        now: Timestamp,
        active: &BTreeMap<String, Timestamp>,
        policy: &GroupPolicy,
    ) -> Option<Decision> {
        let since_last = now.0 - self.last_notified;
        match (self.state, active.is_empty()) {
            (Some(NotifyState::Firing), true) => self.resolve(now, policy),
            (Some(NotifyState::Firing), false) => {
                let joined = active.keys().any(|id| !self.notified.contains(id));
                let update = joined && since_last >= policy.group_interval * MICROS;
                let repeat = since_last >= policy.repeat_interval * MICROS;
                (update || repeat).then(|| self.fire(now, active, self.seq + 1))
            }
            (_, true) => None,
            (state, false) => {
                let cooling = state == Some(NotifyState::Resolved) && since_last < policy.cooldown * MICROS;
                let first_start = active.values().min().copied().unwrap_or(now);
                let waited = now.0 - first_start.0 >= policy.group_wait * MICROS;
                if cooling || !waited {
                    return None;
                }
                self.episode_start = first_start.0;
                Some(self.fire(now, active, 0))
            }
        }
    }

    fn fire(&mut self, now: Timestamp, active: &BTreeMap<String, Timestamp>, seq: u32) -> Decision {
        self.state = Some(NotifyState::Firing);
        self.last_notified = now.0;
        self.notified = active.keys().cloned().collect();
        self.seq = seq;
        Decision {
            state: NotifyState::Firing,
            episode_start: Timestamp(self.episode_start),
            seq,
            alert_ids: self.notified.clone(),
        }
    }

    fn resolve(&mut self, now: Timestamp, policy: &GroupPolicy) -> Option<Decision> {
        self.state = Some(NotifyState::Resolved);
        self.last_notified = now.0;
        self.seq += 1;
        let ids = std::mem::take(&mut self.notified);
        policy.send_resolved.then_some(Decision {
            state: NotifyState::Resolved,
            episode_start: Timestamp(self.episode_start),
            seq: self.seq,
            alert_ids: ids,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const POLICY: GroupPolicy = GroupPolicy {
        group_wait: 30,
        group_interval: 300,
        repeat_interval: 3600,
        cooldown: 600,
        send_resolved: true,
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    fn active(ids: &[(&str, i64)]) -> BTreeMap<String, Timestamp> {
        ids.iter().map(|(id, s)| (id.to_string(), at(*s))).collect()
    }

    #[test]
    fn waits_then_fires_once_then_repeats() {
        let mut g = GroupState::default();
        let a = active(&[("a", 1000)]);
        assert_eq!(g.step(at(1010), &a, &POLICY), None, "group wait not over");
        let first = g.step(at(1030), &a, &POLICY).unwrap();
        assert_eq!(
            (first.state, first.seq, first.episode_start),
            (NotifyState::Firing, 0, at(1000))
        );
        assert_eq!(
            g.step(at(1100), &a, &POLICY),
            None,
            "no duplicate while nothing changed"
        );
        let repeat = g.step(at(1030 + 3600), &a, &POLICY).unwrap();
        assert_eq!((repeat.state, repeat.seq), (NotifyState::Firing, 1));
    }

    #[test]
    fn new_alert_sends_update_after_group_interval() {
        let mut g = GroupState::default();
        g.step(at(1030), &active(&[("a", 1000)]), &POLICY).unwrap();
        let both = active(&[("a", 1000), ("b", 1100)]);
        assert_eq!(g.step(at(1200), &both, &POLICY), None, "group interval not over");
        let update = g.step(at(1330), &both, &POLICY).unwrap();
        assert_eq!(update.alert_ids.len(), 2);
        assert_eq!(update.seq, 1);
        assert_eq!(update.episode_start, at(1000), "same episode");
    }

    #[test]
    fn resolves_then_cooldown_holds_a_refire() {
        let mut g = GroupState::default();
        g.step(at(1030), &active(&[("a", 1000)]), &POLICY).unwrap();
        let resolved = g.step(at(2000), &BTreeMap::new(), &POLICY).unwrap();
        assert_eq!(resolved.state, NotifyState::Resolved);
        assert_eq!(resolved.alert_ids.iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(g.step(at(2100), &BTreeMap::new(), &POLICY), None, "resolved once");
        let again = active(&[("c", 2100)]);
        assert_eq!(g.step(at(2200), &again, &POLICY), None, "cooldown");
        let refire = g.step(at(2600), &again, &POLICY).unwrap();
        assert_eq!(
            (refire.state, refire.seq, refire.episode_start),
            (NotifyState::Firing, 0, at(2100))
        );
    }

    #[test]
    fn resolved_is_silent_when_disabled() {
        let policy = GroupPolicy {
            send_resolved: false,
            ..POLICY
        };
        let mut g = GroupState::default();
        g.step(at(1030), &active(&[("a", 1000)]), &policy).unwrap();
        assert_eq!(g.step(at(2000), &BTreeMap::new(), &policy), None);
        assert_eq!(g.state, Some(NotifyState::Resolved));
    }

    #[test]
    fn group_key_orders_by_group_by() {
        let labels: BTreeMap<String, String> = [("service", "api"), ("host", "w1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            group_key(&labels, &["service".into(), "host".into()]),
            "service=api,host=w1"
        );
        assert_eq!(group_key(&labels, &["level".into()]), "level=");
        assert_eq!(group_key(&labels, &[]), "");
    }
}
