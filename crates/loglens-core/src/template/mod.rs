//! Log template mining: an online, Drain-style miner that groups messages by the log statement
//! that produced them and names each group by a template (`Took <*> seconds to build
//! instance`), with a stable [`TemplateId`] derived from the template text.
//!
//! ```
//! use loglens_core::template::{MinerConfig, TemplateMiner};
//!
//! let mut miner = TemplateMiner::new(MinerConfig::default());
//! let a = miner.add("connection from 10.0.0.1 closed after 12ms");
//! let b = miner.add("connection from 10.0.0.7 closed after 9ms");
//! assert_eq!(a.cluster, b.cluster);
//! let templates = miner.snapshot();
//! let template = templates.template_of(b.cluster).unwrap();
//! assert_eq!(template.text, "connection from <*> closed after <*>");
//! assert_eq!(template.count, 2);
//! ```
//!
//! The algorithm is Drain (He et al., ICWS 2017) as logparser implements it — mask, route by
//! token count and leading tokens through a fixed-depth tree, join the most similar cluster of
//! the leaf if the similarity reaches `similarity_threshold`, else start one; a joined
//! cluster's differing positions become `<*>` — with five changes, each a
//! [`MinerConfig`] switch, all on by default and the same for every log source
//! ([`MinerConfig::drain`] turns them off and reproduces logparser's Drain figures exactly):
//!
//! - **Built-in masking** ([`BuiltinMasks`]): numbers, addresses, ids, paths, durations, dates
//!   become `<*>` before mining, by a token classifier rather than regexes.
//! - **`<*>`-aware similarity** (`wildcard_matches`): where template and message both have
//!   `<*>` they agree. Why? Drain counts every `<*>` against the match, so the more a message
//!   is masked, the less it resembles its own template.
//! - **Distinct words** (`distinct_words`): two different words at one position (`error`/`ok`,
//!   `Paused`/`Resumed`, `user=root`/`user=guest`) mean two events. Why? Variables are nearly
//!   always numbers, ids, addresses or paths, which the maskers catch; when two words differ,
//!   the log statements differ. Drain instead generalizes whatever differs, merging events that
//!   share most words.
//! - **Variable-length merge** (`merge_variable_length`): clusters whose templates have the
//!   same constant tokens in the same order are listed as one template. Why? A variable that
//!   spans a varying number of words (`403 bytes` / `1190 bytes (1.16 KB)`) gives the messages
//!   of one statement different token counts, which Drain's first layer keeps apart forever.
//! - **Word values** (`min_word_values`): templates identical but at one position, where three
//!   or more words occur (two for a `key=value`, or beside a template with `<*>` there), are
//!   listed as one template with `<*>` there, unless the words are verbs (`Paused`/`Resumed`)
//!   or a message's first word (`GET`/`POST`).
//!   Why? Distinct words over-split variables whose values are names: currencies, users,
//!   tables, task names (the demo's 687 templates for 123 log statements).
//!
//! On Loghub-2k (`bench/loghub`, its setting `digit_tokens_vary = false`) this raises the mean
//! grouping accuracy over 12 datasets from Drain's 0.8715 to 0.9843 (0.9741 choosing
//! `min_word_values` leave-one-dataset-out), with no dataset below Drain by more than 0.001;
//! with the product's defaults throughout, 0.9454. On the generator's labelled week it is 0.985.
//!
//! Memory grows with the number of clusters and tree nodes (bounded by `max_children` per
//! node), never with the number of messages: the caches below are capped (64k entries and
//! 8 MB of keys each, emptied when full; the token memo 16k entries) and their doorkeepers are
//! fixed tables of 128 KB.
//!
//! Speed: without user rules, a message seen before modulo its digits (same skeleton: digits
//! written as `1`, the `0` of `0x` kept) skips masking and the tree (`cache.rs` explains why
//! that is exact: the masking decisions do not depend on a digit's value, and tokens that keep
//! a digit after masking are compared byte for byte). Else the message is masked into one
//! reused buffer (no allocation per message or token), and a cache from masked text to cluster
//! skips the tree for texts seen before. Both caches are exact: an entry is used only while no
//! cluster of its token count was made or generalized since, so results equal those without
//! them. Only keys seen twice are cached, so values seen once do not crowd out the rest.
//! Hex values (a firewall line's `MAC=8f:01:..`, UUIDs, ids) vary in their letters too, so
//! their messages would never repeat a skeleton: such free tokens are written as one
//! placeholder in a second form of the key, used where the miner has shown that the token's
//! value cannot change the result (every cluster of the leaf has `<*>` there; `cache.rs`).
//! On the 1M-message generator syslog file this takes ~1,205 instructions per message
//! (callgrind; ~2,030 before the free tokens, ~4,190 before the skeleton cache and the
//! doorkeepers).
//!
//! Incremental runs save [`TemplateMiner::state`] (a serde [`MinerState`]: each cluster's
//! template and count) and continue with [`TemplateMiner::from_state`]: same clusters, ids
//! and later results as one miner over both runs.

mod batch;
mod cache;
mod id;
mod mask;
mod params;
mod stage;
mod state;
mod stats;
mod tree;

use std::collections::HashMap;

use batch::Join;
pub use batch::{BatchJoins, BatchMasker, MaskedBatch};
pub use id::TemplateId;
pub use mask::{BuiltinMasks, MaskRule, Masker, WILDCARD};

use mask::TokenMemo;
#[cfg(feature = "reference")]
pub use params::reference::parameters as reference_parameters;
pub use params::{parameters, ParamScratch, TemplatePattern};
pub use stage::{Assigned, IssuedId, TemplateAlias, TemplateStage, TemplateStageState, STAGE_STATE_VERSION};
pub use state::{ClusterState, MinerState, StateError, STATE_VERSION};
pub use stats::{canonical_templates, template_aliases, TemplateStats};

use cache::{FreeToken, MatchCache, Skeleton};
use tree::{PrefixTree, Shape};

/// How the miner masks, routes and matches. Per-dataset differences (user masks, `depth`,
/// `similarity_threshold`) belong here, never in the algorithm.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// Tree depth as logparser's Drain counts it: the root, the token-count layer,
    /// `depth - 3` layers keyed by the leading tokens, and the leaves. At least 3. Default 4.
    pub depth: usize,
    /// A message joins the most similar cluster of its leaf if the similarity (share of
    /// positions where the template has the message's token) is at least this. Default 0.5.
    pub similarity_threshold: f64,
    /// Children per tree node before further tokens go to the `<*>` child. Default 100.
    pub max_children: usize,
    /// User masking rules, applied in order before the built-in maskers.
    pub masks: Vec<MaskRule>,
    /// Built-in token maskers. Default: all on.
    pub builtin: BuiltinMasks,
    /// Count a position where both the template and the message have `<*>` as agreeing.
    /// Drain does not, so every masked token lowers the similarity. Default true.
    pub wildcard_matches: bool,
    /// Two different words (tokens of letters without digits or `<*>`) at one position make
    /// the message a different event: such a position never becomes `<*>`. Default true.
    pub distinct_words: bool,
    /// With `distinct_words`, a token holding a digit (`u100234`, `cart_9fQ2`, `host-07`) is
    /// never a distinct word: it is an id that varies between events of one kind, as Drain's
    /// digit rule assumes. Default true; the Loghub benchmark sets it false (see its README).
    pub digit_tokens_vary: bool,
    /// With `distinct_words`, a leaf holding this many clusters stops keeping words apart:
    /// so many near-identical clusters mean the words there are values (user or host names),
    /// and the cluster count stays bounded. Default 64.
    pub max_leaf_clusters: usize,
    /// When listing templates, clusters whose templates have the same constant tokens in the
    /// same order and differ only in their variable tokens (`<*>`, `(<*>`, `<*>,`) are one
    /// template: a variable part that spans a varying number of words (`1190 bytes (1.16 KB)`
    /// next to `403 bytes`) splits Drain's clusters by token count. Default true.
    pub merge_variable_length: bool,
    /// When listing templates, clusters that differ at one position only, where at least this
    /// many different values occur (`Order <*> placed: total <*> USD` / `EUR` / `GBP` / `CAD`),
    /// are one template with `<*>` there (keeping the values' common prefix and suffix:
    /// `user=<*>`, `<*>.service:`), repeated until nothing changes. Two values are enough in a
    /// `key=value` token, or beside a template that has `<*>` there. At a message's first
    /// position only values with such a shared part merge (`GET`/`POST` name different
    /// requests); verbs never do (`Paused`/`Resumed`). Why? `distinct_words` keeps
    /// two words at one position apart because two words usually mean two events (`opened` /
    /// `closed`); but many values at one place in otherwise identical messages are a
    /// variable's values (currencies, user, table and task names). 0 = off. Default 3.
    pub min_word_values: usize,
    /// Reproduce logparser's Drain exactly (for checking this port against published figures):
    /// messages of at most `depth - 2` tokens are then never matched, each makes its own
    /// cluster. Default false.
    pub drain_compat: bool,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            depth: 4,
            similarity_threshold: 0.5,
            max_children: 100,
            masks: Vec::new(),
            builtin: BuiltinMasks::ALL,
            wildcard_matches: true,
            distinct_words: true,
            digit_tokens_vary: true,
            max_leaf_clusters: 64,
            merge_variable_length: true,
            min_word_values: 3,
            drain_compat: false,
        }
    }
}

