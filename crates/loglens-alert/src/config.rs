//! The alerting part of `loglens.toml`: `[alerting]`, `[[rule]]`, `[[receiver]]`, `[[silence]]`.
//! The engine's config keeps these raw; this module parses the same text again into typed
//! structs with unknown fields denied, and checks values, so an error names the line and field.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use loglens_core::alert::{Condition, GroupPolicy, Matcher, NewTemplate, Severity, Silence, ThresholdOp};
use loglens_core::metrics::UnknownMetric;
use loglens_core::time::{parse_duration, parse_duration_secs};
use loglens_core::{Level, Timestamp};
use regex::Regex;
use serde::Deserialize;

/// The alerting sections of the file; other top-level keys belong to other stages.
#[derive(Debug, Default, Deserialize)]
struct AlertFile {
    #[serde(default)]
    alerting: AlertingSection,
    #[serde(default)]
    rule: Vec<RuleSection>,
    #[serde(default)]
    receiver: Vec<ReceiverSection>,
    #[serde(default)]
    silence: Vec<SilenceSection>,
}

/// `[alerting]`: settings shared by every rule and receiver.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingSection {
    /// An incident still counts as firing this long after its end (default `5m`).
    pub resolve_after: Option<String>,
    /// New-template rules look at templates first seen this long before `now` (default `1h`).
    pub new_template_lookback: Option<String>,
    /// Seed of the retry jitter (default 0), so retry schedules can be replayed.
    pub jitter_seed: Option<u64>,
    /// First retry delay (default `500ms`); it doubles per attempt.
    pub backoff_base: Option<String>,
    /// Longest retry delay (default `30s`).
    pub backoff_max: Option<String>,
    /// Incidents that stopped firing before a run saw them are still notified, marked late, when
    /// they ended at most this long before the run (default `24h`); older ones are only counted.
    pub late_lookback: Option<String>,
    /// A notification that could not be delivered stays in the outbox and is retried by later
    /// runs, with backoff, until this long after it was queued (default `24h`); then it expires,
    /// with a warning and an `expired` history row.
    pub give_up_after: Option<String>,
    /// How long `alert run` waits for another run holding the outbox lock (default `60s`); then
    /// it exits with status 3 naming the lock file.
    pub lock_wait: Option<String>,
    /// Delivered, failed and expired outbox entries are deleted this long after they were queued
    /// (default `7d`); the history keeps their outcome.
    pub outbox_retention: Option<String>,
    /// The dashboard's URL, linked from notifications (Alertmanager's `externalURL` and
    /// `generatorURL`, a line in emails).
    pub external_url: Option<String>,
}

/// `[[rule]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    name: String,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(default, rename = "match")]
    matchers: Vec<String>,
    min_severity: Option<String>,
    severity: Option<String>,
    metric: Option<String>,
    op: Option<String>,
    value: Option<f64>,
    #[serde(rename = "for")]
    for_: Option<String>,
    min_level: Option<String>,
    regex: Option<String>,
    receivers: Vec<String>,
    #[serde(default)]
    group_by: Vec<String>,
    group_wait: Option<String>,
    group_interval: Option<String>,
    repeat_interval: Option<String>,
    cooldown: Option<String>,
    send_resolved: Option<bool>,
}

fn default_kind() -> String {
    "incident".to_owned()
}

/// `[[receiver]]` as written: one flat table, checked per kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverSection {
    name: String,
    kind: String,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    max_per_run: Option<u32>,
    rate_limit: Option<String>,
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    headers_env: BTreeMap<String, String>,
    ca_file: Option<PathBuf>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password_env: Option<String>,
    password: Option<String>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
}

/// `[[silence]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceSection {
    id: String,
    #[serde(rename = "match")]
    matchers: Vec<String>,
    starts: Option<String>,
    ends: String,
    #[serde(default)]
    comment: String,
}

/// A checked alert rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// What it matches.
    pub condition: Condition,
    /// Label matchers every alert must satisfy.
    pub matchers: Vec<Matcher>,
    /// Severity given to threshold and new-template alerts.
    pub severity: Severity,
    /// Receiver names.
    pub receivers: Vec<String>,
    /// Grouping labels.
    pub group_by: Vec<String>,
    /// Notification timing.
    pub policy: GroupPolicy,
}

/// How an email receiver secures its SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS upgrade, refusing to continue without it (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: only for a relay on loopback.
    None,
}

