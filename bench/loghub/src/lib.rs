//! The Loghub-2k accuracy benchmark of loglens's template miner: split each log line into
//! header and content with the dataset's `log_format`, mine the contents, and score the result
//! against the ground truth with grouping accuracy (GA) and parsing accuracy (PA).
//!
//! The data (`../shared/data/loghub`) is not part of the repository; see its README for the
//! exact metric definitions and the ground-truth versions. Per-dataset settings (header
//! format, masking regexes, `st`, `depth`) are logparser's published Drain settings, in
//! `settings.toml`; the algorithm is the same for every dataset.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use loglens_core::template::{ClusterId, MaskRule, MinerConfig, TemplateMiner};
use regex::Regex;
use serde::Deserialize;

/// An error with a message naming the file or setting at fault.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err(msg: impl Into<String>) -> Error {
    Error(msg.into())
}

/// `settings.toml`: the miner settings shared by every dataset, then one entry per dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Children per tree node (Drain's `maxChild`, not set by the benchmark: 100).
    #[serde(default = "default_max_children")]
    pub max_children: usize,
    /// The miner's `digit_tokens_vary` (default true, as in loglens).
    #[serde(default = "default_true")]
    pub digit_tokens_vary: bool,
    /// The miner's `min_word_values` (default: loglens's).
    #[serde(default = "default_min_word_values")]
    pub min_word_values: usize,
    /// The datasets, in the order they are reported.
    #[serde(rename = "dataset")]
    pub datasets: Vec<DatasetSettings>,
}

fn default_max_children() -> usize {
    100
}

fn default_min_word_values() -> usize {
    MinerConfig::default().min_word_values
}

fn default_true() -> bool {
    true
}

/// Settings that apply to every dataset.
#[derive(Debug, Clone, Copy)]
pub struct Common {
    /// Children per tree node.
    pub max_children: usize,
    /// See [`MinerConfig::digit_tokens_vary`].
    pub digit_tokens_vary: bool,
    /// See [`MinerConfig::min_word_values`].
    pub min_word_values: usize,
}

impl Settings {
    /// The settings shared by every dataset.
    pub fn common(&self) -> Common {
        Common {
            max_children: self.max_children,
            digit_tokens_vary: self.digit_tokens_vary,
            min_word_values: self.min_word_values,
        }
    }
}

/// One dataset's settings, as in logparser's Drain benchmark.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSettings {
    /// Directory name under the data directory, and file prefix (`<name>/<name>_2k.log`).
    pub name: String,
    /// Header layout: `<Field>` markers, literal text between them is a regex fragment, runs
    /// of spaces match `\s+`; the `Content` field is what is mined.
    pub log_format: String,
    /// Masking regexes, applied in order to the content, each match replaced by `<*>`.
    #[serde(default)]
    pub regex: Vec<String>,
    /// Similarity threshold.
    pub st: f64,
    /// Tree depth.
    pub depth: usize,
}

impl Settings {
    /// Reads and checks a settings file.
    pub fn load(path: &Path) -> Result<Settings, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("cannot read settings {}: {e}", path.display())))?;
        let settings: Settings =
            toml::from_str(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
        for d in &settings.datasets {
            d.miner_config(settings.common(), false)
                .map_err(|e| err(format!("{}: dataset {}: {e}", path.display(), d.name)))?;
            LogFormat::new(&d.log_format)
                .map_err(|e| err(format!("{}: dataset {}: {e}", path.display(), d.name)))?;
        }
        Ok(settings)
    }
}

