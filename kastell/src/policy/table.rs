//! An operation's policy row ([`Rule`]) and its identity ([`OpId`]).
//!
//! Each operation declares its row beside its code (see
//! [`crate::ops::Operation`]): what it is at most ([`Category`]), whether
//! it is billable, long-running and idempotent, the SAFE_MODE refusal, the
//! manual-server refusal, its token and platform needs. The surfaces derive
//! from it rather than restating it: the policy checks, the CLI's
//! confirmation, the MCP tool annotations and which calls run as tasks
//! with progress ([`Rule::asks_first`], [`Rule::long_running`], ...).

use serde::Serialize;

/// An operation's identity: its policy row, by which the policy, the
/// audit log, the security log and approvals name it. Every operation
/// declares one ([`crate::ops::Operation::ID`]); two handles are equal when
/// their ids are. Serialised as the id (`backup-restore`).
#[derive(Clone, Copy)]
pub struct OpId(&'static Rule);

impl OpId {
    /// The handle of the operation whose row is `rule`.
    pub const fn new(rule: &'static Rule) -> Self {
        Self(rule)
    }

    /// The id used in logs, audit entries and MCP (`backup-restore`, ...).
    pub const fn as_str(self) -> &'static str {
        self.0.id
    }

    /// This operation's policy row.
    pub const fn rule(self) -> &'static Rule {
        self.0
    }
}

impl PartialEq for OpId {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for OpId {}

impl std::hash::Hash for OpId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl std::fmt::Debug for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpId({})", self.0.id)
    }
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OpId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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

/// One operation's policy: what it is at most and what it needs. Built
/// with [`Rule::new`] and the `const` builders below, so a row reads as
/// what it adds to the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The operation's id (`backup-restore`): lower-case words joined by
    /// `-`, unique among the operations of a build.
    pub id: &'static str,
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

/// The refusal of snapshot operations on manually added servers.
const SNAPSHOT_MANUAL: Refusal = Refusal {
    error: "Snapshots require cloud provider API. Manual servers don't have provider IDs.",
    hint: "Use backup-create for SSH-based backup instead.",
};

impl Rule {
    /// The row of operation `id` of `category`: reads are idempotent;
    /// nothing is long, billable, blocked or restricted until a builder
    /// below says so.
    pub const fn new(id: &'static str, category: Category) -> Self {
        Self {
            id,
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

    /// Blocked by SAFE_MODE with this refusal (the hint must start with
    /// `Set KASTELL_SAFE_MODE=false to enable`; a test holds every row to
    /// it).
    pub const fn blocked(mut self, error: &'static str, hint: &'static str) -> Self {
        self.safe_mode = Some(Refusal { error, hint });
        self
    }

    /// Long work: progress, cancellation at safe points, an MCP task.
    pub const fn long(mut self) -> Self {
        self.long_running = true;
        self
    }

    /// Costs money at the provider.
    pub const fn billable(mut self) -> Self {
        self.billable = true;
        self
    }

    /// Needs a cloud server and its provider's token (refused on manual
    /// servers with the snapshot refusal).
    pub const fn cloud_only(mut self) -> Self {
        self.manual = Some(SNAPSHOT_MANUAL);
        self.token = TokenNeed::Required;
        self
    }

    /// Needs the provider token as `need` says.
    pub const fn token(mut self, need: TokenNeed) -> Self {
        self.token = need;
        self
    }

    /// Needs a platform this build knows.
    pub const fn needs_platform(mut self) -> Self {
        self.platform = PlatformNeed::Known;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_safe_mode_block_names_the_switch_and_covers_what_asks_first() {
        for rule in crate::ops::catalog::rules() {
            if let Some(block) = rule.safe_mode {
                assert!(
                    block
                        .hint
                        .starts_with("Set KASTELL_SAFE_MODE=false to enable")
                );
                assert!(rule.asks_first() || rule.billable, "{}", rule.id);
            } else {
                // SAFE_MODE lets through exactly what adds or reads and
                // costs nothing.
                assert!(
                    rule.category <= Category::SafeWrite && !rule.billable,
                    "{} is not blocked in SAFE_MODE",
                    rule.id
                );
            }
            assert_eq!(rule.idempotent, rule.reads_only(), "{}", rule.id);
            if rule.long_running {
                assert!(!rule.reads_only(), "{} reads but is long", rule.id);
            }
        }
    }

    #[test]
    fn an_id_serialises_as_itself_and_compares_by_name() {
        static A: Rule = Rule::new("x-read", Category::Read);
        static B: Rule = Rule::new("x-read", Category::Read);
        assert_eq!(OpId::new(&A), OpId::new(&B));
        assert_eq!(serde_json::to_value(OpId::new(&A)).unwrap(), "x-read");
        assert_eq!(OpId::new(&A).to_string(), "x-read");
    }
}
