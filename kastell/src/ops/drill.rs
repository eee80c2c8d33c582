//! `backup drill`: a backup (local, or fetched from a repository as a
//! restore fetches it) restored into throwaway targets here and checked,
//! with the proof recorded for `backup list` and `status`.

use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::Serialize;

use super::backup::local_copy;
use super::context::Context;
use super::reply::Reply;
use super::result::{OpError, OpResult};
use crate::drill::{self, DrillReport};
use crate::policy::Operation;
use crate::repos;
use crate::verifications::{self, Proof, Verification};

/// A drill that passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupDrill {
    /// The backup drilled.
    pub backup_id: String,
    /// The repository it was read from, when not the local store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// `Backup restored and checked: ...`.
    pub message: String,
    /// When the drill was recorded (RFC 3339).
    pub verified_at: String,
    /// What was restored where, and what each check found.
    #[serde(flatten)]
    pub report: DrillReport,
}

/// The reply carrying a [`BackupDrill`].
pub type BackupDrillResult = Reply<BackupDrill>;

/// Drills backup `backup_id` of the server (default: the newest) from the
/// local store, or from `repo` (pulled into the local store first, as a
/// restore does). Nothing on the server is touched. A drill whose checks
/// fail is `Corrupt`, naming each failure; one that cannot run here (no
/// PostgreSQL server installed) is `Unavailable` with how to install one.
pub async fn backup_drill(
    ctx: &Context,
    query: Option<&str>,
    backup_id: Option<&str>,
    repo: Option<&str>,
) -> OpResult<BackupDrillResult> {
    let admitted = ctx.admit(Operation::BackupDrill, query)?;
    let server = &admitted.server;
    let fail = |e: Error| OpError::from(e).on(server);
    let (id, warnings) = local_copy(ctx, server, backup_id, repo)
        .await
        .map_err(fail)?;
    let backup = ctx.engine.find(&server.name, &id).map_err(fail)?;
    ctx.progress().message(&format!(
        "Drilling backup {id} of {}: restoring it into throwaway targets here",
        server.name
    ));
    let mut report = repos::off_runtime(move || drill::drill(&backup))
        .await
        .map_err(fail)?;
    report.warnings.splice(0..0, warnings);
    if !report.passed() {
        return Err(fail(
            Error::new(
                ErrorKind::Corrupt,
                format!(
                    "Backup {id} did not pass its restore drill: {}",
                    report.failures().join("; ")
                ),
            )
            .with_hint(
                "Keep this backup for inspection, take a new one and drill that; \
                 restore an older backup that passed if you need one now",
            ),
        ));
    }
    let verified_at = verifications::now();
    verifications::remember(
        ctx.store.dir(),
        Verification {
            server: server.name.clone(),
            backup_id: id.to_string(),
            repository: repo.map(str::to_owned),
            proof: Proof::Drill,
            verified_at: verified_at.clone(),
            duration_ms: report.duration_ms,
        },
    );
    let checks: usize = report.artifacts.iter().map(|a| a.checks.len()).sum();
    Ok(Reply::on(
        server,
        BackupDrill {
            backup_id: id.to_string(),
            repository: repo.map(str::to_owned),
            message: format!(
                "Backup restored and checked: {checks} checks on {} artifacts passed",
                report.artifacts.len()
            ),
            verified_at,
            report,
        },
        Vec::new(),
    ))
}