impl DatasetSettings {
    /// The miner configuration for this dataset: loglens's algorithm, or with `drain` the
    /// faithful port of logparser's Drain (no built-in maskers), for checking the port.
    pub fn miner_config(&self, common: Common, drain: bool) -> Result<MinerConfig, Error> {
        let masks = self
            .regex
            .iter()
            .map(|r| MaskRule::new(r).map_err(|e| err(format!("regex {r:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let base = if drain {
            MinerConfig::drain()
        } else {
            MinerConfig::default()
        };
        Ok(MinerConfig {
            depth: self.depth,
            similarity_threshold: self.st,
            max_children: common.max_children,
            digit_tokens_vary: common.digit_tokens_vary,
            min_word_values: if drain { 0 } else { common.min_word_values },
            masks,
            ..base
        })
    }
}

/// A compiled `log_format`: cuts a line into its header fields and `Content`.
#[derive(Debug, Clone)]
pub struct LogFormat {
    regex: Regex,
}

impl LogFormat {
    /// Compiles a `log_format` exactly as logparser does: literal text between `<Field>`
    /// markers is a regex fragment in which every run of spaces becomes `\s+`, each field a
    /// lazy named group, the whole anchored `^…$`.
    pub fn new(log_format: &str) -> Result<LogFormat, Error> {
        let marker = Regex::new(r"<[^<>]+>").map_err(|e| err(e.to_string()))?;
        let spaces = Regex::new(" +").map_err(|e| err(e.to_string()))?;
        let mut pattern = String::from("^");
        let mut last = 0;
        let mut has_content = false;
        for m in marker.find_iter(log_format) {
            pattern.push_str(&spaces.replace_all(&log_format[last..m.start()], r"\s+"));
            let name = &log_format[m.start() + 1..m.end() - 1];
            has_content |= name == "Content";
            pattern.push_str(&format!("(?P<{name}>.*?)"));
            last = m.end();
        }
        pattern.push_str(&spaces.replace_all(&log_format[last..], r"\s+"));
        pattern.push('$');
        if !has_content {
            return Err(err(format!("log_format {log_format:?} has no <Content> field")));
        }
        let regex = Regex::new(&pattern).map_err(|e| err(format!("log_format {log_format:?}: {e}")))?;
        Ok(LogFormat { regex })
    }

    /// The `Content` of a line (surrounding white space stripped first, as logparser does), or
    /// `None` when the line does not have the format.
    pub fn content<'a>(&self, line: &'a str) -> Option<&'a str> {
        self.regex
            .captures(line.trim())
            .and_then(|c| c.name("Content"))
            .map(|m| m.as_str())
    }
}

/// One dataset's lines with their ground truth.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Dataset name.
    pub name: String,
    /// The mined part of each line.
    pub contents: Vec<String>,
    /// Ground-truth event id of each line (primary corrected ground truth).
    pub event_ids: Vec<String>,
    /// Ground-truth template of each line.
    pub event_templates: Vec<String>,
    /// Lines the `log_format` did not match (mined whole).
    pub unmatched: usize,
}

impl Dataset {
    /// Reads `<dir>/<name>_2k.log` and its primary ground truth
    /// `<dir>/<name>_2k.log_structured_corrected.csv`.
    pub fn load(dir: &Path, settings: &DatasetSettings) -> Result<Dataset, Error> {
        let name = &settings.name;
        let log_path = dir.join(format!("{name}_2k.log"));
        let gt_path = dir.join(format!("{name}_2k.log_structured_corrected.csv"));
        let log = std::fs::read_to_string(&log_path)
            .map_err(|e| err(format!("cannot read {}: {e}", log_path.display())))?;
        let format = LogFormat::new(&settings.log_format)?;
        let mut contents = Vec::new();
        let mut unmatched = 0;
        for line in log.lines() {
            match format.content(line) {
                Some(c) => contents.push(c.to_owned()),
                None => {
                    unmatched += 1;
                    contents.push(line.trim().to_owned());
                }
            }
        }
        let mut reader = csv::Reader::from_path(&gt_path)
            .map_err(|e| err(format!("cannot read {}: {e}", gt_path.display())))?;
        let headers = reader
            .headers()
            .map_err(|e| err(format!("{}: {e}", gt_path.display())))?
            .clone();
        let column = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| err(format!("{}: no column {name}", gt_path.display())))
        };
        let (id_col, template_col) = (column("EventId")?, column("EventTemplate")?);
        let mut event_ids = Vec::new();
        let mut event_templates = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| err(format!("{}: {e}", gt_path.display())))?;
            event_ids.push(record.get(id_col).unwrap_or_default().to_owned());
            event_templates.push(record.get(template_col).unwrap_or_default().to_owned());
        }
        if event_ids.len() != contents.len() {
            return Err(err(format!(
                "{} has {} lines but {} has {} rows",
                log_path.display(),
                contents.len(),
                gt_path.display(),
                event_ids.len()
            )));
        }
        Ok(Dataset {
            name: name.clone(),
            contents,
            event_ids,
            event_templates,
            unmatched,
        })
    }
}

/// The result of mining one dataset.
#[derive(Debug, Clone)]
pub struct Mined {
    /// Final template id of each line (its cluster's template at the end).
    pub labels: Vec<u64>,
    /// Final template text of each line.
    pub templates: Vec<String>,
    /// Number of distinct templates.
    pub template_count: usize,
}

/// Mines `contents` with one miner, one line after another.
pub fn mine(contents: &[String], config: MinerConfig) -> Mined {
    let mut miner = TemplateMiner::new(config);
    let clusters: Vec<ClusterId> = contents.iter().map(|c| miner.add(c).cluster).collect();
    let set = miner.snapshot();
    let mut labels = Vec::with_capacity(clusters.len());
    let mut templates = Vec::with_capacity(clusters.len());
    for c in clusters {
        let t = set.template_of(c);
        labels.push(t.map_or(u64::MAX, |t| t.id.0));
        templates.push(t.map(|t| t.text.clone()).unwrap_or_default());
    }
    Mined {
        labels,
        templates,
        template_count: set.templates().len(),
    }
}

