//! The fleet at a glance, for the MCP `kastell://fleet` resource: every
//! server with its platform, provider and newest local backup (with that
//! backup's status), read from the fleet store and the backup store
//! alone, so reading it never touches a server.

use schemars::JsonSchema;
use serde::Serialize;

use super::backup::BackupEntry;
use super::context::Context;
use super::info::ServerListOp;
use super::operation::Operation;
use super::result::OpResult;

/// One server of the fleet overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetServer {
    /// Server name.
    pub name: String,
    /// Server IP.
    pub ip: String,
    /// Cloud provider id (`hetzner`, ...), or `manual`.
    pub provider: String,
    /// Platform (`coolify`, `dokploy`, `bare`).
    pub platform: String,
    /// How many local backups it has.
    pub backup_count: usize,
    /// Its newest local backup, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupEntry>,
    /// Why its backups could not be listed, when they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_problem: Option<String>,
}

/// The fleet overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetOverview {
    /// How many servers there are.
    pub server_count: usize,
    /// The servers, in store order.
    pub servers: Vec<FleetServer>,
}

/// Every server with its newest backup. Allowed wherever the fleet list
/// is (it is read-only); a server whose backups cannot be listed is shown
/// with the problem instead of failing the whole overview.
pub async fn fleet_overview(ctx: &Context) -> OpResult<FleetOverview> {
    let token = |p: &str| ctx.token_present(p);
    ctx.policy
        .check(ServerListOp::ID, ctx.surface, None, token)?;
    let servers: Vec<FleetServer> = ctx
        .store
        .servers()?
        .iter()
        .map(|r| {
            let listed = ctx.engine.list(&r.name);
            let (backup_count, last_backup, backup_problem) = match &listed {
                Ok(backups) => (backups.len(), backups.first().map(BackupEntry::from), None),
                Err(e) => (0, None, Some(e.to_string())),
            };
            FleetServer {
                name: r.name.clone(),
                ip: r.ip.clone(),
                provider: r.provider_id().unwrap_or("manual").to_owned(),
                platform: r.platform_id().to_owned(),
                backup_count,
                last_backup,
                backup_problem,
            }
        })
        .collect();
    Ok(FleetOverview {
        server_count: servers.len(),
        servers,
    })
}

/// How many servers a fleet-wide status asks at once.
pub const FLEET_STATUS_CONCURRENCY: usize = 8;

/// One server in a fleet-wide status: what the fleet overview says of it,
/// and what its status check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetServerStatus {
    /// Server name.
    pub name: String,
    /// Server IP.
    pub ip: String,
    /// Cloud provider id, or `manual`.
    pub provider: String,
    /// Platform.
    pub platform: String,
    /// Whether SSH answered.
    pub reachable: bool,
    /// The provider's status, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<String>,
    /// The newest local backup's id (a safety backup counts: see
    /// `backup-list`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_backup: Option<String>,
    /// How many local backups it has.
    pub backup_count: usize,
    /// What could not be checked, and the status's warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Every server's status at once: what `status` without a server answers
/// over MCP when the fleet has more than one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetStatus {
    /// Always `true`: a server that is unreachable or whose status could
    /// not be read is listed with why (`notes`).
    pub success: bool,
    /// How many servers there are.
    pub server_count: usize,
    /// The servers, in store order.
    pub servers: Vec<FleetServerStatus>,
}

/// The status of every server, at most [`FLEET_STATUS_CONCURRENCY`] at
/// once, each as [`super::server_status`] reads it, with its newest local
/// backup. A server whose status cannot be read is listed with why.
/// Refuses only when the policy refuses the fleet list or the store cannot
/// be read.
pub async fn fleet_status(ctx: &Context) -> OpResult<FleetStatus> {
    let overview = fleet_overview(ctx).await?;
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(FLEET_STATUS_CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (index, server) in overview.servers.iter().enumerate() {
        let (ctx, permits, name) = (ctx.clone(), permits.clone(), server.name.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, super::server_status(&ctx, Some(&name)).await)
        });
    }
    let mut statuses: Vec<Option<_>> = (0..overview.servers.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((index, status)) => {
                if let Some(slot) = statuses.get_mut(index) {
                    *slot = Some(status);
                }
            }
            Err(e) => tracing::error!("a status task ended abnormally: {e}"),
        }
    }
    let servers: Vec<FleetServerStatus> = overview
        .servers
        .into_iter()
        .zip(statuses)
        .map(|(server, status)| {
            let mut entry = FleetServerStatus {
                newest_backup: server.last_backup.map(|b| b.backup_id),
                backup_count: server.backup_count,
                notes: server.backup_problem.into_iter().collect(),
                name: server.name,
                ip: server.ip,
                provider: server.provider,
                platform: server.platform,
                reachable: false,
                provider_status: None,
            };
            match status {
                Some(Ok(reply)) => {
                    let status = reply.body;
                    entry.reachable = status.reachable;
                    entry.provider_status = status.provider_status;
                    entry.notes.extend(status.notes);
                    entry.notes.extend(status.warnings);
                }
                Some(Err(e)) => entry.notes.push(e.error),
                None => entry
                    .notes
                    .push("the status check ended abnormally".to_owned()),
            }
            entry
        })
        .collect();
    Ok(FleetStatus {
        success: true,
        server_count: servers.len(),
        servers,
    })
}
