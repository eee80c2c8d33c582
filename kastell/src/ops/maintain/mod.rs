//! `maintain`: backup → snapshot → status → update → health → reboot →
//! final check, every step timed, and a rollback when the update leaves
//! the server unhealthy. The platform backup is taken by default where the
//! platform has one (`--no-backup` skips it) and a failed one stops the
//! run before the update; the snapshot is taken by default where the
//! provider has them (`--no-snapshot` skips it); health is the platform's check plus
//! the checks `checks.json` declares for the server and its tags; what a
//! failure leads to is the server's rollback policy (`auto`, `ask`,
//! `never`; see [`crate::state::checks`]). Bare servers are maintained too
//! (the original refused them).

mod before;
mod health;
mod rollback;
mod run;

#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use super::{HealthOp, LogsOp, StatusOp};
use kastell_core::types::{StepReport, StepStatus};
use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::Serialize;

use super::backup::BackupRestoreOp;
use super::context::Context;
use super::flow::{Target, lock_host};
use super::operation::{CliCommand, CliTarget, McpAction, Operation, Scope, Spec};
use super::plan;
use super::progress::Stepper;
use super::repository::RepoChoice;
use super::result::{OpError, OpResult, SnapshotInfo, Step, StepSummary, steps};
use super::snapshot::{SnapshotCreateOp, SnapshotRestoreOp};
use super::suggest::Candidate;
use crate::policy::{Category, Rule, TokenNeed};
use crate::state::checks::{ChecksFile, Declared};
use crate::state::store::ServerRecord;
use kastell_core::types::RebootAfterUpdate;
use rollback::{Decision, ROLLBACK, ROLLBACK_CHECK, Taken};
use run::Run;

/// What `maintain` should do besides its steps: its arguments.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    Serialize,
    serde::Deserialize,
    JsonSchema,
    clap::Args,
)]
#[serde(rename_all = "camelCase")]
pub struct MaintainOptions {
    /// maintain only: skip the reboot.
    #[serde(default)]
    #[arg(long, help = "Do not reboot (and so skip the final check)")]
    pub skip_reboot: bool,
    /// maintain only: fail unless the snapshot (default) is taken.
    #[serde(default)]
    #[arg(
        long,
        conflicts_with = "no_snapshot",
        help = "Require the provider snapshot before the update: fail when it cannot be taken (it is taken by default where the provider has snapshots and its token is set; billable)"
    )]
    pub snapshot: bool,
    /// maintain only: no snapshot first (no rollback).
    #[serde(default)]
    #[arg(
        long,
        help = "Take no provider snapshot before the update (a failed update then cannot be rolled back)"
    )]
    pub no_snapshot: bool,
    /// maintain only: no platform backup first.
    #[serde(default)]
    #[arg(
        long,
        help = "Take no platform backup before the update (by default one is taken where the platform has backups, and a failed backup stops the maintenance before the update)"
    )]
    pub no_backup: bool,
    /// maintain only: reboot even when the health check after the update
    /// failed.
    #[serde(default)]
    #[arg(
        long,
        help = "Reboot even when the health check after the update failed (by default a failed health check skips the reboot: rebooting a broken platform rarely fixes it and hides the state to look at)"
    )]
    pub reboot_even_if_unhealthy: bool,
}

/// A maintenance run in which every step succeeded or was skipped.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Maintain {
    /// Provider id, when the server has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The platform (`Coolify`, `Dokploy`, `Bare`).
    pub platform: String,
    /// Each step with its outcome and duration.
    pub steps: Vec<Step>,
    /// Counts by outcome.
    pub summary: StepSummary,
    /// The snapshot taken first, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotInfo>,
    /// The platform backup taken before the update, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// `Maintenance completed`.
    pub message: String,
    /// Things to know (a status check skipped for want of a token).
    pub notes: Vec<String>,
}

/// The reply carrying a [`Maintain`].
pub type MaintainResult = Reply<Maintain>;

const BACKUP: &str = "Backup";
const SNAPSHOT: &str = "Snapshot";
const STATUS: &str = "Status Check";
const HEALTH: &str = "Health Check";
const REBOOT: &str = "Reboot";
const FINAL: &str = "Final Check";

