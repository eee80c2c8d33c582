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

/// Serves the tools over stdin/stdout until the client disconnects.
pub async fn serve_stdio(ctx: Context) -> Result<(), Error> {
    eprintln!("{}", startup_line(&ctx));
    let service = KastellMcp::new(ctx)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::unexpected(format!("MCP initialisation failed: {e}")))?;
    service
        .waiting()
        .await
        .map_err(|e| Error::unexpected(format!("MCP server stopped: {e}")))?;
    Ok(())
}

/// Sets up logging (stderr) and a runtime, then serves. Returns the exit
/// code: 0 after a clean disconnect, 1 on failure (reported on stderr).
pub fn run_blocking() -> std::process::ExitCode {
    let env = Env::process();
    crate::cli::init_logging(&env);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
        .and_then(|rt| rt.block_on(async { serve_stdio(context(env)?).await }));
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
