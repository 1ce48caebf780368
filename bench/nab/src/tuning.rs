//! How much of the combined detector's figure is tuning: its settings were picked on the same
//! files it is scored on, so [`cross_validate`] tunes on half the files and scores the other
//! half with the pick, both ways (2-fold), for a figure no file's own labels chose; on the
//! even/odd split, on random splits, and leaving one NAB category out at a time.

use loglens_core::detect::{Detector, ZScore, ZScoreConfig};

use crate::corpus::Series;
use crate::detectors::{
    run, zscore_config, CombinedParams, Method, Rest, SpatialRange, LIKELIHOOD_Z_WINDOWS, REST_ROWS,
    REST_SCORE,
};
use crate::likelihood::log_likelihoods;
use crate::{evaluate, scored, Profile};

/// Every cell of [`CombinedParams::grid`] with each file's scores, computed sharing what the
/// cells share (the contextual+ensemble scores, the Z-scores, the likelihoods per learning
/// rows).
pub fn combined_grid(corpus: &[Series]) -> Vec<(CombinedParams, Vec<Vec<f64>>)> {
    let base: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| run(Method::ContextualEnsemble, s))
        .collect();
    let spatial: Vec<Vec<f64>> = (corpus.iter())
        .map(|s| {
            let mut range = SpatialRange::default();
            s.values.iter().map(|&v| range.observe(v)).collect()
        })
        .collect();
    let z: Vec<Vec<Vec<f64>>> = (LIKELIHOOD_Z_WINDOWS.iter())
        .map(|&window| z_scores(corpus, window))
        .collect();
    let grid = CombinedParams::grid();
    let mut out = Vec::with_capacity(grid.len());
    let (mut learned, mut likelihood) = (None, Vec::new());
    for params in grid {
        if learned != Some(params.learning_rows) {
            learned = Some(params.learning_rows);
            likelihood = pooled_likelihoods(corpus, &z, params);
        }
        let scores = base
            .iter()
            .zip(&likelihood)
            .zip(&spatial)
            .map(|((b, l), s)| {
                let mut rest = Rest::new(REST_SCORE, REST_ROWS);
                (b.iter().zip(l).zip(s))
                    .map(|((&b, &l), &s)| rest.apply(b.max(params.weight * l).max(s).min(1.0)))
                    .collect()
            })
            .collect();
        out.push((params, scores));
    }
    out
}

/// Per file and row, the largest log-likelihood score of the Z-scores `z` (one per window of
/// [`LIKELIHOOD_Z_WINDOWS`], each per file), as `stream_combined` pools them.
fn pooled_likelihoods(corpus: &[Series], z: &[Vec<Vec<f64>>], params: CombinedParams) -> Vec<Vec<f64>> {
    (corpus.iter().enumerate())
        .map(|(file, s)| {
            let mut pooled = vec![0.0f64; s.len()];
            for window in z {
                let scores = log_likelihoods(params.likelihood(), &s.values, &window[file]);
                for (p, l) in pooled.iter_mut().zip(scores) {
                    *p = p.max(l);
                }
            }
            pooled
        })
        .collect()
}

/// Each file's rolling Z-score anomaly scores over `window` rows.
pub fn z_scores(corpus: &[Series], window: usize) -> Vec<Vec<f64>> {
    corpus
        .iter()
        .map(|s| {
            let mut d = ZScore::new(&ZScoreConfig {
                window,
                ..zscore_config()
            });
            s.ts.iter()
                .zip(&s.values)
                .map(|(&t, &v)| d.observe(t, v).anomaly)
                .collect()
        })
        .collect()
}

/// A cross-validated figure: the held-out scores, and the cell each fold's files were
/// scored with.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidated {
    /// The NAB score of all files under each profile of [`Profile::nab`], each file scored
    /// with the cell picked on the files of the other folds.
    pub scores: Vec<f64>,
    /// Per fold, its name and the cell picked without it.
    pub picks: Vec<(String, CombinedParams)>,
}

/// 2-fold: tunes on the files at even corpus positions (the best standard score among
/// `cells`) and scores the odd ones with the pick, and the other way round; the threshold is
/// then swept over all files as for every detector.
pub fn cross_validate(
    corpus: &[Series],
    cells: &[(CombinedParams, Vec<Vec<f64>>)],
) -> Option<CrossValidated> {
    let folds: Vec<String> = (0..corpus.len())
        .map(|i| if i % 2 == 0 { "even" } else { "odd" }.to_owned())
        .collect();
    cross_validate_by(corpus, cells, &folds)
}

/// Leave one category out (NAB's folders: artificial series, AWS CloudWatch, known causes,
/// ...): each category's files are scored with the cell tuned on the other categories, so
/// no kind of series chose its own setting.
pub fn cross_validate_by_category(
    corpus: &[Series],
    cells: &[(CombinedParams, Vec<Vec<f64>>)],
) -> Option<CrossValidated> {
    let folds: Vec<String> = (corpus.iter())
        .map(|s| s.key.split('/').next().unwrap_or_default().to_owned())
        .collect();
    cross_validate_by(corpus, cells, &folds)
}