/// Runs maintenance on `server`.
///
/// Order: policy for `maintain` (SAFE_MODE blocks it; no token is needed:
/// without one the status check is skipped and the reboot goes over SSH),
/// and, with `options.snapshot`, for `snapshot-create`; server;
/// `checks.json` (an invalid file refuses the run before anything
/// changes); the server's host lock (refused while another operation holds
/// it, see `lock_host`), held to the end; then:
/// 0. `Backup`: the platform's backup, under that lock (the engine's
///    [`crate::engine::backup::BackupEngine::create_held`]): taken unless
///    `no_backup`, where the platform has backups and the policy allows
///    `backup-create`; a failure stops the run before anything billable
///    or disruptive (fail closed);
/// 1. `Snapshot`, with its monthly cost, awaited until available: taken
///    unless `no_snapshot`, where the provider has snapshots, the token is
///    there and the policy allows `snapshot-create` (else skipped with why;
///    with `options.snapshot` that is a failure); a failure stops the run;
/// 2. `Status Check` through the provider (skipped on manual servers and
///    without a token); not running stops the run;
/// 3. the platform update (`Package Upgrade` on bare servers); a failure
///    stops the run;
/// 4. `Health Check`: the platform's, then the declared checks; a failure
///    is reported and skips the reboot unless `reboot_even_if_unhealthy`;
/// 5. `Reboot`, proven by a changed boot id: skipped with `skip_reboot`,
///    and on bare servers unless the upgrade says a reboot is required;
/// 6. `Final Check` (skipped when there was no reboot);
/// 7. when anything failed from the update on: `Rollback` as the server's
///    policy decides (restore the snapshot and prove the boot by a new
///    boot id; skipped with why when left), then `Rollback Check` (health
///    again) after a restore.
///
/// Every step is present in the result (`skipped` with why when it did not
/// run). Any failed step makes the whole run an [`OpError`] carrying all
/// steps, its message saying whether the server was rolled back.
pub async fn maintain(
    ctx: &Context,
    query: Option<&str>,
    options: MaintainOptions,
) -> OpResult<MaintainResult> {
    let admitted = ctx.admit(MaintainOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: Error| OpError::from(e).on(server);
    if options.snapshot && options.no_snapshot {
        return Err(fail(
            Error::invalid_input("snapshot and noSnapshot contradict each other")
                .with_hint("Give one of them: snapshot requires it, noSnapshot skips it"),
        ));
    }
    if options.snapshot {
        ctx.policy
            .check(SnapshotCreateOp::ID, ctx.surface, Some(server), |p| {
                ctx.token_present_for(server, p)
            })
            .map_err(fail)?;
    }
    let declared = ChecksFile::load(ctx.store.dir())
        .map_err(fail)?
        .for_server(server);
    let host = lock_host(ctx, server, "maintain").await?;
    let target = Target::open(ctx, server, &admitted.decision)?;
    let mut run = Run::new(Stepper::new(ctx.progress(), 7));
    let update_name = target.update_name();

    let mut backup_id = None;
    match before::backup_wanted(&target, options) {
        Err(why) => run.push(before::backup_skipped(why)),
        Ok(()) => {
            run.start(BACKUP);
            match run.record(before::backup_step(ctx, &target, &host).await) {
                Some(created) => backup_id = Some(created.backup_id),
                None => run.skip_rest(&[SNAPSHOT, STATUS, &update_name, HEALTH, REBOOT, FINAL]),
            }
        }
    }
    let wanted = before::snapshot_wanted(ctx, &target, options);
    let mut taken = None;
    let mut cost = None;
    match &wanted {
        _ if run.failed() => {}
        Err(why) if !options.snapshot => run.push(StepReport::skipped(SNAPSHOT, why.clone())),
        _ => {
            run.start(SNAPSHOT);
            let ran = before::snapshot_step(ctx, &target).await;
            if let Some((info, estimate)) = run.record(ran) {
                cost = estimate;
                taken = Some(Taken {
                    info,
                    at: std::time::Instant::now(),
                });
            } else {
                run.skip_rest(&[STATUS, &update_name, HEALTH, REBOOT, FINAL]);
            }
        }
    }
    if !run.failed() && run.start(STATUS) && run.record(target.status_step().await).is_none() {
        run.skip_rest(&[&update_name, HEALTH, REBOOT, FINAL]);
    }
    let mut changed = false;
    let mut update = None;
    if !run.failed() && !run.stop_if_cancelled(&[&update_name, HEALTH, REBOOT, FINAL]) {
        run.start(&update_name);
        changed = true;
        update = run.record(target.update_step(ctx).await);
        if update.is_none() {
            run.skip_rest(&[HEALTH, REBOOT, FINAL]);
        }
    }
    if let Some(report) = update {
        let label = target.label();
        run.start(HEALTH);
        let healthy = run
            .record(
                health::health_step(
                    ctx,
                    &target,
                    &declared,
                    HEALTH,
                    &format!("{label} is healthy"),
                    &format!("{label} did not respond after update"),
                )
                .await,
            )
            .is_some();
        let skip = if options.skip_reboot {
            Some("Skipped by user".to_owned())
        } else if !healthy && !options.reboot_even_if_unhealthy {
            Some(format!(
                "Skipped: {label} was unhealthy after the update (reboot_even_if_unhealthy reboots anyway)"
            ))
        } else if target.reboots_only_when_required() && !report.reboot_required {
            Some(format!(
                "No reboot required after the {}",
                update_name.to_lowercase()
            ))
        } else {
            None
        };
        match skip {
            Some(why) => {
                run.push(StepReport::skipped(REBOOT, why));
                run.push(StepReport::skipped(FINAL, "No reboot to check after"));
            }
            None if run.stop_if_cancelled(&[REBOOT, FINAL]) => {}
            None => {
                run.start(REBOOT);
                if run.record(target.reboot_step(ctx).await).is_some() {
                    run.start(FINAL);
                    let ran = health::health_step(
                        ctx,
                        &target,
                        &declared,
                        FINAL,
                        &format!("Server and {label} are running"),
                        &format!("Server running but {label} did not respond"),
                    )
                    .await;
                    run.record(ran);
                } else {
                    run.skip_rest(&[FINAL]);
                }
            }
        }
    }
    let rolled = if changed {
        roll_back_if_failed(ctx, &target, &declared, &mut run, taken.as_ref(), &wanted).await
    } else {
        None
    };
    let snapshot = taken.map(|t| t.info);
    finish(
        ctx,
        &admitted.decision.notes,
        &target,
        run,
        Snapshotted {
            snapshot,
            cost,
            backup_id,
            policy: &declared,
            rolled,
        },
    )
}

/// After a failure from the update on (not a cancellation), the rollback
/// the policy decides, as steps; `Some` with what became of the server.
async fn roll_back_if_failed(
    ctx: &Context,
    target: &Target,
    declared: &Declared,
    run: &mut Run<'_>,
    taken: Option<&Taken>,
    wanted: &Result<(), String>,
) -> Option<String> {
    let failure = run.first_error.as_ref()?;
    let failed_step = run.reports.iter().any(|s| s.status == StepStatus::Failure);
    // Healthy in the end (a reboot after a failed health check fixed it):
    // nothing to roll back.
    let healthy_at_last = run
        .reports
        .iter()
        .any(|s| s.name == FINAL && s.status == StepStatus::Success);
    if failure.kind() == ErrorKind::Cancelled || !failed_step || healthy_at_last {
        return None;
    }
    let why_none = wanted.as_ref().err().map_or("it failed", String::as_str);
    let decision = rollback::decide(ctx, target, declared, taken, why_none, failure);
    let taken = match (decision, taken) {
        (Decision::Restore, Some(taken)) => taken,
        (Decision::Leave(why), _) => {
            run.push(StepReport::skipped(ROLLBACK, why));
            return Some("not rolled back".to_owned());
        }
        // `decide` leaves a server without a snapshot.
        (Decision::Restore, None) => return None,
    };
    run.start(ROLLBACK);
    if run
        .record(rollback::restore_step(ctx, target, taken).await)
        .is_none()
    {
        run.push(StepReport::skipped(
            ROLLBACK_CHECK,
            "Skipped: the rollback failed",
        ));
        return Some(format!("the rollback to snapshot {} failed", taken.info.id));
    }
    run.start(ROLLBACK_CHECK);
    let healthy = run
        .record(rollback::recheck_step(ctx, target, declared).await)
        .is_some();
    Some(if healthy {
        format!(
            "rolled back to snapshot {} (booted from it, healthy again)",
            taken.info.id
        )
    } else {
        format!(
            "rolled back to snapshot {}, but it is not healthy either",
            taken.info.id
        )
    })
}

/// What the run leaves besides its steps: the snapshot, its cost, the
/// platform backup, the policy that applied and, after a failure, what
/// became of the server.
struct Snapshotted<'a> {
    snapshot: Option<SnapshotInfo>,
    cost: Option<String>,
    backup_id: Option<String>,
    policy: &'a Declared,
    rolled: Option<String>,
}

