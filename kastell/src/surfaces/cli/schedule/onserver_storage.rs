//! What `schedule install --on-server` needs per kind of storage: on S3
//! the server's own key from `--keys-dir` and the S3 canary, on SFTP the
//! server's own SSH key, its storage-side line and the storage host's
//! pinned key (see [`crate::engine::onserver::sftp`]); and what each
//! storage must enforce, in the words the install prints.

use kastell_core::{Error, Result};

use super::super::Context;
use super::onserver::InstallOnServer;
use crate::engine::onserver::canary;
use crate::engine::onserver::files::{Layout, ServerFile};
use crate::engine::onserver::remote::Root;
use crate::engine::onserver::sftp::{self, SftpTarget};
use crate::engine::onserver::state;
use crate::engine::repos::{self, RepoConfig};

/// What the storage must enforce for `server`, in one sentence.
pub(super) fn storage_sentence(config: &RepoConfig) -> String {
    if SftpTarget::of(&config.location).is_some() {
        return format!(
            "The storage must force this server's own SSH key into `rclone serve restic --stdio \
             --append-only` on {} with `restrict` (its authorized_keys line; README, \"On-server \
             backups\")",
            config.location
        );
    }
    format!(
        "The storage must limit this server's key to {} (read and write there only) and deny it \
         s3:DeleteObject except on */locks/* (README, \"On-server backups\")",
        config.location
    )
}

/// The S3 key of `server` from `--keys-dir`, which an S3 repository
/// needs.
pub(super) fn s3_keys(
    args: &InstallOnServer,
    server: &str,
    operator_keys: &[String],
) -> Result<kastell_repo::backend::S3Credentials> {
    let dir = args.keys_dir.as_deref().ok_or_else(|| {
        Error::invalid_input(format!(
            "repository {} is on S3: --keys-dir must name the directory of each server's own S3 \
             key (<server>.env)",
            args.repo
        ))
        .with_hint("Give --keys-dir DIR (README, \"On-server backups\")")
    })?;
    state::server_keys(dir, server, operator_keys)
}

/// What an SFTP target puts on a server besides the common files.
pub(super) struct RcloneParts {
    /// The `ssh` command restic runs.
    pub(super) program: String,
    /// The known_hosts file's text.
    pub(super) known_hosts: String,
    /// The storage host's pinned key lines.
    pub(super) pins: Vec<String>,
    /// The storage-side line for the server's own key (not on a dry run).
    pub(super) authorized: Option<String>,
}

impl RcloneParts {
    /// The storage host's pinned keys (from the known_hosts file the
    /// operator's own SFTP login checks it against) and, unless `dry_run`,
    /// the server's own key (made there when missing) and its
    /// storage-side line.
    pub(super) async fn prepare(
        ctx: &Context,
        root: Root<'_>,
        target: &SftpTarget,
        layout: &Layout,
        server: &str,
        dry_run: bool,
    ) -> Result<Self> {
        let location = target.location();
        let (credentials, _) = repos::operator_credentials(&location, &ctx.env)?;
        let login = credentials
            .sftp
            .ok_or_else(|| Error::unexpected("an SFTP repository was given no SFTP login"))?;
        let pins = target.pinned_keys(&login.known_hosts)?;
        let authorized = if dry_run {
            None
        } else {
            let public = sftp::server_key(root, layout, server).await?;
            Some(target.authorized_line(&public, server)?)
        };
        Ok(Self {
            program: target.program(layout)?,
            known_hosts: sftp::known_hosts_file(server, &pins),
            pins,
            authorized,
        })
    }
}

/// The S3 key ids the operator's own environment holds (a server's key
/// must be none of them).
pub(super) fn operator_key_ids(ctx: &Context) -> Vec<String> {
    ["AWS_ACCESS_KEY_ID", repos::PRUNE_AWS_ACCESS_KEY_ID_VAR]
        .iter()
        .filter_map(|v| ctx.env.get_nonempty(v))
        .collect()
}

/// How to restrict a server's SSH login to SFTP storage so the canary
/// passes (the line follows).
pub(super) const RCLONE_RESTRICT: &str = "Force the server's key into the append-only REST server: replace its \
     line in the storage login's ~/.ssh/authorized_keys with this one (README, \"On-server \
     backups\"), then install again:";

/// How to restrict a server's S3 login so the canary passes.
const S3_RESTRICT: &str = "Give the server a key the storage denies s3:DeleteObject (except on \
     */locks/*) and turn on the bucket's versioning or Object Lock, so an overwrite keeps the \
     earlier version (README, \"On-server backups\"); then install again";

/// Runs the append-only canary on the server with its own login (the
/// environment file `rendered` holds, sent on standard input: nothing is
/// written on the server first) and refuses the install unless the
/// storage refused the delete and the overwrite (or kept what it
/// replaced).
pub(super) async fn prove_append_only(
    root: Root<'_>,
    server: &str,
    layout: &Layout,
    rendered: &[ServerFile],
    config: &RepoConfig,
) -> Result<kastell_repo::append_only::CanaryReport> {
    let env_file = layout.env_file();
    let env = rendered
        .iter()
        .find(|f| f.path == env_file)
        .ok_or_else(|| Error::unexpected("the rendered files hold no environment file"))?;
    let report = canary::probe_s3(root, &env.content, &config.location)
        .await
        .map_err(|e| {
            let message = format!("{server}: {}", e.message());
            e.with_message(message)
        })?;
    if !report.is_append_only() {
        return Err(canary::refusal(server, &report, S3_RESTRICT));
    }
    Ok(report)
}
