//! End-to-end causality of `loglens detect`: the incidents of the first day of a generated data
//! set are the same whether or not the second day's records are in the data directory.

mod common;

use std::io::Write;
use std::path::Path;

use common::{copy_dir, json_of, loglens, read_dataset, strings, u64s};
use serde_json::Value;

/// Buckets after an incident's last one during which it may still grow (merge gap + 1), in
/// seconds at the default 1-minute buckets.
const REACH_SECS: i64 = 6 * 60;

/// `loglens detect --json` on `data`: its incidents.
fn incidents(data: &Path) -> Vec<Value> {
    incidents_with(data, &[])
}

/// `loglens detect --json ARGS` on `data`: its incidents.
fn incidents_with(data: &Path, args: &[&str]) -> Vec<Value> {
    let summary = json_of(
        loglens()
            .args(["detect", "--json", "--limit", "100000"])
            .args(args)
            .arg("--data-dir")
            .arg(data),
    );
    summary["incidents"].as_array().expect("incidents").clone()
}

/// Two generated days of `lines` lines (seed `seed`) in `dir/gen`, processed into
/// `dir/<data>`; that data directory.
fn two_days_processed(dir: &Path, lines: &str, seed: &str, data: &str) -> std::path::PathBuf {
    let generated = dir.join("gen");
    loglens()
        .args([
            "generate",
            "--lines",
            lines,
            "--duration",
            "2d",
            "--seed",
            seed,
            "--out",
        ])
        .arg(&generated)
        .assert()
        .success();
    let processed = dir.join(data);
    loglens()
        .args(["process", "--data-dir"])
        .arg(&processed)
        .arg(generated.join("logs"))
        .assert()
        .success();
    processed
}

/// Incidents that ended at least [`REACH_SECS`] before `cut`: no later bucket can change them.
fn settled(incidents: &[Value], cut: &str) -> Vec<Value> {
    let secs = |s: &str| {
        loglens_core::Timestamp::parse_rfc3339(s, 0)
            .expect("rfc3339")
            .secs()
    };
    let cut = secs(cut);
    let mut out: Vec<Value> = incidents
        .iter()
        .filter(|i| secs(i["end"].as_str().expect("end")) + REACH_SECS <= cut)
        .cloned()
        .collect();
    out.sort_by_key(|i| i["incident_id"].as_str().map(str::to_owned));
    out
}

#[test]
fn first_day_incidents_do_not_depend_on_the_second_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = two_days_processed(dir.path(), "120000", "5", "whole");
    // Records are partitioned by day and hour of their timestamps, so the first day's
    // partitions are exactly the records before the cut.
    let half = dir.path().join("half");
    copy_dir(&whole.join("templates"), &half.join("templates"));
    copy_dir(
        &whole.join("records/date=2026-11-01"),
        &half.join("records/date=2026-11-01"),
    );
    let cut = "2026-11-02T00:00:00Z";
    let first_day = settled(&incidents(&half), cut);
    assert_eq!(first_day, settled(&incidents(&whole), cut));
    assert!(
        first_day.len() >= 3,
        "too few incidents to compare: {first_day:?}"
    );
}

/// Every generated file's lines, by path relative to `logs/`, with each line's time (seconds).
fn timed_lines(logs: &Path) -> Vec<(std::path::PathBuf, Vec<(i64, String)>)> {
    let mut files = Vec::new();
    let mut dirs = vec![logs.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("log text");
            let lines = text
                .lines()
                .map(|line| {
                    let v: Value = serde_json::from_str(line).expect("json line");
                    let ts = v["ts"].as_str().expect("ts");
                    let secs = loglens_core::Timestamp::parse_rfc3339(ts, 0)
                        .expect("rfc3339")
                        .secs();
                    (secs, line.to_owned())
                })
                .collect();
            (path.strip_prefix(logs).expect("below").to_owned(), lines)
        })
        .collect()
}

