//! `rollout` (MCP `server_maintain`, action `rollout`): `maintain`,
//! `update` or `restart` on every server as one rollout, for an agent.
//! It is long work, so a client that speaks tasks gets one task whose
//! status message names the stage and its servers, and whose cancel stops
//! the rollout between servers (the servers in flight finish; it stays
//! resumable with `rolloutId`). Each server's run is the operation's own,
//! with its own policy check (SAFE_MODE, levels); a server outside its
//! maintenance window is skipped. The command line's equivalent is
//! `maintain|update|restart --all`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Canary, Driven, Probe, ServerRun, Shape, Size, drive, held_back, new_journal, probe};
use crate::ops::context::Context;
use crate::ops::operation::{Invocation, McpAction, Operation, Scope, Spec};
use crate::ops::{MaintainOp, NoProgress, OpError, OpResult, RestartOp, UpdateOp, catalog};
use crate::policy::{Category, OpId, Rule, TokenNeed};
use crate::state::rollouts::{Journal, RolloutLock, ServerEntry, ServerState};
use crate::state::store::ServerRecord;
use kastell_core::{Error, ErrorKind};

/// What a rollout runs on each server.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RolloutWork {
    /// `maintain` (the default).
    #[default]
    Maintain,
    /// `update`.
    Update,
    /// `restart`.
    Restart,
}

impl RolloutWork {
    fn id(self) -> OpId {
        match self {
            Self::Maintain => MaintainOp::ID,
            Self::Update => UpdateOp::ID,
            Self::Restart => RestartOp::ID,
        }
    }
}

/// Arguments of `rollout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::Args)]
#[serde(rename_all = "camelCase")]
pub struct RolloutOpArgs {
    /// rollout: maintain (default), update or restart.
    #[serde(default)]
    #[arg(skip)]
    pub work: RolloutWork,
    /// rollout: batch size, 5 or 25% (default).
    #[serde(default)]
    #[schemars(length(min = 1, max = 8))]
    #[arg(skip)]
    pub batch: Option<String>,
    /// rollout: failures that stop it, 1 (default) or 10%.
    #[serde(default)]
    #[schemars(length(min = 1, max = 8))]
    #[arg(skip)]
    pub max_failures: Option<String>,
    /// rollout: resume this rollout.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    #[arg(skip)]
    pub rollout_id: Option<String>,
}

/// One server of a rollout's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutServer {
    /// Server name.
    pub name: String,
    /// `canary`, `batch 1/3`, ...
    pub stage: String,
    /// `done`, `failed`, `skipped`, `untouched`, `pending`, `in-flight`.
    pub status: String,
    /// How it ended, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A rollout's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutReport {
    /// Whether every server is done or skipped.
    pub success: bool,
    /// The rollout's id (for `rolloutId` and `kastell rollout status`).
    pub rollout_id: String,
    /// What ran on each server.
    pub work: String,
    /// `finished`, `stopped`, `cancelled`, `aborted`.
    pub state: String,
    /// Why it stopped, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// How many failures stop it.
    pub budget: usize,
    /// Every server, in plan order.
    pub servers: Vec<RolloutServer>,
}

impl RolloutReport {
    fn of(journal: &Journal) -> Self {
        let server = |s: &ServerEntry| RolloutServer {
            name: s.name.clone(),
            stage: super::stage_name(s.stage, journal.stages),
            status: s.status.as_str().to_owned(),
            detail: s.detail.clone(),
        };
        Self {
            success: journal
                .servers
                .iter()
                .all(|s| matches!(s.status, ServerState::Done | ServerState::Skipped)),
            rollout_id: journal.id.clone(),
            work: journal.operation.clone(),
            state: journal.state.as_str().to_owned(),
            stop_reason: journal.stop_reason.clone(),
            budget: journal.budget,
            servers: journal.servers.iter().map(server).collect(),
        }
    }
}

/// The MCP side of a rollout: each server is the operation's own run
/// (without the task's progress, so a cancel waits for it to finish);
/// the stages and servers go to the task's status message.
struct McpDriven {
    ctx: Context,
    inner: Context,
    call: Arc<dyn Invocation>,
    category: Category,
    /// The stage running and its servers (`batch 1/3: web-2, web-3`).
    stage: std::sync::Mutex<String>,
}

#[async_trait::async_trait]
impl Driven for McpDriven {
    async fn run(&self, server: &ServerRecord) -> ServerRun {
        match self.call.run(&self.inner, Some(&server.name)).await {
            Ok(done) => ServerRun {
                ok: true,
                detail: done
                    .body
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("done")
                    .to_owned(),
            },
            Err(e) => ServerRun {
                ok: false,
                detail: e.error,
            },
        }
    }

    async fn probe(&self, server: &ServerRecord) -> Probe {
        probe(&self.inner, server).await
    }

    fn held_back(&self, server: &ServerRecord) -> Option<String> {
        held_back(&self.ctx, self.ctx.surface, self.category, server)
    }

    fn stage(&self, name: &str, servers: &[String]) {
        let text = format!("{name}: {}", servers.join(", "));
        self.ctx.progress().message(&text);
        if let Ok(mut stage) = self.stage.lock() {
            *stage = text;
        }
    }

