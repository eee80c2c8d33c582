//! Approval requests: a destructive MCP call that waits for the operator.
//!
//! A request is bound to the call's arguments digest, the blast radius's
//! fingerprint, the server and an expiry. It is `pending` until the
//! operator approves or denies it (`kastell approve ID [--deny]`); an
//! approved request runs once, when the model calls again with the same
//! arguments in the same state before it expires, and is then `used`. The
//! requests live in `KASTELL_DIR/approvals.json` (written atomically, mode
//! 0600, under a lock).

use std::path::Path;
use std::time::Duration;

use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use super::decline::DECLINE_KEPT;
use super::ledger::Ledger;

/// The file the requests are kept in, in `KASTELL_DIR`.
pub(crate) const APPROVALS_FILE: &str = "approvals.json";

/// Seconds a request waits for the operator and an approval stays usable
/// (default [`APPROVAL_TTL`], at most a day).
pub(crate) const APPROVAL_TTL_VAR: &str = "KASTELL_APPROVAL_TTL";

/// How long a request stays valid by default.
pub(crate) const APPROVAL_TTL: Duration = Duration::from_secs(30 * 60);

/// The longest a request may stay valid, whatever the variable says.
pub(crate) const MAX_APPROVAL_TTL: Duration = Duration::from_secs(24 * 3600);

/// The most requests that may wait at once in one kastell directory.
const MAX_PENDING: usize = 20;

/// Letters of a request id: no 0/O or 1/I to misread.
const ID_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const ID_LEN: usize = 8;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    /// Waiting for the operator.
    Pending,
    /// Approved; runs once on the model's next identical call.
    Approved,
    /// Denied by the operator: refused, for good.
    Denied,
    /// Approved and run.
    Used,
    /// Replaced by a newer request after the state changed.
    Superseded,
}

impl Status {
    /// `pending`, `approved`, `denied`, `used` or `superseded`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
            Self::Superseded => "superseded",
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApprovalRequest {
    /// Its id (eight letters and digits).
    pub id: String,
    /// The action (`backup-restore`).
    pub action: String,
    /// The server's name.
    pub server: String,
    /// The digest of the call's arguments.
    pub digest: String,
    /// The blast radius's fingerprint when it was made.
    pub fingerprint: String,
    /// The blast radius, as the question a person is asked.
    pub question: String,
    /// The MCP client that asked (name and version), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// When it stops being valid (Unix seconds).
    pub expires: i64,
    /// Where it stands.
    pub status: Status,
    /// When it was approved, denied, used or superseded (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<i64>,
}

impl ApprovalRequest {
    /// Whether it can no longer be approved or used at `now`.
    pub(crate) fn expired(&self, now: i64) -> bool {
        now >= self.expires
    }

    /// Whether it is still worth keeping at `now`: pending and approved
    /// ones until they expire, denied and used ones for
    /// [`DECLINE_KEPT`] (so a denial stays final and a replay is named).
    fn kept(&self, now: i64) -> bool {
        match self.status {
            Status::Pending | Status::Approved | Status::Superseded => !self.expired(now),
            Status::Denied | Status::Used => {
                now - self.decided.unwrap_or(self.created) < DECLINE_KEPT.as_secs() as i64
            }
        }
    }

    fn set(&mut self, status: Status, now: i64) {
        self.status = status;
        self.decided = Some(now);
    }
}

/// What a new request would be made of: the call and its state.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    /// The action.
    pub action: String,
    /// The server's name.
    pub server: String,
    /// The arguments digest.
    pub digest: String,
    /// The blast radius's fingerprint now.
    pub fingerprint: String,
    /// The question to show the operator.
    pub question: String,
    /// The MCP client, when known.
    pub client: Option<String>,
    /// How long a new request stays valid.
    pub ttl: Duration,
}

/// What the model's call gets, by the state of its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Approved for this state: it runs now, and the request is used.
    Run(ApprovalRequest),
    /// Waiting for the operator (`made`: the request was made by this
    /// call; `replaced`: the older request whose state changed).
    Waiting {
        /// The request.
        request: ApprovalRequest,
        /// Whether this call made it.
        made: bool,
        /// A request for the same call that no longer applies because the
        /// state changed.
        replaced: Option<ApprovalRequest>,
    },
    /// The operator denied it: refused.
    Denied(ApprovalRequest),
    /// It was approved and has run already; `next` waits for a new
    /// approval.
    RanAlready {
        /// The used request.
        used: ApprovalRequest,
        /// The new request.
        next: ApprovalRequest,
    },
}

/// The approval requests of one kastell directory.
#[derive(Debug, Clone)]
pub(crate) struct Approvals {
    ledger: Ledger,
}

