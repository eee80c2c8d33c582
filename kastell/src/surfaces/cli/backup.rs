//! `kastell backup create|list|restore|verify|drill|prune|cleanup`, on the local store or a
//! repository (`--repo`).

use crate::ops::BACKUP_PRUNE;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::{Error, Result};
use kastell_repo::{KeepPolicy, PruneDecision};
use serde::Serialize;

use super::Context;
use super::confirm::{Confirmation, confirm};
use super::repo::KeepArgs;
use crate::engine::backup::orphans::{self, Orphan, OrphanKind};
use crate::engine::backup::prune::{self, EVERY_SERVER, Policies};
use crate::engine::backup::{BackupEngine, BackupLayout};
use crate::ops::human_bytes;
use crate::policy::Surface;
use crate::state::verifications::Verifications;

/// The backup commands of their own (`backup create`, `list`, `restore`,
/// `verify` and `drill` are operations: see [`crate::ops`]).
#[derive(Debug, Clone, Subcommand)]
pub enum BackupCommand {
    /// Show (default) or apply what a retention policy removes from the
    /// local store; the newest proven backup always stays.
    Prune(PruneArgs),
    /// Show (default) or, with --force, remove orphaned backup
    /// directories: those of servers no longer in the fleet and what a
    /// crash left half-written. A backup of a known server always stays.
    Cleanup(CleanupArgs),
    /// How old each on-server backup's newest complete run is, read from
    /// the repository itself; exits 1 and sends the alert when one is
    /// older than --max-age (default 26h), missing or unreadable.
    Freshness(super::freshness::FreshnessArgs),
}

/// Arguments of `backup cleanup`.
#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    /// Remove what is listed (default: only list it). Refused in
    /// SAFE_MODE, as pruning is.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `backup prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// The server (name or IP); optional when there is only one.
    #[arg(conflicts_with = "all")]
    pub server: Option<String>,
    /// Every server in the fleet.
    #[arg(long)]
    pub all: bool,
    /// Rules for this run instead of the server's saved policy.
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Save the rules given as the server's policy (with --all: every
    /// server's without one of its own).
    #[arg(long)]
    pub save: bool,
    /// Remove what the plan says goes (default: only show the plan).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation (required when not in a terminal).
    #[arg(long)]
    pub force: bool,
}

/// The plan of one server in `backup prune`.
#[derive(Debug, Serialize)]
struct ServerPlan {
    server: String,
    policy: KeepPolicy,
    applied: bool,
    decisions: Vec<PruneDecision>,
}

/// The arguments a `backup prune --apply` on `server` is audited with.
fn prune_args(server: &str) -> serde_json::Value {
    serde_json::json!({"action": "backup-prune", "server": server, "apply": true})
}

/// Appends one `backup prune --apply` on `server` to the audit log: the
/// ids removed, or why it was refused or failed.
fn audit_prune(ctx: &Context, server: &str, outcome: std::result::Result<&Vec<String>, &Error>) {
    if let Ok(dir) = ctx.kastell_dir() {
        crate::state::audit::record_cli(
            &dir,
            &ctx.env,
            BACKUP_PRUNE.id().as_str(),
            server,
            prune_args(server),
            outcome.map(|ids| serde_json::json!({"success": true, "removed": ids})),
            std::time::Duration::ZERO,
        );
    }
}

