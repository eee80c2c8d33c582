//! `suggested_actions`: next steps that name a tool and action that exist
//! and that the current policy allows.
//!
//! The original suggested "update instead" while SAFE_MODE blocked
//! update. Here every suggestion goes through [`suggest`], which drops the
//! ones [`Policy::check`](crate::policy::Policy::check) would refuse for the
//! same server and surface, without logging them as refusals.
//!
//! On the command line a suggestion also carries the command a shell user
//! types ([`cli`]); MCP's suggestions are the tool calls alone.

#[allow(unused_imports)]
use super::Operation as _;

mod cli;

use schemars::JsonSchema;
use serde::Serialize;

use kastell_core::ErrorKind;

use super::backup::{BackupCreateOp, BackupListOp};
use super::info::{ServerListOp, StatusOp};
use super::operation::Operation;
use super::snapshot::{SnapshotCreateOp, SnapshotDeleteOp, SnapshotListOp, SnapshotRestoreOp};
use crate::policy::{OpId, Policy, Surface};
use crate::state::store::ServerRecord;

/// One suggested next step: a pseudo-call such as
/// `server_info { action: 'health', server: 'web-1' }` and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Suggestion {
    /// The tool call to make.
    pub command: String,
    /// Why it helps.
    pub reason: String,
    /// On the command line, the same step as a command to type
    /// (`kastell health web-1`; the CLI's `--json` and text show it); absent on MCP, whose schema does not list it, and for an
    /// operation without a command line of its own (the text leaves such
    /// a step out).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub cli: Option<String>,
}

/// A candidate suggestion before the policy filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What to call: an operation MCP offers (one it does not is never
    /// suggested).
    pub action: OpId,
    /// Extra arguments after `action` and `server` (`backupId`, ...).
    pub args: Vec<(&'static str, String)>,
    /// Why it helps.
    pub reason: String,
}

impl Candidate {
    /// A candidate with no extra arguments.
    pub fn new(action: OpId, reason: impl Into<String>) -> Self {
        Self {
            action,
            args: Vec::new(),
            reason: reason.into(),
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.args.push((name, value.into()));
        self
    }
}

fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn render(candidate: &Candidate, server: Option<&ServerRecord>) -> Option<String> {
    let mcp = super::catalog::find(candidate.action.as_str())?
        .spec()
        .mcp?;
    let (tool, action) = (mcp.tool, mcp.action);
    let mut args = vec![format!("action: {}", quoted(action))];
    if let Some(server) = server {
        args.push(format!("server: {}", quoted(&server.name)));
    }
    args.extend(
        candidate
            .args
            .iter()
            .map(|(k, v)| format!("{k}: {}", quoted(v))),
    );
    Some(format!("{tool} {{ {} }}", args.join(", ")))
}

/// Whether `policy` would allow `op` on `server` from `surface` right now,
/// with tokens judged by `token_present`. Nothing is logged: this is a
/// question, not a request.
pub fn allowed(
    policy: &Policy,
    op: OpId,
    surface: Surface,
    server: Option<&ServerRecord>,
    token_present: impl Fn(&str) -> bool,
) -> bool {
    policy
        .quiet()
        .check(op, surface, server, token_present)
        .is_ok()
}

/// Turns `candidates` into suggestions, keeping only those the policy
/// allows on `server` from `surface` (so SAFE_MODE never gets an agent a
/// suggestion it will refuse). On the command line, each also gets the
/// command to type, when its operation has one.
pub fn suggest(
    policy: &Policy,
    surface: Surface,
    server: Option<&ServerRecord>,
    token_present: impl Fn(&str) -> bool,
    candidates: Vec<Candidate>,
) -> Vec<Suggestion> {
    candidates
        .into_iter()
        .filter(|c| allowed(policy, c.action, surface, server, &token_present))
        .filter_map(|c| {
            let cli = match surface {
                Surface::Cli => super::catalog::find(c.action.as_str())
                    .and_then(|op| cli::command_line(op, server, &c.args)),
                Surface::Mcp => None,
            };
            Some(Suggestion {
                command: render(&c, server)?,
                reason: c.reason,
                cli,
            })
        })
        .collect()
}

/// What to offer when no server could be chosen (before the policy
/// filter): the fleet list, for a query that matched nothing (`NotFound`)
/// or a missing query among several servers (`InvalidInput`), as long as
/// the fleet has servers to list.
pub(super) fn unresolved_candidates(kind: ErrorKind, fleet_has_servers: bool) -> Vec<Candidate> {
    match kind {
        ErrorKind::NotFound | ErrorKind::InvalidInput if fleet_has_servers => vec![Candidate::new(
            ServerListOp::ID,
            "See the servers and their names",
        )],
        _ => Vec::new(),
    }
}

/// What to offer instead when the policy refuses `op` with an error of
/// `kind` (before the policy filter): a refused snapshot-create and a
/// missing token offer an SSH backup; a SAFE_MODE refusal of anything
/// else offers the read-only status and backup list.
pub(super) fn refusal_candidates(
    op: OpId,
    kind: ErrorKind,
    server: Option<&ServerRecord>,
) -> Vec<Candidate> {
    let ssh_backup = || {
        Candidate::new(
            BackupCreateOp::ID,
            "Use backup-create for an SSH-based backup instead",
        )
    };
    if op == SnapshotCreateOp::ID {
        return vec![ssh_backup()];
    }
    match kind {
        ErrorKind::Unauthenticated => vec![Candidate::new(
            BackupCreateOp::ID,
            "Use backup-create for an SSH-based backup (no API token needed)",
        )],
        ErrorKind::PermissionDenied => vec![
            Candidate::new(StatusOp::ID, "Check the server's status (read-only)"),
            Candidate::new(BackupListOp::ID, "See the server's backups (read-only)"),
        ],
        ErrorKind::InvalidState
            if server.is_some_and(ServerRecord::is_manual)
                && [
                    SnapshotListOp::ID,
                    SnapshotDeleteOp::ID,
                    SnapshotRestoreOp::ID,
                ]
                .contains(&op) =>
        {
            vec![ssh_backup()]
        }
        _ => Vec::new(),
    }
}
