//! The MCP surface: `kastell-mcp`, an rmcp server over stdio with the tools
//! `server_backup`, `server_maintain`, `server_info` and `server_logs`.
//!
//! It only parses arguments, calls [`crate::ops`] and renders the results:
//! SAFE_MODE (on by default for MCP) and every other guard are applied by
//! the operations through the one policy table. stdout carries nothing but
//! the protocol; logs and the startup line go to stderr.

mod output;
mod params;
mod progress;
mod render;
mod server;

pub use output::{BackupOutput, InfoOutput, LogsOutput, MaintainOutput};
pub use progress::{HEARTBEAT, Progress};
pub use server::KastellMcp;

use kastell_core::Error;
use rmcp::ServiceExt;

use crate::env::Env;
use crate::ops::Context;
use crate::policy::Surface;
use crate::store::FleetStore;

/// The line written to stderr at startup:
/// `kastell-mcp v<ver> started (features=<ids>, SAFE_MODE=<on|off>)`.
pub fn startup_line(ctx: &Context) -> String {
    format!(
        "kastell-mcp v{} started (features={}, SAFE_MODE={})",
        env!("CARGO_PKG_VERSION"),
        crate::build::enabled_features().join(","),
        if ctx.policy.safe_mode(Surface::Mcp) {
            "on"
        } else {
            "off"
        }
    )
}

/// The MCP context for `env`: the fleet store in `KASTELL_DIR` (default
/// `~/.kastell`), surface MCP, production timings.
pub fn context(env: Env) -> Result<Context, Error> {
    let dir = crate::paths::kastell_dir_in(&env)?;
    let store = FleetStore::open(dir)?;
    Ok(Context::new(env, store, Surface::Mcp))
}

/// Serves the tools over stdin/stdout until the client disconnects (closes
/// stdin), which is a clean end even before it initialised the session.
pub async fn serve_stdio(ctx: Context) -> Result<(), Error> {
    eprintln!("{}", startup_line(&ctx));
    let service = match KastellMcp::new(ctx).serve(rmcp::transport::stdio()).await {
        Ok(service) => service,
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(during)) => {
            tracing::info!("the client closed stdin during {during}");
            return Ok(());
        }
        Err(e) => return Err(Error::unexpected(format!("MCP initialisation failed: {e}"))),
    };
    service
        .waiting()
        .await
        .map_err(|e| Error::unexpected(format!("MCP server stopped: {e}")))?;
    Ok(())
}

/// The command line of `kastell-mcp`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "kastell-mcp",
    version,
    about = "The kastell MCP server over stdio: server_backup, server_maintain, server_info, server_logs",
    long_about = "The kastell MCP server over stdio. Point an MCP client at this command; \
                  it serves the fleet in KASTELL_DIR (default ~/.kastell) with SAFE_MODE on \
                  unless KASTELL_SAFE_MODE=false."
)]
pub struct McpArgs {
    /// Serve a sandbox fleet instead of yours: provider API simulators and
    /// fake hosts on loopback, in a temporary store removed on exit. No
    /// account and no network; nothing real is touched. SAFE_MODE still
    /// applies (set KASTELL_SAFE_MODE=false to let the agent change things).
    #[arg(long)]
    pub sandbox: bool,
}

/// Starts the sandbox fleet in a temporary directory and serves it until
/// the client disconnects; then removes everything.
async fn serve_sandbox(env: Env) -> Result<(), Error> {
    let dir = kastell_ssh::sandbox::owner::tempdir(crate::sandbox::STORE_DIR_PREFIX)?;
    let sandbox = crate::sandbox::Sandbox::start(dir.path()).await?;
    let names: Vec<&str> = sandbox.servers().iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "kastell-mcp: sandbox fleet of {} servers ({}) on loopback; store {}",
        names.len(),
        names.join(", "),
        sandbox.store().path().display()
    );
    let ctx = sandbox.context(&env, Surface::Mcp);
    let served = serve_stdio(ctx).await;
    drop(sandbox);
    served
}

/// Parses the command line, sets up logging (stderr) and a runtime, then
/// serves. Returns the exit code: 0 after a clean disconnect, 1 on failure
/// (reported on stderr), 2 for a bad command line, 130 or 143 when
/// `SIGINT` or `SIGTERM` stopped it (the sandbox torn down first).
pub fn run_blocking() -> std::process::ExitCode {
    let args = match <McpArgs as clap::Parser>::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version print to stdout and succeed; the
            // client never asks for them.
            let _ = e.print();
            return if e.use_stderr() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    let env = Env::process();
    crate::cli::init_logging(&env);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
        .and_then(|rt| {
            let ended = rt.block_on(crate::shutdown::run_until_signal(async {
                if args.sandbox {
                    serve_sandbox(env).await
                } else {
                    serve_stdio(context(env)?).await
                }
            }));
            if matches!(ended, Ok(crate::shutdown::Ended::Stopped(_))) {
                // The blocking read of stdin still waits for the client:
                // the process must not wait for it.
                rt.shutdown_background();
            }
            ended
        });
    let result = match result {
        Ok(crate::shutdown::Ended::Stopped(signal)) => {
            let what = if args.sandbox {
                crate::sandbox::TORN_DOWN
            } else {
                "serving"
            };
            return crate::shutdown::report("kastell-mcp", signal, what);
        }
        Ok(crate::shutdown::Ended::Finished(served)) => served,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kastell-mcp: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
