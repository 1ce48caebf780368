//! The miner's fast path: a bounded map from a masked message to the cluster it joined, valid
//! while nothing changed among the clusters of its token count, and the fast hasher it (and
//! the prefix tree) use.
//!
//! Why is this exact? [`best_match`](super::TemplateMiner) depends only on the tree and the
//! templates of the message's token count. A message that joined a cluster without changing
//! its template left both as they were, so the same masked text joins the same cluster again
//! until a cluster of that token count is made or generalizes, which moves that count's stamp
//! and retires its entries.
//!
//! A message with nothing to mask (`session closed for user root`) is its own masked text;
//! such entries are marked `raw`, and a message found among them skips masking altogether
//! (the same text masks to the same text again).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Entries kept before the map is emptied: memory stays bounded whatever the input.
const MAX_ENTRIES: usize = 1 << 16;
/// Key bytes kept before the map is emptied.
const MAX_BYTES: usize = 8 << 20;
/// Longer masked messages are not cached (they are rare, and would crowd out the rest).
const MAX_KEY: usize = 1024;

/// The Fx hash (as in rustc), fed eight bytes at a time. Why not the std SipHash? The keys
/// are the miner's own masked text and tree tokens, not attacker-chosen table keys that need
/// DoS resistance, and SipHash costs several times more per byte on this hot path.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weak; the table indexes by them.
        self.hash.rotate_left(26)
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Clone, Copy)]
struct Hit {
    cluster: u32,
    tokens: usize,
    stamp: u64,
    /// The key is also a raw message that masks to itself.
    raw: bool,
}

/// Masked message → cluster, with a change stamp per token count.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchCache {
    map: FxHashMap<Box<str>, Hit>,
    bytes: usize,
    /// Per token count, the clock value of its last change (0: never changed).
    stamps: Vec<u64>,
    clock: u64,
}

impl MatchCache {
    /// The cluster `masked` joins, if known and still valid.
    pub(crate) fn get(&self, masked: &str) -> Option<u32> {
        let hit = self.map.get(masked)?;
        (self.stamps.get(hit.tokens) == Some(&hit.stamp)).then_some(hit.cluster)
    }

    /// The cluster the raw (unmasked) `message` joins, if it is known to mask to itself.
    pub(crate) fn get_raw(&self, message: &str) -> Option<u32> {
        let hit = self.map.get(message)?;
        (hit.raw && self.stamps.get(hit.tokens) == Some(&hit.stamp)).then_some(hit.cluster)
    }

    /// Marks `masked` as a raw message that masks to itself.
    pub(crate) fn set_raw(&mut self, masked: &str) {
        if let Some(hit) = self.map.get_mut(masked) {
            hit.raw = true;
        }
    }

    /// Remembers that `masked` (of `tokens` tokens) joined `cluster` and changed nothing;
    /// `raw`: the message was `masked` itself.
    pub(crate) fn insert(&mut self, masked: &str, tokens: usize, cluster: u32, raw: bool) {
        if masked.len() > MAX_KEY {
            return;
        }
        if self.map.len() >= MAX_ENTRIES || self.bytes + masked.len() > MAX_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        let stamp = self.stamp(tokens);
        let hit = Hit {
            cluster,
            tokens,
            stamp,
            raw,
        };
        if self.map.insert(Box::from(masked), hit).is_none() {
            self.bytes += masked.len();
        }
    }

    /// A cluster of `tokens` tokens was made or its template changed: retire the entries of
    /// that token count.
    pub(crate) fn changed(&mut self, tokens: usize) {
        self.clock += 1;
        if self.stamps.len() <= tokens {
            self.stamps.resize(tokens + 1, 0);
        }
        self.stamps[tokens] = self.clock;
    }

    /// Entries held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    fn stamp(&mut self, tokens: usize) -> u64 {
        if self.stamps.len() <= tokens {
            self.stamps.resize(tokens + 1, 0);
        }
        self.stamps[tokens]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_retire_when_their_token_count_changes() {
        let mut cache = MatchCache::default();
        cache.changed(3);
        cache.insert("a <*> b", 3, 7, false);
        cache.insert("x y", 2, 1, false);
        assert_eq!(cache.get("a <*> b"), Some(7));
        assert_eq!(cache.get("x y"), Some(1));
        // Only a key marked raw answers for an unmasked message.
        assert_eq!(cache.get_raw("x y"), None);
        cache.set_raw("x y");
        assert_eq!(cache.get_raw("x y"), Some(1));
        cache.changed(3);
        assert_eq!(cache.get("a <*> b"), None);
        assert_eq!(cache.get("x y"), Some(1));
        assert_eq!(cache.get("never seen"), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut cache = MatchCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            cache.insert(&format!("message {i}"), 2, 0, false);
        }
        assert!(cache.map.len() <= MAX_ENTRIES);
        assert_eq!(cache.map.len(), 10);
        cache.insert(&"x".repeat(MAX_KEY + 1), 1, 0, true);
        assert_eq!(cache.map.len(), 10);
    }

    #[test]
    fn fx_hash_tells_apart_lengths_and_contents() {
        let hash = |s: &str| {
            let mut h = FxHasher::default();
            h.write(s.as_bytes());
            h.finish()
        };
        assert_ne!(hash("a"), hash("a\0"));
        assert_ne!(hash("abcdefgh"), hash("abcdefgi"));
        assert_eq!(hash("same text"), hash("same text"));
    }
}
