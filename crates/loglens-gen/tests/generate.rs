//! End-to-end checks of `loglens generate`'s writer: determinism, the manifest's exact counts,
//! the ground truth, time order, silent hosts, the format filter, mtimes and the config file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use loglens_core::format::{Format, ParseContext};
use loglens_core::Timestamp;
use loglens_gen::{generate, generate_with_threads, GenOptions, GenerateSummary};
use serde_json::Value;

fn options() -> GenOptions {
    GenOptions {
        lines: 20_000,
        duration_secs: 8 * 3600,
        corrupt_rate: 0.002,
        ..GenOptions::default()
    }
}

fn run(dir: &Path, options: GenOptions) -> GenerateSummary {
    generate(dir, options).expect("generate succeeds")
}

/// Every file under `dir`, relative path to bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("inside root").to_owned();
                out.insert(rel, fs::read(&path).expect("readable file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).expect("readable")).expect("valid JSON")
}

fn rfc3339(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().expect("a string"), 0).expect("RFC 3339")
}

fn mtime(path: &Path) -> Timestamp {
    let modified = fs::metadata(path).expect("metadata").modified().expect("mtime");
    let micros = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros();
    Timestamp(i64::try_from(micros).expect("in range"))
}

/// Each line of a file with its parsed time (`None` when it does not parse).
type ParsedLines = Vec<(String, Option<Timestamp>)>;

