//! Pins the NAB figures the README reports for the contextual and combined detectors, and checks that our
//! CAD-OSE, run as NAB ran it (look-ahead range), lands near NAB's own output (62.19, §9.4).
//! Slow in debug builds: `cargo test --release -p loglens-nab --test figures -- --ignored`.
//! Skips when the data is absent.

#![allow(clippy::unwrap_used)]

use loglens_nab::{profile_scores, run, Method, Series};

mod common;
use common::corpus;

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
    assert_figures(&corpus, Method::Combined, [68.12, 59.93, 73.29], 0.005);
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
