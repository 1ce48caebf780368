//! Development aid: the combined detector with its likelihood channel pooled over several
//! Z-score windows (`zwins=500,1000,1500`; `max=1` takes the largest, else the mean) on a grid
//! of learning rows and weights: each cell's score on all files, then the cross-validated
//! figures. The bench's own detector is `max=1` on its grid; `learns=200,300,400,500
//! ws=1.0,1.1,1.2,1.3` the wider grid `bench/nab/README.md` reports, `max=0` the mean pooling.
//! `cargo run --release -p loglens-nab --example multiz -- max=1`

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use loglens_nab::detectors::{run, CombinedParams, Method, Rest, SpatialRange, REST_ROWS, REST_SCORE};
use loglens_nab::likelihood::{log_likelihoods, LikelihoodConfig};
use loglens_nab::profile_scores;
use loglens_nab::tuning::{cross_validate, cross_validate_by_category, cross_validate_repeated, z_scores};
mod common;
use common::{arg, corpus, list};

fn main() {
    let corpus = corpus();
    let zwins: Vec<usize> = list("zwins", "500,1000,1500");
    let learns: Vec<usize> = list("learns", "200,300,400");
    let ws: Vec<f64> = list("ws", "1.1,1.2,1.3");
    let pool_max = arg("max", 0.0) > 0.0;
    let base: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| run(Method::ContextualEnsemble, s))
        .collect();
    let spatial: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| {
            let mut r = SpatialRange::default();
            s.values.iter().map(|&v| r.observe(v)).collect()
        })
        .collect();
    let zs: Vec<Vec<Vec<f64>>> = zwins.iter().map(|&w| z_scores(&corpus, w)).collect();
    let mut cells = Vec::new();
    for &learn in &learns {
        let cfg = LikelihoodConfig {
            learning_rows: learn,
            estimation_rows: learn,
            ..LikelihoodConfig::default()
        };
        let lzs: Vec<Vec<Vec<f64>>> = zs
            .iter()
            .map(|z| {
                corpus
                    .iter()
                    .zip(z)
                    .map(|(s, r)| log_likelihoods(cfg, &s.values, r))
                    .collect()
            })
            .collect();
        let pooled: Vec<Vec<f64>> = (0..corpus.len())
            .map(|f| {
                (0..corpus[f].len())
                    .map(|i| {
                        let it = lzs.iter().map(|l| l[f][i]);
                        if pool_max {
                            it.fold(0.0, f64::max)
                        } else {
                            it.sum::<f64>() / lzs.len() as f64
                        }
                    })
                    .collect()
            })
            .collect();
        for &w in &ws {
            let scores: Vec<Vec<f64>> = base
                .iter()
                .zip(&pooled)
                .zip(&spatial)
                .map(|((b, l), s)| {
                    let mut rest = Rest::new(REST_SCORE, REST_ROWS);
                    b.iter()
                        .zip(l)
                        .zip(s)
                        .map(|((&b, &l), &s)| rest.apply(b.max(w * l).max(s).min(1.0)))
                        .collect()
                })
                .collect();
            let p = profile_scores(&corpus, &scores);
            println!("learn {learn:4} w {w:.2}  {:6.2} {:6.2} {:6.2}", p[0], p[1], p[2]);
            cells.push((
                CombinedParams {
                    learning_rows: learn,
                    weight: w,
                },
                scores,
            ));
        }
    }
    for (name, cv) in [
        ("even/odd", cross_validate(&corpus, &cells)),
        ("by category", cross_validate_by_category(&corpus, &cells)),
    ] {
        let cv = cv.unwrap();
        let picks: Vec<String> = cv
            .picks
            .iter()
            .map(|(f, p)| format!("{f}: {} {:.1}", p.learning_rows, p.weight))
            .collect();
        println!(
            "{name:12} {:6.2} {:6.2} {:6.2}  {}",
            cv.scores[0],
            cv.scores[1],
            cv.scores[2],
            picks.join("; ")
        );
    }
    let rep = cross_validate_repeated(&corpus, &cells, 20);
    let mean = |k: usize| rep.iter().map(|c| c.scores[k]).sum::<f64>() / rep.len() as f64;
    let lo = rep.iter().map(|c| c.scores[0]).fold(f64::INFINITY, f64::min);
    let hi = rep.iter().map(|c| c.scores[0]).fold(f64::NEG_INFINITY, f64::max);
    println!(
        "random 2-fold mean {:6.2} {:6.2} {:6.2} ({lo:.2} to {hi:.2})",
        mean(0),
        mean(1),
        mean(2)
    );
}
