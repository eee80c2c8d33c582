//! Confirmation of destructive calls (backup-restore, snapshot-delete,
//! snapshot-restore) that the model cannot give itself.
//!
//! Once the policy admits the call, kastell works out its blast radius
//! ([`ops::blast_radius`]), reads the confirmation mode for the server from
//! `safety.json` ([`crate::policy::ConfirmMode`]: `ask` unless set) and
//! then, by what the client can do, takes one route:
//!
//! 1. **Ask** (`ask` or `plan-token`, and the client can ask its user: it
//!    declared elicitation on 2025-06-18 or later):
//!    2026-07-28 clients get an input-required result asking the person
//!    (the question is the blast radius), with a `requestState` sealed by
//!    HMAC (`RequestStateCodec`) and bound to the exact arguments and the
//!    blast radius's fingerprint; the retry runs only with the person's
//!    `accept` and an untampered, unexpired, unused state. Earlier clients
//!    that declared elicitation get an `elicitation/create` request with
//!    the same question, waiting `KASTELL_CONFIRM_TIMEOUT` seconds (default
//!    120). A plan token never replaces the question: a call carrying one
//!    is asked like any other.
//! 2. **Approve** (`approve`, or `ask` when the client cannot ask): the
//!    call waits for the operator's `kastell approve ID` ([`super::approve`]).
//! 3. **Plan token** (`plan-token`, and the client cannot ask): `dryRun:
//!    true` returns the plan and a `planToken` sealed the same way and
//!    valid for five minutes (`KASTELL_PLAN_TTL` seconds); the call runs
//!    only with that token, the same arguments and the same state.
//!
//! A dry run never changes anything and, outside the plan-token route,
//! hands out no token. A decline, a cancel or no answer aborts with nothing
//! changed and is final: it is remembered ([`crate::state::approval::Declines`])
//! and a later dry run or plan token for that call in that state is
//! refused, saying the user said no. A token or state is used once:
//! replays are refused, as are tokens for other arguments or servers,
//! altered ones and those from another kastell-mcp process (each process
//! seals with a random key of its own). `KASTELL_CONFIRM=off` skips all of
//! this (the original tool's behaviour: SAFE_MODE alone decides), except
//! that a dry run still only plans (`confirm: off`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kastell_core::{Error, ErrorKind};
use rmcp::model::{
    CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitationAction, InputRequest,
    InputRequiredResult, JsonObject, RequestStateCodec,
};
use rmcp::service::{ElicitationError, RequestContext, ServiceError};
use rmcp::{RoleServer, model::ProtocolVersion};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::call::Call;
use super::render::{failure, tagged_as};
use crate::ops::{self, BlastRadius, OpError};
use crate::policy::{Category, ConfirmMode, Confirmation};
use crate::state::approval::{self, Decline, Declines};

mod token;

pub(crate) use token::arguments_digest;
use token::{PLAN_PREFIX, SEALS, apply_plan, open, seal};

/// `auto` (the default: confirm destructive calls) or `off`.
pub const CONFIRM_VAR: &str = "KASTELL_CONFIRM";
/// Seconds to wait for a person's answer (default 120).
pub const CONFIRM_TIMEOUT_VAR: &str = "KASTELL_CONFIRM_TIMEOUT";
/// How long a plan token is valid by default.
pub const PLAN_TTL: Duration = Duration::from_secs(300);
/// Seconds a plan token stays valid (default 300).
pub const PLAN_TTL_VAR: &str = "KASTELL_PLAN_TTL";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a token or question may stay valid, whatever the variables
/// say; used nonces are remembered for longer than that.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// The key of kastell's one input request in an input-required result.
const INPUT_KEY: &str = "confirm";

/// What a person answers.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct Answer {
    /// Tick to let it run; anything else changes nothing.
    pub(crate) confirm: bool,
}
rmcp::elicit_safe!(Answer);

