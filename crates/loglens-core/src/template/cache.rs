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
//!
//! Without user rules, a second map skips masking for every message seen before modulo its
//! digits: its key is the message's [skeleton] (each ASCII digit written as `1`, except a `0`
//! before `x`/`X`). Why is that exact? Every built-in masking decision looks at digits only
//! as a class (a digit here, so many in a row), except the `0x` prefix, which the skeleton
//! keeps; so two messages of one skeleton are cut and masked the same way, and their masked
//! texts differ only where a token keeps a digit after masking (`ssh2`, `eth0`). The entry
//! pins those tokens' bytes, and a message must have the same bytes there to use it.

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

/// Slots of a [`Doorkeeper`] (a power of two; 128 KB).
const DOOR_SLOTS: usize = 1 << 14;

/// Admits a key to a cache only when it is seen the second time: the hash of each key seen
/// once is kept in a fixed table (a later key with the same slot replaces it). Why? Keys seen
/// once (a firewall line with its own MAC address, a token holding a fresh id) would fill the
/// maps with entries that never hit, and a map grown past the processor caches makes every
/// lookup a memory access; with them kept out, the maps hold the recurring keys and stay
/// small. It decides only what is cached, never a result.
#[derive(Debug, Clone)]
pub(crate) struct Doorkeeper {
    slots: Box<[u64]>,
}

impl Default for Doorkeeper {
    fn default() -> Self {
        Doorkeeper {
            slots: vec![0; DOOR_SLOTS].into_boxed_slice(),
        }
    }
}

impl Doorkeeper {
    /// Whether `key` was seen before (and is worth caching); else remembers it.
    pub(crate) fn admit(&mut self, key: &[u8]) -> bool {
        let mut hasher = FxHasher::default();
        hasher.write(key);
        // Never 0, the value of an empty slot.
        let hash = hasher.finish() | 1;
        let Some(slot) = self.slots.get_mut(hash as usize & (DOOR_SLOTS - 1)) else {
            return true;
        };
        if *slot == hash {
            return true;
        }
        *slot = hash;
        false
    }
}

#[derive(Debug, Clone, Copy)]
struct Hit {
    cluster: u32,
    tokens: usize,
    stamp: u64,
    /// The key is also a raw message that masks to itself.
    raw: bool,
}

/// A skeleton entry: the cluster, and the tokens whose bytes must equal the message's.
#[derive(Debug, Clone)]
struct SkeletonHit {
    hit: Hit,
    /// The message's tokens that keep a digit after masking.
    pinned: PinnedTokens,
    /// Under a collapsed key: each free token's byte range, and whether it masked to `<*>`
    /// as a whole (then a message's free token must too, see [`MatchCache::insert_skeleton`]).
    free: Box<[FreeToken]>,
}

/// The tokens of a message that keep a digit after masking (`ssh2`, `eth0`), byte ranges and
/// bytes: a message of the same skeleton masks to the same text if it has the same bytes there.
#[derive(Debug, Clone)]
pub(crate) struct PinnedTokens {
    /// Byte ranges (start, end) of the tokens.
    pins: Box<[(u32, u32)]>,
    /// Their bytes, one after the other.
    bytes: Box<[u8]>,
}

impl PinnedTokens {
    /// The tokens of `message` at `pins`.
    pub(crate) fn of(message: &[u8], pins: &[(u32, u32)]) -> PinnedTokens {
        let bytes = (pins.iter())
            .flat_map(|&(start, end)| message.get(start as usize..end as usize).unwrap_or_default())
            .copied()
            .collect();
        PinnedTokens {
            pins: Box::from(pins),
            bytes,
        }
    }

    /// Whether `message` (of the same skeleton) has the same bytes in these tokens.
    pub(crate) fn fit(&self, message: &[u8]) -> bool {
        let mut offset = 0;
        self.pins.iter().all(|&(start, end)| {
            let len = (end - start) as usize;
            offset += len;
            message.get(start as usize..end as usize) == self.bytes.get(offset - len..offset)
        })
    }

