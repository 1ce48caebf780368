//! loglens alerting: the `[[rule]]`, `[[receiver]]`, `[[silence]]` and `[alerting]` config, a
//! durable outbox under `alerts/outbox/`, delivery by SMTP email and JSON webhooks (loglens,
//! Slack-compatible and Alertmanager-compatible payloads) with retries, and the `alerts/history/`
//! dataset. The decisions themselves (matching, grouping, timing) are pure and live in
//! `loglens_core::alert`; this crate does the I/O around them.
#![deny(missing_docs)]

pub mod config;
pub mod deliver;
pub mod history;
pub mod notification;
pub mod outbox;
pub mod redact;
pub mod run;
pub mod silences;

pub use config::{AlertConfig, ConfigError};
pub use run::{run, send_test, AlertError, RunOptions, RunReport};
