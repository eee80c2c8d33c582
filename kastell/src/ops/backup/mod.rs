//! SSH backups: create, list, restore, verify, through the backup engine.

mod apps;
mod create;
mod operations;
mod restore;
mod safety;

pub use operations::{
    AppArgs, BACKUP_PRUNE, BackupCreateOp, BackupListOp, BackupRef, BackupRestoreOp,
    BackupVerifyOp, CreateArgs, RepoArg, RestoreArgs,
};
pub use restore::{
    BackupRestore, BackupRestoreResult, backup_restore, backup_restore_apps, backup_restore_from,
};
pub use safety::{SafetyChoice, SafetyTaken};

use super::HealthOp;
#[allow(unused_imports)]
use super::Operation as _;
use super::reply::Reply;
pub(crate) use apps::apps_table;
pub(crate) use create::back_up;
pub use create::{backup_create, backup_create_with};
use kastell_core::types::{AppBackup, BackupId};
use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::Serialize;

use super::context::Context;
use super::operation::Operation;
use super::repository::{self, RepoCopy};
use super::result::{OpError, OpResult};
use super::suggest::{Candidate, Suggestion};
use super::wire::WireSummary;
use crate::engine::backup::{BackupStatus, StoredBackup};
use crate::engine::repos::RepoBackup;
use crate::state::store::ServerRecord;
use crate::state::verifications::{self, Proof, Verification, Verifications};

/// A published backup.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCreate {
    /// The new backup's id (`YYYY-MM-DD_HH-MM-SS-mmm`).
    pub backup_id: String,
    /// Its directory.
    pub backup_path: String,
    /// The platform's version at backup time.
    pub platform_version: String,
    /// The stored files.
    pub files: Vec<String>,
    /// Configured paths that did not exist and were skipped.
    pub skipped: Vec<String>,
    /// Which compression ran where, the bytes sent and the effective rate.
    #[serde(flatten)]
    pub wire: WireSummary,
    /// Its copy in a repository, when it was also stored in one (`--repo`,
    /// or the server's default repository).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepoCopy>,
    /// Things to know (zstd missing on the host, version unreadable).
    pub warnings: Vec<String>,
    /// Each app's data in the backup (Coolify and Dokploy): its artifacts,
    /// the bytes it took on the server before (estimated) and stored
    /// after, and how consistent each copy is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppBackup>,
}

/// The reply carrying a [`BackupCreate`].
pub type BackupCreateResult = Reply<BackupCreate>;

/// One listed backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupEntry {
    /// Its id.
    pub backup_id: String,
    /// `complete`, `unverified_legacy` or `corrupt`.
    pub status: String,
    /// When it was taken (the manifest's timestamp), when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The platform it was taken from (`coolify`, `dokploy`, `bare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The platform's version then (the original's `coolifyVersion`).
    #[serde(rename = "coolifyVersion", skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// The stored files.
    pub files: Vec<String>,
    /// Its size in bytes (in a repository: decompressed), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Why it is corrupt, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The repository snapshot holding it, for a backup listed from a
    /// repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The newest proof that it is good (`backup verify`, `backup drill`),
    /// when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// For the safety backup a restore took of the state it replaced: the
    /// backup that restore put back. Never picked as the newest; restore
    /// it only by its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_for: Option<String>,
}

impl BackupEntry {
    /// Whether a restore may pick this backup as the newest (it is not a
    /// safety backup).
    pub fn restorable_as_newest(&self) -> bool {
        self.safety_for.is_none()
    }
}

/// The newest of `entries` (newest first) a restore may pick: the first
/// that is not a safety backup.
pub(crate) fn newest_restorable(entries: &[BackupEntry]) -> Option<&BackupEntry> {
    entries.iter().find(|e| e.restorable_as_newest())
}

impl From<&RepoBackup> for BackupEntry {
    fn from(b: &RepoBackup) -> Self {
        Self {
            backup_id: b.backup_id.clone(),
            status: "complete".to_owned(),
            timestamp: Some(b.time.clone()),
            platform: b.platform.clone(),
            platform_version: None,
            files: Vec::new(),
            size_bytes: Some(b.total_bytes),
            problem: None,
            snapshot_id: Some(b.snapshot_id.clone()),
            verification: None,
            safety_for: b.safety_for.clone(),
        }
    }
}

