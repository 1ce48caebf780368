//! Deliberately damaged lines, so the unparsed path gets exercised: truncated writes, garbled
//! bytes and the NUL runs a crash leaves in a file. Each damaged line is checked against the
//! stream's own parser and damaged harder until it neither parses nor continues the record
//! before it, so the manifest's `corrupt_lines` equals what a correct parser rejects.

use super::rng::Rng;
use loglens_core::format::{LineParser, ParseContext};

const JUNK: [char; 8] = ['\u{0}', '\u{fffd}', '\u{1b}', '\u{7f}', '#', '@', '\u{1}', '~'];

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Writes a damaged copy of `line` into `out` (emptied first) that `parser` rejects.
pub fn corrupt(line: &str, rng: &mut Rng, parser: &dyn LineParser, out: &mut String) {
    let ctx = ParseContext::default();
    let first = rng.below(3);
    for attempt in 0..3 {
        out.clear();
        match (first + attempt) % 3 {
            0 => {
                // A write cut short.
                let keep = floor_boundary(line, (line.len() as f64 * rng.uniform(0.1, 0.6)) as usize);
                out.push_str(&line[..keep]);
            }
            1 => {
                // A run of bytes overwritten near the start.
                let from = floor_boundary(line, rng.index(line.len() / 3 + 1));
                let to = floor_boundary(line, from + 4 + rng.index(24));
                out.push_str(&line[..from]);
                for _ in 0..(to - from).max(4) {
                    out.push(*rng.pick(&JUNK));
                }
                out.push_str(&line[to..]);
            }
            _ => {
                // Zeroed blocks, then the rest of a line written after a crash.
                for _ in 0..8 + rng.index(56) {
                    out.push('\u{0}');
                }
                let from = floor_boundary(line, line.len() / 3 + rng.index(line.len() / 3 + 1));
                out.push_str(&line[from..]);
            }
        }
        // Neither read by the format nor joined to the record above by it: an unparsed row.
        if parser.parse(out, &ctx).is_err() && !parser.continuation().joins(out) {
            return;
        }
    }
    out.clear();
    for _ in 0..16 + rng.index(48) {
        out.push('\u{0}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loglens_core::format::Format;

    #[test]
    fn damaged_lines_do_not_parse_and_stay_one_line() {
        let line = r#"203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] "GET /products/123 HTTP/1.1" 200 2326 "-" "curl/8.0" 0.012"#;
        let parser = Format::Combined.parser();
        let mut rng = Rng::new(1);
        let mut out = String::new();
        for _ in 0..200 {
            corrupt(line, &mut rng, parser.as_ref(), &mut out);
            assert!(parser.parse(&out, &ParseContext::default()).is_err(), "{out:?}");
            assert!(!out.contains('\n') && !out.is_empty());
        }
    }
}
