//! The MCP surface: `kastell-mcp`, an rmcp server over stdio or
//! Streamable HTTP ([`http`]) with the tools `server_backup`,
//! `server_maintain`, `server_info` and `server_logs`, tasks for long work,
//! the `kastell://fleet` resource, prompts and operation logs.
//!
//! It only parses arguments (strictly: [`strict`]), calls [`crate::ops`]
//! and renders the results: SAFE_MODE (on by default for MCP) and every
//! other guard are applied by the operations through the one policy table.
//! stdout carries nothing but the protocol (over stdio); logs and the
//! startup line go to stderr.

mod approve;
mod audit;
mod call;
mod confirm;
pub(crate) mod http;
mod journal;
mod logging;
mod params;
mod progress;
mod prompts;
mod render;
mod resources;
mod schema;
mod server;
mod strict;
mod task;
mod tools;

pub use approve::ApprovalPending;
pub use confirm::{CONFIRM_TIMEOUT_VAR, CONFIRM_VAR, PLAN_TTL, PLAN_TTL_VAR, PlanOutput};
pub use http::{HttpOptions, serve_http};
pub use progress::{HEARTBEAT, Progress};
pub use server::KastellMcp;
pub use task::Tasks;
pub use tools::full_output_schema;

use std::net::SocketAddr;
use std::time::Duration;

use kastell_core::Error;
use rmcp::ServiceExt;

use crate::env::Env;
use crate::ops::Context;
use crate::policy::Surface;
use crate::state::store::FleetStore;

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
    let dir = crate::state::paths::kastell_dir_in(&env)?;
    let store = FleetStore::open(dir)?;
    Ok(Context::new(env, store, Surface::Mcp))
}

/// How long a stopping server waits for its running work (tasks, and
/// long calls answered directly) to reach a safe point: a restore always
/// finishes putting the platform back.
const PATIENCE: Duration = Duration::from_secs(300);

/// Serves the tools over stdin/stdout until the client disconnects (closes
/// stdin), which is a clean end even before it initialised the session;
/// then lets running work reach a safe point.
pub async fn serve_stdio(ctx: Context, tasks: Tasks) -> Result<(), Error> {
    eprintln!("{}", startup_line(&ctx));
    let server = KastellMcp::sharing(ctx, tasks.clone());
    let service = match server.serve(rmcp::transport::stdio()).await {
        Ok(service) => service,
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(during)) => {
            tracing::info!("the client closed stdin during {during}");
            return Ok(());
        }
        Err(e) => return Err(Error::unexpected(format!("MCP initialisation failed: {e}"))),
    };
    let stopped = service
        .waiting()
        .await
        .map_err(|e| Error::unexpected(format!("MCP server stopped: {e}")));
    settle(&tasks).await;
    stopped.map(|_| ())
}

/// Asks the running work of `tasks` to stop at its next safe point and
/// waits for it (up to [`PATIENCE`]), saying on stderr what was left.
pub(crate) async fn settle(tasks: &Tasks) {
    let left = tasks.shutdown(PATIENCE).await;
    if left > 0 {
        eprintln!("kastell-mcp: {left} operation(s) still running when it stopped");
    }
}

/// Serves `ctx` over the transport `args` chose, with `tasks` shared by
/// every session; `dir` is where an HTTP token file lives.
async fn serve(
    ctx: Context,
    args: &McpArgs,
    dir: &std::path::Path,
    tasks: Tasks,
) -> Result<(), Error> {
    match args.http {
        None => serve_stdio(ctx, tasks).await,
        Some(bind) => {
            let options = HttpOptions {
                bind,
                allow_remote: args.allow_remote,
                allowed_hosts: args.allowed_hosts.clone(),
                allowed_origins: args.allowed_origins.clone(),
            };
            serve_http(ctx, options, dir, tasks).await
        }
    }
}

