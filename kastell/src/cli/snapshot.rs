//! `kastell snapshot create|list|delete|restore`: provider snapshots.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use kastell_core::{Error, Result};

use super::Context;
use super::fleet::{self, FleetArgs, OneArgs};
use super::op::Op;

/// The snapshot commands.
#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotCommand {
    /// Take a provider snapshot and wait until it is available (billable).
    Create(OneArgs),
    /// List a server's snapshots (--all: every server's).
    List(ListArgs),
    /// Delete one of a server's snapshots.
    Delete(IdArgs),
    /// Rebuild a server from one of its snapshots and wait until it runs.
    Restore(IdArgs),
}

/// Arguments of `snapshot list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Server, --all, --concurrency and --dry-run (--force is accepted but
    /// a list asks nothing).
    #[command(flatten)]
    pub target: FleetArgs,
}

/// Arguments of `snapshot delete` and `snapshot restore`.
#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    /// Server, dry run and confirmation.
    #[command(flatten)]
    pub target: OneArgs,
    /// The snapshot id (see `kastell snapshot list`).
    #[arg(long = "snapshot", value_name = "ID")]
    pub snapshot: Option<String>,
}

fn snapshot_id(args: &IdArgs) -> Result<String> {
    args.snapshot
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            Error::invalid_input("A snapshot id is required")
                .with_hint("Pass --snapshot ID; `kastell snapshot list` shows the ids")
        })
}

/// Runs a snapshot command.
pub async fn run(cmd: SnapshotCommand, ctx: &Context) -> Result<ExitCode> {
    match cmd {
        SnapshotCommand::Create(args) => fleet::execute(ctx, Op::SnapshotCreate, args.into()).await,
        SnapshotCommand::List(args) => fleet::execute(ctx, Op::SnapshotList, args.target).await,
        SnapshotCommand::Delete(args) => {
            let id = snapshot_id(&args)?;
            fleet::execute(ctx, Op::SnapshotDelete(id), args.target.into()).await
        }
        SnapshotCommand::Restore(args) => {
            let id = snapshot_id(&args)?;
            fleet::execute(ctx, Op::SnapshotRestore(id), args.target.into()).await
        }
    }
}
