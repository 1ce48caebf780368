//! One evaluation and delivery pass (`loglens alert run`): read incidents, metrics and templates,
//! match rules, advance each group's state, put new notifications in the outbox, then deliver
//! everything the outbox holds that is not final, and record each outcome in the history.
//!
//! Why enqueue before saving the group states and delivering? If the process dies after the
//! enqueue, the next run recomputes the same notifications with the same idempotency keys and finds
//! them already in the outbox; if it dies mid-delivery, the entry is still `sending` and is sent
//! again with the same key. Nothing is lost, and a receiver that honours the key sees it once.
//!
//! An entry that could not be delivered stays `pending` and later runs retry it (after a backoff)
//! until `give_up_after` from its queueing, when it expires with a warning and a history row. A run
//! holds the outbox lock from start to end, so two runs never deliver the same entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loglens_core::alert::{
    backoff_millis, group_key, idempotency_key, threshold_alerts, Condition, Decision, GroupAlert,
    GroupState, NotifyState, Silence,
};
use loglens_core::detect::IncidentRow;
use loglens_core::template::canonical_templates;
use loglens_core::Timestamp;
use loglens_store::{read_incidents, read_metric_points, read_templates, Dataset, StoreError};

use crate::config::{AlertConfig, Receiver, Rule};
use crate::deliver::{notifier, DeliveryError, Failure, Notifier};
use crate::history::{self, HistoryRow};
use crate::notification::{AlertView, Notification};
use crate::outbox::{Entry, LockBusy, Outbox, OutboxError, States, Status};
use crate::silences::{self, SilenceStoreError};

/// Anything that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A dataset could not be read, or the history written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbox could not be read or written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The silences file could not be read.
    #[error(transparent)]
    Silences(#[from] SilenceStoreError),
    /// `alert test` named a receiver that is not configured.
    #[error("no [[receiver]] named {0:?}")]
    UnknownReceiver(String),
    /// Another run held the outbox lock for the whole `lock_wait`.
    #[error(transparent)]
    Busy(#[from] LockBusy),
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The evaluation instant (default: the wall clock).
    pub now: Timestamp,
    /// Decide and print, but neither send, enqueue nor change group states.
    pub dry_run: bool,
}

/// What a run did, for the CLI to print.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    /// Notifications decided in this run, one per receiver (with dry-run, what would be sent).
    pub decided: Vec<Entry>,
    /// Final state of every entry this run attempted.
    pub attempted: Vec<Entry>,
    /// Incidents read.
    pub incidents: usize,
    /// Incidents that stopped firing before the late lookback: never notified by this run.
    pub too_old: usize,
    /// Pending entries left for a later run (their backoff is not over, or their receiver failed
    /// earlier in this run).
    pub deferred: usize,
    /// Final outbox entries older than `outbox_retention`, deleted.
    pub pruned: usize,
    /// Things the operator should know (expired notifications), one line each.
    pub warnings: Vec<String>,
    /// The history file written, if any.
    pub history: Option<PathBuf>,
}

impl RunReport {
    /// Entries delivered in this run.
    pub fn delivered(&self) -> usize {
        self.attempted
            .iter()
            .filter(|e| e.status == Status::Delivered)
            .count()
    }

    /// Entries that failed for good in this run.
    pub fn failed(&self) -> usize {
        self.count(Status::Failed)
    }

    /// Entries given up in this run because `give_up_after` passed.
    pub fn expired(&self) -> usize {
        self.count(Status::Expired)
    }

    /// Entries attempted in this run and left for a later run.
    pub fn retrying(&self) -> usize {
        self.count(Status::Pending)
    }

    /// Notifications marked late in this run.
    pub fn late(&self) -> usize {
        self.decided
            .iter()
            .filter(|e| e.notification.alerts.iter().any(|a| a.late))
            .count()
    }

    fn count(&self, status: Status) -> usize {
        self.attempted.iter().filter(|e| e.status == status).count()
    }
}

/// The wall clock, for history rows and the default `now`.
pub fn wall_clock() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

fn run_id() -> String {
    format!("{}-{}", wall_clock().0, std::process::id())
}

