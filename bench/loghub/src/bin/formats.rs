//! `formats`: runs loglens's format auto-detection (no config) on each Loghub-2k raw log and
//! compares every record's timestamp (to the second) and level with Loghub's structured CSV.
//! Detection is the engine's: the built-in formats on the first 100 lines, then the `generic`
//! fallback only when none reads half of them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use loglens_core::format::{LineParser, ParseContext};
use loglens_core::time::{month_from_abbr, Civil};
use loglens_core::{Level, Timestamp};
use loglens_engine::input::Parsers;
use loglens_engine::Config;

/// The systems and the CSV columns holding their time and level (`None`: Loghub has no level).
const SYSTEMS: [(&str, Truth, Option<&str>); 12] = [
    ("Android", Truth::MonthDay("Date", "Time"), Some("Level")),
    ("Apache", Truth::Ctime("Time"), Some("Level")),
    ("BGL", Truth::Epoch("Timestamp"), Some("Level")),
    ("HDFS", Truth::Compact("Date", "Time"), Some("Level")),
    ("HPC", Truth::Epoch("Time"), None),
    ("Hadoop", Truth::Iso("Date", "Time"), Some("Level")),
    // Loghub's `Level` column of Linux holds the host name: syslog lines carry no level.
    ("Linux", Truth::Syslog("Month", "Date", "Time"), None),
    ("OpenStack", Truth::Iso("Date", "Time"), Some("Level")),
    ("Proxifier", Truth::Dotted("Time"), None),
    ("Spark", Truth::Iso("Date", "Time"), Some("Level")),
    ("Windows", Truth::Iso("Date", "Time"), Some("Level")),
    ("Zookeeper", Truth::Iso("Date", "Time"), Some("Level")),
];

