//! `backup drill`: a backup (local, or fetched from a repository as a
//! restore fetches it) restored into throwaway targets here and checked,
//! with the proof recorded for `backup list` and `status`.

use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::Serialize;

use super::backup::BackupRef;
use super::backup::local_copy;
use super::context::Context;
use super::operation::{CliCommand, CliTarget, Operation, Scope, Spec};
use super::plan;
use super::reply::Reply;
use super::result::{OpError, OpResult};
use crate::engine::drill::{self, DrillReport};
use crate::engine::repos;
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;
use crate::state::verifications::{self, Proof, Verification};

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
    let admitted = ctx.admit(BackupDrillOp::ID, query)?;
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

/// `backup-drill`: prove a backup restores, here.
pub struct BackupDrillOp;

#[async_trait::async_trait]
impl Operation for BackupDrillOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("backup-drill", Category::Read),
        scope: Scope::Server,
        mcp: None,
        cli: Some(CliCommand {
            path: &["backup", "drill"],
            about: "Prove a backup restores (default: the newest): its database dumps restored into a throwaway local PostgreSQL and their tables and rows compared with the dump, its configuration archives unpacked and validated. Nothing on the server is touched.",
            target: CliTarget::Read,
        }),
    };
    type Args = BackupRef;
    type Body = BackupDrillResult;

    async fn run(ctx: &Context, query: Option<&str>, args: &BackupRef) -> OpResult<Self::Body> {
        let id = args.backup_id.as_deref().filter(|b| !b.trim().is_empty());
        let repo = args.repo.repo.as_deref().filter(|r| !r.trim().is_empty());
        backup_drill(ctx, query, id, repo).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &BackupRef) -> Vec<String> {
        let id = args.backup_id.as_deref().filter(|b| !b.trim().is_empty());
        let repo = args.repo.repo.as_deref().filter(|r| !r.trim().is_empty());
        let mut steps = Vec::new();
        if let Some(repo) = repo {
            steps.push(format!(
                "Pull backup {} from repository {repo} into {} (as a restore does)",
                id.unwrap_or("(newest)"),
                plan::backups_dir(ctx, server)
            ));
        }
        steps.extend([
            format!("Verify backup {} (every checksum)", plan::describe_backup(id, repo, "(newest)")),
            "Restore each database dump into a throwaway local PostgreSQL of its version; compare its tables and rows with the dump".to_owned(),
            "Unpack each configuration archive here; validate sshd_config (sshd -t) and nginx.conf (nginx -t) where installed".to_owned(),
            "Record the result for backup list and status (nothing on the server is touched)".to_owned(),
        ]);
        steps
    }
}
