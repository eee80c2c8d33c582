//! `kastell sandbox`: the sandbox fleet ([`crate::surfaces::sandbox`]) for
//! the command line, kept up until it is stopped.
//!
//! It prints the `export` lines that point any other `kastell` at it (the
//! kastell directory holding its store, each simulator's endpoint and
//! token, loopback addresses allowed) and waits for Ctrl-C or `SIGTERM`;
//! with `--shell` it runs `$SHELL` (or the command after `--`) with that
//! environment instead and stops when it exits. Either way the sandbox
//! leaves nothing behind, as `kastell demo` does.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;
use kastell_core::{Error, Result};
use serde::Serialize;

use super::Context;
use super::output::{Output, write_stderr};
use crate::shutdown::{self, Ended, SANDBOX_TORN_DOWN};
use crate::surfaces::sandbox::{CLI_DIR_PREFIX, Sandbox, SandboxPlan};

/// The program name the stop messages start with.
const PROGRAM: &str = "kastell sandbox";

/// What `--shell` runs when neither a command nor `SHELL` is given.
const FALLBACK_SHELL: &str = "/bin/sh";

/// Arguments of `kastell sandbox`.
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// The platform the sandbox's servers run (a platform id this build
    /// registers; default bare).
    #[arg(long, value_name = "ID")]
    pub platform: Option<String>,
    /// Run $SHELL (or the command after `--`) with the sandbox's
    /// environment, and stop the sandbox when it exits.
    #[arg(long)]
    pub shell: bool,
    /// The command `--shell` runs instead of $SHELL, after `--`
    /// (`kastell sandbox --shell -- kastell server list`).
    #[arg(last = true, requires = "shell", value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Starts the sandbox and serves it: prints its environment and waits
/// for `SIGINT` or `SIGTERM` (exit 130 or 143, the sandbox torn down), or
/// with `--shell` runs the shell or command and exits with its status
/// (`SIGINT` stops a start under way, then belongs to the program;
/// `SIGTERM` stops both). Refuses what [`Sandbox::start_with`] refuses,
/// and a `--shell` program that cannot be started.
pub(crate) async fn run(args: SandboxArgs, ctx: &Context) -> Result<ExitCode> {
    let plan = SandboxPlan {
        platform: args.platform,
        ..SandboxPlan::default()
    };
    if !args.shell {
        return finish(shutdown::run_until_signal(serve(plan, ctx.out)).await?);
    }
    let program = shell_command(args.command, ctx);
    let (dir, sandbox) = match shutdown::run_until_signal(start(&plan)).await? {
        Ended::Finished(started) => started?,
        Ended::Stopped(signal) => return finish(Ended::Stopped(signal)),
    };
    let ended = shutdown::run_until_terminated(run_program(&sandbox, &program)).await?;
    drop(sandbox);
    drop(dir);
    finish(ended)
}

/// The exit code of a run that `ended`: its own, or on a signal 130 or
/// 143 once stderr said what was stopped.
fn finish(ended: Ended<Result<ExitCode>>) -> Result<ExitCode> {
    match ended {
        Ended::Finished(done) => done,
        Ended::Stopped(signal) => Ok(shutdown::report(PROGRAM, signal, SANDBOX_TORN_DOWN)),
    }
}

/// The sandbox started in a temporary kastell directory (which its callers
/// drop after the sandbox).
async fn start(plan: &SandboxPlan) -> Result<(tempfile::TempDir, Sandbox)> {
    let dir = kastell_ssh::sandbox::owner::tempdir(CLI_DIR_PREFIX)?;
    let sandbox = Sandbox::start_with(dir.path(), plan).await?;
    Ok((dir, sandbox))
}

/// Prints the sandbox's environment, then keeps it up until the caller
/// drops this future (on a signal).
async fn serve(plan: SandboxPlan, out: Output) -> Result<ExitCode> {
    let (_dir, sandbox) = start(&plan).await?;
    announce(&sandbox, out)?;
    std::future::pending::<Result<ExitCode>>().await
}

/// Runs `program` with `sandbox`'s environment and returns its exit
/// status once it ends. Dropped early (on `SIGTERM`), it kills the
/// program.
async fn run_program(sandbox: &Sandbox, program: &[String]) -> Result<ExitCode> {
    let Some((name, rest)) = program.split_first() else {
        return Err(Error::invalid_input("no command to run"));
    };
    write_stderr(&format!(
        "{PROGRAM}: {} on loopback; running {} with KASTELL_DIR, the simulators' endpoints and \
         their tokens (sandbox tokens, not secrets) set; the sandbox stops when it exits\n",
        fleet_summary(sandbox),
        shlex::try_join(program.iter().map(String::as_str)).unwrap_or_else(|_| name.clone()),
    ));
    let mut child = tokio::process::Command::new(name)
        .args(rest)
        .envs(sandbox.cli_environment())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::invalid_input(format!("cannot run {name}: {e}"))
                .with_hint("Name a program on PATH after `--`, or set SHELL")
        })?;
    let status = child
        .wait()
        .await
        .map_err(|e| Error::io(format!("waiting for {name}"), e))?;
    Ok(exit_code(status))
}

