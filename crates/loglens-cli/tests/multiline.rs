//! End-to-end: stack traces (Java through the log4j format, Python through pylog) become one record each, across chunk boundaries; damaged lines stay unparsed rows.
// A failed setup step (temp dir, file write) should fail the test on the spot.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    detected_format, json_of, loglens, process_json, read_dataset, stored_lines, strings, u32s, u64s,
};

/// A Java service's log4j output (`%d{ISO8601} %-5p [%t] %c - %m%n`): per order an INFO
/// line, and for every third order an ERROR with a seven-line trace.
fn java_log(orders: usize) -> String {
    let mut out = String::new();
    for i in 0..orders {
        let (m, s) = ((i / 60) % 60, i % 60);
        out.push_str(&format!(
            "2026-03-04 05:{m:02}:{s:02},123 INFO  [main] com.example.OrderService - order {i} accepted\n"
        ));
        if i % 3 == 0 {
            out.push_str(&format!(
                "2026-03-04 05:{m:02}:{s:02},456 ERROR [pool-1-thread-{i}] com.example.OrderService - payment failed for order {i}\n\
                 java.lang.IllegalStateException: card declined\n\
                 \tat com.example.Payments.charge(Payments.java:42)\n\
                 \tat com.example.OrderService.place(OrderService.java:17)\n\
                 Caused by: java.net.SocketTimeoutException: Read timed out\n\
                 \tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)\n\
                 \t... 2 more\n"
            ));
        }
    }
    out
}

#[test]
fn stack_traces_are_one_record_each_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    // About 3 MiB: several 1 MiB chunks, so traces straddle chunk boundaries.
    let orders = 12_000;
    std::fs::write(&log, java_log(orders)).unwrap();
    let data = dir.path().join("data");
    let summary = json_of(
        loglens()
            .args(["process", "--json", "--threads", "2", "--data-dir"])
            .arg(&data)
            .arg(&log),
    );
    let errors = orders.div_ceil(3);
    let lines = orders + errors * 7;
    assert_eq!(summary["lines"], lines as u64);
    assert_eq!(summary["parsed"]["log4j"], lines as u64, "{summary}");
    assert_eq!(summary["continuation_lines"], (errors * 6) as u64);
    assert_eq!(summary["records_written"], (orders + errors) as u64);
    assert_eq!(summary["unparsed"], serde_json::json!({}));

    let records = read_dataset(&data.join("records"));
    let spans = u32s(&records, "lines");
    let levels = strings(&records, "level");
    let messages = strings(&records, "message");
    for ((span, level), message) in spans.iter().zip(&levels).zip(&messages) {
        let (span, message) = (span.unwrap(), message.as_deref().unwrap());
        match level.as_deref() {
            Some("error") => {
                assert_eq!(span, 7, "{message}");
                assert!(message.ends_with("\n\t... 2 more"), "{message:?}");
                assert_eq!(
                    message.lines().nth(1),
                    Some("java.lang.IllegalStateException: card declined")
                );
            }
            _ => assert_eq!(span, 1, "{message}"),
        }
    }
    // Every line of the file is stored exactly once.
    let stored = stored_lines(&data);
    assert_eq!(stored.len(), lines);
    assert!(stored.values().all(|&n| n == 1));

    // Templates are mined from a record's first line: one per log statement, traces aside.
    let out = loglens()
        .args(["templates", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let listed: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut patterns: Vec<&str> = listed.iter().map(|t| t["template"].as_str().unwrap()).collect();
    patterns.sort();
    assert_eq!(patterns, ["order <*> accepted", "payment failed for order <*>"]);
}

#[test]
fn python_tracebacks_join_and_damaged_lines_stay_unparsed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("worker.log");
    // Python logging's default handler format, `logger.exception(...)` output included.
    let text = "2026-03-04 05:06:07,100 - worker - INFO - job 1 started\n\
                2026-03-04 05:06:07,200 - worker - ERROR - job 1 failed\n\
                Traceback (most recent call last):\n\
                \x20 File \"/srv/worker.py\", line 12, in run\n\
                \x20   result = compute(job)\n\
                \x20 File \"/srv/worker.py\", line 30, in compute\n\
                \x20   raise ValueError(\"bad input\")\n\
                ValueError: bad input\n\
                \0\0\0\0\0\0\0\0 - worker - INFO - job 2 sta\n\
                \x20 indented after a damaged line: nothing to join\n\
                2026-03-04 05:06:08,300 - worker - INFO - job 2 started\n";
    std::fs::write(&log, text).unwrap();
    let data = dir.path().join("data");
    let summary = process_json(&data, &log);
    assert_eq!(detected_format(&summary, &log), "pylog", "{summary}");
    assert_eq!(summary["continuation_lines"], 6);
    assert_eq!(summary["records_written"], 3);

    let records = read_dataset(&data.join("records"));
    assert_eq!(u64s(&records, "line"), [Some(1), Some(2), Some(11)]);
    assert_eq!(u32s(&records, "lines"), [Some(1), Some(7), Some(1)]);
    let messages = strings(&records, "message");
    assert_eq!(
        messages[1].as_deref(),
        Some(
            "job 1 failed\nTraceback (most recent call last):\n  File \"/srv/worker.py\", line 12, in run\n    result = compute(job)\n  File \"/srv/worker.py\", line 30, in compute\n    raise ValueError(\"bad input\")\nValueError: bad input"
        )
    );
    let unparsed = read_dataset(&data.join("unparsed"));
    assert_eq!(u64s(&unparsed, "line"), [Some(9), Some(10)]);
}

