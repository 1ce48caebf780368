//! One evaluation and delivery pass (`loglens alert run`): read incidents, metrics and templates,
//! match rules, advance each group's state, put new notifications in the outbox, then deliver
//! everything the outbox holds that is not final, and record each outcome in the history.
//!
//! Why enqueue before saving the group states and delivering? If the process dies after the
//! enqueue, the next run recomputes the same notifications with the same idempotency keys and finds
//! them already in the outbox; if it dies mid-delivery, the entry is still `sending` and is sent
//! again with the same key. Nothing is lost, and a receiver that honours the key sees it once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loglens_core::alert::{
    backoff_millis, group_key, idempotency_key, threshold_alerts, Condition, Decision, GroupState, Incident,
    Silence,
};
use loglens_core::Timestamp;

use crate::config::{AlertConfig, Receiver, Rule};
use crate::datasets::{read_incidents, read_metric, read_templates, DatasetError};
use crate::deliver::{notifier, DeliveryError, Notifier};
use crate::history::{self, HistoryError, HistoryRow};
use crate::notification::{AlertView, Notification};
use crate::outbox::{Entry, Outbox, OutboxError, States, Status};
use crate::silences::{self, SilenceStoreError};

/// Anything that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A dataset could not be read.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The outbox could not be read or written.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The history could not be written.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The silences file could not be read.
    #[error(transparent)]
    Silences(#[from] SilenceStoreError),
    /// `alert test` named a receiver that is not configured.
    #[error("no [[receiver]] named {0:?}")]
    UnknownReceiver(String),
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
        self.attempted
            .iter()
            .filter(|e| e.status == Status::Failed)
            .count()
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
    let mut states = outbox.load_states()?;
    let now = options.now;
    let incidents: Vec<Incident> = read_incidents(data_dir)?
        .into_iter()
        .filter(|i| i.start <= now)
        .collect();
    let mut silences = config.silences.clone();
    silences.extend(silences::load(data_dir)?);
    let mut report = RunReport {
        incidents: incidents.len(),
        ..RunReport::default()
    };
    let mut rows = Vec::new();
    for rule in &config.rules {
        let alerts = rule_alerts(config, rule, &incidents, data_dir, now)?;
        let rule_states = states.entry(rule.name.clone()).or_default();
        let ctx = RuleContext {
            config,
            rule,
            now,
            silences: &silences,
        };
        for entry in ctx.evaluate(&alerts, rule_states) {
            if options.dry_run {
                rows.push(row(&entry, "dry_run"));
            } else if !outbox.contains(&entry.notification.key, &entry.receiver) {
                if entry.status == Status::Silenced {
                    rows.push(row(&entry, "silenced"));
                }
                outbox.put(&entry)?;
            }
            report.decided.push(entry);
        }
    }
    if !options.dry_run {
        outbox.save_states(&states)?;
        deliver_pending(config, &outbox, &mut report, &mut rows)?;
    }
    report.history = history::write(data_dir, &run_id(), &rows)?;
    Ok(report)
}

/// The incidents a rule matches, whatever its kind.
fn rule_alerts(
    config: &AlertConfig,
    rule: &Rule,
    incidents: &[Incident],
    data_dir: &Path,
    now: Timestamp,
) -> Result<Vec<Incident>, AlertError> {
    let alerts = match &rule.condition {
        Condition::Incident { .. } | Condition::Regex(_) => rule.condition.select(incidents, &rule.matchers),
        Condition::Threshold { metric, .. } => {
            let points = read_metric(data_dir, metric)?;
            threshold_alerts(&points, &rule.condition, &rule.matchers, rule.severity)
        }
        Condition::NewTemplate(nt) => {
            let since = Timestamp(now.0 - config.settings.new_template_lookback * 1_000_000);
            nt.alerts(&read_templates(data_dir)?, since, &rule.matchers)
        }
    };
    Ok(alerts.into_iter().filter(|a| a.start <= now).collect())
}

struct RuleContext<'a> {
    config: &'a AlertConfig,
    rule: &'a Rule,
    now: Timestamp,
    silences: &'a [Silence],
}

struct Group<'a> {
    labels: BTreeMap<String, String>,
    alerts: Vec<&'a Incident>,
}