/// Where a receiver delivers.
#[derive(Debug, Clone)]
pub enum Target {
    /// SMTP email.
    Email {
        /// Server host.
        host: String,
        /// Server port (default 587, 465 for implicit TLS, 25 without TLS).
        port: u16,
        /// Transport security.
        tls: SmtpTls,
        /// AUTH user, if any.
        username: Option<String>,
        /// Environment variable holding the password (the value is never stored or printed).
        password_env: Option<String>,
        /// A password written in the config file (allowed with a warning; never printed).
        password: Option<Secret>,
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
    },
    /// An HTTP endpoint receiving JSON.
    Http {
        /// Which payload.
        kind: HttpKind,
        /// Endpoint URL, literal or from the environment.
        url: Endpoint,
        /// Extra headers with literal values.
        headers: BTreeMap<String, String>,
        /// Extra headers whose value comes from an environment variable (header → variable).
        headers_env: BTreeMap<String, String>,
    },
}

/// Where an HTTP receiver's URL comes from. Why from the environment? A Slack or Teams webhook
/// URL is itself the credential; `url_env` keeps it out of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Written in the config file (`url`).
    Literal(String),
    /// Read from this environment variable when delivering (`url_env`).
    Env(String),
}

/// At most `count` new notifications to a receiver in any `window_secs` (`rate_limit = "30/1h"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Notifications (storm summaries included).
    pub count: u32,
    /// The sliding window, in seconds.
    pub window_secs: i64,
}

impl RateLimit {
    /// The default: 100 per hour, far above a healthy system's pages and below what makes a
    /// chat channel unreadable.
    pub const DEFAULT: RateLimit = RateLimit {
        count: 100,
        window_secs: 3600,
    };

    /// Parses `N/duration` (`30/1h`, `5/10m`).
    fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = |why: String| format!("{text:?} is not a rate limit like \"30/1h\" or \"none\": {why}");
        let (count, window) = text
            .split_once('/')
            .ok_or_else(|| bad("no '/' between count and window".into()))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| bad(format!("{:?} is not a whole number", count.trim())))?;
        if count == 0 {
            return Err(bad("the count must be at least 1".into()));
        }
        let window_secs = secs_field(window.trim()).map_err(bad)?;
        if window_secs <= 0 {
            return Err(bad("the window must be longer than 0".into()));
        }
        Ok(RateLimit { count, window_secs })
    }
}

/// A secret value from the config file: `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::redact::MASK)
    }
}

/// The JSON payload shape of an HTTP receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// loglens's own JSON.
    Webhook,
    /// `{"text": ..., "blocks": ...}` for Slack incoming webhooks and compatible tools.
    Slack,
    /// Alertmanager's webhook payload (version 4).
    Alertmanager,
}

/// A checked receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Unique name.
    pub name: String,
    /// Where and how.
    pub target: Target,
    /// Per-attempt timeout in milliseconds (default 10 s).
    pub timeout_ms: u64,
    /// Attempts within one run before leaving the notification to later runs (default 5).
    pub max_attempts: u32,
    /// New notifications one run sends it at most (default 20): beyond, the rest are folded into
    /// one storm summary ("N more").
    pub max_per_run: u32,
    /// New notifications it gets at most in a sliding window, across runs (`None`: unlimited).
    /// Beyond, they are folded into a storm summary sent when the window has room again.
    pub rate_limit: Option<RateLimit>,
    /// PEM file of the CA certificates to trust for this receiver's TLS, instead of the built-in
    /// roots (a private CA); without it `SSL_CERT_FILE` is used when set.
    pub ca_file: Option<PathBuf>,
}

impl Receiver {
    /// `email`, `webhook`, `slack` or `alertmanager`, as in the history dataset.
    pub fn kind(&self) -> &'static str {
        match &self.target {
            Target::Email { .. } => "email",
            Target::Http {
                kind: HttpKind::Webhook,
                ..
            } => "webhook",
            Target::Http {
                kind: HttpKind::Slack,
                ..
            } => "slack",
            Target::Http {
                kind: HttpKind::Alertmanager,
                ..
            } => "alertmanager",
        }
    }
}

/// Settings shared by all rules, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds an incident counts as firing after its end.
    pub resolve_after: i64,
    /// Seconds new-template rules look back.
    pub new_template_lookback: i64,
    /// Seed of the retry jitter.
    pub jitter_seed: u64,
    /// Retry backoff.
    pub backoff: loglens_core::alert::Backoff,
    /// Seconds after its end a never-notified incident is still notified (late).
    pub late_lookback: i64,
    /// Seconds after queueing an undelivered notification expires.
    pub give_up_after: i64,
    /// Milliseconds a run waits for the outbox lock.
    pub lock_wait_ms: u64,
    /// Seconds final outbox entries are kept.
    pub outbox_retention: i64,
    /// The dashboard's URL.
    pub external_url: Option<String>,
}

