//! NAB's scorer, per SCORING.md: per-row weights from the windows (scaled sigmoid), a file's
//! score at a threshold, the exhaustive threshold sweep over the whole corpus, and the
//! normalisation between the null and the perfect detector.

use crate::corpus::{probation, Profile};

/// `σ̃(x) = 2 / (1 + e^(5x)) − 1` for `x ≤ 3`, else −1 (SCORING.md §3).
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * x).exp()) - 1.0
    }
}

/// Where a row lies and what it earns if it is a detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowWeight {
    /// The weight `w_i` (positive inside a window, negative outside).
    pub weight: f64,
    /// The index of the window holding the row, if any.
    pub window: Option<usize>,
}

/// The weight of every row of a file of `n` rows with `windows` (inclusive row ranges,
/// chronological). Probationary rows get weights too; the scorer ignores them.
pub fn row_weights(n: usize, windows: &[(usize, usize)], profile: &Profile) -> Vec<RowWeight> {
    let mut out = vec![
        RowWeight {
            weight: -profile.fp,
            window: None,
        };
        n
    ];
    let edge = scaled_sigmoid(-1.0);
    for (k, &(a, b)) in windows.iter().enumerate() {
        let width = (b - a + 1) as f64;
        for (i, w) in out.iter_mut().enumerate().take(b + 1).skip(a) {
            let x = -((b - i + 1) as f64) / width;
            *w = RowWeight {
                weight: profile.tp * scaled_sigmoid(x) / edge,
                window: Some(k),
            };
        }
        // Rows after this window, up to the next window's start, are scored against it.
        let next = windows.get(k + 1).map_or(n, |&(a2, _)| a2);
        for (i, w) in out.iter_mut().enumerate().take(next).skip(b + 1) {
            let x = (i - b) as f64 / (width - 1.0);
            w.weight = profile.fp * scaled_sigmoid(x);
        }
    }
    out
}

/// Row counts at a threshold (probationary rows excluded); for information only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Detections inside windows.
    pub tp: usize,
    /// Non-detections outside windows.
    pub tn: usize,
    /// Detections outside windows.
    pub fp: usize,
    /// Non-detections inside windows.
    pub fn_: usize,
}

/// One file's raw score at a threshold, with its row counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileScore {
    /// `S_f(θ)`.
    pub raw: f64,
    /// Row counts.
    pub counts: Counts,
}

/// A file's detector scores and windows, as the scorer needs them.
#[derive(Debug, Clone, Copy)]
pub struct ScoredFile<'a> {
    /// One anomaly score per row.
    pub scores: &'a [f64],
    /// Windows as inclusive row ranges.
    pub windows: &'a [(usize, usize)],
}

/// `S_f(θ)`: the best detection weight per window (or −A_FN), plus every detection outside
/// windows. A detection is a scored row with `score ≥ θ`.
pub fn score_file(file: ScoredFile<'_>, profile: &Profile, threshold: f64) -> FileScore {
    let n = file.scores.len();
    let weights = row_weights(n, file.windows, profile);
    let mut best: Vec<Option<f64>> = vec![None; file.windows.len()];
    let mut has_rows = vec![false; file.windows.len()];
    let mut raw = 0.0;
    let mut counts = Counts::default();
    let p = probation(n);
    for (&score, &w) in file.scores.iter().zip(&weights).skip(p) {
        let detected = score >= threshold;
        match (w.window, detected) {
            (Some(k), true) => {
                has_rows[k] = true;
                counts.tp += 1;
                best[k] = Some(best[k].map_or(w.weight, |b: f64| b.max(w.weight)));
            }
            (Some(k), false) => {
                has_rows[k] = true;
                counts.fn_ += 1;
            }
            (None, true) => {
                counts.fp += 1;
                raw += w.weight;
            }
            (None, false) => counts.tn += 1,
        }
    }
    for (b, has) in best.iter().zip(&has_rows) {
        if *has {
            raw += b.unwrap_or(-profile.fn_);
        }
    }
    FileScore { raw, counts }
}

/// The outcome of the threshold sweep for one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    /// θ*: the best threshold (the largest of equals); 1.1 means "detect nothing".
    pub threshold: f64,
    /// `S(θ*)`, summed over the corpus.
    pub raw: f64,
}

