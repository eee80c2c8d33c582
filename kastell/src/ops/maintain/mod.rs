//! `maintain`: status → update → health → reboot → final check, every step
//! timed, optionally after a provider snapshot. Bare servers are
//! maintained too (the original refused them).

#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use super::{HealthOp, LogsOp, StatusOp};
use kastell_core::types::{StepReport, StepStatus};
use kastell_core::{CloudProviderExt, Error};
use schemars::JsonSchema;
use serde::Serialize;

use super::context::{Context, server_id};
use super::flow::{Ran, Target, lock_host, unknown_outcome};
use super::operation::{CliCommand, CliTarget, McpAction, Operation, Scope, Spec};
use super::plan;
use super::progress::Stepper;
use super::result::{OpError, OpResult, SnapshotInfo, Step, StepSummary, steps};
use super::snapshot::SnapshotCreateOp;
use super::suggest::Candidate;
use crate::policy::{Category, Rule, TokenNeed};
use crate::state::store::ServerRecord;
use kastell_core::types::RebootAfterUpdate;

/// What `maintain` should do besides the five steps: its arguments.
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
    /// maintain only: take a provider snapshot first and wait until it is
    /// available (billable; needs the provider's token).
    #[serde(default)]
    #[arg(
        long,
        help = "Take a provider snapshot first and wait until it is available (billable; cloud servers with a token only; a failure stops the run)"
    )]
    pub snapshot: bool,
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
    /// The snapshot taken first, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotInfo>,
    /// `Maintenance completed`.
    pub message: String,
    /// Things to know (a status check skipped for want of a token).
    pub notes: Vec<String>,
}

/// The reply carrying a [`Maintain`].
pub type MaintainResult = Reply<Maintain>;

const STATUS: &str = "Status Check";
const HEALTH: &str = "Health Check";
const REBOOT: &str = "Reboot";
const FINAL: &str = "Final Check";

