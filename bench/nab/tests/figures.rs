//! Pins the NAB figures the README reports for the product's configuration (the headline), the
//! contextual and combined detectors and the combined detector's cross-validated figure, and
//! checks that our
//! CAD-OSE, run as NAB ran it (look-ahead range), lands near NAB's own output (62.19, §9.4).
//! Slow in debug builds: `cargo test --release -p loglens-nab --test figures -- --ignored`.
//! Skips when the data is absent.

#![allow(clippy::unwrap_used)]

use loglens_nab::tuning::{
    combined_grid, cross_validate, cross_validate_by_category, cross_validate_repeated, CrossValidated,
};
use loglens_nab::{profile_scores, run, Method, Series};

mod common;
use common::corpus;

/// What `loglens detect` runs (the headline): the product's alerts.
const PRODUCT: [f64; 3] = [16.15, 0.00, 31.37];
/// The combined detector tuned on one half of the files and scored on the other, both ways.
const CROSS_VALIDATED: [f64; 3] = [67.84, 59.06, 73.11];
/// The combined detector tuned on three of the subset's four categories and scored on the
/// fourth, each in turn.
const BY_CATEGORY: [f64; 3] = [67.84, 59.06, 73.11];
/// The mean of 2-fold cross-validation over 20 random halvings of the files.
const RANDOM_SPLITS: [f64; 3] = [67.60, 58.57, 72.95];

fn figures(corpus: &[Series], method: Method) -> Vec<f64> {
    let scores: Vec<Vec<f64>> = corpus.iter().map(|s| run(method, s)).collect();
    profile_scores(corpus, &scores)
}

fn assert_figures(corpus: &[Series], method: Method, want: [f64; 3], tol: f64) {
    let got = figures(corpus, method);
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol,
            "{}: got {got:?}, want {want:?}",
            method.name()
        );
    }
}

#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn contextual_figures_match_the_readme() {
    let Some(corpus) = corpus() else { return };
    assert_figures(&corpus, Method::Contextual, [59.30, 50.69, 64.99], 0.005);
    assert_figures(&corpus, Method::ContextualEnsemble, [62.42, 53.05, 67.67], 0.005);
    assert_figures(&corpus, Method::Combined, [67.84, 59.06, 73.11], 0.005);
}

#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn cad_ose_as_nab_ran_it_lands_near_nabs_figures() {
    let Some(corpus) = corpus() else { return };
    // Ours: 61.74 / 56.59 / 66.01. NAB's checked-in output scores 62.19 / 57.14 / 66.31; the
    // gap comes from details of the published code we do not reproduce (the iteration order
    // of its dictionaries, which decides context ids and so ties between active contexts).
    assert_figures(&corpus, Method::CadOseNab, [61.74, 56.59, 66.01], 0.005);
    assert_figures(&corpus, Method::CadOseNab, [62.19, 57.14, 66.31], 0.6);
}

#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn product_figures_match_the_readme() {
    let Some(corpus) = corpus() else { return };
    assert_figures(&corpus, Method::Product, PRODUCT, 0.005);
}

#[test]
#[ignore = "minutes in a debug build; run with --release -- --ignored"]
fn combined_cross_validated_figures_match_the_readme() {
    let Some(corpus) = corpus() else { return };
    let cells = combined_grid(&corpus);
    assert_near(&cross_validate(&corpus, &cells).unwrap(), CROSS_VALIDATED);
    assert_near(&cross_validate_by_category(&corpus, &cells).unwrap(), BY_CATEGORY);
    let repeated = cross_validate_repeated(&corpus, &cells, 20);
    assert_eq!(repeated.len(), 20);
    let mean: Vec<f64> = (0..3)
        .map(|k| repeated.iter().map(|cv| cv.scores[k]).sum::<f64>() / 20.0)
        .collect();
    for (g, w) in mean.iter().zip(RANDOM_SPLITS) {
        assert!((g - w).abs() <= 0.005, "got {mean:?}, want {RANDOM_SPLITS:?}");
    }
}

fn assert_near(cv: &CrossValidated, want: [f64; 3]) {
    for (g, w) in cv.scores.iter().zip(want) {
        assert!((g - w).abs() <= 0.005, "got {:?}, want {want:?}", cv.scores);
    }
}