impl MinerConfig {
    /// The configuration of logparser's Drain: no built-in maskers, `drain_compat` on.
    pub fn drain() -> MinerConfig {
        MinerConfig {
            builtin: BuiltinMasks::NONE,
            wildcard_matches: false,
            distinct_words: false,
            max_leaf_clusters: 64,
            merge_variable_length: false,
            min_word_values: 0,
            drain_compat: true,
            ..MinerConfig::default()
        }
    }
}

/// A cluster of messages; its index is valid for the life of the miner that made it (and is
/// remapped by [`TemplateMiner::merge`]). Unlike a [`TemplateId`], it does not change when the
/// cluster's template generalizes, so keep it per message and resolve ids at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u32);

/// What [`TemplateMiner::add`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateMatch {
    /// The cluster the message joined.
    pub cluster: ClusterId,
    /// The id of that cluster's own template right after this message. It can still change
    /// while the template generalizes; [`TemplateMiner::snapshot`] gives the final one.
    pub template_id: TemplateId,
    /// Whether the message started a new cluster.
    pub is_new: bool,
}

/// A template with its message count, as listed by [`TemplateMiner::templates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The stable id (hash of `text`).
    pub id: TemplateId,
    /// The template text: tokens joined by one space, `<*>` for each variable part.
    pub text: String,
    /// Messages mined into it.
    pub count: u64,
}

#[derive(Debug, Clone)]
struct Cluster {
    tokens: Vec<Box<str>>,
    count: u64,
    /// The id of `tokens`, kept up to date so a match does not hash the template again.
    id: TemplateId,
}

impl Cluster {
    fn new(tokens: Vec<Box<str>>, count: u64) -> Cluster {
        let id = TemplateId::of_tokens(&tokens);
        Cluster { tokens, count, id }
    }
}

/// The online miner. Memory grows with the number of clusters and distinct leading tokens,
/// not with the number of messages.
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    config: MinerConfig,
    masker: Masker,
    tree: PrefixTree,
    clusters: Vec<Cluster>,
    /// Masked message → cluster, for messages seen before (see `cache.rs`).
    cache: MatchCache,
    /// The masked text of the message being mined (reused: no allocation per message).
    scratch: String,
    /// Masked forms of tokens seen before (see `mask.rs`).
    memo: TokenMemo,
    /// The skeleton of the message being mined (reused), for the cache's skeleton map.
    skeleton: Skeleton,
    /// Scratch for masking one free token (reused).
    token_scratch: String,
    /// Byte ranges of the tokens of the message being mined that keep a digit (reused).
    pins: Vec<(u32, u32)>,
}

