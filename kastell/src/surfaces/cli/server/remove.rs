//! `kastell server remove`.

use crate::ops::SERVER_REMOVE;
use clap::Args;
use kastell_core::Result;
use serde::Serialize;

use crate::policy::Surface;
use crate::state::store::ServerRecord;
use crate::surfaces::cli::Context;
use crate::surfaces::cli::confirm::{Confirmation, confirm};

/// Arguments of `kastell server remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// The server's name or IP.
    pub server: String,
    /// Remove without asking (required when not in a terminal).
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct Removed<'a> {
    removed: &'a ServerRecord,
}

/// Runs `kastell server remove`: finds the server (exact IP, then name),
/// applies the policy (SAFE_MODE blocks it), confirms, removes.
pub(super) fn run(args: RemoveArgs, ctx: &Context) -> Result<()> {
    let store = ctx.store()?;
    let Some(record) = store.find(&args.server)? else {
        // Let the store produce the not-found error with its hint.
        store.remove(&args.server)?;
        return Ok(());
    };
    let policy = ctx.policy()?;
    policy.check(SERVER_REMOVE.id(), Surface::Cli, Some(&record), |p| {
        policy.env_token_present(p)
    })?;
    let question = format!(
        "Remove server \"{}\" ({}) from kastell? The server itself is not touched.",
        record.name, record.ip
    );
    if confirm(&question, args.force)? == Confirmation::Declined {
        if ctx.out.is_json() {
            return ctx
                .out
                .json(&serde_json::json!({ "removed": null, "cancelled": true }));
        }
        return ctx.out.line("Cancelled; nothing was removed.");
    }
    // Remove by name: the record found above, even if its IP changed since.
    let removed = store.remove(&record.name)?;
    if ctx.out.is_json() {
        return ctx.out.json(&Removed { removed: &removed });
    }
    ctx.out.line(format_args!(
        "Removed server {} ({})",
        removed.name, removed.ip
    ))
}
