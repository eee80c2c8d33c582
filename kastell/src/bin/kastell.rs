//! The `kastell` command: parse the command line, run it, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    kastell::cli::run_blocking(kastell::cli::Cli::parse())
}