/// Parses every line of every file in the manifest: (file entry, its lines).
fn parse_all(dir: &Path) -> Vec<(Value, ParsedLines)> {
    let manifest = json(&dir.join("manifest.json"));
    let files = manifest["files"].as_array().expect("files").clone();
    files
        .into_iter()
        .map(|entry| {
            let path = dir.join(entry["path"].as_str().expect("path"));
            let format: Format = entry["format"]
                .as_str()
                .expect("format")
                .parse()
                .expect("known format");
            let parser = format.parser();
            let ctx = ParseContext {
                reference: mtime(&path),
                zone: loglens_core::zone::LocalZone::Unknown,
            };
            let text = fs::read_to_string(&path).expect("UTF-8 file");
            let lines = text
                .lines()
                .map(|line| (line.to_owned(), parser.parse(line, &ctx).ok().map(|r| r.ts)))
                .collect();
            (entry, lines)
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, b, c) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    generate_with_threads(a.path(), options(), 1).expect("one thread");
    generate_with_threads(b.path(), options(), 3).expect("three threads");
    run(
        c.path(),
        GenOptions {
            seed: 4242,
            ..options()
        },
    );
    let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert_eq!(ta.len(), 24 + 3, "24 log files, manifest, ground truth, config");
    assert_eq!(
        ta, tb,
        "same seed and options give byte-identical output, whatever the thread count"
    );
    let web = Path::new("logs/web-01/access.log");
    assert_ne!(ta[web], tc[web], "another seed gives other lines");
    assert_ne!(
        ta[Path::new("ground_truth.json")],
        tc[Path::new("ground_truth.json")]
    );
}

#[test]
fn manifest_counts_ground_truth_order_silence_and_mtimes() {
    let dir = tempfile::tempdir().expect("tmp");
    let summary = run(dir.path(), options());
    let manifest = json(&dir.path().join("manifest.json"));
    let parsed = parse_all(dir.path());
    assert_eq!(parsed.len(), 24);

    // Exact counts: lines, and damaged lines = lines the format's parser rejects.
    let (mut total, mut total_corrupt) = (0, 0);
    for (entry, lines) in &parsed {
        let path = entry["path"].as_str().expect("path");
        let failed = lines.iter().filter(|(_, ts)| ts.is_none()).count() as u64;
        assert_eq!(
            lines.len() as u64,
            entry["lines"].as_u64().expect("lines"),
            "{path}"
        );
        assert_eq!(
            failed,
            entry["corrupt_lines"].as_u64().expect("corrupt"),
            "{path}: {:?}",
            lines
                .iter()
                .filter(|(_, ts)| ts.is_none())
                .map(|(l, _)| l)
                .take(3)
                .collect::<Vec<_>>()
        );
        total += lines.len() as u64;
        total_corrupt += failed;
        // Time order within the file.
        let times: Vec<Timestamp> = lines.iter().filter_map(|(_, ts)| *ts).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{path} is not in time order"
        );
        // The mtime is the last line's time (the line itself may carry less precision).
        let last = rfc3339(&entry["last"]);
        assert_eq!(mtime(&dir.path().join(path)), last, "{path}");
        if let Some(&end) = times.last() {
            assert!(
                end <= last && last.0 - end.0 < 1_000_000,
                "{path}: last line {end} vs {last}"
            );
        }
    }
    assert_eq!(manifest["totals"]["lines"].as_u64(), Some(total));
    assert_eq!(manifest["totals"]["corrupt_lines"].as_u64(), Some(total_corrupt));
    assert_eq!(summary.lines(), total);
    assert!(
        (14_000..26_000).contains(&total),
        "{total} lines for a target of 20000"
    );
    assert!(
        total_corrupt > 0 && total_corrupt < total / 100,
        "{total_corrupt} damaged of {total}"
    );
    let by_format: u64 = manifest["totals"]["lines_by_format"]
        .as_object()
        .expect("map")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_format, total);

    // Ground truth: every kind, inside the span, host only for host_silent, no overlaps.
    let truth = json(&dir.path().join("ground_truth.json"));
    let incidents = truth.as_array().expect("an array");
    let span_start = rfc3339(&manifest["options"]["start"]);
    let span_end = rfc3339(&manifest["options"]["end"]);
    assert_eq!(span_end.0 - span_start.0, 8 * 3600 * 1_000_000);
    let mut kinds: Vec<&str> = incidents
        .iter()
        .map(|i| i["kind"].as_str().expect("kind"))
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "error_burst",
            "host_silent",
            "latency_spike",
            "new_error",
            "traffic_drop"
        ]
    );
    let mut previous_end = span_start;
    for i in incidents {
        let (start, end) = (rfc3339(&i["start"]), rfc3339(&i["end"]));
        assert!(previous_end <= start && start < end && end <= span_end, "{i}");
        previous_end = end;
        assert!(i["service"].is_string() && i["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(i["host"].is_string(), i["kind"] == "host_silent", "{i}");
    }

    // A silent host writes nothing, in any of its files, during its window.
    let silent = incidents
        .iter()
        .find(|i| i["kind"] == "host_silent")
        .expect("host_silent");
    let host = silent["host"].as_str().expect("host");
    let (from, to) = (rfc3339(&silent["start"]), rfc3339(&silent["end"]));
    let mut host_lines = 0;
    for (entry, lines) in &parsed {
        if entry["host"] != host {
            continue;
        }
        for (line, ts) in lines {
            if let Some(ts) = ts {
                host_lines += 1;
                assert!(*ts < from || *ts >= to, "{host} wrote during its silence: {line}");
            }
        }
    }
    assert!(host_lines > 0, "{host} writes outside its silence");
}

#[test]
fn access_logs_alone_have_a_sane_status_mix_and_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let summary = run(
        dir.path(),
        GenOptions {
            formats: vec![Format::Combined],
            lines: 30_000,
            ..options()
        },
    );
    let files: Vec<&str> = summary.files.iter().map(|f| f.stream.path.as_str()).collect();
    assert_eq!(
        files,
        [
            "logs/web-01/access.log",
            "logs/web-02/access.log",
            "logs/web-03/access.log",
            "logs/api-01/access.log",
            "logs/api-02/access.log"
        ]
    );
    let logs: Vec<PathBuf> = fs::read_dir(dir.path().join("logs/web-01"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(logs.len(), 1, "no syslog in a combined-only run: {logs:?}");

    // Status mix outside incidents that raise errors.
    let noisy: Vec<(Timestamp, Timestamp)> = summary
        .incidents
        .iter()
        .filter(|i| matches!(i.kind.name(), "error_burst" | "new_error"))
        .map(|i| (i.start, i.end))
        .collect();
    let parser = Format::Combined.parser();
    let mut classes = [0u64; 6];
    for f in &summary.files {
        let text = fs::read_to_string(dir.path().join(&f.stream.path)).expect("readable");
        for line in text.lines() {
            let Ok(r) = parser.parse(line, &ParseContext::default()) else {
                continue;
            };
            if noisy.iter().any(|&(s, e)| r.ts >= s && r.ts < e) {
                continue;
            }
            let access = r.access.expect("access fields");
            assert!(access.latency_ms.is_some() && access.user_agent.is_some() && access.method.is_some());
            classes[usize::from(access.status / 100)] += 1;
        }
    }
    let n: u64 = classes.iter().sum();
    let share = |c: usize| classes[c] as f64 / n as f64;
    assert!(n > 20_000, "{n} access lines");
    assert!((0.88..0.98).contains(&share(2)), "2xx {:.3}", share(2));
    assert!((0.01..0.08).contains(&share(3)), "3xx {:.3}", share(3));
    assert!((0.005..0.05).contains(&share(4)), "4xx {:.3}", share(4));
    assert!(share(5) < 0.005, "5xx {:.4}", share(5));

    // The config names every file with its format and labels, relative to itself.
    let config = loglens_engine::Config::load(&dir.path().join("loglens.toml")).expect("a valid config");
    assert_eq!(config.inputs.len(), 5);
    for (input, f) in config.inputs.iter().zip(&summary.files) {
        assert_eq!(input.path, Path::new(&f.stream.path));
        assert!(config.base_dir.join(&input.path).is_file());
        assert_eq!(input.format.as_deref(), Some("combined"));
        assert_eq!(input.host.as_deref(), Some(f.stream.host.as_str()));
        assert_eq!(input.service.as_deref(), Some(f.stream.service.as_str()));
    }
}

#[test]
fn bad_options_and_paths_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = generate(
        dir.path(),
        GenOptions {
            formats: vec![Format::Common],
            ..options()
        },
    )
    .expect_err("no common stream");
    assert!(err.to_string().contains("common"), "{err}");
    let file = dir.path().join("a-file");
    fs::write(&file, "x").expect("writable");
    let err = generate(&file, options()).expect_err("cannot write under a file");
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[test]
fn no_incidents_gives_an_empty_ground_truth() {
    let dir = tempfile::tempdir().expect("tmp");
    let summary = run(
        dir.path(),
        GenOptions {
            incidents: false,
            lines: 2_000,
            corrupt_rate: 0.0,
            ..options()
        },
    );
    assert!(summary.incidents.is_empty());
    assert_eq!(summary.corrupt_lines(), 0);
    assert_eq!(json(&dir.path().join("ground_truth.json")), Value::Array(vec![]));
}