fn finish(
    ctx: &Context,
    notes: &[String],
    target: &Target,
    run: Run<'_>,
    left: Snapshotted<'_>,
) -> OpResult<MaintainResult> {
    let server = &target.server;
    let failed =
        run.first_error.is_some() || run.reports.iter().any(|s| s.status == StepStatus::Failure);
    let mut candidates = vec![Candidate::new(HealthOp::ID, "Check server health")];
    candidates.push(Candidate::new(LogsOp::ID, "Look at the logs"));
    if failed {
        let at = run
            .reports
            .iter()
            .find(|s| s.status == StepStatus::Failure)
            .map(|s| s.name.clone());
        let restored = run
            .reports
            .iter()
            .any(|s| s.name == ROLLBACK && s.status == StepStatus::Success);
        if let (Some(snapshot), false) = (&left.snapshot, restored) {
            candidates.insert(
                0,
                Candidate::new(
                    SnapshotRestoreOp::ID,
                    "Roll back to the snapshot taken before the update (every write since is lost)",
                )
                .arg("snapshotId", snapshot.id.clone()),
            );
        }
        if let (Some(id), true) = (&left.backup_id, restorable_failure(&run)) {
            candidates.push(
                Candidate::new(
                    BackupRestoreOp::ID,
                    "Restore the platform backup taken before the update",
                )
                .arg("backupId", id.clone()),
            );
        }
        let err = run
            .first_error
            .unwrap_or_else(|| Error::unexpected("a step failed"));
        let mut op = OpError::from(err).on(server).with_steps(&run.reports);
        let rolled = left.rolled.map(|r| format!("; {r}")).unwrap_or_default();
        op.error = match at {
            Some(at) => format!("Maintenance failed at {at}: {}{rolled}", op.error),
            None => format!("Maintenance stopped: {}{rolled}", op.error),
        };
        return Err(op.with_suggestions(ctx.suggest(server, candidates)));
    }
    let steps = steps(&run.reports);
    let mut notes = notes.to_vec();
    notes.extend(
        target
            .no_provider
            .iter()
            .map(|n| format!("{n}: status check skipped")),
    );
    notes.push(format!("Rollback policy: {}", policy_words(left.policy)));
    if let Some(cost) = &left.cost {
        notes.push(format!("The snapshot costs {cost} while kept"));
    }
    candidates[0] = Candidate::new(StatusOp::ID, "Check server status");

    Ok(Reply::on(
        server,
        Maintain {
            provider: server.provider_id().map(str::to_owned),
            platform: target.label().to_owned(),
            summary: StepSummary::of(&steps),
            steps,
            snapshot: left.snapshot,
            backup_id: left.backup_id,
            message: "Maintenance completed".to_owned(),
            notes,
        },
        ctx.suggest(server, candidates),
    ))
}