/// Evaluates every rule at `options.now` and delivers what is due.
pub fn run(config: &AlertConfig, options: &RunOptions) -> Result<RunReport, AlertError> {
    let data_dir = &options.data_dir;
    let outbox = Outbox::open(data_dir)?;
    let _lock = if options.dry_run {
        None
    } else {
        Some(outbox.lock(Duration::from_millis(config.settings.lock_wait_ms))??)
    };
    let mut states = outbox.load_states()?;
    let now = options.now;
    let incidents: Vec<IncidentRow> = read_incidents(&data_dir.join(Dataset::Incidents.dir_name()))?
        .into_iter()
        .filter(|i| i.incident.start <= now)
        .collect();
    let settings = &config.settings;
    let horizon = now.0 - (settings.resolve_after + settings.late_lookback) * 1_000_000;
    let mut silences = config.silences.clone();
    silences.extend(silences::load(data_dir)?);
    let mut report = RunReport {
        incidents: incidents.len(),
        too_old: incidents.iter().filter(|i| i.incident.end.0 < horizon).count(),
        ..RunReport::default()
    };
    let mut rows = Vec::new();
    let mut decided = Vec::new();
    for rule in &config.rules {
        let alerts = rule_alerts(config, rule, &incidents, data_dir, now)?;
        let rule_states = states.entry(rule.name.clone()).or_default();
        let ctx = RuleContext {
            config,
            rule,
            now,
            silences: &silences,
        };
        decided.extend(ctx.evaluate(&alerts, rule_states));
    }
    let fresh = |e: &Entry| !outbox.contains(&e.notification.key, &e.receiver);
    // The rate limits count the outbox, which delivery reads again: only when a run has new
    // notifications to budget.
    let sent = if decided.iter().any(|e| e.status == Status::Pending && fresh(e)) {
        Sent::from_outbox(&outbox.entries()?)
    } else {
        Sent::default()
    };
    for entry in fold_storms(config, now, decided, fresh, &sent) {
        if !options.dry_run && fresh(&entry) {
            match entry.status {
                Status::Silenced => rows.push(row(&entry, "silenced")),
                Status::Summarized => rows.push(row(&entry, "summarized")),
                _ => {}
            }
            outbox.put(&entry)?;
        }
        report.decided.push(entry);
    }
    if options.dry_run {
        return Ok(report);
    }
    outbox.save_states(&states)?;
    deliver_pending(config, &outbox, now, &mut report, &mut rows)?;
    let retention = settings.outbox_retention.saturating_mul(1_000_000);
    report.pruned = outbox.prune(|e| e.status.is_final() && e.queued_at < now.0.saturating_sub(retention))?;
    report.history = history::write(data_dir, &run_id(), &rows)?;
    Ok(report)
}

/// Folds a storm: when a run decides more new notifications for one receiver than its
/// `max_per_run` (or than its `rate_limit` still allows), the first `limit - 1` go as they are
/// and the rest go as one summary ("N more"), so a storm pages once rather than N times. When the
/// rate limit allows none, the summary (or the single notification) waits in the outbox until
/// the window has room. The folded entries are kept, final (`summarized`), so that nothing is
/// lost from the record or decided again.
fn fold_storms(
    config: &AlertConfig,
    now: Timestamp,
    decided: Vec<Entry>,
    fresh: impl Fn(&Entry) -> bool,
    sent: &Sent,
) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut folded: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let mut taken: BTreeMap<String, u32> = BTreeMap::new();
    let allowances: BTreeMap<&str, Allowance> = config
        .receivers
        .iter()
        .map(|r| (r.name.as_str(), sent.allowance(r, now)))
        .collect();
    let allowance = |receiver: &str| {
        allowances.get(receiver).copied().unwrap_or(Allowance {
            limit: u32::MAX,
            not_before: None,
        })
    };
    for entry in decided {
        if entry.status != Status::Pending || !fresh(&entry) {
            out.push(entry);
            continue;
        }
        let count = taken.entry(entry.receiver.clone()).or_default();
        if *count + 1 < allowance(&entry.receiver).limit {
            *count += 1;
            out.push(entry);
        } else {
            folded.entry(entry.receiver.clone()).or_default().push(entry);
        }
    }
    for (receiver, mut entries) in folded {
        let not_before = allowance(&receiver).not_before;
        let mut head = if entries.len() == 1 {
            entries.remove(0)
        } else {
            storm_summary(now, &receiver, &entries)
        };
        if let Some(at) = not_before {
            // Queued at its slot: the rate limit counts it there, give_up_after from there.
            head.queued_at = at;
            head.next_attempt_at = at;
        }
        out.push(head);
        out.extend(entries.into_iter().map(|mut e| {
            e.status = Status::Summarized;
            e
        }));
    }
    out
}

