//! Grouping and the notification state machine of one group: wait before the first notification
//! so a burst arrives as one, send updates when new alerts join, repeat while firing, announce the
//! resolution, and hold back a re-fire for a cooldown so a flapping series does not page on each flap.
//!
//! Silences and late incidents are part of the machine, so that every episode is notified once
//! firing and once resolved, whatever the timing of runs: a silence holds a firing group (it never
//! resolves it), and its end re-fires the group under a new key; an incident that began and ended
//! between two runs is still notified (marked late) while it ended within the late lookback.

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
    /// An alert still counts as firing this long after its end.
    pub resolve_after: i64,
    /// An alert that was never notified is still notified (marked late) if it stopped firing at
    /// most this long ago; older ones are only counted.
    pub late_lookback: i64,
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
    /// Which episode of the group (counts from 1): part of the idempotency key, so two episodes
    /// that start at the same instant still get distinct keys.
    pub episode: u32,
    /// Notifications sent before this one in the episode (0 = first firing).
    pub seq: u32,
    /// Alert ids the notification is about (for resolved: those last notified as firing).
    pub alert_ids: BTreeSet<String>,
    /// The ids among `alert_ids` that had stopped firing before this run (notified late).
    pub late: BTreeSet<String>,
}

/// One alert of a group as one evaluation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAlert {
    /// Stable id.
    pub id: String,
    /// Start.
    pub start: Timestamp,
    /// End (the alert counts as firing until `end + resolve_after`).
    pub end: Timestamp,
    /// Whether a silence matches it at `now`.
    pub silenced: bool,
}

impl GroupAlert {
    fn until(&self, policy: &GroupPolicy) -> i64 {
        self.end
            .0
            .saturating_add(policy.resolve_after.saturating_mul(MICROS))
    }
}

/// What one evaluation of a group decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The notification to send, if any.
    pub notify: Option<Decision>,
    /// Live alerts that a silence holds and that were not handled before: recorded, not sent.
    pub silenced: BTreeSet<String>,
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
    /// Episodes started so far.
    #[serde(default)]
    pub episode: u32,
    /// Firing, but every live alert is silenced: held (not resolved) until the silence ends.
    #[serde(default)]
    pub held: bool,
    /// Alerts already handled (notified firing, or recorded as silenced) → their end (µs), so a
    /// late alert is notified once; forgotten once they are past the late lookback.
    #[serde(default)]
    pub seen: BTreeMap<String, i64>,
}

impl GroupState {
    /// Advances the group to `now` given all its alerts (ended ones included), and says what to do.
    pub fn advance(&mut self, now: Timestamp, alerts: &[GroupAlert], policy: &GroupPolicy) -> Outcome {
        let horizon = now.0.saturating_sub(policy.late_lookback.saturating_mul(MICROS));
        self.seen.retain(|_, until| *until >= horizon);
        let live = alerts.iter().filter(|a| {
            let until = a.until(policy);
            a.start <= now && (now.0 < until || (until >= horizon && !self.seen.contains_key(&a.id)))
        });
        let (silenced, active): (Vec<&GroupAlert>, Vec<&GroupAlert>) = live.partition(|a| a.silenced);
        let active_ids: BTreeMap<String, Timestamp> =
            active.iter().map(|a| (a.id.clone(), a.start)).collect();
        let mut notify = self.step(now, &active_ids, !silenced.is_empty(), policy);
        if let Some(d) = notify.as_mut().filter(|d| d.state == NotifyState::Firing) {
            d.late = active
                .iter()
                .filter(|a| now.0 >= a.until(policy))
                .map(|a| a.id.clone())
                .collect();
            for a in &active {
                self.seen.insert(a.id.clone(), a.until(policy));
            }
        }
        let mut newly_silenced = BTreeSet::new();
        for a in &silenced {
            if self.seen.insert(a.id.clone(), a.until(policy)).is_none() {
                newly_silenced.insert(a.id.clone());
            }
        }
        Outcome {
            notify,
            silenced: newly_silenced,
        }
    }

