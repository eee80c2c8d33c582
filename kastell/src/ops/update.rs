//! `update`: the platform's update (a package upgrade on bare servers),
//! after the provider's status check when there is a token.

#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use super::{HealthOp, RestartOp};
use kastell_core::Error;
use kastell_core::types::StepReport;
use schemars::JsonSchema;
use serde::Serialize;

use super::context::Context;
use super::flow::{Target, lock_host};
use super::operation::{CliCommand, CliTarget, McpAction, NoArgs, Operation, Scope, Spec};
use super::plan;
use super::progress::Stepper;
use super::result::{OpError, OpResult, Step, steps};
use super::suggest::Candidate;
use crate::policy::{Category, Rule, TokenNeed};
use crate::state::store::ServerRecord;

/// A finished update.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Update {
    /// `<Platform> update completed successfully`.
    pub message: String,
    /// Version before, when the platform reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_before: Option<String>,
    /// Version after, when the platform reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_after: Option<String>,
    /// Packages upgraded (bare servers).
    pub packages_upgraded: Vec<String>,
    /// Whether a reboot is needed to finish the update.
    pub reboot_required: bool,
    /// The platform's advice, kept (the original dropped it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Things to know (a status check skipped for want of a token).
    pub notes: Vec<String>,
    /// Status check and update, with durations.
    pub steps: Vec<Step>,
}

/// The reply carrying a [`Update`].
pub type UpdateResult = Reply<Update>;

/// Updates the platform of `server` (bare servers: packages).
///
/// Order: policy (SAFE_MODE blocks it), server, the server's host lock
/// (refused while another operation holds it), then the provider status
/// check: refused when the server is not `running`; skipped with a note on
/// manual servers and on cloud servers without a token (the original sent
/// an empty token and failed). Failures keep the platform's hint and the
/// steps that ran.
pub async fn update(ctx: &Context, query: Option<&str>) -> OpResult<UpdateResult> {
    let admitted = ctx.admit(UpdateOp::ID, query)?;
    let _host = lock_host(ctx, &admitted.server, "update").await?;
    let target = Target::open(ctx, &admitted.server, &admitted.decision)?;
    let server = &admitted.server;
    let mut stepper = Stepper::new(ctx.progress(), 2);
    stepper.start("Status Check");
    let status = target.status_step().await;
    stepper.finish(&status.step);
    let mut reports = vec![status.step];
    if let Err(e) = status.outcome {
        return Err(failure(ctx, &target, e, &reports));
    }
    stepper.start(&target.update_name());
    let ran = target.update_step(ctx).await;
    stepper.finish(&ran.step);
    reports.push(ran.step);
    let report = ran
        .outcome
        .map_err(|e| failure(ctx, &target, e, &reports))?;
    let mut candidates = vec![Candidate::new(
        HealthOp::ID,
        "Check the platform after the update",
    )];
    if report.reboot_required {
        candidates.insert(
            0,
            Candidate::new(RestartOp::ID, "The update needs a reboot"),
        );
    }
    let mut notes = admitted.decision.notes.clone();
    notes.extend(
        target
            .no_provider
            .iter()
            .map(|n| format!("{n}: status check skipped")),
    );

    Ok(Reply::on(
        server,
        Update {
            message: format!("{} update completed successfully", target.label()),
            version_before: report.version_before,
            version_after: report.version_after,
            packages_upgraded: report.packages_upgraded,
            reboot_required: report.reboot_required,
            hint: report.hint,
            notes,
            steps: steps(&reports),
        },
        ctx.suggest(server, candidates),
    ))
}

/// The update's failure: the error with `Server: <n> (<ip>).` before its
/// hint, the steps that ran, and a health check suggestion.
fn failure(ctx: &Context, target: &Target, e: Error, reports: &[StepReport]) -> OpError {
    let server = &target.server;
    let hint = format!(
        "Server: {} ({}). {}",
        server.name,
        server.ip,
        e.hint().unwrap_or("Check the server's health and logs")
    );
    let mut err = OpError::from(e).on(server).with_steps(reports);
    err.hint = Some(hint);
    err.with_suggestions(ctx.suggest(
        server,
        vec![Candidate::new(HealthOp::ID, "Check server health")],
    ))
}

/// `update`: the platform's update.
pub struct UpdateOp;

#[async_trait::async_trait]
impl Operation for UpdateOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("update", Category::Disruptive)
            .blocked(
                "Update is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable platform updates",
            )
            .token(TokenNeed::Optional)
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_maintain",
            action: "update",
            doc: "update the platform (Coolify or Dokploy update script; a package upgrade on bare servers).",
        }),
        cli: Some(CliCommand {
            path: &["update"],
            about: "Update the platform (bare servers: packages).",
            target: CliTarget::Fleet,
        }),
    };
    type Args = NoArgs;
    type Body = UpdateResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        update(ctx, query).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![plan::status_step(ctx, server), plan::update_step(server)]
    }

    fn question(server: &ServerRecord, _: &NoArgs) -> String {
        format!(
            "Update {} on \"{}\" ({})? This may cause brief downtime.",
            server.platform_id(),
            server.name,
            server.ip
        )
    }
}