/// What the gate decided.
pub(crate) enum Gate {
    /// Run the call.
    Go {
        /// How it was confirmed (`elicitation`, `input-required`,
        /// `plan-token <fp>`, `approved by the operator (request ID)`,
        /// `not asked`), for the audit log.
        confirmed: String,
    },
    /// Answer with this instead of running; the note, when there is one,
    /// is what the audit log records as the confirmation (`declined by the
    /// user`, `waiting for approval`).
    Answer(CallToolResponse, Option<String>),
}

pub(super) fn refused(kind: ErrorKind, message: impl Into<String>, hint: &str) -> Gate {
    refused_noting(kind, message, hint, None)
}

pub(super) fn refused_noting(
    kind: ErrorKind,
    message: impl Into<String>,
    hint: &str,
    note: Option<String>,
) -> Gate {
    Gate::Answer(
        failure(OpError::from(
            Error::new(kind, message).with_hint(hint.to_owned()),
        ))
        .into(),
        note,
    )
}

/// The request's parts the gate reads.
pub(crate) struct Retry<'a> {
    /// `inputResponses` of a 2026-07-28 retry.
    pub(crate) input_responses: Option<&'a BTreeMap<String, serde_json::Value>>,
    /// `requestState` of a 2026-07-28 retry.
    pub(crate) request_state: Option<&'a str>,
}

/// Who confirms this call, from the mode and what the client can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The person using the client.
    Ask,
    /// The operator, out of band.
    Approve,
    /// The model's own dry run and plan token.
    PlanToken,
}

impl Route {
    /// `None` for `off`.
    fn of(mode: ConfirmMode, can_ask: bool) -> Option<Self> {
        match (mode, can_ask) {
            (ConfirmMode::Off, _) => None,
            (ConfirmMode::Approve, _) | (ConfirmMode::Ask, false) => Some(Self::Approve),
            (ConfirmMode::Ask | ConfirmMode::PlanToken, true) => Some(Self::Ask),
            (ConfirmMode::PlanToken, false) => Some(Self::PlanToken),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::Approve => "approve",
            Self::PlanToken => "plan-token",
        }
    }
}

/// The call being confirmed: where its declines are kept, its arguments
/// digest and its blast radius.
pub(super) struct Asked<'a> {
    pub(super) dir: &'a Path,
    pub(super) digest: &'a str,
    pub(super) blast: &'a BlastRadius,
}

/// The confirmation mode for the server named `server` now.
fn confirmation(ctx: &ops::Context, server: &str) -> kastell_core::Result<Confirmation> {
    let config = ctx.policy.safety()?;
    let record = ctx.store.find(server)?;
    Ok(config.confirmation(record.as_ref()))
}

