//! The Numenta Anomaly Benchmark for loglens: reads a NAB-layout directory, runs loglens's
//! streaming detectors over every series (one configuration for all files, no look-ahead),
//! and scores them with a scorer that follows `SCORING.md` (shipped with the data).
//!
//! The data (`../shared/data/nab`) is not part of the repository; tests that need it skip
//! with a message when it is absent.

pub mod corpus;
pub mod detectors;
pub mod gaussian;
pub mod likelihood;
pub mod score;
pub mod tuning;

use std::path::PathBuf;

pub use corpus::{read_corpus, read_profiles, CorpusError, Profile, Series};
pub use detectors::{run, Ensemble, Method};
pub use score::{evaluate, score_file, sweep, ProfileResult, ScoredFile};

/// Where the NAB directory is for tests: `$NAB_DATA`, else `shared/data/nab` beside the
/// repository.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("NAB_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab"),
        PathBuf::from,
    )
}

/// The corpus at [`default_data_dir`] with its combined windows; `None` when no data is there
/// (tests and examples then skip).
pub fn default_corpus() -> Result<Option<Vec<Series>>, CorpusError> {
    let dir = default_data_dir();
    if !dir.join("data").is_dir() {
        return Ok(None);
    }
    read_corpus(&dir.join("data"), &dir.join("labels/combined_windows.json")).map(Some)
}

/// Each file's scores, in corpus order, as [`ScoredFile`]s for the scorer.
pub fn scored<'a>(corpus: &'a [Series], scores: &'a [Vec<f64>]) -> Vec<ScoredFile<'a>> {
    corpus
        .iter()
        .zip(scores)
        .map(|(s, sc)| ScoredFile {
            scores: sc,
            windows: &s.windows,
        })
        .collect()
}

/// The normalised NAB score of `scores` under each profile of [`Profile::nab`] (standard,
/// low FP, low FN).
pub fn profile_scores(corpus: &[Series], scores: &[Vec<f64>]) -> Vec<f64> {
    let files = scored(corpus, scores);
    Profile::nab().iter().map(|p| evaluate(&files, p).score).collect()
}

/// [`profile_scores`] on one line, `" 62.42  53.05  67.67"`: the development examples' summary.
pub fn summary(corpus: &[Series], scores: &[Vec<f64>]) -> String {
    let cells: Vec<String> = profile_scores(corpus, scores)
        .iter()
        .map(|s| format!("{s:6.2}"))
        .collect();
    cells.join(" ")
}

/// Published detectors restricted to the developers' subset (SCORING.md §9.4): name and
/// standard / low-FP / low-FN scores.
pub const PUBLISHED_SUBSET: [(&str, [f64; 3]); 16] = [
    ("ARTime", [67.85, 57.84, 73.72]),
    ("Numenta HTM", [66.59, 60.81, 71.06]),
    ("HTM Java", [64.47, 56.65, 69.04]),
    ("CAD-OSE", [62.19, 57.14, 66.31]),
    ("NumentaTM", [61.75, 51.73, 67.42]),
    ("KNN-CAD", [52.97, 40.14, 59.56]),
    ("Relative Entropy", [50.01, 41.64, 54.55]),
    ("Random Cut Forest", [49.53, 38.21, 56.05]),
    ("earthgecko Skyline", [47.46, 37.87, 52.25]),
    ("Twitter ADVec", [36.18, 22.78, 42.91]),
    ("Etsy Skyline", [33.76, 25.39, 38.26]),
    ("Windowed Gaussian", [21.97, 4.87, 29.80]),
    ("Bayes changepoint", [21.26, 7.65, 34.32]),
    ("Random (seed 42)", [19.56, 6.37, 28.76]),
    ("EXPoSE", [13.55, 4.06, 23.64]),
    ("Null", [0.0, 0.0, 0.0]),
];
