//! The one-pass pipeline end to end on the library API: records, their template ids and
//! parameters, and the templates dataset do not depend on the thread count or on how the input
//! is cut into chunks (chunks of a few lines arrive at the template stage out of order), and
//! without template mining every line is still written.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, ListArray, StringArray, UInt64Array};
use loglens_core::partial::MetricPartial;
use loglens_core::template::TemplateStats;
use loglens_engine::input::InputFile;
use loglens_engine::input::Parsers;
use loglens_engine::{partials, process, Config, ProcessOptions};
use loglens_store::{column, parquet_files, read_columns, read_templates};

/// JSON lines whose messages generalize as the input goes on, with an unparsable line and one
/// of invalid UTF-8 among them.
fn write_log(path: &Path) {
    let mut text = Vec::new();
    for i in 0..1500u32 {
        let message = match i % 5 {
            0 => "Job alpha finished".to_owned(),
            1 => format!("Job run{i} finished"),
            2 => format!("connection from 10.0.{}.{} closed after {}ms", i % 7, i % 250, i),
            3 => format!("user u{} logged in from host-{}", 1000 + i, i % 13),
            _ => format!("cache {} evicted {} keys", ["warm", "cold"][(i % 2) as usize], i),
        };
        let ts = format!(
            "2026-11-01T{:02}:{:02}:{:02}Z",
            i / 3600 % 24,
            i / 60 % 60,
            i % 60
        );
        text.extend_from_slice(format!(r#"{{"ts":"{ts}","level":"info","message":"{message}"}}"#).as_bytes());
        text.push(b'\n');
        if i == 700 {
            text.extend_from_slice(b"not json at all\n");
            text.extend_from_slice(
                b"{\"ts\":\"2026-11-01T00:11:40Z\",\"level\":\"info\",\"message\":\"bad \xff byte\"}\n",
            );
        }
    }
    std::fs::write(path, text).unwrap();
}

fn run(
    log: &Path,
    data: &Path,
    threads: usize,
    chunk_bytes: usize,
    mine: bool,
) -> loglens_engine::ProcessSummary {
    run_with(log, data, threads, chunk_bytes, mine, |_| ())
}

fn run_with(
    log: &Path,
    data: &Path,
    threads: usize,
    chunk_bytes: usize,
    mine: bool,
    adjust: impl FnOnce(&mut ProcessOptions),
) -> loglens_engine::ProcessSummary {
    let parsers = Parsers::from_config(&Config::default()).unwrap();
    let input = InputFile {
        path: log.to_owned(),
        parser: parsers.by_name("json"),
        host: None,
        service: Some("app".into()),
    };
    let mut options = ProcessOptions::new(vec![input], parsers, data.to_owned());
    options.threads = threads;
    options.chunk_bytes = chunk_bytes;
    options.mine_templates = mine;
    adjust(&mut options);
    process(options, format!("t{threads}")).unwrap()
}

/// Every saved metric partial of a data directory, merged, and how many there were.
fn merged_partials(data: &Path) -> (MetricPartial, usize) {
    let saved = partials::list(&data.join("state")).unwrap();
    let mut merged = MetricPartial::new(60);
    for (_, path) in &saved {
        merged.merge(partials::load(path).unwrap()).unwrap();
    }
    (merged, saved.len())
}

/// Each record's (template id, parameters), by line.
type Labelled = BTreeMap<u64, (Option<u64>, Option<Vec<String>>)>;

fn records(data: &Path) -> Labelled {
    let mut out = BTreeMap::new();
    for file in parquet_files(&data.join("records")).unwrap() {
        read_columns(&file, &["line", "template_id", "params"], |batch| {
            let line = column::<UInt64Array>(&file, batch, "line")?;
            let id = column::<UInt64Array>(&file, batch, "template_id")?;
            let params = column::<ListArray>(&file, batch, "params")?;
            for i in 0..batch.num_rows() {
                let values = (!params.is_null(i)).then(|| {
                    let list = params.value(i);
                    let list = list.as_any().downcast_ref::<StringArray>().unwrap();
                    (0..list.len()).map(|j| list.value(j).to_owned()).collect()
                });
                out.insert(line.value(i), ((!id.is_null(i)).then(|| id.value(i)), values));
            }
            Ok(())
        })
        .unwrap();
    }
    out
}

fn templates(data: &Path) -> Vec<TemplateStats> {
    read_templates(&data.join("templates")).unwrap()
}

#[test]
fn full_worker_partials_are_saved_as_parts_that_merge_into_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let (whole_dir, parts_dir) = (dir.path().join("whole"), dir.path().join("parts"));
    run(&log, &whole_dir, 1, 1 << 20, true);
    run_with(&log, &parts_dir, 2, 4096, true, |o| o.partial_cells = 8);
    let (whole, files) = merged_partials(&whole_dir);
    assert_eq!((whole.records(), files), (1501, 1));
    let (merged, files) = merged_partials(&parts_dir);
    assert!(files > 8, "{files} partial files");
    assert_eq!(merged, whole);
    let detected = loglens_engine::detect::detect(&parts_dir, &Config::default().detect, "d1", None).unwrap();
    assert_eq!(
        (detected.partials_consumed, detected.runs_consumed),
        (files as u64, 1)
    );
    assert_eq!((detected.records, detected.rebuilt), (1501, None));
}

#[test]
fn records_and_templates_do_not_depend_on_threads_or_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let one = run(&log, &dir.path().join("one"), 1, 1 << 20, true);
    let many = run(&log, &dir.path().join("many"), 3, 300, true);
    assert_eq!(one.parsed_total(), 1501);
    assert_eq!((one.unparsed_total(), one.invalid_utf8), (1, 1));
    assert_eq!(
        (many.parsed_total(), many.unparsed_total(), many.invalid_utf8),
        (1501, 1, 1)
    );
    assert_eq!(
        (one.templates, one.templates_new),
        (many.templates, many.templates_new)
    );
    let (one_records, many_records) = (
        records(&dir.path().join("one")),
        records(&dir.path().join("many")),
    );
    assert_eq!(one_records.len(), 1501);
    assert!(one_records.values().all(|(id, _)| id.is_some()));
    assert_eq!(one_records, many_records);
    let rows = templates(&dir.path().join("one"));
    assert_eq!(rows, templates(&dir.path().join("many")));
    assert!(
        rows.iter().any(|r| r.id != r.canonical_id),
        "a template generalized"
    );
    assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 1501);
}

