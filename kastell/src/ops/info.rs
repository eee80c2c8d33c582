//! Read-only server information for `server_info`: the fleet list, a
//! server's status (SSH reachability, boot id, the provider's view) and
//! its platform's health.

#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use super::{LogsOp, MonitorOp};
use kastell_core::TransportExt;
use schemars::JsonSchema;
use serde::Serialize;

use super::context::{Context, server_id};
use super::operation::{CliCommand, CliTarget, McpAction, NoArgs, Operation, Scope, Spec};
use super::plan;
use super::result::{OpError, OpResult};
use super::suggest::{Candidate, Suggestion, suggest};
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;
use crate::state::verifications::{self, Proof, Verification, Verifications};

/// One server in the fleet list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSummary {
    /// Server name.
    pub name: String,
    /// Server IP.
    pub ip: String,
    /// Cloud provider id (`hetzner`, ...), or `manual`.
    pub provider: String,
    /// Platform (`coolify`, `dokploy`, `bare`).
    pub platform: String,
    /// Whether it was added manually (no provider API).
    pub manual: bool,
}

/// The fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerListResult {
    /// Always `true`.
    pub success: bool,
    /// How many servers there are.
    pub server_count: usize,
    /// The servers, in store order.
    pub servers: Vec<ServerSummary>,
    /// Set when the fleet is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Next steps the policy allows.
    #[serde(rename = "suggested_actions")]
    pub suggested_actions: Vec<Suggestion>,
}

/// A server's status. An unreachable server is reported here, not as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    /// Platform.
    pub platform: String,
    /// Whether SSH answered.
    pub reachable: bool,
    /// The kernel's boot id, when SSH answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// The provider's status (`running`, ...), when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_status: Option<String>,
    /// What could not be checked, and why.
    pub notes: Vec<String>,
    /// The newest proof that one of its backups is good (`backup verify`
    /// or `backup drill`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_verified_backup: Option<Verification>,
    /// The newest measured recovery (`drill --scratch`): when, from which
    /// backup, and its time per phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_recovery: Option<Verification>,
    /// The server that replaced this one (`recover`), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// What needs attention: no proven backup, or the newest proof older
    /// than the policy (`KASTELL_VERIFY_MAX_AGE`, default 8 days).
    pub warnings: Vec<String>,
}

/// The reply carrying a [`ServerStatus`].
pub type ServerStatusResult = Reply<ServerStatus>;

/// A platform's health. An unhealthy platform is reported here, not as an
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerHealth {
    /// Platform.
    pub platform: String,
    /// Healthy only on a definite good answer.
    pub healthy: bool,
    /// What was checked and what it said.
    pub detail: String,
}

/// The reply carrying a [`ServerHealth`].
pub type ServerHealthResult = Reply<ServerHealth>;

/// Lists the fleet (local only).
pub async fn server_list(ctx: &Context) -> OpResult<ServerListResult> {
    let token = |p: &str| ctx.token_present(p);
    ctx.policy
        .check(ServerListOp::ID, ctx.surface, None, token)?;
    let records = ctx.store.servers()?;
    let servers: Vec<ServerSummary> = records
        .iter()
        .map(|r| ServerSummary {
            name: r.name.clone(),
            ip: r.ip.clone(),
            provider: r.provider_id().unwrap_or("manual").to_owned(),
            platform: r.platform_id().to_owned(),
            manual: r.is_manual(),
        })
        .collect();
    let (message, suggested_actions) = match records.first() {
        None => (Some("No servers found".to_owned()), Vec::new()),
        Some(first) => (
            None,
            suggest(
                &ctx.policy,
                ctx.surface,
                Some(first),
                token,
                vec![Candidate::new(StatusOp::ID, "Check a server's status")],
            ),
        ),
    };
    Ok(ServerListResult {
        success: true,
        server_count: servers.len(),
        servers,
        message,
        suggested_actions,
    })
}

fn next(
    ctx: &Context,
    server: &ServerRecord,
    action: crate::policy::OpId,
    why: &str,
) -> Vec<Suggestion> {
    ctx.suggest(server, vec![Candidate::new(action, why)])
}

