//! What a scratch drill deletes: its own throwaway server (also after a
//! failure) and the ones earlier drills of the same server left behind;
//! and the error that says where a server that could not be deleted is.

use std::sync::Arc;

use kastell_core::types::ServerId;
use kastell_core::{CloudProvider, Error, ErrorKind};

use super::super::flow::Priced;
use crate::engine::recover::leftovers;
use crate::ops::Context;

/// Deletes the throwaway server `id` (none: nothing was created). A server
/// already gone counts as deleted.
pub(super) async fn delete(
    provider: &Arc<dyn CloudProvider>,
    id: Option<&ServerId>,
) -> Result<String, Error> {
    let Some(id) = id else {
        return Ok("no server was created".to_owned());
    };
    match provider.delete_server(id).await {
        Ok(()) => Ok(format!("server {id} deleted")),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(format!("server {id} was already gone")),
        Err(e) => Err(e),
    }
}

/// `error` of a drill whose server `created` could not be deleted
/// (`deleting`): it is left marked, and the next drill or `kastell doctor
/// --fix` deletes it.
pub(super) fn left_over(
    error: Error,
    priced: &Priced,
    created: Option<&ServerId>,
    deleting: &Error,
) -> Error {
    let id = created.map_or_else(|| "(unknown id)".to_owned(), ToString::to_string);
    let hint = format!(
        "The throwaway server {id} ({}) at {} could not be deleted ({}); it is marked \
         kastell-drill and billed while it exists: the next drill or `kastell doctor --fix` \
         deletes it, or delete it in the provider's console",
        priced.spec.name,
        priced.provider_id,
        deleting.message()
    );
    Error::new(error.kind(), error.message().to_owned())
        .with_hint(hint)
        .with_context("left_server", id)
}

/// Deletes the throwaway servers earlier drills of this server left at
/// `priced`'s provider (marked kastell-drill, outside the fleet, named
/// `stem…`; another server's drill may be running); returns what it says
/// about them. A provider that cannot list them is a warning, not a
/// failure.
pub(super) async fn sweep(ctx: &Context, priced: &Priced, stem: &str) -> Vec<String> {
    let fleet = ctx.store.servers().unwrap_or_default();
    let found = match leftovers::at(&priced.provider_id, &priced.provider, &fleet).await {
        Ok(found) => found,
        Err(e) => return vec![format!("could not look for earlier drills' servers: {e}")],
    };
    let mut notes = Vec::new();
    let ours = |l: &leftovers::Leftover| l.is_drill() && l.server.name.starts_with(stem);
    for leftover in found.into_iter().filter(ours) {
        let what = leftover.describe();
        notes.push(
            match priced.provider.delete_server(&leftover.server.id).await {
                Ok(()) => format!("deleted {what}, left by an earlier drill"),
                Err(e) => format!("could not delete {what}, left by an earlier drill: {e}"),
            },
        );
    }
    notes
}
