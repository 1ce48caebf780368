//! The template stage of a pipeline: mines messages in input order and gives each one, at once,
//! the id of its cluster's template at that moment. Ids handed out are never taken back; when a
//! template generalizes later, the ids it had become aliases of the current template
//! ([`TemplateStage::aliases`]), so records written with an old id still find their template.
//!
//! Why ids at once instead of final ids? A final id is known only after every message was mined,
//! which costs either a second pass over the input or holding every record back. An id that only
//! grows more aliases lets each record be written as soon as it is mined, and by the same
//! machinery in a batch run, a long-running service and distributed workers. Because the stage
//! sees messages in input order, the ids depend only on that order: the same on any thread count
//! and in one run or many incremental runs (the state, [`TemplateStageState`], carries the tree
//! and every id handed out).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{
    BatchJoins, ClusterId, MaskedBatch, MinerConfig, MinerState, StateError, TemplateId, TemplateMatch,
    TemplateMiner,
};

/// The version of [`TemplateStageState`] written by this code.
pub const STAGE_STATE_VERSION: u32 = 1;

/// One id the stage handed out: the cluster it was handed out for and the template text it
/// is the hash of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedId {
    /// The template id ([`TemplateId`]'s value).
    pub id: u64,
    /// The cluster ([`ClusterId`]'s value) whose template had this text.
    pub cluster: u32,
    /// The template text at that moment.
    pub template: String,
}

/// The serializable state of a [`TemplateStage`]: the miner and every id handed out, in the
/// order they were first handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateStageState {
    /// Format version, [`STAGE_STATE_VERSION`].
    pub version: u32,
    /// The miner's clusters and tree settings.
    pub miner: MinerState,
    /// Every id handed out.
    pub issued: Vec<IssuedId>,
    /// Every other id [`TemplateStage::aliases`] listed as a current template (a template of
    /// merged clusters, which no message was written with), with one of its clusters: readers
    /// that keyed data by it (detect's template series) resolve it through the aliases later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listed: Vec<IssuedId>,
}

/// What the stage gave one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// The id to write with the message: its cluster's template now.
    pub id: TemplateId,
    /// The message's cluster.
    pub cluster: ClusterId,
    /// The id's place in the order ids were first handed out ([`TemplateStage::issued`]); a
    /// caller can keep per-id data (a compiled pattern) in a vector by it.
    pub issued: usize,
}

/// An id handed out and the template it stands for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateAlias {
    /// The id written with records.
    pub id: TemplateId,
    /// The template text the id is the hash of.
    pub template: String,
    /// The id of the template it belongs to now (equal to `id` while it has not generalized).
    pub canonical: TemplateId,
    /// That template's text.
    pub canonical_template: String,
}

/// The template stage: a miner plus the ids it handed out.
#[derive(Debug, Clone)]
pub struct TemplateStage {
    miner: TemplateMiner,
    issued: Vec<IssuedId>,
    /// Id → place in `issued`.
    index: HashMap<u64, usize>,
    /// Current-template ids listed that are not in `issued` (see [`TemplateStageState::listed`]).
    listed: Vec<IssuedId>,
    /// Per cluster, the id it handed out last and its place in `issued`: a message whose
    /// cluster did not change needs no lookup.
    current: Vec<Option<(TemplateId, usize)>>,
}

impl TemplateStage {
    /// A stage continuing `miner`. Its clusters' current templates count as handed out (what
    /// records written from it before carry), so a miner state saved by earlier versions,
    /// which wrote final ids, keeps resolving them.
    pub fn new(miner: TemplateMiner) -> TemplateStage {
        let mut stage = TemplateStage {
            miner,
            issued: Vec::new(),
            index: HashMap::new(),
            listed: Vec::new(),
            current: Vec::new(),
        };
        let set = stage.miner.snapshot();
        for cluster in 0..stage.miner.cluster_count() {
            let cluster = ClusterId(cluster as u32);
            if let Some(template) = set.template_of(cluster) {
                issue(&mut stage.issued, &mut stage.index, template.id, cluster, || {
                    template.text.clone()
                });
            }
        }
        stage
    }

    /// A stage continuing from a saved state, mining with `config` (whose tree settings must
    /// be the state's).
    pub fn from_state(config: MinerConfig, state: TemplateStageState) -> Result<TemplateStage, StateError> {
        if state.version != STAGE_STATE_VERSION {
            return Err(StateError::Version { found: state.version });
        }
        let miner = TemplateMiner::from_state(config, state.miner)?;
        let mut stage = TemplateStage {
            miner,
            issued: Vec::with_capacity(state.issued.len()),
            index: HashMap::with_capacity(state.issued.len()),
            listed: Vec::with_capacity(state.listed.len()),
            current: Vec::new(),
        };
        for listed in state.listed {
            if listed.cluster as usize >= stage.miner.cluster_count() {
                return Err(StateError::Issued {
                    id: listed.id,
                    cluster: listed.cluster,
                });
            }
            stage.listed.push(listed);
        }
        for issued in state.issued {
            if issued.cluster as usize >= stage.miner.cluster_count() {
                return Err(StateError::Issued {
                    id: issued.id,
                    cluster: issued.cluster,
                });
            }
            stage.index.insert(issued.id, stage.issued.len());
            stage.issued.push(issued);
        }
        Ok(stage)
    }