/// The command line of `kastell-mcp`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "kastell-mcp",
    version,
    about = "The kastell MCP server (stdio, or Streamable HTTP with --http): server_backup, server_maintain, server_info, server_logs",
    long_about = "The kastell MCP server. Point an MCP client at this command (stdio), or \
                  serve it over Streamable HTTP with --http 127.0.0.1:8765 (bearer token from \
                  KASTELL_MCP_TOKEN or KASTELL_DIR/mcp-token); it serves the fleet in \
                  KASTELL_DIR (default ~/.kastell) with SAFE_MODE on unless KASTELL_SAFE_MODE=false."
)]
pub struct McpArgs {
    /// Serve a sandbox fleet instead of yours: provider API simulators and
    /// fake hosts on loopback, in a temporary store removed on exit. No
    /// account and no network; nothing real is touched. SAFE_MODE still
    /// applies (set KASTELL_SAFE_MODE=false to let the agent change things).
    #[arg(long)]
    pub sandbox: bool,
    /// The platform the sandbox's servers run (a registered platform id;
    /// default bare).
    #[arg(long, value_name = "ID", requires = "sandbox")]
    pub sandbox_platform: Option<String>,
    /// Serve over Streamable HTTP at http://ADDR/mcp instead of stdio
    /// (e.g. 127.0.0.1:8765; port 0 picks a free one). Clients send
    /// `Authorization: Bearer <token>`.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Allow --http on an address other than loopback (needs
    /// KASTELL_MCP_TOKEN or an existing token file, and --allowed-host for
    /// the name clients connect to).
    #[arg(long, requires = "http")]
    pub allow_remote: bool,
    /// A Host header value to accept besides localhost, 127.0.0.1 and ::1
    /// (repeatable).
    #[arg(long = "allowed-host", value_name = "HOST", requires = "http")]
    pub allowed_hosts: Vec<String>,
    /// An Origin to accept (repeatable; e.g. http://localhost:6274). By
    /// default only the server's own (http://localhost:PORT and the other
    /// loopback names, on the port it listens on) is accepted.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", requires = "http")]
    pub allowed_origins: Vec<String>,
}

/// Starts the sandbox fleet in a temporary directory and serves it until
/// the client disconnects; then removes everything.
#[cfg(feature = "sandbox")]
async fn serve_sandbox(env: Env, args: &McpArgs, tasks: Tasks) -> Result<(), Error> {
    let dir = kastell_ssh::sandbox::owner::tempdir(crate::surfaces::sandbox::STORE_DIR_PREFIX)?;
    let plan = crate::surfaces::sandbox::SandboxPlan {
        platform: args.sandbox_platform.clone(),
        ..crate::surfaces::sandbox::SandboxPlan::default()
    };
    let sandbox = crate::surfaces::sandbox::Sandbox::start_with(dir.path(), &plan).await?;
    let names: Vec<&str> = sandbox.servers().iter().map(|s| s.name.as_str()).collect();
    eprintln!(
        "kastell-mcp: sandbox fleet of {} servers ({}) on loopback; store {}; approve its \
         waiting calls with `KASTELL_DIR={} kastell approve`",
        names.len(),
        names.join(", "),
        sandbox.store().path().display(),
        sandbox.store().dir().display()
    );
    let ctx = sandbox.context(&env, Surface::Mcp);
    let served = serve(ctx, args, dir.path(), tasks).await;
    drop(sandbox);
    served
}

/// A build without the sandbox refuses `--sandbox`, saying how to get it.
#[cfg(not(feature = "sandbox"))]
async fn serve_sandbox(_: Env, _: &McpArgs, _: Tasks) -> Result<(), Error> {
    Err(Error::unsupported("this build has no sandbox")
        .with_hint("Rebuild kastell with `--features sandbox` (on by default)"))
}

/// Parses the command line, sets up logging (stderr) and a runtime, then
/// serves. Returns the exit code: 0 after a clean disconnect, 1 on failure
/// (reported on stderr), 2 for a bad command line, 130 or 143 when
/// `SIGINT` or `SIGTERM` stopped it (the sandbox torn down first).
pub fn run_blocking() -> std::process::ExitCode {
    match <McpArgs as clap::Parser>::try_parse() {
        Ok(args) => run_blocking_with(args),
        Err(e) => {
            // --help and --version print to stdout and succeed; the
            // client never asks for them.
            let _ = e.print();
            if e.use_stderr() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
    }
}

/// [`run_blocking`] with arguments already parsed (`kastell mcp`, or a
/// binary of its own).
pub fn run_blocking_with(args: McpArgs) -> std::process::ExitCode {
    let env = Env::process();
    crate::surfaces::cli::init_logging(&env);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
        .and_then(|rt| {
            let tasks = Tasks::default();
            let ended = rt.block_on(async {
                let work = async {
                    if args.sandbox {
                        serve_sandbox(env, &args, tasks.clone()).await
                    } else {
                        let dir = crate::state::paths::kastell_dir_in(&env)?;
                        serve(context(env)?, &args, &dir, tasks.clone()).await
                    }
                };
                tokio::pin!(work);
                let ended = crate::shutdown::run_until_signal(&mut work).await;
                if matches!(ended, Ok(crate::shutdown::Ended::Stopped(_))) {
                    // Running work reaches a safe point while everything it
                    // uses (the sandbox too) is still up; then `work` is
                    // dropped, which tears the rest down.
                    settle(&tasks).await;
                }
                ended
            });
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
                crate::shutdown::SANDBOX_TORN_DOWN
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
            if let Some(hint) = crate::advice::hint(&e) {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
