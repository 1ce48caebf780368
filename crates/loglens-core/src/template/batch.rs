//! Messages masked where they are read and mined elsewhere: a cluster's workers mask their
//! chunks' messages, each distinct text once, so the driver, which must mine every message in
//! input order, receives a few distinct masked texts and an index instead of every message.
//!
//! Why is this exact? Masking is a function of the message and the miner's configuration
//! alone, and [`TemplateMiner::add`](super::TemplateMiner::add) masks and then mines the
//! masked text; [`TemplateMiner::add_from_batch`](super::TemplateMiner::add_from_batch)
//! mines the texts masked here the same way, so the clusters, counts and ids are those of
//! mining the messages themselves.

use serde::{Deserialize, Serialize};

use super::cache::{FxHashMap, PinnedTokens, Skeleton};
use super::mask::{Masker, TokenMemo};
use super::MinerConfig;

/// A batch of messages, masked: each distinct masked text once and, per message in order, its
/// place among them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedBatch {
    /// The distinct masked texts, in order of first appearance.
    pub texts: Vec<String>,
    /// Per message, its text's place in `texts`.
    pub index: Vec<u32>,
}

impl MaskedBatch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// What mining a batch remembers of each distinct text (see
/// [`TemplateMiner::add_from_batch`](super::TemplateMiner::add_from_batch)).
#[derive(Debug, Clone, Default)]
pub struct BatchJoins {
    joined: Vec<Option<Join>>,
}

/// A text's last join that changed nothing: its cluster, and the change stamp of its token
/// count then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Join {
    pub(crate) cluster: u32,
    pub(crate) tokens: usize,
    pub(crate) stamp: u64,
}

impl BatchJoins {
    /// Nothing remembered yet of `batch`'s texts.
    pub fn of(batch: &MaskedBatch) -> BatchJoins {
        BatchJoins {
            joined: vec![None; batch.texts.len()],
        }
    }

    pub(crate) fn slot(&mut self, place: usize) -> Option<&mut Option<Join>> {
        self.joined.get_mut(place)
    }
}

/// Masks messages into a [`MaskedBatch`] as the miner of the same configuration would.
///
/// Most messages are not masked at all: one of the same skeleton (digits written as `1`) and
/// the same bytes in the tokens that keep a digit after masking masks to the same text (the
/// miner's skeleton cache relies on the same rule, see `cache.rs`), and a message seen before
/// in the batch (when the skeleton cannot be used: user rules, non-ASCII text) is looked up.
/// On the demo's logs a chunk of 41k messages holds about 1,800 skeletons.
#[derive(Debug)]
pub struct BatchMasker {
    masker: Masker,
    memo: TokenMemo,
    /// The skeleton of the message being added (reused).
    skeleton: Skeleton,
    /// A skeleton seen before in this batch → the place of its masked text, where the bytes
    /// of its pinned tokens are those of the message that made the entry.
    shapes: FxHashMap<Box<[u8]>, Shape>,
    /// A message seen before in this batch → its text's place, for messages without a usable
    /// skeleton.
    seen: FxHashMap<Box<str>, u32>,
    /// A masked text → its place.
    places: FxHashMap<Box<str>, u32>,
    batch: MaskedBatch,
    masked: String,
    pins: Vec<(u32, u32)>,
}

/// What a skeleton's first message masked to, and what another must share with it.
#[derive(Debug)]
struct Shape {
    place: u32,
    pinned: PinnedTokens,
}

impl BatchMasker {
    /// A masker for about `messages` messages mined by a miner of `config`. Why the count?
    /// Sized for it, its tables are not rebuilt as they fill.
    pub fn new(config: &MinerConfig, messages: usize) -> BatchMasker {
        BatchMasker {
            masker: Masker::new(config.masks.clone(), config.builtin),
            memo: TokenMemo::default(),
            skeleton: Skeleton::default(),
            // About one message in twenty has a new skeleton.
            shapes: FxHashMap::with_capacity_and_hasher(messages / 16, Default::default()),
            seen: FxHashMap::default(),
            places: FxHashMap::with_capacity_and_hasher(messages / 16, Default::default()),
            batch: MaskedBatch {
                texts: Vec::new(),
                index: Vec::with_capacity(messages),
            },
            masked: String::new(),
            pins: Vec::new(),
        }
    }

    /// Adds the next message.
    pub fn push(&mut self, message: &str) {
        let bytes = message.as_bytes();
        let place = if !self.masker.has_rules() && self.skeleton.build(bytes) {
            match self.shapes.get(self.skeleton.key()) {
                Some(shape) if shape.pinned.fit(bytes) => shape.place,
                known => {
                    let first = known.is_none();
                    let place = self.mask(message);
                    if first {
                        let pinned = PinnedTokens::of(bytes, &self.pins);
                        self.shapes
                            .insert(self.skeleton.key().into(), Shape { place, pinned });
                    }
                    place
                }
            }
        } else if let Some(&place) = self.seen.get(message) {
            place
        } else {
            let place = self.mask(message);
            self.seen.insert(Box::from(message), place);
            place
        };
        self.batch.index.push(place);
    }

