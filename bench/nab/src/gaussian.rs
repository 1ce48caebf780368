//! NAB's windowed Gaussian detector, restated from SCORING.md §9.3: the reference the scorer is
//! checked against, and the baseline loglens's Z-score must beat.

const WINDOW: usize = 6400;
const STEP: usize = 100;

/// The |z| of every row against the window before it; `None` for the first row.
pub fn windowed_gaussian_z(values: &[f64]) -> Vec<Option<f64>> {
    let mut window: Vec<f64> = Vec::with_capacity(WINDOW);
    let mut buffer: Vec<f64> = Vec::with_capacity(STEP);
    let (mut mean, mut std) = (0.0, 1.0);
    let mut out = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        out.push((i > 0).then(|| (v - mean).abs() / std));
        if window.len() < WINDOW {
            window.push(v);
            (mean, std) = mean_std(&window);
        } else {
            buffer.push(v);
            if buffer.len() == STEP {
                window.drain(..STEP);
                window.append(&mut buffer);
                (mean, std) = mean_std(&window);
            }
        }
    }
    out
}

/// Mean and population standard deviation as numpy computes them (`np.mean`, `np.std`):
/// pairwise sums, so that |z| agrees with NAB's Python to the last bit where ties matter.
fn mean_std(w: &[f64]) -> (f64, f64) {
    let n = w.len() as f64;
    let mean = pairwise_sum(w) / n;
    let squares: Vec<f64> = w.iter().map(|x| (x - mean) * (x - mean)).collect();
    let std = (pairwise_sum(&squares) / n).sqrt();
    (mean, if std == 0.0 { 1e-6 } else { std })
}

/// numpy's pairwise summation (`pairwise_sum_DOUBLE`): blocks of up to 128 summed with eight
/// accumulators, larger arrays split in halves at a multiple of 8.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, x| s + x)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            for (acc, x) in r.iter_mut().zip(chunk) {
                *acc += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &a[whole..] {
            res += x;
        }
        res
    } else {
        let half = n / 2;
        let half = half - half % 8;
        pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
    }
}

/// The detector's score as NAB computes it: `1 − ½·erfc(|z|/√2)`, 0 on the first row.
pub fn probability_scores(z: &[Option<f64>]) -> Vec<f64> {
    z.iter()
        .map(|z| z.map_or(0.0, |z| 1.0 - 0.5 * libm::erfc(z / std::f64::consts::SQRT_2)))
        .collect()
}

/// The same ranking without saturation: `|z| / (1 + |z|)`, 0 on the first row.
pub fn ranked_scores(z: &[Option<f64>]) -> Vec<f64> {
    z.iter().map(|z| z.map_or(0.0, |z| z / (1.0 + z))).collect()
}

/// `x` rounded to 12 significant digits, as NAB's published outputs were written (`%.12g`).
pub fn round12(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}