#[test]
fn without_templates_every_line_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let data = dir.path().join("data");
    let summary = run(&log, &data, 3, 300, false);
    assert_eq!((summary.records_written, summary.unparsed_written), (1501, 1));
    assert_eq!(summary.lines, 1502);
    let written = records(&data);
    assert_eq!(written.len(), 1501);
    assert!(written
        .values()
        .all(|(id, params)| id.is_none() && params.is_none()));
    assert!(templates(&data).is_empty());
}

#[test]
fn a_write_failure_ends_the_run_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let data = dir.path().join("data");
    // A file where the first partition's directory has to go.
    std::fs::create_dir_all(data.join("records")).unwrap();
    std::fs::write(data.join("records").join("date=2026-11-01"), b"in the way").unwrap();
    let parsers = Parsers::from_config(&Config::default()).unwrap();
    let input = InputFile {
        path: log.clone(),
        parser: parsers.by_name("json"),
        host: None,
        service: None,
    };
    let mut options = ProcessOptions::new(vec![input], parsers, data.clone());
    options.threads = 3;
    options.chunk_bytes = 300;
    let error = process(options, "fail".into()).unwrap_err();
    assert!(error.to_string().contains("date=2026-11-01"), "{error}");
    // Nothing was checkpointed or mined, so the next run reads every line again.
    assert!(!data.join("state").join("miner.json").exists());
}

