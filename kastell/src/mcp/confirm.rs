//! Confirmation of destructive calls (backup-restore, snapshot-delete,
//! snapshot-restore) that the model cannot give itself.
//!
//! Once the policy admits the call, kastell works out its blast radius
//! ([`ops::blast_radius`]) and then, by what the client can do:
//!
//! 1. **2026-07-28 clients that can elicit**: the call returns an
//!    input-required result asking the person (the question is the blast
//!    radius), with a `requestState` sealed by HMAC (`RequestStateCodec`)
//!    and bound to the exact arguments and the blast radius's fingerprint.
//!    The retry runs only with the person's `accept` and an untampered,
//!    unexpired, unused state.
//! 2. **Earlier clients that declared elicitation**: an `elicitation/create`
//!    request with the same question, waiting `KASTELL_CONFIRM_TIMEOUT`
//!    seconds (default 120).
//! 3. **Clients that cannot ask**: `dryRun: true` returns the plan and a
//!    `planToken` sealed the same way and valid for five minutes (`KASTELL_PLAN_TTL` seconds); the call
//!    runs only with that token, the same arguments and the same state.
//!
//! A decline, a cancel or no answer in time aborts with nothing changed. A
//! token or state is used once: replays are refused, as are tokens for
//! other arguments or servers, altered ones and those from another
//! kastell-mcp process (each process seals with a random key of its own).
//! `KASTELL_CONFIRM=off` skips all of this (the original tool's
//! behaviour: SAFE_MODE alone decides).

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use kastell_core::{Error, ErrorKind};
use rmcp::model::{
    CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitationAction, InputRequest,
    InputRequiredResult, JsonObject, RequestStateCodec, SealOptions,
};
use rmcp::service::{ElicitationError, RequestContext, ServiceError};
use rmcp::{RoleServer, model::ProtocolVersion};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::call::Call;
use super::render::{failure, success};
use crate::ops::{self, BlastRadius, OpError};
use crate::policy::Category;

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
const USED_KEPT: Duration = Duration::from_secs(2 * 3600);
/// The key of kastell's one input request in an input-required result.
const INPUT_KEY: &str = "confirm";
const PLAN_PREFIX: &str = "kpt1.";

/// What a person answers.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub(crate) struct Answer {
    /// Tick to let it run; anything else changes nothing.
    pub(crate) confirm: bool,
}
rmcp::elicit_safe!(Answer);

/// What a sealed token or request state carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Sealed {
    /// Single-use nonce.
    n: String,
    /// `plan` or `ask`.
    k: String,
    /// Digest of the arguments.
    a: String,
    /// The blast radius's fingerprint.
    s: String,
    /// The server's name.
    v: String,
}

struct Seals {
    codec: Option<RequestStateCodec>,
    used: Mutex<HashMap<String, Instant>>,
}

static SEALS: LazyLock<Seals> = LazyLock::new(|| Seals {
    codec: random_key().and_then(|k| RequestStateCodec::try_new(k).ok()),
    used: Mutex::new(HashMap::new()),
});

