//! The operations layer: what the CLI and the MCP server both call.
//!
//! Every operation is one type implementing [`Operation`] (its id and
//! policy row, its arguments, result, plan and run; see [`operation`]),
//! listed once in [`catalog`], from which the surfaces derive their
//! commands, tools, schemas and checks. Each operation resolves its
//! server, applies [`Policy::check`] first
//! (SAFE_MODE, then manual servers, tokens and platforms, in one order for
//! both surfaces, every refusal logged to `security.log`), runs, and
//! returns a serialisable result with the original tool's field names, or
//! an [`OpError`] (`{error, hint, kind, steps, suggested_actions}`).
//! Providers, transports and platforms come from [`Context`]'s factories,
//! which tests replace with in-memory doubles or simulators.
//!
//! [`Policy::check`]: crate::policy::Policy::check

// `OpError` is the user-facing failure payload (error, hint, steps,
// suggestions), returned once per operation and never in a hot path:
// boxing it would only make every caller's `?` noisier.
#![allow(clippy::result_large_err)]

mod backup;
mod blast;
pub mod catalog;
mod context;
mod drill;
mod fleet;
mod flow;
mod info;
mod logs;
mod maintain;
pub mod operation;
mod plan;
mod progress;
mod reboot;
mod recover;
mod reply;
mod repository;
mod restart;
mod result;
pub mod rollout;
mod rotate;
mod snapshot;
mod suggest;
mod update;
mod wire;

pub use backup::{
    AppArgs, BACKUP_PRUNE, BackupCreate, BackupCreateOp, BackupCreateResult, BackupEntry,
    BackupList, BackupListOp, BackupListResult, BackupRef, BackupRestore, BackupRestoreOp,
    BackupRestoreResult, BackupVerifyOp, BackupVerifyResult, CreateArgs, RepoArg, RestoreArgs,
    SafetyChoice, SafetyTaken, backup_create, backup_create_with, backup_list, backup_list_in,
    backup_restore, backup_restore_apps, backup_restore_from, backup_verify, backup_verify_in,
};
pub use blast::{BlastRadius, NewestBackup, age_in_words, backup_holds, blast_radius};
pub(crate) use context::place_of;
pub use context::{
    Admitted, Context, PLATFORM_OPTIONS_KEY, PlatformFactory, ProviderFactory, ROOT_OPTION,
    SUDO_OPTION, Timing, TransportFactory, cloud_provider_id, confine_platform, platform_options,
    server_id,
};
pub use drill::{BackupDrill, BackupDrillOp, BackupDrillResult, backup_drill};
pub use fleet::{
    FLEET_STATUS_CONCURRENCY, FleetOverview, FleetServer, FleetServerStatus, FleetStatus,
    fleet_overview, fleet_status,
};
pub use flow::{Ran, Target, update_detail};
pub use info::{
    DOCTOR, HealthOp, SERVER_ADD, SERVER_REMOVE, ServerHealth, ServerHealthResult, ServerListOp,
    ServerListResult, ServerStatus, ServerStatusResult, ServerSummary, StatusOp, server_health,
    server_list, server_status,
};
pub use logs::{
    DEFAULT_LOG_LINES, FOLLOW_TIMEOUT, LoadAverage, LogSource, Logs, LogsArgs, LogsOp, LogsResult,
    LogsSource, MAX_LOG_LINES, Monitor, MonitorOp, MonitorResult, Usage, follow_logs, logs,
    monitor,
};
pub use maintain::{Maintain, MaintainOp, MaintainOptions, MaintainResult, maintain};
pub use operation::{
    CliCommand, CliTarget, Done, Dyn, Invocation, McpAction, NoArgs, Operation, Registered,
    RuleOnly, Scope, Spec, Typed,
};
pub use progress::{NoProgress, Progress, human_bytes};
pub use reboot::{
    REBOOT_AS_ROOT, REBOOT_WITH_SUDO, RebootMethod, RebootProof, reboot_command, reboot_proven,
};
pub use recover::{
    DrillScratch, DrillScratchOp, DrillScratchResult, Recover, RecoverArgs, RecoverFrom, RecoverOp,
    RecoverResult, ScratchArgs, drill_scratch, recover,
};
pub use reply::Reply;
pub use repository::{CreateOptions, RepoChoice, RepoCopy};
pub use restart::{Restart, RestartOp, RestartResult, restart};
pub use result::{OpError, OpResult, SnapshotInfo, Step, StepOutcome, StepSummary, steps};
pub use rotate::{
    RotateArgs, RotatedSnapshot, SnapshotRotate, SnapshotRotateOp, SnapshotRotateResult,
    snapshot_rotate,
};
pub use snapshot::{
    SnapshotAction, SnapshotActionResult, SnapshotCreate, SnapshotCreateOp, SnapshotCreateResult,
    SnapshotDeleteOp, SnapshotList, SnapshotListOp, SnapshotListResult, SnapshotRef,
    SnapshotRestoreOp, snapshot_create, snapshot_delete, snapshot_list, snapshot_restore,
};
pub use suggest::{Candidate, Suggestion, allowed, suggest};
pub use update::{Update, UpdateOp, UpdateResult, update};
pub use wire::{WireSummary, summarize};

#[cfg(test)]
mod tests;
