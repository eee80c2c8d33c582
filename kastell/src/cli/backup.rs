//! `kastell backup create|list|restore|verify`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::Result;
use kastell_core::wire::CompressMode;

use super::Context;
use super::fleet::{self, FleetArgs, OneArgs};
use super::op::Op;
use crate::repos::RepoRegistry;

/// The backup commands.
#[derive(Debug, Clone, Subcommand)]
pub enum BackupCommand {
    /// Back a server up over SSH into the kastell directory.
    Create(CreateArgs),
    /// List a server's backups, newest first.
    List(ReadArgs),
    /// Restore a backup onto its server (default: the newest), after a
    /// safety backup of the current state.
    Restore(RestoreArgs),
    /// Recompute a backup's checksums (default: the newest).
    Verify(ReadArgs),
}

/// Arguments of `backup create`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Server or fleet, dry run and confirmation.
    #[command(flatten)]
    pub target: FleetArgs,
    /// Where to compress: `auto` (on the server when the host has zstd,
    /// pigz or gzip and the measured link is slower than it compresses),
    /// `server` (whenever the host can), `local` (raw over SSH, zstd
    /// here) or `none` (raw, stored uncompressed).
    #[arg(long, value_name = "WHERE", default_value = "auto", value_parser = compress_mode)]
    pub compress: CompressMode,
    /// Also store the new backup in this repository (see `kastell repo`),
    /// once it is complete and verified locally.
    #[arg(long, value_name = "NAME")]
    pub repo: Option<String>,
}

fn compress_mode(text: &str) -> std::result::Result<CompressMode, String> {
    text.parse::<CompressMode>().map_err(|e| e.to_string())
}

/// Arguments of `backup list` and `backup verify`.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// The server (name or IP); optional when there is only one.
    pub server: Option<String>,
    /// The backup id (verify only; default: the newest).
    #[arg(long = "backup", value_name = "ID")]
    pub backup: Option<String>,
}

/// Arguments of `backup restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Server, dry run and confirmation.
    #[command(flatten)]
    pub target: OneArgs,
    /// The backup id (default: the newest).
    #[arg(long = "backup", value_name = "ID")]
    pub backup: Option<String>,
}

/// `backup create`, then with `--repo` the new backups into the
/// repository. The repository is looked up first, so a wrong name fails
/// before anything is backed up.
async fn create(ctx: &Context, args: CreateArgs) -> Result<ExitCode> {
    let repo = match &args.repo {
        Some(name) => Some(RepoRegistry::load(&ctx.kastell_dir()?)?.get(name)?.clone()),
        None => None,
    };
    let servers = match (&repo, args.target.all) {
        (None, _) => Vec::new(),
        (Some(_), true) => ctx.store()?.servers()?,
        (Some(_), false) => vec![ctx.store()?.resolve(args.target.server.as_deref())?],
    };
    let dry_run = args.target.dry_run;
    let code = fleet::execute(ctx, Op::BackupCreate(args.compress), args.target).await?;
    let Some(repo) = repo else {
        return Ok(code);
    };
    if dry_run || code != ExitCode::SUCCESS {
        return Ok(code);
    }
    for server in &servers {
        let report = super::repo::push_newest(ctx, &repo, &server.name).await?;
        // With --json stdout holds the backup result alone.
        let line = super::repo::pushed_line(&report, &server.name, &repo.name);
        if ctx.json {
            eprintln!("{line}");
        } else {
            ctx.out.line(line)?;
        }
    }
    Ok(code)
}

/// Runs a backup command.
pub async fn run(cmd: BackupCommand, ctx: &Context) -> Result<ExitCode> {
    match cmd {
        BackupCommand::Create(args) => create(ctx, args).await,
        BackupCommand::List(args) => fleet::run_read(ctx, Op::BackupList, args.server).await,
        BackupCommand::Verify(args) => {
            fleet::run_read(ctx, Op::BackupVerify(args.backup), args.server).await
        }
        BackupCommand::Restore(args) => {
            fleet::execute(ctx, Op::BackupRestore(args.backup), args.target.into()).await
        }
    }
}