/// The program `--shell` runs: `command` when given, else `$SHELL`, else
/// [`FALLBACK_SHELL`].
fn shell_command(command: Vec<String>, ctx: &Context) -> Vec<String> {
    if !command.is_empty() {
        return command;
    }
    vec![
        ctx.env
            .get_nonempty("SHELL")
            .unwrap_or_else(|| FALLBACK_SHELL.to_owned()),
    ]
}

/// The exit code that passes on `status`: its code, or 128 + the signal
/// that ended it.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1))
}

/// `5 servers (digitalocean-web, ..., manual-web), each running bare`.
fn fleet_summary(sandbox: &Sandbox) -> String {
    let names: Vec<&str> = sandbox.servers().iter().map(|s| s.name.as_str()).collect();
    format!(
        "{} servers ({}), each running {}",
        names.len(),
        names.join(", "),
        sandbox.platform()
    )
}

/// What `--json` prints: the environment and the fleet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Announcement<'a> {
    /// The variables to set (`KASTELL_DIR`, endpoints, simulator tokens).
    environment: BTreeMap<String, String>,
    /// The sandbox's servers.
    servers: Vec<AnnouncedServer<'a>>,
    /// The platform every server runs.
    platform: &'a str,
    /// What the tokens are.
    tokens: &'static str,
}

/// One server of [`Announcement`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AnnouncedServer<'a> {
    name: &'a str,
    ip: String,
    provider: Option<&'a str>,
    server_id: &'a str,
}

/// What the tokens printed are, in both outputs.
const TOKENS: &str = "the API simulators' own tokens: they open this sandbox and nothing else";

/// Prints the sandbox's environment: `export` lines between comments (so
/// the whole text can be pasted into a shell), or with `--json` one JSON
/// document.
fn announce(sandbox: &Sandbox, out: Output) -> Result<()> {
    let environment = sandbox.cli_environment();
    if out.is_json() {
        let servers = sandbox
            .servers()
            .iter()
            .map(|s| AnnouncedServer {
                name: &s.name,
                ip: s.address.to_string(),
                provider: s.provider,
                server_id: &s.server_id,
            })
            .collect();
        return out.json(&Announcement {
            environment,
            servers,
            platform: sandbox.platform(),
            tokens: TOKENS,
        });
    }
    out.line(format!(
        "# {PROGRAM}: {} on loopback.",
        fleet_summary(sandbox)
    ))?;
    out.line("# Paste these lines into another shell: every kastell command there works on it.")?;
    out.line(format!("# The tokens are {TOKENS}."))?;
    for (name, value) in &environment {
        out.line(export_line(name, value)?)?;
    }
    let server = &sandbox.showcase()?.name;
    out.line("# Then try:")?;
    for command in [
        "server list".to_owned(),
        format!("status {server}"),
        format!("backup create {server}"),
        format!("backup list {server}"),
        format!("snapshot create {server}"),
        format!("maintain {server} --dry-run"),
        "maintain --all --force".to_owned(),
    ] {
        out.line(format!("#   kastell {command}"))?;
    }
    out.line("# Ctrl-C here stops the sandbox and removes everything it made.")
}

/// `export NAME=VALUE`, the value quoted for a POSIX shell. Refuses a
/// value no shell quoting can carry (a NUL byte).
fn export_line(name: &str, value: &str) -> Result<String> {
    let quoted = shlex::try_quote(value).map_err(|e| {
        Error::unexpected(format!(
            "the sandbox's {name} cannot be quoted for a shell: {e}"
        ))
    })?;
    Ok(format!("export {name}={quoted}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exports_quote_what_a_shell_would_split() {
        assert_eq!(
            export_line("KASTELL_DIR", "/tmp/kastell-cli-sandbox-x").unwrap(),
            "export KASTELL_DIR=/tmp/kastell-cli-sandbox-x"
        );
        let line = export_line("KASTELL_DIR", "/tmp/a b'c").unwrap();
        let words = shlex::split(&line).unwrap();
        assert_eq!(words, ["export", "KASTELL_DIR=/tmp/a b'c"]);
        assert!(export_line("X", "a\0b").is_err());
    }

    #[test]
    fn a_command_passes_its_exit_status_or_signal_on() {
        use std::os::unix::process::ExitStatusExt;
        let code = |raw| format!("{:?}", exit_code(std::process::ExitStatus::from_raw(raw)));
        assert_eq!(code(3 << 8), format!("{:?}", ExitCode::from(3)));
        assert_eq!(code(0), format!("{:?}", ExitCode::from(0)));
        // Killed by SIGTERM (15): 143, as a shell reports it.
        assert_eq!(code(15), format!("{:?}", ExitCode::from(143)));
    }
}