/// Processes the lines before each cut in `cuts` (seconds) as one run each: every file gets its
/// lines up to the first one at or after the cut appended, then `process --detect` runs.
fn process_in_runs(files: &[(std::path::PathBuf, Vec<(i64, String)>)], dir: &Path, cuts: &[i64]) {
    let live = dir.join("live");
    let data = dir.join("data");
    let mut taken = vec![0usize; files.len()];
    for &cut in cuts {
        for ((rel, lines), taken) in files.iter().zip(&mut taken) {
            let path = live.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("open");
            let end = lines[*taken..]
                .iter()
                .position(|(ts, _)| *ts >= cut)
                .map_or(lines.len(), |n| *taken + n);
            for (_, line) in &lines[*taken..end] {
                writeln!(f, "{line}").expect("append");
            }
            *taken = end;
        }
        loglens()
            .args(["process", "--detect", "--threads", "2", "--data-dir"])
            .arg(&data)
            .arg(&live)
            .assert()
            .success();
    }
}

/// A timestamp column's microseconds, all batches in order.
fn micros(batches: &[arrow_array::RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .expect("column")
                .as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .expect("timestamp")
                .values()
                .to_vec()
        })
        .collect()
}

/// What detection wrote, as sorted rows: metrics (metric, series, ts, value), template series
/// resolved through `templates/` to the template each id belongs to now (as every reader does),
/// and incidents (id, start, end, severity).
fn detected(data: &Path) -> (Vec<String>, Vec<String>) {
    let templates = read_dataset(&data.join("templates"));
    let canonical: std::collections::HashMap<u64, u64> = u64s(&templates, "template_id")
        .into_iter()
        .zip(u64s(&templates, "canonical_id"))
        .filter_map(|(id, to)| Some((id?, to?)))
        .collect();
    let resolve = |series: String| match series
        .strip_prefix("template=")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
    {
        Some(id) => format!("template={:016x}", canonical.get(&id).copied().unwrap_or(id)),
        None => series,
    };
    let metrics = read_dataset(&data.join("metrics"));
    let names = strings(&metrics, "metric");
    let series = strings(&metrics, "series");
    let ts = micros(&metrics, "ts");
    let values: Vec<f64> = metrics
        .iter()
        .flat_map(|b| {
            b.column_by_name("value")
                .expect("value")
                .as_any()
                .downcast_ref::<arrow_array::Float64Array>()
                .expect("f64")
                .values()
                .to_vec()
        })
        .collect();
    let mut summed: std::collections::BTreeMap<(String, String, i64), f64> = Default::default();
    for i in 0..values.len() {
        let key = (
            names[i].clone().expect("metric"),
            resolve(series[i].clone().expect("series")),
            ts[i],
        );
        *summed.entry(key).or_default() += values[i];
    }
    let points: Vec<String> = summed
        .into_iter()
        .map(|((m, s, t), v)| format!("{m} {s} {t} {v}"))
        .collect();
    let incidents = read_dataset(&data.join("incidents"));
    let ids = strings(&incidents, "incident_id");
    let severities = strings(&incidents, "severity");
    let detectors = strings(&incidents, "detector");
    let (starts, ends) = (micros(&incidents, "start"), micros(&incidents, "end"));
    let mut rows: Vec<String> = (0..ids.len())
        .map(|i| {
            let (id, detector) = (ids[i].as_deref(), detectors[i].as_deref());
            let (id, detector) = (id.unwrap_or("-"), detector.unwrap_or("-"));
            format!("{detector} {id} {} {} {:?}", starts[i], ends[i], severities[i])
        })
        .collect();
    rows.sort();
    (points, rows)
}