/// How many new notifications a receiver may get in this run (the last of them a storm summary
/// when more wait), and, when its rate limit allows none now, from when one may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allowance {
    limit: u32,
    not_before: Option<i64>,
}

/// When (queued_at, µs) each receiver's notifications went out or will, sorted: what its rate
/// limit counts. Folded and silenced entries are never sent, so they do not count.
#[derive(Debug, Default)]
struct Sent(BTreeMap<String, Vec<i64>>);

impl Sent {
    fn from_outbox(entries: &[Entry]) -> Sent {
        let mut by_receiver: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for e in entries {
            if !matches!(e.status, Status::Summarized | Status::Silenced) {
                by_receiver
                    .entry(e.receiver.clone())
                    .or_default()
                    .push(e.queued_at);
            }
        }
        by_receiver.values_mut().for_each(|slots| slots.sort_unstable());
        Sent(by_receiver)
    }

    fn allowance(&self, receiver: &Receiver, now: Timestamp) -> Allowance {
        let max_per_run = Allowance {
            limit: receiver.max_per_run,
            not_before: None,
        };
        let Some(rate) = receiver.rate_limit else {
            return max_per_run;
        };
        let window = rate.window_secs.saturating_mul(1_000_000);
        let slots = self.0.get(&receiver.name).map_or(&[][..], Vec::as_slice);
        // Slots in the window ending now, and those already deferred past now.
        let counted = &slots[slots.partition_point(|&t| t <= now.0 - window)..];
        let used = u32::try_from(counted.len()).unwrap_or(u32::MAX);
        if used < rate.count {
            return Allowance {
                limit: max_per_run.limit.min(rate.count - used),
                not_before: None,
            };
        }
        // One more fits once all but count - 1 of the counted slots have left the window.
        let oldest_kept = counted.len() - rate.count as usize;
        Allowance {
            limit: 0,
            not_before: Some(counted[oldest_kept].saturating_add(window)),
        }
    }
}

fn storm_summary(now: Timestamp, receiver: &str, entries: &[Entry]) -> Entry {
    let keys: Vec<&str> = entries.iter().map(|e| e.notification.key.as_str()).collect();
    let mut parts = vec!["storm", receiver];
    parts.extend(keys);
    let firing = entries.iter().any(|e| e.notification.state == "firing");
    let state = if firing { "firing" } else { "resolved" };
    let alerts = entries
        .iter()
        .flat_map(|e| e.notification.alerts.iter().cloned())
        .collect();
    let mut n = Notification::new(
        idempotency_key(&parts),
        "storm",
        state,
        BTreeMap::new(),
        "",
        now,
        alerts,
    );
    let first = entries
        .first()
        .map(|e| e.notification.subject.as_str())
        .unwrap_or_default();
    n.subject = format!(
        "[{}] storm: {} more notifications folded into this one: {first}",
        state.to_uppercase(),
        entries.len()
    );
    n.external_url = entries.first().and_then(|e| e.notification.external_url.clone());
    Entry {
        notification: n,
        receiver: receiver.to_owned(),
        receiver_kind: entries
            .first()
            .map(|e| e.receiver_kind.clone())
            .unwrap_or_default(),
        status: Status::Pending,
        attempts: 0,
        error: None,
        queued_at: now.0,
        next_attempt_at: now.0,
    }
}

