//! `kastell demo`: runs [`crate::surfaces::demo::run`] against a local sandbox.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kastell_core::Result;

use super::Context;
use crate::shutdown::{self, Ended};

/// Arguments of `kastell demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Keep the demo's fleet store and security log in this directory
    /// (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The platform the sandbox's servers run (a platform id this build
    /// registers; default bare).
    #[arg(long, value_name = "ID")]
    pub platform: Option<String>,
}

/// Runs the sandbox demo, narrating on stdout. On `SIGINT` or `SIGTERM`
/// the sandbox is torn down, stderr says so and the exit code is 130 or
/// 143 ([`crate::shutdown`]).
pub(crate) async fn run(args: DemoArgs, _ctx: &Context) -> Result<ExitCode> {
    let mut out = std::io::stdout();
    match shutdown::run_until_signal(crate::surfaces::demo::run(
        args.dir,
        args.platform,
        &mut out,
    ))
    .await?
    {
        Ended::Finished(done) => done.map(|()| ExitCode::SUCCESS),
        Ended::Stopped(signal) => Ok(shutdown::report(
            "kastell demo",
            signal,
            crate::shutdown::SANDBOX_TORN_DOWN,
        )),
    }
}