#[test]
fn a_week_in_one_run_in_daily_runs_and_in_hourly_runs_detects_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = dir.path().join("gen");
    loglens()
        .args(["generate", "--lines", "12000", "--duration", "7d", "--seed", "5"])
        .args(["--formats", "json", "--corrupt-rate", "0", "--out"])
        .arg(&generated)
        .assert()
        .success();
    // One file in time order: templates depend on the order lines arrive in, and runs cut at
    // different times interleave several files differently (a handful of lines in 12,000 then
    // mine to a sibling template); the property under test is the same input, the same output.
    let mut lines: Vec<(i64, String)> = timed_lines(&generated.join("logs"))
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .collect();
    lines.sort_by_key(|(ts, _)| *ts);
    let files = vec![(std::path::PathBuf::from("all/app.jsonl"), lines)];
    let start = loglens_core::Timestamp::parse_rfc3339("2026-11-01T00:00:00Z", 0)
        .expect("start")
        .secs();
    let end = start + 7 * 86_400;
    let every = |step: i64| -> Vec<i64> { (1..=(end - start) / step).map(|k| start + k * step).collect() };
    let mut results = Vec::new();
    for (name, cuts) in [
        ("one", vec![end]),
        ("daily", every(86_400)),
        ("hourly", every(3_600)),
    ] {
        let run_dir = dir.path().join(name);
        process_in_runs(&files, &run_dir, &cuts);
        results.push((name, detected(&run_dir.join("data"))));
    }
    let (_, (points, incidents)) = &results[0];
    assert!(points.len() > 10_000, "{} metric points", points.len());
    assert!(!incidents.is_empty());
    for (name, (p, i)) in &results[1..] {
        // Not assert_eq: a diff of 300k lines helps no one; the first rows that differ do.
        let (mine, theirs): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
            (p.iter().collect(), points.iter().collect());
        let only: Vec<_> = mine.symmetric_difference(&theirs).take(6).collect();
        assert!(
            p == points,
            "{name}: metrics differ from one run's ({} vs {} points), first differences: {only:?}",
            p.len(),
            points.len()
        );
        // New-template incidents are judged against the templates known when their bucket is
        // judged: hourly runs judge before later lines generalize a template, or show a new
        // word to be one more value of a known template's variable (see the README). Such an
        // incident can also join a correlated one, which then starts earlier, never later.
        let settled = |rows: &[String]| -> Vec<(String, i64)> {
            let keep = |r: &&String| *name != "hourly" || !r.starts_with("new_template ");
            rows.iter()
                .filter(keep)
                .map(|r| {
                    let f: Vec<&str> = r.split(' ').collect();
                    let start = f[2].parse().expect("start");
                    (format!("{} {} {} {}", f[0], f[1], f[3], f[4]), start)
                })
                .collect()
        };
        let (ours, theirs) = (settled(i), settled(incidents));
        let keys = |rows: &[(String, i64)]| rows.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&ours),
            keys(&theirs),
            "{name}: incidents differ from one run's"
        );
        for ((key, start), (_, one)) in ours.iter().zip(&theirs) {
            let earlier = *name == "hourly" && start <= one;
            assert!(
                start == one || earlier,
                "{name}: {key} starts at {start}, one run's at {one}"
            );
        }
    }
}

/// JSON lines of service `api`, one every `step` seconds over [`from`, `to`) seconds after
/// 2026-11-01T12:00:00Z.
fn api_lines(path: &Path, from: u32, to: u32, step: u32) {
    let mut out = std::fs::File::create(path).expect("create");
    for t in (from..to).step_by(step as usize) {
        let (h, m, s) = (12 + t / 3600, (t / 60) % 60, t % 60);
        writeln!(
            out,
            r#"{{"ts":"2026-11-01T{h:02}:{m:02}:{s:02}Z","level":"info","msg":"request served","service":"api"}}"#
        )
        .expect("write");
    }
}

/// The summed rollup records of bucket `ts_micros`.
fn rollup_records(data: &Path, ts_micros: i64) -> u64 {
    let counts = read_dataset(&data.join("rollups").join("counts"));
    let ts = micros(&counts, "ts");
    let records = u64s(&counts, "records");
    ts.iter()
        .zip(records)
        .filter(|(t, _)| **t == ts_micros)
        .map(|(_, n)| n.unwrap_or(0))
        .sum()
}