/// Decides whether `call` (made with the raw `arguments`) may run now.
pub(crate) async fn gate(
    ctx: &ops::Context,
    call: &Call,
    arguments: &JsonObject,
    retry: Retry<'_>,
    rc: &RequestContext<RoleServer>,
) -> Gate {
    let (tool, op) = (call.tool, call.id());
    if op.rule().category != Category::Destructive {
        return Gate::Go {
            confirmed: "not needed".into(),
        };
    }
    let off_by_env = ctx
        .env
        .get(CONFIRM_VAR)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"));
    let dry_run = call.dry_run();
    if off_by_env && !dry_run {
        return Gate::Go {
            confirmed: format!("not asked ({CONFIRM_VAR}=off)"),
        };
    }
    let Some(target) = call.invocation.target() else {
        // Without a backup or snapshot id the operation refuses by itself,
        // naming the missing argument: nothing to confirm.
        return Gate::Go {
            confirmed: "not needed (no target)".into(),
        };
    };
    let server = call.server();
    let repo = call.invocation.repo();
    let blast = match ops::blast_radius(ctx, op, server, Some(target), repo).await {
        Ok(b) => b,
        Err(e) => return Gate::Answer(failure(e).into(), None),
    };
    // A dry run never changes anything, even where nobody confirms.
    if off_by_env {
        let steps = steps_of(ctx, call, &blast);
        return unconfirmed_plan((blast, steps));
    }
    let setting = match confirmation(ctx, &blast.server) {
        Ok(setting) => setting,
        Err(e) => return Gate::Answer(failure(OpError::from(e)).into(), None),
    };
    let version = rc.protocol_version();
    let modern = version
        .as_ref()
        .is_some_and(|v| *v >= ProtocolVersion::V_2026_07_28);
    // Elicitation came with 2025-06-18: an older client that declares it
    // cannot answer the question (the SDKs refuse the method).
    let can_ask = version
        .as_ref()
        .is_some_and(|v| *v >= ProtocolVersion::V_2025_06_18)
        && rc
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some());
    let Some(route) = Route::of(setting.mode, can_ask) else {
        if call.dry_run() {
            let steps = steps_of(ctx, call, &blast);
            return unconfirmed_plan((blast, steps));
        }
        return Gate::Go {
            confirmed: format!("not asked (confirm off: {})", setting.source),
        };
    };
    let digest = arguments_digest(tool, arguments);
    let Some(codec) = SEALS.codec.as_ref() else {
        return refused(
            ErrorKind::Unavailable,
            "kastell-mcp could not make a confirmation key (no /dev/urandom)",
            "Run kastell-mcp where /dev/urandom is readable, or confirm on the command line",
        );
    };
    let asked = Asked {
        dir: ctx.store.dir(),
        digest: &digest,
        blast: &blast,
    };
    // What a person refused, the model cannot confirm for itself.
    if call.dry_run() || call.plan_token().is_some() {
        match Declines::in_dir(asked.dir).find(&digest, &blast.fingerprint, approval::now()) {
            Ok(Some(no)) => return said_no(&blast, &no),
            Ok(None) => {}
            Err(e) => return Gate::Answer(failure(OpError::from(e)).into(), None),
        }
    }
    // A dry run never changes anything, whatever else the call carries.
    if call.dry_run() {
        let ttl = seconds(ctx, PLAN_TTL_VAR, PLAN_TTL, MAX_TTL);
        let steps = steps_of(ctx, call, &blast);
        return plan(codec, &digest, (blast, steps), route, ttl);
    }
    // The person's answer to the question kastell put decides.
    if let Some(state) = retry.request_state {
        return answered(codec, state, retry.input_responses, &asked);
    }
    match route {
        Route::PlanToken => match call.plan_token() {
            Some(token) => apply_plan(codec, token, &digest, &blast),
            None => refused(
                ErrorKind::PermissionDenied,
                format!(
                    "{} on {} needs a confirmation, and this client cannot ask its user",
                    blast.action, blast.server
                ),
                "Call again with dryRun: true to see the plan and get a planToken, then call with that planToken (valid 5 minutes)",
            ),
        },
        // A plan token, if the call carries one, is ignored: the person is
        // asked.
        Route::Ask if modern => ask_input_required(codec, &digest, &blast, confirm_timeout(ctx)),
        Route::Ask => ask_legacy(rc, &asked, confirm_timeout(ctx)).await,
        Route::Approve => {
            let ttl = seconds(
                ctx,
                approval::APPROVAL_TTL_VAR,
                approval::APPROVAL_TTL,
                approval::MAX_APPROVAL_TTL,
            );
            super::approve::gate(rc, &asked, ttl)
        }
    }
}

/// The steps `call` would take on the server `blast` is about: the
/// operation's own plan, as `--dry-run` prints it.
fn steps_of(ctx: &ops::Context, call: &Call, blast: &BlastRadius) -> Vec<String> {
    match ctx.store.find(&blast.server) {
        Ok(Some(server)) => call.invocation.plan(ctx, &server),
        _ => Vec::new(),
    }
}

/// The refusal of a dry run or plan token after a person said no.
fn said_no(blast: &BlastRadius, no: &Decline) -> Gate {
    refused_noting(
        ErrorKind::PermissionDenied,
        format!(
            "The user said no to {} on {} with these arguments ({}); a dry run or a plan token cannot override that. Nothing was changed",
            blast.action, blast.server, no.how
        ),
        "Only a person can change that answer: call again without dryRun and planToken to ask them again. The refusal stands for 24 hours or until the server's state changes",
        Some(format!("refused: {} earlier", no.how)),
    )
}