impl TemplateMiner {
    /// A miner with no templates yet.
    pub fn new(config: MinerConfig) -> TemplateMiner {
        let mut config = config;
        config.depth = config.depth.max(3);
        config.max_children = config.max_children.max(2);
        let masker = Masker::new(config.masks.clone(), config.builtin);
        TemplateMiner {
            config,
            masker,
            tree: PrefixTree::default(),
            clusters: Vec::new(),
            cache: MatchCache::default(),
            scratch: String::new(),
            memo: TokenMemo::default(),
            skeleton: Skeleton::default(),
            token_scratch: String::new(),
            pins: Vec::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &MinerConfig {
        &self.config
    }

    fn shape(&self) -> Shape {
        Shape {
            depth: self.config.depth,
            max_children: self.config.max_children,
            drain_compat: self.config.drain_compat,
        }
    }

    /// Mines one message: it joins the most similar cluster or starts a new one.
    pub fn add(&mut self, message: &str) -> TemplateMatch {
        // Without user rules, a message seen before modulo its digits (and free tokens) skips
        // masking (see `cache.rs`); else only one that masked to itself does.
        let bytes = message.as_bytes();
        let by_skeleton = !self.masker.has_rules() && self.skeleton.build(bytes);
        let known = if by_skeleton {
            lookup_skeleton(
                &self.cache,
                &self.masker,
                bytes,
                &mut self.skeleton,
                &mut self.token_scratch,
            )
        } else {
            self.cache.get_raw(message)
        };
        if let Some(hit) = known.and_then(|index| self.count_in(index, 1)) {
            return hit;
        }
        let mut masked = std::mem::take(&mut self.scratch);
        let mut pins = std::mem::take(&mut self.pins);
        pins.clear();
        let tokens = self
            .masker
            .mask_into_memo(message, &mut masked, &mut self.memo, &mut pins);
        let (result, changed) = self.add_masked(&masked, masked == message, 1);
        if by_skeleton && !changed {
            self.remember_skeleton(bytes, &masked, &pins, tokens, result.cluster.0);
        }
        self.scratch = masked;
        self.pins = pins;
        result
    }

    /// Mines the message at `place` of a batch masked by a [`BatchMasker`] of this miner's
    /// configuration (messages in order, `joins` kept across the batch): what
    /// [`TemplateMiner::add`] gives the message; `None` if `place` is not in the batch. Why a
    /// batch? It names each distinct text once, and a text that joined a cluster without
    /// changing it joins that cluster again while no cluster of its token count was made or
    /// generalized (the cache's rule, see `cache.rs`): a repeat then costs a counter, not a
    /// lookup.
    pub fn add_from_batch(
        &mut self,
        batch: &MaskedBatch,
        place: u32,
        joins: &mut BatchJoins,
    ) -> Option<TemplateMatch> {
        let text = batch.texts.get(place as usize)?;
        let joined = joins.slot(place as usize)?;
        if let Some(join) = *joined {
            if self.cache.stamp_of(join.tokens) == join.stamp {
                if let Some(hit) = self.count_in(join.cluster, 1) {
                    return Some(hit);
                }
            }
        }
        let (matched, changed) = self.add_masked(text, false, 1);
        *joined = (!changed).then(|| {
            let tokens = split_masked(text).len();
            Join {
                cluster: matched.cluster.0,
                tokens,
                stamp: self.cache.stamp_of(tokens),
            }
        });
        Some(matched)
    }

    /// Caches the skeleton of a message that joined `cluster` and changed nothing: under the
    /// collapsed key when its free tokens can be left unchecked (see `cache.rs`), else under
    /// the plain one.
    fn remember_skeleton(
        &mut self,
        message: &[u8],
        masked: &str,
        pins: &[(u32, u32)],
        tokens: usize,
        cluster: u32,
    ) {
        let free = if self.skeleton.free().is_empty() {
            None
        } else {
            self.free_tokens(message, masked, cluster)
        };
        match free {
            Some(_) => self.skeleton.collapse(),
            None => self.skeleton.restore(message),
        }
        if !self.cache.admit_skeleton(self.skeleton.key()) {
            return;
        }
        match free {
            None => self
                .cache
                .insert_skeleton(self.skeleton.key(), message, pins, &[], tokens, cluster),
            Some(free) => {
                // A free token is checked by how it masks, not by its bytes.
                let kept: Vec<(u32, u32)> = pins
                    .iter()
                    .filter(|(start, _)| !free.iter().any(|f| f.0 == *start))
                    .copied()
                    .collect();
                self.cache
                    .insert_skeleton(self.skeleton.key(), message, &kept, &free, tokens, cluster);
            }
        }
    }

    /// The free tokens of the message being mined, if each can be left unchecked: past the
    /// tokens the tree routes by, and `<*>` there in every cluster of the message's leaf
    /// (which holds `cluster`), so the token's value cannot change the match or the template.
    fn free_tokens(&self, message: &[u8], masked: &str, cluster: u32) -> Option<Vec<FreeToken>> {
        let tokens = split_masked(masked);
        let shape = self.shape();
        let leaf = self.tree.search(&tokens, shape);
        if !leaf.contains(&cluster) {
            return None;
        }
        let mut free = Vec::with_capacity(self.skeleton.free().len());
        for &(start, end) in self.skeleton.free() {
            let index = cache::token_index(message, start as usize);
            let masked_token = *tokens.get(index)?;
            let wildcard_everywhere = leaf.iter().all(|&c| {
                self.clusters
                    .get(c as usize)
                    .and_then(|c| c.tokens.get(index))
                    .is_some_and(|t| &**t == WILDCARD)
            });
            if index < shape.token_layers() || !wildcard_everywhere {
                return None;
            }
            free.push((start, end, masked_token == WILDCARD));
        }
        Some(free)
    }

    /// The cluster of a message by its skeleton (see `cache.rs`), without masking it.
    fn known_by_skeleton(&self, message: &str) -> Option<u32> {
        if self.masker.has_rules() {
            return None;
        }
        let mut skeleton = Skeleton::default();
        if !skeleton.build(message.as_bytes()) {
            return None;
        }
        lookup_skeleton(
            &self.cache,
            &self.masker,
            message.as_bytes(),
            &mut skeleton,
            &mut String::new(),
        )
    }

    /// Counts `count` more messages in cluster `index` (one the cache named).
    fn count_in(&mut self, index: u32, count: u64) -> Option<TemplateMatch> {
        let cluster = self.clusters.get_mut(index as usize)?;
        cluster.count += count;
        Some(TemplateMatch {
            cluster: ClusterId(index),
            template_id: cluster.id,
            is_new: false,
        })
    }

    /// Mines a masked message (tokens joined by one space): from the cache when the same text
    /// joined a cluster before and nothing changed since, else through the tree. `raw`: the
    /// message was this text before masking.
    /// Also says whether a cluster was made or a template changed.
    fn add_masked(&mut self, masked: &str, raw: bool, count: u64) -> (TemplateMatch, bool) {
        if let Some(hit) = self
            .cache
            .get(masked)
            .and_then(|index| self.count_in(index, count))
        {
            if raw {
                self.cache.set_raw(masked);
            }
            return (hit, false);
        }
        let tokens = split_masked(masked);
        let (result, changed) = self.add_tokens(&tokens, count);
        if !changed && self.cache.admit(masked) {
            self.cache.insert(masked, tokens.len(), result.cluster.0, raw);
        }
        (result, changed)
    }

    /// Mines one message given as masked tokens; also says whether a cluster was made or a
    /// template changed.
    fn add_tokens(&mut self, tokens: &[&str], count: u64) -> (TemplateMatch, bool) {
        let shape = self.shape();
        if let Some(index) = self.best_match(tokens) {
            let cluster = &mut self.clusters[index as usize];
            cluster.count += count;
            let mut changed = false;
            for (t, m) in cluster.tokens.iter_mut().zip(tokens) {
                if **t != **m && &**t != WILDCARD {
                    *t = Box::from(WILDCARD);
                    changed = true;
                }
            }
            if changed {
                cluster.id = TemplateId::of_tokens(&cluster.tokens);
                self.cache.changed(tokens.len());
            }
            let result = TemplateMatch {
                cluster: ClusterId(index),
                template_id: cluster.id,
                is_new: false,
            };
            return (result, changed);
        }
        let index = u32::try_from(self.clusters.len()).unwrap_or(u32::MAX);
        let cluster = Cluster::new(tokens.iter().map(|t| Box::from(*t)).collect(), count);
        self.tree.insert(&cluster.tokens, index, shape);
        self.cache.changed(tokens.len());
        let template_id = cluster.id;
        self.clusters.push(cluster);
        let result = TemplateMatch {
            cluster: ClusterId(index),
            template_id,
            is_new: true,
        };
        (result, true)
    }

    /// The cluster a message would join, without changing anything.
    pub fn match_message(&self, message: &str) -> Option<ClusterId> {
        if let Some(index) = self.known_by_skeleton(message) {
            return Some(ClusterId(index));
        }
        let mut masked = String::new();
        self.masker.mask_into(message, &mut masked);
        if let Some(index) = self.cache.get_raw(message).or_else(|| self.cache.get(&masked)) {
            return Some(ClusterId(index));
        }
        self.best_match(&split_masked(&masked)).map(ClusterId)
    }

    fn best_match(&self, tokens: &[&str]) -> Option<u32> {
        let leaf = self.tree.search(tokens, self.shape());
        // A leaf crowded with clusters means words there are values after all: let them merge.
        let distinct = (self.config.distinct_words && leaf.len() < self.config.max_leaf_clusters)
            .then_some(self.config.digit_tokens_vary);
        let mut best: Option<u32> = None;
        let mut best_sim = -1.0f64;
        let mut best_params = -1i64;
        for &index in leaf {
            let template = &self.clusters[index as usize].tokens;
            let (sim, params) = similarity(template, tokens, self.config.wildcard_matches, distinct);
            if sim > best_sim || (sim == best_sim && params > best_params) {
                best = Some(index);
                best_sim = sim;
                best_params = params;
            }
        }
        if best_sim >= self.config.similarity_threshold {
            best
        } else {
            None
        }
    }

    /// Number of clusters.
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// The cluster's own template text now (empty for an unknown cluster). The template it
    /// is listed under can merge several clusters: see [`TemplateMiner::snapshot`].
    pub fn cluster_template(&self, cluster: ClusterId) -> String {
        self.clusters
            .get(cluster.0 as usize)
            .map(|c| c.tokens.join(" "))
            .unwrap_or_default()
    }

    /// The key that decides which shard a message goes to when mining on several threads:
    /// its token count after masking. Messages with the same key must go to the same shard, in
    /// their input order; then [`TemplateMiner::merge`] of the shards gives exactly the
    /// templates of one miner over the whole input (each shard owns whole subtrees of the
    /// prefix tree, and a cluster only ever sees messages of one token count).
    pub fn shard_key(&self, message: &str) -> u64 {
        let text = self.masker.apply_rules(message);
        text.split_whitespace().count() as u64
    }

    /// Adds the clusters of `other` (mined with the same configuration) to this miner and
    /// returns, for each cluster of `other` by index, the cluster it is now.
    ///
    /// Subtrees for token counts this miner has not seen move over as they are: when the two
    /// miners were fed disjoint [`shard_key`](TemplateMiner::shard_key)s, the result equals
    /// mining everything in one miner. Clusters whose token count both miners have are added
    /// again as messages (template and count) in a canonical order (by template text, then
    /// count), so the result does not depend on how `other` numbered them, but can differ
    /// from a single pass.
    pub fn merge(&mut self, other: TemplateMiner) -> Vec<ClusterId> {
        let offset = u32::try_from(self.clusters.len()).unwrap_or(u32::MAX);
        let mut remap = vec![ClusterId(u32::MAX); other.clusters.len()];
        let moved = |c: &Cluster| !self.tree.by_len.contains_key(&c.tokens.len());
        // Moved clusters keep their relative order after this miner's.
        let mut moved_index = vec![u32::MAX; other.clusters.len()];
        let mut next = offset;
        let mut readd: Vec<usize> = Vec::new();
        for (i, c) in other.clusters.iter().enumerate() {
            if moved(c) {
                moved_index[i] = next;
                remap[i] = ClusterId(next);
                next = next.saturating_add(1);
            } else {
                readd.push(i);
            }
        }
        // Clusters move and re-added ones change templates: start the fast path afresh.
        self.cache.clear();
        let TemplateMiner { tree, clusters, .. } = other;
        self.tree.absorb(tree, &|old| {
            moved_index.get(old as usize).copied().unwrap_or(u32::MAX)
        });
        readd.sort_by(|a, b| {
            clusters[*a]
                .tokens
                .cmp(&clusters[*b].tokens)
                .then(clusters[*b].count.cmp(&clusters[*a].count))
        });
        let mut rest: Vec<(usize, Cluster)> = Vec::new();
        for (i, c) in clusters.into_iter().enumerate() {
            if moved_index[i] != u32::MAX {
                self.clusters.push(c);
            } else {
                rest.push((i, c));
            }
        }
        let rest: HashMap<usize, Cluster> = rest.into_iter().collect();
        for i in readd {
            if let Some(c) = rest.get(&i) {
                let tokens: Vec<&str> = c.tokens.iter().map(|t| &**t).collect();
                remap[i] = self.add_tokens(&tokens, c.count).0.cluster;
            }
        }
        remap
    }

    /// The state to persist between runs: every cluster's template and count, in
    /// [`ClusterId`] order, and the tree settings. [`TemplateMiner::from_state`] continues from
    /// it exactly as this miner would (same clusters, ids and later results).
    pub fn state(&self) -> MinerState {
        MinerState {
            version: STATE_VERSION,
            depth: self.config.depth,
            max_children: self.config.max_children,
            drain_compat: self.config.drain_compat,
            clusters: self
                .clusters
                .iter()
                .map(|c| ClusterState {
                    template: c.tokens.join(" "),
                    count: c.count,
                })
                .collect(),
        }
    }

    /// A miner that continues from a saved [`MinerState`], with `config` (whose tree settings
    /// must be those the state was mined with; masks and matching switches may change, and
    /// apply from then on).
    pub fn from_state(config: MinerConfig, state: MinerState) -> Result<TemplateMiner, StateError> {
        let mut miner = TemplateMiner::new(config);
        if state.version != STATE_VERSION {
            return Err(StateError::Version { found: state.version });
        }
        let shape = miner.shape();
        let settings = [
            ("depth", state.depth.to_string(), shape.depth.to_string()),
            (
                "max_children",
                state.max_children.to_string(),
                shape.max_children.to_string(),
            ),
            (
                "drain_compat",
                state.drain_compat.to_string(),
                shape.drain_compat.to_string(),
            ),
        ];
        if let Some((setting, state, config)) = settings.into_iter().find(|(_, s, c)| s != c) {
            return Err(StateError::Config {
                setting,
                state,
                config,
            });
        }
        if u32::try_from(state.clusters.len()).is_err() {
            return Err(StateError::TooMany(state.clusters.len()));
        }
        miner.clusters.reserve(state.clusters.len());
        for (index, c) in state.clusters.into_iter().enumerate() {
            let tokens: Vec<Box<str>> = c.template.split_whitespace().map(Box::from).collect();
            if tokens.join(" ") != c.template {
                return Err(StateError::Template {
                    index,
                    template: c.template,
                });
            }
            // Inserting in cluster order rebuilds the tree the clusters were mined in.
            miner.tree.insert(&tokens, index as u32, shape);
            miner.clusters.push(Cluster::new(tokens, c.count));
        }
        Ok(miner)
    }

    /// The templates as they are now (see [`TemplateSet`]): call it after mining to resolve
    /// every message's cluster to its final template.
    pub fn snapshot(&self) -> TemplateSet {
        TemplateSet::new(&self.clusters, &self.config)
    }

    /// Every template with its message count, by id (the same as `snapshot().templates()`).
    pub fn templates(&self) -> Vec<Template> {
        self.snapshot().templates
    }
}

/// The templates of a miner at one moment, and which template each cluster belongs to.
///
/// Why a snapshot instead of ids at [`TemplateMiner::add`] time? A cluster's template
/// generalizes as messages arrive (`took 3 ms` becomes `took <*> ms`), and clusters that differ
/// only in variable length are listed as one template, so the id a message gets when it is
/// mined can still change. Keep the [`ClusterId`] per message and resolve it here at the end,
/// as Drain3 users do with its cluster ids.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    cluster_template: Vec<u32>,
    templates: Vec<Template>,
}

impl TemplateSet {
    fn new(clusters: &[Cluster], config: &MinerConfig) -> TemplateSet {
        let merged;
        let clusters = if config.min_word_values >= 2 {
            merged = merge_word_values(clusters, config.min_word_values);
            &merged
        } else {
            clusters
        };
        // Group clusters: by constant-token signature, or by text.
        let mut groups: HashMap<Vec<&str>, Vec<usize>> = HashMap::new();
        let mut singles: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in clusters.iter().enumerate() {
            let signature: Vec<&str> = c
                .tokens
                .iter()
                .map(|t| &**t)
                .filter(|t| !is_variable_token(t))
                .collect();
            if config.merge_variable_length && !signature.is_empty() {
                groups.entry(signature).or_default().push(i);
            } else {
                singles.entry(c.tokens.join(" ")).or_default().push(i);
            }
        }
        let mut built: Vec<(Template, Vec<usize>)> = Vec::with_capacity(groups.len() + singles.len());
        for (signature, members) in groups {
            let first = c_text(&clusters[members[0]]);
            let same = members.iter().all(|m| c_text(&clusters[*m]) == first);
            let text = if same {
                first
            } else {
                merged_text(&signature, &members, clusters)
            };
            built.push((template_of(text, &members, clusters), members));
        }
        for (text, members) in singles {
            built.push((template_of(text, &members, clusters), members));
        }
        built.sort_by(|a, b| a.0.id.cmp(&b.0.id).then_with(|| a.0.text.cmp(&b.0.text)));
        let mut cluster_template = vec![0u32; clusters.len()];
        let mut templates = Vec::with_capacity(built.len());
        for (index, (template, members)) in built.into_iter().enumerate() {
            for m in members {
                cluster_template[m] = u32::try_from(index).unwrap_or(u32::MAX);
            }
            templates.push(template);
        }
        TemplateSet {
            cluster_template,
            templates,
        }
    }