/// Whether the update ran and something from it on failed, with no
/// successful rollback: the platform backup from before is then worth
/// restoring.
fn restorable_failure(run: &Run<'_>) -> bool {
    let updated = run
        .reports
        .iter()
        .position(|s| s.name == STATUS)
        .is_some_and(|at| {
            run.reports[at + 1..]
                .iter()
                .any(|s| s.status == StepStatus::Failure)
        });
    let restored = run
        .reports
        .iter()
        .any(|s| s.name == ROLLBACK && s.status == StepStatus::Success);
    updated && !restored
}

/// The plan's `Backup` line: what the platform's backup holds and where it
/// goes, or why there is none.
fn backup_plan(ctx: &Context, server: &ServerRecord, o: &MaintainOptions) -> String {
    if o.no_backup {
        return "Backup: skipped (--no-backup; no platform backup from just before the update)"
            .to_owned();
    }
    let entry = kastell_core::Registry::global()
        .platform(server.platform_id())
        .ok();
    match entry {
        Some(e) if !e.capability.backup => {
            format!("Backup: skipped ({} has no backup)", e.display_name)
        }
        Some(e) => {
            let repo = plan::repo_step(ctx, server, &RepoChoice::ServerDefault)
                .map(|r| format!("; {r}"))
                .unwrap_or_default();
            format!(
                "Backup: {} over SSH into {}{repo}; a failure stops here, before the update",
                e.backup.holds,
                plan::backups_dir(ctx, server)
            )
        }
        None => format!(
            "Backup: {} is not in this build (the run will fail)",
            server.platform_id()
        ),
    }
}

