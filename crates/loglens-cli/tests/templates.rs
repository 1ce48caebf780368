//! End-to-end: template mining inside `process` (same ids and templates on 1 and 2 threads and
//! in one run or many incremental ones, every record labelled, records never rewritten),
//! `loglens templates`, and `loglens detect` writing its datasets.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{loglens, read_dataset, strings, u64s};

fn generate(out: &Path) {
    loglens()
        .args([
            "generate",
            "--lines",
            "20000",
            "--duration",
            "1d",
            "--seed",
            "5",
            "--out",
        ])
        .arg(out)
        .assert()
        .success();
}

fn process(gen: &Path, data: &Path, threads: &str) {
    loglens()
        .arg("process")
        .arg("--config")
        .arg(gen.join("loglens.toml"))
        .arg("--data-dir")
        .arg(data)
        .args(["--threads", threads])
        .assert()
        .success();
}

/// The template id of each record as written, by (source, line).
type RecordTemplates = BTreeMap<(String, u64), Option<u64>>;
/// The templates dataset as (id, canonical id, template, count) rows.
type TemplateRows = Vec<(u64, u64, String, u64)>;

/// What runs mined: record labels as written, the templates dataset, and each record's
/// current template (its id resolved through `canonical_id`).
struct Mined {
    ids: RecordTemplates,
    templates: TemplateRows,
    canonical: RecordTemplates,
}

fn mined(data: &Path) -> Mined {
    let records = read_dataset(&data.join("records"));
    let sources = strings(&records, "source");
    let lines = u64s(&records, "line");
    let ids = u64s(&records, "template_id");
    let ids: RecordTemplates = sources
        .into_iter()
        .zip(lines)
        .zip(ids)
        .map(|((s, l), id)| ((s.unwrap_or_default(), l.unwrap_or_default()), id))
        .collect();
    let table = read_dataset(&data.join("templates"));
    let templates: TemplateRows = u64s(&table, "template_id")
        .into_iter()
        .zip(u64s(&table, "canonical_id"))
        .zip(strings(&table, "template"))
        .zip(u64s(&table, "count"))
        .map(|(((id, canonical), t), n)| {
            (
                id.unwrap_or_default(),
                canonical.unwrap_or_default(),
                t.unwrap_or_default(),
                n.unwrap_or_default(),
            )
        })
        .collect();
    let current: BTreeMap<u64, u64> = templates.iter().map(|t| (t.0, t.1)).collect();
    let canonical = ids
        .iter()
        .map(|(k, id)| {
            (
                k.clone(),
                id.map(|id| current.get(&id).copied().unwrap_or(u64::MAX)),
            )
        })
        .collect();
    Mined {
        ids,
        templates,
        canonical,
    }
}

/// Current templates (canonical id → text, records), from the templates dataset.
fn current_templates(rows: &TemplateRows) -> BTreeMap<u64, (String, u64)> {
    let mut out: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    for (id, canonical, text, _) in rows {
        if id == canonical {
            out.entry(*id).or_default().0 = text.clone();
        }
    }
    for (_, canonical, _, count) in rows {
        out.entry(*canonical).or_default().1 += count;
    }
    out
}

#[test]
fn templates_do_not_depend_on_threads_and_label_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gen = dir.path().join("gen");
    generate(&gen);
    process(&gen, &dir.path().join("one"), "1");
    process(&gen, &dir.path().join("two"), "2");
    let one = mined(&dir.path().join("one"));
    let two = mined(&dir.path().join("two"));
    assert_eq!(one.templates, two.templates);
    assert_eq!(one.ids, two.ids);
    assert!(
        one.ids.values().all(Option::is_some),
        "every record has a template"
    );
    assert!(
        one.canonical.values().all(|c| c.is_some_and(|c| c != u64::MAX)),
        "every id written resolves to a current template"
    );
    let total: u64 = one.templates.iter().map(|t| t.3).sum();
    assert_eq!(
        total,
        one.ids.len() as u64,
        "template counts add up to the records"
    );
    let current = current_templates(&one.templates);
    let mut by_current: BTreeMap<u64, u64> = BTreeMap::new();
    for c in one.canonical.values().flatten() {
        *by_current.entry(*c).or_default() += 1;
    }
    assert_eq!(
        by_current,
        current.iter().map(|(id, t)| (*id, t.1)).collect(),
        "current templates count their aliases' records"
    );
    assert!(
        current.len() < 550,
        "ids with digits vary: {} templates for 20k lines",
        current.len()
    );

    let listed = loglens()
        .args(["templates", "--json", "-n", "3", "--data-dir"])
        .arg(dir.path().join("one"))
        .output()
        .expect("runs");
    assert!(listed.status.success());
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(rows.len(), 3);
    let most = current
        .iter()
        .max_by_key(|(id, t)| (t.1, std::cmp::Reverse(**id)))
        .expect("a template");
    assert_eq!(rows[0]["template_id"], *most.0);
    assert_eq!(rows[0]["template"], most.1 .0.as_str());
    assert_eq!(rows[0]["count"], most.1 .1);

    loglens()
        .args(["templates", "--new-since", "not-a-time", "--data-dir"])
        .arg(dir.path().join("one"))
        .assert()
        .failure();
}

