//! The persisted state of a [`TemplateMiner`](super::TemplateMiner): what an incremental run
//! saves at its end and loads at its start to continue the same clusters, with the same
//! [`ClusterId`](super::ClusterId)s and template ids.
//!
//! Why only the clusters and not the prefix tree? The tree is a function of the clusters in
//! the order they were made: a cluster's leading tokens only generalize to `<*>` where it was
//! routed to the `<*>` child, so inserting the templates again in cluster order builds the
//! same nodes (a test checks it). The state stays small (one line of text and a count per
//! cluster) and cannot hold a tree that disagrees with its clusters.

use serde::{Deserialize, Serialize};

/// The version written by this code; [`TemplateMiner::from_state`](super::TemplateMiner::from_state)
/// refuses others.
pub const STATE_VERSION: u32 = 1;

/// A serializable snapshot of a miner (Serde: JSON or any other format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerState {
    /// Format version, [`STATE_VERSION`].
    pub version: u32,
    /// The tree settings the clusters were mined with; loading under others would route
    /// messages differently, so it is refused.
    pub depth: usize,
    /// See [`MinerConfig::max_children`](super::MinerConfig::max_children).
    pub max_children: usize,
    /// See [`MinerConfig::drain_compat`](super::MinerConfig::drain_compat).
    pub drain_compat: bool,
    /// Every cluster, in [`ClusterId`](super::ClusterId) order.
    pub clusters: Vec<ClusterState>,
}

/// One cluster: its own template and how many messages it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterState {
    /// The template text, tokens joined by one space (tokens never hold white space).
    pub template: String,
    /// Messages mined into the cluster.
    pub count: u64,
}

/// Why a [`MinerState`] cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The state was written by another version of this code.
    #[error("miner state version {found} is not supported (this build reads version {STATE_VERSION})")]
    Version {
        /// The version in the state.
        found: u32,
    },
    /// The state was mined with other tree settings than the configuration given.
    #[error("miner state was mined with {setting} = {state}, the configuration has {config}")]
    Config {
        /// `depth`, `max_children` or `drain_compat`.
        setting: &'static str,
        /// The value in the state.
        state: String,
        /// The value in the configuration.
        config: String,
    },
    /// A template is not in normal form (tokens joined by single spaces).
    #[error("miner state cluster {index}: template {template:?} is not tokens joined by single spaces")]
    Template {
        /// The cluster's index.
        index: usize,
        /// The template text.
        template: String,
    },
    /// More clusters than cluster ids.
    #[error("miner state has {0} clusters, more than a miner can hold")]
    TooMany(usize),
    /// A template stage's state names a cluster its miner does not have.
    #[error("template stage state: id {id:016x} was handed out for cluster {cluster}, which the miner does not have")]
    Issued {
        /// The template id.
        id: u64,
        /// The cluster it names.
        cluster: u32,
    },
}
