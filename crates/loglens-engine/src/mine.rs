//! Template mining inside `process`: one stage thread gives every parsed record, in input
//! order, the id of its template at that moment (core's [`TemplateStage`]); the writing workers
//! extract the parameters and tally what they wrote per id.
//!
//! Why in input order? A Drain template keeps generalizing as messages arrive, so the id a
//! message gets depends on the messages before it. Mining in input order, whatever the thread
//! count, makes the ids depend on the input alone; the stage's state (tree and every id handed
//! out, `state/miner.json`) makes an incremental run continue exactly where one run would be.
//! Ids once written are never rewritten: `templates/` maps each to its current template.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use loglens_core::format::multiline::head;
use loglens_core::template::TemplateStats;
use loglens_core::template::{
    MinerConfig, MinerState, TemplateMiner, TemplatePattern, TemplateStage, TemplateStageState,
};
use loglens_core::{Record, Timestamp};

/// Puts items that arrive in any order back in input order (by their sequence number).
pub(crate) struct InOrder<T> {
    pending: BTreeMap<u64, T>,
    next: u64,
}

impl<T> InOrder<T> {
    pub(crate) fn new() -> Self {
        InOrder {
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    /// Takes item `seq`; returns it and every waiting item that now follows, in order.
    pub(crate) fn accept(&mut self, seq: u64, item: T) -> Vec<T> {
        self.pending.insert(seq, item);
        let mut ready = Vec::new();
        while let Some(item) = self.pending.remove(&self.next) {
            ready.push(item);
            self.next += 1;
        }
        ready
    }
}

/// The template given to one record: its id, and the compiled template to take its
/// parameters with (shared by every record of that id).
#[derive(Clone)]
pub(crate) struct Assigned {
    pub(crate) id: u64,
    pub(crate) pattern: Arc<TemplatePattern>,
}

/// The template stage with a compiled pattern per id handed out.
pub(crate) struct Templater {
    stage: TemplateStage,
    /// By the id's place in `stage.issued()`, compiled when first needed.
    patterns: Vec<Option<Arc<TemplatePattern>>>,
}

impl Templater {
    pub(crate) fn new(stage: TemplateStage) -> Self {
        Templater {
            stage,
            patterns: Vec::new(),
        }
    }

    /// Mines `message` and gives it its template id now.
    pub(crate) fn assign(&mut self, message: &str) -> Assigned {
        let assigned = self.stage.assign(message);
        if self.patterns.len() <= assigned.issued {
            self.patterns.resize(assigned.issued + 1, None);
        }
        let issued = &self.stage.issued()[assigned.issued];
        let pattern = self.patterns[assigned.issued]
            .get_or_insert_with(|| Arc::new(TemplatePattern::new(&issued.template)))
            .clone();
        Assigned {
            id: assigned.id.0,
            pattern,
        }
    }

    pub(crate) fn into_stage(self) -> TemplateStage {
        self.stage
    }
}

/// The miner's configuration in `process`, `serve` and a cluster's workers: the defaults, the
/// same for every log source. Workers mask messages with it for the driver's miner, so both
/// must take it from here.
pub fn miner_config() -> MinerConfig {
    MinerConfig::default()
}

/// The miner state file inside `state/`.
pub(crate) const MINER_STATE_FILE: &str = "miner.json";

/// The template stage earlier runs left in `state_dir`, or a fresh one. A state file that
/// cannot be read or belongs to other tree settings is an error naming it, never silently
/// replaced. A file of earlier versions (the miner alone) still loads: the ids its runs wrote
/// were its templates then.
pub(crate) fn load_miner(state_dir: &Path, config: MinerConfig) -> Result<TemplateStage, crate::EngineError> {
    let path = state_dir.join(MINER_STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(TemplateStage::new(TemplateMiner::new(config)))
        }
        Err(e) => return Err(crate::EngineError::io(&path, e)),
    };
    let bad = |why: String| {
        crate::EngineError::state(
            &path,
            format!("{why} (remove it to start template mining afresh)"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if value.get("miner").is_some() {
        let state: TemplateStageState = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        return TemplateStage::from_state(config, state).map_err(|e| bad(e.to_string()));
    }
    let state: MinerState = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let miner = TemplateMiner::from_state(config, state).map_err(|e| bad(e.to_string()))?;
    Ok(TemplateStage::new(miner))
}

/// Saves the template stage for the next run into `state_dir`, a run's staging `state/`.
pub(crate) fn save_miner(state_dir: &Path, stage: &TemplateStage) -> Result<(), crate::EngineError> {
    let json =
        serde_json::to_vec(&stage.state()).map_err(|e| crate::EngineError::encode("miner state", e))?;
    Ok(loglens_store::write_staged(
        &state_dir.join(MINER_STATE_FILE),
        &json,
    )?)
}

/// Templates of this run's records, and of those how many no earlier run had seen under any
/// of their ids (`known`: the ids in `templates/` before this run).
pub(crate) fn run_templates(rows: &[TemplateStats], known: &[TemplateStats]) -> (u64, u64) {
    let known: HashSet<u64> = known.iter().map(|k| k.id).collect();
    let mut seen_before: HashMap<u64, bool> = HashMap::new();
    for row in rows.iter().filter(|r| r.count > 0) {
        seen_before.entry(row.canonical_id).or_default();
    }
    for row in rows.iter().filter(|r| known.contains(&r.id)) {
        if let Some(before) = seen_before.get_mut(&row.canonical_id) {
            *before = true;
        }
    }
    let new = seen_before.values().filter(|before| !**before).count();
    (seen_before.len() as u64, new as u64)
}

/// Where a record came from, to pick the same example line whatever the thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct Origin {
    pub(crate) ts: Timestamp,
    pub(crate) input: usize,
    pub(crate) line: u64,
}

/// What one tally saw of a template id: its stats (id and text are filled in by
/// [`TemplateTally::into_rows`]) and where its example came from. Why the origin? Rows merge by
/// first time seen, and records of one time stamp need a tie-break that does not depend on
/// which worker saw them, so the example is the same on 1 or N threads.
#[derive(serde::Serialize, serde::Deserialize)]
struct Seen {
    stats: TemplateStats,
    first: Origin,
}

impl Seen {
    /// Folds `other` in; the example is the one of the earlier origin.
    fn merge(&mut self, mut other: Seen) {
        if other.first < self.first {
            std::mem::swap(self, &mut other);
        }
        // Now self.first <= other.first, so absorb keeps self's example.
        self.stats.absorb(other.stats);
    }
}

/// Per-template counts one worker saw while writing.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct TemplateTally {
    seen: HashMap<u64, Seen>,
}

impl TemplateTally {
    pub(crate) fn add(&mut self, id: u64, record: &Record<'_>, service: Option<&str>, origin: Origin) {
        let example = || head(&record.message).to_owned();
        let seen = self.seen.entry(id).or_insert_with(|| Seen {
            stats: TemplateStats {
                id,
                canonical_id: id,
                template: String::new(),
                count: 0,
                first_seen: origin.ts,
                last_seen: origin.ts,
                level: record.level,
                service: service.map(str::to_owned),
                example: example(),
            },
            first: origin,
        });
        let stats = &mut seen.stats;
        stats.count += 1;
        stats.last_seen = stats.last_seen.max(origin.ts);
        stats.level = stats.level.max(record.level);
        if origin < seen.first {
            seen.first = origin;
            stats.first_seen = origin.ts;
            stats.service = service.map(str::to_owned);
            stats.example = example();
        }
    }

    pub(crate) fn merge(&mut self, other: TemplateTally) {
        for (id, theirs) in other.seen {
            match self.seen.get_mut(&id) {
                None => {
                    self.seen.insert(id, theirs);
                }
                Some(ours) => ours.merge(theirs),
            }
        }
    }

    /// Rows for the templates dataset: one per id the stage ever handed out (counting what
    /// this run wrote with it; 0 for ids of earlier runs, which the dataset counted then) with
    /// its current template, and one per current template no id was handed out for.
    pub(crate) fn into_rows(mut self, stage: &mut TemplateStage) -> Vec<TemplateStats> {
        let mut rows: BTreeMap<u64, TemplateStats> = BTreeMap::new();
        for alias in stage.aliases() {
            let (id, canonical) = (alias.id.0, alias.canonical.0);
            let seen = self.seen.remove(&id).map(|s| s.stats);
            rows.insert(id, row(id, canonical, alias.template, seen));
            rows.entry(canonical)
                .or_insert_with(|| row(canonical, canonical, alias.canonical_template, None));
        }
        rows.into_values().collect()
    }
}

/// The row of `id`: what this run saw of it, or nothing (count 0).
fn row(id: u64, canonical_id: u64, template: String, seen: Option<TemplateStats>) -> TemplateStats {
    let nothing = || TemplateStats {
        id,
        canonical_id,
        template: String::new(),
        count: 0,
        first_seen: Timestamp::default(),
        last_seen: Timestamp::default(),
        level: None,
        service: None,
        example: String::new(),
    };
    TemplateStats {
        id,
        canonical_id,
        template,
        ..seen.unwrap_or_else(nothing)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order_whatever_order_they_arrive_in() {
        let mut in_order = InOrder::new();
        assert!(in_order.accept(2, 'c').is_empty());
        assert!(in_order.accept(1, 'b').is_empty());
        assert_eq!(in_order.accept(0, 'a'), vec!['a', 'b', 'c']);
        assert_eq!(in_order.accept(3, 'd'), vec!['d']);
    }

    #[test]
    fn rows_cover_every_id_with_its_current_template() {
        let mut templater = Templater::new(TemplateStage::new(TemplateMiner::new(MinerConfig::default())));
        let mut tally = TemplateTally::default();
        for (line, message) in ["Job alpha finished", "Job run1 finished", "Job run2 finished"]
            .iter()
            .enumerate()
        {
            let assigned = templater.assign(message);
            let record = Record::new(Timestamp::from_secs(line as i64), *message);
            let origin = Origin {
                ts: record.ts,
                input: 0,
                line: line as u64 + 1,
            };
            tally.add(assigned.id, &record, None, origin);
            assert_eq!(
                assigned.pattern.parameters(message).map(|p| p.len()),
                Some(usize::from(line > 0))
            );
        }
        let mut stage = templater.into_stage();
        let rows = tally.into_rows(&mut stage);
        let general = loglens_core::template::TemplateId::of("Job <*> finished").0;
        assert_eq!(rows.len(), 2, "the first message's id and the generalized one");
        assert!(rows.iter().all(|r| r.canonical_id == general));
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 3);
        assert_eq!(run_templates(&rows, &[]), (1, 1));
        assert_eq!(run_templates(&rows, &rows[..1]), (1, 0));
    }

    #[test]
    fn a_miner_state_of_earlier_versions_loads_and_resolves_the_ids_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut miner = TemplateMiner::new(MinerConfig::default());
        for m in ["Job run1 finished", "Job run2 finished", "disk full"] {
            miner.add(m);
        }
        let written: Vec<u64> = miner.templates().iter().map(|t| t.id.0).collect();
        std::fs::write(
            dir.path().join(MINER_STATE_FILE),
            serde_json::to_vec(&miner.state()).unwrap(),
        )
        .unwrap();
        let mut stage = load_miner(dir.path(), MinerConfig::default()).unwrap();
        let aliases = stage.aliases();
        for id in written {
            assert!(aliases.iter().any(|a| a.id.0 == id && a.canonical.0 == id));
        }
        save_miner(dir.path(), &stage).unwrap();
        let again = load_miner(dir.path(), MinerConfig::default()).unwrap();
        assert_eq!(again.state(), stage.state());
    }
}
