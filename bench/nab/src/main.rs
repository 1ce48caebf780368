//! `loglens-nab`: runs loglens's detectors over a NAB-layout directory and prints their NAB
//! scores (standard, reward low FP, reward low FN) beside the published detectors on the
//! developers' subset.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use loglens_nab::detectors::CombinedParams;
use loglens_nab::tuning::{
    combined_grid, cross_validate, cross_validate_by_category, cross_validate_repeated,
};
use loglens_nab::{evaluate, read_corpus, read_profiles, run, scored, Method, Profile, PUBLISHED_SUBSET};

const USAGE: &str = "usage: loglens-nab [--data DIR] [--labels FILE] [--profiles FILE]

  --data DIR       NAB directory (default ../shared/data/nab); series are read from DIR/data
  --labels FILE    windows file (default DIR/labels/combined_windows.json)
  --profiles FILE  cost matrices (default DIR/config/profiles.json, else NAB's built-in three)
  --detail         per file, at each detector's standard θ*: raw score, false positives, and
                   where in each window the first detection fell (0 = left edge, miss)";

struct Args {
    data: PathBuf,
    labels: Option<PathBuf>,
    profiles: Option<PathBuf>,
    detail: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: PathBuf::from("../shared/data/nab"),
        labels: None,
        profiles: None,
        detail: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--data" => args.data = PathBuf::from(value("--data")?),
            "--labels" => args.labels = Some(PathBuf::from(value("--labels")?)),
            "--profiles" => args.profiles = Some(PathBuf::from(value("--profiles")?)),
            "--detail" => args.detail = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// How many random halvings `cross_validate_repeated` averages.
const RANDOM_SPLITS: usize = 20;

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run_bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        // `loglens-nab | head` closes the pipe early: not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loglens-nab: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::io::stdout().lock();
    let labels = args
        .labels
        .clone()
        .unwrap_or_else(|| args.data.join("labels/combined_windows.json"));
    if !args.data.join("data").is_dir() || !labels.is_file() {
        writeln!(
            out,
            "skipped: no NAB data at {} (or no {})",
            args.data.display(),
            labels.display()
        )?;
        return Ok(());
    }
    let profiles_path = args
        .profiles
        .clone()
        .unwrap_or_else(|| args.data.join("config/profiles.json"));
    let profiles = if profiles_path.is_file() {
        read_profiles(&profiles_path)?
    } else {
        Profile::nab()
    };
    let corpus = read_corpus(&args.data.join("data"), &labels)?;
    let rows: usize = corpus.iter().map(|s| s.len()).sum();
    let windows: usize = corpus.iter().map(|s| s.windows.len()).sum();
    writeln!(
        out,
        "NAB: {} files, {rows} rows, {windows} windows ({})",
        corpus.len(),
        args.data.display()
    )?;
    writeln!(out)?;
    let names: Vec<&str> = profiles.iter().map(|p| short(&p.name)).collect();
    writeln!(
        out,
        "{:<38} {:>9} {:>9} {:>9}   thresholds",
        "detector",
        names[0],
        names.get(1).unwrap_or(&""),
        names.get(2).unwrap_or(&"")
    )?;
    for method in Method::ALL {
        let scores: Vec<Vec<f64>> = corpus.iter().map(|s| run(method, s)).collect();
        let files = scored(&corpus, &scores);
        let results: Vec<_> = profiles.iter().map(|p| evaluate(&files, p)).collect();
        let cells: Vec<String> = results.iter().map(|r| format!("{:>9.2}", r.score)).collect();
        let thetas: Vec<String> = results
            .iter()
            .map(|r| format!("{:.6}", r.sweep.threshold))
            .collect();
        writeln!(
            out,
            "{:<38} {}   {}",
            method.name(),
            cells.join(" "),
            thetas.join(" / ")
        )?;
        if args.detail {
            if let (Some(p), Some(r)) = (profiles.first(), results.first()) {
                detail(&mut out, &corpus, &files, p, r.sweep.threshold)?;
            }
        }
    }
    let cells = combined_grid(&corpus);
    let pick = |p: CombinedParams| format!("learn {} w {}", p.learning_rows, p.weight);
    let validations = [
        (
            "loglens combined, 2-fold cross-valid.",
            cross_validate(&corpus, &cells),
        ),
        (
            "loglens combined, by category",
            cross_validate_by_category(&corpus, &cells),
        ),
    ];
    for (label, cv) in validations {
        let Some(cv) = cv else { continue };
        let scores: Vec<String> = cv.scores.iter().map(|s| format!("{s:>9.2}")).collect();
        let picks: Vec<String> = (cv.picks.iter())
            .map(|(fold, p)| format!("{fold}: {}", pick(*p)))
            .collect();
        writeln!(
            out,
            "{label:<38} {}   picks without {}",
            scores.join(" "),
            picks.join("; ")
        )?;
    }
    let repeated = cross_validate_repeated(&corpus, &cells, RANDOM_SPLITS);
    if !repeated.is_empty() {
        let standard: Vec<f64> = repeated.iter().map(|cv| cv.scores[0]).collect();
        let mean = |k: usize| repeated.iter().map(|cv| cv.scores[k]).sum::<f64>() / repeated.len() as f64;
        let (lo, hi) = standard
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
                (lo.min(s), hi.max(s))
            });
        writeln!(
            out,
            "{:<38} {:>9.2} {:>9.2} {:>9.2}   mean of {} random 2-fold splits (standard {lo:.2} to {hi:.2})",
            "loglens combined, random 2-fold",
            mean(0),
            mean(1),
            mean(2),
            repeated.len()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "published detectors on the developers' subset (SCORING.md §9.4; exhaustive sweep, K = 55):"
    )?;
    for (name, s) in PUBLISHED_SUBSET {
        writeln!(out, "{:<38} {:>9.2} {:>9.2} {:>9.2}", name, s[0], s[1], s[2])?;
    }
    Ok(())
}

fn detail(
    out: &mut impl Write,
    corpus: &[loglens_nab::Series],
    files: &[loglens_nab::ScoredFile<'_>],
    profile: &Profile,
    theta: f64,
) -> std::io::Result<()> {
    for (series, f) in corpus.iter().zip(files) {
        let r = loglens_nab::score_file(*f, profile, theta);
        let first: Vec<String> = series
            .windows
            .iter()
            .map(|&(a, b)| {
                (a..=b)
                    .find(|&i| f.scores[i] >= theta)
                    .map_or("miss".to_owned(), |i| {
                        format!("{:.2}", (i - a) as f64 / (b - a + 1) as f64)
                    })
            })
            .collect();
        writeln!(
            out,
            "    {:<58} {:>7.3}  fp {:>3}  windows {}",
            series.key,
            r.raw,
            r.counts.fp,
            first.join(" ")
        )?;
    }
    Ok(())
}

fn short(profile: &str) -> &str {
    match profile {
        "standard" => "standard",
        "reward_low_FP_rate" => "low FP",
        "reward_low_FN_rate" => "low FN",
        other => other,
    }
}