/// The exhaustive sweep (SCORING.md §5): every distinct score on a scored row, plus 1.1, is a
/// candidate; rows are walked from the highest score down with running sums.
pub fn sweep(files: &[ScoredFile<'_>], profile: &Profile) -> Sweep {
    let mut rows: Vec<(f64, f64, Option<usize>)> = Vec::new();
    let mut total = 0.0;
    let mut window_base = 0;
    for f in files {
        let n = f.scores.len();
        let weights = row_weights(n, f.windows, profile);
        let p = probation(n);
        let mut counted = vec![false; f.windows.len()];
        for (&score, &w) in f.scores.iter().zip(&weights).skip(p) {
            if let Some(k) = w.window {
                if !counted[k] {
                    counted[k] = true;
                    total -= profile.fn_;
                }
            }
            rows.push((score, w.weight, w.window.map(|k| window_base + k)));
        }
        window_base += f.windows.len();
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best: Vec<Option<f64>> = vec![None; window_base];
    let mut result = Sweep {
        threshold: 1.1,
        raw: total,
    };
    let mut i = 0;
    while i < rows.len() {
        let value = rows[i].0;
        while i < rows.len() && rows[i].0 == value {
            let (_, w, window) = rows[i];
            match window {
                Some(k) => match best[k] {
                    None => {
                        total += w + profile.fn_;
                        best[k] = Some(w);
                    }
                    Some(b) if w > b => {
                        total += w - b;
                        best[k] = Some(w);
                    }
                    Some(_) => {}
                },
                None => total += w,
            }
            i += 1;
        }
        if total > result.raw {
            result = Sweep {
                threshold: value,
                raw: total,
            };
        }
    }
    result
}

/// The normalised NAB score of `raw`: `100 (S − S_null) / (S_perfect − S_null)`, with
/// `S_perfect = A_TP · K` and `S_null` the raw score of the null detector on the same files.
pub fn normalise(raw: f64, null_raw: f64, windows: usize, profile: &Profile) -> f64 {
    let perfect = profile.tp * windows as f64;
    if perfect == null_raw {
        return 0.0;
    }
    100.0 * (raw - null_raw) / (perfect - null_raw)
}

/// One detector's result under one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileResult {
    /// The sweep's optimum.
    pub sweep: Sweep,
    /// The normalised NAB score.
    pub score: f64,
}

/// Sweeps and normalises `files` under `profile`; the null detector (0.5 everywhere) is run
/// through the same sweep for `S_null`, as NAB does.
pub fn evaluate(files: &[ScoredFile<'_>], profile: &Profile) -> ProfileResult {
    let nulls: Vec<Vec<f64>> = files.iter().map(|f| vec![0.5; f.scores.len()]).collect();
    let null_files: Vec<ScoredFile<'_>> = files
        .iter()
        .zip(&nulls)
        .map(|(f, s)| ScoredFile {
            scores: s,
            windows: f.windows,
        })
        .collect();
    let null_raw = sweep(&null_files, profile).raw;
    let windows = files.iter().map(|f| f.windows.len()).sum();
    let s = sweep(files, profile);
    ProfileResult {
        sweep: s,
        score: normalise(s.raw, null_raw, windows, profile),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn example_scores() -> Vec<f64> {
        let mut s = vec![0.0; 100];
        for (i, v) in [(5, 0.95), (20, 0.8), (43, 0.7), (47, 0.9), (52, 0.6), (90, 0.9)] {
            s[i] = v;
        }
        s
    }

    const WINDOWS: [(usize, usize); 1] = [(40, 49)];

    #[test]
    fn sigmoid_reference_values() {
        assert!((scaled_sigmoid(-1.0) - 0.9866142981514305).abs() < 1e-15);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    /// SCORING.md §9.1: the row weights of the hand-made example (standard profile).
    #[test]
    fn hand_made_example_row_weights() {
        let w = row_weights(100, &WINDOWS, &Profile::nab()[0]);
        let expect = [
            (15, -0.11),
            (39, -0.11),
            (40, 1.000000),
            (43, 0.954147),
            (47, 0.643766),
            (49, 0.248242),
            (50, -0.029793),
            (52, -0.075049),
            (58, -0.108528),
            (67, -0.109990),
            (90, -0.110000),
        ];
        for (i, v) in expect {
            assert!((w[i].weight - v).abs() < 5e-7, "w{i} = {} not {v}", w[i].weight);
        }
        assert_eq!(w[45].window, Some(0));
        assert_eq!(w[50].window, None);
    }

    /// SCORING.md §9.1: file scores and counts at each threshold, per profile.
    #[test]
    fn hand_made_example_table() {
        let scores = example_scores();
        let file = ScoredFile {
            scores: &scores,
            windows: &WINDOWS,
        };
        let profiles = Profile::nab();
        let table = [
            (1.1, [-1.0, -1.0, -2.0], (0, 75, 0, 10)),
            (0.9, [0.533766, 0.423766, 0.533766], (1, 74, 1, 9)),
            (0.8, [0.423766, 0.203766, 0.423766], (1, 73, 2, 9)),
            (0.7, [0.734147, 0.514147, 0.734147], (2, 73, 2, 8)),
            (0.6, [0.659099, 0.364050, 0.659099], (2, 72, 3, 8)),
            (0.0, [-7.027961, -15.055922, -7.027961], (10, 0, 75, 0)),
        ];
        for (theta, raws, (tp, tn, fp, fn_)) in table {
            for (p, raw) in profiles.iter().zip(raws) {
                let s = score_file(file, p, theta);
                assert!(
                    (s.raw - raw).abs() < 5e-7,
                    "θ {theta} {}: {} not {raw}",
                    p.name,
                    s.raw
                );
                assert_eq!(s.counts, Counts { tp, tn, fp, fn_ }, "θ {theta}");
            }
        }
    }

    /// SCORING.md §9.1: θ* = 0.7 in every profile, and the normalised scores.
    #[test]
    fn hand_made_example_sweep_and_normalisation() {
        let scores = example_scores();
        let files = [ScoredFile {
            scores: &scores,
            windows: &WINDOWS,
        }];
        let expect = [86.7074, 75.7074, 91.1382];
        for (p, want) in Profile::nab().iter().zip(expect) {
            let r = evaluate(&files, p);
            assert_eq!(r.sweep.threshold, 0.7, "{}", p.name);
            assert!(
                (r.score - want).abs() < 5e-5,
                "{}: {} not {want}",
                p.name,
                r.score
            );
        }
    }

    /// SCORING.md §9.2: the null detector scores 0 with θ* = 1.1.
    #[test]
    fn null_detector_scores_zero() {
        let scores = vec![0.5; 100];
        let files = [ScoredFile {
            scores: &scores,
            windows: &WINDOWS,
        }];
        for p in Profile::nab() {
            let r = evaluate(&files, &p);
            assert_eq!((r.sweep.threshold, r.sweep.raw, r.score), (1.1, -p.fn_, 0.0));
        }
    }
}
