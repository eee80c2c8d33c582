//! `suggested_actions`: next steps that name a tool and action that exist
//! and that the current policy allows.
//!
//! The original suggested "update instead" while SAFE_MODE blocked
//! update. Here every suggestion goes through [`suggest`], which drops the
//! ones [`Policy::check`](crate::policy::Policy::check) would refuse for the
//! same server and surface, without logging them as refusals.

use schemars::JsonSchema;
use serde::Serialize;

use kastell_core::ErrorKind;

use crate::policy::{Operation, Policy, Surface};
use crate::store::ServerRecord;

/// An MCP tool and one of its actions. These are the only (tool, action)
/// pairs a suggestion can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `server_backup` / `backup-create`.
    BackupCreate,
    /// `server_backup` / `backup-list`.
    BackupList,
    /// `server_backup` / `backup-restore`.
    BackupRestore,
    /// `server_backup` / `snapshot-create`.
    SnapshotCreate,
    /// `server_backup` / `snapshot-list`.
    SnapshotList,
    /// `server_backup` / `snapshot-delete`.
    SnapshotDelete,
    /// `server_backup` / `snapshot-restore`.
    SnapshotRestore,
    /// `server_maintain` / `update`.
    Update,
    /// `server_maintain` / `restart`.
    Restart,
    /// `server_maintain` / `maintain`.
    Maintain,
    /// `server_info` / `list`.
    InfoList,
    /// `server_info` / `status`.
    InfoStatus,
    /// `server_info` / `health`.
    InfoHealth,
    /// `server_logs` / `logs`.
    Logs,
    /// `server_logs` / `monitor`.
    Monitor,
}

impl Action {
    /// Every action, for tests and schema generation.
    pub const ALL: [Action; 15] = [
        Self::BackupCreate,
        Self::BackupList,
        Self::BackupRestore,
        Self::SnapshotCreate,
        Self::SnapshotList,
        Self::SnapshotDelete,
        Self::SnapshotRestore,
        Self::Update,
        Self::Restart,
        Self::Maintain,
        Self::InfoList,
        Self::InfoStatus,
        Self::InfoHealth,
        Self::Logs,
        Self::Monitor,
    ];

    /// The tool, its action name, and the policy operation that decides
    /// whether it may run.
    pub const fn parts(self) -> (&'static str, &'static str, Operation) {
        use Operation as Op;
        match self {
            Self::BackupCreate => ("server_backup", "backup-create", Op::BackupCreate),
            Self::BackupList => ("server_backup", "backup-list", Op::BackupList),
            Self::BackupRestore => ("server_backup", "backup-restore", Op::BackupRestore),
            Self::SnapshotCreate => ("server_backup", "snapshot-create", Op::SnapshotCreate),
            Self::SnapshotList => ("server_backup", "snapshot-list", Op::SnapshotList),
            Self::SnapshotDelete => ("server_backup", "snapshot-delete", Op::SnapshotDelete),
            Self::SnapshotRestore => ("server_backup", "snapshot-restore", Op::SnapshotRestore),
            Self::Update => ("server_maintain", "update", Op::Update),
            Self::Restart => ("server_maintain", "restart", Op::Restart),
            Self::Maintain => ("server_maintain", "maintain", Op::Maintain),
            Self::InfoList => ("server_info", "list", Op::ServerList),
            Self::InfoStatus => ("server_info", "status", Op::Info),
            Self::InfoHealth => ("server_info", "health", Op::Info),
            Self::Logs => ("server_logs", "logs", Op::Logs),
            Self::Monitor => ("server_logs", "monitor", Op::Logs),
        }
    }
}

/// One suggested next step: a pseudo-call such as
/// `server_info { action: 'health', server: 'web-1' }` and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Suggestion {
    /// The tool call to make.
    pub command: String,
    /// Why it helps.
    pub reason: String,
}

/// A candidate suggestion before the policy filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What to call.
    pub action: Action,
    /// Extra arguments after `action` and `server` (`backupId`, ...).
    pub args: Vec<(&'static str, String)>,
    /// Why it helps.
    pub reason: String,
}

impl Candidate {
    /// A candidate with no extra arguments.
    pub fn new(action: Action, reason: impl Into<String>) -> Self {
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

fn render(candidate: &Candidate, server: Option<&ServerRecord>) -> String {
    let (tool, action, _) = candidate.action.parts();
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
    format!("{tool} {{ {} }}", args.join(", "))
}

/// Whether `policy` would allow `op` on `server` from `surface` right now,
/// with tokens judged by `token_present`. Nothing is logged: this is a
/// question, not a request.
pub fn allowed(
    policy: &Policy,
    op: Operation,
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
/// suggestion it will refuse).
pub fn suggest(
    policy: &Policy,
    surface: Surface,
    server: Option<&ServerRecord>,
    token_present: impl Fn(&str) -> bool,
    candidates: Vec<Candidate>,
) -> Vec<Suggestion> {
    candidates
        .into_iter()
        .filter(|c| allowed(policy, c.action.parts().2, surface, server, &token_present))
        .map(|c| Suggestion {
            command: render(&c, server),
            reason: c.reason,
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
            Action::InfoList,
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
    op: Operation,
    kind: ErrorKind,
    server: Option<&ServerRecord>,
) -> Vec<Candidate> {
    let ssh_backup = || {
        Candidate::new(
            Action::BackupCreate,
            "Use backup-create for an SSH-based backup instead",
        )
    };
    if op == Operation::SnapshotCreate {
        return vec![ssh_backup()];
    }
    match kind {
        ErrorKind::Unauthenticated => vec![Candidate::new(
            Action::BackupCreate,
            "Use backup-create for an SSH-based backup (no API token needed)",
        )],
        ErrorKind::PermissionDenied => vec![
            Candidate::new(Action::InfoStatus, "Check the server's status (read-only)"),
            Candidate::new(Action::BackupList, "See the server's backups (read-only)"),
        ],
        ErrorKind::InvalidState if server.is_some_and(ServerRecord::is_manual) => match op {
            Operation::SnapshotList | Operation::SnapshotDelete | Operation::SnapshotRestore => {
                vec![ssh_backup()]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
