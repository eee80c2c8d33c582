//! Provider snapshots: create (and wait until available), list, delete,
//! restore (and wait until running). Cloud servers with a token only;
//! every list is one server's, and delete/restore check ownership.

use super::HealthOp;
#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use std::sync::Arc;

use async_trait::async_trait;
use kastell_core::types::{ServerId, Snapshot, SnapshotId};
use kastell_core::{CloudProvider, CloudProviderExt, Error};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::context::{Context, server_id};
use super::flow::{lock_host, unknown_outcome};
use super::operation::{CliCommand, CliTarget, McpAction, NoArgs, Operation, Scope, Spec};
use super::plan;
use super::result::{OpError, OpResult, SnapshotInfo};
use super::suggest::Candidate;
use crate::policy::{Category, OpId, Rule};
use crate::state::store::ServerRecord;

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
    op: OpId,
    query: Option<&str>,
) -> OpResult<(ServerRecord, Arc<dyn CloudProvider>)> {
    let admitted = ctx.admit(op, query)?;
    let server = admitted.server;
    let provider = ctx
        .provider_for(&server)
        .map_err(|e| OpError::from(e).on(&server))?;
    Ok((server, provider))
}

pub(super) fn parse_snapshot_id(id: &str) -> Result<SnapshotId, Error> {
    SnapshotId::new(id.trim().to_owned())
        .map_err(|e| e.or_hint("See snapshot-list for this server's snapshot ids"))
}

/// Takes a snapshot named `kastell-<epoch-ms>` and waits until it is
/// available, returning its real id and the monthly cost (best effort:
/// `unknown` when the estimate fails). Order: policy (SAFE_MODE blocks it:
/// billable; manual servers refused; token required), server, provider.
pub async fn snapshot_create(ctx: &Context, query: Option<&str>) -> OpResult<SnapshotCreateResult> {
    let (server, provider) = open(ctx, SnapshotCreateOp::ID, query).await?;
    let fail = |e: Error| OpError::from(e).on(&server);
    let id = server_id(&server).map_err(fail)?;
    let (snapshot, cost) = take_awaited(ctx, provider.as_ref(), &id, "kastell-", "asking again")
        .await
        .map_err(fail)?;

    Ok(Reply::on(
        &server,
        SnapshotCreate {
            snapshot: SnapshotInfo::from(&snapshot),
            cost_estimate: cost.unwrap_or_else(|| "unknown".to_owned()),
        },
        ctx.suggest(
            &server,
            vec![Candidate::new(SnapshotListOp::ID, "See all snapshots")],
        ),
    ))
}

/// Takes a snapshot of server `id` named `<prefix><epoch-ms>` and waits
/// until it is available (at most `ctx.timing.snapshot`), telling the
/// progress what it waits for. Returns it with its monthly cost (best
/// effort: `None` when the estimate fails). A failure whose outcome is
/// unknown says the (billed) snapshot may exist and to look for it with
/// snapshot-list before `retrying` (`asking again`, `restoring again`).
pub(crate) async fn take_awaited(
    ctx: &Context,
    provider: &dyn CloudProvider,
    id: &ServerId,
    prefix: &str,
    retrying: &str,
) -> Result<(Snapshot, Option<String>), Error> {
    let cost = match provider.snapshot_cost_estimate(id).await {
        Ok(cost) => Some(cost.to_string()),
        Err(e) => {
            tracing::debug!("snapshot cost estimate failed: {e}");
            None
        }
    };
    let name = format!("{prefix}{}", chrono::Utc::now().timestamp_millis());
    let progress = ctx.progress();
    progress.message(&format!(
        "Requesting snapshot {name}, then waiting until it is available"
    ));
    let snapshot = provider
        .snapshot_and_wait(id, &name, ctx.timing.snapshot)
        .await
        .map_err(|e| {
            unknown_outcome(
                e,
                &format!(
                    "The snapshot may have been taken even though the answer was lost or late \
                     (snapshots are billed): look for it with snapshot-list before {retrying}"
                ),
            )
        })?;
    progress.message(&format!("Snapshot {} is available", snapshot.id));
    Ok((snapshot, cost))
}

/// Lists the server's own snapshots (every page). None is a success with
/// `snapshotCount` 0, the IP and a message. Order: policy (manual servers
/// refused; token required), server, provider.
pub async fn snapshot_list(ctx: &Context, query: Option<&str>) -> OpResult<SnapshotListResult> {
    let (server, provider) = open(ctx, SnapshotListOp::ID, query).await?;
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
            vec![Candidate::new(SnapshotCreateOp::ID, "Create a snapshot")],
        ),
        Some(first) => (
            None,
            vec![
                Candidate::new(SnapshotRestoreOp::ID, "Restore this snapshot")
                    .arg("snapshotId", first.id.clone()),
                Candidate::new(SnapshotDeleteOp::ID, "Delete this snapshot")
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
    let (server, provider) = open(ctx, SnapshotDeleteOp::ID, query).await?;
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
                SnapshotListOp::ID,
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
    let (server, provider) = open(ctx, SnapshotRestoreOp::ID, query).await?;
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
            vec![Candidate::new(HealthOp::ID, "Check server health")],
        ),
    ))
}

