//! `kastell backup create|list|restore|verify|drill`, on the local store or a
//! repository (`--repo`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::Result;
use kastell_core::wire::CompressMode;

use super::Context;
use super::fleet::{self, FleetArgs, OneArgs};
use super::op::{BackupRef, Op};
use crate::ops::{CreateOptions, RepoChoice};

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
    /// Prove a backup restores (default: the newest): its database dumps
    /// restored into a throwaway local PostgreSQL and their tables and rows
    /// compared with the dump, its configuration archives unpacked and
    /// validated. Nothing on the server is touched.
    Drill(ReadArgs),
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
    /// once it is complete and verified locally. Default: the server's
    /// default repository (`kastell repo default`), if it has one.
    #[arg(long, value_name = "NAME", conflicts_with = "local_only")]
    pub repo: Option<String>,
    /// Keep the new backup in the local store only, even when the server
    /// has a default repository.
    #[arg(long)]
    pub local_only: bool,
}

fn compress_mode(text: &str) -> std::result::Result<CompressMode, String> {
    text.parse::<CompressMode>().map_err(|e| e.to_string())
}

/// Arguments of `backup list` and `backup verify`.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// The server (name or IP); optional when there is only one.
    pub server: Option<String>,
    /// The backup id (verify and drill; default: the newest).
    #[arg(long = "backup", value_name = "ID")]
    pub backup: Option<String>,
    /// Read the backups in this repository instead of the local store.
    #[arg(long, value_name = "NAME")]
    pub repo: Option<String>,
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
    /// Restore from this repository: the backup is pulled into the local
    /// store first (checked against the checksums recorded when it was
    /// stored), then restored as a local one.
    #[arg(long, value_name = "NAME")]
    pub repo: Option<String>,
}

/// `backup create`: the repository it also goes to (`--repo`, else the
/// server's default unless `--local-only`) is looked up by the operation
/// before anything is backed up.
async fn create(ctx: &Context, args: CreateArgs) -> Result<ExitCode> {
    let repo = if args.local_only {
        RepoChoice::LocalOnly
    } else {
        RepoChoice::from_arg(args.repo.as_deref())
    };
    let options = CreateOptions {
        compress: args.compress,
        repo,
    };
    fleet::execute(ctx, Op::BackupCreate(options), args.target).await
}

/// Runs a backup command.
pub async fn run(cmd: BackupCommand, ctx: &Context) -> Result<ExitCode> {
    match cmd {
        BackupCommand::Create(args) => create(ctx, args).await,
        BackupCommand::List(args) => {
            fleet::run_read(ctx, Op::BackupList(args.repo), args.server).await
        }
        BackupCommand::Verify(args) => {
            let backup = BackupRef {
                id: args.backup,
                repo: args.repo,
            };
            fleet::run_read(ctx, Op::BackupVerify(backup), args.server).await
        }
        BackupCommand::Drill(args) => {
            let backup = BackupRef {
                id: args.backup,
                repo: args.repo,
            };
            fleet::run_read(ctx, Op::BackupDrill(backup), args.server).await
        }
        BackupCommand::Restore(args) => {
            let backup = BackupRef {
                id: args.backup,
                repo: args.repo,
            };
            fleet::execute(ctx, Op::BackupRestore(backup), args.target.into()).await
        }
    }
}