/// Mining throughput in lines per second: mines the contents with fresh miners until at least
/// `min_seconds` have passed (at least once).
pub fn throughput(contents: &[String], config: &MinerConfig, min_seconds: f64) -> f64 {
    let start = Instant::now();
    let mut lines = 0usize;
    loop {
        let mut miner = TemplateMiner::new(config.clone());
        for c in contents {
            std::hint::black_box(miner.add(c));
        }
        lines += contents.len();
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= min_seconds {
            return lines as f64 / elapsed.max(1e-9);
        }
    }
}

/// Grouping accuracy: the share of items whose predicted group (items with the same
/// predicted label) is exactly their ground-truth group (items with the same true label).
pub fn grouping_accuracy<P, T>(predicted: &[P], truth: &[T]) -> f64
where
    P: Eq + std::hash::Hash,
    T: Eq + std::hash::Hash,
{
    if predicted.is_empty() || predicted.len() != truth.len() {
        return 0.0;
    }
    let mut pred_size: HashMap<&P, usize> = HashMap::new();
    let mut true_size: HashMap<&T, usize> = HashMap::new();
    let mut pair_size: HashMap<(&P, &T), usize> = HashMap::new();
    for (p, t) in predicted.iter().zip(truth) {
        *pred_size.entry(p).or_default() += 1;
        *true_size.entry(t).or_default() += 1;
        *pair_size.entry((p, t)).or_default() += 1;
    }
    // An item is correct iff its (predicted, true) pair covers both whole groups.
    let correct = predicted
        .iter()
        .zip(truth)
        .filter(|(p, t)| {
            let n = pair_size[&(*p, *t)];
            n == pred_size[p] && n == true_size[t]
        })
        .count();
    correct as f64 / predicted.len() as f64
}

/// F1 of grouping accuracy (Loghub-2.0): a predicted group is correct iff it equals a
/// ground-truth group exactly.
pub fn fga<P, T>(predicted: &[P], truth: &[T]) -> f64
where
    P: Eq + std::hash::Hash,
    T: Eq + std::hash::Hash,
{
    let mut pred_size: HashMap<&P, usize> = HashMap::new();
    let mut true_size: HashMap<&T, usize> = HashMap::new();
    let mut pair_size: HashMap<(&P, &T), usize> = HashMap::new();
    for (p, t) in predicted.iter().zip(truth) {
        *pred_size.entry(p).or_default() += 1;
        *true_size.entry(t).or_default() += 1;
        *pair_size.entry((p, t)).or_default() += 1;
    }
    let correct = pair_size
        .iter()
        .filter(|((p, t), n)| **n == pred_size[p] && **n == true_size[t])
        .count();
    if correct == 0 {
        return 0.0;
    }
    let precision = correct as f64 / pred_size.len() as f64;
    let recall = correct as f64 / true_size.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Parsing accuracy: the share of items whose predicted template text equals the ground-truth
/// template text exactly.
pub fn parsing_accuracy(predicted: &[String], truth: &[String]) -> f64 {
    if predicted.is_empty() || predicted.len() != truth.len() {
        return 0.0;
    }
    predicted.iter().zip(truth).filter(|(p, t)| p == t).count() as f64 / predicted.len() as f64
}

/// Published Drain figures for one dataset, from `published_drain.csv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Published {
    /// Drain's GA against the primary (corrected) ground truth grouped by EventId, measured
    /// with logparser's Drain (the comparison figure).
    pub ga_primary: Option<f64>,
    /// Drain's GA against the original Loghub-2k ground truth (logparser README).
    pub ga_original: Option<f64>,
}

/// Reads `published_drain.csv` of the data directory (dataset name to figures); empty when
/// the file is absent.
pub fn load_published(data: &Path) -> Result<HashMap<String, Published>, Error> {
    let path = data.join("published_drain.csv");
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let mut reader =
        csv::Reader::from_path(&path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| err(format!("{}: {e}", path.display())))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (name_col, primary_col, original_col) = (
        col("dataset"),
        col("steering_repro_ga_primary_gt_by_eventid"),
        col("ga_original_gt__logparser_readme"),
    );
    let mut out = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| err(format!("{}: {e}", path.display())))?;
        let get = |c: Option<usize>| {
            c.and_then(|c| record.get(c))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let Some(name) = name_col.and_then(|c| record.get(c)) {
            out.insert(
                name.to_owned(),
                Published {
                    ga_primary: get(primary_col),
                    ga_original: get(original_col),
                },
            );
        }
    }
    Ok(out)
}

