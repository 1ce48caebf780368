//! `loglens alert run|test|silence` and `loglens config validate`: the alerting commands. The work
//! happens in `loglens-alert`; this module parses arguments and prints.
//!
//! Exit codes: 0 all delivered; 1 something was not delivered (retried by a later run, refused
//! for good, or expired); 2 invalid config; 3 another run held the outbox lock for `lock_wait`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use loglens_alert::outbox::{Entry, Status};
use loglens_alert::run::wall_clock;
use loglens_alert::silences::{self, SilenceRecord};
use loglens_alert::{AlertConfig, AlertError, RunOptions};
use loglens_core::time::parse_duration;
use loglens_core::Timestamp;

use crate::cmd::templates::parse_time;
use crate::cmd::DataDirArgs;
use crate::output::Output;

/// Options of `loglens alert`.
#[derive(Debug, clap::Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    command: AlertCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AlertCommand {
    /// Evaluate the rules over the incidents of the data directory and deliver what is due.
    Run(RunArgs),
    /// Send a test notification to one receiver.
    Test(TestArgs),
    /// Add, list or expire silences.
    #[command(subcommand)]
    Silence(SilenceCommand),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Print what would be sent; send nothing and change no state.
    #[arg(long)]
    dry_run: bool,
    /// Evaluate as of this time (RFC 3339) instead of now, e.g. to replay a past day.
    #[arg(long, value_parser = parse_time)]
    now: Option<Timestamp>,
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// The receiver's name.
    #[arg(long)]
    receiver: String,
}

#[derive(Debug, clap::Subcommand)]
enum SilenceCommand {
    /// Silence alerts whose labels match every --match.
    Add {
        #[command(flatten)]
        data: DataDirArgs,
        /// A label matcher: `service=api`, `host!=web-02`, `severity=~warning|critical` (repeatable).
        #[arg(long = "match", required = true)]
        matchers: Vec<String>,
        /// How long from now (`2h`, `30m`).
        #[arg(long, default_value = "2h")]
        duration: String,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// An id [default: generated].
        #[arg(long)]
        id: Option<String>,
    },
    /// List silences added with `silence add` (config silences are in loglens.toml).
    List {
        #[command(flatten)]
        data: DataDirArgs,
    },
    /// End a silence now.
    Expire {
        #[command(flatten)]
        data: DataDirArgs,
        /// The silence id.
        id: String,
    },
}

/// Options of `loglens config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Check the whole file (inputs, formats, rules, receivers, silences); exit 2 naming the bad field.
    Validate {
        /// The configuration file.
        #[arg(long, short, default_value = "loglens.toml")]
        config: PathBuf,
    },
}

fn config_path(data: &DataDirArgs) -> PathBuf {
    data.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("loglens.toml"))
}

fn load(data: &DataDirArgs) -> anyhow::Result<(AlertConfig, PathBuf)> {
    let path = config_path(data);
    let with_path = DataDirArgs {
        config: Some(path.clone()),
        data_dir: data.data_dir.clone(),
    };
    let data_dir = with_path.resolve()?;
    let config = AlertConfig::load(&path)?;
    for warning in &config.warnings {
        eprintln!("loglens: warning: {warning}");
    }
    Ok((config, data_dir))
}

/// Exit status 3 when another run holds the outbox lock, so a scheduler can tell "busy" from
/// "failed".
const EXIT_BUSY: u8 = 3;

fn busy(e: &AlertError) -> Option<ExitCode> {
    matches!(e, AlertError::Busy(_)).then(|| {
        eprintln!("loglens: error: {e}");
        ExitCode::from(EXIT_BUSY)
    })
}

/// Runs `loglens alert ...`.
pub fn run(args: AlertArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    match args.command {
        AlertCommand::Run(a) => run_rules(a, out),
        AlertCommand::Test(a) => test(a, out),
        AlertCommand::Silence(s) => silence(s, out).map(|()| ExitCode::SUCCESS),
    }
}