/// A server's status: SSH reachability and boot id, and the provider's
/// status when the server is a cloud server and its token is there.
pub async fn server_status(ctx: &Context, query: Option<&str>) -> OpResult<ServerStatusResult> {
    let admitted = ctx.admit(StatusOp::ID, query)?;
    let server = &admitted.server;
    let mut notes = Vec::new();
    let transport = ctx.transport_for(server);
    let boot_id = match transport.boot_id().await {
        Ok(id) => Some(id),
        Err(e) => {
            notes.push(format!("SSH: {e}"));
            None
        }
    };
    let mut provider_status = None;
    match server.provider_id() {
        Some(p) if !server.is_manual() && ctx.token_present_for(server, p) => {
            let status = match (ctx.provider_for(server), server_id(server)) {
                (Ok(provider), Ok(id)) => provider.get_server(&id).await.map(|s| s.raw_status),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            match status {
                Ok(s) => provider_status = Some(s),
                Err(e) => notes.push(format!("Provider: {e}")),
            }
        }
        Some(p) if !server.is_manual() => notes.push(format!("No API token for {p}")),
        _ => {}
    }

    let (last_verified_backup, warnings) = backup_proof(ctx, &server.name);
    let last_recovery = Verifications::load(ctx.store.dir())
        .ok()
        .and_then(|v| v.last_recovery(&server.name).cloned());
    if let Some(by) = super::recover::replaced_by(server) {
        notes.push(format!(
            "Replaced by {by} (kastell recover); this record is kept for its backups"
        ));
    }
    let replaced_by = super::recover::replaced_by(server).map(str::to_owned);
    Ok(Reply::on(
        server,
        ServerStatus {
            platform: server.platform_id().to_owned(),
            reachable: boot_id.is_some(),
            boot_id,
            provider_status,
            notes,
            last_verified_backup,
            last_recovery,
            replaced_by,
            warnings,
        },
        next(ctx, server, HealthOp::ID, "Check platform health"),
    ))
}

/// The newest proof of a good backup of `server`, and a warning when there
/// is none or it is older than the policy allows.
fn backup_proof(ctx: &Context, server: &str) -> (Option<Verification>, Vec<String>) {
    let newest = match Verifications::load(ctx.store.dir()) {
        Ok(v) => v.newest_for(server).cloned(),
        Err(e) => return (None, vec![e.to_string()]),
    };
    let limit = match verifications::max_age(&ctx.env) {
        Ok(limit) => limit,
        Err(e) => return (newest, vec![e.to_string()]),
    };
    let warning = match newest.as_ref().map(|v| (v, v.at())) {
        None => Some(format!(
            "No backup of {server} has been verified or drilled: run `kastell backup drill {server}`"
        )),
        Some((v, Some(at))) => {
            let age = chrono::Utc::now().signed_duration_since(at);
            let allowed = chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
            (age > allowed).then(|| {
                format!(
                    "The newest proven backup of {server} ({}, {} at {}) is {} h old, older than the {} h the policy allows ({})",
                    v.backup_id,
                    match v.proof {
                        Proof::Drill => "drilled",
                        Proof::Scratch => "recovered in a scratch drill",
                        Proof::Checksums => "verified",
                    },
                    v.verified_at,
                    age.num_hours(),
                    limit.as_secs() / 3600,
                    verifications::MAX_AGE_VAR
                )
            })
        }
        Some((v, None)) => Some(format!(
            "The verification record of backup {} has an unreadable time",
            v.backup_id
        )),
    };
    let safety = newest.as_ref().and_then(|v| safety_proof(ctx, server, v));
    (newest, warning.into_iter().chain(safety).collect())
}

/// A warning when the proof `v` is of a local safety backup: it proves the
/// state a restore replaced, not a backup any restore picks by default.
fn safety_proof(ctx: &Context, server: &str, v: &Verification) -> Option<String> {
    if v.repository.is_some() {
        return None;
    }
    let id = kastell_core::types::BackupId::new(v.backup_id.clone()).ok()?;
    let stored = ctx.engine.find(server, &id).ok()?;
    stored.safety_for().map(|restored| {
        format!(
            "The newest proven backup of {server} ({id}) is the safety backup taken before restoring {restored}: a restore without --backup never picks it; prove the backup it would pick with `kastell backup drill {server}`"
        )
    })
}

/// The platform's health over SSH (bare: SSH itself).
pub async fn server_health(ctx: &Context, query: Option<&str>) -> OpResult<ServerHealthResult> {
    let admitted = ctx.admit(HealthOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: kastell_core::Error| OpError::from(e).on(server);
    let platform = ctx
        .platform_for(server, ctx.transport_for(server))
        .map_err(fail)?;
    let health = platform.health().await.map_err(fail)?;
    let (action, why) = if health.healthy {
        (MonitorOp::ID, "See CPU, memory and disk")
    } else {
        (LogsOp::ID, "Read the logs")
    };

    Ok(Reply::on(
        server,
        ServerHealth {
            platform: server.platform_id().to_owned(),
            healthy: health.healthy,
            detail: health.detail,
        },
        next(ctx, server, action, why),
    ))
}

/// `list`: the fleet store's servers. Its command line is `server list`.
pub struct ServerListOp;

#[async_trait::async_trait]
impl Operation for ServerListOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("server-list", Category::Read),
        scope: Scope::Fleet,
        mcp: Some(McpAction {
            tool: "server_info",
            action: "list",
            doc: "every server in the local fleet store (name, IP, provider, platform).",
        }),
        cli: None,
    };
    type Args = NoArgs;
    type Body = ServerListResult;

    async fn run(ctx: &Context, _: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        server_list(ctx).await
    }

    fn plan(ctx: &Context, _: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![format!(
            "Read the fleet store in {} (local)",
            ctx.store.dir().display()
        )]
    }
}