/// The checked alerting configuration.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Shared settings.
    pub settings: Settings,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// Receivers in file order.
    pub receivers: Vec<Receiver>,
    /// Silences from the file.
    pub silences: Vec<Silence>,
    /// Usable but risky settings (literal secrets), one message each, for the CLI to print.
    pub warnings: Vec<String>,
}

/// A configuration that cannot be used: names the file, line (when known) and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Malformed TOML, an unknown field or a wrong type (toml's message names line and field).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What toml said.
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("{path}:{line}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the field (or its table) in the file; 0 when unknown.
        line: usize,
        /// The field, e.g. `receiver[1].url`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl AlertConfig {
    /// Reads and checks the alerting sections of a config file.
    pub fn load(path: &Path) -> Result<AlertConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks config text (`path` is only used in errors).
    pub fn parse(text: &str, path: &Path) -> Result<AlertConfig, ConfigError> {
        let file: AlertFile = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: syntax_message(text, &e),
        })?;
        let checker = Checker {
            text,
            path,
            warnings: RefCell::new(Vec::new()),
        };
        checker.check(file)
    }

    /// Environment variables the receivers read that are not set, as `field: message` lines.
    pub fn unset_variables(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let vars: Vec<(String, &String)> = match &r.target {
                Target::Email { password_env, .. } => password_env
                    .iter()
                    .map(|v| ("password_env".to_owned(), v))
                    .collect(),
                Target::Http { headers_env, url, .. } => {
                    let url_var = match url {
                        Endpoint::Env(var) => Some(("url_env".to_owned(), var)),
                        Endpoint::Literal(_) => None,
                    };
                    url_var
                        .into_iter()
                        .chain(headers_env.iter().map(|(h, v)| (format!("headers_env.{h}"), v)))
                        .collect()
                }
            };
            for (field, var) in vars {
                match std::env::var(var) {
                    Err(_) => out.push(format!(
                        "receiver[{i}].{field}: environment variable {var} is not set"
                    )),
                    Ok(value) if field == "url_env" => {
                        if let Err(m) = check_url(&value) {
                            out.push(format!("receiver[{i}].url_env: environment variable {var}: {m}"));
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        out
    }
}

/// toml's message without the quoted source line, which may hold a secret (`password = "…"`).
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
            format!("TOML parse error at line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Labels alerts carry, for checking `match` (see `Incident::labels`).
pub const KNOWN_LABELS: [&str; 8] = [
    "severity",
    "detector",
    "metric",
    "series",
    "service",
    "host",
    "level",
    "template_id",
];

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
    warnings: RefCell<Vec<String>>,
}

type Res<T> = Result<T, ConfigError>;

impl Checker<'_> {
    /// Why search the text for the line? serde hands typed values without spans; the table's
    /// n-th header and the key after it are easy to find again and make the error actionable.
    fn line_of(&self, table: &str, index: usize, key: &str) -> usize {
        let header = format!("[[{table}]]");
        let mut seen = 0;
        let mut in_table = false;
        let mut table_line = 0;
        for (n, line) in self.text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                in_table = t == header && {
                    seen += 1;
                    seen == index + 1
                };
                if in_table {
                    table_line = n + 1;
                }
                continue;
            }
            let is_key = t
                .split(['=', '.'])
                .next()
                .is_some_and(|k| k.trim().trim_matches('"') == key);
            if in_table && is_key {
                return n + 1;
            }
        }
        table_line
    }

    fn invalid(&self, table: &str, index: usize, key: &str, message: impl Into<String>) -> ConfigError {
        let field = if index == usize::MAX {
            format!("{table}.{key}")
        } else {
            format!("{table}[{index}].{key}")
        };
        let line = if index == usize::MAX {
            0
        } else {
            self.line_of(table, index, key)
        };
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            field,
            message: message.into(),
        }
    }

    fn warn(&self, table: &str, index: usize, key: &str, message: &str) {
        let line = self.line_of(table, index, key);
        let path = self.path.display();
        self.warnings
            .borrow_mut()
            .push(format!("{path}:{line}: {table}[{index}].{key}: {message}"));
    }

    fn matchers(&self, table: &str, i: usize, texts: &[String]) -> Res<Vec<Matcher>> {
        let bad = |m: String| self.invalid(table, i, "match", m);
        texts
            .iter()
            .map(|m| {
                let matcher = Matcher::parse(m).map_err(|e| bad(e.to_string()))?;
                if !KNOWN_LABELS.contains(&matcher.label.as_str()) {
                    let known = KNOWN_LABELS.join(", ");
                    return Err(bad(format!(
                        "unknown label {:?} (labels: {known})",
                        matcher.label
                    )));
                }
                Ok(matcher)
            })
            .collect()
    }

    fn check(&self, file: AlertFile) -> Res<AlertConfig> {
        let settings = self.settings(&file.alerting)?;
        let receivers = file
            .receiver
            .iter()
            .enumerate()
            .map(|(i, r)| self.receiver(i, r))
            .collect::<Res<Vec<_>>>()?;
        unique(receivers.iter().map(|r| r.name.as_str())).map_err(|name| {
            self.invalid("receiver", 0, "name", format!("duplicate receiver name {name:?}"))
        })?;
        let rules = file
            .rule
            .iter()
            .enumerate()
            .map(|(i, r)| self.rule(i, r, &receivers, &settings))
            .collect::<Res<Vec<_>>>()?;
        unique(rules.iter().map(|r| r.name.as_str()))
            .map_err(|name| self.invalid("rule", 0, "name", format!("duplicate rule name {name:?}")))?;
        let silences = file
            .silence
            .iter()
            .enumerate()
            .map(|(i, s)| self.silence(i, s))
            .collect::<Res<Vec<_>>>()?;
        Ok(AlertConfig {
            settings,
            rules,
            receivers,
            silences,
            warnings: self.warnings.take(),
        })
    }

    fn settings(&self, a: &AlertingSection) -> Res<Settings> {
        let secs = |key: &str, v: &Option<String>, default: i64| -> Res<i64> {
            v.as_deref().map_or(Ok(default), |t| {
                secs_field(t).map_err(|m| self.invalid("alerting", usize::MAX, key, m))
            })
        };
        let ms = |key: &str, v: &Option<String>, default: u64| -> Res<u64> {
            v.as_deref().map_or(Ok(default), |t| {
                millis_field(t).map_err(|m| self.invalid("alerting", usize::MAX, key, m))
            })
        };
        Ok(Settings {
            resolve_after: secs("resolve_after", &a.resolve_after, 300)?,
            new_template_lookback: secs("new_template_lookback", &a.new_template_lookback, 3600)?,
            jitter_seed: a.jitter_seed.unwrap_or(0),
            backoff: loglens_core::alert::Backoff {
                base_ms: ms("backoff_base", &a.backoff_base, 500)?,
                max_ms: ms("backoff_max", &a.backoff_max, 30_000)?,
            },
            late_lookback: secs("late_lookback", &a.late_lookback, 24 * 3600)?,
            give_up_after: secs("give_up_after", &a.give_up_after, 24 * 3600)?,
            lock_wait_ms: ms("lock_wait", &a.lock_wait, 60_000)?,
            outbox_retention: secs("outbox_retention", &a.outbox_retention, 7 * 24 * 3600)?,
            external_url: a
                .external_url
                .as_deref()
                .map(|u| {
                    check_url(u)
                        .map(|()| u.to_owned())
                        .map_err(|m| self.invalid("alerting", usize::MAX, "external_url", m))
                })
                .transpose()?,
        })
    }

    fn rule(&self, i: usize, r: &RuleSection, receivers: &[Receiver], settings: &Settings) -> Res<Rule> {
        let bad = |key: &str, m: String| self.invalid("rule", i, key, m);
        let matchers = self.matchers("rule", i, &r.matchers)?;
        for name in &r.receivers {
            if !receivers.iter().any(|x| &x.name == name) {
                return Err(bad("receivers", format!("no [[receiver]] named {name:?}")));
            }
        }
        if r.receivers.is_empty() {
            return Err(bad("receivers", "a rule needs at least one receiver".into()));
        }
        let severity = match &r.severity {
            Some(s) => s.parse().map_err(|m| bad("severity", m))?,
            None => Severity::Warning,
        };
        let secs = |key: &str, v: &Option<String>, default: i64| -> Res<i64> {
            v.as_deref()
                .map_or(Ok(default), |t| secs_field(t).map_err(|m| bad(key, m)))
        };
        let policy = GroupPolicy {
            group_wait: secs("group_wait", &r.group_wait, 30)?,
            group_interval: secs("group_interval", &r.group_interval, 300)?,
            repeat_interval: secs("repeat_interval", &r.repeat_interval, 4 * 3600)?,
            cooldown: secs("cooldown", &r.cooldown, 0)?,
            send_resolved: r.send_resolved.unwrap_or(true),
            resolve_after: settings.resolve_after,
            late_lookback: settings.late_lookback,
        };
        let condition = self.condition(i, r)?;
        Ok(Rule {
            name: r.name.clone(),
            condition,
            matchers,
            severity,
            receivers: r.receivers.clone(),
            group_by: r.group_by.clone(),
            policy,
        })
    }

    fn condition(&self, i: usize, r: &RuleSection) -> Res<Condition> {
        let bad = |key: &str, m: String| self.invalid("rule", i, key, m);
        let need = |key: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(bad(key, format!("kind {:?} needs `{key}`", r.kind)))
            }
        };
        match r.kind.as_str() {
            "incident" => {
                let min_severity = r
                    .min_severity
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|m| bad("min_severity", m))?;
                Ok(Condition::Incident { min_severity })
            }
            "regex" => {
                need("regex", r.regex.is_some())?;
                let text = r.regex.as_deref().unwrap_or_default();
                Regex::new(text)
                    .map(Condition::Regex)
                    .map_err(|e| bad("regex", e.to_string()))
            }
            "threshold" => {
                need("metric", r.metric.is_some())?;
                need("value", r.value.is_some())?;
                let op = match r.op.as_deref().unwrap_or(">") {
                    ">" => ThresholdOp::Above,
                    "<" => ThresholdOp::Below,
                    other => return Err(bad("op", format!("{other:?} is not \">\" or \"<\""))),
                };
                let for_secs = r
                    .for_
                    .as_deref()
                    .map_or(Ok(0), secs_field)
                    .map_err(|m| bad("for", m))?;
                let metric = r
                    .metric
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e: UnknownMetric| bad("metric", e.to_string()))?;
                Ok(Condition::Threshold {
                    metric,
                    op,
                    value: r.value.unwrap_or_default(),
                    for_secs,
                })
            }
            "new_template" => {
                let level = r.min_level.as_deref().unwrap_or("ERROR");
                let min_level: Level = level
                    .parse()
                    .map_err(|_| bad("min_level", format!("unknown level {level:?}")))?;
                Ok(Condition::NewTemplate(NewTemplate { min_level }))
            }
            other => Err(bad(
                "kind",
                format!("unknown rule kind {other:?} (incident, threshold, new_template, regex)"),
            )),
        }
    }

    fn receiver(&self, i: usize, r: &ReceiverSection) -> Res<Receiver> {
        let bad = |key: &str, m: String| self.invalid("receiver", i, key, m);
        let timeout_ms = r
            .timeout
            .as_deref()
            .map_or(Ok(10_000), millis_field)
            .map_err(|m| bad("timeout", m))?;
        let max_attempts = r.max_attempts.unwrap_or(5);
        if max_attempts == 0 {
            return Err(bad("max_attempts", "must be at least 1".into()));
        }
        let max_per_run = r.max_per_run.unwrap_or(20);
        if max_per_run < 2 {
            return Err(bad(
                "max_per_run",
                "must be at least 2 (one notification and a summary)".into(),
            ));
        }
        let rate_limit = match r.rate_limit.as_deref().map(str::trim) {
            None => Some(RateLimit::DEFAULT),
            Some("none") => None,
            Some(text) => Some(RateLimit::parse(text).map_err(|m| bad("rate_limit", m))?),
        };
        let target = match r.kind.as_str() {
            "email" => self.email(i, r)?,
            "webhook" | "slack" | "alertmanager" => self.http(i, r)?,
            other => {
                return Err(bad(
                    "kind",
                    format!("unknown receiver kind {other:?} (email, webhook, slack, alertmanager)"),
                ))
            }
        };
        if let Some(ca) = &r.ca_file {
            if !ca.is_file() {
                return Err(bad("ca_file", format!("{} is not a readable file", ca.display())));
            }
        }
        Ok(Receiver {
            name: r.name.clone(),
            target,
            timeout_ms,
            max_attempts,
            max_per_run,
            rate_limit,
            ca_file: r.ca_file.clone(),
        })
    }

    fn email(&self, i: usize, r: &ReceiverSection) -> Res<Target> {
        let bad = |key: &str, m: String| self.invalid("receiver", i, key, m);
        if r.url.is_some() || r.url_env.is_some() {
            return Err(bad("url", "an email receiver has smtp_host, not url".into()));
        }
        let host = r
            .smtp_host
            .clone()
            .ok_or_else(|| bad("smtp_host", "an email receiver needs smtp_host".into()))?;
        let tls = match r.tls.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Implicit,
            "none" => SmtpTls::None,
            other => return Err(bad("tls", format!("{other:?} is not starttls, tls or none"))),
        };
        let from = r
            .from
            .clone()
            .ok_or_else(|| bad("from", "an email receiver needs from".into()))?;
        check_address(&from).map_err(|m| bad("from", m))?;
        if r.to.is_empty() {
            return Err(bad("to", "an email receiver needs at least one recipient".into()));
        }
        for to in &r.to {
            check_address(to).map_err(|m| bad("to", m))?;
        }
        if (r.password_env.is_some() || r.password.is_some()) && r.username.is_none() {
            return Err(bad("username", "a password is set but username is not".into()));
        }
        if r.password_env.is_some() && r.password.is_some() {
            return Err(bad("password", "set password_env or password, not both".into()));
        }
        if r.password.is_some() {
            self.warn(
                "receiver",
                i,
                "password",
                "a literal password in the config file; prefer password_env",
            );
        }
        if tls == SmtpTls::None && r.username.is_some() && !is_loopback(&host) {
            return Err(bad(
                "tls",
                format!("tls = \"none\" would send the password in cleartext to {host}; use starttls or tls (none is only for a relay on loopback)"),
            ));
        }
        let port = r.smtp_port.unwrap_or(match tls {
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        });
        Ok(Target::Email {
            host,
            port,
            tls,
            username: r.username.clone(),
            password_env: r.password_env.clone(),
            password: r.password.clone().map(Secret),
            from,
            to: r.to.clone(),
        })
    }

    fn http(&self, i: usize, r: &ReceiverSection) -> Res<Target> {
        let bad = |key: &str, m: String| self.invalid("receiver", i, key, m);
        let url = match (&r.url, &r.url_env) {
            (Some(url), None) => {
                check_url(url).map_err(|m| bad("url", m))?;
                Endpoint::Literal(url.clone())
            }
            (None, Some(var)) => {
                check_env_name(var).map_err(|m| bad("url_env", m))?;
                Endpoint::Env(var.clone())
            }
            (Some(_), Some(_)) => return Err(bad("url", "set url or url_env, not both".into())),
            (None, None) => {
                return Err(bad(
                    "url",
                    format!("a {} receiver needs url (or url_env)", r.kind),
                ))
            }
        };
        if r.password.is_some() || r.username.is_some() {
            return Err(bad(
                "password",
                format!(
                    "a {} receiver takes credentials in headers_env, not username/password",
                    r.kind
                ),
            ));
        }
        for name in r.headers.keys().filter(|h| crate::redact::is_secret_header(h)) {
            self.warn(
                "receiver",
                i,
                "headers",
                &format!("header {name:?} has a literal secret value; prefer headers_env"),
            );
        }
        if r.smtp_host.is_some() || !r.to.is_empty() {
            return Err(bad(
                "smtp_host",
                format!("a {} receiver has url, not smtp_host/to", r.kind),
            ));
        }
        let kind = match r.kind.as_str() {
            "slack" => HttpKind::Slack,
            "alertmanager" => HttpKind::Alertmanager,
            _ => HttpKind::Webhook,
        };
        Ok(Target::Http {
            kind,
            url,
            headers: r.headers.clone(),
            headers_env: r.headers_env.clone(),
        })
    }

    fn silence(&self, i: usize, s: &SilenceSection) -> Res<Silence> {
        let bad = |key: &str, m: String| self.invalid("silence", i, key, m);
        let matchers = self.matchers("silence", i, &s.matchers)?;
        if matchers.is_empty() {
            return Err(bad("match", "a silence needs at least one matcher".into()));
        }
        let time =
            |key: &str, t: &str| Timestamp::parse_rfc3339(t, 0).map_err(|e| bad(key, format!("{t:?}: {e}")));
        let starts = s
            .starts
            .as_deref()
            .map(|t| time("starts", t))
            .transpose()?
            .unwrap_or(Timestamp(i64::MIN));
        let ends = time("ends", &s.ends)?;
        Ok(Silence {
            id: s.id.clone(),
            matchers,
            starts,
            ends,
            comment: s.comment.clone(),
        })
    }
}