/// A logback service (`%d [%thread] %-5level %logger{36} - %msg%n`) whose messages span lines
/// unindented: a slow query's SQL and a pretty-printed JSON payload.
fn logback_log(events: usize) -> String {
    let mut out = String::new();
    for i in 0..events {
        let (m, s) = ((i / 60) % 60, i % 60);
        let ts = format!("2026-03-04 05:{m:02}:{s:02}.{:03}", i % 1000);
        out.push_str(&format!(
            "{ts} [main] INFO  com.example.shop.Api - request {i} served\n"
        ));
        match i % 4 {
            0 | 2 => out.push_str(&format!(
                "{ts} [db-{i}] WARN  com.example.shop.Repo - slow query took {i} ms:\n\
                 SELECT o.id,\n\
                 o.total,\n\
                 o.created_at\n\
                 FROM orders o\n\
                 JOIN customers c ON c.id = o.customer_id\n\
                 WHERE o.customer_id = {i}\n\
                 AND o.status = 'paid'\n\
                 ORDER BY o.created_at DESC\n"
            )),
            1 => out.push_str(&format!(
                "{ts} [http-{i}] ERROR com.example.shop.Hook - webhook refused, payload:\n\
                 {{\n  \"order\": {i},\n  \"status\": \"paid\"\n}}\n"
            )),
            _ => {}
        }
    }
    out
}

#[test]
fn untimed_lines_continue_records_of_timestamped_formats_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("shop.log");
    // About 3 MiB, three in four lines continuing a record: the 1 MiB chunk boundaries fall
    // inside records, and must move to a record's start.
    let events = 12_000;
    let mut text = logback_log(events);
    // A crash's NUL run never joins a record: it stays an unparsed row.
    text.push_str(
        "\0\0\0\0\0\0\0\0\n2026-03-04 06:00:00.000 [main] INFO  com.example.shop.Api - restarted\n",
    );
    std::fs::write(&log, &text).unwrap();
    let data = dir.path().join("data");
    let summary = json_of(
        loglens()
            .args(["process", "--json", "--threads", "2", "--data-dir"])
            .arg(&data)
            .arg(&log),
    );
    assert_eq!(detected_format(&summary, &log), "logback", "{summary}");
    let (queries, hooks) = (events / 2, events / 4);
    let records = events + queries + hooks + 1;
    let continuation = queries * 8 + hooks * 4;
    assert_eq!(summary["lines"], (records + continuation + 1) as u64);
    assert_eq!(summary["continuation_lines"], continuation as u64, "{summary}");
    assert_eq!(summary["records_written"], records as u64);
    assert_eq!(summary["unparsed_written"], 1);

    let stored = read_dataset(&data.join("records"));
    let messages = strings(&stored, "message");
    let spans = u32s(&stored, "lines");
    let slow = messages.iter().zip(&spans).find(|(m, _)| {
        m.as_deref()
            .is_some_and(|m| m.starts_with("slow query took 4 ms"))
    });
    assert_eq!(
        slow,
        Some((
            &Some("slow query took 4 ms:\nSELECT o.id,\no.total,\no.created_at\nFROM orders o\nJOIN customers c ON c.id = o.customer_id\nWHERE o.customer_id = 4\nAND o.status = 'paid'\nORDER BY o.created_at DESC".to_owned()),
            &Some(9)
        ))
    );
    let hook = messages.iter().zip(&spans).find(|(m, _)| {
        m.as_deref()
            .is_some_and(|m| m.starts_with("webhook refused") && m.contains("\"order\": 5,"))
    });
    assert_eq!(hook.map(|(_, s)| *s), Some(Some(5)));
    // Every line of the file is stored exactly once, in a record or as unparsed.
    let lines = stored_lines(&data);
    assert_eq!(lines.len(), records + continuation + 1);
    assert!(lines.values().all(|&n| n == 1));
}