#[test]
fn detect_writes_metrics_anomalies_and_incidents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gen = dir.path().join("gen");
    generate(&gen);
    let data = dir.path().join("data");
    process(&gen, &data, "2");
    let out = loglens()
        .args(["detect", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(summary["records"].as_u64().is_some_and(|n| n > 19_000));
    let metrics = read_dataset(&data.join("metrics"));
    let names = strings(&metrics, "metric");
    let series = strings(&metrics, "series");
    let values: Vec<f64> = metrics
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name("value").expect("value");
            let col = col
                .as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .expect("f64");
            col.values().to_vec()
        })
        .collect();
    let total_volume: f64 = names
        .iter()
        .zip(&series)
        .zip(&values)
        .filter(|((m, s), _)| m.as_deref() == Some("volume") && s.as_deref() == Some("total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total_volume as u64, summary["records"].as_u64().expect("records"));
    let incidents = read_dataset(&data.join("incidents"));
    let ids = strings(&incidents, "incident_id");
    assert_eq!(ids.len(), summary["incidents"].as_array().expect("list").len());
    // A second run over the same records gives the same incidents.
    loglens()
        .args(["detect", "--data-dir"])
        .arg(&data)
        .assert()
        .success();
    assert_eq!(
        strings(&read_dataset(&data.join("incidents")), "incident_id"),
        ids
    );
}

/// Every file below `dir` with its bytes.
fn files_with_bytes(dir: &Path) -> BTreeMap<std::path::PathBuf, Vec<u8>> {
    common::parquet_files(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).expect("part file");
            (f, bytes)
        })
        .collect()
}

#[test]
fn incremental_runs_give_the_ids_and_templates_of_one_run_and_never_rewrite_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gen = dir.path().join("gen");
    loglens()
        .args(["generate", "--lines", "8000", "--duration", "1d", "--seed", "9"])
        .args(["--formats", "syslog3164", "--corrupt-rate", "0", "--out"])
        .arg(&gen)
        .assert()
        .success();
    let log = std::fs::read_dir(gen.join("logs"))
        .expect("logs")
        .flat_map(|h| std::fs::read_dir(h.expect("host").path()).expect("host dir"))
        .map(|f| f.expect("file").path())
        .next()
        .expect("a log file");
    let text = std::fs::read_to_string(&log).expect("log text");
    let lines: Vec<&str> = text.lines().collect();
    // Pieces of uneven size, the first small so later messages generalize its templates.
    let cuts = [0, 40, lines.len() / 3, lines.len() / 2 + 7, lines.len()];
    let growing = dir.path().join("syslog");
    let run = |data: &Path| {
        loglens()
            .arg("process")
            .arg(&growing)
            .arg("--data-dir")
            .arg(data)
            .assert()
            .success();
    };
    let incremental = dir.path().join("incremental");
    let mut first_run_files = BTreeMap::new();
    let mut file = std::fs::File::create(&growing).expect("log");
    for piece in cuts.windows(2) {
        use std::io::Write;
        for line in &lines[piece[0]..piece[1]] {
            writeln!(file, "{line}").expect("append");
        }
        file.flush().expect("flush");
        run(&incremental);
        if first_run_files.is_empty() {
            first_run_files = files_with_bytes(&incremental.join("records"));
        }
    }
    let whole = dir.path().join("whole");
    run(&whole);
    let (inc, one) = (mined(&incremental), mined(&whole));
    assert_eq!(inc.ids.len(), lines.len());
    assert_eq!(inc.ids, one.ids, "the same ids on each record");
    assert_eq!(
        inc.canonical, one.canonical,
        "the same current template of each record"
    );
    assert_eq!(inc.templates, one.templates, "the same templates dataset");
    assert!(
        one.templates.iter().any(|t| t.0 != t.1 && t.3 > 0),
        "some id written early generalized later"
    );
    let after = files_with_bytes(&incremental.join("records"));
    assert!(!first_run_files.is_empty());
    for (path, bytes) in &first_run_files {
        assert_eq!(after.get(path), Some(bytes), "{} was rewritten", path.display());
    }
    // The saved tree has seen every message of every run.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(incremental.join("state/miner.json")).expect("miner state"))
            .expect("json");
    let mined_messages: u64 = state["miner"]["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(mined_messages, lines.len() as u64);
}