impl From<&StoredBackup> for BackupEntry {
    fn from(b: &StoredBackup) -> Self {
        let m = b.manifest.as_ref();
        Self {
            backup_id: b.id.to_string(),
            status: match b.status {
                BackupStatus::Complete => "complete",
                BackupStatus::UnverifiedLegacy => "unverified_legacy",
                BackupStatus::Corrupt => "corrupt",
            }
            .to_owned(),
            timestamp: m.map(|m| m.timestamp.clone()),
            platform: m.map(|m| m.platform_id().to_owned()),
            platform_version: m.map(|m| m.platform_version.clone()),
            files: m.map(|m| m.files.clone()).unwrap_or_default(),
            size_bytes: stored_size(b),
            problem: b.problem.clone(),
            snapshot_id: None,
            verification: None,
            safety_for: b.safety_for().map(str::to_owned),
        }
    }
}

/// The bytes `backup`'s stored files take: the sizes its manifest records,
/// or (an older manifest without them) the files' sizes on disk; `None`
/// when neither is known.
fn stored_size(backup: &StoredBackup) -> Option<u64> {
    let manifest = backup.manifest.as_ref()?;
    if !manifest.artifacts.is_empty() {
        return Some(manifest.artifacts.iter().map(|a| a.size).sum());
    }
    let sizes: Vec<u64> = manifest
        .files
        .iter()
        .filter(|f| crate::engine::backup::is_plain_artifact_name(f))
        .filter_map(|f| std::fs::symlink_metadata(backup.dir.join(f)).ok())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .collect();
    (!sizes.is_empty()).then(|| sizes.iter().sum())
}

/// A server's backups, newest first. An empty list is a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupList {
    /// How many backups there are.
    pub backup_count: usize,
    /// The backups, newest first.
    pub backups: Vec<BackupEntry>,
    /// `No backups found for this server` when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The repository listed, when not the local store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// The reply carrying a [`BackupList`].
pub type BackupListResult = Reply<BackupList>;

/// A verified backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupVerifyResult {
    /// Always `true`.
    pub success: bool,
    /// Server name.
    pub server: String,
    /// The backup checked.
    pub backup_id: String,
    /// `Backup verified: every checksum matches` (or legacy warning).
    pub message: String,
    /// The repository checked, when not the local store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Things to know (a legacy backup has no checksums).
    pub warnings: Vec<String>,
}

/// The suggestion after a backup operation: check the server's health.
fn health(ctx: &Context, server: &ServerRecord) -> Vec<Suggestion> {
    ctx.suggest(
        server,
        vec![Candidate::new(HealthOp::ID, "Check server health")],
    )
}

/// Lists `server`'s backups with their status (local only). No backups is
/// a success with `backupCount` 0 and a message (the original's empty
/// branch broke its own schema).
pub async fn backup_list(ctx: &Context, query: Option<&str>) -> OpResult<BackupListResult> {
    backup_list_in(ctx, query, None).await
}

/// [`backup_list`] of the repository `repo` (`None`: the local store).
pub async fn backup_list_in(
    ctx: &Context,
    query: Option<&str>,
    repo: Option<&str>,
) -> OpResult<BackupListResult> {
    let admitted = ctx.admit(BackupListOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: Error| OpError::from(e).on(server);
    let mut entries: Vec<BackupEntry> = match repo {
        None => ctx
            .engine
            .list(&server.name)
            .map_err(fail)?
            .iter()
            .map(BackupEntry::from)
            .collect(),
        Some(name) => {
            let config = repository::named(ctx, name).map_err(fail)?;
            repository::list(ctx, &config, &server.name)
                .await
                .map_err(fail)?
                .iter()
                .map(BackupEntry::from)
                .collect()
        }
    };
    // A damaged record must not hide the backups: they list without it.
    if let Ok(proofs) = Verifications::load(ctx.store.dir()) {
        for entry in &mut entries {
            entry.verification = proofs.latest(&server.name, &entry.backup_id, repo).cloned();
        }
    }
    let (message, candidates) = match (entries.first(), newest_restorable(&entries)) {
        (None, _) => (
            Some("No backups found for this server".to_owned()),
            vec![Candidate::new(BackupCreateOp::ID, "Create a backup")],
        ),
        // Only safety backups: restoring one is a choice, never a default.
        (Some(_), None) => (
            None,
            vec![Candidate::new(BackupCreateOp::ID, "Create a backup")],
        ),
        (Some(_), Some(newest)) => (
            None,
            vec![
                Candidate::new(BackupRestoreOp::ID, "Restore latest backup")
                    .arg("backupId", newest.backup_id.clone()),
            ],
        ),
    };

    Ok(Reply::on(
        server,
        BackupList {
            backup_count: entries.len(),
            backups: entries,
            message,
            repository: repo.map(str::to_owned),
        },
        ctx.suggest(server, candidates),
    ))
}

fn parse_id(id: &str) -> Result<BackupId, Error> {
    BackupId::new(id.to_owned())
        .map_err(|e| e.or_hint("A backup id looks like 2026-03-15_12-00-00-000; see backup-list"))
}

/// The backup id given, if one was (an empty one counts as none).
pub(super) fn given_id(id: Option<&str>) -> Result<Option<BackupId>, Error> {
    id.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_id)
        .transpose()
}

