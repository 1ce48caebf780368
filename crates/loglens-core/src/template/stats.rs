//! What was seen of each template id over all runs (the `templates/` dataset's rows), and how
//! ids that generalized resolve to their current template. One model for every reader: detect,
//! alerting's new-template rule, `loglens templates`.

use std::collections::{BTreeMap, HashMap};

use crate::{Level, Timestamp};

/// One template id and what was seen of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TemplateStats {
    /// Stable id: a hash of the template text.
    pub id: u64,
    /// The id of the template this one belongs to now; `id` itself for a current template.
    pub canonical_id: u64,
    /// The template, `<*>` in the variable slots.
    pub template: String,
    /// Records written with this id over all runs (0 for a current template no record was
    /// written with yet, whose other columns then hold its aliases' totals).
    pub count: u64,
    /// Earliest record time.
    pub first_seen: Timestamp,
    /// Latest record time.
    pub last_seen: Timestamp,
    /// The worst level seen on it.
    pub level: Option<Level>,
    /// The service of the example line.
    pub service: Option<String>,
    /// One message of this template (the earliest seen).
    pub example: String,
}

impl TemplateStats {
    /// Folds the records counted in `other` (the same template seen elsewhere) into this row;
    /// the id, canonical id and text stay. The example follows the earlier first sighting, so
    /// the result does not depend on the order rows are merged in. Rows that count no record
    /// add nothing.
    pub fn absorb(&mut self, other: TemplateStats) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = TemplateStats {
                id: self.id,
                canonical_id: self.canonical_id,
                template: std::mem::take(&mut self.template),
                ..other
            };
            return;
        }
        self.count += other.count;
        self.last_seen = self.last_seen.max(other.last_seen);
        self.level = self.level.max(other.level);
        if other.first_seen < self.first_seen {
            self.first_seen = other.first_seen;
            self.service = other.service;
            self.example = other.example;
        }
    }
}

/// The current templates of `rows`: one per canonical id, with its text and the totals of
/// every id that belongs to it (what `loglens templates` lists). Sorted by id.
pub fn canonical_templates<'r>(rows: impl IntoIterator<Item = &'r TemplateStats>) -> Vec<TemplateStats> {
    let rows: Vec<&TemplateStats> = rows.into_iter().collect();
    let mut by_canonical: BTreeMap<u64, TemplateStats> = BTreeMap::new();
    for row in &rows {
        if row.id == row.canonical_id {
            by_canonical.insert(
                row.id,
                TemplateStats {
                    count: 0,
                    ..(*row).clone()
                },
            );
        }
    }
    for row in rows {
        if let Some(total) = by_canonical.get_mut(&row.canonical_id) {
            total.absorb(row.clone());
        }
    }
    by_canonical.into_values().collect()
}

/// Every id of `rows` mapped to its canonical id: how readers group records by template.
pub fn template_aliases(rows: &[TemplateStats]) -> HashMap<u64, u64> {
    rows.iter().map(|r| (r.id, r.canonical_id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(id: u64, canonical_id: u64, text: &str, count: u64, first: i64, example: &str) -> TemplateStats {
        TemplateStats {
            id,
            canonical_id,
            template: text.to_owned(),
            count,
            first_seen: Timestamp(first),
            last_seen: Timestamp(first + 5),
            level: Some(Level::Error),
            service: None,
            example: example.to_owned(),
        }
    }

    #[test]
    fn ids_that_generalized_count_under_their_current_template() {
        let rows = [
            stats(2, 2, "Job <*> finished", 3, 50, "Job b2 finished"),
            stats(1, 2, "Job a1 finished", 4, 10, "Job a1 finished"),
            stats(7, 7, "other", 1, 0, "other"),
        ];
        let current = canonical_templates(&rows);
        assert_eq!(current.len(), 2);
        let job = &current[0];
        assert_eq!(
            (job.id, job.template.as_str(), job.count),
            (2, "Job <*> finished", 7)
        );
        assert_eq!((job.first_seen, job.last_seen), (Timestamp(10), Timestamp(55)));
        assert_eq!(job.example, "Job a1 finished", "the earliest sighting's example");
        assert_eq!(template_aliases(&rows)[&1], 2);
    }
}
