//! `backup-restore`'s work: which backup (local, or pulled from a
//! repository), the safety copy taken first ([`super::safety`]), then the
//! engine's verify, stop, restore, start and health check, and the result.

use kastell_core::types::{AppSelection, BackupId, StepReport, StepTimer};
use kastell_core::{Error, ErrorKind};
use schemars::JsonSchema;
use serde::Serialize;

use super::safety::{self, SafetyChoice, SafetyStep, SafetyTaken};
use super::{BackupRestoreOp, health, local_copy, stored_size};
use crate::engine::backup::{BackupRequest, RestoreHealth, RestoreRequest};
use crate::ops::context::Context;
use crate::ops::operation::Operation as _;
use crate::ops::progress::{Stepper, transfer};
use crate::ops::reply::Reply;
use crate::ops::result::{OpError, OpResult, Step, steps};
use crate::policy::Surface;
use crate::state::checks::ChecksFile;
use crate::state::store::ServerRecord;

/// A finished restore.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupRestore {
    /// The backup restored.
    pub backup_id: String,
    /// The local backup of the state before the restore (`local` and
    /// `repo` safety copies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_backup_id: Option<String>,
    /// The safety copy taken first and how to put it back.
    pub safety: SafetyTaken,
    /// The repository the backup was read from, when not the local store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Each step with its duration.
    pub steps: Vec<Step>,
    /// Things to know (legacy backup, taken from another server).
    pub warnings: Vec<String>,
}

/// The reply carrying a [`BackupRestore`].
pub type BackupRestoreResult = Reply<BackupRestore>;

/// When the local backup `id` of `server` is a safety backup, what it
/// is: restoring it puts back the state a restore replaced (named by id
/// only; the newest is never one).
pub(crate) fn safety_note(ctx: &Context, server: &ServerRecord, id: &str) -> Option<String> {
    let id = BackupId::new(id.to_owned()).ok()?;
    let stored = ctx.engine.find(&server.name, &id).ok()?;
    stored.safety_for().map(|restored| {
        format!(
            "backup {id} is the safety backup taken before restoring {restored}: restoring it puts back the state that restore replaced"
        )
    })
}

/// The size of `server`'s newest local backup: what a full safety backup
/// is estimated to take.
pub(super) fn newest_size(ctx: &Context, server: &ServerRecord) -> Option<u64> {
    ctx.engine
        .list(&server.name)
        .ok()?
        .first()
        .and_then(stored_size)
}

/// How the restore's health check waits on `server`: its `checks.json`
/// platform settings (deadline, refused grace), or skipped for a server
/// without a web UI. A checks.json that does not load refuses the restore
/// before anything runs.
fn restore_health(ctx: &Context, server: &ServerRecord) -> Result<RestoreHealth, Error> {
    let declared = ChecksFile::load(ctx.store.dir())?.for_server(server);
    Ok(match declared.platform.wait(ctx.timing.health) {
        Some(wait) => RestoreHealth::Wait(wait),
        None => RestoreHealth::Skip(
            "no web UI (checks.json): the platform's HTTP check is skipped".to_owned(),
        ),
    })
}

/// Restores a backup onto `server`.
///
/// Order: policy (SAFE_MODE blocks it), server, then the backup id: on MCP
/// it is required (`InvalidInput`); on the CLI none means the newest (the
/// original's `--force` picked the oldest). The engine verifies the backup,
/// refuses another platform's, takes a safety copy (`auto`, see
/// [`SafetyChoice`]) and always starts the platform again; its steps come
/// back either way.
pub async fn backup_restore(
    ctx: &Context,
    query: Option<&str>,
    backup_id: Option<&str>,
) -> OpResult<BackupRestoreResult> {
    backup_restore_from(ctx, query, backup_id, None, SafetyChoice::Auto).await
}

/// [`backup_restore`] of a backup in the repository `repo` (`None`: the
/// local store). The backup is first pulled into the local store, checked
/// against the checksums recorded when it was stored (a local copy of the
/// same backup that verifies is used instead), then restored as any local
/// backup, after the safety copy `safety` chooses ([`SafetyChoice`]):
/// refused choices (`none` where not allowed, `snapshot` without provider
/// snapshots, `repo` without a repository) stop it before anything runs,
/// and a failed safety step stops it before the platform is stopped.
pub async fn backup_restore_from(
    ctx: &Context,
    query: Option<&str>,
    backup_id: Option<&str>,
    repo: Option<&str>,
    safety: SafetyChoice,
) -> OpResult<BackupRestoreResult> {
    backup_restore_apps(ctx, query, backup_id, repo, AppSelection::every(), safety).await
}

