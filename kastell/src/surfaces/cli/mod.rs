//! The `kastell` command line.
//!
//! Parsing (clap), one [`Context`] per run, and the error contract: on
//! failure `error: <message>` and `hint: <hint>` go to stderr (with
//! `--json`, a `{error, hint, kind}` object goes to stdout) and the exit
//! code is 1. Usage errors exit with 2 (clap's default). Logs go to stderr
//! only, at the level in `KASTELL_LOG` (default `warn`).

pub(crate) mod alert;
pub(crate) mod approve;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod backup;
mod command;
pub(crate) mod confirm;
#[cfg(feature = "sandbox")]
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod fleet;
pub(crate) mod freshness;
pub(crate) mod op;
pub(crate) mod output;
mod pick;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod repo;
pub(crate) mod report;
pub(crate) mod rollout;
#[cfg(feature = "sandbox")]
pub(crate) mod sandbox;
pub(crate) mod schedule;
pub(crate) mod server;
pub(crate) mod shell;
mod spelling;
pub(crate) mod style;
pub(crate) mod when;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use kastell_core::{Error, Result};

use crate::env::Env;
use crate::policy::Policy;
use crate::state::store::FleetStore;

pub use command::OpCall;
pub use output::{Output, report_error};

/// The environment variable holding the log filter.
pub const LOG_VAR: &str = "KASTELL_LOG";

/// kastell: keeps self-hosted servers safe. Parsed with clap
/// ([`clap::Parser`]): the commands of their own ([`Command`]) and one
/// subcommand per operation (see [`command`]).
#[derive(Debug)]
pub struct Cli {
    /// `--json`: machine-readable JSON on stdout instead of text.
    pub json: bool,
    /// What to do.
    pub command: Command,
}

/// The top-level commands of their own, and the operation calls.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the fleet of servers kastell knows.
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// Provider API tokens kept in the kastell directory: store one
    /// (prompted, or piped on stdin), list them, remove one.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Check this build, the fleet store and (optionally) one server.
    Doctor(doctor::DoctorArgs),
    /// Run the real code against a local sandbox: no account, no network.
    #[cfg(feature = "sandbox")]
    Demo(demo::DemoArgs),
    /// Start the sandbox fleet and keep it up until Ctrl-C, printing the
    /// `export` lines that point every other kastell command at it (or,
    /// with --shell, run a shell with them).
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::SandboxArgs),
    /// Back servers up over SSH, list, verify, drill, restore, prune and
    /// clean up backups (`kastell backup web-1`: backup create).
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Backup repositories (restic format) on a directory or S3: create,
    /// list, check, push backups into them, prune.
    #[command(subcommand)]
    Repo(repo::RepoCommand),
    /// systemd timers that back up, prune and drill on a calendar.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Send an alert to KASTELL_ALERT_WEBHOOK (what a failed scheduled job runs).
    #[command(subcommand)]
    Alert(alert::AlertCommand),
    /// The tamper-evident audit log: verify its chain and anchor, show
    /// its newest entries.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Fleet rollouts (`maintain|update|restart --all`): show one or all,
    /// resume one that was interrupted, abort one.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Answer the approval requests kastell-mcp made for destructive
    /// calls: list them, approve one at this terminal, or deny one.
    Approve(approve::ApproveArgs),
    /// Serve the MCP tools (what `kastell-mcp` does), so a build of kastell
    /// with more providers or platforms linked in is one binary.
    Mcp(crate::surfaces::mcp::McpArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish,
    /// powershell).
    Completions(shell::CompletionsArgs),
    /// Print the manual page, or write every page into a directory.
    Man(shell::ManArgs),
    /// An operation (`backup create`, `snapshot delete`, `maintain`, ...),
    /// from the list of operations.
    #[command(skip)]
    Operation(OpCall),
}

/// What every command gets: output mode, environment and access to the
/// store and the policy.
#[derive(Debug, Clone)]
pub struct Context {
    /// Whether `--json` was given.
    pub json: bool,
    /// The environment (the process's, or a fixed one in tests).
    pub env: Env,
    /// Where results go.
    pub out: Output,
}

impl Context {
    /// A context for one run.
    pub fn new(json: bool, env: Env) -> Self {
        Self {
            json,
            env,
            out: Output::new(json),
        }
    }

