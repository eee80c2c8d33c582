//! `kastell doctor`'s look for servers kastell created that the fleet does
//! not hold (marked kastell-managed at a provider): a scratch drill killed
//! before it could delete its server, or a recovery that failed after
//! creating one. With `--fix` the drills' servers are deleted; a
//! recovery's is only reported (it may hold what the user wants to look
//! at), with how to delete it.

use serde::Serialize;

use crate::engine::recover::leftovers;
use crate::ops::Context;

/// What the look found and did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeftoverCheck {
    /// Marked servers outside the fleet still there, described.
    pub found: Vec<String>,
    /// Those `--fix` deleted, described.
    pub deleted: Vec<String>,
    /// Providers that could not be asked, and why.
    pub problems: Vec<String>,
}

impl LeftoverCheck {
    /// Whether something is left that costs money, or could not be looked at.
    pub(crate) fn needs_attention(&self) -> bool {
        !self.found.is_empty() || !self.problems.is_empty()
    }

    /// The lines a person reads.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for d in &self.deleted {
            lines.push(format!("leftover: deleted {d}"));
        }
        for f in &self.found {
            lines.push(format!("leftover: {f}"));
        }
        for p in &self.problems {
            lines.push(format!("leftovers: problem: {p}"));
        }
        lines
    }
}

/// Asks every provider this build can create servers at, and has a token
/// for, for marked servers no fleet record names; with `fix`, deletes the
/// scratch drills' ones.
pub(crate) async fn check(ctx: &Context, fix: bool) -> LeftoverCheck {
    let mut check = LeftoverCheck::default();
    let fleet = match ctx.store.servers() {
        Ok(fleet) => fleet,
        Err(e) => {
            check.problems.push(format!("the fleet store: {e}"));
            return check;
        }
    };
    for entry in kastell_core::Registry::global().providers() {
        if !entry.capability.server_create || ctx.token(entry.id).is_none() {
            continue;
        }
        let provider = match ctx.provider_by_id(entry.id, None) {
            Ok(provider) => provider,
            Err(e) => {
                check.problems.push(format!("{}: {e}", entry.id));
                continue;
            }
        };
        let found = match leftovers::at(entry.id, &provider, &fleet).await {
            Ok(found) => found,
            Err(e) => {
                check.problems.push(format!("{}: {e}", entry.id));
                continue;
            }
        };
        for leftover in found {
            let what = leftover.describe();
            if !leftover.is_drill() {
                check.found.push(format!(
                    "{what}: a recovery's server outside the fleet, billed while it exists; delete it in the provider's console once you no longer need it"
                ));
            } else if !fix {
                check.found.push(format!(
                    "{what}: a scratch drill's server it could not delete; `kastell doctor --fix` deletes it"
                ));
            } else {
                match provider.delete_server(&leftover.server.id).await {
                    Ok(()) => check.deleted.push(what),
                    Err(e) => check.found.push(format!("{what}: deleting it failed: {e}")),
                }
            }
        }
    }
    check
}
