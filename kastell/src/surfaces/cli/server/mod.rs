//! `kastell server add|list|remove|checks`: the fleet store and the
//! declared health checks from the command line.

mod add;
mod checks;
mod detect;
mod list;
mod remove;

use clap::Subcommand;
use kastell_core::Result;

use super::Context;

pub(crate) use add::AddArgs;
pub(crate) use remove::RemoveArgs;

/// The `server` subcommands.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Add a server you already run: its provider id is looked up by IP
    /// (with a token) and its platform detected over SSH (unless
    /// --no-detect).
    Add(Box<AddArgs>),
    /// List the servers kastell knows.
    List,
    /// Remove a server from kastell's list (the server itself is untouched).
    Remove(RemoveArgs),
    /// The checks a maintenance runs after an update and the rollback
    /// policy when they fail (checks.json).
    #[command(subcommand)]
    Checks(checks::ChecksCommand),
}

/// Runs one `server` subcommand; `add` and `remove` are recorded in the
/// audit log, refused or not.
pub(crate) async fn run(cmd: ServerCommand, ctx: &Context) -> Result<()> {
    let started = std::time::Instant::now();
    let (op, server, result) = match cmd {
        ServerCommand::Add(args) => {
            let name = args.name.clone();
            ("server-add", name, add::run(*args, ctx).await)
        }
        ServerCommand::List => return list::run(ctx),
        ServerCommand::Checks(cmd) => match checks::run(cmd, ctx) {
            Ok(None) => return Ok(()),
            Ok(Some(scope)) => ("server-checks", scope, Ok(())),
            Err(e) => ("server-checks", "checks.json".to_owned(), Err(e)),
        },
        ServerCommand::Remove(args) => {
            let name = args.server.clone();
            ("server-remove", name, remove::run(args, ctx))
        }
    };
    if let Ok(dir) = ctx.kastell_dir() {
        crate::state::audit::record_cli(
            &dir,
            &ctx.env,
            op,
            &server,
            serde_json::json!({"action": op, "server": server}),
            result
                .as_ref()
                .map(|()| serde_json::json!({"success": true})),
            started.elapsed(),
        );
    }
    result
}