#[test]
fn late_records_are_counted_and_rolled_up_but_never_rejudged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let run = |file: &str| {
        loglens()
            .args(["process", "--final", "--data-dir"])
            .arg(&data)
            .arg(tmp.path().join(file))
            .assert()
            .success();
        json_of(loglens().args(["detect", "--json", "--data-dir"]).arg(&data))
    };
    // An hour at one line every 5 s: buckets up to 12:57 are judged (latest 12:59:55 - 2 min).
    api_lines(&tmp.path().join("hour.log"), 0, 3600, 5);
    let first = run("hour.log");
    assert_eq!(first["late_records"], 0, "{first}");
    let bucket = 1_793_535_000_i64 * 1_000_000; // 12:10:00Z, judged
    let volume = |data: &Path| {
        detected(data)
            .0
            .into_iter()
            .find(|p| p.starts_with(&format!("volume total {bucket} ")))
            .expect("the 12:10 volume point")
    };
    let judged = volume(&data);
    assert_eq!(judged, format!("volume total {bucket} 12"));
    assert_eq!(rollup_records(&data, bucket), 12);

    // 30 lines for 12:10 arrive late, with 6 new ones at 13:00.
    let mut late = std::fs::read_to_string({
        api_lines(&tmp.path().join("late.log"), 600, 630, 1);
        tmp.path().join("late.log")
    })
    .expect("read");
    api_lines(&tmp.path().join("new.log"), 3600, 3606, 1);
    late.push_str(&std::fs::read_to_string(tmp.path().join("new.log")).expect("read"));
    std::fs::write(tmp.path().join("more.log"), late).expect("write");
    let second = run("more.log");
    assert_eq!(
        (
            &second["records"],
            &second["late_records"],
            &second["late_records_total"]
        ),
        (
            &serde_json::json!(36),
            &serde_json::json!(30),
            &serde_json::json!(30)
        ),
        "{second}"
    );
    // The judged bucket keeps its verdict and metric; the rollups (sums) count the late lines.
    assert_eq!(volume(&data), judged);
    assert_eq!(rollup_records(&data, bucket), 42);
}

#[test]
fn a_damaged_partial_is_named_and_a_rebuild_recovers_every_incident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let intact = two_days_processed(dir.path(), "60000", "9", "intact");
    let damaged = dir.path().join("damaged");
    copy_dir(&intact, &damaged);
    let mut saved: Vec<_> = std::fs::read_dir(damaged.join("state/partials"))
        .expect("partials")
        .map(|e| e.expect("entry").path())
        .collect();
    saved.sort();
    let victim = saved.last().expect("a saved partial");
    let bytes = std::fs::read(victim).expect("read");
    std::fs::write(victim, &bytes[..bytes.len() / 2]).expect("truncate");

    let failed = loglens()
        .args(["detect", "--data-dir"])
        .arg(&damaged)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    let name = victim.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        stderr.contains(name) && stderr.contains("detect --rebuild"),
        "{stderr}"
    );
    assert!(
        !damaged.join("state/detect.json").exists(),
        "a failed run saved detect state"
    );

    let ids = |incidents: Vec<Value>| {
        let mut ids: Vec<String> = (incidents.iter())
            .filter_map(|i| i["incident_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    let want = ids(incidents(&intact));
    assert!(want.len() >= 3, "too few incidents to compare: {want:?}");
    assert_eq!(ids(incidents_with(&damaged, &["--rebuild"])), want);
}

#[test]
fn commands_that_read_a_data_directory_stop_where_there_is_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("typo");
    let config = dir.path().join("loglens.toml");
    std::fs::write(
        &config,
        "[[rule]]\nname = \"all\"\nkind = \"incident\"\nreceivers = [\"hook\"]\n\n[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    )
    .expect("config");
    let commands: [&[&str]; 3] = [&["detect"], &["alert", "run", "--config"], &["compact"]];
    for args in commands {
        let mut command = loglens();
        command.args(args);
        if args.contains(&"--config") {
            command.arg(&config);
        }
        let failed = command.arg("--data-dir").arg(&missing).assert().failure();
        let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
        assert!(
            stderr.contains(&format!("no data directory at {}", missing.display())),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created the data directory");
    }
}