/// `text` as a request id (blanks and dashes dropped, upper-cased), or a
/// refusal saying what an id looks like.
pub(crate) fn parse_id(text: &str) -> Result<String> {
    let id: String = text
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if id.len() == ID_LEN && id.bytes().all(|b| ID_ALPHABET.contains(&b)) {
        Ok(id)
    } else {
        Err(Error::invalid_input(format!(
            "{} is not an approval request id",
            crate::state::store::display_safe(text)
        ))
        .with_hint("An id is eight characters of A-Z and 2-9 (never 0, 1, I or O), as kastell-mcp named it; `kastell approve` lists the pending ones"))
    }
}

fn new_id() -> Result<String> {
    let bytes = super::random_bytes(ID_LEN)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()]))
        .collect())
}

impl Approvals {
    /// The requests kept in `dir`.
    pub(crate) fn in_dir(dir: &Path) -> Self {
        Self {
            ledger: Ledger::new(dir, APPROVALS_FILE),
        }
    }

    /// Decides what the model's call `wanted` gets at `now` and records it:
    /// see [`Claim`]. Refuses when more than a few requests already wait
    /// (a model calling in a loop), or when the file cannot be read or
    /// written.
    pub(crate) fn claim(&self, wanted: &Wanted, now: i64) -> Result<Claim> {
        self.ledger.update(|list: &mut Vec<ApprovalRequest>| {
            list.retain(|r| r.kept(now));
            let latest = list
                .iter_mut()
                .rev()
                .find(|r| {
                    r.digest == wanted.digest
                        && r.server == wanted.server
                        && r.status != Status::Superseded
                })
                .filter(|r| r.status != Status::Denied || r.fingerprint == wanted.fingerprint);
            let same_state = |r: &ApprovalRequest| r.fingerprint == wanted.fingerprint;
            let mut replaced = None;
            let mut used = None;
            match latest {
                Some(r) if r.status == Status::Approved && same_state(r) => {
                    r.set(Status::Used, now);
                    return (Ok(Claim::Run(r.clone())), true);
                }
                Some(r) if r.status == Status::Pending && same_state(r) => {
                    let waiting = Claim::Waiting {
                        request: r.clone(),
                        made: false,
                        replaced: None,
                    };
                    return (Ok(waiting), false);
                }
                Some(r) if r.status == Status::Denied => {
                    return (Ok(Claim::Denied(r.clone())), false);
                }
                Some(r) if r.status == Status::Used => {
                    // Kept only to name the replay; the next one is new.
                    used = Some(r.clone());
                    r.set(Status::Superseded, now);
                }
                Some(r) => {
                    r.set(Status::Superseded, now);
                    replaced = Some(r.clone());
                }
                None => {}
            }
            let waiting = list
                .iter()
                .filter(|r| r.status == Status::Pending)
                .count();
            if waiting >= MAX_PENDING {
                let err = Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{waiting} approval requests already wait for the operator; no new one was made"),
                )
                .with_hint("Ask the operator to answer them (`kastell approve` lists them), or wait until they expire");
                return (Err(err), used.is_some() || replaced.is_some());
            }
            let request = match new_id() {
                Ok(id) => ApprovalRequest {
                    id,
                    action: wanted.action.clone(),
                    server: wanted.server.clone(),
                    digest: wanted.digest.clone(),
                    fingerprint: wanted.fingerprint.clone(),
                    question: wanted.question.clone(),
                    client: wanted.client.clone(),
                    created: now,
                    expires: now + wanted.ttl.min(MAX_APPROVAL_TTL).as_secs() as i64,
                    status: Status::Pending,
                    decided: None,
                },
                Err(e) => return (Err(e), false),
            };
            list.push(request.clone());
            let claim = match used {
                Some(used) => Claim::RanAlready {
                    used,
                    next: request,
                },
                None => Claim::Waiting {
                    request,
                    made: true,
                    replaced,
                },
            };
            (Ok(claim), true)
        })?
    }

    /// The requests that wait for the operator at `now`, oldest first.
    pub(crate) fn pending(&self, now: i64) -> Result<Vec<ApprovalRequest>> {
        let list: Vec<ApprovalRequest> = self.ledger.entries()?;
        Ok(list
            .into_iter()
            .filter(|r| r.status == Status::Pending && !r.expired(now))
            .collect())
    }

    /// The request `id` as it stands at `now`, if it can still be
    /// decided. Refuses an unknown id (`NotFound`), and one already
    /// decided or expired (`InvalidState`, saying which).
    pub(crate) fn open(&self, id: &str, now: i64) -> Result<ApprovalRequest> {
        let list: Vec<ApprovalRequest> = self.ledger.entries()?;
        let request = list.into_iter().find(|r| r.id == id);
        decidable(id, request.as_ref(), now).cloned()
    }

    /// Approves (`approve`) or denies request `id` at `now`, if it is
    /// still pending and unexpired; returns it as decided. Refuses as
    /// [`Approvals::open`] does.
    pub(crate) fn decide(&self, id: &str, approve: bool, now: i64) -> Result<ApprovalRequest> {
        self.ledger.update(|list: &mut Vec<ApprovalRequest>| {
            let request = list.iter_mut().find(|r| r.id == id);
            if let Err(e) = decidable(id, request.as_deref(), now) {
                return (Err(e), false);
            }
            let Some(request) = request else {
                return (Err(Error::unexpected("the request vanished")), false);
            };
            request.set(
                if approve {
                    Status::Approved
                } else {
                    Status::Denied
                },
                now,
            );
            (Ok(request.clone()), true)
        })?
    }
}

