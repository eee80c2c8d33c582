//! A third-party operation in one file: `cron-reload` asks a server's cron
//! daemon to re-read its tables (`SIGHUP`), for hosts whose tables were
//! edited by hand. One type and one registration line: it then appears as
//! `acme cron-reload` (with `--dry-run`, `--all` and the question before it
//! runs), as the action `cron-reload` of the MCP tool `server_maintain`
//! (schema, strict arguments, annotations, tasks), in the policy (SAFE_MODE
//! blocks it, safety levels and windows apply, refusals are logged) and in
//! the audit log, with no change to kastell.

use std::time::Duration;

use async_trait::async_trait;
use kastell::ops::{
    CliCommand, CliTarget, Context, McpAction, OpError, OpResult, Operation, Scope, Spec,
};
use kastell::policy::{Category, Rule};
use kastell::state::store::ServerRecord;
use kastell_core::{Error, RemoteCommand, TransportExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Signals the named daemon (`{}`) and says whether one was running.
const RELOAD: &str = "if pkill -HUP -x {}; then echo signalled; else echo not-running; fi";

/// Arguments of `cron-reload`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReloadArgs {
    /// cron-reload only: the daemon's process name (default `cron`; `crond`
    /// on Red Hat family systems).
    #[serde(default)]
    #[schemars(length(min = 1, max = 32), regex(pattern = r"^[a-z][a-z0-9_-]*$"))]
    #[arg(
        long,
        value_name = "NAME",
        help = "The daemon's process name (default: cron)"
    )]
    pub(crate) daemon: Option<String>,
}

impl ReloadArgs {
    fn daemon(&self) -> &str {
        self.daemon.as_deref().unwrap_or("cron")
    }
}

/// What `cron-reload` did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reloaded {
    /// Always `true`.
    pub(crate) success: bool,
    /// The server's name.
    pub(crate) server: String,
    /// The daemon signalled.
    pub(crate) daemon: String,
    /// Whether it was running (and so was signalled).
    pub(crate) signalled: bool,
}

/// `cron-reload`.
pub(crate) struct CronReload;

#[async_trait]
impl Operation for CronReload {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("cron-reload", Category::Disruptive)
            .blocked(
                "Cron reload is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable reloading cron",
            )
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_maintain",
            action: "cron-reload",
            doc: "make the cron daemon re-read its tables (SIGHUP).",
        }),
        cli: Some(CliCommand {
            path: &["cron-reload"],
            about: "Make the cron daemon re-read its tables (SIGHUP).",
            target: CliTarget::Fleet,
        }),
    };
    type Args = ReloadArgs;
    type Body = Reloaded;

    async fn run(ctx: &Context, query: Option<&str>, args: &ReloadArgs) -> OpResult<Reloaded> {
        let admitted = ctx.admit(Self::ID, query)?;
        let server = &admitted.server;
        let fail = |e: Error| OpError::from(e).on(server);
        let command = RemoteCommand::template(RELOAD, &[args.daemon()]).map_err(fail)?;
        let output = ctx
            .transport_for(server)
            .exec_checked(&command, Duration::from_secs(30))
            .await
            .map_err(fail)?;
        Ok(Reloaded {
            success: true,
            server: server.name.clone(),
            daemon: args.daemon().to_owned(),
            signalled: output.stdout_text() == "signalled",
        })
    }

    fn plan(_: &Context, server: &ServerRecord, args: &ReloadArgs) -> Vec<String> {
        vec![format!(
            "Send SIGHUP to {} on {} over SSH (pkill -HUP -x {})",
            args.daemon(),
            server.ip,
            args.daemon()
        )]
    }
}

kastell::register_operation!(CronReload);