/// `backup prune`: per server, the policy given (or saved), its plan, and
/// with --apply the removal (refused under SAFE_MODE; asks unless
/// --force).
async fn prune(ctx: &Context, args: &PruneArgs) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let store = ctx.store()?;
    let servers = if args.all {
        store.servers()?
    } else {
        vec![store.resolve(args.server.as_deref())?]
    };
    let given = KeepPolicy::from(&args.keep);
    given.validate()?;
    let mut policies = Policies::load(&dir)?;
    if args.save {
        if given.is_empty() {
            return Err(
                Error::invalid_input("--save needs at least one --keep-* rule")
                    .with_hint("Pass the rules to save, e.g. --keep-daily 7 --keep-weekly 4"),
            );
        }
        match (args.all, servers.first()) {
            (true, _) => policies.set(EVERY_SERVER, given)?,
            (false, Some(server)) => policies.set(&server.name, given)?,
            (false, None) => {}
        }
    }
    if args.apply {
        // Deleting backups is destructive: SAFE_MODE and each server's
        // safety level decide, as for any other operation (and the
        // refusal is logged and audited).
        let policy = ctx.policy()?;
        for server in &servers {
            if let Err(e) = policy.check(BACKUP_PRUNE.id(), Surface::Cli, Some(server), |_| true) {
                audit_prune(ctx, &server.name, Err(&e));
                return Err(e);
            }
        }
    }
    let engine = BackupEngine::new(&dir);
    let proofs = Verifications::load(&dir)?;
    let mut plans = Vec::new();
    for server in &servers {
        let policy = if given.is_empty() {
            policies.get(&server.name).unwrap_or_default()
        } else {
            given
        };
        if policy.is_empty() {
            return Err(Error::invalid_input(format!(
                "server {} has no retention policy",
                server.name
            ))
            .with_hint(format!(
                "Pass --keep-daily N (and others), as for restic forget; add --save to keep them for {}",
                server.name
            )));
        }
        let decisions = prune::plan(&engine, &proofs, &server.name, &policy)?;
        plans.push(ServerPlan {
            server: server.name.clone(),
            policy,
            applied: false,
            decisions,
        });
    }
    let doomed: usize = plans
        .iter()
        .map(|p| p.decisions.iter().filter(|d| !d.keep).count())
        .sum();
    if args.apply && doomed > 0 {
        let question = format!("Remove {doomed} local backup(s)?");
        if confirm(&question, args.force)? == Confirmation::Proceed {
            for plan in &mut plans {
                let ids: Vec<String> = plan
                    .decisions
                    .iter()
                    .filter(|d| !d.keep)
                    .map(|d| d.id.clone())
                    .collect();
                // Nothing is deleted that the audit log cannot record.
                if let Err(e) = crate::state::audit::start_cli(
                    &dir,
                    &ctx.env,
                    BACKUP_PRUNE.id(),
                    &plan.server,
                    prune_args(&plan.server),
                ) {
                    audit_prune(ctx, &plan.server, Err(&e));
                    return Err(e);
                }
                let removed = prune::remove(&dir, &plan.server, &ids);
                audit_prune(ctx, &plan.server, removed.as_ref().map(|_| &ids));
                removed?;
                plan.applied = true;
            }
        }
    }
    if ctx.json {
        ctx.out.json(&plans)?;
        return Ok(ExitCode::SUCCESS);
    }
    for plan in &plans {
        ctx.out.line(format!("{}:", plan.server))?;
        super::repo::print_decisions(
            ctx,
            &plan.decisions,
            args.apply,
            plan.applied,
            "backup(s)",
            23,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `backup cleanup` prints with `--json`.
#[derive(Debug, Serialize)]
struct CleanupReport<'a> {
    orphans: &'a [Orphan],
    bytes: u64,
    removed: bool,
}

/// `backup cleanup`: the orphaned backup directories and their sizes;
/// with `--force` (refused in SAFE_MODE) they are removed and the removal
/// audited.
fn cleanup(ctx: &Context, args: &CleanupArgs) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let known: Vec<String> = ctx
        .store()?
        .servers()?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let orphans = orphans::find(&BackupLayout::new(&dir), &known)?;
    let bytes = orphans.iter().map(|o| o.bytes).sum();
    let removed = args.force && !orphans.is_empty();
    if removed {
        ctx.policy()?
            .check_safe_mode(BACKUP_PRUNE.id(), Surface::Cli, None)?;
        let paths: Vec<String> = orphans
            .iter()
            .map(|o| o.path.display().to_string())
            .collect();
        let audit_args = serde_json::json!({"action": "backup-cleanup", "paths": paths});
        crate::state::audit::start_cli(&dir, &ctx.env, BACKUP_PRUNE.id(), "-", audit_args.clone())?;
        let result = orphans::remove(&orphans);
        crate::state::audit::record_cli(
            &dir,
            &ctx.env,
            BACKUP_PRUNE.id().as_str(),
            "-",
            audit_args,
            result
                .as_ref()
                .map(|_| serde_json::json!({"success": true, "removed": paths})),
            std::time::Duration::ZERO,
        );
        result?;
    }
    if ctx.json {
        ctx.out.json(&CleanupReport {
            orphans: &orphans,
            bytes,
            removed,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if orphans.is_empty() {
        ctx.out.line("No orphaned backup directories.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = orphans
        .iter()
        .map(|o| {
            vec![
                o.path.display().to_string(),
                o.server.clone(),
                match o.kind {
                    OrphanKind::UnknownServer => "server not in the fleet",
                    OrphanKind::HalfWritten => "half-written",
                }
                .to_owned(),
                human_bytes(o.bytes),
            ]
        })
        .collect();
    ctx.out
        .table(&["DIRECTORY", "SERVER", "WHY", "SIZE"], &rows)?;
    ctx.out.line(if removed {
        format!("Removed {} director(y/ies), {}.", orphans.len(), human_bytes(bytes))
    } else {
        format!(
            "{} orphaned director(y/ies), {}. Nothing was removed: run `kastell backup cleanup --force` to remove them.",
            orphans.len(),
            human_bytes(bytes)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a backup command.
pub(crate) async fn run(cmd: BackupCommand, ctx: &Context) -> Result<ExitCode> {
    match cmd {
        BackupCommand::Prune(args) => prune(ctx, &args).await,
        BackupCommand::Cleanup(args) => cleanup(ctx, &args),
        BackupCommand::Freshness(args) => super::freshness::run(ctx, &args).await,
    }
}