/// One dataset's scores.
#[derive(Debug, Clone)]
pub struct DatasetReport {
    /// Dataset name.
    pub name: String,
    /// Lines mined.
    pub lines: usize,
    /// Ground-truth groups (by EventId).
    pub truth_groups: usize,
    /// Templates found.
    pub templates: usize,
    /// Grouping accuracy.
    pub ga: f64,
    /// F1 of grouping accuracy.
    pub fga: f64,
    /// Parsing accuracy against the primary ground truth's template text.
    pub pa: f64,
    /// GA of the faithful Drain port on the same input, when computed.
    pub drain_port_ga: Option<f64>,
    /// Published Drain figures.
    pub published: Published,
    /// Mining throughput (lines/s), when measured.
    pub lines_per_sec: Option<f64>,
    /// Lines the `log_format` did not match.
    pub unmatched: usize,
}

/// Scores one dataset.
pub fn evaluate(
    dataset: &Dataset,
    settings: &DatasetSettings,
    common: Common,
    with_drain_port: bool,
) -> Result<(DatasetReport, Mined), Error> {
    let config = settings.miner_config(common, false)?;
    let mined = mine(&dataset.contents, config);
    let drain_port_ga = if with_drain_port {
        let drain = mine(&dataset.contents, settings.miner_config(common, true)?);
        Some(grouping_accuracy(&drain.labels, &dataset.event_ids))
    } else {
        None
    };
    let mut report = score(dataset, &mined);
    report.drain_port_ga = drain_port_ga;
    Ok((report, mined))
}

/// Scores mined labels against a dataset's ground truth.
pub fn score(dataset: &Dataset, mined: &Mined) -> DatasetReport {
    let truth_groups = dataset
        .event_ids
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    DatasetReport {
        name: dataset.name.clone(),
        lines: dataset.contents.len(),
        truth_groups,
        templates: mined.template_count,
        ga: grouping_accuracy(&mined.labels, &dataset.event_ids),
        fga: fga(&mined.labels, &dataset.event_ids),
        pa: parsing_accuracy(&mined.templates, &dataset.event_templates),
        drain_port_ga: None,
        published: Published::default(),
        lines_per_sec: None,
        unmatched: dataset.unmatched,
    }
}

/// Where the data directory is for tests: `$LOGHUB_DATA`, else `shared/data/loghub` beside
/// the repository.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LOGHUB_DATA") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/loghub")
}

/// The settings file of this package.
pub fn default_settings_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("settings.toml")
}

/// Every dataset of `settings` present under `data`, scored (no throughput). Datasets whose
/// directory is absent are skipped.
pub fn evaluate_all(
    data: &Path,
    settings: &Settings,
    with_drain_port: bool,
) -> Result<Vec<DatasetReport>, Error> {
    let published = load_published(data)?;
    let mut reports = Vec::new();
    for ds in &settings.datasets {
        let dir = data.join(&ds.name);
        if !dir.is_dir() {
            continue;
        }
        let dataset = Dataset::load(&dir, ds)?;
        let (mut report, _) = evaluate(&dataset, ds, settings.common(), with_drain_port)?;
        report.published = published.get(&ds.name).copied().unwrap_or_default();
        reports.push(report);
    }
    Ok(reports)
}

/// The mean of some values (0 for none).
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_accuracy_on_a_small_example() {
        // Truth: {0,1,2} {3,4} {5}. Prediction: {0,1,2} {3} {4,5}.
        let truth = ["A", "A", "A", "B", "B", "C"];
        let predicted = [1, 1, 1, 2, 3, 3];
        // Only items 0,1,2 have a predicted group equal to their true group.
        assert_eq!(grouping_accuracy(&predicted, &truth), 0.5);
        // Labels are only names: a renaming scores 1.
        assert_eq!(grouping_accuracy(&[7, 7, 7, 9, 9, 8], &truth), 1.0);
        // One group for everything: nobody is right.
        assert_eq!(grouping_accuracy(&[0; 6], &truth), 0.0);
        // One correct predicted group of 3 predicted and 3 true: FGA = 1/3.
        assert!((fga(&predicted, &truth) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn parsing_accuracy_compares_text_exactly() {
        let truth = vec!["a <*>".to_owned(), "b <*>".to_owned(), "c <*>:<*>".to_owned()];
        let predicted = vec!["a <*>".to_owned(), "b x".to_owned(), "c <*>".to_owned()];
        assert!((parsing_accuracy(&predicted, &truth) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn log_format_cuts_content_like_logparser() {
        let f = LogFormat::new(r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>")
            .expect("valid");
        let line = "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200";
        assert_eq!(f.content(line), Some("Notification time out: 3200"));
        let f = LogFormat::new(r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>")
            .expect("valid");
        assert_eq!(
            f.content("Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown"),
            Some("check pass; user unknown")
        );
        assert_eq!(f.content("Jun 14 15:16:02 combo kernel: x  "), Some("x"));
        assert!(LogFormat::new("<Date> <Message>").is_err());
    }
}
