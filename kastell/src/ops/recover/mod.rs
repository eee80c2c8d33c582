//! `recover`: a server brought back from its backup onto a new server, at
//! the same provider or another (`--to PROVIDER[:SIZE][@REGION]`), and
//! `drill-scratch` ([`scratch`]): the same recovery onto a throwaway
//! server, measured, then deleted.
//!
//! The recovered server joins the fleet under a name of its own; the old
//! record is kept, marked replaced ([`record`]). DNS is never changed: the
//! result says which names point at the old address.

mod flow;
mod record;
pub(crate) mod scratch;

use std::net::IpAddr;

use async_trait::async_trait;
use kastell_core::Error;
use kastell_core::types::{ManagedRole, StepReport, StepTimer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backup::local_copy;
use super::context::Context;
use super::operation::{CliCommand, CliTarget, McpAction, Operation, Scope, Spec};
use super::reply::Reply;
use super::result::{OpError, OpResult, Step, steps};
use super::suggest::Candidate;
use super::{HealthOp, StatusOp};
use crate::engine::recover::{Target, dns_pointing_at};
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;

pub(crate) use flow::{Priced, price};
pub(crate) use record::replaced_by;
pub use scratch::{DrillScratch, DrillScratchOp, DrillScratchResult, ScratchArgs, drill_scratch};

/// Where a recovery goes and which backup it restores: the arguments
/// `recover` and `drill-scratch` share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct RecoverFrom {
    /// Where a new server goes: PROVIDER[:SIZE][@REGION].
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = r"^[a-z0-9._-]+(:[a-z0-9._-]+)?(@[a-z0-9._-]+)?$")
    )]
    #[arg(
        long = "to",
        value_name = "PROVIDER[:SIZE][@REGION]",
        help = "Where the new server goes (size and region default to the provider's; a scratch drill's defaults to the server's own provider)"
    )]
    pub to: Option<String>,
    /// Backup id for backup-restore, from backup-list (letters, digits, `-`
    /// and `_`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    #[arg(
        long = "backup",
        value_name = "ID",
        help = "The backup id (default: the newest that is not a restore's safety backup)"
    )]
    pub backup_id: Option<String>,
}

/// Arguments of `recover`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct RecoverArgs {
    /// Where the new server goes and from which backup.
    #[serde(flatten)]
    #[command(flatten)]
    pub from: RecoverFrom,
    /// The new server's name (default: <server>-recovered).
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    )]
    #[arg(
        long = "name",
        value_name = "NAME",
        help = "The new server's name in the fleet (default: <server>-recovered)"
    )]
    pub name: Option<String>,
}

impl RecoverArgs {
    /// The parsed `--to`; refuses a missing or malformed one.
    fn target(&self) -> Result<Target, Error> {
        let to = self.from.to.as_deref().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Error::invalid_input("recover needs --to PROVIDER[:SIZE][@REGION] (MCP: to)")
                .with_hint("Name where the new server goes, e.g. --to hetzner or --to digitalocean:s-2vcpu-4gb@fra1")
        })?;
        Target::parse(to)
    }
}

/// A server recovered onto a new one.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recover {
    /// The backup restored.
    pub backup_id: String,
    /// The new server's name in the fleet.
    pub new_server: String,
    /// Its public IPv4.
    pub new_ip: String,
    /// Its id at its provider.
    pub new_id: String,
    /// Its provider, size and region (`digitalocean:s-2vcpu-4gb@fra1`).
    pub target: String,
    /// What it costs (`$24.00/mo ($0.0357/h)`).
    pub price: String,
    /// The monthly price, in the provider's currency.
    pub monthly_cost: f64,
    /// From the first request to the platform healthy, in milliseconds.
    pub recovery_ms: u64,
    /// Each phase with its duration (they add up to the recovery).
    pub steps: Vec<Step>,
    /// The DNS names that resolve to the old address now: point them at
    /// the new one to cut over (kastell changes no DNS).
    pub dns_to_change: Vec<String>,
    /// What to do to cut over.
    pub cutover: Vec<String>,
    /// Things to know.
    pub warnings: Vec<String>,
}

