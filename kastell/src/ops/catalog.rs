//! The list of operations, from which every surface is derived: kastell's
//! own, in the order the MCP tools list their actions, then those other
//! crates registered ([`crate::register_operation!`]), by id.
//!
//! An operation whose id is already taken is left out (kastell's own win),
//! with a warning; so is one whose MCP action is already taken in its
//! tool, or whose command line is already taken.

use std::sync::LazyLock;

use super::backup::{BACKUP_PRUNE, BackupCreateOp, BackupListOp, BackupRestoreOp, BackupVerifyOp};
use super::drill::BackupDrillOp;
use super::info::{DOCTOR, HealthOp, SERVER_ADD, SERVER_REMOVE, ServerListOp, StatusOp};
use super::logs::{LogsOp, MonitorOp};
use super::maintain::MaintainOp;
use super::operation::{Dyn, Registered, RuleOnly, Typed};
use super::recover::{DrillScratchOp, RecoverOp};
use super::restart::RestartOp;
use super::rollout::RolloutOp;
use super::rotate::SnapshotRotateOp;
use super::snapshot::{SnapshotCreateOp, SnapshotDeleteOp, SnapshotListOp, SnapshotRestoreOp};
use super::update::UpdateOp;
use crate::policy::{OpId, Rule};

/// kastell's own operations, in the order tools list their actions.
static BUILT_IN: &[&dyn Dyn] = &[
    &Typed::<BackupCreateOp>::NEW,
    &Typed::<BackupListOp>::NEW,
    &Typed::<BackupRestoreOp>::NEW,
    &Typed::<SnapshotCreateOp>::NEW,
    &Typed::<SnapshotListOp>::NEW,
    &Typed::<SnapshotDeleteOp>::NEW,
    &Typed::<SnapshotRestoreOp>::NEW,
    &Typed::<SnapshotRotateOp>::NEW,
    &Typed::<UpdateOp>::NEW,
    &Typed::<RestartOp>::NEW,
    &Typed::<MaintainOp>::NEW,
    &Typed::<RolloutOp>::NEW,
    &Typed::<ServerListOp>::NEW,
    &Typed::<StatusOp>::NEW,
    &Typed::<HealthOp>::NEW,
    &Typed::<LogsOp>::NEW,
    &Typed::<MonitorOp>::NEW,
    &Typed::<BackupVerifyOp>::NEW,
    &Typed::<BackupDrillOp>::NEW,
    &Typed::<RecoverOp>::NEW,
    &Typed::<DrillScratchOp>::NEW,
    &RuleOnly(BACKUP_PRUNE),
    &RuleOnly(SERVER_ADD),
    &RuleOnly(SERVER_REMOVE),
    &RuleOnly(DOCTOR),
];

static ALL: LazyLock<Vec<&'static dyn Dyn>> = LazyLock::new(|| {
    let mut extra: Vec<&'static dyn Dyn> = inventory::iter::<Registered>
        .into_iter()
        .map(|r| r.0)
        .collect();
    extra.sort_by_key(|op| op.spec().rule.id);
    let mut all: Vec<&'static dyn Dyn> = Vec::with_capacity(BUILT_IN.len() + extra.len());
    for op in BUILT_IN.iter().copied().chain(extra) {
        match clash(&all, op) {
            Some(why) => tracing::warn!("operation {} left out: {why}", op.spec().rule.id),
            None => all.push(op),
        }
    }
    all
});

/// Why `op` cannot join `taken`, if it cannot.
fn clash(taken: &[&'static dyn Dyn], op: &'static dyn Dyn) -> Option<String> {
    let spec = op.spec();
    taken.iter().find_map(|other| {
        let theirs = other.spec();
        if theirs.rule.id == spec.rule.id {
            return Some(format!("the id {} is taken", spec.rule.id));
        }
        if let (Some(a), Some(b)) = (&spec.mcp, &theirs.mcp)
            && a.tool == b.tool
            && a.action == b.action
        {
            return Some(format!("{} already has an action {}", a.tool, a.action));
        }
        if let (Some(a), Some(b)) = (&spec.cli, &theirs.cli)
            && a.path == b.path
        {
            return Some(format!("the command {} is taken", a.path.join(" ")));
        }
        None
    })
}

/// Every operation of this build.
pub fn all() -> &'static [&'static dyn Dyn] {
    ALL.as_slice()
}

/// The operation with id `id`.
pub fn find(id: &str) -> Option<&'static dyn Dyn> {
    all().iter().copied().find(|op| op.spec().rule.id == id)
}

/// The operation behind action `action` of the MCP tool `tool`.
pub fn mcp_action(tool: &str, action: &str) -> Option<&'static dyn Dyn> {
    all().iter().copied().find(|op| {
        op.spec()
            .mcp
            .is_some_and(|m| m.tool == tool && m.action == action)
    })
}

/// The operations of the MCP tool `tool`, in order.
pub fn of_tool(tool: &str) -> impl Iterator<Item = &'static dyn Dyn> + '_ {
    all()
        .iter()
        .copied()
        .filter(move |op| op.spec().mcp.is_some_and(|m| m.tool == tool))
}

/// Every operation's policy row.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    all().iter().map(|op| &op.spec().rule)
}

/// Every operation's identity.
pub fn ids() -> impl Iterator<Item = OpId> {
    all().iter().map(|op| op.id())
}
