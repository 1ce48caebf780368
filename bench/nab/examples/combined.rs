//! Development aid: the combined detector's neighbourhood. For each Z-score window, learning
//! rows and weight of the likelihood channel, prints the standard / low-FP / low-FN scores
//! without a rest and with rests of (score, rows). The bench's pick is `zwins=1000 learns=300
//! ws=1.2` with the rest (0.7, 100).
//! `cargo run --release -p loglens-nab --example combined -- zwins=500,1000 learns=300 ws=1.1,1.2`

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use loglens_core::detect::{Detector, ZScore, ZScoreConfig};
use loglens_nab::detectors::{run, zscore_config, Method};
use loglens_nab::likelihood::{log_likelihoods, LikelihoodConfig};
use loglens_nab::{default_data_dir, read_corpus, summary};

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    let text = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix(&format!("{name}=")).map(str::to_owned))
        .unwrap_or_else(|| default.to_owned());
    text.split(',').map(|x| x.parse().unwrap()).collect()
}

/// Scores of 0 for `rows` rows after each score of at least `at`.
fn rest(scores: &[f64], at: f64, rows: usize) -> Vec<f64> {
    let mut left = 0usize;
    scores
        .iter()
        .map(|&s| {
            if left > 0 {
                left -= 1;
                return 0.0;
            }
            if s >= at {
                left = rows;
            }
            s
        })
        .collect()
}

fn main() {
    let dir = default_data_dir();
    let corpus = read_corpus(&dir.join("data"), &dir.join("labels/combined_windows.json")).unwrap();
    let ce: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| run(Method::ContextualEnsemble, s))
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
                    let rested: Vec<Vec<f64>> = mixed.iter().map(|x| rest(x, at, rows)).collect();
                    line += &format!(" | rest {at}/{rows} {}", summary(&corpus, &rested));
                }
                println!("{line}");
            }
        }
    }
}
