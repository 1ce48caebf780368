//! The `templates/` dataset: one row per template id ever written to records, with its count and
//! when it was first and last seen, and the id of the template it belongs to now
//! (`canonical_id`). One small file, `templates/templates.parquet`, rewritten (atomically) by every
//! run that mines, so readers always see the totals over all runs.
//!
//! Why aliases? Records are written with the id of their template at the moment they were mined
//! and never rewritten; when a template generalizes later (`Job x1 finished` becomes
//! `Job <*> finished`), the old id stays in the records and its row here points at the new one.
//! Readers group by `canonical_id` (core's `canonical_templates`, `template_aliases`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
#[cfg(test)]
use loglens_core::template::template_aliases;
use loglens_core::template::{canonical_templates, TemplateStats};
use loglens_core::{Level, Timestamp};

use crate::read::{column, read_all_columns};
use crate::{PartFile, StoreError};

/// The file holding the dataset, inside `templates/`.
pub const TEMPLATES_FILE: &str = "templates.parquet";

/// Schema of `templates/`.
pub fn templates_schema() -> SchemaRef {
    let ts = |name: &str| {
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new("template_id", DataType::UInt64, false),
        Field::new("canonical_id", DataType::UInt64, false),
        Field::new("template", DataType::Utf8, false),
        Field::new("count", DataType::UInt64, false),
        ts("first_seen"),
        ts("last_seen"),
        Field::new("level", DataType::Utf8, true),
        Field::new("service", DataType::Utf8, true),
        Field::new("example", DataType::Utf8, false),
    ]))
}

