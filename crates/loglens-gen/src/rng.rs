//! A small, portable pseudo-random number generator (SplitMix64 seeding xoshiro256**) and the
//! distributions the generator draws from, built only on IEEE-exact arithmetic so the same seed
//! gives the same numbers on every machine.
//!
//! Why not `f64::exp`/`ln`? They call the platform's libm, whose last bit differs between
//! systems; one flipped comparison would change every line after it. [`exp`] and [`ln`] here
//! use only `+ - * /` and bit manipulation, which IEEE 754 defines exactly.

/// SplitMix64: a 64-bit generator used to expand a seed into xoshiro's state and to derive
/// independent seeds from names.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// FNV-1a over `bytes`, used to derive per-stream seeds from names (stable across platforms,
/// unlike `std`'s hasher).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// xoshiro256** with a few sampling helpers. Cheap to clone; every stream owns one.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

const NORMAL_BUCKETS: usize = 4096;

/// Standard normal quantiles at the midpoints of equal-probability buckets, built once from
/// [`normal_quantile`].
fn normal_table() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..NORMAL_BUCKETS)
            .map(|i| normal_quantile((i as f64 + 0.5) / NORMAL_BUCKETS as f64))
            .collect()
    })
}

/// The standard normal quantile of `p` in (0, 1) (Acklam's rational approximation, relative
/// error below 1.2e-9), from basic arithmetic, [`ln`] and `sqrt` only.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * ln(p)).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * ln(1.0 - p)).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