impl RuleContext<'_> {
    /// Groups the alerts, steps every group (also those that had alerts before and have none now,
    /// so they resolve) and returns the outbox entries to add.
    fn evaluate(&self, alerts: &[Incident], states: &mut BTreeMap<String, GroupState>) -> Vec<Entry> {
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
        let resolve_after = self.config.settings.resolve_after;
        let live: Vec<&Incident> = group
            .alerts
            .iter()
            .copied()
            .filter(|a| a.active_at(self.now, resolve_after))
            .collect();
        let (silenced, active): (Vec<&Incident>, Vec<&Incident>) = live
            .into_iter()
            .partition(|a| self.silences.iter().any(|s| s.silences(&a.labels(), self.now)));
        let active_ids: BTreeMap<String, Timestamp> =
            active.iter().map(|a| (a.id.clone(), a.start)).collect();
        match state.step(self.now, &active_ids, &self.rule.policy) {
            Some(decision) => self.entries(key, group, &decision, Status::Pending),
            None if state.state.is_none() && !silenced.is_empty() => {
                let start = silenced.iter().map(|a| a.start).min().unwrap_or(self.now);
                let decision = Decision {
                    state: loglens_core::alert::NotifyState::Firing,
                    episode_start: start,
                    seq: u32::MAX,
                    alert_ids: silenced.iter().map(|a| a.id.clone()).collect(),
                };
                self.entries(key, group, &decision, Status::Silenced)
            }
            None => Vec::new(),
        }
    }

    fn entries(&self, key: &str, group: &Group<'_>, d: &Decision, status: Status) -> Vec<Entry> {
        let state = if status == Status::Silenced {
            "silenced"
        } else {
            d.state.as_str()
        };
        let idem = idempotency_key(&[
            &self.rule.name,
            key,
            state,
            &d.episode_start.0.to_string(),
            &d.seq.to_string(),
        ]);
        let views = group
            .alerts
            .iter()
            .filter(|a| d.alert_ids.contains(&a.id))
            .map(|a| AlertView::of(a))
            .collect();
        let n = Notification::new(
            idem,
            &self.rule.name,
            d.state.as_str(),
            group.labels.clone(),
            key,
            self.now,
            views,
        );
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

/// Delivers every entry that is not final (new ones, and ones a crash left `pending`/`sending`).
fn deliver_pending(
    config: &AlertConfig,
    outbox: &Outbox,
    report: &mut RunReport,
    rows: &mut Vec<HistoryRow>,
) -> Result<(), AlertError> {
    for mut entry in outbox.entries()?.into_iter().filter(|e| !e.status.is_final()) {
        match config.receivers.iter().find(|r| r.name == entry.receiver) {
            Some(receiver) => deliver(config, receiver, outbox, &mut entry, rows)?,
            None => {
                entry.status = Status::Failed;
                entry.error = Some(format!("receiver {:?} is no longer configured", entry.receiver));
                outbox.put(&entry)?;
                rows.push(row(&entry, "failed"));
            }
        }
        report.attempted.push(entry);
    }
    Ok(())
}

/// Attempts one entry until delivered or out of attempts, recording each step durably first.
pub fn deliver(
    config: &AlertConfig,
    receiver: &Receiver,
    outbox: &Outbox,
    entry: &mut Entry,
    rows: &mut Vec<HistoryRow>,
) -> Result<(), AlertError> {
    let sender: Result<Box<dyn Notifier>, DeliveryError> = notifier(receiver);
    let key_bits = entry
        .notification
        .key
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    let seed = config.settings.jitter_seed ^ key_bits.unwrap_or(0);
    loop {
        entry.status = Status::Sending;
        entry.attempts += 1;
        outbox.put(entry)?;
        let result = sender
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| s.send(&entry.notification));
        match result {
            Ok(()) => {
                entry.status = Status::Delivered;
                entry.error = None;
                outbox.put(entry)?;
                rows.push(row(entry, "delivered"));
                return Ok(());
            }
            Err(e) => {
                entry.error = Some(e.0);
                let out_of_attempts = entry.attempts >= receiver.max_attempts;
                entry.status = if out_of_attempts {
                    Status::Failed
                } else {
                    Status::Pending
                };
                outbox.put(entry)?;
                rows.push(row(entry, if out_of_attempts { "failed" } else { "retrying" }));
                if out_of_attempts {
                    return Ok(());
                }
                let delay = backoff_millis(config.settings.backoff, entry.attempts, seed);
                std::thread::sleep(Duration::from_millis(delay));
            }
        }
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
        summary: "test notification from loglens".into(),
    };
    let n = Notification::new(key, "test", "test", BTreeMap::new(), "", now, vec![sample]);
    let outbox = Outbox::open(data_dir)?;
    let mut entry = Entry {
        notification: n,
        receiver: receiver.name.clone(),
        receiver_kind: receiver.kind().to_owned(),
        status: Status::Pending,
        attempts: 0,
        error: None,
    };
    let mut rows = Vec::new();
    deliver(config, receiver, &outbox, &mut entry, &mut rows)?;
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
