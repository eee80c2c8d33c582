//! Backups in a repository as well as the local store: which repository a
//! backup goes to (asked for, or the server's default), storing a new
//! backup there, and reading backups back for list, verify and restore.

use std::sync::Arc;

use kastell_core::types::BackupId;
use kastell_core::wire::{CompressMode, DumpJobs};
use kastell_core::{Error, Result};
use kastell_repo::StreamWriter;
use schemars::JsonSchema;
use serde::Serialize;

use super::context::Context;
use crate::engine::backup::BackupLayout;
use crate::engine::repos::{self, RepoBackup, RepoConfig, RepoRegistry};

/// Which repository a new backup is also stored in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RepoChoice {
    /// The server's default repository (`kastell repo default`), if any.
    #[default]
    ServerDefault,
    /// This configured repository.
    Named(String),
    /// None: the local store only, whatever the default.
    LocalOnly,
}

impl RepoChoice {
    /// `Named` for a given, non-empty name, else the server's default.
    pub fn from_arg(name: Option<&str>) -> Self {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => Self::Named(name.to_owned()),
            None => Self::ServerDefault,
        }
    }
}

/// How `backup create` runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Where compression runs.
    pub compress: CompressMode,
    /// How many parallel jobs the database dump may use.
    pub jobs: DumpJobs,
    /// Which repository the backup also goes to.
    pub repo: RepoChoice,
    /// Which apps' data the backup holds (default: every app's).
    pub apps: kastell_core::types::AppSelection,
}

/// A backup's copy in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoCopy {
    /// The repository's name.
    pub repository: String,
    /// The snapshot holding the backup (64 hex digits).
    pub snapshot_id: String,
    /// Bytes of the backup's files, decompressed.
    pub total_bytes: u64,
    /// Bytes the repository grew by, after dedup and compression.
    pub added_bytes: u64,
}

/// The configured repository `name`.
pub(super) fn named(ctx: &Context, name: &str) -> Result<RepoConfig> {
    RepoRegistry::load(ctx.store.dir())?.get(name).cloned()
}

/// The repository `choice` names for `server`, if any. A missing one is
/// `NotFound` before anything is backed up.
pub(super) fn chosen(
    ctx: &Context,
    server: &str,
    choice: &RepoChoice,
) -> Result<Option<RepoConfig>> {
    match choice {
        RepoChoice::LocalOnly => Ok(None),
        RepoChoice::Named(name) => named(ctx, name).map(Some),
        RepoChoice::ServerDefault => Ok(RepoRegistry::load(ctx.store.dir())?
            .default_for(server)?
            .cloned()),
    }
}

/// Stores the local backup `id` of `server` in `config`'s repository.
pub(super) async fn store(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
    id: &BackupId,
) -> Result<RepoCopy> {
    let backup = ctx.engine.find(server, id)?;
    let report =
        repos::with_open(config, &ctx.env, move |repo| repos::push(&repo, &backup)).await?;
    Ok(copy_of(config, &report))
}

/// A one-pass stream into `config`'s repository for a backup of `server`
/// (see `kastell_repo::stream`): the backup's artifacts are copied into
/// it as they stream in. `None` when it cannot start (the stored backup
/// is then pushed once it is taken, which reports why the repository
/// failed).
pub(super) async fn open_stream(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
) -> Option<Arc<StreamWriter>> {
    let host = server.to_owned();
    match repos::with_open(config, &ctx.env, move |repo| Arc::new(repo).stream(&host)).await {
        Ok(writer) => Some(Arc::new(writer)),
        Err(e) => {
            tracing::warn!("no one-pass copy into repository {}: {e}", config.name);
            None
        }
    }
}

