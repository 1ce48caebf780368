//! Retry timing and idempotency keys. Jitter comes from a seeded generator, not a clock or OS
//! randomness, so a retry schedule can be replayed exactly in tests.

/// Exponential backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt, in milliseconds.
    pub base_ms: u64,
    /// Upper bound of any delay, in milliseconds.
    pub max_ms: u64,
}

/// Delay before attempt `attempt + 1` after `attempt` failures (`attempt` ≥ 1): `base · 2^(attempt-1)`
/// capped at `max`, then "equal jitter": half of it fixed, half drawn from `seed` and `attempt`.
/// Why equal jitter? It keeps a lower bound (a receiver that is down is not hammered) while
/// spreading the retries of many notifications that failed together.
pub fn backoff_millis(backoff: Backoff, attempt: u32, seed: u64) -> u64 {
    let shift = attempt.saturating_sub(1).min(32);
    let exp = backoff.base_ms.saturating_mul(1u64 << shift).min(backoff.max_ms);
    let half = exp / 2;
    let draw = splitmix64(seed ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    half + draw % (exp - half + 1)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stable 128-bit hex key of the parts (two FNV-1a passes with different offsets; parts are
/// separated so `["ab","c"]` and `["a","bc"]` differ).
pub fn idempotency_key(parts: &[&str]) -> String {
    let hash = |offset: u64| {
        let mut h = offset;
        for part in parts {
            for &b in part.as_bytes().iter().chain(&[0x1f]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01B3);
            }
        }
        h
    };
    format!(
        "{:016x}{:016x}",
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x6c62_272e_07bb_0142)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered_deterministically() {
        let b = Backoff {
            base_ms: 100,
            max_ms: 1000,
        };
        for attempt in 1..10 {
            let exp = (100u64 << (attempt - 1)).min(1000);
            let d = backoff_millis(b, attempt, 7);
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d} not in [{}, {exp}]",
                exp / 2
            );
            assert_eq!(d, backoff_millis(b, attempt, 7), "same seed, same delay");
        }
        let spread: std::collections::BTreeSet<u64> = (0..50).map(|s| backoff_millis(b, 4, s)).collect();
        assert!(spread.len() > 10, "seeds spread retries: {spread:?}");
    }

    #[test]
    fn keys_are_stable_and_separated() {
        assert_eq!(idempotency_key(&["a", "b"]), idempotency_key(&["a", "b"]));
        assert_ne!(idempotency_key(&["ab", "c"]), idempotency_key(&["a", "bc"]));
        assert_eq!(idempotency_key(&["x"]).len(), 32);
    }
}