    /// Bytes held.
    fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// A free token of a skeleton entry: byte range, and whether it masked to `<*>` as a whole.
pub(crate) type FreeToken = (u32, u32, bool);

/// Stands for every byte of a free token in a skeleton: not ASCII, so no real skeleton (the
/// fast path takes only ASCII messages) has it.
const FREE: u8 = 0x80;

/// Hex characters a token needs, at least, to be free (see [`Skeleton`]).
const FREE_MIN_HEX: usize = 8;

/// The skeleton of the message being mined, and its free tokens.
///
/// A free token is one that looks like a hex value (`MAC=8f:01:a1:..`, a UUID, `a64f99c2`):
/// at least [`FREE_MIN_HEX`] hex characters, with a digit and a letter in one run. Why? Its
/// letters vary from message to message, so the plain skeleton (digits written as `1`) is new
/// every time and such messages would always be masked and matched. In the collapsed form of
/// the skeleton each byte of a free token is [`FREE`]; a cache entry under that key is made
/// only where the miner has shown the token's value cannot matter (see
/// [`MatchCache::insert_skeleton`]), and checks whether the token masks to `<*>` as a whole.
#[derive(Debug, Clone, Default)]
pub(crate) struct Skeleton {
    bytes: Vec<u8>,
    /// Byte ranges of the free tokens.
    free: Vec<(u32, u32)>,
    /// Whether the free tokens are written as [`FREE`] now.
    collapsed: bool,
}

impl Skeleton {
    /// The key as it is now (collapsed or plain).
    pub(crate) fn key(&self) -> &[u8] {
        &self.bytes
    }

    /// The free tokens' byte ranges.
    pub(crate) fn free(&self) -> &[(u32, u32)] {
        &self.free
    }

    /// Makes this the skeleton of `message` (plain, free tokens found). Returns whether the
    /// message is ASCII (the fast path is kept to ASCII messages, whose tokens `mask.rs` cuts
    /// byte by byte).
    pub(crate) fn build(&mut self, message: &[u8]) -> bool {
        self.free.clear();
        self.collapsed = false;
        let scan = skeleton_into(message, &mut self.bytes);
        if let (true, Some((from, to))) = (scan.ascii, scan.mixed_hex) {
            find_free_tokens(message, from, to, &mut self.free);
        }
        scan.ascii
    }

    /// Writes the free tokens as [`FREE`] (the key of the free entries).
    pub(crate) fn collapse(&mut self) {
        if self.collapsed {
            return;
        }
        for &(start, end) in &self.free {
            if let Some(token) = self.bytes.get_mut(start as usize..end as usize) {
                token.fill(FREE);
            }
        }
        self.collapsed = true;
    }