/// The distributed path in one process: chunks scanned in any order, mined in order, written
/// in groups in reverse order, gives `process`'s records, templates, checkpoints and counts.
/// A run of `options` through the distributed stages, as a cluster's driver and workers run
/// them: chunks scanned out of order, groups written in reverse, everything encoded in
/// between; each group's partial absorbed once (a second time is refused).
fn run_stages(options: &ProcessOptions, run_id: &str) -> loglens_engine::ProcessSummary {
    use loglens_engine::distributed::{
        decode, encode, scan_chunk, write_group, DistributedRun, WorkerContext,
    };
    let mut driver = DistributedRun::begin(options, run_id).unwrap();
    let specs = driver.chunks().to_vec();
    let context = WorkerContext {
        parsers: options.parsers.clone(),
        zone: options.zone,
        max_line_bytes: options.max_line_bytes,
        bucket_secs: options.bucket_secs,
        miner: Some(loglens_engine::miner_config()),
    };
    let mut scans: Vec<_> = specs
        .iter()
        .rev()
        .map(|spec| {
            let (scan, messages) = scan_chunk(spec, &context).unwrap();
            (spec.seq, scan, messages)
        })
        .collect();
    scans.sort_by_key(|s| s.0);
    let mut groups = Vec::new();
    for (seq, scan, messages) in &scans {
        groups.extend(driver.assign(*seq, scan, messages).unwrap());
    }
    groups.extend(driver.remaining_groups());
    let staged = driver.staged_dir().to_owned();
    // Groups and partials travel encoded, as between a cluster's driver and workers.
    for group in groups.iter().rev() {
        let group = decode("group", &encode("group", group).unwrap()).unwrap();
        let partial = write_group(&group, &context, &staged, run_id).unwrap();
        let again = decode("partial", &encode("partial", &partial).unwrap()).unwrap();
        driver.absorb(again).unwrap();
        // A group's partial absorbed twice (a task that ran twice) is refused.
        let twice = decode("partial", &encode("partial", &partial).unwrap()).unwrap();
        assert!(driver.absorb(twice).is_err());
    }
    driver.finish().unwrap()
}

#[test]
fn the_distributed_stages_give_what_process_gives() {
    use loglens_engine::distributed::DistributedRun;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let local = run(&log, &dir.path().join("local"), 2, 1 << 20, true);
    let data = dir.path().join("dist");
    let parsers = Parsers::from_config(&Config::default()).unwrap();
    let input = InputFile {
        path: log.clone(),
        parser: None,
        host: None,
        service: Some("app".into()),
    };
    let mut options = ProcessOptions::new(vec![input], parsers, data.clone());
    options.chunk_bytes = 4000;
    let chunks = DistributedRun::begin(&options, "count").unwrap().chunks().len();
    assert!(chunks > 10, "{chunks} chunks");
    let summary = run_stages(&options, "dist");
    assert_eq!(
        (
            summary.lines,
            summary.bytes,
            summary.parsed_total(),
            summary.unparsed_total()
        ),
        (
            local.lines,
            local.bytes,
            local.parsed_total(),
            local.unparsed_total()
        )
    );
    assert_eq!(summary.invalid_utf8, local.invalid_utf8);
    assert_eq!(
        (summary.templates, summary.templates_new),
        (local.templates, local.templates_new)
    );
    assert_eq!(records(&data), records(&dir.path().join("local")));
    assert_eq!(templates(&data), templates(&dir.path().join("local")));
    let checkpoints = |d: &Path| std::fs::read_to_string(d.join("state").join("checkpoints.json")).unwrap();
    assert_eq!(checkpoints(&data), checkpoints(&dir.path().join("local")));
    // Nothing new: the next distributed run has no chunk to do.
    let again = DistributedRun::begin(&options, "again").unwrap();
    assert!(again.chunks().is_empty());
}