fn random_key() -> Option<Vec<u8>> {
    use std::io::Read;
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .ok()
        .map(|()| key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn nonce() -> String {
    random_key()
        .map(|k| hex(&k[..16]))
        .unwrap_or_else(|| format!("{:?}", Instant::now()))
}

/// Hex SHA-256 (first 32 digits) of `tool` and `arguments` without
/// `dryRun` and `planToken`, keys sorted: what a token is bound to.
pub(crate) fn arguments_digest(tool: &str, arguments: &JsonObject) -> String {
    let sorted: BTreeMap<&String, &serde_json::Value> = arguments
        .iter()
        .filter(|(k, _)| k.as_str() != "dryRun" && k.as_str() != "planToken")
        .collect();
    let mut hash = Sha256::new();
    hash.update(tool.as_bytes());
    hash.update([0]);
    hash.update(serde_json::to_vec(&sorted).unwrap_or_default());
    hex(&hash.finalize()[..16])
}

/// What the gate decided.
pub(crate) enum Gate {
    /// Run the call; `token` is a short fingerprint of the plan token or
    /// request state that confirmed it (for the audit log).
    Go {
        /// How it was confirmed (`elicitation`, `input-required`,
        /// `plan-token <fp>`, `not asked`).
        confirmed: String,
    },
    /// Answer with this instead of running.
    Answer(CallToolResponse),
}

fn refused(kind: ErrorKind, message: impl Into<String>, hint: &str) -> Gate {
    Gate::Answer(
        failure(OpError::from(
            Error::new(kind, message).with_hint(hint.to_owned()),
        ))
        .into(),
    )
}

/// The request's parts the gate reads.
pub(crate) struct Retry<'a> {
    /// `inputResponses` of a 2026-07-28 retry.
    pub(crate) input_responses: Option<&'a BTreeMap<String, serde_json::Value>>,
    /// `requestState` of a 2026-07-28 retry.
    pub(crate) request_state: Option<&'a str>,
}

/// Decides whether `call` (made with the raw `arguments`) may run now.
pub(crate) async fn gate(
    ctx: &ops::Context,
    call: &Call,
    arguments: &JsonObject,
    retry: Retry<'_>,
    rc: &RequestContext<RoleServer>,
) -> Gate {
    let (tool, _, op) = call.action().parts();
    if op.rule().category != Category::Destructive {
        return Gate::Go {
            confirmed: "not needed".into(),
        };
    }
    if ctx
        .env
        .get(CONFIRM_VAR)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("off"))
    {
        return Gate::Go {
            confirmed: format!("not asked ({CONFIRM_VAR}=off)"),
        };
    }
    let Call::Backup(args) = call else {
        return Gate::Go {
            confirmed: "not needed".into(),
        };
    };
    let target = args
        .backup_id
        .as_deref()
        .or(args.snapshot_id.as_deref())
        .filter(|t| !t.trim().is_empty());
    let Some(target) = target else {
        // Without a backup or snapshot id the operation refuses by itself,
        // naming the missing argument: nothing to confirm.
        return Gate::Go {
            confirmed: "not needed (no target)".into(),
        };
    };
    let server = super::params::server(&args.server);
    let blast = match ops::blast_radius(ctx, op, server, Some(target), args.repo.as_deref()).await {
        Ok(b) => b,
        Err(e) => return Gate::Answer(failure(e).into()),
    };
    let digest = arguments_digest(tool, arguments);
    let Some(codec) = SEALS.codec.as_ref() else {
        return refused(
            ErrorKind::Unavailable,
            "kastell-mcp could not make a confirmation key (no /dev/urandom)",
            "Run kastell-mcp where /dev/urandom is readable, or confirm on the command line",
        );
    };
    // A dry run never changes anything, whatever else the call carries.
    if args.dry_run {
        return plan(codec, &digest, blast, seconds(ctx, PLAN_TTL_VAR, PLAN_TTL));
    }
    if let Some(token) = args.plan_token.as_deref() {
        return apply_plan(codec, token, &digest, &blast);
    }
    if let Some(state) = retry.request_state {
        return answered(codec, state, retry.input_responses, &digest, &blast);
    }
    let modern = rc
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    let can_elicit = rc
        .client_capabilities()
        .is_some_and(|c| c.elicitation.is_some());
    if modern && can_elicit {
        return ask_input_required(codec, &digest, &blast, confirm_timeout(ctx));
    }
    if !modern && can_elicit {
        return ask_legacy(rc, &blast, confirm_timeout(ctx)).await;
    }
    refused(
        ErrorKind::PermissionDenied,
        format!(
            "{} on {} needs a confirmation, and this client cannot ask its user",
            blast.action, blast.server
        ),
        "Call again with dryRun: true to see the plan and get a planToken, then call with that planToken (valid 5 minutes)",
    )
}

fn confirm_timeout(ctx: &ops::Context) -> Duration {
    seconds(ctx, CONFIRM_TIMEOUT_VAR, DEFAULT_TIMEOUT)
}

/// Whole seconds from `var`, else `default` (unset, zero or unreadable).
fn seconds(ctx: &ops::Context, var: &str, default: Duration) -> Duration {
    ctx.env
        .get(var)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(default)
        .min(MAX_TTL)
}

fn seal(
    codec: &RequestStateCodec,
    kind: &str,
    digest: &str,
    blast: &BlastRadius,
    ttl: Duration,
) -> Option<String> {
    let sealed = Sealed {
        n: nonce(),
        k: kind.to_owned(),
        a: digest.to_owned(),
        s: blast.fingerprint[..32.min(blast.fingerprint.len())].to_owned(),
        v: blast.server.clone(),
    };
    codec
        .seal_json_with(&sealed, &SealOptions::new().ttl(ttl))
        .ok()
}