    /// Writes the free tokens back as in the plain skeleton.
    pub(crate) fn restore(&mut self, message: &[u8]) {
        if !self.collapsed {
            return;
        }
        for &(start, end) in &self.free {
            let (start, end) = (start as usize, end as usize);
            for i in start..end.min(message.len()).min(self.bytes.len()) {
                self.bytes[i] = plain_byte(message, i);
            }
        }
        self.collapsed = false;
    }
}

/// Byte `i` of the plain skeleton of `message`.
fn plain_byte(message: &[u8], i: usize) -> u8 {
    let b = message[i];
    let hex_prefix = b == b'0' && matches!(message.get(i + 1), Some(b'x' | b'X'));
    if b.is_ascii_digit() && !hex_prefix {
        b'1'
    } else {
        b
    }
}

/// Pushes the byte ranges of the free tokens of ASCII `message` (see [`Skeleton`]) that
/// overlap bytes `from..to`, cutting tokens at the white space `mask.rs` cuts at.
fn find_free_tokens(message: &[u8], from: usize, to: usize, free: &mut Vec<(u32, u32)>) {
    // From the start of the token that holds byte `from`.
    let mut i = from.min(message.len());
    while i > 0 && !is_space(message[i - 1]) {
        i -= 1;
    }
    while i < message.len() && i < to {
        while i < message.len() && is_space(message[i]) {
            i += 1;
        }
        let start = i;
        while i < message.len() && !is_space(message[i]) {
            i += 1;
        }
        if i > start && is_free_token(&message[start..i]) {
            let (Ok(s), Ok(e)) = (u32::try_from(start), u32::try_from(i)) else {
                return;
            };
            free.push((s, e));
        }
    }
}

/// The index of the token of ASCII `message` that starts at byte `at`: the tokens before it.
pub(crate) fn token_index(message: &[u8], at: usize) -> usize {
    let mut count = 0;
    let mut in_token = false;
    for &b in message.get(..at).unwrap_or(message) {
        let space = is_space(b);
        count += usize::from(!space && !in_token);
        in_token = !space;
    }
    count
}

/// The ASCII characters Unicode counts as white space (as `mask.rs` cuts tokens).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// A token with at least [`FREE_MIN_HEX`] hex characters and a run of hex characters that
/// holds both a digit and a letter.
fn is_free_token(token: &[u8]) -> bool {
    let (mut hex, mut mixed) = (0usize, false);
    let (mut run_digit, mut run_letter) = (false, false);
    for &b in token {
        if b.is_ascii_digit() {
            run_digit = true;
        } else if b.is_ascii_hexdigit() {
            run_letter = true;
        } else {
            run_digit = false;
            run_letter = false;
            continue;
        }
        hex += 1;
        mixed |= run_digit && run_letter;
    }
    mixed && hex >= FREE_MIN_HEX
}

/// What [`skeleton_into`] saw.
struct Scan {
    ascii: bool,
    /// Where digits meet hex letters, if in two places or more (then the message may have
    /// free tokens there): from the first such 8-byte word to the end of the last.
    mixed_hex: Option<(usize, usize)>,
}

/// Writes the plain skeleton of `message` into `out` (cleared first): each ASCII digit as
/// `1`, except a `0` followed by `x` or `X`.
fn skeleton_into(message: &[u8], out: &mut Vec<u8>) -> Scan {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    out.clear();
    out.extend_from_slice(message);
    // Eight bytes at a time (this runs on every message): a byte is a digit when adding
    // 0x80 - '0' sets its high bit and adding 0x7f - '9' does not; likewise for the hex
    // letters after `| 0x20` (lower case). Only ASCII bytes are mapped right (others could
    // carry into the next byte), and only ASCII messages are used.
    let (mut high, mut hex_prefix, mut mixed, mut met) = (0u64, 0u64, 0u64, 0u64);
    let (mut first_meet, mut last_meet) = (usize::MAX, 0);
    let mut chunks = out.chunks_exact_mut(8);
    for (k, chunk) in (&mut chunks).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        high |= w;
        let at_least_0 = w.wrapping_add(ONES * u64::from(0x80 - b'0'));
        let above_9 = w.wrapping_add(ONES * u64::from(0x7f - b'9'));
        let digit_bits = at_least_0 & !above_9 & HIGH;
        let lower = w | (ONES * 0x20);
        let at_least_a = lower.wrapping_add(ONES * u64::from(0x80 - b'a'));
        let above_f = lower.wrapping_add(ONES * u64::from(0x7f - b'f'));
        let letter_bits = at_least_a & !above_f & HIGH;
        // Two places where a digit meets a hex letter (one is common: `debian-sa1`).
        let meet = ((digit_bits << 8) | (digit_bits >> 8)) & letter_bits;
        if meet != 0 {
            mixed |= (meet & meet.wrapping_sub(1)) | met;
            met = 1;
            first_meet = first_meet.min(k);
            last_meet = k;
        }
        // A zero byte of this is an `x` or `X` after a `0` in the word, or one that starts
        // the word (whose `0` may end the last word): found whether there is one, exactly.
        let pair = (lower ^ (ONES * u64::from(b'x'))) | ((w ^ (ONES * u64::from(b'0'))) << 8);
        hex_prefix |= pair.wrapping_sub(ONES) & !pair & HIGH;
        let digits = (digit_bits >> 7) * 0xff;
        let mapped = (w & !digits) | ((ONES * u64::from(b'1')) & digits);
        chunk.copy_from_slice(&mapped.to_le_bytes());
    }
    let rest_start = message.len() - chunks.into_remainder().len();
    for i in rest_start..message.len() {
        let b = message[i];
        high |= u64::from(b);
        hex_prefix |= u64::from(matches!(b, b'x' | b'X') && i > 0 && message[i - 1] == b'0');
        if b.is_ascii_digit() {
            out[i] = b'1';
        }
    }
    // The `0x` prefix keeps its `0` (rare: look only when there is one).
    if hex_prefix != 0 {
        for i in memchr::memchr2_iter(b'x', b'X', message) {
            if i > 0 && message[i - 1] == b'0' {
                out[i - 1] = b'0';
            }
        }
    }
    Scan {
        ascii: high & HIGH == 0,
        // Free tokens found only by the word test: one missed is only slower, never wrong.
        // Lazily: without a meeting `first_meet` is still usize::MAX.
        mixed_hex: (mixed != 0).then(|| (first_meet * 8, (last_meet + 1) * 8)),
    }
}

