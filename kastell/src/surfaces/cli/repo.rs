//! `kastell repo init|add|list|snapshots|check|push|prune`: backup
//! repositories (restic format) on a directory, S3 or SFTP. `prune` and
//! `init` log in with the operator's credential; everything else with the
//! agent-facing one (see `repos::credentials`).

use crate::ops::BACKUP_PRUNE;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::types::BackupId;
use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::retention::Candidate;
use kastell_repo::{BackupRepository, KeepPolicy, PruneDecision, RepoLocation};
use serde::Serialize;

use super::Context;
use super::confirm::{Confirmation, confirm};
use super::when;
use crate::engine::backup::{BackupEngine, BackupStatus};
use crate::engine::repos::append_only;
use crate::engine::repos::{self, PushReport, RepoConfig, RepoRegistry};
use crate::env::Env;
use crate::ops::human_bytes;
use crate::policy::Surface;
use crate::state::verifications::Verifications;

/// The repository commands.
#[derive(Debug, Clone, Subcommand)]
pub enum RepoCommand {
    /// Create a new repository and remember it under NAME (with the
    /// operator's credential when set).
    Init(InitArgs),
    /// Remember an existing repository (its password is checked).
    Add(AddArgs),
    /// The configured repositories.
    List,
    /// The snapshots (backups) in a repository, oldest first.
    Snapshots(NameArgs),
    /// Check a repository's structure (--read-data: every byte).
    Check(CheckArgs),
    /// Send a verified local backup (default: the server's newest) into a
    /// repository.
    Push(PushArgs),
    /// Show (default) or apply what the retention policy removes.
    Prune(PruneArgs),
    /// Make a repository the default for a server's backups (or every
    /// server's, with --all); without a name, show the defaults.
    Default(DefaultArgs),
}

/// The `--keep-*` rules, as restic names them.
#[derive(Debug, Clone, Default, Args)]
pub struct KeepArgs {
    /// Keep the newest N snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
}

impl From<&KeepArgs> for KeepPolicy {
    fn from(args: &KeepArgs) -> Self {
        Self {
            keep_last: args.keep_last,
            keep_hourly: args.keep_hourly,
            keep_daily: args.keep_daily,
            keep_weekly: args.keep_weekly,
            keep_monthly: args.keep_monthly,
            keep_yearly: args.keep_yearly,
        }
    }
}

/// Arguments of `repo init` and `repo add`.
#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    /// The name to refer to it by.
    pub name: String,
    /// `/path`, `local:/path` or `s3:https://host/bucket[/prefix]` (keys
    /// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    pub location: String,
    /// A file (mode 0600) whose first line is the repository password.
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// The retention policy `repo prune` applies by default.
    #[command(flatten)]
    pub keep: KeepArgs,
}

/// Arguments of `repo init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Where and how, as for `repo add`.
    #[command(flatten)]
    pub add: AddArgs,
    /// The agent's public key file (`.pub`): print the server-side lines
    /// that make its SFTP login append-only.
    #[arg(long, value_name = "PUBKEYFILE")]
    pub append_only_key: Option<PathBuf>,
    /// Create the missing parent directories of a directory repository
    /// (without it, a parent that does not exist is refused as a likely
    /// typing mistake).
    #[arg(long)]
    pub create_parents: bool,
}

/// Arguments naming one repository.
#[derive(Debug, Clone, Args)]
pub struct NameArgs {
    /// The repository's name (see `kastell repo list`).
    pub name: String,
}

/// Arguments of `repo check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The repository's name.
    pub name: String,
    /// Also download and verify every pack (slow; proves every byte).
    #[arg(long)]
    pub read_data: bool,
}

/// Arguments of `repo push`.
#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// The repository's name.
    pub name: String,
    /// The server (name or IP); optional when there is only one.
    pub server: Option<String>,
    /// The backup id (default: the newest complete one).
    #[arg(long = "backup", value_name = "ID")]
    pub backup: Option<String>,
}

/// Arguments of `repo prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// The repository's name.
    pub name: String,
    /// Rules for this run instead of the repository's policy.
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Remove what the plan says goes (default: only show the plan).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation (required when not in a terminal).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `repo default`.
#[derive(Debug, Clone, Args)]
pub struct DefaultArgs {
    /// The repository (omit to show the defaults, or with --clear).
    #[arg(conflicts_with = "clear")]
    pub name: Option<String>,
    /// The server (name or IP) whose default this is.
    #[arg(long, value_name = "SERVER", conflicts_with = "all")]
    pub server: Option<String>,
    /// The default for every server without one of its own.
    #[arg(long)]
    pub all: bool,
    /// Remove the default instead of setting it.
    #[arg(long)]
    pub clear: bool,
}