/// The reply carrying a [`Recover`] (on the old server).
pub type RecoverResult = Reply<Recover>;

/// Recovers the server `query` names from its backup (`args.from.backup_id`, or
/// the newest that is not a safety backup) onto a new server where
/// `args.from.to` says: prices it, creates it (marked kastell's, role
/// recovery), waits for SSH and pins its host key, installs the platform,
/// restores and checks health, then adds it to the fleet and marks the
/// old record replaced. Order: policy (SAFE_MODE blocks it: destructive
/// and billable), the target, the backup, the price; nothing is created
/// before these pass. A failure after the server was created leaves it as
/// it is, marked, and says how to delete it or retry.
pub async fn recover(
    ctx: &Context,
    query: Option<&str>,
    args: &RecoverArgs,
) -> OpResult<RecoverResult> {
    let admitted = ctx.admit(RecoverOp::ID, query)?;
    let old = &admitted.server;
    let refuse = |e: Error, ran: &[StepReport]| OpError::from(e).on(old).with_steps(ran);
    let target = args.target().map_err(|e| refuse(e, &[]))?;
    let (backup_id, mut warnings) = local_copy(ctx, old, args.from.backup_id.as_deref(), None)
        .await
        .map_err(|e| refuse(e, &[]))?;
    let name = record::new_name(&ctx.store, &old.name, args.name.as_deref())
        .map_err(|e| refuse(e, &[]))?;
    let priced = price(ctx, old, &target, &name, ManagedRole::Recovery)
        .await
        .map_err(|e| refuse(e, &[]))?;
    ctx.progress().message(&format!(
        "Recovering {} from backup {backup_id} onto a new server at {}: {}",
        old.name, priced.provider_id, priced.price
    ));
    let recovered = match flow::recover_onto(ctx, old, &priced, &backup_id).await {
        Ok(recovered) => recovered,
        Err(failed) => {
            let error = left_marked(failed.error, &priced, failed.created.as_ref());
            return Err(refuse(error, &failed.steps));
        }
    };
    let mut ran = recovered.steps;
    warnings.extend(recovered.warnings);
    let timer = StepTimer::start("Join the fleet");
    let new = match record::join_fleet(&ctx.store, &old.name, recovered.record.clone()) {
        Ok(new) => {
            ran.push(timer.success(format!(
                "{} added; {} kept, marked replaced",
                recovered.record.name, old.name
            )));
            new
        }
        Err(e) => {
            ran.push(timer.failure(&e));
            let id = kastell_core::types::ServerId::new(recovered.record.id.clone()).ok();
            return Err(refuse(left_marked(e, &priced, id.as_ref()), &ran));
        }
    };
    let dns = match old.ip.parse::<IpAddr>() {
        Ok(ip) => dns_pointing_at(old.domain.iter().cloned().collect(), ip).await,
        Err(_) => Vec::new(),
    };
    let cutover = cutover_lines(old, &new, &dns);
    let recovery_ms = ran.iter().map(|s| s.duration_ms).sum();
    Ok(Reply::on(
        old,
        Recover {
            backup_id: backup_id.to_string(),
            new_server: new.name.clone(),
            new_ip: new.ip.clone(),
            new_id: new.id.clone(),
            target: format!(
                "{}:{}@{}",
                priced.provider_id, priced.spec.size, priced.spec.region
            ),
            price: priced.price.to_string(),
            monthly_cost: priced.price.monthly,
            recovery_ms,
            steps: steps(&ran),
            dns_to_change: dns,
            cutover,
            warnings,
        },
        ctx.suggest(
            &new,
            vec![
                Candidate::new(HealthOp::ID, "Check the new server's health"),
                Candidate::new(StatusOp::ID, "See the new server's status"),
            ],
        ),
    ))
}

/// What to do to cut over from `old` to `new`: the new address, the DNS
/// names to point at it (or how to find them), and that the old server is
/// left as it was.
fn cutover_lines(old: &ServerRecord, new: &ServerRecord, dns: &[String]) -> Vec<String> {
    let mut lines = vec![format!(
        "The new server {} answers at {} (was {} at {})",
        new.name, new.ip, old.name, old.ip
    )];
    if dns.is_empty() {
        lines.push(format!(
            "No known DNS name resolves to {} now; point whatever names served it at {}",
            old.ip, new.ip
        ));
    } else {
        for name in dns {
            lines.push(format!("Point {name} (now {}) at {}", old.ip, new.ip));
        }
    }
    lines.push(format!(
        "kastell changed no DNS and did not touch {}; delete it at its provider once nothing points at it",
        old.name
    ));
    lines
}

