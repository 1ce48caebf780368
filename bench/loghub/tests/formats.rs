//! Auto-detection on the Loghub-2k raw logs (`../shared/data/loghub` or `$LOGHUB_DATA`): runs
//! the `formats` bench binary and requires, for every system, at least 95% of the lines as
//! records with the right timestamp and (where Loghub has one) the right level. Skipped, with a
//! message, when the data is absent.

use std::process::Command;

const MIN_PERCENT: f64 = 95.0;

#[test]
fn every_loghub_system_parses_out_of_the_box() {
    let dir = loglens_loghub::default_data_dir();
    if !dir.is_dir() {
        println!("skipped: {} not found", dir.display());
        return;
    }
    let output = Command::new(env!("CARGO_BIN_EXE_formats"))
        .arg(&dir)
        .output()
        .expect("the formats binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).expect("UTF-8 table");
    println!("{table}");
    let rows: Vec<&str> = table.lines().skip(1).filter(|l| !l.contains("absent")).collect();
    assert!(!rows.is_empty(), "no system found under {}", dir.display());
    for row in rows {
        let fields: Vec<&str> = row.split_whitespace().collect();
        for figure in &fields[2..] {
            if *figure == "n/a" {
                continue;
            }
            let percent: f64 = figure.parse().unwrap_or(0.0);
            assert!(percent >= MIN_PERCENT, "below {MIN_PERCENT}%: {row}");
        }
    }
}
