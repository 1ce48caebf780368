//! Alerting, the pure part: which incidents and metric points an alert rule matches, how matching
//! alerts are grouped, and when a group is notified (group wait, group interval, repeat interval,
//! cooldown, resolved), silences, retry backoff and idempotency keys.
//!
//! Time enters as data (`now` is a [`Timestamp`] argument); nothing here reads a clock, a file or
//! the network. `loglens-alert` feeds it incidents read from the data directory and delivers what
//! it decides.

mod group;
mod matcher;
mod retry;
mod rule;

pub use group::{group_key, Decision, GroupAlert, GroupPolicy, GroupState, NotifyState, Outcome};
pub use matcher::{MatchOp, Matcher, MatcherError, Silence};
pub use retry::{backoff_millis, idempotency_key, Backoff};
pub use rule::{threshold_alerts, Condition, NewTemplate, Severity, ThresholdOp};