fn confirm_timeout(ctx: &ops::Context) -> Duration {
    seconds(ctx, CONFIRM_TIMEOUT_VAR, DEFAULT_TIMEOUT, MAX_TTL)
}

/// Whole seconds from `var`, else `default` (unset, zero or unreadable),
/// never more than `max`.
fn seconds(ctx: &ops::Context, var: &str, default: Duration, max: Duration) -> Duration {
    ctx.env
        .get(var)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(default)
        .min(max)
}

/// The plan a dry run returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    /// Always `true`: nothing was changed.
    pub dry_run: bool,
    /// What the call would destroy.
    pub plan: BlastRadius,
    /// The question a person would be asked.
    pub summary: String,
    /// The steps it would take, with their commands and API calls: the
    /// operation's own plan, as `kastell ... --dry-run` prints it.
    pub steps: Vec<String>,
    /// Who confirms the real call: `ask` (the user, through the client),
    /// `approve` (the operator, with `kastell approve`), `plan-token`
    /// (this plan's token) or `off` (nobody: confirmation is off here and
    /// the real call runs at once).
    pub confirm: String,
    /// What to do next to carry the plan out.
    pub next: String,
    /// With `confirm: plan-token` only: pass this as planToken, with the
    /// same arguments, to carry the plan out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_token: Option<String>,
    /// When the token stops working (RFC 3339), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Next steps: none besides `next`.
    #[serde(rename = "suggested_actions")]
    pub suggested_actions: Vec<ops::Suggestion>,
}

fn plan(
    codec: &RequestStateCodec,
    digest: &str,
    (blast, steps): (BlastRadius, Vec<String>),
    route: Route,
    ttl: Duration,
) -> Gate {
    let (token, expires, next) = match route {
        Route::PlanToken => {
            let Some(sealed) = seal(codec, "plan", digest, &blast, ttl) else {
                return refused(
                    ErrorKind::Unexpected,
                    "The plan token could not be sealed",
                    "Try again",
                );
            };
            let expires = chrono::Utc::now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero());
            (
                Some(format!("{PLAN_PREFIX}{sealed}")),
                Some(expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                "Call again with this planToken and the same arguments before it expires",
            )
        }
        Route::Ask => (
            None,
            None,
            "Call again without dryRun: the user is asked to confirm (a plan token does not replace the question)",
        ),
        Route::Approve => (
            None,
            None,
            "Call again without dryRun: the call then waits until the operator approves it with `kastell approve`",
        ),
    };
    planned((blast, steps), route.as_str(), next, token, expires)
}

/// The plan of a dry run where confirmation is off (`confirm: off`): the
/// real call runs without a question, so there is no token to hand out.
fn unconfirmed_plan(blast: (BlastRadius, Vec<String>)) -> Gate {
    planned(
        blast,
        "off",
        "Call again without dryRun: confirmation is off here, so that call runs at once",
        None,
        None,
    )
}

/// A dry run's answer: the plan, who confirms (`confirm`) and what next.
fn planned(
    (blast, steps): (BlastRadius, Vec<String>),
    confirm: &str,
    next: &str,
    plan_token: Option<String>,
    expires_at: Option<String>,
) -> Gate {
    let output = PlanOutput {
        dry_run: true,
        summary: blast.question(),
        steps,
        plan: blast,
        confirm: confirm.to_owned(),
        next: next.to_owned(),
        plan_token,
        expires_at,
        suggested_actions: Vec::new(),
    };
    Gate::Answer(
        tagged_as("plan", &output).into(),
        Some("not run: dry run".into()),
    )
}

fn question_request(blast: &BlastRadius) -> Option<ElicitRequestParams> {
    let schema = rmcp::model::ElicitationSchema::from_type::<Answer>().ok()?;
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: blast.question(),
        requested_schema: schema,
    })
}