/// `error` with what a failed recovery left: the server it created, kept
/// and marked (role recovery), and how to delete it or retry.
fn left_marked(
    error: Error,
    priced: &Priced,
    created: Option<&kastell_core::types::ServerId>,
) -> Error {
    let hint = match created {
        Some(id) => format!(
            "The new server {id} ({}) at {} is left as it is, marked kastell-managed and \
             kastell-recovery, and is billed while it exists: look at it, then delete it in \
             the provider's console (`kastell doctor` lists it) and run recover again{}",
            priced.spec.name,
            priced.provider_id,
            error
                .hint()
                .map(|h| format!(". About the error: {h}"))
                .unwrap_or_default()
        ),
        None => return error.or_hint("No server was created; fix the cause and run recover again"),
    };
    let kind = error.kind();
    let message = error.message().to_owned();
    let mut out = Error::new(kind, message).with_hint(hint);
    if let Some(id) = created {
        out = out.with_context("created_server", id);
    }
    out
}

/// `recover`: bring a server back on a new server from its backup.
pub struct RecoverOp;

#[async_trait]
impl Operation for RecoverOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("recover", Category::Destructive)
            .blocked(
                "Recovery onto a new server is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable recovery (it creates a billable server)",
            )
            .billable()
            .long()
            .needs_platform(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_backup",
            action: "recover",
            doc: "restore a backup onto a new server (needs to: PROVIDER[:SIZE][@REGION]; billable).",
        }),
        cli: Some(CliCommand {
            path: &["recover"],
            about: "Bring a server back from its backup onto a new server at any provider (billable: it creates one); the old record is kept, marked replaced.",
            target: CliTarget::One,
        }),
    };
    type Args = RecoverArgs;
    type Body = RecoverResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &RecoverArgs) -> OpResult<Self::Body> {
        recover(ctx, query, args).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &RecoverArgs) -> Vec<String> {
        let target = match args.target() {
            Ok(target) => target,
            Err(e) => return vec![format!("Refused: {}", e.message())],
        };
        let backup = args.from.backup_id.as_deref().unwrap_or("(newest)");
        let name = record::new_name(&ctx.store, &server.name, args.name.as_deref())
            .unwrap_or_else(|_| format!("{}-recovered", server.name));
        vec![
            format!(
                "Create server {name} at {target} (kastell-managed, kastell-recovery): {}",
                scratch::price_line(ctx, server, &target, &name, ManagedRole::Recovery)
            ),
            "Wait until it runs with an address, then for SSH; pin its host key".to_owned(),
            format!("Install {} on it", server.platform_id()),
            format!(
                "Verify backup {backup} of {} and restore it there (no safety backup on a fresh host), start, check health",
                server.name
            ),
            format!(
                "Add {name} to the fleet; keep {} marked replaced; say which DNS names point at {} (DNS is not changed)",
                server.name, server.ip
            ),
        ]
    }

    fn question(server: &ServerRecord, args: &RecoverArgs) -> String {
        format!(
            "Create a new server at {} (billed while it exists) and restore \"{}\"'s backup {} onto it?",
            args.from.to.as_deref().unwrap_or("(no --to)"),
            server.name,
            args.from.backup_id.as_deref().unwrap_or("(newest)")
        )
    }

    fn target(args: &RecoverArgs) -> Option<&str> {
        args.from.backup_id.as_deref()
    }

    fn render(body: &RecoverResult) -> Vec<String> {
        let mut lines = vec![format!(
            "Recovered onto {} ({}, {}) in {:.1}s: {}",
            body.new_server,
            body.new_ip,
            body.target,
            body.recovery_ms as f64 / 1000.0,
            body.price
        )];
        lines.extend(body.cutover.iter().cloned());
        lines
    }
}
