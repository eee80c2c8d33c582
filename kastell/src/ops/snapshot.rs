//! Provider snapshots: create (and wait until available), list, delete,
//! restore (and wait until running). Cloud servers with a token only;
//! every list is one server's, and delete/restore check ownership.

use super::reply::Reply;
use std::sync::Arc;

use kastell_core::types::SnapshotId;
use kastell_core::{CloudProvider, CloudProviderExt, Error};
use schemars::JsonSchema;
use serde::Serialize;

use super::context::{Context, server_id};
use super::flow::{lock_host, unknown_outcome};
use super::result::{OpError, OpResult, SnapshotInfo};
use super::suggest::{Action, Candidate};
use crate::policy::Operation;
use crate::store::ServerRecord;

/// A snapshot taken and available.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotCreate {
    /// The snapshot, with its real id.
    pub snapshot: SnapshotInfo,
    /// Monthly cost, formatted like `€0.24/mo`, or `unknown`.
    pub cost_estimate: String,
}

/// The reply carrying a [`SnapshotCreate`].
pub type SnapshotCreateResult = Reply<SnapshotCreate>;

/// One server's snapshots. An empty list is a success, with the server's
/// IP (the original left it out).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotList {
    /// How many snapshots there are.
    pub snapshot_count: usize,
    /// The snapshots.
    pub snapshots: Vec<SnapshotInfo>,
    /// `No snapshots found` when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The reply carrying a [`SnapshotList`].
pub type SnapshotListResult = Reply<SnapshotList>;

/// A snapshot deleted or restored.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotAction {
    /// The snapshot acted on.
    pub snapshot_id: String,
    /// `Snapshot deleted` or `Snapshot restored; the server is running`.
    pub message: String,
}

/// The reply carrying a [`SnapshotAction`].
pub type SnapshotActionResult = Reply<SnapshotAction>;

/// The admitted server and its provider.
async fn open(
    ctx: &Context,
    op: Operation,
    query: Option<&str>,
) -> OpResult<(ServerRecord, Arc<dyn CloudProvider>)> {
    let admitted = ctx.admit(op, query)?;
    let server = admitted.server;
    let provider = ctx
        .provider_for(&server)
        .map_err(|e| OpError::from(e).on(&server))?;
    Ok((server, provider))
}

fn parse_snapshot_id(id: &str) -> Result<SnapshotId, Error> {
    SnapshotId::new(id.trim().to_owned())
        .map_err(|e| e.or_hint("See snapshot-list for this server's snapshot ids"))
}

/// Takes a snapshot named `kastell-<epoch-ms>` and waits until it is
/// available, returning its real id and the monthly cost (best effort:
/// `unknown` when the estimate fails). Order: policy (SAFE_MODE blocks it:
/// billable; manual servers refused; token required), server, provider.
pub async fn snapshot_create(ctx: &Context, query: Option<&str>) -> OpResult<SnapshotCreateResult> {
    let (server, provider) = open(ctx, Operation::SnapshotCreate, query).await?;
    let fail = |e: Error| OpError::from(e).on(&server);
    let id = server_id(&server).map_err(fail)?;
    let cost = match provider.snapshot_cost_estimate(&id).await {
        Ok(cost) => cost.to_string(),
        Err(e) => {
            tracing::debug!("snapshot cost estimate failed: {e}");
            "unknown".to_owned()
        }
    };
    let name = format!("kastell-{}", chrono::Utc::now().timestamp_millis());
    let progress = ctx.progress();
    progress.message(&format!(
        "Requesting snapshot {name}, then waiting until it is available"
    ));
    let snapshot = provider
        .snapshot_and_wait(&id, &name, ctx.timing.snapshot)
        .await
        .map_err(|e| {
            fail(unknown_outcome(
                e,
                "The snapshot may have been taken even though the answer was lost or late \
                 (snapshots are billed): look for it with snapshot-list before asking again",
            ))
        })?;
    progress.message(&format!("Snapshot {} is available", snapshot.id));

    Ok(Reply::on(
        &server,
        SnapshotCreate {
            snapshot: SnapshotInfo::from(&snapshot),
            cost_estimate: cost,
        },
        ctx.suggest(
            &server,
            vec![Candidate::new(Action::SnapshotList, "See all snapshots")],
        ),
    ))
}

