//! `kastell server add|list|remove`: the fleet store from the command line.

mod add;
mod list;
mod remove;

use clap::Subcommand;
use kastell_core::Result;

use super::Context;

pub use add::{AddArgs, parse_platform, record_from_args};
pub use remove::RemoveArgs;

/// The `server` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Add a server you already run (no cloud API call is made).
    Add(AddArgs),
    /// List the servers kastell knows.
    List,
    /// Remove a server from kastell's list (the server itself is untouched).
    Remove(RemoveArgs),
}

/// Runs one `server` subcommand.
pub fn run(cmd: ServerCommand, ctx: &Context) -> Result<()> {
    match cmd {
        ServerCommand::Add(args) => add::run(args, ctx),
        ServerCommand::List => list::run(ctx),
        ServerCommand::Remove(args) => remove::run(args, ctx),
    }
}