    /// Masks `message`, noting its pinned tokens; the place of its masked text.
    fn mask(&mut self, message: &str) -> u32 {
        self.pins.clear();
        (self.masker).mask_into_memo(message, &mut self.masked, &mut self.memo, &mut self.pins);
        if let Some(&place) = self.places.get(self.masked.as_str()) {
            return place;
        }
        let place = u32::try_from(self.batch.texts.len()).unwrap_or(u32::MAX);
        self.places.insert(Box::from(self.masked.as_str()), place);
        self.batch.texts.push(self.masked.clone());
        place
    }

    /// The batch so far; the masker starts a new one (keeping its token memo).
    pub fn finish(&mut self) -> MaskedBatch {
        self.shapes.clear();
        self.seen.clear();
        self.places.clear();
        std::mem::take(&mut self.batch)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::template::{TemplateMiner, TemplateStage};

    #[test]
    fn mining_the_masked_batch_equals_mining_the_messages() {
        let messages = [
            "connection from 10.0.0.1 closed after 12ms",
            "connection from 10.0.0.7 closed after 9ms",
            "connection from 10.0.0.1 closed after 12ms",
            "user alice logged in",
            "user bob logged in",
            "user alice logged in",
            "disk /dev/sda1 at 91%",
            "link eth0 up after 3s",
            "link eth1 up after 4s",
            "naïve user 12 logged in",
            "naïve user 13 logged in",
            "naïve user 12 logged in",
            "",
            "   spaced    out  ",
        ];
        let mut masker = BatchMasker::new(&MinerConfig::default(), 16);
        messages.iter().for_each(|m| masker.push(m));
        let batch = masker.finish();
        assert_eq!(batch.len(), messages.len());
        assert!(batch.texts.len() < messages.len(), "{:?}", batch.texts);
        assert_eq!(batch.index[2], batch.index[0]);
        let mut direct = TemplateMiner::new(MinerConfig::default());
        let mut masked = TemplateMiner::new(MinerConfig::default());
        let mut joins = BatchJoins::of(&batch);
        for (message, &place) in messages.iter().zip(&batch.index) {
            let matched = masked.add_from_batch(&batch, place, &mut joins);
            assert_eq!(Some(direct.add(message)), matched, "{message:?}");
        }
        assert_eq!(direct.state(), masked.state());
        assert!(masker.finish().is_empty());
    }

    /// Messages of a few statements with numbers, hex ids, words and odd spacing.
    fn message() -> impl Strategy<Value = String> {
        let word = prop::sample::select(vec![
            "alice", "bob", "GET", "POST", "ok", "error", "eth0", "ssh2", "café",
        ]);
        let value = prop_oneof![
            (0u32..2000).prop_map(|n| n.to_string()),
            (0u64..u64::MAX).prop_map(|n| format!("0x{n:x}")),
            (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("10.0.{a}.{b}")),
            word.clone().prop_map(str::to_owned),
        ];
        let shape = prop::sample::select(vec![
            "user {} logged in from {}",
            "took {} ms for {}",
            "session {} closed",
            "{} {}  {}",
            "disk {} at {}%",
        ]);
        (shape, prop::collection::vec(value, 3)).prop_map(|(shape, values)| {
            let mut out = shape.to_owned();
            for v in values {
                out = out.replacen("{}", &v, 1);
            }
            out
        })
    }

    proptest! {
        #[test]
        fn masked_batches_mine_as_the_messages_whatever_the_batches(
            messages in prop::collection::vec(message(), 1..300),
            cuts in prop::collection::vec(0usize..300, 0..8),
        ) {
            let mut direct = TemplateMiner::new(MinerConfig::default());
            let mut masked = TemplateMiner::new(MinerConfig::default());
            let mut masker = BatchMasker::new(&MinerConfig::default(), 16);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % messages.len()).collect();
            cuts.push(messages.len());
            cuts.sort_unstable();
            let mut from = 0;
            for to in cuts {
                let part = &messages[from..to];
                part.iter().for_each(|m| masker.push(m));
                let batch = masker.finish();
                prop_assert_eq!(batch.len(), part.len());
                let mut joins = BatchJoins::of(&batch);
                for (message, &place) in part.iter().zip(&batch.index) {
                    let matched = masked.add_from_batch(&batch, place, &mut joins);
                    prop_assert_eq!(Some(direct.add(message)), matched);
                }
                from = to;
            }
            prop_assert_eq!(direct.state(), masked.state());
        }

        /// The stage issues ids as a message is mined, so a batch must be issued message by
        /// message too (a template that generalizes later in the batch gets a new id then).
        #[test]
        fn a_stage_gives_a_masked_batch_the_ids_it_gives_the_messages(
            messages in prop::collection::vec(message(), 1..300),
            size in 1usize..100,
        ) {
            let mut direct = TemplateStage::new(TemplateMiner::new(MinerConfig::default()));
            let mut masked = TemplateStage::new(TemplateMiner::new(MinerConfig::default()));
            let mut masker = BatchMasker::new(&MinerConfig::default(), 16);
            for part in messages.chunks(size) {
                part.iter().for_each(|m| masker.push(m));
                let assigned = masked.assign_masked_batch(&masker.finish());
                prop_assert_eq!(direct.assign_batch(part.iter().map(String::as_str)), assigned);
            }
            prop_assert_eq!(direct.state(), masked.state());
        }
    }
}
