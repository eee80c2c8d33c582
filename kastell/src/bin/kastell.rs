//! The `kastell` command: parse the command line, run it, exit with its code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    kastell::surfaces::cli::run_blocking(kastell::surfaces::cli::Cli::parse())
}