/// Runs a repository command.
pub(crate) async fn run(cmd: RepoCommand, ctx: &Context) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let mut registry = RepoRegistry::load(&dir)?;
    match cmd {
        RepoCommand::Init(args) => init(ctx, &mut registry, &args).await,
        RepoCommand::Add(args) => remember(ctx, &mut registry, &args, repos::open, "Added").await,
        RepoCommand::List => list(ctx, &registry),
        RepoCommand::Snapshots(args) => snapshots(ctx, registry.get(&args.name)?).await,
        RepoCommand::Check(args) => check(ctx, registry.get(&args.name)?, args.read_data).await,
        RepoCommand::Push(args) => push(ctx, registry.get(&args.name)?, &args).await,
        RepoCommand::Prune(args) => prune(ctx, registry.get(&args.name)?, &args).await,
        RepoCommand::Default(args) => set_default(ctx, &mut registry, &args),
    }
}

/// `repo default`: shows the defaults, or sets or clears one. A server's
/// default is keyed by its name, resolved through the fleet store so an IP
/// works too.
fn set_default(ctx: &Context, registry: &mut RepoRegistry, args: &DefaultArgs) -> Result<ExitCode> {
    if args.name.is_none() && !args.clear {
        if ctx.json {
            ctx.out.json(registry.defaults())?;
        } else if registry.defaults().is_empty() {
            ctx.out.line("No default repositories. Set one with `kastell repo default NAME --server SERVER` (or --all).")?;
        } else {
            let rows: Vec<Vec<String>> = registry
                .defaults()
                .iter()
                .map(|(server, repo)| {
                    let who = if server == repos::EVERY_SERVER {
                        "(every server)"
                    } else {
                        server
                    };
                    vec![who.to_owned(), repo.clone()]
                })
                .collect();
            ctx.out.table(&["SERVER", "REPOSITORY"], &rows)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let server = match (&args.server, args.all) {
        (_, true) => repos::EVERY_SERVER.to_owned(),
        (Some(query), false) => ctx.store()?.resolve(Some(query))?.name,
        (None, false) => {
            return Err(Error::invalid_input("say whose default this is")
                .with_hint("Pass --server SERVER, or --all for every server"));
        }
    };
    registry.set_default(&server, args.name.as_deref())?;
    let who = if args.all {
        "every server".to_owned()
    } else {
        server
    };
    ctx.out.line(match &args.name {
        Some(name) => format!("Backups of {who} now also go to repository {name}."),
        None => format!("Backups of {who} now stay in the local store unless --repo is given."),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn config_of(args: &AddArgs) -> Result<RepoConfig> {
    let keep = KeepPolicy::from(&args.keep);
    keep.validate()?;
    Ok(RepoConfig {
        name: args.name.clone(),
        location: RepoLocation::parse(&args.location)?,
        password_file: std::path::absolute(&args.password_file)
            .map_err(|e| Error::io(format!("locating {}", args.password_file.display()), e))?,
        keep,
    })
}

/// Opens the repository and runs `work` on a blocking thread (the
/// repository's API blocks).
async fn with_repo<T: Send + 'static>(
    ctx: &Context,
    config: &RepoConfig,
    work: impl FnOnce(BackupRepository) -> Result<T> + Send + 'static,
) -> Result<T> {
    repos::with_open(config, &ctx.env, work).await
}

/// `repo init` (with [`repos::init`]) or `repo add` (with [`repos::open`],
/// which proves the password): runs `reach` on a blocking thread, then
/// records the repository.
async fn remember(
    ctx: &Context,
    registry: &mut RepoRegistry,
    args: &AddArgs,
    reach: fn(&RepoConfig, &Env) -> Result<BackupRepository>,
    done: &str,
) -> Result<ExitCode> {
    // Before the repository is created, so a taken name creates nothing.
    registry.check_free(&args.name)?;
    let config = config_of(args)?;
    let env = ctx.env.clone();
    let reached = config.clone();
    repos::off_runtime(move || reach(&reached, &env).map(drop)).await?;
    registry.add(config.clone())?;
    ctx.out.line(format!(
        "{done} repository {} at {}",
        config.name, config.location
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `repo init`: checks the append-only key (when given) and, for a
/// directory, that its parent exists (or `--create-parents`) before
/// anything is created, warning when the directory shares the local
/// backups' filesystem; creates the repository with the operator's
/// credential (saying when the agent-facing one stands in), then prints
/// the server-side lines for the append-only login.
async fn init(ctx: &Context, registry: &mut RepoRegistry, args: &InitArgs) -> Result<ExitCode> {
    let location = RepoLocation::parse(&args.add.location)?;
    let lines = match &args.append_only_key {
        Some(key) => Some(append_only::server_lines(&location, key)?),
        None => None,
    };
    if let RepoLocation::Local(path) = &location {
        registry.check_free(&args.add.name)?;
        repos::local::prepare(path, args.create_parents)?;
        if let Some(warning) = repos::local::same_disk_warning(path, &ctx.kastell_dir()?) {
            eprintln!("{warning}");
        }
    }
    if let (_, Some(note)) = repos::operator_credentials(&location, &ctx.env)? {
        eprintln!("note: {note}");
    }
    remember(ctx, registry, &args.add, repos::init, "Created").await?;
    if let Some(lines) = lines {
        ctx.out.line(lines)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list(ctx: &Context, registry: &RepoRegistry) -> Result<ExitCode> {
    if ctx.json {
        ctx.out.json(&registry.all())?;
        return Ok(ExitCode::SUCCESS);
    }
    if registry.all().is_empty() {
        ctx.out.line(
            "No repositories. Create one with `kastell repo init NAME LOCATION --password-file FILE`.",
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = registry
        .all()
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.location.to_string(),
                r.password_file.display().to_string(),
            ]
        })
        .collect();
    ctx.out
        .table(&["NAME", "LOCATION", "PASSWORD FILE"], &rows)?;
    Ok(ExitCode::SUCCESS)
}

async fn snapshots(ctx: &Context, config: &RepoConfig) -> Result<ExitCode> {
    let found = with_repo(ctx, config, |repo| repo.snapshots()).await?;
    if ctx.json {
        ctx.out.json(&found)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Newest first, as `backup list` lists (the JSON keeps the
    // repository's order).
    let mut shown: Vec<&kastell_repo::RepoSnapshot> = found.iter().collect();
    shown.sort_by_key(|s| std::cmp::Reverse(s.time));
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|s| {
            vec![
                s.id[..8.min(s.id.len())].to_owned(),
                when::moment(s.time.with_timezone(&chrono::Utc)),
                when::ago(s.time.with_timezone(&chrono::Utc), now),
                s.host.clone(),
                s.tag_value("backup").unwrap_or("-").to_owned(),
                human_bytes(s.total_bytes),
                human_bytes(s.added_bytes),
            ]
        })
        .collect();
    ctx.out.table(
        &["ID", "TIME", "AGE", "SERVER", "BACKUP", "SIZE", "ADDED"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn check(ctx: &Context, config: &RepoConfig, read_data: bool) -> Result<ExitCode> {
    let report = with_repo(ctx, config, move |repo| repo.check(read_data)).await?;
    if ctx.json {
        ctx.out.json(&report)?;
    } else {
        for warning in &report.warnings {
            ctx.out.line(format!("warning: {warning}"))?;
        }
        for error in &report.errors {
            ctx.out.line(format!("error: {error}"))?;
        }
        if report.is_ok() {
            ctx.out.line(format!(
                "Repository {} is intact{}",
                config.name,
                if read_data { " (every byte read)" } else { "" }
            ))?;
        }
    }
    if report.is_ok() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "repository {} has {} problem(s)",
                config.name,
                report.errors.len()
            ),
        )
        .with_hint("Push the affected backups again from their local copies, or restore from another repository"))
    }
}

async fn push(ctx: &Context, config: &RepoConfig, args: &PushArgs) -> Result<ExitCode> {
    let server = ctx.store()?.resolve(args.server.as_deref())?;
    let report = match &args.backup {
        Some(id) => {
            let engine = BackupEngine::new(ctx.store()?.dir());
            let backup = engine.find(&server.name, &BackupId::new(id.clone())?)?;
            with_repo(ctx, config, move |repo| repos::push(&repo, &backup)).await?
        }
        None => push_newest(ctx, config, &server.name).await?,
    };
    if ctx.json {
        ctx.out.json(&report)?;
    } else {
        ctx.out
            .line(pushed_line(&report, &server.name, &config.name))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Stores the newest complete local backup of `server` in the repository
/// `config`. `NotFound` when the server has none.
async fn push_newest(ctx: &Context, config: &RepoConfig, server: &str) -> Result<PushReport> {
    let engine = BackupEngine::new(ctx.store()?.dir());
    let backup = engine
        .list(server)?
        .into_iter()
        .find(|b| b.status == BackupStatus::Complete)
        .ok_or_else(|| {
            Error::not_found(format!("server {server} has no complete backup"))
                .with_hint("Take one with `kastell backup create`")
        })?;
    with_repo(ctx, config, move |repo| repos::push(&repo, &backup)).await
}

/// The line that tells what a push stored (and how many files it took
/// unread from an earlier snapshot).
fn pushed_line(report: &PushReport, server: &str, repo: &str) -> String {
    let unread = match report.snapshot.unchanged_files {
        0 => String::new(),
        n => format!("; {n} unchanged file(s) taken from an earlier snapshot unread"),
    };
    format!(
        "Stored backup {} of {server} in repository {repo} as snapshot {} ({} bytes, {} new after dedup and compression{unread})",
        report.backup_id,
        &report.snapshot.id[..8.min(report.snapshot.id.len())],
        report.snapshot.total_bytes,
        report.snapshot.added_bytes
    )
}

/// The plan of one run of `repo prune`.
#[derive(Debug, Serialize)]
struct PrunePlan {
    repository: String,
    applied: bool,
    decisions: Vec<PruneDecision>,
}

async fn prune(ctx: &Context, config: &RepoConfig, args: &PruneArgs) -> Result<ExitCode> {
    let given = KeepPolicy::from(&args.keep);
    let policy = if given.is_empty() { config.keep } else { given };
    policy.validate()?;
    if policy.is_empty() {
        return Err(Error::invalid_input(format!(
            "repository {} has no retention policy",
            config.name
        ))
        .with_hint("Pass --keep-daily N (and others), as for restic forget"));
    }
    let checker = ctx.policy()?;
    if args.apply {
        checker.check_safe_mode(BACKUP_PRUNE.id(), Surface::Cli, None)?;
    }
    let found = with_repo(ctx, config, |repo| repo.snapshots()).await?;
    let proofs = Verifications::load(&ctx.kastell_dir()?)?;
    let decisions = plan_per_server(&policy, &found, &proofs, &config.name);
    let doomed: Vec<String> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.id.clone())
        .collect();
    if args.apply {
        // Deleting a server's backups needs the destructive level on that
        // server (its record, when the fleet still has it).
        let store = ctx.store()?;
        let hosts: std::collections::BTreeSet<&str> = found
            .iter()
            .filter(|s| doomed.contains(&s.id))
            .map(|s| s.host.as_str())
            .collect();
        for host in hosts {
            let record = store.find(host)?;
            checker.check(BACKUP_PRUNE.id(), Surface::Cli, record.as_ref(), |_| true)?;
        }
    }
    let mut applied = false;
    if args.apply && !doomed.is_empty() {
        let question = format!(
            "Remove {} snapshot(s) from repository {}?",
            doomed.len(),
            config.name
        );
        if confirm(&question, args.force)? == Confirmation::Proceed {
            audited_prune(ctx, config, doomed).await?;
            applied = true;
        }
    }
    let plan = PrunePlan {
        repository: config.name.clone(),
        applied,
        decisions,
    };
    if ctx.json {
        ctx.out.json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_decisions(ctx, &plan.decisions, args.apply, applied, "snapshot(s)", 8)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs [`prune_as_operator`] only once the audit log records it as
/// started (nothing is removed that the log cannot record), then records
/// how it ended. The entry names the repository in its arguments; it is on
/// no one server.
async fn audited_prune(ctx: &Context, config: &RepoConfig, doomed: Vec<String>) -> Result<()> {
    let dir = ctx.kastell_dir()?;
    let args = serde_json::json!({"repository": config.name, "snapshots": doomed});
    let started = std::time::Instant::now();
    let record = |result, failed| crate::state::audit::CallRecord {
        surface: crate::state::audit::AuditSurface::Cli,
        client: None,
        op: "repo-prune",
        server: None,
        args: args.clone(),
        confirmed: None,
        result,
        failed,
        duration: started.elapsed(),
    };
    crate::state::audit::append_start(
        &dir,
        &ctx.env,
        BACKUP_PRUNE.id(),
        &record(&serde_json::Value::Null, false),
    )?;
    let outcome = prune_as_operator(ctx, config, doomed.clone()).await;
    let result = match &outcome {
        Ok(()) => serde_json::json!({"success": true, "removed": doomed}),
        Err(e) => crate::state::audit::error_json(e),
    };
    record(&result, outcome.is_err()).append_to(&dir, &ctx.env);
    outcome
}

/// Forgets `doomed` and prunes, logged in with the operator's credential
/// (saying so when the agent-facing one stands in). A refused removal says
/// which variable names the operator's credential.
async fn prune_as_operator(ctx: &Context, config: &RepoConfig, doomed: Vec<String>) -> Result<()> {
    let env = ctx.env.clone();
    let target = config.clone();
    repos::off_runtime(move || {
        let (repo, note) = repos::open_as_operator(&target, &env)?;
        if let Some(note) = note {
            eprintln!("note: {note}");
        }
        repo.forget(&doomed)?;
        repo.prune()
    })
    .await
    .map(drop)
    .map_err(|e| {
        if e.kind() == ErrorKind::PermissionDenied {
            e.with_hint(format!(
                "The storage refused a removal: the login may be append-only. Set {} (SFTP) or \
                 {} and {} (S3) to the operator's credential",
                repos::SFTP_PRUNE_IDENTITY_VAR,
                repos::PRUNE_AWS_ACCESS_KEY_ID_VAR,
                repos::PRUNE_AWS_SECRET_ACCESS_KEY_VAR
            ))
        } else {
            e
        }
    })
}

/// Prints a prune plan: one row per backup or snapshot with keep or
/// remove and why, then what was (or would be) removed. `what` names the
/// things (`snapshot(s)`, `backup(s)`); ids are shown `id_width` long.
pub(crate) fn print_decisions(
    ctx: &Context,
    decisions: &[PruneDecision],
    apply: bool,
    applied: bool,
    what: &str,
    id_width: usize,
) -> Result<()> {
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            vec![
                d.id[..d.id.len().min(id_width)].to_owned(),
                when::moment(d.time.with_timezone(&chrono::Utc)),
                if d.keep { "keep" } else { "remove" }.to_owned(),
                d.reasons.join(", "),
            ]
        })
        .collect();
    ctx.out.table(&["ID", "TIME", "DECISION", "WHY"], &rows)?;
    let removed = decisions.iter().filter(|d| !d.keep).count();
    ctx.out.line(match (apply, applied) {
        (_, true) => format!("Removed {removed} {what}."),
        (true, false) if removed > 0 => "Nothing removed.".to_owned(),
        _ if removed == 0 => "Nothing to remove.".to_owned(),
        _ => format!("Dry run: {removed} {what} would go. Re-run with --apply to remove them."),
    })
}

/// The policy applied to each server's snapshots on their own (restic
/// groups by host the same way). The newest snapshot proven good in this
/// repository (`backup verify` or `backup drill` with `--repo`) is
/// protected; while a server has none proven, its newest kastell snapshot
/// (verified locally before it was pushed) stands in.
fn plan_per_server(
    policy: &KeepPolicy,
    snapshots: &[kastell_repo::RepoSnapshot],
    proofs: &Verifications,
    repo: &str,
) -> Vec<PruneDecision> {
    let proven = |s: &kastell_repo::RepoSnapshot| {
        s.tag_value("backup")
            .is_some_and(|id| proofs.latest(&s.host, id, Some(repo)).is_some())
    };
    let mut by_host: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
    for snapshot in snapshots {
        let host_proven = snapshots
            .iter()
            .any(|s| s.host == snapshot.host && proven(s));
        by_host
            .entry(snapshot.host.as_str())
            .or_default()
            .push(Candidate {
                id: snapshot.id.clone(),
                time: snapshot.time,
                verified: if host_proven {
                    proven(snapshot)
                } else {
                    snapshot.tag_value("backup").is_some()
                },
            });
    }
    by_host
        .values()
        .flat_map(|candidates| policy.plan(candidates))
        .collect()
}