/// Masked message → cluster, with a change stamp per token count.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchCache {
    map: FxHashMap<Box<str>, Hit>,
    bytes: usize,
    /// Message skeleton → cluster (see the module doc).
    skeletons: FxHashMap<Box<[u8]>, SkeletonHit>,
    skeleton_bytes: usize,
    /// Which masked texts and skeletons are cached (see [`Doorkeeper`]).
    masked_door: Doorkeeper,
    skeleton_door: Doorkeeper,
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

    /// The clock value of the last change among clusters of `tokens` tokens (0: never).
    pub(crate) fn stamp_of(&self, tokens: usize) -> u64 {
        self.stamps.get(tokens).copied().unwrap_or(0)
    }

    /// The cluster the raw (unmasked) `message` joins, if it is known to mask to itself.
    pub(crate) fn get_raw(&self, message: &str) -> Option<u32> {
        let hit = self.map.get(message)?;
        (hit.raw && self.stamps.get(hit.tokens) == Some(&hit.stamp)).then_some(hit.cluster)
    }

    /// The cluster `message` joins, known from a message of the same `skeleton` with the same
    /// bytes in its pinned tokens and, under a collapsed key, free tokens that mask to `<*>`
    /// as a whole where its did (`whole` tells of a token; `None`: it cannot say).
    pub(crate) fn get_skeleton(
        &self,
        skeleton: &[u8],
        message: &[u8],
        whole: &mut dyn FnMut(&[u8]) -> Option<bool>,
    ) -> Option<u32> {
        let entry = self.skeletons.get(skeleton)?;
        if self.stamps.get(entry.hit.tokens) != Some(&entry.hit.stamp) {
            return None;
        }
        if !entry.pinned.fit(message) {
            return None;
        }
        for &(start, end, wildcard) in entry.free.iter() {
            if wildcard && !whole(message.get(start as usize..end as usize)?)? {
                return None;
            }
        }
        Some(entry.hit.cluster)
    }

    /// Remembers that messages of `skeleton` with `message`'s bytes in the `pins` ranges
    /// (tokens that keep a digit after masking) join `cluster` (of `tokens` tokens) and
    /// change nothing. Under a collapsed key, `free` lists the free tokens; the caller has
    /// checked that every cluster of the message's leaf has `<*>` at their positions, which
    /// are past the tokens the tree routes by. Why is that exact? Such a token then neither
    /// routes the message nor meets a constant token in any similarity, and cannot change a
    /// template; its value counts only through whether it is `<*>` itself, which (with
    /// `wildcard_matches`) adds one agreeing position to every cluster of the leaf alike
    /// (they have one length): the best cluster stays the best, and only its similarity
    /// rises. So a message whose free token was not `<*>` vouches for every value there, and
    /// one whose token was `<*>` only for tokens that mask to `<*>` too (checked on use).
    pub(crate) fn insert_skeleton(
        &mut self,
        skeleton: &[u8],
        message: &[u8],
        pins: &[(u32, u32)],
        free: &[FreeToken],
        tokens: usize,
        cluster: u32,
    ) {
        if skeleton.len() > MAX_KEY {
            return;
        }
        let pinned = PinnedTokens::of(message, pins);
        let size = skeleton.len() + pinned.len() + std::mem::size_of_val(free);
        if self.skeletons.len() >= MAX_ENTRIES || self.skeleton_bytes + size > MAX_BYTES {
            self.skeletons.clear();
            self.skeleton_bytes = 0;
        }
        let hit = SkeletonHit {
            hit: Hit {
                cluster,
                tokens,
                stamp: self.stamp(tokens),
                raw: false,
            },
            pinned,
            free: Box::from(free),
        };
        if self.skeletons.insert(Box::from(skeleton), hit).is_none() {
            self.skeleton_bytes += size;
        }
    }

    /// Whether a masked text is worth caching (seen before; see [`Doorkeeper`]).
    pub(crate) fn admit(&mut self, masked: &str) -> bool {
        self.masked_door.admit(masked.as_bytes())
    }

    /// Whether a skeleton is worth caching (seen before; see [`Doorkeeper`]).
    pub(crate) fn admit_skeleton(&mut self, skeleton: &[u8]) -> bool {
        self.skeleton_door.admit(skeleton)
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

    /// Entries held now (masked texts, skeletons).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len().max(self.skeletons.len())
    }

    /// Skeleton entries held now under a collapsed key.
    #[cfg(test)]
    pub(crate) fn free_entries(&self) -> usize {
        self.skeletons.values().filter(|e| !e.free.is_empty()).count()
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
        self.skeletons.clear();
        self.skeleton_bytes = 0;
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
    fn skeletons_write_digits_as_one_but_keep_hex_prefixes() {
        let mut out = Vec::new();
        let text = "port 30897 ssh2 0x1F 00X 9x 10.0.2.11:80 abcdefghij0123456789/:@`";
        assert!(skeleton_into(text.as_bytes(), &mut out).ascii);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap_or_default(),
            "port 11111 ssh1 0x1F 10X 1x 11.1.1.11:11 abcdefghij1111111111/:@`"
        );
        assert!(!skeleton_into("caf\u{e9} 12".as_bytes(), &mut out).ascii);
        assert!(skeleton_into(b"", &mut out).ascii);
        assert!(out.is_empty());
    }

    fn free_of(text: &str) -> Vec<&str> {
        let mut skeleton = Skeleton::default();
        assert!(skeleton.build(text.as_bytes()));
        skeleton
            .free()
            .iter()
            .map(|&(s, e)| &text[s as usize..e as usize])
            .collect()
    }

    #[test]
    fn free_tokens_are_hex_values() {
        assert_eq!(
            free_of("IN=eth0 MAC=8f:01:a1:46:51:df:09:6a SRC=10.0.2.11 ID=11522 0x1f2e3d4c"),
            vec!["MAC=8f:01:a1:46:51:df:09:6a", "0x1f2e3d4c"]
        );
        assert_eq!(
            free_of("job\t38101a0b-2096-447d-96ea-a692162415ae done a64f99c2"),
            vec!["38101a0b-2096-447d-96ea-a692162415ae", "a64f99c2"]
        );
        // Too few hex characters, no digit beside a letter, or no letter at all.
        assert!(free_of("debian-sa1 1 1 deadbeefcafe 12345678 a1b2c3 ab:12:cd:34:ef:56").is_empty());
        assert!(free_of("").is_empty());
    }

    #[test]
    fn collapse_and_restore_switch_keys() {
        let text = "x 0x1f2e3d4c MAC=8f:01:a1:46:51:df:09:6a 7";
        let mut skeleton = Skeleton::default();
        assert!(skeleton.build(text.as_bytes()));
        let plain = skeleton.key().to_vec();
        assert_eq!(plain, b"x 0x1f1e1d1c MAC=1f:11:a1:11:11:df:11:1a 1");
        skeleton.collapse();
        skeleton.collapse();
        let mut collapsed = b"x ".to_vec();
        collapsed.extend([FREE; 10]);
        collapsed.push(b' ');
        collapsed.extend([FREE; 27]);
        collapsed.extend(b" 1");
        assert_eq!(skeleton.key(), &collapsed[..]);
        skeleton.restore(text.as_bytes());
        assert_eq!(skeleton.key(), &plain[..]);
    }

    #[test]
    fn token_index_counts_the_tokens_before() {
        let text = b"  a bb\t\x0bccc d";
        assert_eq!(token_index(text, 0), 0);
        assert_eq!(token_index(text, 2), 0);
        assert_eq!(token_index(text, 4), 1);
        assert_eq!(token_index(text, 8), 2);
        assert_eq!(token_index(text, 12), 3);
    }

    #[test]
    fn the_doorkeeper_admits_keys_seen_twice() {
        let mut door = Doorkeeper::default();
        assert!(!door.admit(b"once"));
        assert!(!door.admit(b"twice"));
        assert!(door.admit(b"twice"));
        assert!(door.admit(b"once"));
        assert!(!door.admit(b""));
        assert!(door.admit(b""));
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
