//! One line of the audit log: [`AuditEntry`] and the small types in it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::redact::{self, redact_args};

/// Where a request came from, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditSurface {
    /// The `kastell` command line.
    Cli,
    /// The MCP server.
    Mcp,
}

impl AuditSurface {
    /// `cli` or `mcp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Mcp => "mcp",
        }
    }
}

impl From<crate::policy::Surface> for AuditSurface {
    fn from(surface: crate::policy::Surface) -> Self {
        match surface {
            crate::policy::Surface::Cli => Self::Cli,
            crate::policy::Surface::Mcp => Self::Mcp,
        }
    }
}

/// How an audited operation ended (or, for [`Outcome::Started`], that
/// it is about to run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It ran and succeeded.
    Ok,
    /// It ran (or started) and failed.
    Error,
    /// It was refused before it ran (policy, SAFE_MODE, a plan mismatch).
    Refused,
    /// A dry run: it only said what it would do; nothing ran.
    DryRun,
    /// The person asked to confirm it did not (declined, cancelled or did
    /// not answer); nothing ran.
    Declined,
    /// Disruptive or destructive work is about to run: written before it
    /// starts, so the log holds it even when its end cannot be recorded.
    /// Its outcome follows in a later entry.
    Started,
}

impl Outcome {
    /// Every outcome, in the order [`Outcome::as_str`] lists them.
    pub const ALL: [Outcome; 6] = [
        Self::Ok,
        Self::Error,
        Self::Refused,
        Self::DryRun,
        Self::Declined,
        Self::Started,
    ];

    /// `ok`, `error`, `refused`, `dry-run`, `declined` or `started`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
            Self::DryRun => "dry-run",
            Self::Declined => "declined",
            Self::Started => "started",
        }
    }

    /// Parses one of [`Outcome::as_str`]'s names (case-insensitive,
    /// `dryrun` and `dry_run` too); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let wanted = text.trim().to_ascii_lowercase().replace('_', "-");
        let wanted = if wanted == "dryrun" {
            "dry-run".to_owned()
        } else {
            wanted
        };
        Self::ALL.into_iter().find(|o| o.as_str() == wanted)
    }
}

/// The error an operation ended with: its kind (`not_found`, ...) and
/// message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditError {
    /// The error kind's stable name ([`kastell_core::ErrorKind::as_str`]).
    pub kind: String,
    /// The message, cut to [`redact::MAX_STRING_CHARS`] characters.
    pub message: String,
}

impl From<&kastell_core::Error> for AuditError {
    fn from(err: &kastell_core::Error) -> Self {
        Self {
            kind: err.kind().as_str().to_owned(),
            message: redact::cut(&err.to_string()),
        }
    }
}

/// The hash every chain starts from: the `prev` of the very first line.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited action, one JSON object on one line of `audit.jsonl`.
///
/// Build it with [`AuditEntry::new`] and the `with_*` methods; `seq`,
/// `ts` and `prev` are filled in by [`super::AuditLog::append`] (whatever
/// the caller set there is overwritten).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1, continuous across rotated files.
    pub seq: u64,
    /// When the entry was appended (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// Hex SHA-256 of the exact bytes of the previous line (without its
    /// newline); [`GENESIS_PREV`] for the first line of the chain.
    pub prev: String,
    /// Where the request came from.
    pub surface: AuditSurface,
    /// The client that asked (an MCP client's name and version), if known.
    #[serde(default)]
    pub client: Option<String>,
    /// The action (`backup-restore`, `snapshot-create`, ...).
    pub op: String,
    /// The server concerned, when there is one.
    #[serde(default)]
    pub server: Option<String>,
    /// The request's arguments, redacted ([`redact_args`]).
    #[serde(default)]
    pub args: serde_json::Value,
    /// A short fingerprint of the plan token the request carried
    /// ([`plan_token_fingerprint`]), never the token itself.
    #[serde(default)]
    pub plan_token: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The error, when the outcome is `error` or `refused`.
    #[serde(default)]
    pub error: Option<AuditError>,
    /// The ids the operation produced or touched (`backup_id`,
    /// `snapshot_id`, ...).
    #[serde(default)]
    pub ids: BTreeMap<String, String>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
}

impl AuditEntry {
    /// An entry for `op` from `surface` that ended with `outcome`, with no
    /// client, server, arguments, plan token, error or ids, and a duration
    /// of zero. Add those with the `with_*` methods.
    pub fn new(surface: AuditSurface, op: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            seq: 0,
            ts: String::new(),
            prev: String::new(),
            surface,
            client: None,
            op: op.into(),
            server: None,
            args: serde_json::Value::Null,
            plan_token: None,
            outcome,
            error: None,
            ids: BTreeMap::new(),
            duration_ms: 0,
        }
    }

    /// The client that made the request (`claude-code 1.2.0`).
    pub fn with_client(mut self, client: impl Into<String>) -> Self {
        self.client = Some(redact::cut(&client.into()));
        self
    }

    /// The server concerned.
    pub fn with_server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// The request's arguments; they are passed through [`redact_args`]
    /// here, so a secret never reaches the log.
    pub fn with_args(mut self, args: serde_json::Value) -> Self {
        self.args = redact_args(args);
        self
    }

    /// The plan token the request carried: only its
    /// [`plan_token_fingerprint`] is kept.
    pub fn with_plan_token(mut self, token: &str) -> Self {
        self.plan_token = Some(plan_token_fingerprint(token));
        self
    }

    /// The error the operation ended with (the outcome is left as given).
    pub fn with_error(mut self, err: &kastell_core::Error) -> Self {
        self.error = Some(AuditError::from(err));
        self
    }

    /// An id the operation produced or touched (`backup_id`, ...).
    pub fn with_id(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.ids.insert(name.into(), value.into());
        self
    }

    /// How long the operation took (saturating at `u64::MAX` ms).
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// A short, stable fingerprint of a plan token for the log: `sha256:`
/// and the first 12 hex digits of the token's SHA-256. Enough to match a
/// plan with its execution, useless for replaying it.
pub fn plan_token_fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_builder_redacts_and_fingerprints() {
        let err = kastell_core::Error::not_found("no backup b-1");
        let entry = AuditEntry::new(AuditSurface::Mcp, "backup-restore", Outcome::Error)
            .with_client("claude-code 1.2.0")
            .with_server("web-1")
            .with_args(json!({"backup_id": "b-1", "password": "hunter2"}))
            .with_plan_token("plan-0123456789abcdef-secret")
            .with_error(&err)
            .with_id("backup_id", "b-1")
            .with_duration(Duration::from_millis(1234));
        let text = serde_json::to_string(&entry).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("plan-0123456789abcdef-secret"), "{text}");
        let token = entry.plan_token.as_deref().unwrap();
        assert!(token.starts_with("sha256:") && token.len() == 19, "{token}");
        assert_eq!(entry.error.as_ref().unwrap().kind, "not_found");
        assert_eq!(entry.ids["backup_id"], "b-1");
        assert_eq!(entry.duration_ms, 1234);
        let back: AuditEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, entry);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["surface"], "mcp");
        assert_eq!(value["outcome"], "error");
    }

    #[test]
    fn outcomes_parse() {
        assert_eq!(Outcome::parse(" Refused "), Some(Outcome::Refused));
        assert_eq!(Outcome::parse("ok"), Some(Outcome::Ok));
        assert_eq!(Outcome::parse("fine"), None);
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            let json = serde_json::to_value(outcome).unwrap();
            assert_eq!(json, outcome.as_str());
        }
        assert_eq!(Outcome::parse("DryRun"), Some(Outcome::DryRun));
    }
}
