//! `kastell demo`: runs [`crate::surfaces::demo::run`] against a local sandbox,
//! narrating as text, or with `--json` printing one JSON document at the
//! end (its steps and their outcome).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kastell_core::Result;

use super::Context;
use crate::shutdown::{self, Ended, SANDBOX_TORN_DOWN};
use crate::surfaces::demo::Narration;

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

/// Runs the sandbox demo, narrating on stdout; with `--json` stdout gets
/// one JSON document instead, the steps and their outcome, also when a
/// step fails (exit code 1, the failure in the document rather than a
/// second one) or a signal stops it. On `SIGINT` or `SIGTERM` the sandbox
/// is torn down, stderr says so and the exit code is 130 or 143
/// ([`crate::shutdown`]).
pub(crate) async fn run(args: DemoArgs, ctx: &Context) -> Result<ExitCode> {
    let mut stdout = std::io::stdout();
    let mut narration = if ctx.json {
        Narration::json()
    } else {
        Narration::text(&mut stdout)
    };
    let ended = shutdown::run_until_signal(crate::surfaces::demo::run(
        args.dir,
        args.platform,
        &mut narration,
    ))
    .await?;
    let (outcome, stopped_by, code) = match ended {
        Ended::Finished(Err(e)) if !ctx.json => return Err(e),
        Ended::Finished(Ok(())) => (Ok(()), None, ExitCode::SUCCESS),
        Ended::Finished(failed) => (failed, None, ExitCode::FAILURE),
        Ended::Stopped(signal) => {
            let code = shutdown::report("kastell demo", signal, SANDBOX_TORN_DOWN);
            (Ok(()), Some(signal.name()), code)
        }
    };
    if ctx.json {
        ctx.out.json(&narration.finish(&outcome, stopped_by))?;
    }
    Ok(code)
}