/// Runs maintenance on `server`.
///
/// Order: policy for `maintain` (SAFE_MODE blocks it; no token is needed:
/// without one the status check is skipped and the reboot goes over SSH),
/// and for `snapshot-create` when a snapshot is asked for; server; the
/// server's host lock (refused while another operation holds it, see
/// `lock_host`); then:
/// 0. `Snapshot` (only with `options.snapshot`), awaited until available;
/// 1. `Status Check` through the provider (skipped on manual servers and
///    without a token); not running stops the run;
/// 2. the platform update (`Package Upgrade` on bare servers); a failure
///    stops the run;
/// 3. `Health Check`; a failure is reported and skips the reboot unless
///    `reboot_even_if_unhealthy`;
/// 4. `Reboot`, proven by a changed boot id: skipped with `skip_reboot`,
///    and on bare servers unless the upgrade says a reboot is required;
/// 5. `Final Check` (skipped when there was no reboot).
///
/// Every step is present in the result (`skipped` with why when it did not
/// run). Any failed step makes the whole run an [`OpError`] carrying all
/// steps.
pub async fn maintain(
    ctx: &Context,
    query: Option<&str>,
    options: MaintainOptions,
) -> OpResult<MaintainResult> {
    let admitted = ctx.admit(MaintainOp::ID, query)?;
    let server = &admitted.server;
    if options.snapshot {
        ctx.policy
            .check(SnapshotCreateOp::ID, ctx.surface, Some(server), |p| {
                ctx.token_present_for(server, p)
            })
            .map_err(|e| OpError::from(e).on(server))?;
    }
    let _host = lock_host(ctx, server, "maintain").await?;
    let target = Target::open(ctx, server, &admitted.decision)?;
    let total = if options.snapshot { 6 } else { 5 };
    let mut run = Run::new(Stepper::new(ctx.progress(), total));
    let update_name = target.update_name();

    let mut snapshot = None;
    if options.snapshot {
        run.start("Snapshot");
        let ran = snapshot_step(ctx, &target).await;
        snapshot = run.record(ran);
        if snapshot.is_none() {
            run.skip_rest(&[STATUS, &update_name, HEALTH, REBOOT, FINAL]);
        }
    }
    if !run.failed() && run.start(STATUS) && run.record(target.status_step().await).is_none() {
        run.skip_rest(&[&update_name, HEALTH, REBOOT, FINAL]);
    }
    let mut update = None;
    if !run.failed() && !run.stop_if_cancelled(&[&update_name, HEALTH, REBOOT, FINAL]) {
        run.start(&update_name);
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
                target
                    .health_step(
                        ctx,
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
                    let ran = target
                        .health_step(
                            ctx,
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
    finish(ctx, &admitted.decision.notes, &target, run, snapshot)
}

async fn snapshot_step(ctx: &Context, target: &Target) -> Ran<SnapshotInfo> {
    let timer = kastell_core::types::StepTimer::start("Snapshot");
    let outcome = async {
        let provider = target.provider.as_ref().ok_or_else(|| {
            Error::invalid_state("A snapshot needs the provider API")
                .with_hint("Set the provider's token, or run maintain without snapshot")
        })?;
        let name = format!("kastell-maintain-{}", chrono::Utc::now().timestamp_millis());
        let snap = provider
            .snapshot_and_wait(&server_id(&target.server)?, &name, ctx.timing.snapshot)
            .await
            .map_err(|e| {
                unknown_outcome(
                    e,
                    "The snapshot may have been taken even though the answer was lost or late \
                     (snapshots are billed): look for it with snapshot-list before running \
                     maintenance with a snapshot again",
                )
            })?;
        Ok::<_, Error>(SnapshotInfo::from(&snap))
    }
    .await;
    match outcome {
        Ok(info) => Ran {
            step: timer.success(format!("Snapshot {} is available", info.id)),
            outcome: Ok(info),
        },
        Err(e) => Ran {
            step: timer.failure(&e),
            outcome: Err(e),
        },
    }
}

/// The steps so far and the first error, each step reported to the
/// context's progress hook as it starts and ends.
struct Run<'a> {
    reports: Vec<StepReport>,
    first_error: Option<Error>,
    stepper: Stepper<'a>,
}

impl<'a> Run<'a> {
    fn new(stepper: Stepper<'a>) -> Self {
        Self {
            reports: Vec::new(),
            first_error: None,
            stepper,
        }
    }

    /// Reports that the step `name` starts; always `true` (for chaining).
    fn start(&self, name: &str) -> bool {
        self.stepper.start(name);
        true
    }

    /// Keeps a finished (or skipped) step and reports it.
    fn push(&mut self, report: StepReport) {
        self.stepper.finish(&report);
        self.reports.push(report);
    }

    /// Keeps the step; returns its product, remembering the first error.
    fn record<T>(&mut self, ran: Ran<T>) -> Option<T> {
        self.push(ran.step);
        match ran.outcome {
            Ok(value) => Some(value),
            Err(e) => {
                self.first_error.get_or_insert(e);
                None
            }
        }
    }

    fn failed(&self) -> bool {
        self.first_error.is_some()
    }

    /// At a safe point: when the caller asked to stop, reports `rest` as
    /// not started, remembers a `Cancelled` error and returns `true`.
    fn stop_if_cancelled(&mut self, rest: &[&str]) -> bool {
        if !self.stepper.cancelled() {
            return false;
        }
        let next = rest.first().copied().unwrap_or("the next step");
        for name in rest {
            self.push(StepReport::skipped(
                *name,
                "Not started: the client cancelled the maintenance",
            ));
        }
        self.first_error.get_or_insert(
            Error::new(
                kastell_core::ErrorKind::Cancelled,
                format!("cancelled before {next}; nothing after it was started"),
            )
            .with_hint("The steps before it ran and are listed; run maintain again to finish"),
        );
        true
    }

    fn skip_rest(&mut self, names: &[&str]) {
        for name in names {
            self.push(StepReport::skipped(
                *name,
                "Skipped: an earlier step failed",
            ));
        }
    }
}

fn finish(
    ctx: &Context,
    notes: &[String],
    target: &Target,
    run: Run<'_>,
    snapshot: Option<SnapshotInfo>,
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
        let err = run
            .first_error
            .unwrap_or_else(|| Error::unexpected("a step failed"));
        let mut op = OpError::from(err).on(server).with_steps(&run.reports);
        op.error = match at {
            Some(at) => format!("Maintenance failed at {at}: {}", op.error),
            None => format!("Maintenance stopped: {}", op.error),
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
    candidates[0] = Candidate::new(StatusOp::ID, "Check server status");

    Ok(Reply::on(
        server,
        Maintain {
            provider: server.provider_id().map(str::to_owned),
            platform: target.label().to_owned(),
            summary: StepSummary::of(&steps),
            steps,
            snapshot,
            message: "Maintenance completed".to_owned(),
            notes,
        },
        ctx.suggest(server, candidates),
    ))
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
            doc: "status check, update, health check, reboot, final check; a failed health check skips the reboot.",
        }),
        cli: Some(CliCommand {
            path: &["maintain"],
            about: "Status, update, health check, reboot and final check.",
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
        if o.snapshot {
            steps.push(format!(
                "Snapshot: create kastell-<epoch-ms> via {} and wait until available",
                plan::api(ctx, server)
            ));
        }
        steps.push(plan::status_step(ctx, server));
        steps.push(plan::update_step(server));
        steps.push(if o.reboot_even_if_unhealthy && !o.skip_reboot {
            "Health Check (the reboot follows even if it fails: --reboot-even-if-unhealthy)"
                .to_owned()
        } else {
            "Health Check (a failure skips the reboot)".to_owned()
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
        steps
    }

    fn question(server: &ServerRecord, _: &MaintainOptions) -> String {
        format!(
            "Run maintenance (update, health check, reboot) on \"{}\" ({})? This causes downtime.",
            server.name, server.ip
        )
    }
}
