//! Append-only repositories from kastell's side: the server-side lines
//! `repo init --append-only-key` prints, and the check `kastell doctor`
//! runs with the agent-facing credential (write a canary once, try to
//! overwrite and delete it, see whether the server refused).

use std::path::Path;

use kastell_core::{Error, ErrorKind, ErrorReport, Result};
use kastell_repo::RepoLocation;
use kastell_repo::append_only::{self, Attempt, CanaryReport};
use serde::Serialize;

use super::{RepoConfig, SFTP_IDENTITY_VAR, SFTP_PRUNE_IDENTITY_VAR, credentials, off_runtime};
use crate::env::Env;

/// Where README explains append-only repositories.
pub(crate) const README_SECTION: &str = "README, section \"Append-only repositories\"";

/// The text `repo init --append-only-key KEY` prints for `location`: the
/// `authorized_keys` line for the agent's key, the `sshd_config`
/// alternative for a dedicated user, and which variable takes which key.
/// Refuses a location that is not SFTP (S3's protection is the bucket's
/// policy) and a file that is not one OpenSSH public key.
pub(crate) fn server_lines(location: &RepoLocation, public_key: &Path) -> Result<String> {
    let RepoLocation::Sftp { user, .. } = location else {
        return Err(Error::invalid_input(
            "--append-only-key makes an SFTP login append-only; this repository is not on SFTP",
        )
        .with_hint(format!(
            "For S3 the bucket enforces it: a key that may put but not delete objects, with \
             versioning or Object Lock ({README_SECTION})"
        )));
    };
    let text = std::fs::read_to_string(public_key).map_err(|e| {
        Error::io(
            format!("reading the public key {}", public_key.display()),
            e,
        )
        .with_hint("Give the agent key's .pub file")
    })?;
    let line = append_only::authorized_keys_line(&text)?;
    Ok(format!(
        "Append-only login for the agent's key (kastell-mcp, scheduled backups). On the \
         repository server, add this line to ~{user}/.ssh/authorized_keys (the key must appear \
         on no other line; {user} must not be root):\n\
         {line}\n\
         Or give a dedicated user (sharing a group with the operator's login, the repository's \
         directories group-writable) this block in /etc/ssh/sshd_config:\n\
         {block}\
         Then set {SFTP_IDENTITY_VAR} to the agent key's private file where kastell-mcp and \
         scheduled backups run, {SFTP_PRUNE_IDENTITY_VAR} to the operator's key for `repo \
         prune`, and prove it with `kastell doctor --repo NAME`.",
        block = append_only::sshd_config_block("kastell-append")
    ))
}

/// What `kastell doctor` found for one repository.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppendOnlyCheck {
    /// The repository's name.
    pub name: String,
    /// Where it is.
    pub location: String,
    /// The verdict.
    pub status: AppendOnlyStatus,
    /// What the server did with the canary, when the check ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryReport>,
    /// Why the check did not run (or could not tell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// The verdict on one repository's agent-facing credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum AppendOnlyStatus {
    /// The server refused both the delete and the overwrite.
    AppendOnly,
    /// The server let the credential delete or overwrite the canary.
    NotAppendOnly,
    /// A local directory: no server stands between an agent and its files.
    NoServer,
    /// The check could not run (unreachable, refused login, no canary
    /// written): it proves nothing.
    Unknown,
}

impl AppendOnlyCheck {
    /// Whether this needs the operator's attention.
    pub(crate) fn needs_attention(&self) -> bool {
        matches!(
            self.status,
            AppendOnlyStatus::NotAppendOnly | AppendOnlyStatus::Unknown
        )
    }

    /// What doctor prints for it: the verdict, then indented details.
    pub(crate) fn lines(&self) -> Vec<String> {
        let head = format!("repository {} ({})", self.name, self.location);
        let mut lines = Vec::new();
        match (self.status, &self.canary, &self.error) {
            (AppendOnlyStatus::AppendOnly, Some(canary), _)
                if canary.overwrite == Attempt::Kept =>
            {
                lines.push(format!(
                    "{head}: append-only (delete refused; the overwrite kept the earlier \
                     version)"
                ));
            }
            (AppendOnlyStatus::AppendOnly, _, _) => lines.push(format!(
                "{head}: append-only (delete and overwrite refused by the server)"
            )),
            (AppendOnlyStatus::NotAppendOnly, Some(canary), _) => {
                let can = match (canary.delete, canary.overwrite) {
                    (Attempt::Allowed, Attempt::Allowed) => "delete and overwrite",
                    (Attempt::Allowed, Attempt::Refused | Attempt::Kept) => "delete",
                    _ => "overwrite",
                };
                lines.push(format!(
                    "{head}: WARNING not append-only: this credential can {can} backups \
                     (the server allowed it on {})",
                    canary.canary
                ));
                if canary.delete == Attempt::Refused {
                    lines.push(
                        "  note: deletes were refused; only bucket versioning or Object Lock \
                         keeps what an overwrite replaces"
                            .to_owned(),
                    );
                }
                lines.push(format!(
                    "  hint: give kastell-mcp and scheduled backups an append-only credential \
                     and keep the pruning one away from them ({README_SECTION})"
                ));
            }
            (AppendOnlyStatus::NoServer, _, _) => lines.push(format!(
                "{head}: local directory: no server can refuse a delete (not append-only)"
            )),
            (_, _, error) => {
                lines.push(format!("{head}: NOT CHECKED: proves nothing"));
                if let Some(error) = error {
                    lines.push(format!(
                        "  error ({}): {}",
                        error.kind.as_str(),
                        error.message
                    ));
                    if let Some(hint) = &error.hint {
                        lines.push(format!("  hint: {hint}"));
                    }
                }
            }
        }
        lines
    }
}

/// Checks every repository in `configs` with the agent-facing credential
/// from `env`, one after the other. Never fails: what went wrong is in
/// each check.
pub(crate) async fn check_all(configs: Vec<RepoConfig>, env: &Env) -> Vec<AppendOnlyCheck> {
    let mut checks = Vec::with_capacity(configs.len());
    for config in configs {
        let env = env.clone();
        let name = config.name.clone();
        let location = config.location.to_string();
        let probed = off_runtime(move || {
            let credentials = credentials::backend_credentials(&config.location, &env)?;
            append_only::probe(&config.location, &credentials)
        })
        .await;
        let (status, canary, error) = match probed {
            Ok(canary) if canary.is_append_only() => {
                (AppendOnlyStatus::AppendOnly, Some(canary), None)
            }
            Ok(canary) => (AppendOnlyStatus::NotAppendOnly, Some(canary), None),
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                (AppendOnlyStatus::NoServer, None, None)
            }
            Err(e) => (AppendOnlyStatus::Unknown, None, Some(e.report())),
        };
        checks.push(AppendOnlyCheck {
            name,
            location,
            status,
            canary,
            error,
        });
    }
    checks
}