/// `ask (default)`, `auto (tag prod)`.
fn policy_words(declared: &Declared) -> String {
    format!("{} ({})", declared.rollback.word(), declared.rollback_from)
}

/// `maintain`: the full maintenance cycle.
pub struct MaintainOp;

#[async_trait::async_trait]
impl Operation for MaintainOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("maintain", Category::Disruptive)
            .blocked(
                "Maintenance is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable maintenance (includes reboot)",
            )
            .token(TokenNeed::Optional)
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_maintain",
            action: "maintain",
            doc: "backup (noBackup skips; a failure stops), snapshot (noSnapshot skips), update, health (platform, checks.json), reboot; a failed update rolls back by policy.",
        }),
        cli: Some(CliCommand {
            path: &["maintain"],
            about: "Backup, snapshot, status, update, health check, reboot and final check; rolls back a failed update by the server's policy.",
            target: CliTarget::Fleet,
        }),
    };
    type Args = MaintainOptions;
    type Body = MaintainResult;

    async fn run(
        ctx: &Context,
        query: Option<&str>,
        args: &MaintainOptions,
    ) -> OpResult<Self::Body> {
        maintain(ctx, query, *args).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, o: &MaintainOptions) -> Vec<String> {
        let mut steps = Vec::new();
        let api = plan::api(ctx, server);
        steps.push(backup_plan(ctx, server, o));
        steps.push(if o.no_snapshot {
            "Snapshot: skipped (--no-snapshot; a failed update cannot be rolled back)".to_owned()
        } else if o.snapshot {
            format!(
                "Snapshot (required): estimate its monthly cost, create kastell-maintain-<epoch-ms> via {api} and wait until available"
            )
        } else {
            format!(
                "Snapshot (where the provider has them and its token is set): estimate its monthly cost, create kastell-maintain-<epoch-ms> via {api} and wait until available"
            )
        });
        steps.push(plan::status_step(ctx, server));
        steps.push(plan::update_step(server));
        let declared = ChecksFile::load(ctx.store.dir()).map(|f| f.for_server(server));
        let checks = match &declared {
            Ok(d) if d.is_empty() => String::new(),
            Ok(d) => format!(
                ", then {} declared check(s) from checks.json",
                d.http.len() + d.commands.len()
            ),
            Err(e) => format!(" (checks.json is invalid and refuses the run: {e})"),
        };
        steps.push(if o.reboot_even_if_unhealthy && !o.skip_reboot {
            format!(
                "Health Check: the platform's{checks} (the reboot follows even if it fails: --reboot-even-if-unhealthy)"
            )
        } else {
            format!("Health Check: the platform's{checks} (a failure skips the reboot)")
        });
        if o.skip_reboot {
            steps.push("Reboot: skipped (--skip-reboot)".to_owned());
            steps.push("Final Check: skipped (no reboot)".to_owned());
        } else {
            let reboot = plan::platform_info(server).map(|info| info.update.reboot);
            let when = if reboot == Some(RebootAfterUpdate::WhenRequired) {
                " (only if the update requires one)"
            } else {
                ""
            };
            steps.push(format!("{}{when}", plan::reboot_step(ctx, server)));
            steps.push("Final Check: SSH with a new boot id, then health".to_owned());
        }
        if let Ok(d) = &declared {
            steps.push(format!(
                "On a failure from the update on: rollback policy {}: {}",
                policy_words(d),
                match d.rollback {
                    crate::state::checks::RollbackPolicy::Auto => format!(
                        "restore the snapshot via {api}, prove the boot by a new boot id, check health again"
                    ),
                    crate::state::checks::RollbackPolicy::Ask =>
                        "ask before restoring the snapshot (unasked: leave it and suggest snapshot-restore)".to_owned(),
                    crate::state::checks::RollbackPolicy::Never => "report and leave the server as it is".to_owned(),
                }
            ));
        }
        steps
    }

    fn question(server: &ServerRecord, _: &MaintainOptions) -> String {
        format!(
            "Run maintenance (backup, update, health check, reboot) on \"{}\" ({})? This causes downtime.",
            server.name, server.ip
        )
    }
}
