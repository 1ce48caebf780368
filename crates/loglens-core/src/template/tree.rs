//! Drain's fixed-depth prefix tree: the first layer keys messages by token count, the next
//! `depth - 3` layers by their leading tokens (a token with a digit, or one past `max_children`,
//! goes to the `<*>` child), and each leaf holds the clusters to compare a message with.

use std::collections::hash_map::Entry;

use super::cache::FxHashMap;
use super::mask::WILDCARD;

/// One node; inner nodes have children, leaves have clusters (indices into the miner's list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) children: FxHashMap<Box<str>, Node>,
    pub(crate) clusters: Vec<u32>,
}

/// The tree: the root's children keyed by token count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PrefixTree {
    pub(crate) by_len: FxHashMap<usize, Node>,
}

/// Tree shape parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub depth: usize,
    pub max_children: usize,
    /// Reproduce logparser: messages with at most `depth - 3` tokens are never attached to a
    /// leaf, so they never match.
    pub drain_compat: bool,
}

impl Shape {
    /// Layers of leading tokens between the token-count layer and the leaves: `depth - 3`, as
    /// logparser counts (the root, the token-count layer and the leaf layer make up the rest).
    pub(crate) fn token_layers(&self) -> usize {
        self.depth.saturating_sub(3)
    }
}

/// Whether a token goes to the `<*>` child: it has a digit (Drain), or, unless in Drain
/// compatibility, a masked part (`blk_<*>`, `uid=<*>`).
fn is_variable(token: &str, shape: Shape) -> bool {
    token.bytes().any(|b| b.is_ascii_digit()) || (!shape.drain_compat && super::mask::has_wildcard(token))
}

impl Node {
    /// Renumbers the clusters of this subtree.
    fn renumber(&mut self, map: &dyn Fn(u32) -> u32) {
        for c in &mut self.clusters {
            *c = map(*c);
        }
        for child in self.children.values_mut() {
            child.renumber(map);
        }
    }
}

impl PrefixTree {
    /// Moves `other`'s subtrees for token counts this tree does not have into this tree,
    /// renumbering their clusters with `map`.
    pub(crate) fn absorb(&mut self, other: PrefixTree, map: &dyn Fn(u32) -> u32) {
        for (len, mut node) in other.by_len {
            if let Entry::Vacant(slot) = self.by_len.entry(len) {
                node.renumber(map);
                slot.insert(node);
            }
        }
    }

    /// The clusters of the leaf a message with these tokens is routed to.
    pub(crate) fn search<S: AsRef<str>>(&self, tokens: &[S], shape: Shape) -> &[u32] {
        let layers = shape.token_layers();
        if shape.drain_compat && tokens.len() <= layers {
            return &[];
        }
        let Some(mut node) = self.by_len.get(&tokens.len()) else {
            return &[];
        };
        for token in tokens.iter().take(layers) {
            match node
                .children
                .get(token.as_ref())
                .or_else(|| node.children.get(WILDCARD))
            {
                Some(child) => node = child,
                None => return &[],
            }
        }
        &node.clusters
    }

    /// Adds a new cluster whose template has these tokens.
    pub(crate) fn insert<S: AsRef<str>>(&mut self, tokens: &[S], cluster: u32, shape: Shape) {
        let layers = shape.token_layers();
        let mut node = self.by_len.entry(tokens.len()).or_default();
        for token in tokens.iter().take(layers) {
            let token = token.as_ref();
            let key: &str = if node.children.contains_key(token) {
                token
            } else if is_variable(token, shape) {
                WILDCARD
            } else if node.children.contains_key(WILDCARD) {
                if node.children.len() < shape.max_children {
                    token
                } else {
                    WILDCARD
                }
            } else if node.children.len() + 1 < shape.max_children {
                token
            } else {
                WILDCARD
            };
            node = node.children.entry(Box::from(key)).or_default();
        }
        // logparser builds the path of a short message but never attaches its cluster.
        if !(shape.drain_compat && tokens.len() <= layers) {
            node.clusters.push(cluster);
        }
    }
}
