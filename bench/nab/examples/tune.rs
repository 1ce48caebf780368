//! Development aid: scores the contextual detector, alone and combined with the ensemble,
//! for settings given on the command line (`key=value`), so a grid can be run without
//! editing the bench. `cargo run --release -p loglens-nab --example tune -- grow=1 rows=500 margin=1`
//!
//! Keys: `rows`, `margin`, `grow` (0/1) of the learned range; `bits`, `extra`, `rest`;
//! `nab=1` bins over the file's range with NAB's rest (look-ahead, reference only);
//! `margins=a,b,…` runs one detector per margin and averages (`combine=1`: maximum) them.
//! Prints the contextual score, mixes and maxima with the ensemble, and a joint rest.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use loglens_core::detect::{Contextual, ContextualConfig, ValueRange};
use loglens_nab::{summary, Ensemble, Series};

mod common;
use common::{arg, corpus};

fn main() {
    let corpus = corpus();
    let range = if arg("expanding", 0.0) > 0.0 {
        ValueRange::Expanding
    } else {
        ValueRange::Learned {
            rows: arg("rows", 150.0) as usize,
            margin: arg("margin", 0.0),
            grow: arg("grow", 0.0) > 0.0,
        }
    };
    let config = ContextualConfig {
        range,
        value_bits: arg("bits", 3.0) as u32,
        extra_bits: arg("extra", 8.0) as u32,
        rest_rows: arg("rest", 150.0) as usize,
        ..ContextualConfig::default()
    };
    let t = std::time::Instant::now();
    let nab_range = arg("nab", 0.0) > 0.0;
    let margins: Vec<f64> = std::env::args()
        .skip(1)
        .find_map(|a| {
            a.strip_prefix("margins=")
                .map(|v| v.split(',').map(|x| x.parse().unwrap()).collect())
        })
        .unwrap_or_default();
    let combine = arg("combine", 0.0);
    let run_one = |s: &Series, c: &ContextualConfig| -> Vec<f64> {
        let mut d = Contextual::new(c);
        s.values.iter().map(|&v| d.observe(v)).collect()
    };
    let run = |s: &Series| -> Vec<f64> {
        if !margins.is_empty() {
            let runs: Vec<Vec<f64>> = margins
                .iter()
                .map(|&m| {
                    let mut c = config.clone();
                    if let ValueRange::Learned { rows, .. } = c.range {
                        c.range = ValueRange::Learned {
                            rows,
                            margin: m,
                            grow: false,
                        };
                    }
                    run_one(s, &c)
                })
                .collect();
            return (0..s.len())
                .map(|i| {
                    let it = runs.iter().map(|r| r[i]);
                    if combine > 0.0 {
                        it.fold(0.0, f64::max)
                    } else {
                        it.sum::<f64>() / runs.len() as f64
                    }
                })
                .collect();
        }
        let mut c = config.clone();
        if nab_range {
            let lo = s.values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = s.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            c.range = ValueRange::Fixed { min: lo, max: hi };
            c.rest_rows = (s.probation() as f64 / 5.0) as usize;
        }
        let mut d = Contextual::new(&c);
        s.values.iter().map(|&v| d.observe(v)).collect()
    };
    // Two threads: largest files first, each thread takes the next file.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut order: Vec<usize> = (0..corpus.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(corpus[i].len()));
    let mut cad: Vec<Vec<f64>> = vec![Vec::new(); corpus.len()];
    let parts: Vec<Vec<(usize, Vec<f64>)>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = order.get(k) else { break };
                        out.push((i, run(&corpus[i])));
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, v) in parts.into_iter().flatten() {
        cad[i] = v;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{config:?}");
    println!("contextual            {}   ({secs:.1} s)", summary(&corpus, &cad));
    let ens: Vec<Vec<f64>> = corpus
        .iter()
        .map(|s| {
            let mut e = Ensemble::new();
            s.ts.iter()
                .zip(&s.values)
                .map(|(&ts, &v)| e.observe(ts, v))
                .collect()
        })
        .collect();
    for w in [0.3, 0.5, 0.7] {
        let mix: Vec<Vec<f64>> = cad
            .iter()
            .zip(&ens)
            .map(|(c, e)| c.iter().zip(e).map(|(c, e)| w * c + (1.0 - w) * e).collect())
            .collect();
        println!("mix {w:.1}               {}", summary(&corpus, &mix));
    }
    let max: Vec<Vec<f64>> = cad
        .iter()
        .zip(&ens)
        .map(|(c, e)| c.iter().zip(e).map(|(c, e)| c.max(*e)).collect())
        .collect();
    println!("max                   {}", summary(&corpus, &max));
    for k in [0.8, 0.9, 1.1, 1.2, 1.3, 1.5] {
        let max: Vec<Vec<f64>> = cad
            .iter()
            .zip(&ens)
            .map(|(c, e)| c.iter().zip(e).map(|(c, e)| c.max((e * k).min(1.0))).collect())
            .collect();
        println!("max(c, {k:.1} e)         {}", summary(&corpus, &max));
        for (base, rest) in [(0.7, 150), (0.75, 150), (0.8, 150), (0.75, 75), (0.75, 300)] {
            let joint: Vec<Vec<f64>> = max
                .iter()
                .map(|m| {
                    let mut last: Option<usize> = None;
                    m.iter()
                        .enumerate()
                        .map(|(i, &x)| {
                            let resting = last.is_some_and(|l| i - l <= rest);
                            if x >= base {
                                last = Some(i);
                            }
                            if resting {
                                0.0
                            } else {
                                x
                            }
                        })
                        .collect()
                })
                .collect();
            println!("   joint rest {base} {rest}   {}", summary(&corpus, &joint));
        }
    }
}