fn run_rules(args: RunArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = load(&args.data)?;
    let data_dir = super::existing_data_dir(data_dir)?;
    let options = RunOptions {
        data_dir,
        now: args.now.unwrap_or_else(wall_clock),
        dry_run: args.dry_run,
    };
    let report = match loglens_alert::run(&config, &options) {
        Ok(report) => report,
        Err(e) => return busy(&e).map_or_else(|| Err(e.into()), Ok),
    };
    for e in &report.decided {
        let verb = match e.status {
            Status::Silenced => "silenced".to_owned(),
            Status::Summarized => "folded into a storm summary".to_owned(),
            _ if e.next_attempt_at > options.now.0 => format!(
                "held by the receiver's rate_limit until {}:",
                Timestamp(e.next_attempt_at).to_rfc3339()
            ),
            _ if args.dry_run => "would send".to_owned(),
            _ => "queued".to_owned(),
        };
        out.line(&format!(
            "{verb} {} -> {} ({}): {}",
            describe(e),
            e.receiver,
            e.receiver_kind,
            e.notification.subject
        ))?;
    }
    for e in &report.attempted {
        let error = e.error.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        let (status, attempts, what, to) = (e.status.as_str(), e.attempts, describe(e), &e.receiver);
        out.line(&format!(
            "{status} after {attempts} attempt(s): {what} -> {to}{error}"
        ))?;
    }
    for warning in &report.warnings {
        eprintln!("loglens: warning: {warning}");
    }
    let mut summary = format!(
        "{} incidents, {} notifications decided, {} delivered, {} failed",
        report.incidents,
        report.decided.len(),
        report.delivered(),
        report.failed()
    );
    let extras = [
        (report.retrying(), "left for a later run"),
        (report.deferred, "waiting for their retry time or rate limit"),
        (report.expired(), "expired"),
        (report.late(), "late"),
        (
            report.too_old,
            "incidents ended before the late lookback (not considered)",
        ),
        (report.pruned, "old outbox entries pruned"),
    ];
    for (n, what) in extras.iter().filter(|(n, _)| *n > 0) {
        summary.push_str(&format!(", {n} {what}"));
    }
    out.line(&summary)?;
    let undelivered = report.attempted.len() - report.delivered();
    Ok(if undelivered > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn describe(e: &Entry) -> String {
    let n = &e.notification;
    let group = if n.group_key.is_empty() {
        String::new()
    } else {
        format!("[{}]", n.group_key)
    };
    format!("{} {}{group} {}", n.state, n.rule, &n.key[..n.key.len().min(12)])
}

fn test(args: TestArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let (config, data_dir) = load(&args.data)?;
    let entry = match loglens_alert::send_test(&config, &data_dir, &args.receiver) {
        Ok(entry) => entry,
        Err(e) => return busy(&e).map_or_else(|| Err(e.into()), Ok),
    };
    let error = entry
        .error
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    out.line(&format!(
        "test notification to {}: {} after {} attempt(s){error}",
        args.receiver,
        entry.status.as_str(),
        entry.attempts
    ))?;
    Ok(if entry.status == Status::Delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn silence(command: SilenceCommand, out: &mut Output) -> anyhow::Result<()> {
    match command {
        SilenceCommand::Add {
            data,
            matchers,
            duration,
            comment,
            id,
        } => {
            let dir = data.resolve()?;
            let now = wall_clock();
            let ms = parse_duration(&duration).context("--duration")?.as_millis();
            let ends = now
                .0
                .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX).saturating_mul(1000));
            let id = id.unwrap_or_else(|| format!("s-{}", now.0));
            let record = SilenceRecord {
                id,
                matchers,
                starts: now.0,
                ends,
                comment,
            };
            let id = silences::add(&dir, record)?;
            out.line(&format!("silence {id} until {}", Timestamp(ends).to_rfc3339()))
        }
        SilenceCommand::List { data } => {
            let now = wall_clock();
            for r in silences::records(&data.resolve()?)? {
                let state = if r.starts <= now.0 && now.0 < r.ends {
                    "active"
                } else {
                    "expired"
                };
                let until = Timestamp(r.ends).to_rfc3339();
                out.line(&format!(
                    "{}\t{state}\tuntil {until}\t{}\t{}",
                    r.id,
                    r.matchers.join(","),
                    r.comment
                ))?;
            }
            Ok(())
        }
        SilenceCommand::Expire { data, id } => {
            silences::expire(&data.resolve()?, &id, wall_clock())?;
            out.line(&format!("silence {id} expired"))
        }
    }
}

/// Runs `loglens config validate`: exit 0 when the file is usable, 2 naming the bad field otherwise.
pub fn config(args: ConfigArgs, out: &mut Output) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Validate { config } = args.command;
    match validate(&config) {
        Ok((summary, warnings)) => {
            for warning in warnings {
                eprintln!("loglens: warning: {warning}");
            }
            out.line(&format!("{}: ok ({summary})", config.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("loglens: error: {message}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Checks the file, and that the environment variables the receivers read are set (a run would
/// fail on them); returns the summary and the warnings.
fn validate(path: &Path) -> Result<(String, Vec<String>), String> {
    let engine = loglens_engine::Config::load(path).map_err(|e| e.to_string())?;
    let alert = AlertConfig::load(path).map_err(|e| e.to_string())?;
    let unset = alert.unset_variables();
    if !unset.is_empty() {
        let file = path.display();
        return Err(unset
            .iter()
            .map(|u| format!("{file}: {u}"))
            .collect::<Vec<_>>()
            .join("\nloglens: error: "));
    }
    let summary = format!(
        "{} inputs, {} formats, {} rules, {} receivers, {} silences",
        engine.inputs.len(),
        engine.formats.len(),
        alert.rules.len(),
        alert.receivers.len(),
        alert.silences.len()
    );
    Ok((summary, alert.warnings))
}