/// Reads every template row of `dir`; an absent file is an empty dataset.
pub fn read_templates(dir: &Path) -> Result<Vec<TemplateStats>, StoreError> {
    let path = dir.join(TEMPLATES_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    read_all_columns(&path, |batch| append_rows(&path, batch, &mut rows))?;
    Ok(rows)
}

fn append_rows(path: &Path, batch: &RecordBatch, rows: &mut Vec<TemplateStats>) -> Result<(), StoreError> {
    let id = column::<UInt64Array>(path, batch, "template_id")?;
    // Written before aliases existed, every id was its own template.
    let canonical = match batch.column_by_name("canonical_id") {
        Some(_) => Some(column::<UInt64Array>(path, batch, "canonical_id")?),
        None => None,
    };
    let template = column::<StringArray>(path, batch, "template")?;
    let count = column::<UInt64Array>(path, batch, "count")?;
    let first = column::<TimestampMicrosecondArray>(path, batch, "first_seen")?;
    let last = column::<TimestampMicrosecondArray>(path, batch, "last_seen")?;
    let level = column::<StringArray>(path, batch, "level")?;
    let service = column::<StringArray>(path, batch, "service")?;
    let example = column::<StringArray>(path, batch, "example")?;
    let text = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
    for i in 0..batch.num_rows() {
        rows.push(TemplateStats {
            id: id.value(i),
            canonical_id: canonical.map_or(id.value(i), |c| c.value(i)),
            template: template.value(i).to_owned(),
            count: count.value(i),
            first_seen: Timestamp(first.value(i)),
            last_seen: Timestamp(last.value(i)),
            level: text(level, i).and_then(|l| l.parse().ok()),
            service: text(service, i),
            example: example.value(i).to_owned(),
        });
    }
    Ok(())
}

/// Merges `new` rows into the dataset in `dir` and writes the result to the dataset directory
/// `into` (`dir` itself, or a run's staging area): counts of the same id add up, and the
/// canonical id and text of `new` rows replace those stored (a template generalized). A current
/// template no record was written with takes its aliases' totals (first and last seen, level,
/// example); rows that count nothing and stand for no current template go. Rows are sorted by
/// descending count, then id, so the file is deterministic.
pub fn merge_templates(
    dir: &Path,
    into: &Path,
    new: Vec<TemplateStats>,
) -> Result<Vec<TemplateStats>, StoreError> {
    let mut by_id: BTreeMap<u64, TemplateStats> = BTreeMap::new();
    for row in read_templates(dir)?.into_iter().chain(new) {
        match by_id.get_mut(&row.id) {
            Some(existing) => {
                existing.canonical_id = row.canonical_id;
                existing.template.clone_from(&row.template);
                existing.absorb(row);
            }
            None => {
                by_id.insert(row.id, row);
            }
        }
    }
    let totals: BTreeMap<u64, TemplateStats> = canonical_templates(by_id.values())
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut rows: Vec<TemplateStats> = by_id
        .into_values()
        .filter_map(|row| match (row.count, totals.get(&row.id)) {
            (0, Some(total)) if row.canonical_id == row.id && total.count > 0 => Some(TemplateStats {
                count: 0,
                ..total.clone()
            }),
            // An id nothing was written with this run still resolves while it is an alias:
            // readers may have keyed data by it when it was a current template.
            (0, _) if row.canonical_id != row.id => Some(row),
            (0, _) => None,
            _ => Some(row),
        })
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    write_templates(into, &rows)?;
    Ok(rows)
}

fn write_templates(dir: &Path, rows: &[TemplateStats]) -> Result<PathBuf, StoreError> {
    let schema = templates_schema();
    let mut id = UInt64Builder::with_capacity(rows.len());
    let mut canonical = UInt64Builder::with_capacity(rows.len());
    let mut template = StringBuilder::new();
    let mut count = UInt64Builder::with_capacity(rows.len());
    let mut first = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut last = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut level = StringBuilder::new();
    let mut service = StringBuilder::new();
    let mut example = StringBuilder::new();
    for row in rows {
        id.append_value(row.id);
        canonical.append_value(row.canonical_id);
        template.append_value(&row.template);
        count.append_value(row.count);
        first.append_value(row.first_seen.0);
        last.append_value(row.last_seen.0);
        level.append_option(row.level.map(Level::as_str));
        service.append_option(row.service.as_deref());
        example.append_value(&row.example);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(canonical.finish()),
        Arc::new(template.finish()),
        Arc::new(count.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(level.finish()),
        Arc::new(service.finish()),
        Arc::new(example.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut file = PartFile::create(dir, TEMPLATES_FILE, schema)?;
    file.write(&batch)?;
    let path = file.path.clone();
    file.finish()?;
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(id: u64, count: u64, first: i64, example: &str) -> TemplateStats {
        TemplateStats {
            id,
            canonical_id: id,
            template: format!("t{id} <*>"),
            count,
            first_seen: Timestamp(first),
            last_seen: Timestamp(first + 10),
            level: Some(Level::Info),
            service: Some("api".into()),
            example: example.into(),
        }
    }

    #[test]
    fn merge_sums_counts_and_keeps_the_earliest_example() {
        let dir = tempfile::tempdir().unwrap();
        merge_templates(
            dir.path(),
            dir.path(),
            vec![row(1, 5, 100, "late"), row(2, 1, 50, "b")],
        )
        .unwrap();
        let mut error = row(1, 3, 20, "early");
        error.level = Some(Level::Error);
        let rows = merge_templates(dir.path(), dir.path(), vec![error]).unwrap();
        assert_eq!(rows, read_templates(dir.path()).unwrap());
        assert_eq!(rows.len(), 2);
        let first = &rows[0];
        assert_eq!((first.id, first.count), (1, 8));
        assert_eq!(
            (first.first_seen, first.last_seen),
            (Timestamp(20), Timestamp(110))
        );
        assert_eq!(first.example, "early");
        assert_eq!(first.level, Some(Level::Error));
        assert_eq!(rows[1].id, 2);
    }

    #[test]
    fn an_id_that_generalized_points_at_its_template_and_adds_to_its_totals() {
        let dir = tempfile::tempdir().unwrap();
        // Run 1 wrote id 1; run 2 finds its template generalized into 2 and writes 2 as well.
        merge_templates(dir.path(), dir.path(), vec![row(1, 5, 100, "first")]).unwrap();
        let mut generalized = row(1, 0, 0, "");
        generalized.canonical_id = 2;
        let rows =
            merge_templates(dir.path(), dir.path(), vec![generalized, row(2, 3, 500, "later")]).unwrap();
        let aliases = template_aliases(&rows);
        assert_eq!((aliases[&1], aliases[&2]), (2, 2));
        let current = canonical_templates(&rows);
        assert_eq!(current.len(), 1);
        assert_eq!((current[0].id, current[0].count), (2, 8));
        assert_eq!(current[0].template, "t2 <*>");
        assert_eq!(current[0].example, "first");
        assert_eq!(current[0].first_seen, Timestamp(100));
        // Counts per id stay, so the table adds up to the records written.
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 8);
    }

    #[test]
    fn a_template_only_its_aliases_were_written_with_carries_their_totals() {
        let dir = tempfile::tempdir().unwrap();
        let mut alias = row(1, 4, 100, "one");
        alias.canonical_id = 9;
        let rows = merge_templates(dir.path(), dir.path(), vec![alias, row(9, 0, 0, "")]).unwrap();
        let nine = rows.iter().find(|r| r.id == 9).unwrap();
        assert_eq!(
            (nine.count, nine.first_seen, nine.example.as_str()),
            (0, Timestamp(100), "one")
        );
        assert_eq!(canonical_templates(&rows)[0].count, 4);
        assert_eq!(read_templates(dir.path()).unwrap(), rows);
    }

    #[test]
    fn absent_dataset_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_templates(dir.path()).unwrap().is_empty());
    }
}