/// Opens `value` (a token or a request state of `kind`) and checks it is
/// for these arguments, this server and this state, and unused; marks it
/// used. The error says which check failed.
fn open(
    codec: &RequestStateCodec,
    value: &str,
    kind: &str,
    digest: &str,
    blast: &BlastRadius,
) -> Result<Sealed, (String, &'static str)> {
    use rmcp::model::RequestStateError as E;
    let sealed: Sealed = codec.open_json::<Sealed>(value).map_err(|e| match e {
        E::Expired => (
            "The confirmation has expired".to_owned(),
            "Ask again: call with dryRun: true for a new plan",
        ),
        _ => (
            "The confirmation is not one this kastell-mcp issued (altered, or from another process)".to_owned(),
            "Call with dryRun: true for a new plan and use its planToken unchanged",
        ),
    })?;
    let mut used = SEALS.used.lock().map_err(|_| {
        (
            "The confirmation store is unusable".to_owned(),
            "Restart kastell-mcp",
        )
    })?;
    let now = Instant::now();
    used.retain(|_, at| now.duration_since(*at) < USED_KEPT);
    if used.contains_key(&sealed.n) {
        return Err((
            "The confirmation was already used".into(),
            "Each planToken runs once; make a new plan with dryRun: true",
        ));
    }
    let new_plan = "Call with dryRun: true for a new plan";
    if sealed.k != kind {
        return Err(("The confirmation is of the wrong kind".into(), new_plan));
    }
    if sealed.v != blast.server {
        return Err((
            format!(
                "The confirmation was made for server {}, not {}",
                sealed.v, blast.server
            ),
            new_plan,
        ));
    }
    if sealed.a != digest {
        return Err((
            "The confirmation was made for other arguments".into(),
            "Call with exactly the arguments of the plan, or make a new plan",
        ));
    }
    if !blast.fingerprint.starts_with(&sealed.s) {
        return Err((
            format!(
                "The state of {} changed since the confirmation (a newer backup, another address, or the backup or snapshot changed)",
                blast.server
            ),
            "Check the new state, then make a new plan with dryRun: true",
        ));
    }
    used.insert(sealed.n.clone(), now);
    Ok(sealed)
}

/// A token's short fingerprint for logs: never the token itself.
pub(crate) fn token_fingerprint(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes())[..6])
}

fn apply_plan(codec: &RequestStateCodec, token: &str, digest: &str, blast: &BlastRadius) -> Gate {
    let Some(body) = token.strip_prefix(PLAN_PREFIX) else {
        return refused(
            ErrorKind::PermissionDenied,
            "planToken is not a kastell plan token",
            "Use the planToken a dryRun returned, unchanged",
        );
    };
    match open(codec, body, "plan", digest, blast) {
        Ok(_) => Gate::Go {
            confirmed: format!("plan-token {}", token_fingerprint(token)),
        },
        Err((message, hint)) => refused(ErrorKind::PermissionDenied, message, hint),
    }
}

/// The plan a dry run returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanOutput {
    /// Always `true`: nothing was changed.
    pub dry_run: bool,
    /// What the call would destroy.
    pub plan: BlastRadius,
    /// The question a person would have been asked.
    pub summary: String,
    /// Pass this as planToken, with the same arguments, to carry the plan
    /// out.
    pub plan_token: String,
    /// When the token stops working (RFC 3339).
    pub expires_at: String,
}

fn plan(codec: &RequestStateCodec, digest: &str, blast: BlastRadius, ttl: Duration) -> Gate {
    let Some(sealed) = seal(codec, "plan", digest, &blast, ttl) else {
        return refused(
            ErrorKind::Unexpected,
            "The plan token could not be sealed",
            "Try again",
        );
    };
    let expires =
        chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::zero());
    let output = super::output::BackupOutput::Plan(PlanOutput {
        dry_run: true,
        summary: blast.question(),
        plan: blast,
        plan_token: format!("{PLAN_PREFIX}{sealed}"),
        expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    Gate::Answer(success(&output).into())
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
    Gate::Answer(CallToolResponse::InputRequired(InputRequiredResult::new(
        Some(requests),
        Some(state),
    )))
}

fn declined(blast: &BlastRadius, how: &str) -> Gate {
    refused(
        ErrorKind::Cancelled,
        format!(
            "{} on {} was not confirmed ({how}); nothing was changed",
            blast.action, blast.server
        ),
        "Ask the user again if they want it to run",
    )
}

fn answered(
    codec: &RequestStateCodec,
    state: &str,
    responses: Option<&BTreeMap<String, serde_json::Value>>,
    digest: &str,
    blast: &BlastRadius,
) -> Gate {
    if let Err((message, hint)) = open(codec, state, "ask", digest, blast) {
        return refused(ErrorKind::PermissionDenied, message, hint);
    }
    let response = responses.and_then(|r| r.get(INPUT_KEY));
    let Some(response) = response else {
        return declined(blast, "no answer came back");
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
        }) => declined(blast, "the user did not tick confirm"),
        Ok(Reply {
            action: ElicitationAction::Decline,
            ..
        }) => declined(blast, "the user declined"),
        Ok(Reply { .. }) => declined(blast, "the user cancelled"),
        Err(_) => declined(blast, "the answer could not be read"),
    }
}