/// `status`: reachability, the provider's view and the newest proven
/// backup.
pub struct StatusOp;

#[async_trait::async_trait]
impl Operation for StatusOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("status", Category::Read),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_info",
            action: "status",
            doc: "SSH reachability, boot id and (with a token) the provider's status; without server on a fleet of several, every server's (fleet-status).",
        }),
        cli: Some(CliCommand {
            path: &["status"],
            about: "A server's status: SSH, the provider's view, and the newest proven backup (a warning when it is older than KASTELL_VERIFY_MAX_AGE).",
            target: CliTarget::Fleet,
        }),
    };
    type Args = NoArgs;
    type Body = ServerStatusResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        server_status(ctx, query).await
    }

    /// One line: SSH reachability and the provider's status.
    fn render(body: &ServerStatusResult) -> Vec<String> {
        let status = &body.body;
        let ssh = if status.reachable {
            "reachable over SSH"
        } else {
            "unreachable over SSH"
        };
        let provider = status
            .provider_status
            .as_deref()
            .map(|p| format!(", provider: {p}"))
            .unwrap_or_default();
        vec![format!("  {ssh}{provider}")]
    }

    fn plan(ctx: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![
            format!("Read the boot id over SSH ({})", plan::ssh_target(server)),
            format!(
                "Ask {} for the server's status (cloud servers with a token)",
                plan::api(ctx, server)
            ),
            "Read the newest proven backup (verify or drill) from the kastell directory".to_owned(),
        ]
    }
}

/// `health`: the platform's health check.
pub struct HealthOp;

#[async_trait::async_trait]
impl Operation for HealthOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("health", Category::Read),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_info",
            action: "health",
            doc: "the platform's health check (Coolify/Dokploy over HTTP; SSH on bare servers).",
        }),
        cli: Some(CliCommand {
            path: &["health"],
            about: "Run the platform's health check (Coolify/Dokploy over HTTP; SSH on bare servers).",
            target: CliTarget::Fleet,
        }),
    };
    type Args = NoArgs;
    type Body = ServerHealthResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        server_health(ctx, query).await
    }

    fn plan(_: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![format!(
            "Run the {} health check through {} (read-only)",
            server.platform_id(),
            plan::ssh_target(server)
        )]
    }
}

/// `server-add`: add a server to the fleet store (its command is its own).
pub const SERVER_ADD: &Spec = &Spec {
    rule: Rule::new("server-add", Category::SafeWrite),
    scope: Scope::Server,
    mcp: None,
    cli: None,
};

/// `server-remove`: remove a server from the fleet store (its command is
/// its own).
pub const SERVER_REMOVE: &Spec = &Spec {
    rule: Rule::new("server-remove", Category::Destructive).blocked(
        "Server removal is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable removing servers",
    ),
    scope: Scope::Server,
    mcp: None,
    cli: None,
};

/// `doctor`: check kastell's set-up and a server's reachability (its
/// command is its own).
pub const DOCTOR: &Spec = &Spec {
    rule: Rule::new("doctor", Category::Read),
    scope: Scope::Server,
    mcp: None,
    cli: None,
};