/// The incidents a rule matches, whatever its kind.
fn rule_alerts(
    config: &AlertConfig,
    rule: &Rule,
    incidents: &[IncidentRow],
    data_dir: &Path,
    now: Timestamp,
) -> Result<Vec<IncidentRow>, AlertError> {
    let alerts = match &rule.condition {
        Condition::Incident { .. } | Condition::Regex(_) => rule.condition.select(incidents, &rule.matchers),
        Condition::Threshold { metric, .. } => {
            let read = read_metric_points(&data_dir.join(Dataset::Metrics.dir_name()), *metric)?;
            threshold_alerts(
                &read.points,
                read.bucket_secs,
                &rule.condition,
                &rule.matchers,
                rule.severity,
            )
        }
        Condition::NewTemplate(nt) => {
            let since = Timestamp(now.0 - config.settings.new_template_lookback * 1_000_000);
            let stored = read_templates(&data_dir.join(Dataset::Templates.dir_name()))?;
            nt.alerts(&canonical_templates(&stored), since, &rule.matchers)
        }
    };
    Ok(alerts.into_iter().filter(|a| a.incident.start <= now).collect())
}

struct RuleContext<'a> {
    config: &'a AlertConfig,
    rule: &'a Rule,
    now: Timestamp,
    silences: &'a [Silence],
}

struct Group<'a> {
    labels: BTreeMap<String, String>,
    alerts: Vec<&'a IncidentRow>,
}

impl RuleContext<'_> {
    /// Groups the alerts, steps every group (also those that had alerts before and have none now,
    /// so they resolve) and returns the outbox entries to add.
    fn evaluate(&self, alerts: &[IncidentRow], states: &mut BTreeMap<String, GroupState>) -> Vec<Entry> {
        let mut groups: BTreeMap<String, Group<'_>> = BTreeMap::new();
        for alert in alerts {
            let labels = alert.labels();
            let key = group_key(&labels, &self.rule.group_by);
            let group = groups.entry(key).or_insert_with(|| Group {
                labels: self
                    .rule
                    .group_by
                    .iter()
                    .map(|k| (k.clone(), labels.get(k).cloned().unwrap_or_default()))
                    .collect(),
                alerts: Vec::new(),
            });
            group.alerts.push(alert);
        }
        let keys: BTreeSet<String> = groups.keys().chain(states.keys()).cloned().collect();
        let mut entries = Vec::new();
        for key in keys {
            let group = groups.remove(&key).unwrap_or(Group {
                labels: BTreeMap::new(),
                alerts: Vec::new(),
            });
            let state = states.entry(key.clone()).or_default();
            entries.extend(self.step_group(&key, &group, state));
        }
        entries
    }

    fn step_group(&self, key: &str, group: &Group<'_>, state: &mut GroupState) -> Vec<Entry> {
        let alerts: Vec<GroupAlert> = group
            .alerts
            .iter()
            .map(|a| GroupAlert {
                id: a.id().to_owned(),
                start: a.incident.start,
                end: a.incident.end,
                silenced: self.silences.iter().any(|s| s.silences(&a.labels(), self.now)),
            })
            .collect();
        let outcome = state.advance(self.now, &alerts, &self.rule.policy);
        let mut entries = Vec::new();
        if let Some(decision) = &outcome.notify {
            let key_parts = [
                decision.state.as_str().to_owned(),
                decision.episode_start.0.to_string(),
                decision.episode.to_string(),
                decision.seq.to_string(),
            ];
            entries.extend(self.entries(key, group, decision, &key_parts, Status::Pending));
        }
        if !outcome.silenced.is_empty() {
            let ids: Vec<String> = outcome.silenced.iter().cloned().collect();
            let start = group
                .alerts
                .iter()
                .filter(|a| outcome.silenced.contains(a.id()))
                .map(|a| a.incident.start)
                .min()
                .unwrap_or(self.now);
            let decision = Decision {
                state: NotifyState::Firing,
                episode_start: start,
                episode: state.episode,
                seq: 0,
                alert_ids: outcome.silenced,
                late: Default::default(),
            };
            let key_parts = ["silenced".to_owned(), ids.join(",")];
            entries.extend(self.entries(key, group, &decision, &key_parts, Status::Silenced));
        }
        entries
    }

    fn entries(
        &self,
        key: &str,
        group: &Group<'_>,
        d: &Decision,
        key_parts: &[String],
        status: Status,
    ) -> Vec<Entry> {
        let mut parts: Vec<&str> = vec![&self.rule.name, key];
        parts.extend(key_parts.iter().map(String::as_str));
        let idem = idempotency_key(&parts);
        let views = group
            .alerts
            .iter()
            .filter(|a| d.alert_ids.contains(a.id()))
            .map(|a| AlertView {
                late: d.late.contains(a.id()),
                ..AlertView::of(a)
            })
            .collect();
        let mut n = Notification::new(
            idem,
            &self.rule.name,
            d.state.as_str(),
            group.labels.clone(),
            key,
            self.now,
            views,
        );
        let follows_first = d.state == NotifyState::Resolved || d.seq > 0;
        if status == Status::Pending && follows_first {
            let (start, episode) = (d.episode_start.0.to_string(), d.episode.to_string());
            let first = [self.rule.name.as_str(), key, "firing", &start, &episode, "0"];
            n.thread = Some(idempotency_key(&first));
        }
        n.external_url = self.config.settings.external_url.clone();
        self.rule
            .receivers
            .iter()
            .filter_map(|name| self.config.receivers.iter().find(|r| &r.name == name))
            .map(|r| Entry {
                notification: n.clone(),
                receiver: r.name.clone(),
                receiver_kind: r.kind().to_owned(),
                status,
                attempts: 0,
                error: None,
                queued_at: self.now.0,
                next_attempt_at: self.now.0,
            })
            .collect()
    }
}

