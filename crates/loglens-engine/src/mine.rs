//! Template mining inside `process`: a first pass mines every parsed message in input order,
//! the second pass (the writing one) looks each record up in the finished, read-only tree.
//!
//! Why two passes? A Drain template keeps generalizing as messages arrive, so an id handed out
//! while mining can still change. Mining everything first and then matching against the final
//! tree gives each record its final id when it is written, and because mining sees the messages
//! in input order whatever the thread count, the templates on 1 and on N threads are the same.

use std::collections::{BTreeMap, HashMap};

use std::path::Path;

use loglens_core::template::{
    ClusterId, MinerConfig, MinerState, TemplateMiner, TemplatePattern, TemplateSet,
};
use loglens_core::{Level, Record, Timestamp};
use loglens_store::TemplateRow;

/// The parsed messages of one chunk, in line order, tagged with the chunk's place in the input.
pub(crate) struct MessageBatch {
    pub(crate) seq: u64,
    text: String,
    ends: Vec<usize>,
}

impl MessageBatch {
    pub(crate) fn new(seq: u64) -> Self {
        MessageBatch {
            seq,
            text: String::new(),
            ends: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, message: &str) {
        self.text.push_str(message);
        self.ends.push(self.text.len());
    }

    fn messages(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let message = self.text.get(start..end).unwrap_or_default();
            start = end;
            message
        })
    }
}

/// Feeds batches that arrive in any order to one miner in input order.
pub(crate) struct OrderedMiner {
    miner: TemplateMiner,
    pending: BTreeMap<u64, MessageBatch>,
    next: u64,
}

impl OrderedMiner {
    /// Mines on from an existing tree (the one earlier runs left in `state/`).
    pub(crate) fn continuing(miner: TemplateMiner) -> Self {
        OrderedMiner {
            miner,
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    /// Takes one batch; mines it and every waiting batch that now follows in order.
    pub(crate) fn accept(&mut self, batch: MessageBatch) {
        self.pending.insert(batch.seq, batch);
        while let Some(batch) = self.pending.remove(&self.next) {
            for message in batch.messages() {
                self.miner.add(message);
            }
            self.next += 1;
        }
    }

    /// The finished tree. Batches still waiting mean a chunk was lost, which only happens
    /// after a worker error that the caller reports.
    pub(crate) fn finish(self) -> MinedTemplates {
        MinedTemplates::new(self.miner)
    }
}

/// The finished templates of a run, read-only and shared by the writing workers.
pub(crate) struct MinedTemplates {
    miner: TemplateMiner,
    set: TemplateSet,
    patterns: HashMap<u64, TemplatePattern>,
}

/// The template a message belongs to.
pub(crate) struct Matched<'m> {
    pub(crate) id: u64,
    pub(crate) params: Option<Vec<&'m str>>,
}

impl MinedTemplates {
    fn new(miner: TemplateMiner) -> Self {
        let set = miner.snapshot();
        let patterns = set
            .templates()
            .iter()
            .map(|t| (t.id.0, TemplatePattern::new(&t.text)))
            .collect();
        MinedTemplates { miner, set, patterns }
    }

    /// The template of `message` and the values in its slots.
    pub(crate) fn lookup<'m>(&self, message: &'m str) -> Option<Matched<'m>> {
        let cluster: ClusterId = self.miner.match_message(message)?;
        let id = self.set.template_id(cluster)?.0;
        let params = self.patterns.get(&id).and_then(|p| p.parameters(message));
        Some(Matched { id, params })
    }

    /// The tree to continue from in the next run.
    pub(crate) fn state(&self) -> MinerState {
        self.miner.state()
    }

    fn text(&self, id: u64) -> Option<&str> {
        // Templates are sorted by id in the set.
        let templates = self.set.templates();
        let index = templates.binary_search_by(|t| t.id.0.cmp(&id)).ok()?;
        Some(templates[index].text.as_str())
    }
}

/// The miner state file inside `state/`.
pub(crate) const MINER_STATE_FILE: &str = "miner.json";

/// The miner earlier runs left in `state_dir`, or a fresh one. A state file that cannot be
/// read or belongs to other tree settings is an error naming it, never silently replaced.
pub(crate) fn load_miner(state_dir: &Path, config: MinerConfig) -> Result<TemplateMiner, crate::EngineError> {
    let path = state_dir.join(MINER_STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TemplateMiner::new(config)),
        Err(e) => return Err(crate::EngineError::io(&path, e)),
    };
    let bad = |why: String| {
        crate::EngineError::Config(format!(
            "{}: {why} (remove it to start template mining afresh)",
            path.display()
        ))
    };
    let state: MinerState = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    TemplateMiner::from_state(config, state).map_err(|e| bad(e.to_string()))
}