/// Stores the local backup `id` of `server` in `config`'s repository:
/// through `stream` when it took every artifact as the backup streamed in
/// (only the manifest and checksums are added, nothing is read again),
/// else by pushing the stored backup as [`store`] does.
pub(super) async fn store_streamed(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
    id: &BackupId,
    stream: Option<Arc<StreamWriter>>,
) -> Result<RepoCopy> {
    // The engine and its staging have let go of the stream by now.
    if let Some(writer) = stream.and_then(|s| Arc::try_unwrap(s).ok()) {
        let backup = ctx.engine.find(server, id)?;
        let done = repos::off_runtime(move || repos::finish_stream(writer, &backup)).await;
        match done {
            Ok(report) => {
                tracing::info!(
                    "backup {id} went into repository {} in one pass, as it streamed in",
                    config.name
                );
                return Ok(copy_of(config, &report));
            }
            Err(e) => tracing::warn!(
                "the one-pass copy of backup {id} was not kept ({e}); pushing the stored backup"
            ),
        }
    }
    store(ctx, config, server, id).await
}

fn copy_of(config: &RepoConfig, report: &repos::PushReport) -> RepoCopy {
    RepoCopy {
        repository: config.name.clone(),
        snapshot_id: report.snapshot.id.clone(),
        total_bytes: report.snapshot.total_bytes,
        added_bytes: report.snapshot.added_bytes,
    }
}

/// `server`'s backups in `config`'s repository, newest first.
pub(super) async fn list(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
) -> Result<Vec<RepoBackup>> {
    let snapshots = repos::with_open(config, &ctx.env, |repo| repo.snapshots()).await?;
    Ok(repos::backups_of(&snapshots, server))
}

/// Finds backup `id` (default: the newest) of `server` in `config`'s
/// repository and runs `work` on it there.
async fn with_backup<T: Send + 'static>(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
    id: Option<BackupId>,
    work: impl FnOnce(&kastell_repo::BackupRepository, &RepoBackup) -> Result<T> + Send + 'static,
) -> Result<(RepoBackup, T)> {
    let name = config.name.clone();
    let server = server.to_owned();
    repos::with_open(config, &ctx.env, move |repo| {
        let backup = repos::find_backup(&repo.snapshots()?, &server, id.as_ref(), &name)?;
        let done = work(&repo, &backup)?;
        Ok((backup, done))
    })
    .await
}

/// Reads every artifact of backup `id` (default: the newest) of `server`
/// in the repository and compares it with the checksums recorded when it
/// was stored. Returns the backup and warnings.
pub(super) async fn verify(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
    id: Option<BackupId>,
) -> Result<(RepoBackup, Vec<String>)> {
    with_backup(ctx, config, server, id, repos::verify).await
}

/// Makes backup `id` (default: the newest) of `server` in the repository
/// restorable from the local store: pulled into it (checked against the
/// recorded checksums as it streams), or, when the local store already
/// holds that backup and it verifies, the local copy is used and a warning
/// says so. Refuses a local copy that fails verification (it is never
/// overwritten).
pub(super) async fn fetch(
    ctx: &Context,
    config: &RepoConfig,
    server: &str,
    id: Option<BackupId>,
) -> Result<(BackupId, Vec<String>)> {
    let server_dir = BackupLayout::new(ctx.store.dir()).server_dir(server)?;
    let engine = ctx.engine.clone();
    let name = config.name.clone();
    let owner = server.to_owned();
    let (backup, warnings) = with_backup(ctx, config, server, id, move |repo, backup| {
        let id = BackupId::new(backup.backup_id.clone())?;
        if let Ok(local) = engine.find(&owner, &id) {
            local.verify().map_err(|e| {
                e.with_hint(format!(
                    "The local copy of backup {id} is damaged; move {} aside to restore it from repository {name}",
                    local.dir.display()
                ))
            })?;
            return Ok(vec![format!(
                "backup {id} is also in the local store and verified there: restored from the local copy"
            )]);
        }
        repos::pull(repo, &name, backup, &server_dir).map(|(_, warnings)| warnings)
    })
    .await?;
    Ok((BackupId::new(backup.backup_id)?, warnings))
}

/// `e` as the failure of storing backup `id` in `repo`, saying the local
/// backup is complete.
pub(super) fn store_failed(e: Error, id: &BackupId, repo: &str) -> Error {
    let message = format!(
        "Backup {id} is complete in the local store, but storing it in repository {repo} failed: {}",
        e.message()
    );
    let hint = e.hint().map(str::to_owned).unwrap_or_else(|| {
        format!("Fix the repository, then send it with `kastell repo push {repo} --backup {id}`")
    });
    e.with_message(message).with_hint(hint)
}
