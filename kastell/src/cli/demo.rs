//! `kastell demo`: runs [`crate::demo::run`] against a local sandbox.

use std::path::PathBuf;

use clap::Args;
use kastell_core::Result;

use super::Context;

/// Arguments of `kastell demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the demo's fleet store and security log in this directory
    /// (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Runs the sandbox demo, narrating on stdout.
pub async fn run(args: DemoArgs, _ctx: &Context) -> Result<()> {
    crate::demo::run(args.dir, &mut std::io::stdout()).await
}