/// Lists the server's own snapshots (every page). None is a success with
/// `snapshotCount` 0, the IP and a message. Order: policy (manual servers
/// refused; token required), server, provider.
pub async fn snapshot_list(ctx: &Context, query: Option<&str>) -> OpResult<SnapshotListResult> {
    let (server, provider) = open(ctx, Operation::SnapshotList, query).await?;
    let fail = |e: Error| OpError::from(e).on(&server);
    let id = server_id(&server).map_err(fail)?;
    let snapshots: Vec<SnapshotInfo> = provider
        .list_snapshots(&id)
        .await
        .map_err(fail)?
        .iter()
        .map(SnapshotInfo::from)
        .collect();
    let (message, candidates) = match snapshots.first() {
        None => (
            Some("No snapshots found".to_owned()),
            vec![Candidate::new(Action::SnapshotCreate, "Create a snapshot")],
        ),
        Some(first) => (
            None,
            vec![
                Candidate::new(Action::SnapshotRestore, "Restore this snapshot")
                    .arg("snapshotId", first.id.clone()),
                Candidate::new(Action::SnapshotDelete, "Delete this snapshot")
                    .arg("snapshotId", first.id.clone()),
            ],
        ),
    };

    Ok(Reply::on(
        &server,
        SnapshotList {
            snapshot_count: snapshots.len(),
            snapshots,
            message,
        },
        ctx.suggest(&server, candidates),
    ))
}

/// Deletes one of the server's snapshots. Order: policy (SAFE_MODE blocks
/// it; manual refused; token required), server, snapshot id (letters,
/// digits, `-_./`, no `..`), provider; a snapshot of another server is
/// refused by the provider's ownership check (`NotFound`).
pub async fn snapshot_delete(
    ctx: &Context,
    query: Option<&str>,
    snapshot_id: &str,
) -> OpResult<SnapshotActionResult> {
    let (server, provider) = open(ctx, Operation::SnapshotDelete, query).await?;
    let fail = |e: Error| OpError::from(e).on(&server);
    let snapshot = parse_snapshot_id(snapshot_id).map_err(fail)?;
    let id = server_id(&server).map_err(fail)?;
    provider
        .delete_snapshot(&id, &snapshot)
        .await
        .map_err(fail)?;

    Ok(Reply::on(
        &server,
        SnapshotAction {
            snapshot_id: snapshot.to_string(),
            message: "Snapshot deleted".to_owned(),
        },
        ctx.suggest(
            &server,
            vec![Candidate::new(
                Action::SnapshotList,
                "See the remaining snapshots",
            )],
        ),
    ))
}

/// Rebuilds the server from one of its snapshots and waits until it is
/// running again. Order as [`snapshot_delete`] (SAFE_MODE blocks it),
/// then the server's host lock (refused while another operation holds it).
pub async fn snapshot_restore(
    ctx: &Context,
    query: Option<&str>,
    snapshot_id: &str,
) -> OpResult<SnapshotActionResult> {
    let (server, provider) = open(ctx, Operation::SnapshotRestore, query).await?;
    let fail = |e: Error| OpError::from(e).on(&server);
    let snapshot = parse_snapshot_id(snapshot_id).map_err(fail)?;
    let id = server_id(&server).map_err(fail)?;
    // A rebuild under a running backup or maintenance would pull the disk
    // from under it: one operation per server at a time.
    let _host = lock_host(ctx, &server, "snapshot-restore").await?;
    let progress = ctx.progress();
    progress.message(&format!(
        "Requesting the restore of snapshot {snapshot}, then waiting until the server runs"
    ));
    provider
        .restore_and_wait(&id, &snapshot, ctx.timing.snapshot_restore)
        .await
        .map_err(|e| {
            fail(unknown_outcome(
                e,
                "The restore may have started even though the answer was lost or late: check \
                 the server with server_info status before asking again",
            ))
        })?;
    progress.message("Snapshot restored; the server is running");

    Ok(Reply::on(
        &server,
        SnapshotAction {
            snapshot_id: snapshot.to_string(),
            message: "Snapshot restored; the server is running".to_owned(),
        },
        ctx.suggest(
            &server,
            vec![Candidate::new(Action::InfoHealth, "Check server health")],
        ),
    ))
}
