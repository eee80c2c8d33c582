//! Recording one operation call, the same way from the CLI and MCP: the
//! outcome read off the operation's JSON (a success, an error, or a
//! refusal: the policy's `permission_denied`, or a confirmation that did
//! not come), the backup and snapshot ids it names, and how long it took.
//!
//! Recording an outcome never changes what the caller gets: a log that
//! cannot be written is reported on stderr (the operation already
//! happened), saying whether the entry or only the anchor failed, and
//! `kastell audit verify` then shows where the chain stops. Disruptive and
//! destructive work was recorded as started before it ran
//! ([`super::record_start`]), so the log holds it either way.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{AuditEntry, AuditError, AuditLog, AuditSurface, Outcome};
use crate::env::Env;

/// The ids an operation's result names, under the names they get in the
/// log: `backupId`, `safetyBackupId` and `snapshotId` at the top level, a
/// snapshot's `id` under `snapshot`, and a repository's `snapshotId` under
/// `repository` (as `repoSnapshotId`).
fn ids(value: &Value) -> Vec<(&'static str, String)> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut found = Vec::new();
    for (key, name) in [
        ("backupId", "backup_id"),
        ("safetyBackupId", "safety_backup_id"),
        ("snapshotId", "snapshot_id"),
    ] {
        if let Some(id) = value.get(key).and_then(text) {
            found.push((name, id));
        }
    }
    if let Some(id) = value.pointer("/snapshot/id").and_then(text) {
        found.push(("snapshot_id", id));
    }
    if let Some(id) = value.pointer("/repository/snapshotId").and_then(text) {
        found.push(("repo_snapshot_id", id));
    }
    found
}

/// What one call was and how it ended.
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    /// Where it came from.
    pub surface: AuditSurface,
    /// The MCP client's name and version, when known.
    pub client: Option<String>,
    /// The action (`backup-restore`).
    pub op: &'a str,
    /// The server it named or resolved to.
    pub server: Option<String>,
    /// Its arguments (redacted before they are written).
    pub args: Value,
    /// How a destructive call was confirmed (`plan-token 1a2b…`,
    /// `elicitation (user accepted)`), when it was.
    pub confirmed: Option<String>,
    /// Its result: the JSON it returned, and whether that is a failure.
    pub result: &'a Value,
    /// Whether `result` is a failure (`{error, hint, kind}`).
    pub failed: bool,
    /// How long it took.
    pub duration: Duration,
}

impl CallRecord<'_> {
    /// How the call ended: a dry run's plan (`dryRun: true` in the
    /// result), a success, a policy refusal (`permission_denied`), a
    /// confirmation that did not come (`cancelled`, "was not confirmed"),
    /// or an error.
    pub fn outcome(&self) -> Outcome {
        match (self.failed, self.result["kind"].as_str()) {
            (false, _) if self.result.get("dryRun") == Some(&Value::Bool(true)) => Outcome::DryRun,
            (false, _) => Outcome::Ok,
            (true, Some("permission_denied")) => Outcome::Refused,
            (true, Some("cancelled"))
                if self.result["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("was not confirmed")) =>
            {
                Outcome::Declined
            }
            (true, _) => Outcome::Error,
        }
    }

    /// The entry this call is logged as.
    pub fn entry(&self) -> AuditEntry {
        let server = self
            .result
            .get("server")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.server.clone());
        let mut entry = self
            .entry_as(self.outcome(), server)
            .with_duration(self.duration);
        if self.failed {
            entry.error = Some(AuditError {
                kind: self.result["kind"]
                    .as_str()
                    .unwrap_or("unexpected")
                    .to_owned(),
                message: super::cut(self.result["error"].as_str().unwrap_or("")),
            });
        } else {
            for (name, id) in ids(self.result) {
                entry = entry.with_id(name, id);
            }
        }
        entry
    }

    /// The entry's common part: who asked, what, on which server, how it
    /// was confirmed, with `outcome`.
    fn entry_as(&self, outcome: Outcome, server: Option<String>) -> AuditEntry {
        let mut entry =
            AuditEntry::new(self.surface, self.op, outcome).with_args(self.args.clone());
        if let Some(client) = &self.client {
            entry = entry.with_client(client.clone());
        }
        if let Some(server) = server {
            entry = entry.with_server(server);
        }
        if let Some(confirmed) = &self.confirmed {
            entry.plan_token = Some(super::cut(confirmed));
        }
        entry
    }

    /// The [`Outcome::Started`] entry written before the call's work runs
    /// (its result is not known yet and not read).
    pub fn started_entry(&self) -> AuditEntry {
        self.entry_as(Outcome::Started, self.server.clone())
    }

    /// Appends this call to the audit log in `dir` (settings from `env`);
    /// a failure is written to stderr, never returned, saying exactly
    /// what failed: the entry (the call is not in the log) or only the
    /// anchor (the call is in the log; the anchor is behind).
    pub fn append_to(&self, dir: &Path, env: &Env) {
        let appended = AuditLog::for_env(dir, env).and_then(|log| log.append(self.entry()));
        if let Err(e) = appended {
            tracing::warn!(
                "{} ({}): {e}{}",
                self.op,
                self.outcome().as_str(),
                e.hint().map(|h| format!(" ({h})")).unwrap_or_default()
            );
        }
    }
}

