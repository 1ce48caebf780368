//! `loglens templates`: the most frequent log templates of the data directory, or with
//! `--new-since` the ones first seen after a time (the start of new-error hunting).

use std::path::PathBuf;

use anyhow::Context;
use loglens_core::template::{canonical_templates, TemplateStats};
use loglens_core::Timestamp;
use loglens_store::{read_templates, DataDir, Dataset};
use serde_json::json;

use crate::cmd::DataDirArgs;
use crate::output::{thousands, Output};

/// Options of `loglens templates`.
#[derive(Debug, clap::Args)]
pub struct TemplatesArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Only templates first seen after this time: RFC 3339 (`2026-11-20T08:00:00Z`) or a date.
    #[arg(long, value_parser = parse_time)]
    pub new_since: Option<Timestamp>,
    /// Templates to list (most frequent first).
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--new-since`: RFC 3339, or `YYYY-MM-DD` meaning midnight UTC.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    Timestamp::parse_rfc3339(&full, 0)
        .map_err(|e| format!("`{text}` is not a time like 2026-11-20T08:00:00Z or 2026-11-20: {e}"))
}

/// Runs `loglens templates`.
pub fn run(args: TemplatesArgs, out: &mut Output) -> anyhow::Result<()> {
    let root: PathBuf = args.data.resolve()?;
    let dir = DataDir::create(&root)?.dataset(Dataset::Templates);
    let stored = read_templates(&dir).with_context(|| format!("reading templates of {}", root.display()))?;
    // Ids of templates that generalized since count under the template they belong to now.
    let all = canonical_templates(&stored);
    if all.is_empty() {
        out.line(&format!(
            "no templates in {}: run `loglens process` on some logs first",
            root.display()
        ))?;
        return Ok(());
    }
    let total: u64 = all.iter().map(|t| t.count).sum();
    let mut shown: Vec<&TemplateStats> = all
        .iter()
        .filter(|t| args.new_since.is_none_or(|since| t.first_seen > since))
        .collect();
    shown.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    let matching = shown.len();
    shown.truncate(args.limit);
    if args.json {
        for t in shown {
            out.line(&row_json(t, total).to_string())?;
        }
        return Ok(());
    }
    let heading = match args.new_since {
        Some(since) => format!("{matching} templates first seen after {}", since.to_rfc3339()),
        None => format!("{} templates over {} records", all.len(), thousands(total)),
    };
    out.line(&heading)?;
    out.line(&format!(
        "{:>10} {:>6}  {:<20} {:<20} {:<8} template",
        "count", "share", "first seen", "last seen", "level"
    ))?;
    for t in shown {
        out.line(&format!(
            "{:>10} {:>5.1}%  {:<20} {:<20} {:<8} {}",
            thousands(t.count),
            share(t.count, total),
            t.first_seen.to_rfc3339(),
            t.last_seen.to_rfc3339(),
            t.level.map_or("-", |l| l.as_str()),
            t.template
        ))?;
    }
    Ok(())
}

fn share(count: u64, total: u64) -> f64 {
    100.0 * count as f64 / total.max(1) as f64
}

fn row_json(t: &TemplateStats, total: u64) -> serde_json::Value {
    json!({
        "template_id": t.id,
        "template": t.template,
        "count": t.count,
        "share": share(t.count, total) / 100.0,
        "first_seen": t.first_seen.to_rfc3339(),
        "last_seen": t.last_seen.to_rfc3339(),
        "level": t.level.map(|l| l.as_str()),
        "service": t.service,
        "example": t.example,
    })
}