impl Rng {
    /// A generator whose state is expanded from `seed` by SplitMix64.
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Rng { s }
    }

    /// A generator for the named purpose, independent of generators with other names.
    pub fn derive(seed: u64, name: &str) -> Self {
        Rng::new(seed ^ fnv1a(name.as_bytes()).rotate_left(17))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `(0, 1]`: safe to take the logarithm of.
    pub fn f64_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`0` when `n` is 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a slice of length `n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Uniform float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// An element of `items`; `items` must not be empty.
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.index(items.len())]
    }

    /// An index skewed towards 0 (a popularity ranking over `0..n`): the first tenth of the
    /// items gets about a third of the draws.
    pub fn skewed(&mut self, n: usize) -> usize {
        let u = self.f64();
        ((u * u) * n as f64) as usize
    }

    /// An index heavily skewed towards 0, for large populations (clients, products): the
    /// first hundredth gets about a fifth of the draws.
    pub fn popular(&mut self, n: usize) -> usize {
        let u = self.f64();
        ((u * u * u) * n as f64) as usize
    }

    /// A standard normal deviate: a table of quantiles, interpolated (tails clipped at about
    /// ±3.6σ). One uniform draw and no transcendental function per call.
    pub fn normal(&mut self) -> f64 {
        let table = normal_table();
        let f = self.f64() * NORMAL_BUCKETS as f64 - 0.5;
        let i = (f.max(0.0) as usize).min(NORMAL_BUCKETS - 2);
        let frac = (f - i as f64).clamp(0.0, 1.0);
        table[i] + (table[i + 1] - table[i]) * frac
    }

    /// A log-normal deviate with the given median and shape `sigma`.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }

    /// An exponential deviate with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * ln(self.f64_open())
    }

    /// A Poisson deviate with mean `lambda`: Knuth's product method for small means, a
    /// rounded normal approximation for large ones.
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        self.poisson_with(lambda, exp(-lambda))
    }

    /// [`Rng::poisson`] with `exp(-lambda)` computed by the caller (who may reuse it).
    pub fn poisson_with(&mut self, lambda: f64, exp_neg_lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = exp_neg_lambda;
            let mut k = 0u32;
            let mut p = self.f64();
            while p > limit {
                k += 1;
                p *= self.f64();
            }
            k
        } else {
            let x = lambda + lambda.sqrt() * self.normal() + 0.5;
            if x <= 0.0 {
                0
            } else {
                x as u32
            }
        }
    }

    /// An index drawn with probability proportional to `weights` (cumulative, ascending).
    pub fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.f64() * total;
        let i = cumulative.partition_point(|&c| c <= x);
        i.min(cumulative.len().saturating_sub(1))
    }
}

/// Cumulative sums of `weights`, for [`Rng::weighted`].
pub fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .into_iter()
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

const LN2: f64 = std::f64::consts::LN_2;

/// `1/i` for `i` in `0..32` (index 0 unused): series coefficients, computed at compile time.
const INV: [f64; 32] = {
    let mut inv = [0.0; 32];
    let mut i = 1;
    while i < 32 {
        inv[i] = 1.0 / i as f64;
        i += 1;
    }
    inv
};

/// `e^x` from basic arithmetic only (range reduction by ln 2, then a Taylor polynomial).
/// Relative error below 1e-15 over the range the generator uses; saturates outside ±700.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 700.0 {
        return f64::INFINITY;
    }
    if x < -700.0 {
        return 0.0;
    }
    let k = (x / LN2 + if x < 0.0 { -0.5 } else { 0.5 }) as i64;
    let r = x - k as f64 * LN2;
    // Horner evaluation of the Taylor series to degree 13 (|r| <= 0.35).
    let mut p = 1.0;
    let mut i = 13;
    while i > 0 {
        p = 1.0 + p * r * INV[i];
        i -= 1;
    }
    p * pow2(k)
}

/// `2^k` for `-1022 <= k <= 1023`, by building the exponent bits.
fn pow2(k: i64) -> f64 {
    let k = k.clamp(-1022, 1023);
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// The natural logarithm from basic arithmetic only (`x = m·2^e`, then the `atanh` series);
/// `-inf` for 0 and NaN for negative input.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let mut x = x;
    let mut e = 0i64;
    if x < f64::MIN_POSITIVE {
        x *= pow2(54);
        e -= 54;
    }
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    // Keep m in [sqrt(1/2), sqrt(2)) so the series argument stays below 0.172.
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut sum = 0.0;
    for n in (1..=27).rev().step_by(2) {
        sum = INV[n] + s2 * sum;
    }
    2.0 * s * sum + e as f64 * LN2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        let mut sm = SplitMix64::new(0);
        assert_eq!(sm.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(sm.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let a: Vec<u64> = (0..8).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..8).scan(Rng::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..8).scan(Rng::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(Rng::derive(1, "web").next_u64(), Rng::derive(1, "api").next_u64());
    }

    #[test]
    fn exp_and_ln_match_std() {
        let mut x = -60.0;
        while x < 60.0 {
            let (ours, std) = (exp(x), x.exp());
            assert!(((ours - std) / std).abs() < 1e-14, "exp({x}) = {ours}, std {std}");
            x += 0.0137;
        }
        for &x in &[
            1e-300, 1e-10, 0.001, 0.5, 0.7072, 1.0, 1.5, 2.0, 10.0, 12345.678, 1e300,
        ] {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= 1e-14 * std.abs().max(1.0),
                "ln({x}) = {ours}, std {std}"
            );
        }
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(exp(-1000.0), 0.0);
    }

    #[test]
    fn distributions_have_the_right_moments() {
        let mut r = Rng::new(42);
        let n = 100_000;
        let mean = |f: &mut dyn FnMut() -> f64| (0..n).map(|_| f()).sum::<f64>() / f64::from(n);
        let u = mean(&mut || r.f64());
        assert!((u - 0.5).abs() < 0.01, "uniform mean {u}");
        let z = mean(&mut || r.normal());
        assert!(z.abs() < 0.02, "normal mean {z}");
        let v = mean(&mut || r.normal().powi(2));
        assert!((v - 1.0).abs() < 0.03, "normal variance {v}");
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-6);
        let p = mean(&mut || f64::from(r.poisson(3.5)));
        assert!((p - 3.5).abs() < 0.05, "poisson(3.5) mean {p}");
        let p = mean(&mut || f64::from(r.poisson(120.0)));
        assert!((p - 120.0).abs() < 0.3, "poisson(120) mean {p}");
        let e = mean(&mut || r.exponential(2.0));
        assert!((e - 2.0).abs() < 0.05, "exponential mean {e}");
        let below: Vec<u64> = (0..1000).map(|_| r.below(10)).collect();
        assert!(below.iter().all(|&b| b < 10));
        assert!((0..10).all(|d| below.contains(&d)));
        let cum = cumulative([1.0, 0.0, 3.0]);
        let picks: Vec<usize> = (0..4000).map(|_| r.weighted(&cum)).collect();
        assert!(!picks.contains(&1), "zero weight never drawn");
        let threes = picks.iter().filter(|&&i| i == 2).count();
        assert!(
            (2800..3200).contains(&threes),
            "weight 3 of 4 drawn {threes} times of 4000"
        );
    }
}
