//! The policy table: one row per operation, shared by the CLI and MCP.

use serde::Serialize;

/// Every operation kastell performs, on any surface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Take a backup over SSH.
    BackupCreate,
    /// List local backups.
    BackupList,
    /// Restore a backup onto a server.
    BackupRestore,
    /// Check a local backup's integrity.
    BackupVerify,
    /// Create a provider snapshot (billable).
    SnapshotCreate,
    /// List provider snapshots.
    SnapshotList,
    /// Delete a provider snapshot.
    SnapshotDelete,
    /// Rebuild a server from a provider snapshot.
    SnapshotRestore,
    /// Update the platform (or packages on bare servers).
    Update,
    /// Reboot the server.
    Restart,
    /// Update, check health, reboot, check again.
    Maintain,
    /// Add a server to the fleet store.
    ServerAdd,
    /// List the fleet.
    ServerList,
    /// Remove a server from the fleet store.
    ServerRemove,
    /// Check kastell's setup and a server's reachability.
    Doctor,
    /// Show a server's details.
    Info,
    /// Show a server's logs.
    Logs,
}

impl Operation {
    /// Every operation, in table order.
    pub const ALL: [Operation; 17] = [
        Self::BackupCreate,
        Self::BackupList,
        Self::BackupRestore,
        Self::BackupVerify,
        Self::SnapshotCreate,
        Self::SnapshotList,
        Self::SnapshotDelete,
        Self::SnapshotRestore,
        Self::Update,
        Self::Restart,
        Self::Maintain,
        Self::ServerAdd,
        Self::ServerList,
        Self::ServerRemove,
        Self::Doctor,
        Self::Info,
        Self::Logs,
    ];

    /// The action name used in logs and MCP (`backup-restore`, ...).
    pub const fn as_str(self) -> &'static str {
        self.rule().action
    }

    /// This operation's row of [`RULES`].
    pub const fn rule(self) -> &'static Rule {
        &RULES[self as usize]
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// The `kastell` command line (SAFE_MODE off by default).
    Cli,
    /// The MCP server (SAFE_MODE on by default).
    Mcp,
}

impl Surface {
    /// `cli` or `mcp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Mcp => "mcp",
        }
    }
}

/// Whether an operation needs a provider API token (manual servers never
/// do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenNeed {
    /// Never uses the provider API.
    None,
    /// Refused without a token.
    Required,
    /// Runs without a token, skipping the provider steps.
    Optional,
}

/// Whether an operation needs to know the server's platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformNeed {
    /// Does not care.
    None,
    /// Needs a platform kastell knows; `bare` counts as one.
    Known,
}

/// An error message and hint, exactly as shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The error message.
    pub error: &'static str,
    /// What to do about it.
    pub hint: &'static str,
}

/// One row of the policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The operation this row is for.
    pub op: Operation,
    /// Its action name (`backup-restore`).
    pub action: &'static str,
    /// Its category in the security log (`read`, `write`, `destructive`,
    /// `billable`).
    pub category: &'static str,
    /// Set when SAFE_MODE blocks it: the refusal shown.
    pub safe_mode: Option<Refusal>,
    /// Set when manually added servers are refused: the refusal shown.
    pub manual: Option<Refusal>,
    /// Token need on cloud servers.
    pub token: TokenNeed,
    /// Platform need.
    pub platform: PlatformNeed,
    /// Whether the CLI asks for confirmation (or `--force`) first.
    pub confirm: bool,
}

const SNAPSHOT_MANUAL: Refusal = Refusal {
    error: "Snapshots require cloud provider API. Manual servers don't have provider IDs.",
    hint: "Use backup-create for SSH-based backup instead.",
};

const fn row(op: Operation, action: &'static str, category: &'static str) -> Rule {
    Rule {
        op,
        action,
        category,
        safe_mode: None,
        manual: None,
        token: TokenNeed::None,
        platform: PlatformNeed::None,
        confirm: false,
    }
}

const fn blocked(mut rule: Rule, error: &'static str, hint: &'static str) -> Rule {
    rule.safe_mode = Some(Refusal { error, hint });
    rule.confirm = true;
    rule
}

const fn cloud_only(mut rule: Rule) -> Rule {
    rule.manual = Some(SNAPSHOT_MANUAL);
    rule.token = TokenNeed::Required;
    rule
}

const fn token(mut rule: Rule, need: TokenNeed) -> Rule {
    rule.token = need;
    rule
}

const fn needs_platform(mut rule: Rule) -> Rule {
    rule.platform = PlatformNeed::Known;
    rule
}

use Operation as Op;

/// The policy table, indexed by `Operation as usize`. SAFE_MODE messages
/// are the original's MCP strings, now used on both surfaces.
pub static RULES: [Rule; 17] = [
    row(Op::BackupCreate, "backup-create", "write"),
    row(Op::BackupList, "backup-list", "read"),
    needs_platform(blocked(
        row(Op::BackupRestore, "backup-restore", "destructive"),
        "Restore disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable restore operations",
    )),
    row(Op::BackupVerify, "backup-verify", "read"),
    cloud_only(blocked(
        row(Op::SnapshotCreate, "snapshot-create", "billable"),
        "Snapshot creation is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable snapshot creation (billable operation)",
    )),
    cloud_only(row(Op::SnapshotList, "snapshot-list", "read")),
    cloud_only(blocked(
        row(Op::SnapshotDelete, "snapshot-delete", "destructive"),
        "Snapshot delete disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable snapshot deletion",
    )),
    cloud_only(blocked(
        row(Op::SnapshotRestore, "snapshot-restore", "destructive"),
        "Snapshot restore disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable snapshot restore (destructive operation)",
    )),
    token(
        blocked(
            row(Op::Update, "update", "destructive"),
            "Update is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable platform updates",
        ),
        TokenNeed::Optional,
    ),
    token(
        blocked(
            row(Op::Restart, "restart", "destructive"),
            "Restart is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable server reboot",
        ),
        TokenNeed::Required,
    ),
    token(
        blocked(
            row(Op::Maintain, "maintain", "destructive"),
            "Maintenance is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable maintenance (includes reboot)",
        ),
        TokenNeed::Optional,
    ),
    row(Op::ServerAdd, "server-add", "write"),
    row(Op::ServerList, "server-list", "read"),
    blocked(
        row(Op::ServerRemove, "server-remove", "destructive"),
        "Server removal is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable removing servers",
    ),
    row(Op::Doctor, "doctor", "read"),
    row(Op::Info, "info", "read"),
    row(Op::Logs, "logs", "read"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_indexed_by_operation() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(RULES[i].op, *op);
            assert_eq!(op.rule().op, *op);
            let json = serde_json::to_value(op).unwrap();
            assert_eq!(json, op.as_str(), "serde name equals the action name");
        }
    }

    #[test]
    fn every_safe_mode_block_asks_for_confirmation_and_names_the_switch() {
        for rule in &RULES {
            if let Some(block) = rule.safe_mode {
                assert!(rule.confirm, "{}", rule.action);
                assert!(
                    block
                        .hint
                        .starts_with("Set KASTELL_SAFE_MODE=false to enable")
                );
            }
        }
    }
}