fn unique<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(name.to_owned());
        }
    }
    Ok(())
}

/// Whether a host is this machine (a relay there may go without TLS).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An environment variable name as shells accept it (`[A-Za-z_][A-Za-z0-9_]*`).
fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not an environment variable name"))
    }
}

/// An `http://` or `https://` URL with a host, a valid port and no spaces; messages show the URL
/// with its secrets masked.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let shown = crate::redact::url(url);
    let bad = |why: &str| Err(format!("{shown:?} is not a usable URL: {why}"));
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err(format!("{shown:?} is not an http:// or https:// URL"));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => v6
            .split_once(']')
            .map_or((v6, None), |(h, p)| (h, p.strip_prefix(':'))),
        None => host_port
            .split_once(':')
            .map_or((host_port, None), |(h, p)| (h, Some(p))),
    };
    if host.is_empty() {
        return bad("no host");
    }
    if let Some(p) = port {
        if !matches!(p.parse::<u32>(), Ok(1..=65535)) {
            return bad(&format!("port {p:?} is not 1-65535"));
        }
    }
    if url.parse::<ureq::http::Uri>().is_err() {
        return bad("it does not parse");
    }
    Ok(())
}

fn check_address(text: &str) -> Result<(), String> {
    text.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("{text:?} is not an email address: {e}"))
}

