//! What the tools return on success: one type per tool, tagged by
//! `action`, wrapping the very operation results that are serialised. The
//! output schemas are generated from these types, so every branch (empty
//! lists included) validates against them.

use schemars::JsonSchema;
use serde::Serialize;

use crate::ops::{
    BackupCreateResult, BackupListResult, BackupRestoreResult, LogsResult, MaintainResult,
    MonitorResult, RestartResult, ServerHealthResult, ServerListResult, ServerStatusResult,
    SnapshotActionResult, SnapshotCreateResult, SnapshotListResult, UpdateResult,
};

/// A `server_backup` success, tagged by `action`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "action")]
pub enum BackupOutput {
    /// `backup-create`.
    #[serde(rename = "backup-create")]
    BackupCreate(BackupCreateResult),
    /// `backup-list`.
    #[serde(rename = "backup-list")]
    BackupList(BackupListResult),
    /// `backup-restore`.
    #[serde(rename = "backup-restore")]
    BackupRestore(BackupRestoreResult),
    /// `snapshot-create`.
    #[serde(rename = "snapshot-create")]
    SnapshotCreate(SnapshotCreateResult),
    /// `snapshot-list`.
    #[serde(rename = "snapshot-list")]
    SnapshotList(SnapshotListResult),
    /// `snapshot-delete`.
    #[serde(rename = "snapshot-delete")]
    SnapshotDelete(SnapshotActionResult),
    /// `snapshot-restore`.
    #[serde(rename = "snapshot-restore")]
    SnapshotRestore(SnapshotActionResult),
    /// A dry run of backup-restore, snapshot-delete or snapshot-restore:
    /// the plan (and, with `confirm: plan-token`, its token); nothing was
    /// changed.
    #[serde(rename = "plan")]
    Plan(super::confirm::PlanOutput),
    /// backup-restore, snapshot-delete or snapshot-restore waiting for the
    /// operator's approval (`kastell approve ID`); nothing was changed.
    #[serde(rename = "approval-pending")]
    ApprovalPending(super::approve::ApprovalPending),
}

/// A `server_maintain` success, tagged by `action`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "action")]
pub enum MaintainOutput {
    /// `update`.
    #[serde(rename = "update")]
    Update(UpdateResult),
    /// `restart`.
    #[serde(rename = "restart")]
    Restart(RestartResult),
    /// `maintain`.
    #[serde(rename = "maintain")]
    Maintain(MaintainResult),
}

/// A `server_info` success, tagged by `action`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "action")]
pub enum InfoOutput {
    /// `list`.
    #[serde(rename = "list")]
    List(ServerListResult),
    /// `status`.
    #[serde(rename = "status")]
    Status(ServerStatusResult),
    /// `health`.
    #[serde(rename = "health")]
    Health(ServerHealthResult),
}

/// A `server_logs` success, tagged by `action`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "action")]
pub enum LogsOutput {
    /// `logs`.
    #[serde(rename = "logs")]
    Logs(LogsResult),
    /// `monitor`.
    #[serde(rename = "monitor")]
    Monitor(MonitorResult),
}