fn decidable<'a>(
    id: &str,
    request: Option<&'a ApprovalRequest>,
    now: i64,
) -> Result<&'a ApprovalRequest> {
    let Some(request) = request else {
        return Err(
            Error::not_found(format!("No approval request {id}")).with_hint(
                "`kastell approve` lists the pending requests; an old one may have expired",
            ),
        );
    };
    if request.status != Status::Pending {
        return Err(Error::invalid_state(format!(
            "Request {id} is {} already",
            request.status.as_str()
        ))
        .with_hint("Only a pending request can be approved or denied"));
    }
    if request.expired(now) {
        return Err(Error::invalid_state(format!("Request {id} has expired"))
            .with_hint("The model's next identical call makes a new request"));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(digest: &str, fingerprint: &str) -> Wanted {
        Wanted {
            action: "backup-restore".into(),
            server: "web-1".into(),
            digest: digest.into(),
            fingerprint: fingerprint.into(),
            question: "Allow backup-restore on web-1?".into(),
            client: Some("test 1.0".into()),
            ttl: Duration::from_secs(100),
        }
    }

    fn made(claim: Claim) -> ApprovalRequest {
        match claim {
            Claim::Waiting {
                request,
                made: true,
                ..
            } => request,
            other => panic!("no new request: {other:?}"),
        }
    }

    #[test]
    fn a_request_waits_runs_once_when_approved_and_a_replay_needs_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::in_dir(dir.path());
        let first = made(approvals.claim(&wanted("a", "s"), 10).unwrap());
        assert_eq!(parse_id(&first.id.to_lowercase()).unwrap(), first.id);
        assert!(matches!(
            approvals.claim(&wanted("a", "s"), 11).unwrap(),
            Claim::Waiting { made: false, ref request, .. } if request.id == first.id
        ));
        assert_eq!(approvals.pending(11).unwrap(), vec![first.clone()]);
        approvals.decide(&first.id, true, 12).unwrap();
        let err = approvals.decide(&first.id, true, 12).unwrap_err();
        assert!(err.message().contains("approved already"), "{err}");
        assert!(
            matches!(approvals.claim(&wanted("a", "s"), 13).unwrap(), Claim::Run(r) if r.id == first.id)
        );
        match approvals.claim(&wanted("a", "s"), 14).unwrap() {
            Claim::RanAlready { used, next } => {
                assert_eq!(used.id, first.id);
                assert_ne!(next.id, first.id);
                assert_eq!(next.status, Status::Pending);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_denial_is_final_for_its_state_and_a_changed_state_needs_a_new_request() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::in_dir(dir.path());
        let first = made(approvals.claim(&wanted("a", "s1"), 10).unwrap());
        approvals.decide(&first.id, false, 11).unwrap();
        for at in [12, 10 + 3600] {
            assert!(
                matches!(approvals.claim(&wanted("a", "s1"), at).unwrap(), Claim::Denied(r) if r.id == first.id)
            );
        }
        // An approval made for one state does not run in another.
        let second = made(approvals.claim(&wanted("b", "s1"), 20).unwrap());
        approvals.decide(&second.id, true, 21).unwrap();
        match approvals.claim(&wanted("b", "s2"), 22).unwrap() {
            Claim::Waiting {
                made: true,
                replaced: Some(old),
                request,
            } => {
                assert_eq!(old.id, second.id);
                assert_ne!(request.id, second.id);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            approvals.claim(&wanted("b", "s1"), 23).unwrap(),
            Claim::Waiting { made: true, .. }
        ));
    }

    #[test]
    fn expired_unknown_and_malformed_requests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::in_dir(dir.path());
        let first = made(approvals.claim(&wanted("a", "s"), 10).unwrap());
        let err = approvals.decide(&first.id, true, 110).unwrap_err();
        assert!(err.message().contains("expired"), "{err}");
        let err = approvals.open("ZZZZZZZZ", 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let second = made(approvals.claim(&wanted("c", "s"), 200).unwrap());
        let err = approvals.open(&second.id, 300).unwrap_err();
        assert!(err.message().contains("expired"), "{err}");
        assert!(parse_id("O0O0O0O0").is_err());
        assert!(parse_id("short").is_err());
        assert!(parse_id("abcd-efgh").is_ok());
    }

    #[test]
    fn a_model_calling_in_a_loop_cannot_pile_up_requests() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::in_dir(dir.path());
        for n in 0..MAX_PENDING {
            approvals.claim(&wanted(&n.to_string(), "s"), 10).unwrap();
        }
        let err = approvals.claim(&wanted("one-more", "s"), 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    }
}