#[test]
fn python_messages_with_newlines_and_chained_tracebacks_are_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("api.log");
    let text = "2026-03-04 05:06:07,100 - api - INFO - query took 2.1 s:\n\
                SELECT id\n\
                FROM orders\n\
                2026-03-04 05:06:07,200 - api - ERROR - sync failed\n\
                Traceback (most recent call last):\n\
                \x20 File \"/srv/api.py\", line 3, in sync\n\
                KeyError: 'id'\n\
                \n\
                During handling of the above exception, another exception occurred:\n\
                \n\
                Traceback (most recent call last):\n\
                \x20 File \"/srv/api.py\", line 5, in sync\n\
                RuntimeError: sync aborted\n\
                2026-03-04 05:06:0\n\
                2026-03-04 05:06:08,300 - api - INFO - done\n";
    std::fs::write(&log, text).unwrap();
    let data = dir.path().join("data");
    let summary = process_json(&data, &log);
    assert_eq!(detected_format(&summary, &log), "pylog", "{summary}");
    assert_eq!(summary["records_written"], 3);
    assert_eq!(summary["continuation_lines"], 11);
    let records = read_dataset(&data.join("records"));
    assert_eq!(u64s(&records, "line"), [Some(1), Some(4), Some(15)]);
    assert_eq!(u32s(&records, "lines"), [Some(3), Some(10), Some(1)]);
    let messages = strings(&records, "message");
    assert_eq!(
        messages[0].as_deref(),
        Some("query took 2.1 s:\nSELECT id\nFROM orders")
    );
    assert!(messages[1].as_deref().unwrap().ends_with("\n\nTraceback (most recent call last):\n  File \"/srv/api.py\", line 5, in sync\nRuntimeError: sync aborted"));
    // A write cut short inside its timestamp is a damaged record, not a line of the one above.
    let unparsed = read_dataset(&data.join("unparsed"));
    assert_eq!(u64s(&unparsed, "line"), [Some(14)]);
}

/// The attrs of every record, as (key, value) lists.
fn attrs(batches: &[arrow_array::RecordBatch]) -> Vec<Vec<(String, String)>> {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let mut out = Vec::new();
    for batch in batches {
        let map = batch.column_by_name("attrs").unwrap().as_map();
        for i in 0..map.len() {
            let entry = map.value(i);
            let keys = entry.column(0).as_string::<i32>();
            let values = entry.column(1).as_string::<i32>();
            out.push(
                (0..entry.len())
                    .map(|j| (keys.value(j).to_owned(), values.value(j).to_owned()))
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn mysql_slow_log_entries_are_one_record_each_with_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mysql-slow.log");
    // MySQL 8.0's slow log as the manual shows it: the server's banner, then entries.
    let mut text = String::from(
        "/usr/sbin/mysqld, Version: 8.0.36 (MySQL Community Server - GPL). started with:\n\
         Tcp port: 3306  Unix socket: /var/run/mysqld/mysqld.sock\n\
         Time                 Id Command    Argument\n",
    );
    for i in 0..40u32 {
        text.push_str(&format!(
            "# Time: 2026-10-11T22:{:02}:15.003417Z\n\
             # User@Host: shop[shop] @ web-1 [10.0.0.5]  Id:    {i}\n\
             # Query_time: {}.000247  Lock_time: 0.000102 Rows_sent: 1  Rows_examined: {}\n\
             use shop;\n\
             SET timestamp=1791756855;\n\
             SELECT o.id, o.total\n\
             FROM orders o WHERE o.customer_id = {i};\n",
            i % 60,
            2 + i % 3,
            50_000 + i
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let data = dir.path().join("data");
    let summary = process_json(&data, &log);
    assert_eq!(detected_format(&summary, &log), "mysql_slow", "{summary}");
    let why = summary["file_detection"][log.to_str().unwrap()].as_str().unwrap();
    assert!(
        why.starts_with("mysql_slow: 14 of 72 sample lines parse, 55 more continue their records"),
        "{why}"
    );
    assert_eq!(summary["records_written"], 40);
    assert_eq!(summary["continuation_lines"], 40 * 6);
    assert_eq!(summary["unparsed_written"], 3, "the banner");

    let records = read_dataset(&data.join("records"));
    assert_eq!(u64s(&records, "line")[..2], [Some(4), Some(11)]);
    assert!(u32s(&records, "lines").iter().all(|&n| n == Some(7)));
    let messages = strings(&records, "message");
    assert_eq!(
        messages[7].as_deref(),
        Some("SELECT o.id, o.total\nFROM orders o WHERE o.customer_id = 7;")
    );
    let seventh: std::collections::BTreeMap<String, String> = attrs(&records)[7].iter().cloned().collect();
    let expected = [
        ("user", "shop"),
        ("client_host", "web-1"),
        ("client_ip", "10.0.0.5"),
        ("thread_id", "7"),
        ("query_time", "3.000247"),
        ("lock_time", "0.000102"),
        ("rows_sent", "1"),
        ("rows_examined", "50007"),
        ("db", "shop"),
    ];
    for (key, value) in expected {
        assert_eq!(seventh.get(key).map(String::as_str), Some(value), "{key}");
    }
    // One template for the statement: mined from the message's first line.
    let out = loglens()
        .args(["templates", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("SELECT o.id, o.total"), "{listed}");
}
