//! The MCP tools: `server_backup`, `server_maintain`, `server_info` and
//! `server_logs`. Each parses its arguments, calls the operation and
//! renders the result; the policy (SAFE_MODE first) is applied inside the
//! operations.

use std::sync::Arc;

use kastell_core::{Error, ErrorKind};
use rmcp::handler::server::common::{schema_for_empty_input, schema_for_input};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, JsonObject, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;

use super::output::{BackupOutput, InfoOutput, LogsOutput, MaintainOutput};
use super::params::{
    self, BackupAction, BackupArgs, InfoAction, InfoArgs, LogsAction, LogsArgs, LogsSource,
    MaintainAction, MaintainArgs,
};
use super::progress::Progress;
use super::render::{bad_input, failure, finish};
use crate::ops::{self, Context, LogSource, MaintainOptions, OpError};

/// The input schema of `T`, or an empty object schema if it cannot be made
/// (never a panic at startup).
fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    schema_for_input::<T>().unwrap_or_else(|_| schema_for_empty_input())
}

/// Refuses to start destructive work once the client cancelled.
fn cancelled(rc: &RequestContext<RoleServer>) -> Option<CallToolResult> {
    rc.ct.is_cancelled().then(|| {
        failure(OpError::from(
            Error::new(
                ErrorKind::Cancelled,
                "Cancelled before anything was changed",
            )
            .with_hint("Nothing ran; call the tool again to retry"),
        ))
    })
}

/// The kastell MCP server.
#[derive(Debug, Clone)]
pub struct KastellMcp {
    ctx: Context,
    tool_router: ToolRouter<Self>,
}

#[tool_router(router = tool_router)]
impl KastellMcp {
    /// A server running operations in `ctx` (whose surface should be
    /// [`crate::Surface::Mcp`]).
    pub fn new(ctx: Context) -> Self {
        Self {
            ctx,
            tool_router: Self::tool_router(),
        }
    }

