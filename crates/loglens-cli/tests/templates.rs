//! End-to-end: template mining inside `process` (same templates and ids on 1 and 2 threads,
//! every record labelled), `loglens templates`, and `loglens detect` writing its datasets.

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

/// The template id of each record, by (source, line).
type RecordTemplates = BTreeMap<(String, u64), Option<u64>>;
/// The templates dataset as (id, template, count) rows.
type TemplateRows = Vec<(u64, String, u64)>;

/// What a run mined: record labels and the templates dataset.
fn mined(data: &Path) -> (RecordTemplates, TemplateRows) {
    let records = read_dataset(&data.join("records"));
    let sources = strings(&records, "source");
    let lines = u64s(&records, "line");
    let ids = u64s(&records, "template_id");
    let by_line = sources
        .into_iter()
        .zip(lines)
        .zip(ids)
        .map(|((s, l), id)| ((s.unwrap_or_default(), l.unwrap_or_default()), id))
        .collect();
    let templates = read_dataset(&data.join("templates"));
    let rows = u64s(&templates, "template_id")
        .into_iter()
        .zip(strings(&templates, "template"))
        .zip(u64s(&templates, "count"))
        .map(|((id, t), n)| {
            (
                id.unwrap_or_default(),
                t.unwrap_or_default(),
                n.unwrap_or_default(),
            )
        })
        .collect();
    (by_line, rows)
}

#[test]
fn templates_do_not_depend_on_threads_and_label_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gen = dir.path().join("gen");
    generate(&gen);
    process(&gen, &dir.path().join("one"), "1");
    process(&gen, &dir.path().join("two"), "2");
    let (one_ids, one_templates) = mined(&dir.path().join("one"));
    let (two_ids, two_templates) = mined(&dir.path().join("two"));
    assert_eq!(one_templates, two_templates);
    assert_eq!(one_ids, two_ids);
    assert!(
        one_ids.values().all(Option::is_some),
        "every record has a template"
    );
    let total: u64 = one_templates.iter().map(|t| t.2).sum();
    assert_eq!(
        total,
        one_ids.len() as u64,
        "template counts add up to the records"
    );
    assert!(
        one_templates.len() < 550,
        "ids with digits vary: {} templates for 20k lines",
        one_templates.len()
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
    let most = one_templates
        .iter()
        .max_by_key(|t| (t.2, std::cmp::Reverse(t.0)))
        .expect("a template");
    assert_eq!(rows[0]["template"], most.1.as_str());
    assert_eq!(rows[0]["count"], most.2);

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

#[test]
fn an_incremental_run_continues_the_template_tree() {
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
    let half = lines.len() / 2;
    let growing = dir.path().join("syslog");
    std::fs::write(&growing, lines[..half].join("\n") + "\n").expect("first half");
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
    run(&incremental);
    std::fs::write(&growing, lines.join("\n") + "\n").expect("whole file");
    run(&incremental);
    let whole = dir.path().join("whole");
    run(&whole);
    let (inc_ids, _) = mined(&incremental);
    let (whole_ids, _) = mined(&whole);
    let second_half = |ids: &RecordTemplates| -> Vec<Option<u64>> {
        ids.iter()
            .filter(|((_, line), _)| *line > half as u64)
            .map(|(_, id)| *id)
            .collect()
    };
    assert_eq!(second_half(&inc_ids).len(), lines.len() - half);
    assert_eq!(second_half(&inc_ids), second_half(&whole_ids));
    // The saved tree has seen every message of both runs, not only the second run's.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(incremental.join("state/miner.json")).expect("miner state"))
            .expect("json");
    let mined_messages: u64 = state["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(mined_messages, lines.len() as u64);
}