/// Files at the edges of reading (empty, one unterminated line, a last line still being
/// written, a byte-order mark before it, text no format reads): the distributed stages detect
/// and report them as `process` does, with no warning for a file that has nothing to read yet.
#[test]
fn the_distributed_stages_detect_and_report_odd_files_as_process_does() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let access = "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 200 2326 \"-\" \"curl/7.1\"\n";
    let files: [(&str, Vec<u8>); 6] = [
        ("empty.log", Vec::new()),
        ("unterminated.log", b"a line still being written".to_vec()),
        ("bom-only.log", b"\xEF\xBB\xBFhalf a line".to_vec()),
        ("growing.log", format!("{access}{access}half a li").into_bytes()),
        (
            "bom.log",
            format!("\u{feff}{access}sample 2 still bei").into_bytes(),
        ),
        (
            "noise.log",
            b"%%% 1\n%%% 2\n\xff\xfe %%% 3\n%%% unterminated".to_vec(),
        ),
    ];
    for (name, bytes) in &files {
        std::fs::write(logs.join(name), bytes).unwrap();
    }
    let options = |data: &Path| {
        let parsers = Parsers::from_config(&Config::default()).unwrap();
        let inputs = (files.iter())
            .map(|(name, _)| InputFile {
                path: logs.join(name),
                parser: None,
                host: None,
                service: None,
            })
            .collect();
        ProcessOptions::new(inputs, parsers, data.to_owned())
    };
    let local = process(options(&dir.path().join("local")), "local".to_owned()).unwrap();
    let staged = run_stages(&options(&dir.path().join("dist")), "dist");
    let named = |file: &str| logs.join(file).display().to_string();
    assert_eq!(
        local.file_formats.keys().cloned().collect::<Vec<_>>(),
        [named("bom.log"), named("growing.log"), named("noise.log")],
        "files with nothing to read yet are not detected"
    );
    assert_eq!(local.file_formats[&named("growing.log")], "combined");
    assert!(local.file_detection[&named("noise.log")].contains("3 sample lines"));
    assert_eq!(local.warnings.len(), 1, "{:?}", local.warnings);
    assert_eq!(local.lines_held_back, 5, "every file but the empty one");
    assert_eq!(staged.file_formats, local.file_formats);
    assert_eq!(staged.file_detection, local.file_detection);
    assert_eq!(staged.warnings, local.warnings);
    assert_eq!(
        (
            staged.lines_held_back,
            staged.lines,
            staged.parsed_total(),
            staged.unparsed_total()
        ),
        (
            local.lines_held_back,
            local.lines,
            local.parsed_total(),
            local.unparsed_total()
        )
    );
}

/// What a progress bar was told.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<String>>);

impl loglens_engine::progress::Progress for Recorded {
    fn begin(&self, stage: loglens_engine::progress::Stage, total_bytes: Option<u64>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("begin {} {total_bytes:?}", stage.name()));
    }
    fn update(&self, lines: u64, bytes: u64) {
        self.0.lock().unwrap().push(format!("update {lines} {bytes}"));
    }
    fn end(&self) {
        self.0.lock().unwrap().push("end".to_owned());
    }
}

#[test]
fn detect_reports_the_partials_it_has_judged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    write_log(&log);
    let data = dir.path().join("data");
    run_with(&log, &data, 2, 4096, true, |o| o.partial_cells = 8);
    let saved: u64 = (partials::list(&data.join("state")).unwrap().iter())
        .map(|(_, path)| std::fs::metadata(path).unwrap().len())
        .sum();
    let recorded = Recorded::default();
    loglens_engine::detect::detect(&data, &Config::default().detect, "d1", Some(&recorded)).unwrap();
    let told = recorded.0.into_inner().unwrap();
    assert_eq!(told.first(), Some(&format!("begin detect Some({saved})")));
    assert_eq!(told.get(told.len() - 2), Some(&format!("update 1501 {saved}")));
    assert_eq!(told.last().map(String::as_str), Some("end"));
    // Nothing left to judge: a second run reports nothing.
    let recorded = Recorded::default();
    loglens_engine::detect::detect(&data, &Config::default().detect, "d2", Some(&recorded)).unwrap();
    assert!(recorded.0.into_inner().unwrap().is_empty());
}
