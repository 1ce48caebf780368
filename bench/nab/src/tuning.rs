//! How much of the combined detector's figure is tuning: its settings were picked on the same
//! files it is scored on, so [`cross_validate`] tunes on half the files and scores the other
//! half with the pick, both ways (2-fold), for a figure no file's own labels chose.

use loglens_core::detect::{Detector, ZScore, ZScoreConfig};

use crate::corpus::Series;
use crate::detectors::{run, zscore_config, CombinedParams, Method, Rest, REST_ROWS, REST_SCORE};
use crate::likelihood::log_likelihoods;
use crate::{evaluate, scored, Profile};

/// Every cell of [`CombinedParams::grid`] with each file's scores, computed sharing what the
/// cells share (the contextual+ensemble scores, one Z-score per window).
pub fn combined_grid(corpus: &[Series]) -> Vec<(CombinedParams, Vec<Vec<f64>>)> {
    let base: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| run(Method::ContextualEnsemble, s))
        .collect();
    let grid = CombinedParams::grid();
    let mut out = Vec::with_capacity(grid.len());
    let (mut z_window, mut z) = (None, Vec::new());
    let (mut lz_key, mut lz) = (None, Vec::new());
    for params in grid {
        if z_window != Some(params.z_window) {
            z_window = Some(params.z_window);
            z = z_scores(corpus, params.z_window);
        }
        let key = (params.z_window, params.learning_rows);
        if lz_key != Some(key) {
            lz_key = Some(key);
            lz = corpus
                .iter()
                .zip(&z)
                .map(|(s, r)| log_likelihoods(params.likelihood(), &s.values, r))
                .collect();
        }
        let likelihoods: &[Vec<f64>] = &lz;
        let scores = base
            .iter()
            .zip(likelihoods)
            .map(|(b, l)| {
                let mut rest = Rest::new(REST_SCORE, REST_ROWS);
                b.iter()
                    .zip(l)
                    .map(|(&b, &l)| rest.apply(b.max(params.weight * l).min(1.0)))
                    .collect()
            })
            .collect();
        out.push((params, scores));
    }
    out
}

fn z_scores(corpus: &[Series], window: usize) -> Vec<Vec<f64>> {
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

/// A 2-fold cross-validated figure: the held-out scores, and the cell each fold picked.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossValidated {
    /// The NAB score of all files under each profile of [`Profile::nab`], each file scored
    /// with the cell picked on the other fold.
    pub scores: Vec<f64>,
    /// The cells picked on fold 0 (even corpus positions) and fold 1 (odd).
    pub picks: [CombinedParams; 2],
}

/// Tunes on the files at even corpus positions (the best standard score among `cells`) and
/// scores the odd ones with the pick, and the other way round; the threshold is then swept
/// over all files as for every detector.
pub fn cross_validate(
    corpus: &[Series],
    cells: &[(CombinedParams, Vec<Vec<f64>>)],
) -> Option<CrossValidated> {
    let standard = Profile::nab().into_iter().next()?;
    let fold = |i: usize| i % 2;
    let pick = |f: usize| {
        cells
            .iter()
            .map(|(p, scores)| {
                let files: Vec<_> = scored(corpus, scores)
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| fold(*i) == f)
                    .map(|(_, file)| file)
                    .collect();
                (evaluate(&files, &standard).score, p, scores)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let picks = [pick(0)?, pick(1)?];
    let held_out: Vec<Vec<f64>> = (0..corpus.len())
        .map(|i| picks[1 - fold(i)].2[i].clone())
        .collect();
    let files = scored(corpus, &held_out);
    Some(CrossValidated {
        scores: Profile::nab().iter().map(|p| evaluate(&files, p).score).collect(),
        picks: [*picks[0].1, *picks[1].1],
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
        assert_eq!(cells.len(), 27);
        let (_, tuned) = cells.iter().find(|(p, _)| *p == CombinedParams::TUNED).unwrap();
        let direct: Vec<Vec<f64>> = corpus.iter().map(|s| run(Method::Combined, s)).collect();
        assert_eq!(tuned, &direct);
        let cv = cross_validate(&corpus, &cells).unwrap();
        assert_eq!(cv.scores.len(), 3);
    }
}
