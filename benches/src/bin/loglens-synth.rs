//! `loglens-synth FORMAT LINES FILE [SEED]`: writes LINES synthesized lines of FORMAT to FILE.
//! The shell benchmarks (bench/*.sh) fall back to it when `loglens generate` is unavailable.

use std::path::PathBuf;
use std::process::ExitCode;

use loglens_core::format::Format;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: loglens-synth FORMAT LINES FILE [SEED]";
    let [format, lines, file, rest @ ..] = args.as_slice() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let parsed = (
        format.parse::<Format>(),
        lines.parse::<usize>(),
        rest.first().map_or(Ok(1), |s| s.parse::<u64>()),
    );
    let (Ok(format), Ok(lines), Ok(seed)) = parsed else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let path = PathBuf::from(file);
    match loglens_gen::synth::write_file(format, lines, seed, &path) {
        Ok(bytes) => {
            eprintln!(
                "loglens-synth: wrote {lines} {format} lines ({bytes} bytes) to {}",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loglens-synth: {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