/// How a system's CSV writes the time of a line.
#[derive(Clone, Copy)]
enum Truth {
    /// `MM-dd` and `HH:mm:ss.SSS` (no year).
    MonthDay(&'static str, &'static str),
    /// `Sun Dec 04 04:47:44 2005`.
    Ctime(&'static str),
    /// Seconds since the epoch.
    Epoch(&'static str),
    /// `yyMMdd` and `HHmmss`.
    Compact(&'static str, &'static str),
    /// `yyyy-MM-dd` or `yy/MM/dd`, and `HH:mm:ss[,.]SSS`.
    Iso(&'static str, &'static str),
    /// `Jun`, `14`, `15:16:01` (no year).
    Syslog(&'static str, &'static str, &'static str),
    /// `MM.dd HH:mm:ss` (no year).
    Dotted(&'static str),
}

/// A wall-clock time to the second; `year` is `None` when the log has none.
#[derive(Debug, PartialEq)]
struct Wall {
    year: Option<i32>,
    rest: [u32; 5],
}

fn num(s: &str) -> Option<u32> {
    s.trim().parse().ok()
}

/// `HH:mm:ss` (any fraction ignored) as hour, minute, second.
fn hms(time: &str) -> Option<[u32; 3]> {
    let mut parts = time.get(..8)?.split(':');
    Some([num(parts.next()?)?, num(parts.next()?)?, num(parts.next()?)?])
}

fn wall(year: Option<i32>, month: u32, day: u32, [h, m, s]: [u32; 3]) -> Wall {
    Wall {
        year,
        rest: [month, day, h, m, s],
    }
}

impl Truth {
    fn read(self, row: &csv::StringRecord, col: &dyn Fn(&str) -> Option<usize>) -> Option<Wall> {
        let get = |name: &str| row.get(col(name)?);
        match self {
            Truth::MonthDay(date, time) => {
                let (m, d) = get(date)?.split_once('-')?;
                Some(wall(None, num(m)?, num(d)?, hms(get(time)?)?))
            }
            Truth::Ctime(time) => {
                let parts: Vec<&str> = get(time)?.split_whitespace().collect();
                let [_, mon, day, t, year] = parts.as_slice() else {
                    return None;
                };
                let month = u32::from(month_from_abbr(mon.as_bytes())?);
                Some(wall(Some(num(year)? as i32), month, num(day)?, hms(t)?))
            }
            Truth::Epoch(column) => Some(civil_wall(
                Timestamp::from_secs(get(column)?.trim().parse().ok()?).to_civil(0),
                true,
            )),
            Truth::Compact(date, time) => {
                let (d, t) = (get(date)?, get(time)?);
                let n = |s: &str, i: usize| num(s.get(i..i + 2)?);
                Some(wall(
                    Some(2000 + n(d, 0)? as i32),
                    n(d, 2)?,
                    n(d, 4)?,
                    [n(t, 0)?, n(t, 2)?, n(t, 4)?],
                ))
            }
            Truth::Iso(date, time) => {
                let parts: Vec<&str> = get(date)?.split(['-', '/']).collect();
                let [y, m, d] = parts.as_slice() else { return None };
                let year = num(y)? as i32;
                let year = if y.len() == 2 { 2000 + year } else { year };
                Some(wall(Some(year), num(m)?, num(d)?, hms(get(time)?)?))
            }
            Truth::Syslog(month, day, time) => {
                let m = u32::from(month_from_abbr(get(month)?.as_bytes())?);
                Some(wall(None, m, num(get(day)?)?, hms(get(time)?)?))
            }
            Truth::Dotted(time) => {
                let (date, t) = get(time)?.split_once(' ')?;
                let (m, d) = date.split_once('.')?;
                Some(wall(None, num(m)?, num(d)?, hms(t)?))
            }
        }
    }
}

fn civil_wall(c: Civil, with_year: bool) -> Wall {
    let hms = [u32::from(c.hour), u32::from(c.minute), u32::from(c.second)];
    wall(
        with_year.then_some(c.year),
        u32::from(c.month),
        u32::from(c.day),
        hms,
    )
}

/// Loghub's level text as a level: a name, or an Android single letter.
fn truth_level(text: &str) -> Option<Level> {
    text.parse().ok().or(match text {
        "V" => Some(Level::Trace),
        "D" => Some(Level::Debug),
        "I" => Some(Level::Info),
        "W" => Some(Level::Warn),
        "E" => Some(Level::Error),
        "F" | "A" => Some(Level::Critical),
        _ => None,
    })
}

/// The engine's detection (`Parsers::detect`, what `loglens process` runs with no config):
/// the built-in formats, Rust and TOML, then the generic fallback.
fn detect_parser(sample: &[&str], ctx: &ParseContext) -> Result<Option<Arc<dyn LineParser>>, String> {
    let parsers = Parsers::from_config(&Config::default()).map_err(|e| e.to_string())?;
    Ok(parsers.detect(sample, ctx).parser)
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

fn run_system(dir: &Path, name: &str, truth: Truth, level_col: Option<&str>) -> Result<String, String> {
    let log_path = dir.join(format!("{name}_2k.log"));
    let csv_path = dir.join(format!("{name}_2k.log_structured.csv"));
    let text = std::fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut reader = csv::Reader::from_path(&csv_path).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", csv_path.display()))?
        .clone();
    let col = |c: &str| headers.iter().position(|h| h == c);
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    if rows.len() != lines.len() {
        return Err(format!(
            "{name}: {} lines but {} CSV rows",
            lines.len(),
            rows.len()
        ));
    }
    // Loghub-2k logs are years old: any reference after them reads year-less times; UTC.
    let ctx = ParseContext {
        reference: Timestamp::from_secs(1_800_000_000),
        ..ParseContext::default()
    };
    let Some(parser) = detect_parser(&lines[..lines.len().min(100)], &ctx)? else {
        return Ok(format!(
            "{name:<10} {:<10} {:>7.1} {:>7.1} {:>7}",
            "(none)",
            0.0,
            0.0,
            level_col.map_or("n/a", |_| "0.0")
        ));
    };
    let (mut records, mut right_time, mut right_level) = (0, 0, 0);
    for (line, row) in lines.iter().zip(&rows) {
        let Ok(record) = parser.parse(line, &ctx) else {
            continue;
        };
        records += 1;
        if let Some(expected) = truth.read(row, &col) {
            if civil_wall(record.ts.to_civil(0), expected.year.is_some()) == expected {
                right_time += 1;
            }
        }
        if let Some(c) = level_col {
            if row.get(col(c).unwrap_or(usize::MAX)).and_then(truth_level) == record.level
                && record.level.is_some()
            {
                right_level += 1;
            }
        }
    }
    let n = lines.len();
    let level = level_col.map_or("n/a".to_owned(), |_| format!("{:.1}", percent(right_level, n)));
    Ok(format!(
        "{name:<10} {:<10} {:>7.1} {:>7.1} {:>7}",
        parser.name(),
        percent(records, n),
        percent(right_time, n),
        level
    ))
}

fn main() -> ExitCode {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(loglens_loghub::default_data_dir);
    if !dir.is_dir() {
        eprintln!(
            "formats: no Loghub-2k data at {} (pass the directory, or set LOGHUB_DATA); skipped",
            dir.display()
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<10} {:<10} {:>7} {:>7} {:>7}",
        "system", "format", "records%", "time%", "level%"
    );
    let mut failed = false;
    for (name, truth, level) in SYSTEMS {
        if !dir.join(name).join(format!("{name}_2k.log")).is_file() {
            println!("{name:<10} (absent, skipped)");
            continue;
        }
        match run_system(&dir.join(name), name, truth, level) {
            Ok(row) => println!("{row}"),
            Err(e) => {
                eprintln!("formats: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
