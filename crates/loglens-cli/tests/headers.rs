//! End-to-end: formats whose header names their columns (W3C extended / IIS, Zeek TSV) are
//! detected, read with the file's own columns, also when a later run resumes mid-file, and
//! their header lines are kept as unparsed rows saying what they are.
// A failed setup step (temp dir, file write) should fail the test on the spot.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::{detected_format, json_of, loglens, process_json, read_dataset, strings, u64s};

/// Not IIS's default field set: a detector that assumed it would read nothing.
const W3C_HEADER: &str = "#Software: Microsoft Internet Information Services 10.0\n\
#Version: 1.0\n\
#Date: 2026-10-11 22:00:00\n\
#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes time-taken cs(User-Agent)\n";

fn w3c_line(second: u32, status: u16) -> String {
    format!("2026-10-11 22:00:{second:02} 192.0.2.{second} GET /page/{second} {status} 5120 {second} Mozilla/5.0+(X11;+Linux)\n")
}

#[test]
fn w3c_is_read_with_its_fields_and_again_after_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("u_ex261011.log");
    let mut text = W3C_HEADER.to_owned();
    for s in 0..10 {
        text.push_str(&w3c_line(s, if s == 3 { 503 } else { 200 }));
    }
    std::fs::write(&log, &text).unwrap();
    let data = dir.path().join("data");
    let run = |data: &std::path::Path| {
        json_of(
            loglens()
                .args(["process", "--json", "--data-dir"])
                .arg(data)
                .arg(&log),
        )
    };
    let first = run(&data);
    assert_eq!(first["file_formats"][log.display().to_string()], "w3c", "{first}");
    assert_eq!(first["parsed"]["w3c"], 10);
    assert_eq!(
        first["unparsed"]["header line (a #directive), not an event"], 4,
        "{first}"
    );

    // IIS appends; the next run starts at the checkpoint, past the header.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for s in 10..15 {
        file.write_all(w3c_line(s, 404).as_bytes()).unwrap();
    }
    drop(file);
    let second = run(&data);
    assert_eq!(second["files_resumed"], 1, "{second}");
    assert_eq!(second["parsed"]["w3c"], 5, "{second}");

    let records = read_dataset(&data.join("records"));
    assert_eq!(records.iter().map(|b| b.num_rows()).sum::<usize>(), 15);
    let mut statuses: Vec<(u64, Option<String>)> = u64s(&records, "line")
        .into_iter()
        .map(Option::unwrap)
        .zip(strings(&records, "level"))
        .collect();
    statuses.sort();
    assert_eq!(statuses[3], (8, Some("error".to_owned())));
    assert_eq!(statuses[14], (19, Some("warn".to_owned())));
    let agents = strings(&records, "user_agent");
    assert!(agents
        .iter()
        .all(|a| a.as_deref() == Some("Mozilla/5.0+(X11;+Linux)")));
    let paths = strings(&records, "path");
    assert!(paths.contains(&Some("/page/12".to_owned())));
}

#[test]
fn zeek_http_log_becomes_access_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("http.log");
    let mut text = String::from(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n#open\t2026-10-11-22-14-15\n\
         #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmethod\thost\turi\tuser_agent\tresponse_body_len\tstatus_code\n\
         #types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tcount\tcount\n",
    );
    for i in 0..6 {
        let status = if i == 5 { 500 } else { 200 };
        text.push_str(&format!(
            "17917568{i:02}.250000\tC{i}abc\t10.0.0.{i}\t5{i}000\t93.184.216.34\t80\tGET\texample.com\t/item/{i}\tcurl/8.5.0\t{}\t{status}\n",
            100 * i
        ));
    }
    text.push_str("#close\t2026-10-11-23-00-00\n");
    std::fs::write(&log, text).unwrap();
    let data = dir.path().join("data");
    let summary = process_json(&data, &log);
    assert_eq!(detected_format(&summary, &log), "zeek", "{summary}");
    assert_eq!(summary["parsed"]["zeek"], 6);
    assert_eq!(summary["unparsed"]["header line (a #directive), not an event"], 9);
    let records = read_dataset(&data.join("records"));
    assert_eq!(
        strings(&records, "client_ip"),
        (0..6).map(|i| Some(format!("10.0.0.{i}"))).collect::<Vec<_>>()
    );
    assert_eq!(strings(&records, "service")[0].as_deref(), Some("http"));
    assert_eq!(strings(&records, "message")[2].as_deref(), Some("GET /item/2"));
    assert_eq!(strings(&records, "level")[5].as_deref(), Some("error"));
}