    /// The state to save: [`TemplateStage::from_state`] continues exactly from it.
    pub fn state(&self) -> TemplateStageState {
        TemplateStageState {
            version: STAGE_STATE_VERSION,
            miner: self.miner.state(),
            issued: self.issued.clone(),
            listed: self.listed.clone(),
        }
    }

    /// The miner inside.
    pub fn miner(&self) -> &TemplateMiner {
        &self.miner
    }

    /// Mines one message and gives it its cluster's template id now.
    pub fn assign(&mut self, message: &str) -> Assigned {
        let matched = self.miner.add(message);
        self.issue_for(matched)
    }

    /// [`TemplateStage::assign`] of each message of a masked batch, in order (see
    /// [`TemplateMiner::add_from_batch`]).
    pub fn assign_masked_batch(&mut self, batch: &MaskedBatch) -> Vec<Assigned> {
        let mut joins = BatchJoins::of(batch);
        let mut assigned = Vec::with_capacity(batch.len());
        for &place in &batch.index {
            let Some(matched) = self.miner.add_from_batch(batch, place, &mut joins) else {
                break; // a batch decoded from elsewhere is checked by its length
            };
            assigned.push(self.issue_for(matched));
        }
        assigned
    }

    /// The id a mined message gets: its cluster's current template's, issued the first time.
    fn issue_for(&mut self, matched: TemplateMatch) -> Assigned {
        let cluster = matched.cluster;
        let slot = cluster.0 as usize;
        if let Some(Some((id, issued))) = self.current.get(slot) {
            if *id == matched.template_id {
                return Assigned {
                    id: *id,
                    cluster,
                    issued: *issued,
                };
            }
        }
        let miner = &self.miner;
        let issued = issue(
            &mut self.issued,
            &mut self.index,
            matched.template_id,
            cluster,
            || miner.cluster_template(cluster),
        );
        if self.current.len() <= slot {
            self.current.resize(slot + 1, None);
        }
        self.current[slot] = Some((matched.template_id, issued));
        Assigned {
            id: matched.template_id,
            cluster,
            issued,
        }
    }

    /// Mines a batch of messages in order: the stage as a function of (state, batch).
    pub fn assign_batch<'m>(&mut self, messages: impl IntoIterator<Item = &'m str>) -> Vec<Assigned> {
        messages.into_iter().map(|m| self.assign(m)).collect()
    }

    /// Every id handed out, in the order first handed out.
    pub fn issued(&self) -> &[IssuedId] {
        &self.issued
    }

    /// Every id handed out, and every id listed as a current template before, with the
    /// template it belongs to now (as [`TemplateMiner::snapshot`] lists them, so clusters it
    /// merges share one canonical id). Remembers the current templates it lists, so that an id
    /// a reader saw as current keeps resolving after its clusters merge further.
    pub fn aliases(&mut self) -> Vec<TemplateAlias> {
        let set = self.miner.snapshot();
        let mut known: std::collections::HashSet<u64> = self.listed.iter().map(|l| l.id).collect();
        for cluster in 0..self.miner.cluster_count() {
            let cluster = ClusterId(cluster as u32);
            if let Some(t) = set.template_of(cluster) {
                if !self.index.contains_key(&t.id.0) && known.insert(t.id.0) {
                    self.listed.push(IssuedId {
                        id: t.id.0,
                        cluster: cluster.0,
                        template: t.text.clone(),
                    });
                }
            }
        }
        // A listed id may have been handed out since: it is listed once, as handed out.
        let index = &self.index;
        let listed = self.listed.iter().filter(|l| !index.contains_key(&l.id));
        self.issued
            .iter()
            .chain(listed)
            .map(|issued| {
                let cluster = ClusterId(issued.cluster);
                let (canonical, canonical_template) = match set.template_of(cluster) {
                    Some(t) => (t.id, t.text.clone()),
                    None => (TemplateId(issued.id), issued.template.clone()),
                };
                TemplateAlias {
                    id: TemplateId(issued.id),
                    template: issued.template.clone(),
                    canonical,
                    canonical_template,
                }
            })
            .collect()
    }
}

