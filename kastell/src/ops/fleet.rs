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
