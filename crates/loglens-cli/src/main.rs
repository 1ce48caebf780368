//! The `loglens` binary: argument parsing and human output only; the work happens in the
//! engine crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod output;

/// loglens: turn raw logs into structured, queryable data.
#[derive(Debug, Parser)]
#[command(name = "loglens", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate realistic logs with injected incidents and their ground truth.
    Generate(cmd::generate::GenerateArgs),
    /// Parse log files into the data directory (partitioned Parquet).
    Process(cmd::process::ProcessArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = output::Output::stdout();
    let result = match cli.command {
        Command::Generate(args) => cmd::generate::run(args),
        Command::Process(args) => cmd::process::run(args, &mut out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loglens: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
