//! The `approve` route of the confirmation gate ([`super::confirm`]): a
//! destructive call that waits for the operator.
//!
//! The first call records a pending request ([`crate::state::approval::Approvals`])
//! bound to the arguments, the state and the server, and answers, without
//! an error, that it waits: the model learns the request's id and nothing
//! it could approve with. The operator answers with `kastell approve ID`
//! at a terminal (or `--deny`). The model's next identical call then runs
//! once if approved and the state is unchanged; a denied request stays
//! refused, a pending one is still waiting, and a replay after it ran is
//! refused and makes a new request.

use std::time::Duration;

use kastell_core::ErrorKind;
use rmcp::RoleServer;
use rmcp::service::RequestContext;
use schemars::JsonSchema;
use serde::Serialize;

use super::confirm::{Asked, Gate, refused_noting};
use super::render::{failure, tagged_as};
use crate::ops::{OpError, Suggestion};
use crate::state::approval::{self, ApprovalRequest, Approvals, Claim, Wanted};

/// A call that waits for the operator's approval; nothing was changed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalPending {
    /// Always `waiting`: nothing ran.
    pub status: String,
    /// The request's id, for the operator's `kastell approve ID`.
    pub request: String,
    /// The operation that waits (`backup-restore`).
    pub operation: String,
    /// The server it would run on.
    pub server: String,
    /// What to tell the user.
    pub message: String,
    /// When the request expires unanswered (RFC 3339).
    pub expires_at: String,
    /// Why an earlier request for the same call no longer applies, when
    /// one was replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Next steps: none until the operator answers (the same call again
    /// then).
    #[serde(rename = "suggested_actions")]
    pub suggested_actions: Vec<Suggestion>,
}

fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn waiting(request: &ApprovalRequest, made: bool, replaced: Option<&ApprovalRequest>) -> Gate {
    let id = &request.id;
    let still = if made { "" } else { "still " };
    let output = ApprovalPending {
        status: "waiting".into(),
        request: id.clone(),
        operation: request.action.clone(),
        server: request.server.clone(),
        message: format!(
            "{still}waiting for approval: nothing was changed; the operator approves request {id} with `kastell approve {id}`, then call again with the same arguments"
        ),
        expires_at: rfc3339(request.expires),
        note: replaced.map(|old| {
            format!(
                "the state of {} changed since request {}, which no longer applies",
                old.server, old.id
            )
        }),
        suggested_actions: Vec::new(),
    };
    Gate::Answer(
        tagged_as("approval-pending", &output).into(),
        Some(format!("not run: waiting for approval (request {id})")),
    )
}

/// What the call gets on the approve route: see the module's doc.
pub(super) fn gate(rc: &RequestContext<RoleServer>, asked: &Asked<'_>, ttl: Duration) -> Gate {
    let blast = asked.blast;
    let wanted = Wanted {
        action: blast.action.clone(),
        server: blast.server.clone(),
        digest: asked.digest.to_owned(),
        fingerprint: blast.fingerprint.clone(),
        question: blast.question(),
        client: rc
            .client_info()
            .map(|i| format!("{} {}", i.name, i.version)),
        ttl,
    };
    let claim = match Approvals::in_dir(asked.dir).claim(&wanted, approval::now()) {
        Ok(claim) => claim,
        Err(e) => return Gate::Answer(failure(OpError::from(e)).into(), None),
    };
    match claim {
        Claim::Run(request) => Gate::Go {
            confirmed: format!("approved by the operator (request {})", request.id),
        },
        Claim::Waiting {
            request,
            made,
            replaced,
        } => waiting(&request, made, replaced.as_ref()),
        Claim::Denied(request) => refused_noting(
            ErrorKind::PermissionDenied,
            format!(
                "The operator denied request {} ({} on {}); it stays refused. Nothing was changed",
                request.id, request.action, request.server
            ),
            "Do not retry this call; tell the user the operator refused it",
            Some(format!(
                "refused: denied by the operator (request {})",
                request.id
            )),
        ),
        Claim::RanAlready { used, next } => refused_noting(
            ErrorKind::PermissionDenied,
            format!(
                "Request {} was approved once and has already run; nothing ran now",
                used.id
            ),
            &format!(
                "Running it again needs a new approval: the operator approves request {} with `kastell approve {}`",
                next.id, next.id
            ),
            Some(format!(
                "refused: replay of request {} (new request {})",
                used.id, next.id
            )),
        ),
    }
}