fn ask_input_required(
    codec: &RequestStateCodec,
    digest: &str,
    blast: &BlastRadius,
    timeout: Duration,
) -> Gate {
    let (Some(params), Some(state)) = (
        question_request(blast),
        seal(codec, "ask", digest, blast, timeout),
    ) else {
        return refused(
            ErrorKind::Unexpected,
            "The confirmation request could not be built",
            "Try again, or use dryRun and planToken",
        );
    };
    let mut requests = BTreeMap::new();
    requests.insert(
        INPUT_KEY.to_owned(),
        InputRequest::Elicitation(ElicitRequest::new(params)),
    );
    Gate::Answer(
        CallToolResponse::InputRequired(InputRequiredResult::new(Some(requests), Some(state))),
        None,
    )
}

/// The person did not say yes: nothing runs, and the "no" is remembered
/// (so a dry run or plan token cannot get round it) and audited.
fn declined(asked: &Asked<'_>, how: &str) -> Gate {
    let blast = asked.blast;
    let decline = Decline {
        action: blast.action.clone(),
        server: blast.server.clone(),
        digest: asked.digest.to_owned(),
        fingerprint: blast.fingerprint.clone(),
        how: format!("declined by the user: {how}"),
        at: approval::now(),
    };
    if let Err(e) = Declines::in_dir(asked.dir).record(decline) {
        tracing::warn!("the decline is remembered by this kastell-mcp only: {e}");
    }
    refused_noting(
        ErrorKind::Cancelled,
        format!(
            "{} on {} was not confirmed ({how}); nothing was changed",
            blast.action, blast.server
        ),
        "The user's answer is final for this call: a dry run or a plan token will be refused. Ask the user again only if they want it to run",
        Some(format!("declined by the user ({how})")),
    )
}

fn answered(
    codec: &RequestStateCodec,
    state: &str,
    responses: Option<&BTreeMap<String, serde_json::Value>>,
    asked: &Asked<'_>,
) -> Gate {
    if let Err((message, hint)) = open(codec, state, "ask", asked.digest, asked.blast) {
        return refused(ErrorKind::PermissionDenied, message, hint);
    }
    let response = responses.and_then(|r| r.get(INPUT_KEY));
    let Some(response) = response else {
        return declined(asked, "no answer came back");
    };
    #[derive(Deserialize)]
    struct Reply {
        action: ElicitationAction,
        #[serde(default)]
        content: Option<Answer>,
    }
    match serde_json::from_value::<Reply>(response.clone()) {
        Ok(Reply {
            action: ElicitationAction::Accept,
            content: Some(Answer { confirm: true }),
        }) => Gate::Go {
            confirmed: "input-required (user accepted)".into(),
        },
        Ok(Reply {
            action: ElicitationAction::Accept,
            ..
        }) => declined(asked, "the user did not tick confirm"),
        Ok(Reply {
            action: ElicitationAction::Decline,
            ..
        }) => declined(asked, "the user declined"),
        Ok(Reply { .. }) => declined(asked, "the user cancelled"),
        Err(_) => declined(asked, "the answer could not be read"),
    }
}

async fn ask_legacy(rc: &RequestContext<RoleServer>, asked: &Asked<'_>, timeout: Duration) -> Gate {
    match rc
        .peer
        .elicit_with_timeout::<Answer>(asked.blast.question(), Some(timeout))
        .await
    {
        Ok(Some(Answer { confirm: true })) => Gate::Go {
            confirmed: "elicitation (user accepted)".into(),
        },
        Ok(_) => declined(asked, "the user did not tick confirm"),
        Err(ElicitationError::UserDeclined) => declined(asked, "the user declined"),
        Err(ElicitationError::UserCancelled) => declined(asked, "the user cancelled"),
        Err(ElicitationError::Service(ServiceError::Timeout { .. })) => {
            declined(asked, &format!("no answer within {} s", timeout.as_secs()))
        }
        Err(e) => declined(asked, &format!("the question failed: {e}")),
    }
}

#[cfg(test)]
mod tests;