/// Which snapshot an operation deletes or restores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRef {
    /// Snapshot id for snapshot-delete and snapshot-restore, from
    /// snapshot-list (letters, digits, `-_./`; never a `..` segment).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9_./-]+$"))]
    #[arg(
        long = "snapshot",
        value_name = "ID",
        help = "The snapshot id (see `kastell snapshot list`)"
    )]
    pub snapshot_id: Option<String>,
}

impl SnapshotRef {
    fn id(&self) -> &str {
        self.snapshot_id.as_deref().unwrap_or("")
    }
}

/// `snapshot-create`: a provider snapshot, awaited.
pub struct SnapshotCreateOp;

#[async_trait]
impl Operation for SnapshotCreateOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("snapshot-create", Category::SafeWrite)
            .blocked(
                "Snapshot creation is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable snapshot creation (billable operation)",
            )
            .cloud_only()
            .billable()
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "snapshot-create",
            doc: "take a provider snapshot and wait until it is available (billable).",
        }),
        cli: Some(CliCommand {
            path: &["snapshot", "create"],
            about: "Take a provider snapshot and wait until it is available (billable).",
            target: CliTarget::One,
        }),
    };
    type Args = NoArgs;
    type Body = SnapshotCreateResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        snapshot_create(ctx, query).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        let api = plan::api(ctx, server);
        vec![
            format!("Estimate the snapshot cost via {api}"),
            format!("Create snapshot kastell-<epoch-ms> via {api} and wait until available"),
        ]
    }
}

/// `snapshot-list`: a server's provider snapshots.
pub struct SnapshotListOp;

#[async_trait]
impl Operation for SnapshotListOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("snapshot-list", Category::Read).cloud_only(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "snapshot-list",
            doc: "list the server's provider snapshots.",
        }),
        cli: Some(CliCommand {
            path: &["snapshot", "list"],
            about: "List a server's snapshots (--all: every server's).",
            target: CliTarget::Fleet,
        }),
    };
    type Args = NoArgs;
    type Body = SnapshotListResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        snapshot_list(ctx, query).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![format!(
            "List the server's snapshots via {} (read-only)",
            plan::api(ctx, server)
        )]
    }
}

/// `snapshot-delete`: delete one of a server's snapshots.
pub struct SnapshotDeleteOp;

#[async_trait]
impl Operation for SnapshotDeleteOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("snapshot-delete", Category::Destructive)
            .blocked(
                "Snapshot delete disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable snapshot deletion",
            )
            .cloud_only(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "snapshot-delete",
            doc: "delete one (needs snapshotId).",
        }),
        cli: Some(CliCommand {
            path: &["snapshot", "delete"],
            about: "Delete one of a server's snapshots.",
            target: CliTarget::One,
        }),
    };
    type Args = SnapshotRef;
    type Body = SnapshotActionResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &SnapshotRef) -> OpResult<Self::Body> {
        snapshot_delete(ctx, query, args.id()).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &SnapshotRef) -> Vec<String> {
        vec![format!(
            "Delete snapshot {} via {}",
            args.id(),
            plan::api(ctx, server)
        )]
    }

    fn question(server: &ServerRecord, args: &SnapshotRef) -> String {
        format!(
            "Delete snapshot {} of \"{}\" ({})? This cannot be undone.",
            args.id(),
            server.name,
            server.ip
        )
    }

    fn target(args: &SnapshotRef) -> Option<&str> {
        args.snapshot_id.as_deref()
    }
}

/// `snapshot-restore`: rebuild a server from one of its snapshots.
pub struct SnapshotRestoreOp;

#[async_trait]
impl Operation for SnapshotRestoreOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("snapshot-restore", Category::Destructive)
            .blocked(
                "Snapshot restore disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable snapshot restore (destructive operation)",
            )
            .cloud_only()
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "snapshot-restore",
            doc: "rebuild the server from one (needs snapshotId; replaces the disk).",
        }),
        cli: Some(CliCommand {
            path: &["snapshot", "restore"],
            about: "Rebuild a server from one of its snapshots and wait until it runs.",
            target: CliTarget::One,
        }),
    };
    type Args = SnapshotRef;
    type Body = SnapshotActionResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &SnapshotRef) -> OpResult<Self::Body> {
        snapshot_restore(ctx, query, args.id()).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &SnapshotRef) -> Vec<String> {
        vec![format!(
            "Rebuild server {} from snapshot {} via {} and wait until running",
            server.id,
            args.id(),
            plan::api(ctx, server)
        )]
    }

    fn question(server: &ServerRecord, args: &SnapshotRef) -> String {
        format!(
            "Rebuild \"{}\" ({}) from snapshot {}? Everything written since is LOST. Continue?",
            server.name,
            server.ip,
            args.id()
        )
    }

    fn target(args: &SnapshotRef) -> Option<&str> {
        args.snapshot_id.as_deref()
    }
}