/// Records `id` as handed out for `cluster` unless it already was (for any cluster: the first
/// cluster keeps it, so an id always resolves the same way); its place in `issued`.
fn issue(
    issued: &mut Vec<IssuedId>,
    index: &mut HashMap<u64, usize>,
    id: TemplateId,
    cluster: ClusterId,
    text: impl FnOnce() -> String,
) -> usize {
    if let Some(&at) = index.get(&id.0) {
        return at;
    }
    let at = issued.len();
    issued.push(IssuedId {
        id: id.0,
        cluster: cluster.0,
        template: text(),
    });
    index.insert(id.0, at);
    at
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn messages() -> Vec<String> {
        let mut out = vec!["Job alpha finished".to_owned(), "Job alpha finished".to_owned()];
        for i in 0..50 {
            out.push(format!("Job run{i} finished"));
            out.push(format!("connection from 10.0.0.{i} closed after {i}ms"));
        }
        out
    }

    #[test]
    fn ids_are_those_of_the_template_at_that_moment_and_resolve_to_the_final_one() {
        let mut stage = TemplateStage::new(TemplateMiner::new(MinerConfig::default()));
        let messages = messages();
        let assigned = stage.assign_batch(messages.iter().map(String::as_str));
        assert_eq!(assigned[0].id, TemplateId::of("Job alpha finished"));
        let aliases = stage.aliases();
        let set = stage.miner().snapshot();
        let canonical: HashMap<TemplateId, TemplateId> =
            aliases.iter().map(|a| (a.id, a.canonical)).collect();
        for a in &assigned {
            assert_eq!(canonical[&a.id], set.template_id(a.cluster).unwrap());
            assert_eq!(TemplateId(stage.issued()[a.issued].id), a.id);
        }
        for alias in &aliases {
            assert_eq!(TemplateId::of(&alias.template), alias.id);
            assert_eq!(TemplateId::of(&alias.canonical_template), alias.canonical);
        }
        assert!(
            aliases.iter().any(|a| a.id != a.canonical),
            "a template generalized"
        );
    }

    #[test]
    fn a_saved_and_loaded_stage_hands_out_the_ids_one_stage_would() {
        let messages = messages();
        let (head, tail) = messages.split_at(37);
        let mut whole = TemplateStage::new(TemplateMiner::new(MinerConfig::default()));
        let all = whole.assign_batch(messages.iter().map(String::as_str));
        let mut first = TemplateStage::new(TemplateMiner::new(MinerConfig::default()));
        let mut ids: Vec<TemplateId> = first
            .assign_batch(head.iter().map(String::as_str))
            .iter()
            .map(|a| a.id)
            .collect();
        let json = serde_json::to_string(&first.state()).unwrap();
        let state: TemplateStageState = serde_json::from_str(&json).unwrap();
        let mut second = TemplateStage::from_state(MinerConfig::default(), state).unwrap();
        ids.extend(
            second
                .assign_batch(tail.iter().map(String::as_str))
                .iter()
                .map(|a| a.id),
        );
        assert_eq!(ids, all.iter().map(|a| a.id).collect::<Vec<_>>());
        assert_eq!(second.aliases(), whole.aliases());
    }

    #[test]
    fn a_template_listed_as_current_keeps_resolving_after_further_merges() {
        let mut stage = TemplateStage::new(TemplateMiner::new(MinerConfig::default()));
        for reason in ["(card_declined)", "(do_not_honor)", "(expired_card)"] {
            stage.assign(&format!("Payment declined for order 17 {reason}"));
        }
        let first = TemplateId::of("Payment declined for order <*> (<*>)");
        assert!(stage.aliases().iter().any(|a| a.canonical == first));
        stage.assign("Payment declined for order 18 insufficient_funds");
        let now = TemplateId::of("Payment declined for order <*> <*>");
        let aliases = stage.aliases();
        let old = aliases
            .iter()
            .find(|a| a.id == first)
            .expect("the merged id is still listed");
        assert_eq!(old.canonical, now);
        assert!(aliases.iter().all(|a| a.canonical == now), "{aliases:?}");
        // The saved state remembers it.
        let state = stage.state();
        assert!(state.listed.iter().any(|l| l.id == first.0));
        let mut again = TemplateStage::from_state(MinerConfig::default(), state).unwrap();
        assert_eq!(again.aliases(), aliases);
    }

    #[test]
    fn a_state_naming_an_unknown_cluster_is_refused() {
        let mut state = TemplateStage::new(TemplateMiner::new(MinerConfig::default())).state();
        state.issued.push(IssuedId {
            id: 1,
            cluster: 3,
            template: "x".into(),
        });
        assert!(matches!(
            TemplateStage::from_state(MinerConfig::default(), state),
            Err(StateError::Issued { id: 1, cluster: 3 })
        ));
    }
}