    fn server(&self, name: &str, state: ServerState, _detail: &str) {
        let stage = self.stage.lock().map(|s| s.clone()).unwrap_or_default();
        self.ctx
            .progress()
            .message(&format!("{stage}; {name}: {}", state.as_str()));
    }

    fn cancelled(&self) -> bool {
        self.ctx.progress().cancelled()
    }
}

fn bad(message: String, hint: &str) -> OpError {
    OpError::from(Error::new(ErrorKind::InvalidInput, message).with_hint(hint.to_owned()))
}

/// Runs (or resumes) a rollout as `args` say. Refused by the policy of
/// `rollout` itself (SAFE_MODE, levels), for malformed sizes, an unknown
/// tag or rollout, and while another process drives it.
pub async fn rollout(ctx: &Context, args: &RolloutOpArgs) -> OpResult<RolloutReport> {
    let token = |p: &str| ctx.token_present(p);
    ctx.policy
        .check(RolloutOp::ID, ctx.surface, None, token)
        .map_err(OpError::from)?;
    let dir = ctx.store.dir().to_path_buf();
    let fleet = ctx.store.servers()?;
    let journal = match &args.rollout_id {
        Some(id) => {
            let journal = Journal::load(&dir, id)?;
            if !journal.state.resumable() {
                return Err(OpError::from(
                    Error::invalid_state(format!(
                        "Rollout {id} is {}: there is nothing to resume",
                        journal.state.as_str()
                    ))
                    .with_hint("Start a new rollout once the cause is fixed"),
                ));
            }
            journal
        }
        None => {
            let size = |text: &Option<String>, default: Size, what: &str| match text {
                None => Ok(default),
                Some(t) => Size::parse(t).map_err(|e| {
                    bad(
                        format!("{what}: {e}"),
                        "Use a count like \"5\" or a share like \"25%\"",
                    )
                }),
            };
            let shape = Shape {
                canary: Canary::Count(1),
                batch: size(&args.batch, Size::Percent(25), "batch")?,
                max_failures: size(&args.max_failures, Size::Count(1), "maxFailures")?,
                pause_secs: 0,
                concurrency: crate::ops::FLEET_STATUS_CONCURRENCY,
            };
            new_journal(
                args.work.id(),
                Value::Object(Default::default()),
                ctx.surface,
                &fleet,
                &shape,
            )?
        }
    };
    let lock = RolloutLock::try_acquire(&dir, &journal.id, "kastell-mcp rollout")?;
    ctx.progress().rollout(&journal.id);
    let Some(inner_op) = catalog::all()
        .iter()
        .copied()
        .find(|o| o.id().as_str() == journal.operation)
    else {
        return Err(OpError::from(Error::invalid_state(format!(
            "Rollout {} runs an operation this build does not have",
            journal.id
        ))));
    };
    let call = inner_op
        .call_from_json(Default::default())
        .map_err(|e| OpError::from(Error::unexpected(e)))?;
    let driven = Arc::new(McpDriven {
        ctx: ctx.clone(),
        inner: ctx.clone().with_progress(Arc::new(NoProgress)),
        category: inner_op.spec().rule.category,
        call,
        stage: std::sync::Mutex::new(String::new()),
    });
    let journal = drive(&dir, journal, lock, &fleet, driven).await?;
    let report = RolloutReport::of(&journal);
    if journal.state == crate::state::rollouts::RolloutState::Cancelled {
        return Err(OpError::from(
            Error::new(
                ErrorKind::Cancelled,
                format!(
                    "Rollout {} stopped between servers, as asked; {} done so far",
                    journal.id,
                    journal.count(ServerState::Done)
                ),
            )
            .with_hint(format!(
                "Call rollout with rolloutId {} to go on",
                journal.id
            )),
        ));
    }
    Ok(report)
}

/// `rollout`: a fleet rollout for agents.
pub struct RolloutOp;

#[async_trait::async_trait]
impl Operation for RolloutOp {
    const SPEC: &'static Spec = &Spec {
        rule: Rule::new("rollout", Category::Disruptive)
            .blocked(
                "Rollouts are disabled in SAFE_MODE",
                "Set KASTELL_SAFE_MODE=false to enable fleet rollouts",
            )
            .token(TokenNeed::Optional)
            .long(),
        scope: Scope::Fleet,
        mcp: Some(McpAction {
            tool: "server_maintain",
            action: "rollout",
            doc: "maintain every server as one task: canary, batches, failure budget; cancel stops between servers.",
        }),
        cli: None,
    };
    type Args = RolloutOpArgs;
    type Body = RolloutReport;

    async fn run(ctx: &Context, _: Option<&str>, args: &RolloutOpArgs) -> OpResult<RolloutReport> {
        rollout(ctx, args).await
    }

    fn plan(ctx: &Context, server: &ServerRecord, args: &RolloutOpArgs) -> Vec<String> {
        let _ = ctx;
        vec![format!(
            "{:?} on {} in its turn (canary first, then batches)",
            args.work, server.name
        )]
    }
}