/// The local backup an operation works on: `backup_id` (default: the
/// newest) of the local store, or, from repository `repo`, that backup
/// fetched into the local store first ([`repository::fetch`]), with what
/// fetching it had to say.
pub(super) async fn local_copy(
    ctx: &Context,
    server: &ServerRecord,
    backup_id: Option<&str>,
    repo: Option<&str>,
) -> Result<(BackupId, Vec<String>), Error> {
    let Some(name) = repo else {
        return Ok((pick(ctx, server, backup_id)?, Vec::new()));
    };
    let config = repository::named(ctx, name)?;
    let wanted = given_id(backup_id)?;
    ctx.progress().message(&format!(
        "Fetching backup {} of {} from repository {name}",
        wanted.as_ref().map_or("(newest)", |id| id.as_str()),
        server.name
    ));
    repository::fetch(ctx, &config, &server.name, wanted).await
}

/// Which backup: `id` when given, else the newest that is not a safety
/// backup.
pub(super) fn pick(
    ctx: &Context,
    server: &ServerRecord,
    id: Option<&str>,
) -> Result<BackupId, Error> {
    match given_id(id)? {
        Some(id) => Ok(id),
        None => Ok(ctx.engine.latest(&server.name)?.id),
    }
}

/// Why backup `id` of `server` (the original tool's, without checksums)
/// is not reported verified: nothing can prove it whole.
fn unverifiable(server: &str, id: &BackupId) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "backup {id} of {server} could not be verified: it was made by the original tool and has no checksums (its files are all there)"
        ),
    )
    .with_hint(format!(
        "Nothing proves it whole and it is not recorded as verified. Take a new backup (kastell backup create {server}), or prove this one restores with kastell backup drill {server} --backup {id}"
    ))
}

/// Recomputes a backup's checksums (`backup_id` `None`: the newest).
/// Refuses a corrupt backup (`Corrupt`), an unknown id (`NotFound`) and a
/// legacy backup without checksums (`Unsupported`: it could not be
/// verified, and is not recorded as verified).
pub async fn backup_verify(
    ctx: &Context,
    query: Option<&str>,
    backup_id: Option<&str>,
) -> OpResult<BackupVerifyResult> {
    backup_verify_in(ctx, query, backup_id, None).await
}

/// [`backup_verify`] of a backup in the repository `repo` (`None`: the
/// local store): every artifact is read from the repository (each chunk
/// authenticated as it is decrypted) and compared with the checksum
/// recorded when it was stored.
pub async fn backup_verify_in(
    ctx: &Context,
    query: Option<&str>,
    backup_id: Option<&str>,
    repo: Option<&str>,
) -> OpResult<BackupVerifyResult> {
    let admitted = ctx.admit(BackupVerifyOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: Error| OpError::from(e).on(server);
    let started = std::time::Instant::now();
    let (id, warnings) = match repo {
        None => {
            let id = pick(ctx, server, backup_id).map_err(fail)?;
            let backup = ctx.engine.find(&server.name, &id).map_err(fail)?;
            let warnings = backup.verify().map_err(fail)?;
            if backup.status == BackupStatus::UnverifiedLegacy {
                return Err(fail(unverifiable(&server.name, &id)));
            }
            (id.to_string(), warnings)
        }
        Some(name) => {
            let config = repository::named(ctx, name).map_err(fail)?;
            let wanted = given_id(backup_id).map_err(fail)?;
            let (backup, warnings) = repository::verify(ctx, &config, &server.name, wanted)
                .await
                .map_err(fail)?;
            (backup.backup_id, warnings)
        }
    };
    if warnings.is_empty() {
        verifications::remember(
            ctx.store.dir(),
            Verification {
                server: server.name.clone(),
                backup_id: id.clone(),
                repository: repo.map(str::to_owned),
                proof: Proof::Checksums,
                verified_at: verifications::now(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                checks_skipped: 0,
                phases: Vec::new(),
                apps: Vec::new(),
            },
        );
    }
    Ok(BackupVerifyResult {
        success: true,
        server: server.name.clone(),
        backup_id: id,
        message: if warnings.is_empty() {
            "Backup verified: every checksum matches".to_owned()
        } else {
            "Backup readable, but not fully verifiable".to_owned()
        },
        repository: repo.map(str::to_owned),
        warnings,
    })
}