    /// Backups over SSH and provider snapshots.
    #[tool(
        name = "server_backup",
        description = "Back up and restore a server, and manage its cloud provider snapshots. \
backup-create backs the server up over SSH (Coolify/Dokploy database and configuration, or the \
configured paths of a bare server) into the local store with SHA-256 checksums; backup-list lists \
local backups newest first; backup-restore verifies a backup, takes a safety backup, stops the \
platform, restores and starts it again (backupId required, from backup-list). snapshot-create takes \
a provider snapshot and waits until it is available (billable); snapshot-list lists the server's \
snapshots; snapshot-delete deletes one and snapshot-restore rebuilds the server's disk from one \
(snapshotId required, from snapshot-list). Snapshot actions need a cloud server (not manually \
added) and its provider's API token (HETZNER_TOKEN, DIGITALOCEAN_TOKEN, VULTR_TOKEN, LINODE_TOKEN). \
SAFE_MODE (on by default) blocks backup-restore, snapshot-create, snapshot-delete and \
snapshot-restore; set KASTELL_SAFE_MODE=false to allow them.",
        input_schema = input::<BackupArgs>(),
        output_schema = schema_for_output::<BackupOutput>(),
        annotations(
            title = "Server backups and snapshots",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn server_backup(
        &self,
        Parameters(arguments): Parameters<JsonObject>,
        rc: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let args: BackupArgs = match params::parse("server_backup", arguments) {
            Ok(a) => a,
            Err(e) => return bad_input(&self.ctx, e),
        };
        let ctx = &self.ctx;
        let server = params::server(&args.server);
        let progress = Progress::new(&rc);
        let long = matches!(
            args.action,
            BackupAction::BackupCreate
                | BackupAction::BackupRestore
                | BackupAction::SnapshotCreate
                | BackupAction::SnapshotRestore
        );
        if long && let Some(stop) = cancelled(&rc) {
            return stop;
        }
        let snapshot_id = args.snapshot_id.as_deref().unwrap_or("");
        match args.action {
            BackupAction::BackupCreate => finish(
                progress
                    .around("backup-create", ctx, |c| async move {
                        ops::backup_create(&c, server).await
                    })
                    .await,
                BackupOutput::BackupCreate,
            ),
            BackupAction::BackupList => finish(
                ops::backup_list(ctx, server).await,
                BackupOutput::BackupList,
            ),
            BackupAction::BackupRestore => finish(
                progress
                    .around("backup-restore", ctx, |c| async move {
                        ops::backup_restore(&c, server, args.backup_id.as_deref()).await
                    })
                    .await,
                BackupOutput::BackupRestore,
            ),
            BackupAction::SnapshotCreate => finish(
                progress
                    .around("snapshot-create", ctx, |c| async move {
                        ops::snapshot_create(&c, server).await
                    })
                    .await,
                BackupOutput::SnapshotCreate,
            ),
            BackupAction::SnapshotList => finish(
                ops::snapshot_list(ctx, server).await,
                BackupOutput::SnapshotList,
            ),
            BackupAction::SnapshotDelete => finish(
                ops::snapshot_delete(ctx, server, snapshot_id).await,
                BackupOutput::SnapshotDelete,
            ),
            BackupAction::SnapshotRestore => finish(
                progress
                    .around("snapshot-restore", ctx, |c| async move {
                        ops::snapshot_restore(&c, server, snapshot_id).await
                    })
                    .await,
                BackupOutput::SnapshotRestore,
            ),
        }
    }

    /// Updates, proven reboots and full maintenance.
    #[tool(
        name = "server_maintain",
        description = "Update, restart or fully maintain a server. update runs the platform's \
update (Coolify or Dokploy update script; a package upgrade on bare servers). restart reboots the \
server through its provider (over SSH for manually added servers), proves the reboot by a changed \
boot id, then waits for SSH and platform health. maintain runs status check, update, health check, \
reboot and final check, reporting every step with its duration; a failed health check after the \
update skips the reboot unless rebootEvenIfUnhealthy is set; skipReboot skips it; snapshot takes \
and awaits a provider snapshot first (billable, needs the provider token). Bare servers are \
maintained too (reboot only when the upgrade requires it). SAFE_MODE (on by default) blocks all \
three actions; set KASTELL_SAFE_MODE=false to allow them.",
        input_schema = input::<MaintainArgs>(),
        output_schema = schema_for_output::<MaintainOutput>(),
        annotations(
            title = "Server updates, reboots and maintenance",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn server_maintain(
        &self,
        Parameters(arguments): Parameters<JsonObject>,
        rc: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let args: MaintainArgs = match params::parse("server_maintain", arguments) {
            Ok(a) => a,
            Err(e) => return bad_input(&self.ctx, e),
        };
        let ctx = &self.ctx;
        let server = params::server(&args.server);
        if let Some(stop) = cancelled(&rc) {
            return stop;
        }
        let progress = Progress::new(&rc);
        match args.action {
            MaintainAction::Update => finish(
                progress
                    .around(
                        "update",
                        ctx,
                        |c| async move { ops::update(&c, server).await },
                    )
                    .await,
                MaintainOutput::Update,
            ),
            MaintainAction::Restart => finish(
                progress
                    .around(
                        "restart",
                        ctx,
                        |c| async move { ops::restart(&c, server).await },
                    )
                    .await,
                MaintainOutput::Restart,
            ),
            MaintainAction::Maintain => {
                let options = MaintainOptions {
                    skip_reboot: args.skip_reboot,
                    reboot_even_if_unhealthy: args.reboot_even_if_unhealthy,
                    snapshot: args.snapshot,
                };
                finish(
                    progress
                        .around("maintain", ctx, |c| async move {
                            ops::maintain(&c, server, options).await
                        })
                        .await,
                    MaintainOutput::Maintain,
                )
            }
        }
    }

    /// The fleet, a server's status and its platform's health.
    #[tool(
        name = "server_info",
        description = "Read-only server information. list shows every server in the local fleet \
store (name, IP, provider, platform). status checks SSH reachability and the boot id, and the \
provider's status when the server is a cloud server with a token. health runs the platform's \
health check (Coolify/Dokploy HTTP check; SSH on bare servers). Never changes anything; allowed \
in SAFE_MODE.",
        input_schema = input::<InfoArgs>(),
        output_schema = schema_for_output::<InfoOutput>(),
        annotations(
            title = "Server information",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn server_info(&self, Parameters(arguments): Parameters<JsonObject>) -> CallToolResult {
        let args: InfoArgs = match params::parse("server_info", arguments) {
            Ok(a) => a,
            Err(e) => return bad_input(&self.ctx, e),
        };
        let ctx = &self.ctx;
        let server = params::server(&args.server);
        match args.action {
            InfoAction::List => finish(ops::server_list(ctx).await, InfoOutput::List),
            InfoAction::Status => finish(ops::server_status(ctx, server).await, InfoOutput::Status),
            InfoAction::Health => finish(ops::server_health(ctx, server).await, InfoOutput::Health),
        }
    }

    /// Logs and resource use.
    #[tool(
        name = "server_logs",
        description = "Read-only diagnostics over SSH. logs returns the last lines (default 100, at \
most 2000) of the system journal (journalctl, source system) or of the platform's container \
(docker logs, source platform; not on bare servers). monitor returns load averages \
(/proc/loadavg), memory (free -b) and root-disk use (df -P /). Never changes anything; allowed in \
SAFE_MODE.",
        input_schema = input::<LogsArgs>(),
        output_schema = schema_for_output::<LogsOutput>(),
        annotations(
            title = "Server logs and monitoring",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn server_logs(&self, Parameters(arguments): Parameters<JsonObject>) -> CallToolResult {
        let args: LogsArgs = match params::parse("server_logs", arguments) {
            Ok(a) => a,
            Err(e) => return bad_input(&self.ctx, e),
        };
        let ctx = &self.ctx;
        let server = params::server(&args.server);
        match args.action {
            LogsAction::Logs => {
                let source = match args.source {
                    LogsSource::System => LogSource::System,
                    LogsSource::Platform => LogSource::Platform,
                };
                finish(
                    ops::logs(ctx, server, source, args.lines).await,
                    LogsOutput::Logs,
                )
            }
            LogsAction::Monitor => finish(ops::monitor(ctx, server).await, LogsOutput::Monitor),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for KastellMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "kastell-mcp",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "kastell keeps self-hosted servers safe. Start with server_info {action: 'list'}; \
use server_backup before risky work; SAFE_MODE blocks destructive actions unless \
KASTELL_SAFE_MODE=false.",
            )
    }
}
