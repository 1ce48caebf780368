//! Development aid: the combined detector's neighbourhood. For each Z-score window, learning
//! rows and weight of the likelihood channel, prints the standard / low-FP / low-FN scores
//! without a rest and with rests of (score, rows), with one Z-score window (the channel before it
//! pooled three, `multiz.rs`). That pick was `zwins=1000 learns=400
//! ws=1.2` with the rest (0.7, 100); `spatial=0` leaves out Numenta's spatial rule.
//! `cargo run --release -p loglens-nab --example combined -- zwins=500,1000 learns=300 ws=1.1,1.2`

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use loglens_core::detect::{Detector, ZScore, ZScoreConfig};
use loglens_nab::detectors::{run, zscore_config, Method, Rest, SpatialRange};
use loglens_nab::likelihood::{log_likelihoods, LikelihoodConfig};
use loglens_nab::summary;

mod common;
use common::{arg, corpus, list};

fn main() {
    let corpus = corpus();
    let spatial = arg("spatial", 1.0) > 0.0;
    let ce: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| {
            let mut range = SpatialRange::default();
            (run(Method::ContextualEnsemble, s).iter().zip(&s.values))
                .map(|(&c, &v)| c.max(if spatial { range.observe(v) } else { 0.0 }))
                .collect()
        })
        .collect();
    println!("contextual+ensemble          {}", summary(&corpus, &ce));
    println!(
        "combined (the bench's pick)  {}",
        summary(
            &corpus,
            &corpus
                .iter()
                .map(|s| run(Method::Combined, s))
                .collect::<Vec<_>>()
        )
    );
    let rests = [(0.7, 100), (0.7, 50), (0.65, 100), (0.75, 100)];
    for zwin in list::<usize>("zwins", "500,1000,1500") {
        let z: Vec<Vec<f64>> = corpus
            .iter()
            .map(|s| {
                let mut d = ZScore::new(&ZScoreConfig {
                    window: zwin,
                    ..zscore_config()
                });
                s.ts.iter()
                    .zip(&s.values)
                    .map(|(&t, &v)| d.observe(t, v).anomaly)
                    .collect()
            })
            .collect();
        for learn in list::<usize>("learns", "200,300,400") {
            let cfg = LikelihoodConfig {
                learning_rows: learn,
                estimation_rows: learn,
                ..LikelihoodConfig::default()
            };
            let lz: Vec<Vec<f64>> = corpus
                .iter()
                .zip(&z)
                .map(|(s, r)| log_likelihoods(cfg, &s.values, r))
                .collect();
            for w in list::<f64>("ws", "1.1,1.2,1.3") {
                let mixed: Vec<Vec<f64>> = ce
                    .iter()
                    .zip(&lz)
                    .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a.max(w * b).min(1.0)).collect())
                    .collect();
                let mut line = format!("zwin {zwin:>4} learn {learn} w {w}: {}", summary(&corpus, &mixed));
                for (at, rows) in rests {
                    let rested: Vec<Vec<f64>> = mixed
                        .iter()
                        .map(|x| {
                            let mut rest = Rest::new(at, rows);
                            x.iter().map(|&s| rest.apply(s)).collect()
                        })
                        .collect();
                    line += &format!(" | rest {at}/{rows} {}", summary(&corpus, &rested));
                }
                println!("{line}");
            }
        }
    }
}