    /// Every template, by id.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// The template a cluster belongs to (`None` for a cluster made after the snapshot).
    pub fn template_of(&self, cluster: ClusterId) -> Option<&Template> {
        let index = *self.cluster_template.get(cluster.0 as usize)?;
        self.templates.get(index as usize)
    }

    /// The id of the template a cluster belongs to.
    pub fn template_id(&self, cluster: ClusterId) -> Option<TemplateId> {
        self.template_of(cluster).map(|t| t.id)
    }
}

/// The clusters with the positions where at least `min_values` values occur in otherwise
/// identical templates turned into variables ([`MinerConfig::min_word_values`]); same order,
/// same counts. A pass looks at each position of each token count; passes repeat until one
/// changes nothing, since a merge at one position can make templates differing at another
/// position identical there.
fn merge_word_values(clusters: &[Cluster], min_values: usize) -> Vec<Cluster> {
    let mut tokens: Vec<Vec<Box<str>>> = clusters.iter().map(|c| c.tokens.clone()).collect();
    let longest = tokens.iter().map(Vec::len).max().unwrap_or(0);
    loop {
        let mut changed = false;
        for position in 0..longest {
            // Templates of one token count, keyed by every token but the one at `position`.
            let mut groups: HashMap<(usize, Vec<&str>), Vec<usize>> = HashMap::new();
            for (i, t) in tokens.iter().enumerate() {
                if position < t.len() {
                    let rest = t.iter().enumerate().filter(|(k, _)| *k != position);
                    let key = rest.map(|(_, token)| &**token).collect();
                    groups.entry((t.len(), key)).or_default().push(i);
                }
            }
            let mut merges: Vec<(Vec<usize>, Box<str>)> = Vec::new();
            // Most templates share their other tokens with none: nothing to merge there.
            for members in groups.into_values().filter(|m| m.len() >= 2) {
                let mut values: Vec<&str> = members.iter().map(|&i| &*tokens[i][position]).collect();
                values.sort_unstable();
                values.dedup();
                let token = generalized(&values);
                // `key=value`: the token says it holds a value, so two values are enough; so
                // does a template that has `<*>` there already: the miner saw the place vary, and
                // a word beside it is a value that came before the place generalized.
                let varies = values.contains(&WILDCARD);
                let needed = if field_value(&token) || varies {
                    2
                } else {
                    min_values
                };
                if values.len() < needed || values.iter().all(|v| event_verb(v)) {
                    continue;
                }
                // A message's first word names its event more often than not (`GET`/`POST`,
                // `"GET`/`"POST` after an address, `Starting`/`Stopping`): there only values
                // with a shared part of letters or digits merge (`<*>.service:`).
                let first_word = tokens[members[0]].iter().position(|t| !is_variable_token(t));
                let named = token
                    .split(WILDCARD)
                    .any(|part| part.bytes().any(|b| b.is_ascii_alphanumeric()));
                if first_word != Some(position) || named {
                    merges.push((members, Box::from(token)));
                }
            }
            for (members, token) in merges {
                for i in members {
                    changed |= tokens[i][position] != token;
                    tokens[i][position] = token.clone();
                }
            }
        }
        if !changed {
            break;
        }
    }
    tokens
        .into_iter()
        .zip(clusters)
        .map(|(t, c)| Cluster::new(t, c.count))
        .collect()
}

/// A generalized token that is a named field's value: `user=<*>`, `db:<*>`.
fn field_value(token: &str) -> bool {
    token.strip_suffix(WILDCARD).is_some_and(|head| {
        head.len() > 1 && (head.ends_with('=') || head.ends_with(':')) && is_word(head, false)
    })
}

/// A word shaped like a verb in the past or in progress (`Paused`, `Resumed`, `Starting`): such
/// words at one position name different events (a VM's lifecycle), not a variable's values.
fn event_verb(token: &str) -> bool {
    let word = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    word.len() > 3
        && word.bytes().all(|b| b.is_ascii_alphabetic())
        && (word.ends_with("ed") || word.ends_with("ing"))
}

/// One token standing for several values: `<*>` between the prefix and the suffix they all
/// share, each cut at a punctuation mark so no word is cut (`user=app` / `user=web` →
/// `user=<*>`; `apt.service:` / `cron.service:` → `<*>.service:`).
fn generalized(values: &[&str]) -> String {
    let first = values.first().copied().unwrap_or_default().as_bytes();
    let mut prefix = first.len();
    let mut suffix = first.len();
    for v in values.iter().map(|v| v.as_bytes()) {
        prefix = prefix.min(first.iter().zip(v).take_while(|(a, b)| a == b).count());
        suffix = suffix.min(
            first
                .iter()
                .rev()
                .zip(v.iter().rev())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Back off to a punctuation mark (ASCII, so the cut is a char boundary), and keep the
    // prefix and suffix apart in the shortest value.
    let shortest = values.iter().map(|v| v.len()).min().unwrap_or(0);
    let punct = |b: &u8| b.is_ascii_punctuation() && !matches!(b, b'_' | b'-');
    prefix = first[..prefix].iter().rposition(punct).map_or(0, |i| i + 1);
    let tail = &first[first.len() - suffix..];
    suffix = tail.iter().position(punct).map_or(0, |i| suffix - i);
    if prefix + suffix > shortest {
        (prefix, suffix) = (0, 0);
    }
    let text = |range: std::ops::Range<usize>| std::str::from_utf8(&first[range]).unwrap_or_default();
    let (head, tail) = (text(0..prefix), text(first.len() - suffix..first.len()));
    if head.contains(WILDCARD) || tail.contains(WILDCARD) {
        return WILDCARD.to_owned();
    }
    format!("{head}{WILDCARD}{tail}")
}

/// The tokens of a masked message (tokens joined by one space; none when it is empty).
/// The cluster of a message by its `skeleton` (built): under the collapsed key when the
/// message has free tokens, else or failing that under the plain key.
fn lookup_skeleton(
    cache: &MatchCache,
    masker: &Masker,
    message: &[u8],
    skeleton: &mut Skeleton,
    scratch: &mut String,
) -> Option<u32> {
    let mut whole = |token: &[u8]| masker.masks_to_wildcard(token, scratch);
    if !skeleton.free().is_empty() {
        skeleton.collapse();
        if let Some(hit) = cache.get_skeleton(skeleton.key(), message, &mut whole) {
            return Some(hit);
        }
        skeleton.restore(message);
    }
    cache.get_skeleton(skeleton.key(), message, &mut whole)
}

fn split_masked(masked: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    if !masked.is_empty() {
        // Sized for the usual message, so a miss does not regrow it several times.
        tokens.reserve(16);
        // Cut at each space byte: cheaper than `split(' ')`'s general character search.
        let mut start = 0;
        for end in memchr::memchr_iter(b' ', masked.as_bytes()) {
            tokens.push(masked.get(start..end).unwrap_or_default());
            start = end + 1;
        }
        tokens.push(masked.get(start..).unwrap_or_default());
    }
    tokens
}

fn c_text(c: &Cluster) -> String {
    c.tokens.join(" ")
}

fn template_of(text: String, members: &[usize], clusters: &[Cluster]) -> Template {
    Template {
        id: TemplateId::of(&text),
        count: members.iter().map(|m| clusters[*m].count).sum(),
        text,
    }
}

/// A token that is only variable: `<*>` with punctuation around it (`(<*>`, `<*>,`,
/// `<*>:<*>`), no letter or digit of its own.
fn is_variable_token(token: &str) -> bool {
    mask::has_wildcard(token)
        && !token
            .split(WILDCARD)
            .any(|rest| rest.bytes().any(|b| b.is_ascii_alphanumeric()))
}

/// The template of clusters with the same constant tokens: those tokens, with one `<*>` in
/// every gap where any member has variable tokens.
fn merged_text(signature: &[&str], members: &[usize], clusters: &[Cluster]) -> String {
    let mut gaps = vec![false; signature.len() + 1];
    for m in members {
        let mut k = 0;
        for t in clusters[*m].tokens.iter() {
            if is_variable_token(t) {
                gaps[k] = true;
            } else {
                k += 1;
            }
        }
    }
    let mut parts: Vec<&str> = Vec::with_capacity(signature.len() * 2 + 1);
    for (k, gap) in gaps.iter().enumerate() {
        if *gap {
            parts.push(WILDCARD);
        }
        if let Some(t) = signature.get(k) {
            parts.push(t);
        }
    }
    parts.join(" ")
}

/// Drain's similarity of a template and a message of the same length: the share of positions
/// where they agree, `<*>` positions of the template not counted as agreeing (unless
/// `wildcard_matches` and the message has `<*>` there too); and the number of `<*>` in the
/// template (the tie-breaker). With `distinct_words`, two different words at one position
/// give -1: no match.
fn similarity<T: AsRef<str>, M: AsRef<str>>(
    template: &[T],
    message: &[M],
    wildcard_matches: bool,
    distinct: Option<bool>,
) -> (f64, i64) {
    let mut same = 0usize;
    let mut params = 0i64;
    for (t, m) in template.iter().zip(message) {
        let (t, m) = (t.as_ref(), m.as_ref());
        if t == WILDCARD {
            params += 1;
            if wildcard_matches && m == WILDCARD {
                same += 1;
            }
        } else if t == m {
            same += 1;
        } else if distinct.is_some_and(|digits_vary| distinct_words(t, m, digits_vary)) {
            return (-1.0, params);
        }
    }
    if template.is_empty() {
        return (1.0, 0);
    }
    (same as f64 / template.len() as f64, params)
}

/// Whether two different tokens are different words, so the messages are different events:
/// both start with a letter, and either neither has a masked part (`ok`/`error`,
/// `user=root`/`user=guest`) or the constant text before the first `<*>` of one is not where
/// the other starts (`subId=<*>`/`phoneId=<*>`, but `rhost=<*>`/`rhost=example.net` agree).
fn distinct_words(t: &str, m: &str, digits_vary: bool) -> bool {
    if !is_word(t, digits_vary) || !is_word(m, digits_vary) {
        return false;
    }
    let prefix = |s: &'_ str| s.find(WILDCARD).map(|i| s[..i].len());
    match (prefix(t), prefix(m)) {
        (None, None) => true,
        (Some(p), None) => !m.starts_with(&t[..p]),
        (None, Some(p)) => !t.starts_with(&m[..p]),
        (Some(p), Some(q)) => {
            let n = p.min(q);
            t.as_bytes()[..n] != m.as_bytes()[..n]
        }
    }
}

/// A token that starts with a letter (after opening brackets and quotes): a word or a name,
/// possibly with masked parts (`uid=<*>`). With `digits_vary`, a digit anywhere makes it an id
/// (`u100234`, `cart_9fQ2`) rather than a word.
fn is_word(token: &str, digits_vary: bool) -> bool {
    token
        .bytes()
        .find(|b| !matches!(b, b'(' | b'[' | b'{' | b'"' | b'\'' | b'`'))
        .is_some_and(|b| b.is_ascii_alphabetic())
        && !(digits_vary && token.bytes().any(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(config: MinerConfig, lines: &[&str]) -> (TemplateMiner, Vec<ClusterId>) {
        let mut miner = TemplateMiner::new(config);
        let clusters = lines.iter().map(|l| miner.add(l).cluster).collect();
        (miner, clusters)
    }

    fn texts(miner: &TemplateMiner) -> Vec<(String, u64)> {
        let mut t: Vec<_> = miner.templates().into_iter().map(|t| (t.text, t.count)).collect();
        t.sort();
        t
    }

    /// The template text each line is listed under.
    fn listed(lines: &[&str]) -> Vec<String> {
        let (miner, clusters) = mine(MinerConfig::default(), lines);
        let set = miner.snapshot();
        clusters
            .iter()
            .map(|c| set.template_of(*c).map(|t| t.text.clone()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn many_words_at_one_place_are_a_variables_values() {
        // Four currencies, three feeds, four units: one template each.
        let orders = listed(&[
            "Order o-1 placed: total 10.00 USD",
            "Order o-2 placed: total 12.00 EUR",
            "Order o-3 placed: total 9.50 GBP",
            "Order o-4 placed: total 7.25 CAD",
        ]);
        assert!(
            orders.iter().all(|t| t == "Order o-<*> placed: total <*> <*>"),
            "{orders:?}"
        );
        let feeds = listed(&[
            "Synced 12 products from supplier feed acme-supplies",
            "Synced 3 products from supplier feed globex-wholesale",
            "Synced 40 products from supplier feed initech-parts",
        ]);
        assert!(
            feeds
                .iter()
                .all(|t| t == "Synced <*> products from supplier feed <*>"),
            "{feeds:?}"
        );
        // At the first position, a shared part says they are values of one kind.
        let units = listed(&[
            "apt-daily.service: Deactivated successfully.",
            "certbot.service: Deactivated successfully.",
            "fstrim.service: Deactivated successfully.",
        ]);
        assert!(
            units
                .iter()
                .all(|t| t == "<*>.service: Deactivated successfully."),
            "{units:?}"
        );
        // A named field's value: two values are enough.
        let fields = listed(&[
            "connection authorized: user=app database=shop",
            "connection authorized: user=app database=shop_analytics",
        ]);
        assert!(
            fields
                .iter()
                .all(|t| t == "connection authorized: user=app database=<*>"),
            "{fields:?}"
        );
        // `ftpuser` came while the other template still had a word there (`admin`), so it
        // kept a cluster of its own; the place has varied since (`test1`): one template.
        let users = listed(&[
            "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
            "Failed password for invalid user ftpuser from 10.0.0.2 port 22 ssh2",
            "Failed password for invalid user test1 from 10.0.0.3 port 22 ssh2",
            "Failed password for invalid user ftpuser from 10.0.0.4 port 22 ssh2",
        ]);
        let general = "Failed password for invalid user <*> from <*> port <*> ssh2";
        assert!(users.iter().all(|t| t == general), "{users:?}");
    }

    /// A stream of `n` messages from `make`, fed a deterministic pseudo-random number per
    /// message (an LCG: no test depends on a random crate's version).
    fn stream(n: usize, make: impl Fn(u64) -> String) -> Vec<String> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                make(state >> 17)
            })
            .collect()
    }

    #[test]
    fn names_hosts_keys_and_fingerprints_varying_together_are_one_template() {
        // Failure modes the Loghub sets do not show (#16): several places of one statement
        // vary at once, with names (users, tables, hosts), `key=value` runs, quoted values,
        // Kubernetes pod names and base64 key fingerprints. Real-shaped, as sshd, logfmt
        // services, PostgreSQL and the kubelet write them; each stream is one statement.
        let pick = |r: u64, words: &[&'static str]| words[(r % words.len() as u64) as usize];
        let users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
        let tables = ["users", "orders", "items", "cart", "payments", "search"];
        let hosts = ["db", "cache", "queue", "search", "auth"];
        let base64 = |r: u64, n: usize| -> String {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            (0..n)
                .map(|i| char::from(alphabet[((r >> (i % 13)) as usize + i * 7) % 64]))
                .collect()
        };
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                stream(40, |r| {
                    let (user, fp) = (pick(r, &users), base64(r, 43));
                    format!(
                        "Accepted publickey for {user} from 10.0.{}.7 port {} ssh2: RSA SHA256:{fp}",
                        r % 250,
                        40_000 + r % 9_000
                    )
                }),
                "Accepted publickey for <*> from <*> port <*> ssh2: RSA <*>",
            ),
            (
                stream(60, |r| {
                    let (path, user) = (pick(r, &tables), pick(r >> 8, &users));
                    format!("level=info msg=\"request done\" method=GET path=/api/{path} status=200 duration={}ms user={user}", r % 99)
                }),
                "level=info msg=\"request done\" method=GET path=/api/<*> status=<*> duration=<*> user=<*>",
            ),
            (
                stream(40, |r| {
                    let (user, host) = (pick(r, &users), pick(r >> 8, &hosts));
                    format!("user {user} logged in from {host}.corp.example.com")
                }),
                "user <*> logged in from <*>.corp.example.com",
            ),
            (
                stream(40, |r| {
                    let (user, table) = (pick(r, &users), pick(r >> 8, &tables));
                    format!("permission denied for user \"{user}\" on table \"{table}\"")
                }),
                "permission denied for user \"<*>\" on table \"<*>\"",
            ),
            (
                stream(30, |r| {
                    format!(
                        "connect to {}.prod.example.com:5432 timed out after 30s",
                        pick(r, &hosts)
                    )
                }),
                "connect to <*> timed out after <*>",
            ),
            (
                stream(20, |r| {
                    let suffix: String = base64(r, 5).to_ascii_lowercase().replace(['+', '/'], "x");
                    format!("Back-off restarting failed container api in pod api-7d9f8b6c4-{suffix}_default(8a3f2b1c-1234-4d5e-9f00-abcdef12{:04x})", r % 65_536)
                }),
                "Back-off restarting failed container api in pod <*>",
            ),
        ];
        for (lines, want) in &cases {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let got = listed(&lines);
            assert!(got.iter().all(|t| t == want), "want {want:?}, got {got:?}");
        }
    }

    #[test]
    fn event_words_stay_apart() {
        // Verbs name events; so does a message's first word (the request's method).
        let lifecycle = listed(&[
            "[instance: 5e1] VM Resumed (Lifecycle Event)",
            "[instance: 5e1] VM Paused (Lifecycle Event)",
            "[instance: 5e1] VM Started (Lifecycle Event)",
            "[instance: 5e1] VM Stopped (Lifecycle Event)",
        ]);
        assert_eq!(
            lifecycle.iter().collect::<std::collections::HashSet<_>>().len(),
            4,
            "{lifecycle:?}"
        );
        let methods = listed(&[
            "GET /a HTTP/1.1",
            "POST /b HTTP/1.1",
            "PUT /c HTTP/1.1",
            "DELETE /d HTTP/1.1",
        ]);
        assert_eq!(
            methods.iter().collect::<std::collections::HashSet<_>>().len(),
            4,
            "{methods:?}"
        );
        let quoted = listed(&[
            "10.0.0.1 \"GET /a HTTP/1.1\" status: 200",
            "10.0.0.1 \"POST /b HTTP/1.1\" status: 200",
            "10.0.0.1 \"DELETE /c HTTP/1.1\" status: 204",
        ]);
        assert_eq!(
            quoted.iter().collect::<std::collections::HashSet<_>>().len(),
            3,
            "{quoted:?}"
        );
        // Two words are two events (`distinct_words`), below `min_word_values`.
        let two = listed(&["session opened for user root", "session closed for user root"]);
        assert_ne!(two[0], two[1]);
    }

    #[test]
    fn messages_of_one_statement_share_a_template() {
        let (miner, clusters) = mine(
            MinerConfig::default(),
            &[
                "Took 12.5 seconds to build instance",
                "Took 3 seconds to build instance",
                "Deleting instance files /var/lib/nova/a",
                "Deleting instance files /var/lib/nova/b",
            ],
        );
        assert_eq!(clusters[0], clusters[1]);
        assert_eq!(clusters[2], clusters[3]);
        assert_ne!(clusters[0], clusters[2]);
        assert_eq!(
            texts(&miner),
            vec![
                ("Deleting instance files <*>".to_owned(), 2),
                ("Took <*> seconds to build instance".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn template_ids_are_hashes_of_the_final_text() {
        let mut miner = TemplateMiner::new(MinerConfig::default());
        let first = miner.add("connection from 10.0.0.1 () closed");
        let second = miner.add("connection from 10.0.0.2 (host.example.net) closed");
        assert_eq!(first.cluster, second.cluster);
        assert!(first.is_new && !second.is_new);
        // The id reported when the first message was mined is that of its template then ...
        assert_eq!(first.template_id, TemplateId::of("connection from <*> () closed"));
        // ... the template generalized, and the snapshot gives the final id for both.
        let set = miner.snapshot();
        let t = set.template_of(first.cluster).expect("mined");
        assert_eq!(t.text, "connection from <*> <*> closed");
        assert_eq!(t.id, TemplateId::of("connection from <*> <*> closed"));
        assert_eq!(second.template_id, t.id);
        assert_eq!(t.id.to_string().len(), 16);
    }

    #[test]
    fn different_words_are_different_events() {
        let (miner, clusters) = mine(
            MinerConfig::default(),
            &["Link error", "Link ok", "Link error", "VM Paused", "VM Resumed"],
        );
        assert_ne!(clusters[0], clusters[1]);
        assert_eq!(clusters[0], clusters[2]);
        assert_ne!(clusters[3], clusters[4]);
        assert_eq!(miner.templates().len(), 4);
        // Drain merges them: one differing token of two reaches st = 0.5.
        let (drain, clusters) = mine(MinerConfig::drain(), &["Link error", "Link ok", "Link down"]);
        assert_eq!(clusters, vec![ClusterId(0); 3]);
        assert_eq!(texts(&drain), vec![("Link <*>".to_owned(), 3)]);
        // logparser's Drain never matches one-token messages: equal ones make clusters of
        // the same text, listed as one template.
        let (drain, _) = mine(MinerConfig::drain(), &["active", "active"]);
        assert_eq!(drain.cluster_count(), 2);
        assert_eq!(texts(&drain), vec![("active".to_owned(), 2)]);
        let (ours, _) = mine(MinerConfig::default(), &["active", "active"]);
        assert_eq!(ours.cluster_count(), 1);
        let (ours, _) = mine(
            MinerConfig {
                distinct_words: false,
                ..MinerConfig::default()
            },
            &["Link error", "Link ok"],
        );
        assert_eq!(texts(&ours), vec![("Link <*>".to_owned(), 2)]);
    }

    #[test]
    fn a_crowded_leaf_lets_words_merge() {
        let names = ["alice", "bob", "carol", "dave", "erin", "frank"];
        let lines: Vec<String> = names
            .iter()
            .map(|n| format!("session closed for user {n}"))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (miner, c) = mine(
            MinerConfig {
                max_leaf_clusters: 3,
                ..MinerConfig::default()
            },
            &lines,
        );
        // Three clusters for three names, then the leaf is full and later names join the first
        // (equal similarity; the tie goes to the first, then to the one with a `<*>`).
        assert_eq!(miner.cluster_count(), 3);
        assert_eq!(c[3], c[0]);
        assert_eq!(c[5], c[0]);
        assert_eq!(miner.cluster_template(c[5]), "session closed for user <*>");
    }

    #[test]
    fn masked_keys_must_agree() {
        let (_, c) = mine(
            MinerConfig::default(),
            &[
                "getDataEnabled: subId=1 x",
                "getDataEnabled: phoneId=2 x",
                "getDataEnabled: subId=7 x",
            ],
        );
        assert_ne!(c[0], c[1]);
        assert_eq!(c[0], c[2]);
        // The same key with a masked and a plain value is one position of one event.
        let (miner, c) = mine(
            MinerConfig::default(),
            &[
                "auth failure rhost=10.0.0.1 user=root",
                "auth failure rhost=example.net user=root",
            ],
        );
        assert_eq!(c[0], c[1]);
        assert_eq!(texts(&miner), vec![("auth failure <*> user=root".to_owned(), 2)]);
    }

    #[test]
    fn variable_length_parameters_are_one_template() {
        // As in the benchmark's Proxifier settings, a user rule masks size units.
        let masks = vec![MaskRule::new("[KGTM]B").expect("valid")];
        let (miner, c) = mine(
            MinerConfig {
                masks,
                ..MinerConfig::default()
            },
            &[
                "10.0.0.1:80 close, 403 bytes sent, 426 bytes received, lifetime 00:01",
                "10.0.0.1:80 close, 1190 bytes (1.16 KB) sent, 1671 bytes received, lifetime 00:02",
                "10.0.0.2:81 close, 12 bytes sent, 1671 bytes (1.63 KB) received, lifetime 00:02",
            ],
        );
        // Three token counts, three clusters ...
        assert_eq!(miner.cluster_count(), 3);
        // ... one template.
        let set = miner.snapshot();
        assert_eq!(set.templates().len(), 1);
        assert_eq!(set.template_id(c[0]), set.template_id(c[2]));
        assert_eq!(
            set.templates()[0].text,
            "<*> close, <*> bytes <*> sent, <*> bytes <*> received, lifetime <*>"
        );
        assert_eq!(set.templates()[0].count, 3);
        let (plain, _) = mine(
            MinerConfig {
                merge_variable_length: false,
                ..MinerConfig::default()
            },
            &["a 1 b", "a 1 (2 3) b"],
        );
        assert_eq!(
            texts(&plain),
            vec![("a <*> (<*> <*>) b".to_owned(), 1), ("a <*> b".to_owned(), 1)]
        );
    }

    #[test]
    fn user_masks_and_drain_similarity() {
        let masks = vec![MaskRule::new(r"blk_-?\d+").expect("valid")];
        let config = MinerConfig {
            masks,
            ..MinerConfig::drain()
        };
        let (miner, c) = mine(
            config,
            &[
                "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
                "Receiving block blk_7503483334202473044 src: /10.250.10.6:40524",
            ],
        );
        assert_eq!(c[0], c[1]);
        // Drain keeps only what equals: the addresses are unmasked here and differ.
        assert_eq!(
            texts(&miner),
            vec![("Receiving block <*> src: <*>".to_owned(), 2)]
        );
    }

    #[test]
    fn match_message_does_not_learn() {
        let (miner, c) = mine(MinerConfig::default(), &["disk 3 is full", "disk 4 is full"]);
        assert_eq!(miner.match_message("disk 9 is full"), Some(c[0]));
        assert_eq!(miner.match_message("fan 2 failed now"), None);
        assert_eq!(miner.cluster_count(), 1);
    }

    #[test]
    fn similarity_threshold_decides() {
        let lines = ["a b c d 1", "a b x y 2"];
        let (strict, _) = mine(
            MinerConfig {
                similarity_threshold: 0.7,
                ..MinerConfig::default()
            },
            &lines,
        );
        assert_eq!(strict.cluster_count(), 2);
        // x/c and y/d are different words: distinct events whatever the threshold.
        let (loose, _) = mine(
            MinerConfig {
                similarity_threshold: 0.1,
                ..MinerConfig::default()
            },
            &lines,
        );
        assert_eq!(loose.cluster_count(), 2);
        let lines = ["a b c d 1", "a b c ** 2"];
        let (loose, _) = mine(
            MinerConfig {
                similarity_threshold: 0.5,
                ..MinerConfig::default()
            },
            &lines,
        );
        assert_eq!(texts(&loose), vec![("a b c <*> <*>".to_owned(), 2)]);
    }

    #[test]
    fn max_children_sends_further_tokens_to_the_wildcard_child() {
        let config = MinerConfig {
            max_children: 3,
            depth: 4,
            ..MinerConfig::default()
        };
        let lines: Vec<String> = (0..6)
            .map(|i| format!("w{} then done", ["a", "b", "c", "d", "e", "f"][i]))
            .collect();
        let mut miner = TemplateMiner::new(config);
        for l in &lines {
            miner.add(l);
        }
        // wa, wb get their own children; the third and later share `<*>`, where the distinct
        // first words still keep them apart.
        assert_eq!(miner.cluster_count(), 6);
        assert_eq!(miner.tree.by_len[&3].children.len(), 3);
    }

    /// Lines of many shapes and token counts, with variables.
    fn corpus() -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..400u32 {
            let line = match i % 7 {
                0 => format!(
                    "Took {}.{} seconds to build instance {}",
                    i % 13,
                    i % 10,
                    i * 7919
                ),
                1 => format!("connection from 10.0.{}.{} closed", i % 5, i % 250),
                2 => format!("session opened for user u{} by (uid={})", i % 3, i),
                3 => format!("{} close, {} bytes sent, {} bytes received", i, i * 3, i * 5),
                4 => format!(
                    "{} close, {} bytes ({} KB) sent, {} bytes received",
                    i,
                    i * 3000,
                    i * 3,
                    i * 5
                ),
                5 => format!("Link {}", if i % 2 == 0 { "error" } else { "ok" }),
                _ => format!(
                    "Processing event {} for container container_{}_{:04} attempt {}",
                    i % 3,
                    1445,
                    i,
                    i
                ),
            };
            lines.push(line);
        }
        lines
    }

    fn ids(miner: &TemplateMiner, clusters: &[ClusterId]) -> Vec<Option<TemplateId>> {
        let set = miner.snapshot();
        clusters.iter().map(|c| set.template_id(*c)).collect()
    }

    #[test]
    fn merging_shards_by_shard_key_equals_one_pass() {
        let lines = corpus();
        let (single, single_clusters) = mine(
            MinerConfig::default(),
            &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        );

        let mut shards = vec![
            TemplateMiner::new(MinerConfig::default()),
            TemplateMiner::new(MinerConfig::default()),
        ];
        let mut placed = Vec::new();
        for line in &lines {
            let shard = (shards[0].shard_key(line) % 2) as usize;
            placed.push((shard, shards[shard].add(line).cluster));
        }
        let mut shards = shards.into_iter();
        let mut merged = shards.next().expect("two shards");
        let remap = merged.merge(shards.next().expect("two shards"));
        let clusters: Vec<ClusterId> = placed
            .iter()
            .map(|(shard, c)| if *shard == 0 { *c } else { remap[c.0 as usize] })
            .collect();

        assert!(placed.iter().any(|(s, _)| *s == 0) && placed.iter().any(|(s, _)| *s == 1));
        assert_eq!(merged.templates(), single.templates());
        assert_eq!(ids(&merged, &clusters), ids(&single, &single_clusters));
    }

    /// Mines `a` then `b` in one miner, and `a`, then saves (through JSON), loads and mines `b`:
    /// both must give the same clusters, ids, templates and tree.
    fn check_state_round_trip(config: MinerConfig, a: &[String], b: &[String]) {
        let mut one = TemplateMiner::new(config.clone());
        let one_clusters: Vec<ClusterId> = a.iter().chain(b).map(|l| one.add(l).cluster).collect();

        let mut first = TemplateMiner::new(config.clone());
        let mut clusters: Vec<ClusterId> = a.iter().map(|l| first.add(l).cluster).collect();
        let json = serde_json::to_string(&first.state()).expect("serializes");
        let state: MinerState = serde_json::from_str(&json).expect("parses");
        let mut second = TemplateMiner::from_state(config, state).expect("loads");
        assert_eq!(second.tree, first.tree, "the tree is rebuilt as it was");
        assert_eq!(second.state(), first.state());
        clusters.extend(b.iter().map(|l| second.add(l).cluster));

        assert_eq!(clusters, one_clusters);
        assert_eq!(second.templates(), one.templates());
        assert_eq!(ids(&second, &clusters), ids(&one, &one_clusters));
        assert_eq!(second.tree, one.tree);
        assert_eq!(second.state(), one.state());
    }

    #[test]
    fn a_saved_state_continues_the_same_tree() {
        let lines = corpus();
        let (a, b) = lines.split_at(150);
        check_state_round_trip(MinerConfig::default(), a, b);
        // Crowded nodes (words sent to the `<*>` child) and Drain's rules rebuild too.
        let crowded = MinerConfig {
            max_children: 3,
            depth: 5,
            ..MinerConfig::default()
        };
        check_state_round_trip(crowded, a, b);
        let drain = MinerConfig {
            max_children: 4,
            ..MinerConfig::drain()
        };
        check_state_round_trip(drain, a, b);
        let words: Vec<String> = (0..300)
            .map(|i| format!("w{} {} then x{} done", i % 11, i % 7, i % 5))
            .collect();
        let (a, b) = words.split_at(100);
        check_state_round_trip(
            MinerConfig {
                max_children: 4,
                ..MinerConfig::default()
            },
            a,
            b,
        );
    }

    #[test]
    fn memory_follows_templates_not_messages() {
        // 200k messages of two statements, every one with its own values (user ids with
        // digits vary too): two templates, and the cache stays within its bound.
        let mut miner = TemplateMiner::new(MinerConfig::default());
        for i in 0..200_000u32 {
            miner.add(&format!(
                "Accepted password for u{} from 10.{}.{}.{} port {}",
                i % 7,
                i % 256,
                i / 256 % 256,
                i % 200,
                i
            ));
            miner.add(&format!("session closed for user root after {}ms", i));
        }
        let templates: Vec<String> = miner.templates().into_iter().map(|t| t.text).collect();
        assert_eq!(templates.len(), 2, "{templates:?}");
        assert_eq!(miner.cluster_count(), 2);
        assert!(miner.cache.len() <= 1 << 16);
        let total: u64 = miner.templates().iter().map(|t| t.count).sum();
        assert_eq!(total, 400_000);
    }

    /// Mines `lines` with the skeleton fast path and with it off (a user rule that never
    /// matches turns it off): clusters, templates and counts must be the same.
    fn check_skeleton_path(config: MinerConfig, lines: &[String]) -> TemplateMiner {
        let mut fast = TemplateMiner::new(config.clone());
        let off = MinerConfig {
            masks: vec![MaskRule::new("\u{0}never\u{0}").expect("valid")],
            ..config
        };
        let mut slow = TemplateMiner::new(off);
        for line in lines {
            let (a, b) = (fast.add(line), slow.add(line));
            assert_eq!(a, b, "{line}");
            assert_eq!(fast.match_message(line), slow.match_message(line), "{line}");
        }
        assert_eq!(fast.templates(), slow.templates());
        assert_eq!(fast.state(), slow.state());
        fast
    }

    #[test]
    fn the_skeleton_path_changes_nothing() {
        let mut lines = corpus();
        // Messages alike but for digits whose masking depends on them: kept digits (`ssh2`),
        // the `0x` prefix, hex and octet lengths, and a UUID.
        for i in 0..300u32 {
            lines.push(format!(
                "Failed password for root from 10.0.{}.{} port {} ssh{}",
                i % 7,
                i,
                i * 13,
                i % 3
            ));
            lines.push(format!(
                "value {}x1f{} and {}",
                i % 2,
                i % 10,
                ["a64f9c2", "a64f99c2", "a6f99c2"][i as usize % 3]
            ));
            lines.push(format!(
                "peer 1.2.{}.{}{} up",
                i % 4,
                i,
                ["", "0", "00", ":80"][i as usize % 4]
            ));
            lines.push(format!(
                "job 38101a0b-2096-447d-96ea-a6921624{:04} alt{} done",
                i,
                i % 2
            ));
            lines.push(format!("eth{} link {} caf\u{e9} {}", i % 2, i % 5, i));
        }
        lines.extend(hex_lines());
        let fast = check_skeleton_path(MinerConfig::default(), &lines);
        // The hex lines were found under collapsed keys.
        assert!(fast.cache.free_entries() >= 3, "{}", fast.cache.free_entries());
        check_skeleton_path(
            MinerConfig {
                similarity_threshold: 0.7,
                ..MinerConfig::default()
            },
            &lines,
        );
        check_skeleton_path(
            MinerConfig {
                wildcard_matches: false,
                ..MinerConfig::default()
            },
            &lines,
        );
        check_skeleton_path(
            MinerConfig {
                digit_tokens_vary: false,
                ..MinerConfig::default()
            },
            &lines,
        );
        check_skeleton_path(
            MinerConfig {
                builtin: BuiltinMasks::NONE,
                ..MinerConfig::default()
            },
            &lines,
        );
    }

    /// A hex-looking value of `len` characters: digits and letters mixed by `i`.
    fn hex_value(i: u32, len: usize) -> String {
        let digits = b"0123456789abcdef";
        (0..len)
            .map(|k| char::from(digits[(((i as usize).wrapping_mul(7919) >> (k % 13)) ^ (k * 5)) % 16]))
            .collect()
    }

    /// Messages whose hex values (MACs, UUIDs, ids) are free tokens of the skeleton: in
    /// positions that are `<*>` in every cluster of their leaf, in positions where one cluster
    /// still has them as they were, in the first (routing) position, whole `<*>` or not.
    fn hex_lines() -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..400u32 {
            let mac: Vec<String> = (0..6).map(|k| hex_value(i * 6 + k, 2)).collect();
            lines.push(format!(
                "[{}.{}] [UFW {}] IN=eth0 MAC={} SRC=10.0.{}.{} LEN={} SYN",
                i * 37,
                i % 1000,
                ["BLOCK]", "ALLOW]"][i as usize % 2],
                mac.join(":"),
                i % 3,
                i % 256,
                40 + i % 20
            ));
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                hex_value(i, 8),
                hex_value(i + 1, 4),
                hex_value(i + 2, 4),
                hex_value(i + 3, 4),
                hex_value(i + 4, 12)
            );
            let id = ["req", "id=req"][i as usize % 3 / 2];
            lines.push(format!("req {id}-{uuid} done"));
            lines.push(format!("req {uuid} done"));
            lines.push(format!("{} start {}", hex_value(i % 4, 10), hex_value(i, 9)));
            // The same value again and again, then others: one cluster keeps it as it is.
            let value = if i < 50 {
                hex_value(1, 12)
            } else {
                hex_value(i, 12)
            };
            lines.push(format!(
                "kern dev {value} {} up",
                ["now", "late"][i as usize % 7 / 6]
            ));
            lines.push(format!(
                "a {} {} {}",
                hex_value(i, 8),
                hex_value(i / 2, 8),
                hex_value(i / 3, 36)
            ));
        }
        lines
    }

    /// Free tokens against the slow path, on generated messages.
    mod free_tokens {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Messages of a few words and hex-looking values, mined with and without the
            /// skeleton path, give the same clusters, templates and counts.
            #[test]
            fn free_tokens_change_nothing(
                messages in proptest::collection::vec(
                    proptest::collection::vec(
                        prop_oneof![
                            proptest::sample::select(vec!["up", "down", "id=x", "<*>", "MAC=ab:cd:12:34:ef:56"])
                                .prop_map(str::to_owned),
                            "[0-9a-f]{8,12}",
                            "MAC=([0-9a-f]{2}:){5}[0-9a-f]{2}",
                            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                            "(id|k)=[0-9a-f]{6,10}",
                            "[0-9]{1,6}",
                        ],
                        1..6,
                    ),
                    1..120,
                ),
                threshold in proptest::sample::select(vec![0.3, 0.5, 0.7, 0.9]),
            ) {
                let lines: Vec<String> = messages.iter().map(|m| m.join(" ")).collect();
                for config in [
                    MinerConfig { similarity_threshold: threshold, ..MinerConfig::default() },
                    MinerConfig { similarity_threshold: threshold, depth: 5, max_leaf_clusters: 4, ..MinerConfig::default() },
                    MinerConfig { similarity_threshold: threshold, ..MinerConfig::drain() },
                ] {
                    check_skeleton_path(config, &lines);
                }
            }
        }
    }

    #[test]
    fn the_state_is_one_template_and_count_per_cluster() {
        let (miner, _) = mine(
            MinerConfig::default(),
            &["disk 3 is full", "disk 4 is full", "fan ok"],
        );
        let json = serde_json::to_string(&miner.state()).expect("serializes");
        assert_eq!(
            json,
            r#"{"version":1,"depth":4,"max_children":100,"drain_compat":false,"clusters":[{"template":"disk <*> is full","count":2},{"template":"fan ok","count":1}]}"#
        );
    }

    #[test]
    fn a_state_of_other_settings_is_refused() {
        let (miner, _) = mine(MinerConfig::default(), &["disk 3 is full"]);
        let state = miner.state();
        let other = MinerConfig {
            depth: 5,
            ..MinerConfig::default()
        };
        assert_eq!(
            TemplateMiner::from_state(other, state.clone()).err(),
            Some(StateError::Config {
                setting: "depth",
                state: "4".to_owned(),
                config: "5".to_owned()
            })
        );
        let future = MinerState {
            version: 2,
            ..state.clone()
        };
        assert_eq!(
            TemplateMiner::from_state(MinerConfig::default(), future).err(),
            Some(StateError::Version { found: 2 })
        );
        let mut bad = state;
        bad.clusters[0].template = "disk  <*>".to_owned();
        let error = TemplateMiner::from_state(MinerConfig::default(), bad).err();
        assert!(
            matches!(error, Some(StateError::Template { index: 0, .. })),
            "{error:?}"
        );
        let empty = TemplateMiner::from_state(
            MinerConfig::default(),
            TemplateMiner::new(MinerConfig::default()).state(),
        );
        assert_eq!(empty.map(|m| m.cluster_count()).ok(), Some(0));
    }

    #[test]
    fn merging_overlapping_shards_is_order_independent() {
        let lines = corpus();
        let half = lines.len() / 2;
        let mine_half = |part: &[String]| {
            let mut m = TemplateMiner::new(MinerConfig::default());
            for l in part {
                m.add(l);
            }
            m
        };
        let mut a = mine_half(&lines[..half]);
        a.merge(mine_half(&lines[half..]));
        let mut b = mine_half(&lines[..half]);
        b.merge(mine_half(&lines[half..]));
        assert_eq!(a.templates(), b.templates());
        let total: u64 = a.templates().iter().map(|t| t.count).sum();
        assert_eq!(total, lines.len() as u64);
        // Here the split happens to give the one-pass templates too.
        let (single, _) = mine(
            MinerConfig::default(),
            &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(a.templates(), single.templates());
    }
}