    /// The kastell directory, created (0700) if missing. Refuses when it
    /// cannot be located or created.
    pub fn kastell_dir(&self) -> Result<PathBuf> {
        crate::state::paths::kastell_dir_in(&self.env)
    }

    /// The fleet store in the kastell directory.
    pub fn store(&self) -> Result<FleetStore> {
        FleetStore::open(self.kastell_dir()?)
    }

    /// The policy, reading this context's environment and logging
    /// refusals to the kastell directory's `security.log`.
    pub fn policy(&self) -> Result<Policy> {
        Ok(Policy::for_dir(self.env.clone(), &self.kastell_dir()?))
    }
}

/// Runs `cli` to completion and returns the exit code: 0 on success, 1 on
/// any failure (after reporting it).
pub async fn run(cli: Cli) -> ExitCode {
    let ctx = Context::new(cli.json, Env::process());
    let result = match cli.command {
        Command::Server(cmd) => server::run(cmd, &ctx).await.map(|()| ExitCode::SUCCESS),
        Command::Auth(cmd) => auth::run(cmd, &ctx).map(|()| ExitCode::SUCCESS),
        Command::Doctor(args) => doctor::run(args, &ctx).await,
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => demo::run(args, &ctx).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => sandbox::run(args, &ctx).await,
        Command::Backup(cmd) => backup::run(cmd, &ctx).await,
        Command::Repo(cmd) => repo::run(cmd, &ctx).await,
        Command::Schedule(cmd) => schedule::run(cmd, &ctx).await,
        Command::Alert(cmd) => alert::run(cmd, &ctx).await,
        Command::Audit(cmd) => audit::run(cmd, &ctx),
        Command::Rollout(cmd) => rollout::run(cmd, &ctx).await,
        Command::Approve(args) => approve::run(args, &ctx),
        Command::Completions(args) => shell::completions(&args, &ctx),
        Command::Man(args) => shell::man(&args, &ctx),
        Command::Operation(call) => fleet::execute(&ctx, call.op, call.target).await,
        Command::Mcp(_) => Err(Error::invalid_input(
            "kastell mcp owns its runtime and cannot run inside another",
        )
        .with_hint("Start it through kastell::cli::run_blocking, as the kastell binary does")),
    };
    finish(result, ctx.json)
}

/// Sets up logging and a tokio runtime, then [`run`]s `cli`; `kastell mcp`
/// is handed to [`crate::surfaces::mcp::run_blocking_with`], which owns its runtime.
/// Refuses (exit code 1) only when the runtime cannot be built.
pub fn run_blocking(cli: Cli) -> ExitCode {
    if let Command::Mcp(args) = cli.command {
        return crate::surfaces::mcp::run_blocking_with(args);
    }
    init_logging(&Env::process());
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => finish(Err(Error::io("starting the async runtime", e)), cli.json),
    }
}

/// Turns a command's result into the exit code, reporting an error first.
fn finish(result: Result<ExitCode>, json: bool) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            report_error(&err, json);
            ExitCode::FAILURE
        }
    }
}

/// Sends `tracing` output to stderr at the level in `KASTELL_LOG`
/// (default `warn`; an unparsable value falls back to `warn` with a
/// warning). Does nothing if a subscriber is already installed.
pub fn init_logging(env: &Env) {
    use tracing_subscriber::EnvFilter;
    let requested = env.get_nonempty(LOG_VAR);
    let filter = requested
        .as_deref()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let installed = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .try_init()
        .is_ok();
    if let (true, Some(value)) = (installed, requested) {
        if EnvFilter::try_new(&value).is_err() {
            tracing::warn!("{LOG_VAR}={value:?} is not a valid log filter; using warn");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_global() {
        let cli = Cli::try_parse_from(["kastell", "server", "list", "--json"]).unwrap();
        assert!(cli.json);
        let cli = Cli::try_parse_from(["kastell", "--json", "doctor", "web-1"]).unwrap();
        assert!(cli.json);
        let Command::Doctor(args) = cli.command else {
            panic!("doctor expected");
        };
        assert_eq!(args.server.as_deref(), Some("web-1"));
    }

    #[test]
    fn usage_errors_are_clap_errors() {
        let err = Cli::try_parse_from(["kastell", "server", "add", "--name", "x"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from([
            "kastell",
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            "203.0.113.1",
            "--port",
            "0",
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
