//! The plan-token logic: tokens and request states sealed (HMAC, by
//! rmcp's `RequestStateCodec` with a random key of this process) and bound
//! to the arguments' digest, the server and the blast radius's
//! fingerprint; opened at most once, each failed check named.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use kastell_core::ErrorKind;
use rmcp::model::{JsonObject, RequestStateCodec, SealOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Gate, refused};
use crate::ops::BlastRadius;
use crate::state::approval;

/// How long a used nonce is remembered: longer than any token lives.
const USED_KEPT: Duration = Duration::from_secs(2 * 3600);
/// What every plan token starts with.
pub(super) const PLAN_PREFIX: &str = "kpt1.";

/// What a sealed token or request state carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Sealed {
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

/// This process's sealing key and the nonces already used.
pub(super) struct Seals {
    pub(super) codec: Option<RequestStateCodec>,
    used: Mutex<HashMap<String, Instant>>,
}

/// The seals of this process.
pub(super) static SEALS: LazyLock<Seals> = LazyLock::new(|| Seals {
    codec: random_key().and_then(|k| RequestStateCodec::try_new(k).ok()),
    used: Mutex::new(HashMap::new()),
});

fn random_key() -> Option<Vec<u8>> {
    approval::random_bytes(32).ok()
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
/// `dryRun`, `planToken` and those set to `null` (absent), keys sorted:
/// what a token is bound to.
pub(crate) fn arguments_digest(tool: &str, arguments: &JsonObject) -> String {
    let sorted: BTreeMap<&String, &serde_json::Value> = arguments
        .iter()
        .filter(|(k, v)| k.as_str() != "dryRun" && k.as_str() != "planToken" && !v.is_null())
        .collect();
    let mut hash = Sha256::new();
    hash.update(tool.as_bytes());
    hash.update([0]);
    hash.update(serde_json::to_vec(&sorted).unwrap_or_default());
    hex(&hash.finalize()[..16])
}

/// `kind` (`plan`, `ask`) sealed for `digest` and `blast`, valid `ttl`.
pub(super) fn seal(
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
pub(super) fn open(
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
fn token_fingerprint(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes())[..6])
}

/// Runs the call when `token` is a valid plan token for it, else refuses
/// saying why.
pub(super) fn apply_plan(
    codec: &RequestStateCodec,
    token: &str,
    digest: &str,
    blast: &BlastRadius,
) -> Gate {
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