/// Saves the miner for the next run (atomically).
pub(crate) fn save_miner(state_dir: &Path, mined: &MinedTemplates) -> Result<(), crate::EngineError> {
    let json = serde_json::to_vec(&mined.state()).map_err(|e| crate::EngineError::Config(e.to_string()))?;
    Ok(loglens_store::write_atomic(
        &state_dir.join(MINER_STATE_FILE),
        &json,
    )?)
}

/// Where a record came from, to pick the same example line whatever the thread count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Origin {
    pub(crate) ts: Timestamp,
    pub(crate) input: usize,
    pub(crate) line: u64,
}

struct Seen {
    count: u64,
    first: Origin,
    last: Timestamp,
    level: Option<Level>,
    service: Option<String>,
    example: String,
}

/// Per-template counts one worker saw while writing.
#[derive(Default)]
pub(crate) struct TemplateTally {
    seen: HashMap<u64, Seen>,
}

impl TemplateTally {
    pub(crate) fn add(&mut self, id: u64, record: &Record<'_>, service: Option<&str>, origin: Origin) {
        let seen = self.seen.entry(id).or_insert_with(|| Seen {
            count: 0,
            first: origin,
            last: origin.ts,
            level: record.level,
            service: service.map(str::to_owned),
            example: record.message.to_string(),
        });
        seen.count += 1;
        seen.last = seen.last.max(origin.ts);
        seen.level = seen.level.max(record.level);
        if origin < seen.first {
            seen.first = origin;
            seen.service = service.map(str::to_owned);
            seen.example = record.message.to_string();
        }
    }

    pub(crate) fn merge(&mut self, other: TemplateTally) {
        for (id, theirs) in other.seen {
            match self.seen.get_mut(&id) {
                None => {
                    self.seen.insert(id, theirs);
                }
                Some(ours) => {
                    ours.count += theirs.count;
                    ours.last = ours.last.max(theirs.last);
                    ours.level = ours.level.max(theirs.level);
                    if theirs.first < ours.first {
                        ours.first = theirs.first;
                        ours.service = theirs.service;
                        ours.example = theirs.example;
                    }
                }
            }
        }
    }

    /// Rows for the templates dataset, with the template texts of `mined`.
    pub(crate) fn into_rows(self, mined: &MinedTemplates) -> Vec<TemplateRow> {
        let mut rows: Vec<TemplateRow> = self
            .seen
            .into_iter()
            .map(|(id, seen)| TemplateRow {
                id,
                template: mined.text(id).unwrap_or_default().to_owned(),
                count: seen.count,
                first_seen: seen.first.ts,
                last_seen: seen.last,
                level: seen.level,
                service: seen.service,
                example: seen.example,
            })
            .collect();
        rows.sort_by_key(|r| r.id);
        rows
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Messages with ids that mix letters and digits, as the generator's services write them.
    fn messages() -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..400u64 {
            let id = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1 << 63);
            out.push(format!(
                "Cart cart_{} loaded with {} items for user u{}",
                &id[..10],
                i % 7,
                100_000 + i
            ));
            out.push(format!(
                "Fraud check passed for user u{} (score {})",
                100_000 + i * 3,
                i % 90
            ));
            out.push(format!("Session {} expired for user u{}", &id[..8], 100_000 + i));
        }
        out
    }

    #[test]
    fn lookup_after_mining_counts_what_mining_counted() {
        let messages = messages();
        let mut miner = OrderedMiner::continuing(TemplateMiner::new(MinerConfig::default()));
        // Batches arrive out of order; mining must still see input order.
        let mut batches: Vec<MessageBatch> = messages
            .chunks(100)
            .enumerate()
            .map(|(seq, chunk)| {
                let mut batch = MessageBatch::new(seq as u64);
                chunk.iter().for_each(|m| batch.push(m));
                batch
            })
            .collect();
        batches.reverse();
        batches.into_iter().for_each(|b| miner.accept(b));
        let mined = miner.finish();
        let mut looked_up: BTreeMap<u64, u64> = BTreeMap::new();
        for message in &messages {
            *looked_up.entry(mined.lookup(message).unwrap().id).or_default() += 1;
        }
        let counted: BTreeMap<u64, u64> = mined.set.templates().iter().map(|t| (t.id.0, t.count)).collect();
        assert_eq!(looked_up, counted);
        assert_eq!(looked_up.values().sum::<u64>(), messages.len() as u64);
    }
}