async fn ask_legacy(
    rc: &RequestContext<RoleServer>,
    blast: &BlastRadius,
    timeout: Duration,
) -> Gate {
    match rc
        .peer
        .elicit_with_timeout::<Answer>(blast.question(), Some(timeout))
        .await
    {
        Ok(Some(Answer { confirm: true })) => Gate::Go {
            confirmed: "elicitation (user accepted)".into(),
        },
        Ok(_) => declined(blast, "the user did not tick confirm"),
        Err(ElicitationError::UserDeclined) => declined(blast, "the user declined"),
        Err(ElicitationError::UserCancelled) => declined(blast, "the user cancelled"),
        Err(ElicitationError::Service(ServiceError::Timeout { .. })) => {
            declined(blast, &format!("no answer within {} s", timeout.as_secs()))
        }
        Err(e) => declined(blast, &format!("the question failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blast(server: &str, fingerprint: &str) -> BlastRadius {
        BlastRadius {
            action: "backup-restore".into(),
            server: server.into(),
            ip: "203.0.113.10".into(),
            platform: "bare".into(),
            provider: None,
            overwrites: "files".into(),
            target: None,
            newest_backup: None,
            snapshot_cost: None,
            fingerprint: fingerprint.into(),
        }
    }

    fn codec() -> RequestStateCodec {
        RequestStateCodec::try_new(vec![7u8; 32]).unwrap()
    }

    fn token(codec: &RequestStateCodec, digest: &str, b: &BlastRadius, ttl: Duration) -> String {
        seal(codec, "plan", digest, b, ttl).unwrap()
    }

    #[test]
    fn a_token_opens_once_for_its_arguments_server_and_state() {
        let codec = codec();
        let b = blast("web-1", &"ab".repeat(32));
        let t = token(&codec, "args-1", &b, PLAN_TTL);
        assert!(open(&codec, &t, "plan", "args-1", &b).is_ok());
        let (replayed, _) = open(&codec, &t, "plan", "args-1", &b).unwrap_err();
        assert!(replayed.contains("already used"), "{replayed}");
    }

    #[test]
    fn altered_foreign_expired_and_mismatched_tokens_are_refused() {
        let codec = codec();
        let b = blast("web-1", &"ab".repeat(32));
        let t = token(&codec, "args-1", &b, PLAN_TTL);
        let mut altered = t.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        let (why, _) = open(&codec, &altered, "plan", "args-1", &b).unwrap_err();
        assert!(why.contains("not one this kastell-mcp issued"), "{why}");
        let other = RequestStateCodec::try_new(vec![9u8; 32]).unwrap();
        let (why, _) = open(&other, &t, "plan", "args-1", &b).unwrap_err();
        assert!(why.contains("not one this kastell-mcp issued"), "{why}");
        let (why, _) = open(&codec, &t, "plan", "args-2", &b).unwrap_err();
        assert!(why.contains("other arguments"), "{why}");
        let (why, _) = open(
            &codec,
            &t,
            "plan",
            "args-1",
            &blast("web-2", &"ab".repeat(32)),
        )
        .unwrap_err();
        assert!(why.contains("made for server web-1, not web-2"), "{why}");
        let (why, _) = open(
            &codec,
            &t,
            "plan",
            "args-1",
            &blast("web-1", &"cd".repeat(32)),
        )
        .unwrap_err();
        assert!(why.contains("changed since"), "{why}");
        let (why, _) = open(&codec, &t, "ask", "args-1", &b).unwrap_err();
        assert!(why.contains("wrong kind"), "{why}");
        let short = token(&codec, "args-1", &b, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(20));
        let (why, _) = open(&codec, &short, "plan", "args-1", &b).unwrap_err();
        assert!(why.contains("expired"), "{why}");
    }

    #[test]
    fn the_arguments_digest_ignores_order_and_the_confirmation_fields() {
        let a: JsonObject =
            serde_json::from_str(r#"{"action":"backup-restore","server":"web-1","backupId":"b1"}"#)
                .unwrap();
        let b: JsonObject = serde_json::from_str(
            r#"{"backupId":"b1","planToken":"x","server":"web-1","dryRun":true,"action":"backup-restore"}"#,
        )
        .unwrap();
        assert_eq!(
            arguments_digest("server_backup", &a),
            arguments_digest("server_backup", &b)
        );
        let c: JsonObject =
            serde_json::from_str(r#"{"action":"backup-restore","server":"web-2","backupId":"b1"}"#)
                .unwrap();
        assert_ne!(
            arguments_digest("server_backup", &a),
            arguments_digest("server_backup", &c)
        );
    }
}
