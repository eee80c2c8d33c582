//! `kastell doctor` (placeholder: being written by another engineer, who
//! replaces this file; keep `DoctorArgs` and `run`'s signature).

use clap::Args;
use kastell_core::{Error, Result};

use super::Context;

/// Arguments of `kastell doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// A server (name or IP) to check over SSH as well.
    pub server: Option<String>,
}

/// Runs `kastell doctor`. Refuses for now with `Unsupported`.
pub async fn run(args: DoctorArgs, ctx: &Context) -> Result<()> {
    let _ = (args, ctx);
    Err(Error::unsupported("doctor is being written"))
}
