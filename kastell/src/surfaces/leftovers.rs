//! `kastell doctor`'s look for servers kastell created that the fleet does
//! not hold (marked kastell-managed at a provider): a scratch drill killed
//! before it could delete its server, or a recovery that failed after
//! creating one. With `--fix` the drills' servers are deleted; a
//! recovery's is only reported (it may hold what the user wants to look
//! at), with how to delete it. It also looks for the SSH keys kastell
//! uploaded that no server of kastell's uses (a create that failed without
//! an answer and made no server, a server deleted in the console):
//! `--fix` deletes those, and the provider refuses any key without
//! kastell's marker.

use kastell_core::{CloudProvider, CloudProviderExt, ErrorKind};
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
    /// kastell's SSH keys no server of kastell's uses, described.
    pub keys: Vec<String>,
    /// Those keys `--fix` deleted, described.
    pub keys_deleted: Vec<String>,
    /// Providers that could not be asked, and why.
    pub problems: Vec<String>,
}

impl LeftoverCheck {
    /// Whether something is left that costs money, or could not be looked at.
    pub(crate) fn needs_attention(&self) -> bool {
        !self.found.is_empty() || !self.keys.is_empty() || !self.problems.is_empty()
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
        for d in &self.keys_deleted {
            lines.push(format!("leftover: deleted {d}"));
        }
        for k in &self.keys {
            lines.push(format!("leftover: {k}"));
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
        // After the servers: deleting a drill's server took its key along.
        sweep_keys(entry.id, provider.as_ref(), fix, &mut check).await;
    }
    check
}

/// Lists `provider`'s SSH keys kastell uploaded that no server of kastell's
/// uses, and with `fix` deletes them (the provider reads each again and
/// refuses one without kastell's marker).
async fn sweep_keys(id: &str, provider: &dyn CloudProvider, fix: bool, check: &mut LeftoverCheck) {
    let orphans = match provider.orphan_ssh_keys().await {
        Ok(orphans) => orphans,
        Err(e) => {
            check.problems.push(format!("{id}: SSH keys: {e}"));
            return;
        }
    };
    for key in orphans {
        let what = format!("{id} SSH key {} ({:?})", key.id, key.name);
        if !fix {
            check.keys.push(format!(
                "{what}: uploaded by kastell, used by no server of kastell's; `kastell doctor --fix` deletes it"
            ));
            continue;
        }
        match provider.delete_ssh_key(&key.id).await {
            Ok(()) => check.keys_deleted.push(what),
            Err(e) if e.kind() == ErrorKind::NotFound => check.keys_deleted.push(what),
            Err(e) => check.keys.push(format!("{what}: deleting it failed: {e}")),
        }
    }
}
