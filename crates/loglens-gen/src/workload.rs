//! In-memory benchmark workloads for every built-in format: lines from the fleet of
//! [`crate::Generator`] restricted to one format (no damaged lines), so benchmarks measure the
//! parsers on the traffic they are built for, else from [`crate::synth::Synth`].

use loglens_core::format::{Format, ParseContext};
use loglens_core::time::days_from_civil;
use loglens_core::Timestamp;

use crate::synth::lines;
use crate::{GenOptions, Generator};

/// The parse context the benchmarks use: UTC, with 2027-01-01 as the reference so year-less
/// syslog timestamps of both the synthesizer (March 2026) and the generator (November 2026)
/// land in 2026.
pub fn context() -> ParseContext {
    ParseContext {
        reference: Timestamp(days_from_civil(2027, 1, 1) * 86_400 * 1_000_000),
        zone: loglens_core::zone::LocalZone::Unknown,
    }
}

/// Where the lines of a [`workload`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// [`crate::Generator`], the project's generator.
    Generator,
    /// [`crate::synth::Synth`], for formats the generator has no stream of.
    Synth,
}

/// About `n` realistic lines of `format` (each ending with `\n`), and their source: every
/// stream of that format from the project's generator (one simulated day, incidents included,
/// no damaged lines), else [`crate::synth::Synth`]. The generator's line target is approximate, so the text
/// may hold slightly fewer than `n` lines; count them.
pub fn workload(format: Format, n: usize, seed: u64) -> (String, Source) {
    match generated(format, n, seed) {
        Some(text) => (text, Source::Generator),
        None => (lines(format, n, seed), Source::Synth),
    }
}

fn generated(format: Format, n: usize, seed: u64) -> Option<String> {
    let options = GenOptions {
        seed,
        lines: n as u64 + n as u64 / 10 + 100,
        formats: vec![format],
        corrupt_rate: 0.0,
        ..GenOptions::default()
    };
    let mut generator = Generator::new(options).ok()?;
    let mut text = String::with_capacity(n * 200);
    let mut count = 0;
    'chunks: while let Some(chunks) = generator.next_chunk() {
        for chunk in chunks {
            for line in chunk.split_inclusive('\n') {
                text.push_str(line);
                count += 1;
                if count == n {
                    break 'chunks;
                }
            }
        }
    }
    (count > 0).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_have_about_n_lines_that_parse() {
        for format in Format::ALL {
            let (text, source) = workload(format, 2_000, 1);
            let count = text.lines().count();
            assert!(
                (1_800..=2_000).contains(&count),
                "{format}: {count} lines from {source:?}"
            );
            let parser = format.parser();
            let ok = text
                .lines()
                .filter(|l| parser.parse(l, &context()).is_ok())
                .count();
            assert_eq!(ok, count, "{format} from {source:?}");
        }
    }
}
