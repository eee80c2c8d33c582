//! `restart`: a reboot proven by a changed boot id, then platform health.
//! Cloud servers reboot through the provider when its token is set;
//! manual servers, and cloud servers without a token, over SSH (as
//! `maintain` does; the original refused them).

#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
use super::{HealthOp, LogsOp, StatusOp};
use kastell_core::Error;
use schemars::JsonSchema;
use serde::Serialize;

use super::context::Context;
use super::flow::{Target, lock_host};
use super::operation::{CliCommand, CliTarget, McpAction, NoArgs, Operation, Scope, Spec};
use super::plan;
use super::progress::Stepper;
use super::reboot::RebootProof;
use super::result::{OpError, OpResult, Step, steps};
use super::suggest::Candidate;
use crate::policy::{Category, Rule, TokenNeed};
use crate::state::store::ServerRecord;

/// A finished, proven restart.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    /// `Server restarted successfully`.
    pub message: String,
    /// `running`.
    pub final_status: String,
    /// How the reboot was asked for and the boot ids that prove it.
    pub reboot: RebootProof,
    /// Reboot and health check, with durations.
    pub steps: Vec<Step>,
}

/// The reply carrying a [`Restart`].
pub type RestartResult = Reply<Restart>;

/// Reboots `server` and proves it.
///
/// Order: policy (SAFE_MODE blocks it; a missing token only means SSH),
/// server, the server's host lock (refused while another operation holds
/// it), then the reboot: the boot id is read over SSH when it answers,
/// the provider reboots a cloud server whose token is set (SSH reboots
/// the others, and the step says why), SSH must
/// come back with a different boot id, and the platform must be healthy.
/// Fails with the steps that ran: a provider that reports success while the
/// boot id never changes is a failure.
pub async fn restart(ctx: &Context, query: Option<&str>) -> OpResult<RestartResult> {
    let admitted = ctx.admit(RestartOp::ID, query)?;
    let _host = lock_host(ctx, &admitted.server, "restart").await?;
    let target = Target::open(ctx, &admitted.server, &admitted.decision)?;
    let server = &target.server;
    let fail = |e, reports: &[_]| {
        OpError::from(e)
            .on(server)
            .with_steps(reports)
            .with_suggestions(ctx.suggest(
                server,
                vec![Candidate::new(StatusOp::ID, "Check the server's status")],
            ))
    };
    let mut stepper = Stepper::new(ctx.progress(), 2);
    if stepper.cancelled() {
        return Err(fail(
            Error::new(
                kastell_core::ErrorKind::Cancelled,
                "Cancelled before the reboot; nothing was changed",
            )
            .with_hint("Call restart again to reboot"),
            &[],
        ));
    }
    stepper.start("Reboot");
    let reboot = target.reboot_step(ctx).await;
    stepper.finish(&reboot.step);
    let mut reports = vec![reboot.step];
    let proof = reboot.outcome.map_err(|e| fail(e, &reports))?;
    stepper.start("Health Check");
    let health = target
        .health_step(
            ctx,
            "Health Check",
            &format!("Server and {} are running", target.label()),
            &format!("Server rebooted but {} did not respond", target.label()),
        )
        .await;
    stepper.finish(&health.step);
    reports.push(health.step);
    health.outcome.map_err(|e| fail(e, &reports))?;

    Ok(Reply::on(
        server,
        Restart {
            message: "Server restarted successfully".to_owned(),
            final_status: "running".to_owned(),
            reboot: proof,
            steps: steps(&reports),
        },
        ctx.suggest(
            server,
            vec![
                Candidate::new(HealthOp::ID, "Check server health"),
                Candidate::new(LogsOp::ID, "Check logs after the reboot"),
            ],
        ),
    ))
}

/// `restart`: a proven reboot.
pub struct RestartOp;

#[async_trait::async_trait]
impl Operation for RestartOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("restart", Category::Disruptive)
            .blocked(
                "Restart is disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable server reboot",
            )
            .token(TokenNeed::Optional)
            .long(),
        scope: Scope::Server,
        mcp: Some(McpAction {
            tool: "server_maintain",
            action: "restart",
            doc: "reboot through the provider (over SSH for manual servers or without its token), proven by a changed boot id, then wait for SSH and platform health.",
        }),
        cli: Some(CliCommand {
            path: &["restart"],
            about: "Reboot a server and prove it (a new boot id), then check health.",
            target: CliTarget::Fleet,
        }),
    };
    type Args = NoArgs;
    type Body = RestartResult;

    async fn run(ctx: &Context, query: Option<&str>, _: &NoArgs) -> OpResult<Self::Body> {
        restart(ctx, query).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, _: &NoArgs) -> Vec<String> {
        vec![
            format!("Read the boot id over SSH ({})", plan::ssh_target(server)),
            plan::reboot_step(ctx, server),
            "Wait for SSH to answer with a new boot id".to_owned(),
            format!("Health Check of {}", server.platform_id()),
        ]
    }

    fn question(server: &ServerRecord, _: &NoArgs) -> String {
        format!(
            "Reboot \"{}\" ({})? It will be unreachable for a while.",
            server.name, server.ip
        )
    }
}