/// The failure JSON an error is recorded as (`{error, kind}`), for
/// commands whose errors are not already an operation's payload.
pub fn error_json(err: &kastell_core::Error) -> Value {
    serde_json::json!({"error": err.to_string(), "kind": err.kind().as_str()})
}

/// Appends the `started` entry of a command line call of `op` on
/// `server` (the policy already applied) to the log in `dir`, before it
/// runs; refuses, and the caller must not run it, when that fails (see
/// [`super::append_start`]).
pub fn start_cli(
    dir: &Path,
    env: &Env,
    op: crate::policy::OpId,
    server: &str,
    args: Value,
) -> kastell_core::Result<()> {
    let call = CallRecord {
        surface: AuditSurface::Cli,
        client: None,
        op: op.as_str(),
        server: Some(server.to_owned()),
        args,
        confirmed: None,
        result: &Value::Null,
        failed: false,
        duration: Duration::ZERO,
    };
    super::append_start(dir, env, op, &call)
}

/// Appends one command line call of `op` on `server` to the log in `dir`:
/// `Ok` with its result, or the error it ended with.
pub fn record_cli(
    dir: &Path,
    env: &Env,
    op: &str,
    server: &str,
    args: Value,
    outcome: std::result::Result<Value, &kastell_core::Error>,
    duration: Duration,
) {
    let (result, failed) = match outcome {
        Ok(value) => (value, false),
        Err(e) => (error_json(e), true),
    };
    CallRecord {
        surface: AuditSurface::Cli,
        client: None,
        op,
        server: Some(server.to_owned()),
        args,
        confirmed: None,
        result: &result,
        failed,
        duration,
    }
    .append_to(dir, env);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record<'a>(result: &'a Value, failed: bool) -> CallRecord<'a> {
        CallRecord {
            surface: AuditSurface::Mcp,
            client: Some("claude-code 2.1".into()),
            op: "backup-restore",
            server: Some("web-1".into()),
            args: json!({"action": "backup-restore", "server": "web-1", "apiToken": "s3cret"}),
            confirmed: Some("plan-token ab12cd".into()),
            result,
            failed,
            duration: Duration::from_millis(1500),
        }
    }

    #[test]
    fn a_success_names_its_ids_and_a_refusal_is_told_from_an_error() {
        let ok = json!({"success": true, "server": "web-1", "backupId": "b2",
            "safetyBackupId": "b3", "repository": {"snapshotId": "r9"}});
        let entry = record(&ok, false).entry();
        assert_eq!(entry.outcome, Outcome::Ok);
        assert_eq!(entry.ids.get("backup_id").map(String::as_str), Some("b2"));
        assert_eq!(
            entry.ids.get("safety_backup_id").map(String::as_str),
            Some("b3")
        );
        assert_eq!(
            entry.ids.get("repo_snapshot_id").map(String::as_str),
            Some("r9")
        );
        assert_eq!(entry.duration_ms, 1500);
        assert_eq!(entry.client.as_deref(), Some("claude-code 2.1"));
        assert_eq!(entry.plan_token.as_deref(), Some("plan-token ab12cd"));
        assert!(!entry.args.to_string().contains("s3cret"));

        let refused =
            json!({"error": "Restore disabled in SAFE_MODE", "kind": "permission_denied"});
        let entry = record(&refused, true).entry();
        assert_eq!(entry.outcome, Outcome::Refused);
        assert_eq!(entry.server.as_deref(), Some("web-1"));
        assert_eq!(
            entry.error.as_ref().map(|e| e.kind.as_str()),
            Some("permission_denied")
        );
        let declined = json!({"error": "backup-restore on web-1 was not confirmed (the user declined); nothing was changed", "kind": "cancelled"});
        assert_eq!(record(&declined, true).entry().outcome, Outcome::Declined);
        let plan = json!({"dryRun": true, "summary": "Restore web-1?", "planToken": "kpt_x"});
        assert_eq!(record(&plan, false).entry().outcome, Outcome::DryRun);
        assert_eq!(record(&plan, false).entry().error, None);
        let failed = json!({"error": "Connection refused", "kind": "unavailable"});
        assert_eq!(record(&failed, true).entry().outcome, Outcome::Error);
    }

    #[test]
    fn appending_to_a_directory_that_cannot_hold_the_log_only_warns() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not/here");
        let ok = json!({"success": true});
        record(&ok, false).append_to(&missing, &Env::from_pairs::<&str, &str>([]));
        let log = AuditLog::in_dir(dir.path());
        record(&ok, false).append_to(dir.path(), &Env::from_pairs::<&str, &str>([]));
        let report = log.verify().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries_checked, 1);
    }
}