/// [`backup_restore_from`] of the apps `apps` selects: all but those left
/// out, or, when only some are named, only their data, in place (the
/// platform keeps running; only their containers stop), after the safety
/// copy `safety` chooses (a safety backup covers just those apps). A name
/// the backup has no app of is refused before anything changes, listing
/// the backup's apps.
pub async fn backup_restore_apps(
    ctx: &Context,
    query: Option<&str>,
    backup_id: Option<&str>,
    repo: Option<&str>,
    apps: &AppSelection,
    safety: SafetyChoice,
) -> OpResult<BackupRestoreResult> {
    let admitted = ctx.admit(BackupRestoreOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: Error| {
        OpError::from(e)
            .on(server)
            .with_suggestions(health(ctx, server))
    };
    if ctx.surface == Surface::Mcp && backup_id.is_none_or(|s| s.trim().is_empty()) {
        return Err(fail(
            Error::new(
                ErrorKind::InvalidInput,
                "backupId is required for backup-restore",
            )
            .with_hint("List backups with backup-list and pass one backupId"),
        ));
    }
    let step = safety::resolve(ctx, server, safety, repo).map_err(fail)?;
    let waits = restore_health(ctx, server).map_err(fail)?;
    // Every phase that takes time is a step of its own, so the steps add
    // up to the run: fetching from a repository and connecting too.
    let mut ran: Vec<StepReport> = Vec::new();
    let fetched = match repo {
        None => local_copy(ctx, server, backup_id, None).await,
        Some(name) => {
            let timer = StepTimer::start(format!("Fetch from repository {name}"));
            let got = local_copy(ctx, server, backup_id, repo).await;
            ran.push(match &got {
                Ok((id, _)) => timer.success(format!("backup {id} pulled and checked")),
                Err(e) => timer.failure(e),
            });
            got
        }
    };
    let (id, mut warnings) = fetched.map_err(|e| fail(e).with_steps(&ran))?;
    warnings.extend(safety_note(ctx, server, id.as_str()));
    let timer = StepTimer::start("Connect");
    let transport = ctx.transport_for(server);
    let connected = async {
        let host_key = transport.host_key().await?;
        let platform = ctx.platform_for(server, transport.clone())?;
        Ok::<_, Error>((host_key, platform))
    }
    .await;
    let (host_key, platform) = match connected {
        Ok(done) => {
            ran.push(timer.success(format!(
                "SSH to {} ({} host key)",
                server.ip,
                done.1.info().display_name
            )));
            done
        }
        Err(e) => {
            ran.push(timer.failure(&e));
            return Err(fail(e).with_steps(&ran));
        }
    };
    let first_use = host_key.warning.clone();
    let host_key = Some(host_key.fingerprint);
    let engine = ctx
        .engine
        .clone()
        .with_apps(apps.clone())
        .with_restore_health(waits);
    let request = BackupRequest {
        server: server.clone(),
        platform: platform.clone(),
        transport: transport.clone(),
        host_key: host_key.clone(),
        transfer: transfer(ctx),
    };
    let taken = match safety::take(ctx, &engine, server, &step, &request, &id).await {
        Ok((taken, report)) => {
            ran.extend(report);
            taken
        }
        Err((e, report)) => {
            ran.extend(report);
            return Err(fail(e).with_steps(&ran));
        }
    };
    ctx.progress().message(&format!(
        "Restoring backup {id} onto {} (stop, restore, start, health check)",
        server.name
    ));
    let outcome = engine
        .restore(RestoreRequest {
            server: server.clone(),
            platform,
            transport,
            backup_id: id.clone(),
            safety_backup: matches!(step, SafetyStep::Local),
            host_key,
            health_deadline: ctx.timing.health,
            transfer: transfer(ctx),
        })
        .await;
    let success = outcome.success();
    ran.extend(outcome.steps.iter().cloned());
    Stepper::new(ctx.progress(), ran.len()).finish_all(&ran);
    ctx.progress().message(if success {
        "Restore finished"
    } else {
        "Restore failed"
    });
    if let (false, Some(e)) = (success, outcome.error) {
        return Err(fail(e).with_steps(&ran));
    }
    if !success {
        return Err(fail(Error::unexpected("a restore step failed")).with_steps(&ran));
    }

    Ok(Reply::on(
        server,
        BackupRestore {
            backup_id: id.to_string(),
            safety_backup_id: outcome
                .safety_backup
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| taken.local.clone()),
            safety: taken.finish(outcome.safety_backup.as_ref(), &server.name),
            repository: repo.map(str::to_owned),
            steps: steps(&ran),
            warnings: first_use
                .into_iter()
                .chain(warnings)
                .chain(outcome.warnings)
                .collect(),
        },
        health(ctx, server),
    ))
}
