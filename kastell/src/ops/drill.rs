//! `backup drill`: a backup (local, or fetched from a repository as a
//! restore fetches it) restored into throwaway targets here and checked,
//! with the proof recorded for `backup list` and `status`.

use kastell_core::types::BackupId;
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
use crate::engine::drill::{self, CheckOutcome, DrillReport};
use crate::engine::repos;
use crate::policy::{Category, Rule};
use crate::state::store::ServerRecord;
use crate::state::verifications::{self, Proof, Verification};

/// A drill that passed: at least one check ran and none failed (some may
/// have been skipped, which its message and `checksSkipped` say).
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
    /// How many checks ran and passed (at least one, or the drill is
    /// refused as proving nothing).
    pub checks_passed: usize,
    /// How many checks this machine could not run: above zero, the drill
    /// passed only in part (`passed with N check(s) skipped`), and its
    /// record says so.
    pub checks_skipped: usize,
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
/// PostgreSQL server installed), or in which no check ran (all skipped),
/// is `Unavailable` and not recorded. One with skipped checks besides
/// passed ones passes `with N check(s) skipped`, recorded as such.
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
    let (passed, skipped, message) = standing(&id, &report).map_err(fail)?;
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
            checks_skipped: u32::try_from(skipped).unwrap_or(u32::MAX),
            phases: Vec::new(),
            apps: Vec::new(),
        },
    );
    Ok(Reply::on(
        server,
        BackupDrill {
            backup_id: id.to_string(),
            repository: repo.map(str::to_owned),
            message,
            verified_at,
            checks_passed: passed,
            checks_skipped: skipped,
            report,
        },
        Vec::new(),
    ))
}

/// What a drill of backup `id` that failed no check proves: the checks
/// that passed, those skipped and the message saying so (`passed with N
/// check(s) skipped` when some were). The rule: it counts as proven only
/// when at least one check ran and none failed; a drill in which no check
/// ran is refused ([`nothing_ran`]).
fn standing(id: &BackupId, report: &DrillReport) -> Result<(usize, usize, String), Error> {
    let passed = report.count(CheckOutcome::Passed);
    let skipped = report.count(CheckOutcome::Skipped);
    if passed == 0 {
        return Err(nothing_ran(id, report));
    }
    let on = format!("on {} artifact(s)", report.artifacts.len());
    let message = if skipped == 0 {
        format!("Backup restored and checked: {passed} checks {on} passed")
    } else {
        format!(
            "Backup restored and checked: passed with {skipped} check(s) skipped ({}); {passed} checks {on} passed",
            report.skips().join("; ")
        )
    };
    Ok((passed, skipped, message))
}

/// The refusal of a drill in which no check ran (every one skipped, or
/// nothing but opaque files): it proves nothing and is not recorded.
fn nothing_ran(id: &BackupId, report: &DrillReport) -> Error {
    let skips = report.skips();
    let why = if skips.is_empty() {
        "the backup holds nothing a drill can check".to_owned()
    } else {
        format!("every check was skipped ({})", skips.join("; "))
    };
    Error::new(
        ErrorKind::Unavailable,
        format!("Backup {id} could not be drilled here: {why}; it is not recorded as proven"),
    )
    .with_hint(
        "Install what the skipped checks name on this machine (or drill on one that has it) and drill again; kastell backup verify checks its checksums meanwhile",
    )
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
        let (id, repo) = (args.id(), args.repo.name());
        backup_drill(ctx, query, id, repo).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &BackupRef) -> Vec<String> {
        let (id, repo) = (args.id(), args.repo.name());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::drill::{ArtifactDrill, DrillCheck};

    fn report(outcomes: &[CheckOutcome]) -> DrillReport {
        let checks = outcomes
            .iter()
            .enumerate()
            .map(|(i, outcome)| DrillCheck {
                name: format!("check {i}"),
                outcome: *outcome,
                detail: format!("why {i}"),
            })
            .collect();
        DrillReport {
            artifacts: vec![ArtifactDrill {
                artifact: "config.tar.gz".into(),
                target: "a directory".into(),
                checks,
                duration_ms: 1,
                record: "config.tar.gz".into(),
                rows: Default::default(),
            }],
            unchecked: Vec::new(),
            warnings: Vec::new(),
            duration_ms: 1,
        }
    }

    fn id() -> BackupId {
        BackupId::new("2026-12-01_03-00-00-000").unwrap()
    }

    #[test]
    fn a_drill_with_every_check_run_is_a_full_pass() {
        use CheckOutcome::Passed;
        let (passed, skipped, message) = standing(&id(), &report(&[Passed, Passed])).unwrap();
        assert_eq!((passed, skipped), (2, 0));
        assert_eq!(
            message,
            "Backup restored and checked: 2 checks on 1 artifact(s) passed"
        );
    }

    #[test]
    fn skipped_checks_are_not_counted_as_passed_and_are_named() {
        use CheckOutcome::{Passed, Skipped};
        let (passed, skipped, message) =
            standing(&id(), &report(&[Passed, Passed, Skipped])).unwrap();
        assert_eq!((passed, skipped), (2, 1));
        assert!(
            message.contains("passed with 1 check(s) skipped (config.tar.gz: check 2: why 2)"),
            "{message}"
        );
        assert!(
            message.contains("2 checks on 1 artifact(s) passed"),
            "{message}"
        );
    }

    #[test]
    fn a_drill_in_which_no_check_ran_proves_nothing() {
        use CheckOutcome::Skipped;
        let err = standing(&id(), &report(&[Skipped, Skipped])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.to_string().contains("every check was skipped"), "{err}");
        assert!(err.to_string().contains("not recorded as proven"), "{err}");
        let err = standing(&id(), &report(&[])).unwrap_err();
        assert!(
            err.to_string().contains("nothing a drill can check"),
            "{err}"
        );
    }
}