/// A duration field counted in whole seconds, in the one grammar of `loglens_core::time`
/// (a fraction of a second is an error, not silently dropped).
fn secs_field(text: &str) -> Result<i64, String> {
    parse_duration_secs(text).map_err(|e| e.to_string())
}

/// A duration field counted in milliseconds (`backoff_base`, `timeout`).
fn millis_field(text: &str) -> Result<u64, String> {
    parse_duration(text)
        .map(|d| d.as_millis())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[process]
threads = 2

[alerting]
resolve_after = "2m"

[[receiver]]
name = "oncall"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = 2525
tls = "none"
from = "loglens@example.com"
to = ["a@example.com", "b@example.com"]

[[receiver]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/x"
headers = { "X-Team" = "sre" }

[[rule]]
name = "api"
match = ["service=api"]
min_severity = "warning"
receivers = ["oncall", "hook"]
group_by = ["service"]
group_wait = "10s"

[[rule]]
name = "errors"
kind = "threshold"
metric = "error_rate"
value = 0.05
for = "3m"
receivers = ["hook"]

[[silence]]
id = "maint"
match = ["host=db-01"]
ends = "2026-12-01T00:00:00Z"
"#;

    fn parse(text: &str) -> Result<AlertConfig, ConfigError> {
        AlertConfig::parse(text, Path::new("loglens.toml"))
    }

    #[test]
    fn parses_rules_receivers_and_silences() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.settings.resolve_after, 120);
        assert_eq!(c.receivers.len(), 2);
        assert_eq!(c.receivers[0].kind(), "email");
        assert_eq!(c.rules[0].policy.group_wait, 10);
        assert_eq!(c.rules[0].policy.repeat_interval, 4 * 3600);
        assert!(matches!(
            c.rules[1].condition,
            Condition::Threshold { for_secs: 180, .. }
        ));
        assert_eq!(c.silences[0].matchers[0].to_string(), "host=db-01");
    }

    #[test]
    fn unknown_field_names_line_and_key() {
        let text = GOOD.replace("group_wait = \"10s\"", "group_wiat = \"10s\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("group_wiat") && e.contains("line 29"), "{e}");
    }

    #[test]
    fn bad_value_names_line_and_field() {
        let text = GOOD.replace("receivers = [\"hook\"]", "receivers = [\"hok\"]");
        let e = parse(&text).unwrap_err().to_string();
        assert_eq!(
            e,
            "loglens.toml:37: rule[1].receivers: no [[receiver]] named \"hok\""
        );
        let text = GOOD.replace("url = \"http://127.0.0.1:9/x\"", "url = \"ftp://x\"");
        let e = parse(&text).unwrap_err().to_string();
        assert_eq!(
            e,
            "loglens.toml:20: receiver[1].url: \"ftp://x\" is not an http:// or https:// URL"
        );
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let section = readme.split("### Alerting").nth(1).unwrap();
        let block = section
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let c = parse(block).unwrap();
        assert_eq!((c.rules.len(), c.receivers.len(), c.silences.len()), (4, 3, 1));
        assert_eq!(c.receivers[1].kind(), "webhook");
        assert_eq!(
            c.receivers[2].rate_limit,
            Some(RateLimit {
                count: 30,
                window_secs: 3600
            })
        );
    }

    #[test]
    fn literal_secrets_are_warned_about_and_never_echoed() {
        let text = GOOD.replace(
            "tls = \"none\"",
            "tls = \"none\"\nusername = \"alerts\"\npassword = \"hunter2-secret\"",
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("receiver[0].password"), "{:?}", c.warnings);
        assert!(!format!("{:?}", c.receivers[0]).contains("hunter2"));
        // A toml error on the line does not quote it.
        let e = parse(&text.replace("password = ", "pasword = "))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pasword") && e.contains("line 15"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let hook = GOOD.replace("{ \"X-Team\" = \"sre\" }", "{ \"Authorization\" = \"Bearer t\" }");
        assert!(parse(&hook).unwrap().warnings[0].contains("Authorization"));
    }

    #[test]
    fn cleartext_credentials_only_to_loopback() {
        let text = GOOD.replace(
            "smtp_host = \"127.0.0.1\"",
            "smtp_host = \"smtp.example.com\"\nusername = \"alerts\"\npassword_env = \"P\"",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("receiver[0].tls") && e.contains("cleartext"), "{e}");
        let local = text.replace("smtp.example.com", "localhost");
        assert!(parse(&local).is_ok());
    }

    #[test]
    fn urls_ports_and_match_labels_are_checked() {
        for (url, why) in [
            ("http://", "no host"),
            ("http://exa mple.com/x", "spaces"),
            ("http://example.com:99999/x", "port"),
            ("https://u:pw@example.com:0/x", "port"),
        ] {
            let text = GOOD.replace("http://127.0.0.1:9/x", url);
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains("receiver[1].url") && e.contains(why), "{url}: {e}");
            assert!(!e.contains(":pw@"), "the password is masked: {e}");
        }
        let e = parse(&GOOD.replace("service=api", "sevrice=api"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rule[0].match: unknown label \"sevrice\""), "{e}");
        let e = parse(&GOOD.replace("host=db-01", "hots=db-01"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("silence[0].match"), "{e}");
    }

    #[test]
    fn unset_variables_are_named() {
        let text = GOOD.replace(
            "headers = { \"X-Team\" = \"sre\" }",
            "headers_env = { \"Authorization\" = \"LOGLENS_TEST_SURELY_UNSET\" }",
        );
        assert_eq!(
            parse(&text).unwrap().unset_variables(),
            ["receiver[1].headers_env.Authorization: environment variable LOGLENS_TEST_SURELY_UNSET is not set"]
        );
    }

    #[test]
    fn rate_limit_defaults_parses_and_names_bad_values() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.receivers[1].rate_limit, Some(RateLimit::DEFAULT));
        let with = |v: &str| {
            GOOD.replace(
                "kind = \"webhook\"",
                &format!("kind = \"webhook\"\nrate_limit = \"{v}\""),
            )
        };
        let c = parse(&with("30/10m")).unwrap();
        assert_eq!(
            c.receivers[1].rate_limit,
            Some(RateLimit {
                count: 30,
                window_secs: 600
            })
        );
        assert_eq!(parse(&with("none")).unwrap().receivers[1].rate_limit, None);
        for bad in ["30", "0/1h", "x/1h", "5/0s", "5/1 hour"] {
            let e = parse(&with(bad)).unwrap_err().to_string();
            assert!(
                e.contains("receiver[1].rate_limit:") && e.contains(bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn threshold_metric_must_be_one_detect_writes() {
        let c = parse(GOOD).unwrap();
        assert!(matches!(
            c.rules[1].condition,
            Condition::Threshold {
                metric: loglens_core::metrics::Metric::ErrorRate,
                ..
            }
        ));
        let e = parse(&GOOD.replace("metric = \"error_rate\"", "metric = \"error_rte\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("rule[1].metric: unknown metric \"error_rte\" (volume, errors, error_rate"),
            "{e}"
        );
    }

    #[test]
    fn url_from_the_environment() {
        let text = GOOD.replace(
            "url = \"http://127.0.0.1:9/x\"",
            "url_env = \"LOGLENS_TEST_SURELY_UNSET_URL\"",
        );
        let c = parse(&text).unwrap();
        let Target::Http { url, .. } = &c.receivers[1].target else {
            panic!("an http receiver");
        };
        assert_eq!(url, &Endpoint::Env("LOGLENS_TEST_SURELY_UNSET_URL".into()));
        assert_eq!(
            c.unset_variables(),
            ["receiver[1].url_env: environment variable LOGLENS_TEST_SURELY_UNSET_URL is not set"]
        );
        let both = GOOD.replace(
            "url = \"http://127.0.0.1:9/x\"",
            "url = \"http://h/\"\nurl_env = \"X\"",
        );
        let e = parse(&both).unwrap_err().to_string();
        assert!(e.contains("receiver[1].url: set url or url_env, not both"), "{e}");
        let bad = GOOD.replace("url = \"http://127.0.0.1:9/x\"", "url_env = \"$HOOK\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(
            e.contains("receiver[1].url_env: \"$HOOK\" is not an environment variable name"),
            "{e}"
        );
    }

    #[test]
    fn duration_fields() {
        assert_eq!(millis_field("500ms").unwrap(), 500);
        assert_eq!(millis_field("1h30m").unwrap(), 5_400_000);
        assert_eq!(secs_field("1h30m").unwrap(), 5_400);
        assert_eq!(secs_field("90").unwrap(), 90);
        assert!(secs_field("1500ms")
            .unwrap_err()
            .contains("whole number of seconds"));
        assert!(millis_field("5 minutes").is_err());
        assert!(millis_field("").is_err());
    }

    #[test]
    fn bad_duration_names_line_and_field() {
        let text = GOOD.replace("group_wait = \"10s\"", "group_wait = \"10x\"");
        let e = parse(&text).unwrap_err().to_string();
        assert_eq!(
            e,
            "loglens.toml:29: rule[0].group_wait: \"10x\" is not a duration: unknown unit \"x\" (use ms, s, m, h or d)"
        );
    }
}
