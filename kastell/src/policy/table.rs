//! The operations table: one row per operation, shared by the CLI and MCP.
//!
//! Each row says what the operation is at most ([`Category`]), whether it
//! is billable, long-running and idempotent, and its policy: the SAFE_MODE
//! refusal, the manual-server refusal, its token and platform needs. The
//! surfaces derive from it rather than restating it: the policy checks,
//! the CLI's confirmation, the MCP tool annotations and which calls run as
//! tasks with progress ([`Rule::asks_first`], [`Rule::long_running`],
//! ...), and a test in `mcp::tools` fails when a surface disagrees.

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
    /// Restore a backup into a throwaway target here and check it.
    BackupDrill,
    /// Delete local backups by retention rules (`backup prune --apply`).
    BackupPrune,
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
    pub const ALL: [Operation; 19] = [
        Self::BackupCreate,
        Self::BackupList,
        Self::BackupRestore,
        Self::BackupVerify,
        Self::BackupDrill,
        Self::BackupPrune,
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

/// What an operation does at most, in rising order of what it can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Reads only: lists, status, logs, verification.
    Read,
    /// Adds without taking anything away: a backup, a snapshot, a fleet
    /// record.
    SafeWrite,
    /// Interrupts service but loses nothing: updates, reboots, maintenance.
    Disruptive,
    /// Overwrites or deletes: restores, snapshot deletion, pruning
    /// backups, removing a server from the fleet.
    Destructive,
}

impl Category {
    /// `read`, `safe-write`, `disruptive` or `destructive`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::SafeWrite => "safe-write",
            Self::Disruptive => "disruptive",
            Self::Destructive => "destructive",
        }
    }
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
    /// What it does at most.
    pub category: Category,
    /// Whether it costs money at the provider (a snapshot).
    pub billable: bool,
    /// Whether it is long work: reported with progress, cancellable at
    /// safe points, run as an MCP task for clients that take tasks.
    pub long_running: bool,
    /// Whether doing it twice has no more effect than once.
    pub idempotent: bool,
    /// Set when SAFE_MODE blocks it: the refusal shown.
    pub safe_mode: Option<Refusal>,
    /// Set when manually added servers are refused: the refusal shown.
    pub manual: Option<Refusal>,
    /// Token need on cloud servers.
    pub token: TokenNeed,
    /// Platform need.
    pub platform: PlatformNeed,
}

impl Rule {
    /// Whether a person is asked before it runs (or must pass `--force`),
    /// even on one server: what interrupts service or loses data.
    pub const fn asks_first(&self) -> bool {
        matches!(self.category, Category::Disruptive | Category::Destructive)
    }

    /// Whether it only reads.
    pub const fn reads_only(&self) -> bool {
        matches!(self.category, Category::Read)
    }
}

const SNAPSHOT_MANUAL: Refusal = Refusal {
    error: "Snapshots require cloud provider API. Manual servers don't have provider IDs.",
    hint: "Use backup-create for SSH-based backup instead.",
};

/// A row for `op` of `category`: reads are idempotent, nothing is long,
/// billable, blocked or restricted until a builder below says so.
const fn row(op: Operation, action: &'static str, category: Category) -> Rule {
    Rule {
        op,
        action,
        category,
        billable: false,
        long_running: false,
        idempotent: matches!(category, Category::Read),
        safe_mode: None,
        manual: None,
        token: TokenNeed::None,
        platform: PlatformNeed::None,
    }
}

const fn blocked(mut rule: Rule, error: &'static str, hint: &'static str) -> Rule {
    rule.safe_mode = Some(Refusal { error, hint });
    rule
}

const fn long(mut rule: Rule) -> Rule {
    rule.long_running = true;
    rule
}

const fn billable(mut rule: Rule) -> Rule {
    rule.billable = true;
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
pub static RULES: [Rule; 19] = [
    long(row(Op::BackupCreate, "backup-create", Category::SafeWrite)),
    row(Op::BackupList, "backup-list", Category::Read),
    long(needs_platform(blocked(
        row(Op::BackupRestore, "backup-restore", Category::Destructive),
        "Restore disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable restore operations",
    ))),
    row(Op::BackupVerify, "backup-verify", Category::Read),
    row(Op::BackupDrill, "backup-drill", Category::Read),
    blocked(
        row(Op::BackupPrune, "backup-prune", Category::Destructive),
        "Backup pruning is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable deleting backups (run without --apply to see the plan)",
    ),
    long(billable(cloud_only(blocked(
        row(Op::SnapshotCreate, "snapshot-create", Category::SafeWrite),
        "Snapshot creation is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable snapshot creation (billable operation)",
    )))),
    cloud_only(row(Op::SnapshotList, "snapshot-list", Category::Read)),
    cloud_only(blocked(
        row(Op::SnapshotDelete, "snapshot-delete", Category::Destructive),
        "Snapshot delete disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable snapshot deletion",
    )),
    long(cloud_only(blocked(
        row(
            Op::SnapshotRestore,
            "snapshot-restore",
            Category::Destructive,
        ),
        "Snapshot restore disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable snapshot restore (destructive operation)",
    ))),
    long(token(
        blocked(
            row(Op::Update, "update", Category::Disruptive),
            "Update is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable platform updates",
        ),
        TokenNeed::Optional,
    )),
    long(token(
        blocked(
            row(Op::Restart, "restart", Category::Disruptive),
            "Restart is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable server reboot",
        ),
        TokenNeed::Required,
    )),
    long(token(
        blocked(
            row(Op::Maintain, "maintain", Category::Disruptive),
            "Maintenance is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable maintenance (includes reboot)",
        ),
        TokenNeed::Optional,
    )),
    row(Op::ServerAdd, "server-add", Category::SafeWrite),
    row(Op::ServerList, "server-list", Category::Read),
    blocked(
        row(Op::ServerRemove, "server-remove", Category::Destructive),
        "Server removal is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable removing servers",
    ),
    row(Op::Doctor, "doctor", Category::Read),
    row(Op::Info, "info", Category::Read),
    row(Op::Logs, "logs", Category::Read),
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
    fn every_safe_mode_block_names_the_switch_and_covers_what_asks_first() {
        for rule in &RULES {
            if let Some(block) = rule.safe_mode {
                assert!(
                    block
                        .hint
                        .starts_with("Set KASTELL_SAFE_MODE=false to enable")
                );
                assert!(rule.asks_first() || rule.billable, "{}", rule.action);
            } else {
                // SAFE_MODE lets through exactly what adds or reads and
                // costs nothing.
                assert!(
                    rule.category <= Category::SafeWrite && !rule.billable,
                    "{} is not blocked in SAFE_MODE",
                    rule.action
                );
            }
            assert_eq!(rule.idempotent, rule.reads_only(), "{}", rule.action);
            if rule.long_running {
                assert!(!rule.reads_only(), "{} reads but is long", rule.action);
            }
        }
    }
}
