//! `kastell approve [ID] [--deny]`: the operator's answer to the approval
//! requests kastell-mcp makes for destructive calls
//! ([`crate::state::approval`]).
//!
//! Without an id it lists the pending requests with their blast radius.
//! With one it shows the plan and asks on the terminal (`/dev/tty`, never
//! stdin, so a pipe cannot answer): `y` or `yes` approves, anything else
//! denies. It refuses without a terminal. `--deny` refuses the request and
//! needs no terminal. Approvals and denials are audited, and a denial is
//! remembered as a person's "no" ([`crate::state::approval::Declines`]).
//!
//! What this proves is only as strong as the separation of users: an
//! agent with a shell as the same Unix user can open a pseudo-terminal and
//! answer it, or edit the files. README says how to run kastell-mcp as a
//! user of its own.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use kastell_core::{Error, ErrorKind, Result};
use serde_json::json;

use super::Context;
use super::confirm::{Confirmation, ask};
use super::output::printable;
use crate::state::approval::{self, ApprovalRequest, Approvals, Decline, Declines, parse_id};
use crate::state::audit::record_cli;

/// Arguments of `approve`.
#[derive(Debug, Clone, Args)]
pub struct ApproveArgs {
    /// The request to answer, as kastell-mcp named it. Without it, the
    /// pending requests are listed.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Deny the request (works without a terminal).
    #[arg(long, requires = "id")]
    pub deny: bool,
}

/// Lists, approves or denies approval requests; see the module's doc.
pub(crate) fn run(args: ApproveArgs, ctx: &Context) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let approvals = Approvals::in_dir(&dir);
    let Some(id) = args.id else {
        return list(&approvals, ctx);
    };
    let id = parse_id(&id)?;
    let request = approvals.open(&id, approval::now())?;
    let started = Instant::now();
    let approve = if args.deny {
        false
    } else {
        match ask_at_terminal(&request) {
            Ok(answer) => answer == Confirmation::Proceed,
            Err(e) => {
                record(ctx, &dir, &request, "approve", Err(&e), started);
                return Err(e);
            }
        }
    };
    let op = if approve { "approve" } else { "deny" };
    let decided = approvals.decide(&id, approve, approval::now());
    let outcome = decided.as_ref().map(|r| {
        json!({"request": r.id, "status": r.status.as_str(), "action": r.action, "server": r.server})
    });
    record(ctx, &dir, &request, op, outcome, started);
    let decided = decided?;
    if !approve {
        let no = Decline {
            action: decided.action.clone(),
            server: decided.server.clone(),
            digest: decided.digest.clone(),
            fingerprint: decided.fingerprint.clone(),
            how: format!("the operator denied request {}", decided.id),
            at: approval::now(),
        };
        if let Err(e) = Declines::in_dir(&dir).record(no) {
            tracing::warn!("the denial could not be remembered beside the request: {e}");
        }
    }
    if ctx.json {
        ctx.out.json(&decided)?;
    } else if approve {
        ctx.out.line(format!(
            "Request {id} approved: {} on {} runs once when the model calls it again with the same arguments (until {}).",
            decided.action,
            decided.server,
            when(decided.expires)
        ))?;
    } else {
        ctx.out.line(format!(
            "Request {id} denied: {} on {} stays refused.",
            decided.action, decided.server
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn record(
    ctx: &Context,
    dir: &Path,
    request: &ApprovalRequest,
    op: &str,
    outcome: std::result::Result<serde_json::Value, &Error>,
    started: Instant,
) {
    record_cli(
        dir,
        &ctx.env,
        op,
        &request.server,
        json!({"request": request.id, "action": request.action}),
        outcome,
        started.elapsed(),
    );
}

fn when(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "its expiry".to_owned())
}

/// The controlling terminal, for reading and writing; refuses when there
/// is none.
fn terminal() -> Result<File> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::PermissionDenied,
            format!("kastell approve needs a terminal to ask at, and {why}"),
        )
        .with_hint("Run it yourself in a terminal: approving is a person's answer. `kastell approve ID --deny` works without one")
    };
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| refuse(format!("/dev/tty cannot be opened ({e})")))?;
    if !tty.is_terminal() {
        return Err(refuse("/dev/tty is not a terminal".into()));
    }
    Ok(tty)
}

/// Shows `request`'s plan on the terminal and reads the answer there.
fn ask_at_terminal(request: &ApprovalRequest) -> Result<Confirmation> {
    let tty = terminal()?;
    let mut out = &tty;
    let mut text = format!(
        "Request {} from {}: {} on {}\n",
        request.id,
        request.client.as_deref().unwrap_or("an MCP client"),
        request.action,
        request.server
    );
    for line in request.question.lines() {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str("Anything but yes denies it.\n");
    out.write_all(printable_block(&text).as_bytes())
        .map_err(|e| Error::io("writing to the terminal", e))?;
    ask(
        &format!("Approve request {}?", request.id),
        &mut BufReader::new(&tty),
        &mut out,
    )
}

/// `text` with every control character but the line ends escaped.
fn printable_block(text: &str) -> String {
    text.split('\n')
        .map(printable)
        .collect::<Vec<_>>()
        .join("\n")
}

fn list(approvals: &Approvals, ctx: &Context) -> Result<ExitCode> {
    let now = approval::now();
    let pending = approvals.pending(now)?;
    if ctx.json {
        ctx.out.json(&pending)?;
        return Ok(ExitCode::SUCCESS);
    }
    if pending.is_empty() {
        ctx.out.line("No approval requests are waiting.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = pending
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.action.clone(),
                r.server.clone(),
                format!("{} min", ((r.expires - now).max(0) + 59) / 60),
                r.client.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    ctx.out.table(
        &["ID", "OPERATION", "SERVER", "EXPIRES IN", "CLIENT"],
        &rows,
    )?;
    for request in &pending {
        ctx.out.line(format!("\n{}:", request.id))?;
        for line in request.question.lines() {
            ctx.out.line(format!("  {}", printable(line)))?;
        }
    }
    ctx.out
        .line("\nApprove one with `kastell approve ID` (it asks here), or refuse it with `kastell approve ID --deny`.")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::surfaces::cli::{Cli, Command};

    #[test]
    fn deny_needs_an_id() {
        assert!(Cli::try_parse_from(["kastell", "approve", "--deny"]).is_err());
        let cli = Cli::try_parse_from(["kastell", "approve", "abcd2345", "--deny"]).unwrap();
        let Command::Approve(args) = cli.command else {
            panic!("not approve");
        };
        assert!(args.deny);
        assert_eq!(args.id.as_deref(), Some("abcd2345"));
    }
}
