//! `kastell update`, `kastell restart` and `kastell maintain`.

use std::process::ExitCode;

use clap::Args;
use kastell_core::Result;

use super::Context;
use super::fleet::{self, FleetArgs};
use super::op::Op;
use crate::ops::MaintainOptions;

/// Arguments of `kastell maintain`.
#[derive(Debug, Clone, Args)]
pub struct MaintainArgs {
    /// Server, --all, --concurrency, --dry-run and --force.
    #[command(flatten)]
    pub target: FleetArgs,
    /// Do not reboot (and so skip the final check).
    #[arg(long)]
    pub skip_reboot: bool,
    /// Take a provider snapshot first and wait until it is available
    /// (billable; cloud servers with a token only).
    #[arg(long)]
    pub snapshot: bool,
}

/// Runs `kastell update`.
pub async fn update(args: FleetArgs, ctx: &Context) -> Result<ExitCode> {
    fleet::execute(ctx, Op::Update, args).await
}

/// Runs `kastell restart`.
pub async fn restart(args: FleetArgs, ctx: &Context) -> Result<ExitCode> {
    fleet::execute(ctx, Op::Restart, args).await
}

/// Runs `kastell maintain`.
pub async fn maintain(args: MaintainArgs, ctx: &Context) -> Result<ExitCode> {
    let options = MaintainOptions {
        skip_reboot: args.skip_reboot,
        snapshot: args.snapshot,
        ..MaintainOptions::default()
    };
    fleet::execute(ctx, Op::Maintain(options), args.target).await
}
