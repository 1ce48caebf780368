//! Development aid: Numenta's anomaly likelihood applied to the raw scores of the contextual
//! detector, the ensemble, their combination, the Z-score and the ensemble's |z|, for settings
//! given as `key=value`: `learns=a,b` and `avgs=a,b` (a grid; estimation rows = learning rows),
//! `ws=a,b` (weights of the added channel), `hist`, `refit`, `zwin` (Z-score window), `mt`
//! (threshold mapping the ensemble's |z| into [0, 1]).
//! `cargo run --release -p loglens-nab --example likelihood -- learns=300 avgs=1,3,10`

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use loglens_core::detect::{Detector, ZScore, ZScoreConfig};
use loglens_nab::detectors::{run, Method};
use loglens_nab::likelihood::{log_likelihoods, LikelihoodConfig};
use loglens_nab::{summary, Series};

mod common;
use common::{arg, corpus, list};

fn all(corpus: &[Series], method: Method) -> Vec<Vec<f64>> {
    std::thread::scope(|sc| {
        let half = corpus.len() / 2;
        let (a, b) = corpus.split_at(half);
        let h = sc.spawn(move || a.iter().map(|s| run(method, s)).collect::<Vec<_>>());
        let mut rest: Vec<Vec<f64>> = b.iter().map(|s| run(method, s)).collect();
        let mut out = h.join().unwrap();
        out.append(&mut rest);
        out
    })
}

fn main() {
    let corpus = corpus();
    let base = LikelihoodConfig {
        learning_rows: arg("learn", 300.0) as usize,
        estimation_rows: 300,
        history_rows: arg("hist", 8640.0) as usize,
        averaging_rows: arg("avg", 10.0) as usize,
        refit_rows: arg("refit", 100.0) as usize,
    };
    let c = all(&corpus, Method::Contextual);
    let e = all(&corpus, Method::Ensemble);
    let ce = all(&corpus, Method::ContextualEnsemble);
    // Rolling Z-score of the value, its window from `zwin` (the bench's 288 by default).
    let zcfg = ZScoreConfig {
        window: arg("zwin", 288.0) as usize,
        ..loglens_nab::detectors::zscore_config()
    };
    let z: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| {
            let mut d = ZScore::new(&zcfg);
            s.ts.iter()
                .zip(&s.values)
                .map(|(&t, &v)| d.observe(t, v).anomaly)
                .collect()
        })
        .collect();
    // The ensemble's larger |z| (level or day-over-day), mapped by unit_score at `mt`.
    let mt = arg("mt", 4.0);
    let m: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| {
            let mut d = loglens_nab::Ensemble::new();
            s.ts.iter()
                .zip(&s.values)
                .map(|(&t, &v)| loglens_core::detect::unit_score(d.observe_parts(t, v).1, mt))
                .collect()
        })
        .collect();
    let ws: Vec<f64> = list("ws", "0.6,0.8,1.0");
    println!("{base:?}");
    println!("contextual                 {}", summary(&corpus, &c));
    println!("ensemble                   {}", summary(&corpus, &e));
    println!("contextual+ensemble        {}", summary(&corpus, &ce));
    let lik = |raw: &[Vec<f64>], cfg: LikelihoodConfig| -> Vec<Vec<f64>> {
        corpus
            .iter()
            .zip(raw)
            .map(|(s, r)| log_likelihoods(cfg, &s.values, r))
            .collect()
    };
    let avgs: Vec<usize> = list("avgs", &base.averaging_rows.to_string());
    let grid: Vec<(usize, usize)> = list::<usize>("learns", &base.learning_rows.to_string())
        .into_iter()
        .flat_map(|l| avgs.iter().map(move |&a| (l, a)))
        .collect();
    for (learn, avg) in grid {
        let cfg = LikelihoodConfig {
            learning_rows: learn,
            estimation_rows: learn,
            averaging_rows: avg,
            ..base
        };
        let lc = lik(&c, cfg);
        let le = lik(&e, cfg);
        let lce = lik(&ce, cfg);
        let lz = lik(&z, cfg);
        let lm = lik(&m, cfg);
        println!("  L(ensemble |z|)          {}", summary(&corpus, &lm));
        println!("  L(zscore)                {}", summary(&corpus, &lz));
        println!("learn={learn} avg={avg}");
        println!("  L(contextual)            {}", summary(&corpus, &lc));
        println!("  L(ensemble)              {}", summary(&corpus, &le));
        println!("  L(contextual+ensemble)   {}", summary(&corpus, &lce));
        for w in [1.0, 1.1] {
            let mx: Vec<Vec<f64>> = c
                .iter()
                .zip(&le)
                .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a.max((w * b).min(1.0))).collect())
                .collect();
            println!("  max(c, {w} L(e))          {}", summary(&corpus, &mx));
        }
        for (name, l) in [
            ("L(c)", &lc),
            ("L(e)", &le),
            ("L(ce)", &lce),
            ("L(z)", &lz),
            ("L(m)", &lm),
        ] {
            for &w in &ws {
                let mx: Vec<Vec<f64>> = ce
                    .iter()
                    .zip(l)
                    .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a.max(w * b)).collect())
                    .collect();
                println!("  max(ce, {w} {name})       {}", summary(&corpus, &mx));
            }
        }
        let mx: Vec<Vec<f64>> = lc
            .iter()
            .zip(&le)
            .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a.max(*b)).collect())
            .collect();
        println!("  max(L(c), L(e))          {}", summary(&corpus, &mx));
    }
}