fn row(entry: &Entry, result: &str) -> HistoryRow {
    let n = &entry.notification;
    HistoryRow {
        ts: wall_clock(),
        idempotency_key: n.key.clone(),
        rule: n.rule.clone(),
        receiver: entry.receiver.clone(),
        receiver_kind: entry.receiver_kind.clone(),
        group_key: n.group_key.clone(),
        state: n.state.clone(),
        incident_ids: n.incident_ids(),
        subject: n.subject.clone(),
        attempts: entry.attempts,
        result: result.to_owned(),
        error: entry.error.clone(),
    }
}

/// Receivers delivered to at once: one stalled receiver (timeouts, backoff sleeps) must not
/// hold back the others' notifications, nor may a storm open a connection per receiver.
const CONCURRENT_RECEIVERS: usize = 4;

/// Delivers every entry that is not final and is due (new ones, ones a crash left `pending` or
/// `sending`, ones earlier runs could not deliver), and expires those past `give_up_after`.
/// Receivers are served concurrently (at most [`CONCURRENT_RECEIVERS`] at once), each one's
/// entries in order; the report and history list them receiver by receiver.
fn deliver_pending(
    config: &AlertConfig,
    outbox: &Outbox,
    now: Timestamp,
    report: &mut RunReport,
    rows: &mut Vec<HistoryRow>,
) -> Result<(), AlertError> {
    let give_up_after = config.settings.give_up_after * 1_000_000;
    // Due entries per receiver, receivers in the order their first entry comes.
    let mut due: Vec<(&Receiver, Vec<Entry>)> = Vec::new();
    for mut entry in outbox.entries()?.into_iter().filter(|e| !e.status.is_final()) {
        if entry.queued_at == 0 {
            // Queued by a version that did not record it: count from now.
            entry.queued_at = now.0;
        }
        match config.receivers.iter().find(|r| r.name == entry.receiver) {
            None => {
                entry.status = Status::Failed;
                entry.error = Some(format!("receiver {:?} is no longer configured", entry.receiver));
                outbox.put(&entry)?;
                rows.push(row(&entry, "failed"));
                report.attempted.push(entry);
            }
            Some(_) if now.0 - entry.queued_at >= give_up_after => {
                entry.status = Status::Expired;
                outbox.put(&entry)?;
                rows.push(row(&entry, "expired"));
                let last = entry.error.as_deref().unwrap_or("never attempted");
                report.warnings.push(format!(
                    "gave up on {} {} -> {} after {} attempt(s) (give_up_after {}s): {last}",
                    entry.notification.state,
                    entry.notification.subject,
                    entry.receiver,
                    entry.attempts,
                    config.settings.give_up_after
                ));
                report.attempted.push(entry);
            }
            Some(_) if entry.next_attempt_at > now.0 => report.deferred += 1,
            Some(receiver) => match due.iter_mut().find(|(r, _)| r.name == receiver.name) {
                Some((_, entries)) => entries.push(entry),
                None => due.push((receiver, vec![entry])),
            },
        }
    }
    let queue = std::sync::Mutex::new(due.into_iter().enumerate().collect::<Vec<_>>());
    let next = || {
        queue
            .lock()
            .ok()
            .and_then(|mut q| (!q.is_empty()).then(|| q.remove(0)))
    };
    let workers = CONCURRENT_RECEIVERS.min(queue.lock().map_or(0, |q| q.len()));
    let mut served: Vec<(usize, Result<Served, AlertError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    while let Some((i, (receiver, entries))) = next() {
                        out.push((i, serve_receiver(config, receiver, outbox, entries, now)));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    served.sort_by_key(|(i, _)| *i);
    for (_, result) in served {
        let served = result?;
        report.attempted.extend(served.attempted);
        report.deferred += served.deferred;
        rows.extend(served.rows);
    }
    Ok(())
}

/// What delivering one receiver's due entries did.
#[derive(Default)]
struct Served {
    attempted: Vec<Entry>,
    deferred: usize,
    rows: Vec<HistoryRow>,
}

/// Delivers one receiver's due entries in order. Once one is left for a later run, so are the
/// rest: a receiver that is down would otherwise cost every entry `max_attempts` attempts and
/// their backoff sleeps, holding the lock all along.
fn serve_receiver(
    config: &AlertConfig,
    receiver: &Receiver,
    outbox: &Outbox,
    entries: Vec<Entry>,
    now: Timestamp,
) -> Result<Served, AlertError> {
    let mut served = Served::default();
    let mut down = false;
    for mut entry in entries {
        if down {
            served.deferred += 1;
            continue;
        }
        deliver(config, receiver, outbox, &mut entry, now, &mut served.rows)?;
        down = entry.status == Status::Pending;
        served.attempted.push(entry);
    }
    Ok(served)
}

/// Attempts one entry until delivered, refused for good, or out of this run's attempts (then a
/// later run retries it after a backoff), recording each step durably first.
pub fn deliver(
    config: &AlertConfig,
    receiver: &Receiver,
    outbox: &Outbox,
    entry: &mut Entry,
    now: Timestamp,
    rows: &mut Vec<HistoryRow>,
) -> Result<(), AlertError> {
    let sender: Result<Box<dyn Notifier>, DeliveryError> = notifier(receiver);
    let key_bits = entry
        .notification
        .key
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    let seed = config.settings.jitter_seed ^ key_bits.unwrap_or(0);
    let mut attempts_this_run = 0;
    loop {
        entry.status = Status::Sending;
        entry.attempts += 1;
        attempts_this_run += 1;
        outbox.put(entry)?;
        let result = sender
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| s.send(&entry.notification));
        let e = match result {
            Ok(()) => {
                entry.status = Status::Delivered;
                entry.error = None;
                outbox.put(entry)?;
                rows.push(row(entry, "delivered"));
                return Ok(());
            }
            Err(e) => e,
        };
        entry.error = Some(e.message);
        let delay = backoff_millis(config.settings.backoff, entry.attempts, seed);
        if e.failure == Failure::Permanent {
            entry.status = Status::Failed;
            outbox.put(entry)?;
            rows.push(row(entry, "failed"));
            return Ok(());
        }
        entry.status = Status::Pending;
        let later = e.failure == Failure::Setup || attempts_this_run >= receiver.max_attempts;
        if later {
            let delay_us = i64::try_from(delay).unwrap_or(i64::MAX).saturating_mul(1000);
            entry.next_attempt_at = now.0.saturating_add(delay_us);
        }
        outbox.put(entry)?;
        rows.push(row(entry, "retrying"));
        if later {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(delay));
    }
}

/// Sends a test notification to one receiver now (`loglens alert test`), recorded in the history.
pub fn send_test(config: &AlertConfig, data_dir: &Path, receiver_name: &str) -> Result<Entry, AlertError> {
    let receiver = config
        .receivers
        .iter()
        .find(|r| r.name == receiver_name)
        .ok_or_else(|| AlertError::UnknownReceiver(receiver_name.to_owned()))?;
    let now = wall_clock();
    let key = idempotency_key(&["test", receiver_name, &now.0.to_string()]);
    let sample = AlertView {
        id: "test".into(),
        start: now.to_rfc3339(),
        end: now.to_rfc3339(),
        detector: "test".into(),
        metric: "test".into(),
        series: "total".into(),
        labels: BTreeMap::from([("alertname".to_owned(), "loglens-test".to_owned())]),
        observed: 1.0,
        expected: 0.0,
        score: 0.0,
        severity: "info".into(),
        template: None,
        examples: vec!["this is a test notification from loglens".into()],
        root: None,
        related: Vec::new(),
        summary: "test notification from loglens".into(),
        late: false,
    };
    let n = Notification::new(key, "test", "test", BTreeMap::new(), "", now, vec![sample]);
    let outbox = Outbox::open(data_dir)?;
    let _lock = outbox.lock(Duration::from_millis(config.settings.lock_wait_ms))??;
    let mut entry = Entry {
        notification: n,
        receiver: receiver.name.clone(),
        receiver_kind: receiver.kind().to_owned(),
        status: Status::Pending,
        attempts: 0,
        error: None,
        queued_at: now.0,
        next_attempt_at: now.0,
    };
    let mut rows = Vec::new();
    deliver(config, receiver, &outbox, &mut entry, now, &mut rows)?;
    if entry.status == Status::Pending {
        // A test is answered now or never: later runs do not retry it.
        entry.status = Status::Failed;
        outbox.put(&entry)?;
    }
    history::write(data_dir, &run_id(), &rows)?;
    Ok(entry)
}

/// Outbox entries, for `loglens alert run` to summarize and tests to inspect.
pub fn outbox_entries(data_dir: &Path) -> Result<Vec<Entry>, AlertError> {
    Ok(Outbox::open(data_dir)?.entries()?)
}

/// Group states, by rule then group.
pub fn group_states(data_dir: &Path) -> Result<States, AlertError> {
    Ok(Outbox::open(data_dir)?.load_states()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Endpoint, HttpKind, RateLimit, Target};

    fn receiver(rate_limit: Option<RateLimit>) -> Receiver {
        Receiver {
            name: "hook".into(),
            target: Target::Http {
                kind: HttpKind::Webhook,
                url: Endpoint::Literal("http://127.0.0.1:9/".into()),
                headers: BTreeMap::new(),
                headers_env: BTreeMap::new(),
            },
            timeout_ms: 1000,
            max_attempts: 1,
            max_per_run: 20,
            rate_limit,
            ca_file: None,
        }
    }

    #[test]
    fn allowance_counts_the_sliding_window_and_deferred_slots() {
        const MIN: i64 = 60_000_000;
        let rate = Some(RateLimit {
            count: 3,
            window_secs: 3600,
        });
        let sent = |slots: &[i64]| Sent([("hook".to_owned(), slots.to_vec())].into_iter().collect());
        let at = |minutes: i64| Timestamp(minutes * MIN);
        let allow = |limit, not_before| Allowance { limit, not_before };
        let r = receiver(rate);
        assert_eq!(sent(&[]).allowance(&r, at(0)), allow(3, None));
        assert_eq!(sent(&[5 * MIN]).allowance(&r, at(10)), allow(2, None));
        // Full: one more fits when the oldest of the three leaves the window.
        assert_eq!(
            sent(&[5 * MIN, 5 * MIN, 15 * MIN]).allowance(&r, at(25)),
            allow(0, Some(65 * MIN))
        );
        assert_eq!(
            sent(&[5 * MIN, 5 * MIN, 15 * MIN]).allowance(&r, at(65)),
            allow(2, None)
        );
        // A deferred notification (slot in the future) counts too: at 65 the window (5, 65]
        // holds 15 and 65, room for one more.
        let full = [5 * MIN, 5 * MIN, 15 * MIN, 65 * MIN];
        assert_eq!(sent(&full).allowance(&r, at(30)), allow(0, Some(65 * MIN)));
        let fuller = [5 * MIN, 5 * MIN, 15 * MIN, 65 * MIN, 65 * MIN];
        assert_eq!(sent(&fuller).allowance(&r, at(30)), allow(0, Some(75 * MIN)));
        // max_per_run still caps a run; no rate limit leaves only it.
        assert_eq!(sent(&[]).allowance(&receiver(None), at(0)), allow(20, None));
    }
}