    /// The state machine proper, over the live alerts that are not silenced (id → start).
    fn step(
        &mut self,
        now: Timestamp,
        active: &BTreeMap<String, Timestamp>,
        any_silenced: bool,
        policy: &GroupPolicy,
    ) -> Option<Decision> {
        let since_last = now.0 - self.last_notified;
        match (self.state, active.is_empty()) {
            (Some(NotifyState::Firing), true) if any_silenced => {
                // Why hold? The alerts still fire; a silence only mutes them. Resolving here would
                // announce a recovery that did not happen.
                self.held = true;
                None
            }
            (Some(NotifyState::Firing), true) => self.resolve(now, policy),
            (Some(NotifyState::Firing), false) => {
                let joined = active.keys().any(|id| !self.notified.contains(id));
                let update = joined && since_last >= policy.group_interval * MICROS;
                let repeat = since_last >= policy.repeat_interval * MICROS;
                let unheld = std::mem::take(&mut self.held);
                (update || repeat || unheld).then(|| self.fire(now, active, self.seq + 1))
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
                self.episode += 1;
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
            episode: self.episode,
            seq,
            alert_ids: self.notified.clone(),
            late: BTreeSet::new(),
        }
    }

    fn resolve(&mut self, now: Timestamp, policy: &GroupPolicy) -> Option<Decision> {
        self.state = Some(NotifyState::Resolved);
        self.last_notified = now.0;
        self.seq += 1;
        self.held = false;
        let ids = std::mem::take(&mut self.notified);
        policy.send_resolved.then_some(Decision {
            state: NotifyState::Resolved,
            episode_start: Timestamp(self.episode_start),
            episode: self.episode,
            seq: self.seq,
            alert_ids: ids,
            late: BTreeSet::new(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: GroupPolicy = GroupPolicy {
        group_wait: 30,
        group_interval: 300,
        repeat_interval: 3600,
        cooldown: 600,
        send_resolved: true,
        resolve_after: 0,
        late_lookback: 86_400,
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    /// Alerts `(id, start, end)` in seconds; `end` far away means still going.
    fn alerts(ids: &[(&str, i64, i64)]) -> Vec<GroupAlert> {
        ids.iter()
            .map(|(id, s, e)| GroupAlert {
                id: id.to_string(),
                start: at(*s),
                end: at(*e),
                silenced: false,
            })
            .collect()
    }

    fn silenced(mut a: Vec<GroupAlert>) -> Vec<GroupAlert> {
        a.iter_mut().for_each(|a| a.silenced = true);
        a
    }

    fn notify(outcome: Outcome) -> Decision {
        match outcome.notify {
            Some(d) => d,
            None => panic!("expected a notification, got {outcome:?}"),
        }
    }

    const NOTHING: Outcome = Outcome {
        notify: None,
        silenced: BTreeSet::new(),
    };

    const OPEN: i64 = 1_000_000;

    #[test]
    fn waits_then_fires_once_then_repeats() {
        let mut g = GroupState::default();
        let a = alerts(&[("a", 1000, OPEN)]);
        assert_eq!(g.advance(at(1010), &a, &POLICY), NOTHING, "group wait not over");
        let first = notify(g.advance(at(1030), &a, &POLICY));
        assert_eq!(
            (first.state, first.seq, first.episode, first.episode_start),
            (NotifyState::Firing, 0, 1, at(1000))
        );
        assert_eq!(g.advance(at(1100), &a, &POLICY), NOTHING, "no duplicate");
        let repeat = notify(g.advance(at(1030 + 3600), &a, &POLICY));
        assert_eq!((repeat.state, repeat.seq), (NotifyState::Firing, 1));
    }

    #[test]
    fn new_alert_sends_update_after_group_interval() {
        let mut g = GroupState::default();
        notify(g.advance(at(1030), &alerts(&[("a", 1000, OPEN)]), &POLICY));
        let both = alerts(&[("a", 1000, OPEN), ("b", 1100, OPEN)]);
        assert_eq!(g.advance(at(1200), &both, &POLICY), NOTHING, "group interval");
        let update = notify(g.advance(at(1330), &both, &POLICY));
        assert_eq!(update.alert_ids.len(), 2);
        assert_eq!((update.seq, update.episode_start), (1, at(1000)), "same episode");
    }

    #[test]
    fn resolves_then_cooldown_holds_a_refire() {
        let mut g = GroupState::default();
        notify(g.advance(at(1030), &alerts(&[("a", 1000, 1500)]), &POLICY));
        let ended = alerts(&[("a", 1000, 1500)]);
        let resolved = notify(g.advance(at(2000), &ended, &POLICY));
        assert_eq!(resolved.state, NotifyState::Resolved);
        assert_eq!(resolved.alert_ids.iter().collect::<Vec<_>>(), ["a"]);
        assert_eq!(g.advance(at(2100), &ended, &POLICY), NOTHING, "resolved once");
        let again = alerts(&[("a", 1000, 1500), ("c", 2100, OPEN)]);
        assert_eq!(g.advance(at(2200), &again, &POLICY), NOTHING, "cooldown");
        let refire = notify(g.advance(at(2600), &again, &POLICY));
        assert_eq!(
            (refire.state, refire.seq, refire.episode, refire.episode_start),
            (NotifyState::Firing, 0, 2, at(2100))
        );
    }

    #[test]
    fn resolved_is_silent_when_disabled() {
        let policy = GroupPolicy {
            send_resolved: false,
            ..POLICY
        };
        let mut g = GroupState::default();
        notify(g.advance(at(1030), &alerts(&[("a", 1000, 1500)]), &policy));
        assert_eq!(
            g.advance(at(2000), &alerts(&[("a", 1000, 1500)]), &policy),
            NOTHING
        );
        assert_eq!(g.state, Some(NotifyState::Resolved));
    }

    #[test]
    fn silence_holds_a_firing_group_and_its_end_refires_with_a_new_key() {
        let mut g = GroupState::default();
        let a = alerts(&[("a", 1000, OPEN)]);
        let first = notify(g.advance(at(1030), &a, &POLICY));
        assert_eq!(
            g.advance(at(1100), &silenced(a.clone()), &POLICY),
            NOTHING,
            "no false resolved"
        );
        assert_eq!(g.state, Some(NotifyState::Firing));
        let refire = notify(g.advance(at(1200), &a, &POLICY));
        assert_eq!(refire.state, NotifyState::Firing);
        assert_ne!(
            (refire.episode, refire.seq),
            (first.episode, first.seq),
            "a new key"
        );
        assert_eq!(g.advance(at(1300), &a, &POLICY), NOTHING);
    }

    #[test]
    fn an_alert_silenced_from_the_start_is_recorded_not_sent() {
        let mut g = GroupState::default();
        let a = silenced(alerts(&[("a", 1000, 1500)]));
        let ids = BTreeSet::from(["a".to_owned()]);
        assert_eq!(
            g.advance(at(1100), &a, &POLICY),
            Outcome {
                notify: None,
                silenced: ids
            }
        );
        assert_eq!(g.advance(at(1200), &a, &POLICY), NOTHING, "recorded once");
        // It ended under the silence: never notified later.
        let after = alerts(&[("a", 1000, 1500)]);
        assert_eq!(g.advance(at(2000), &after, &POLICY), NOTHING);
        assert_eq!(g.state, None);
    }

    #[test]
    fn a_late_alert_is_notified_once_marked_late_then_resolved() {
        let mut g = GroupState::default();
        let a = alerts(&[("a", 1000, 1100)]);
        let late = notify(g.advance(at(5000), &a, &POLICY));
        assert_eq!((late.state, late.late.len()), (NotifyState::Firing, 1));
        let resolved = notify(g.advance(at(5060), &a, &POLICY));
        assert_eq!(resolved.state, NotifyState::Resolved);
        assert_eq!(g.advance(at(9000), &a, &POLICY), NOTHING);
        // Past the lookback it is not notified at all.
        let mut fresh = GroupState::default();
        assert_eq!(fresh.advance(at(1100 + 86_401), &a, &POLICY), NOTHING);
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

    /// A random history of one group: incidents `(start, duration)`, silences `(start, length,
    /// which incidents)`, and run instants, all in minutes.
    #[derive(Debug, Clone)]
    struct History {
        incidents: Vec<(i64, i64)>,
        silences: Vec<(i64, i64, u8)>,
        runs: Vec<i64>,
        policy: GroupPolicy,
    }

    fn history() -> impl Strategy<Value = History> {
        let policy =
            (0i64..4, 0i64..6, 1i64..30, 0i64..6, 0i64..3).prop_map(|(w, i, r, c, ra)| GroupPolicy {
                group_wait: w * 60,
                group_interval: i * 60,
                repeat_interval: r * 60,
                cooldown: c * 60,
                send_resolved: true,
                resolve_after: ra * 60,
                late_lookback: 1_000_000,
            });
        (
            prop::collection::vec((0i64..120, 0i64..30), 0..8),
            prop::collection::vec((0i64..140, 1i64..40, any::<u8>()), 0..4),
            prop::collection::vec(0i64..160, 0..60),
            policy,
        )
            .prop_map(|(incidents, silences, mut runs, policy)| {
                runs.sort_unstable();
                History {
                    incidents,
                    silences,
                    runs,
                    policy,
                }
            })
    }

    proptest! {
        /// Each episode is notified once firing (seq 0) and once resolved, in that order, under
        /// keys never used twice; every incident is notified firing or recorded as silenced; an
        /// incident belongs to one episode only.
        #[test]
        fn every_episode_fires_once_and_resolves_once(h in history()) {
            let mut g = GroupState::default();
            let mut keys = BTreeSet::new();
            let mut fired_in: BTreeMap<String, u32> = BTreeMap::new();
            let mut recorded: BTreeSet<String> = BTreeSet::new();
            let mut open_episode: Option<u32> = None;
            // Two final runs after everything ended and every silence, within the lookback.
            let finals = [1_000, 1_000 + 60];
            for (n, &minute) in h.runs.iter().chain(&finals).enumerate() {
                let now = at(minute * 60);
                let list: Vec<GroupAlert> = h.incidents.iter().enumerate().map(|(i, &(s, d))| GroupAlert {
                    id: format!("i{i}"),
                    start: at(s * 60),
                    end: at((s + d) * 60),
                    silenced: h.silences.iter().any(|&(ss, len, mask)| {
                        mask & (1 << (i % 8)) != 0 && ss <= minute && minute < ss + len
                    }),
                }).collect();
                let outcome = g.advance(now, &list, &h.policy);
                recorded.extend(outcome.silenced);
                if let Some(d) = outcome.notify {
                    {
                        let key = (d.state.as_str(), d.episode_start, d.episode, d.seq);
                        prop_assert!(keys.insert(key), "run {n}: key used twice: {d:?}");
                        match d.state {
                            NotifyState::Firing if d.seq == 0 => {
                                prop_assert_eq!(open_episode, None, "fired while an episode is open");
                                open_episode = Some(d.episode);
                            }
                            NotifyState::Firing => prop_assert_eq!(open_episode, Some(d.episode)),
                            NotifyState::Resolved => {
                                prop_assert_eq!(open_episode, Some(d.episode), "resolved without firing");
                                let still_firing = list.iter().filter(|a| d.alert_ids.contains(&a.id)).find(|a| {
                                    now.0 < a.until(&h.policy)
                                });
                                prop_assert!(still_firing.is_none(), "false resolved: {:?}", still_firing);
                                open_episode = None;
                            }
                        }
                        if d.state == NotifyState::Firing {
                            prop_assert!(!d.alert_ids.is_empty());
                            for id in &d.alert_ids {
                                let episode = *fired_in.entry(id.clone()).or_insert(d.episode);
                                prop_assert_eq!(episode, d.episode, "{} in two episodes", id);
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(open_episode, None, "the last episode was never resolved");
            for i in 0..h.incidents.len() {
                let id = format!("i{i}");
                prop_assert!(
                    fired_in.contains_key(&id) || recorded.contains(&id),
                    "{} was lost", id
                );
            }
        }
    }
}
