//! A kastell of your own: kastell's CLI and MCP server (`acme mcp`) with a
//! third-party cloud provider ([`cloud`], Acme Cloud, with its simulator),
//! a third-party platform ([`cron_host`]) and a third-party operation
//! ([`cron_reload`]: `acme cron-reload`, and the action `cron-reload` of
//! `server_maintain`) linked in. None is in kastell's first-party lists and
//! kastell is not changed: naming the modules links them, and their
//! link-time registrations do the rest.
//!
//! ```text
//! cargo run -p kastell-examples --example acme -- doctor
//! cargo run -p kastell-examples --example acme -- demo --platform cronhost
//! cargo run -p kastell-examples --example acme -- mcp --sandbox --sandbox-platform cronhost
//! cargo run -p kastell-examples --example acme -- cron-reload --help
//! ```

mod cloud;
mod cron_host;
mod cron_reload;

use clap::Parser;

fn main() -> std::process::ExitCode {
    kastell::surfaces::cli::run_blocking(kastell::surfaces::cli::Cli::parse())
}
