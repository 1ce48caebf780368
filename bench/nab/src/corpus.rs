//! Reading a NAB-layout directory: `data/<folder>/<file>.csv` (`timestamp,value`),
//! `labels/combined_windows.json` and `config/profiles.json`. Rows are kept in file order,
//! duplicates and steps back in time included (SCORING.md §1, §8.1).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use loglens_core::time::{Civil, Timestamp};
use serde::Deserialize;

/// A NAB directory that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A file could not be read.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A file's content is malformed.
    #[error("{0}: {1}")]
    Format(PathBuf, String),
}

/// One data file: its key (`realKnownCause/nyc_taxi.csv`), rows, and windows as row indices.
#[derive(Debug, Clone)]
pub struct Series {
    /// Path relative to `data/`, as in the label file.
    pub key: String,
    /// Row timestamps, file order.
    pub ts: Vec<Timestamp>,
    /// Row values, file order.
    pub values: Vec<f64>,
    /// Anomaly windows as inclusive row ranges `(a, b)`.
    pub windows: Vec<(usize, usize)>,
}

impl Series {
    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The probationary length: 15% of the rows, at most 750 (SCORING.md §3).
    pub fn probation(&self) -> usize {
        probation(self.len())
    }
}

/// `min(floor(0.15 n), 750)`.
pub fn probation(n: usize) -> usize {
    (n as f64 * 0.15).floor().min(750.0) as usize
}

/// A scoring profile's cost matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// `standard`, `reward_low_FP_rate` or `reward_low_FN_rate`.
    pub name: String,
    /// Weight of a true positive.
    pub tp: f64,
    /// Weight of a false positive.
    pub fp: f64,
    /// Weight of a false negative.
    pub fn_: f64,
}

impl Profile {
    /// The three NAB profiles, as in NAB's `config/profiles.json` (SCORING.md §1).
    pub fn nab() -> Vec<Profile> {
        vec![
            Profile::new("standard", 1.0, 0.11, 1.0),
            Profile::new("reward_low_FP_rate", 1.0, 0.22, 1.0),
            Profile::new("reward_low_FN_rate", 1.0, 0.11, 2.0),
        ]
    }

    fn new(name: &str, tp: f64, fp: f64, fn_: f64) -> Profile {
        Profile {
            name: name.to_owned(),
            tp,
            fp,
            fn_,
        }
    }
}

#[derive(Deserialize)]
struct CostMatrixFile {
    #[serde(rename = "CostMatrix")]
    cost: Costs,
}

#[derive(Deserialize)]
struct Costs {
    #[serde(rename = "tpWeight")]
    tp: f64,
    #[serde(rename = "fpWeight")]
    fp: f64,
    #[serde(rename = "fnWeight")]
    fn_: f64,
}

/// Reads `profiles.json`, in NAB's order (standard, low FP, low FN).
pub fn read_profiles(path: &Path) -> Result<Vec<Profile>, CorpusError> {
    let text = fs::read_to_string(path).map_err(|e| CorpusError::Io(path.to_owned(), e))?;
    let map: BTreeMap<String, CostMatrixFile> =
        serde_json::from_str(&text).map_err(|e| CorpusError::Format(path.to_owned(), e.to_string()))?;
    let order = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];
    let mut out: Vec<Profile> = order
        .iter()
        .filter_map(|name| {
            map.get(*name)
                .map(|c| Profile::new(name, c.cost.tp, c.cost.fp, c.cost.fn_))
        })
        .collect();
    out.extend(
        map.iter()
            .filter(|(k, _)| !order.contains(&k.as_str()))
            .map(|(k, c)| Profile::new(k, c.cost.tp, c.cost.fp, c.cost.fn_)),
    );
    Ok(out)
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional `.ffffff` fraction, as UTC.
pub fn parse_ts(text: &str) -> Option<Timestamp> {
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| std::str::from_utf8(b.get(r)?).ok()?.parse::<u32>().ok();
    let micros = match b.get(19) {
        None => 0,
        Some(b'.') => {
            let frac = std::str::from_utf8(&b[20..]).ok()?;
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
            digits.parse().ok()?
        }
        Some(_) => return None,
    };
    let civil = Civil {
        year: i32::try_from(num(0..4)?).ok()?,
        month: u8::try_from(num(5..7)?).ok()?,
        day: u8::try_from(num(8..10)?).ok()?,
        hour: u8::try_from(num(11..13)?).ok()?,
        minute: u8::try_from(num(14..16)?).ok()?,
        second: u8::try_from(num(17..19)?).ok()?,
        micros,
    };
    civil.to_timestamp(0).ok()
}

/// Reads one `timestamp,value` CSV file.
pub fn read_csv(path: &Path) -> Result<(Vec<Timestamp>, Vec<f64>), CorpusError> {
    let text = fs::read_to_string(path).map_err(|e| CorpusError::Io(path.to_owned(), e))?;
    let bad = |line: usize, what: &str| CorpusError::Format(path.to_owned(), format!("line {line}: {what}"));
    let mut ts = Vec::new();
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| bad(i + 1, "expected timestamp,value"))?;
        ts.push(parse_ts(t).ok_or_else(|| bad(i + 1, "bad timestamp"))?);
        values.push(v.trim().parse::<f64>().map_err(|_| bad(i + 1, "bad value"))?);
    }
    Ok((ts, values))
}

/// Reads every file listed in the windows file (`labels`), from `data`, in key order.
/// Window ends map to the first row with exactly that timestamp.
pub fn read_corpus(data: &Path, labels: &Path) -> Result<Vec<Series>, CorpusError> {
    let text = fs::read_to_string(labels).map_err(|e| CorpusError::Io(labels.to_owned(), e))?;
    let windows: BTreeMap<String, Vec<[String; 2]>> =
        serde_json::from_str(&text).map_err(|e| CorpusError::Format(labels.to_owned(), e.to_string()))?;
    let mut out = Vec::new();
    for (key, wins) in windows {
        let path = data.join(&key);
        let (ts, values) = read_csv(&path)?;
        let row_of = |text: &str| {
            let t = parse_ts(text)?;
            ts.iter().position(|&x| x == t)
        };
        let mut rows = Vec::new();
        for [start, end] in &wins {
            match (row_of(start), row_of(end)) {
                (Some(a), Some(b)) if a <= b => rows.push((a, b)),
                _ => {
                    let why = format!("window {start} .. {end} of {key} does not match rows");
                    return Err(CorpusError::Format(labels.to_owned(), why));
                }
            }
        }
        out.push(Series {
            key,
            ts,
            values,
            windows: rows,
        });
    }
    Ok(out)
}