/// 2-fold on `splits` random halvings of the corpus (a seeded shuffle, the same every run):
/// one fixed split's figure depends on which files fell together (even/odd positions were a
/// favourable split), their mean much less.
pub fn cross_validate_repeated(
    corpus: &[Series],
    cells: &[(CombinedParams, Vec<Vec<f64>>)],
    splits: usize,
) -> Vec<CrossValidated> {
    (random_halvings(corpus.len(), splits).iter())
        .filter_map(|folds| cross_validate_by(corpus, cells, folds))
        .collect()
}

/// `splits` random halvings of `files` files: per split, each file's fold, `a` or `b`.
fn random_halvings(files: usize, splits: usize) -> Vec<Vec<String>> {
    let mut shuffle = XorShift(0x9E37_79B9_7F4A_7C15);
    (0..splits)
        .map(|_| {
            let mut order: Vec<usize> = (0..files).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, shuffle.below(i as u64 + 1) as usize);
            }
            let mut folds = vec![String::new(); files];
            for (place, &file) in order.iter().enumerate() {
                folds[file] = if place % 2 == 0 { "a" } else { "b" }.to_owned();
            }
            folds
        })
        .collect()
}

/// Marsaglia's xorshift64: the splits must not change with a random crate's version.
struct XorShift(u64);

impl XorShift {
    /// A number in `0..n` (modulo bias is irrelevant for a shuffle of 35 files).
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Scores each file with the cell that scores best (standard profile) on the files of the
/// other folds (`folds[i]` names file i's).
pub fn cross_validate_by(
    corpus: &[Series],
    cells: &[(CombinedParams, Vec<Vec<f64>>)],
    folds: &[String],
) -> Option<CrossValidated> {
    let standard = Profile::nab().into_iter().next()?;
    let names: std::collections::BTreeSet<&String> = folds.iter().collect();
    let pick = |held_out: &str| {
        cells
            .iter()
            .map(|(p, scores)| {
                let files: Vec<_> = scored(corpus, scores)
                    .into_iter()
                    .zip(folds)
                    .filter(|(_, fold)| *fold != held_out)
                    .map(|(file, _)| file)
                    .collect();
                (evaluate(&files, &standard).score, p, scores)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let mut picks = Vec::new();
    let mut held_out: Vec<Vec<f64>> = vec![Vec::new(); corpus.len()];
    for name in names {
        let (_, params, scores) = pick(name)?;
        picks.push((name.clone(), *params));
        for (i, _) in folds.iter().enumerate().filter(|(_, f)| *f == name) {
            held_out[i] = scores[i].clone();
        }
    }
    let files = scored(corpus, &held_out);
    Some(CrossValidated {
        scores: Profile::nab().iter().map(|p| evaluate(&files, p).score).collect(),
        picks,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use loglens_core::Timestamp;

    fn series(key: &str, n: usize, shift_at: usize) -> Series {
        Series {
            key: key.to_owned(),
            ts: (0..n)
                .map(|i| Timestamp::from_secs(1_400_000_000 + 300 * i as i64))
                .collect(),
            values: (0..n)
                .map(|i| if i < shift_at { 10.0 } else { 30.0 } + ((i * 7919) % 13) as f64 * 0.1)
                .collect(),
            windows: vec![(shift_at - 20, shift_at + 20)],
        }
    }

    #[test]
    fn the_grid_cell_of_the_pick_is_the_combined_detector() {
        let corpus = vec![series("a.csv", 2500, 1800), series("b.csv", 2500, 2000)];
        let cells = combined_grid(&corpus);
        assert_eq!(cells.len(), 9);
        let (_, tuned) = cells.iter().find(|(p, _)| *p == CombinedParams::TUNED).unwrap();
        let direct: Vec<Vec<f64>> = corpus.iter().map(|s| run(Method::Combined, s)).collect();
        assert_eq!(tuned, &direct);
        let cv = cross_validate(&corpus, &cells).unwrap();
        assert_eq!(cv.scores.len(), 3);
        let folds: Vec<&str> = cv.picks.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(folds, ["even", "odd"]);
    }

    #[test]
    fn random_splits_halve_the_files_differently_and_the_same_every_run() {
        let halvings = random_halvings(35, 20);
        assert_eq!(halvings, random_halvings(35, 20));
        for folds in &halvings {
            assert_eq!(folds.iter().filter(|f| *f == "a").count(), 18);
            assert_eq!(folds.iter().filter(|f| *f == "b").count(), 17);
        }
        let distinct: std::collections::BTreeSet<_> = halvings.iter().collect();
        assert_eq!(distinct.len(), 20);
        let corpus: Vec<Series> = (0..4)
            .map(|i| series(&format!("f{i}.csv"), 2500, 1800 + 20 * i))
            .collect();
        let cells = combined_grid(&corpus);
        let repeated = cross_validate_repeated(&corpus, &cells, 3);
        assert_eq!(repeated.len(), 3);
        assert!(repeated.iter().all(|cv| cv.picks.len() == 2));
    }

    #[test]
    fn categories_are_the_folders_and_each_is_held_out_once() {
        let mut corpus = vec![
            series("realA/a.csv", 2500, 1800),
            series("realA/b.csv", 2500, 2000),
            series("realB/c.csv", 2500, 1900),
        ];
        corpus.sort_by(|a, b| a.key.cmp(&b.key));
        let cells = combined_grid(&corpus);
        let cv = cross_validate_by_category(&corpus, &cells).unwrap();
        let folds: Vec<&str> = cv.picks.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(folds, ["realA", "realB"]);
        assert!(cv.scores.iter().all(|s| s.is_finite()));
    }
}
