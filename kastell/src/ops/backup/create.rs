//! `backup create`'s flow: the policy, then [`back_up`], which `maintain`
//! also runs (under the server lock it already holds) before its update.

use std::sync::Arc;

use kastell_core::{Error, ErrorKind, Platform, Transport};

use super::{BackupCreate, BackupCreateOp, BackupCreateResult, BackupListOp, health};
use crate::engine::backup::{BackupRequest, HostLock};
use crate::ops::context::Context;
use crate::ops::operation::Operation;
use crate::ops::progress::transfer;
use crate::ops::reply::Reply;
use crate::ops::repository::{self, CreateOptions};
use crate::ops::result::{OpError, OpResult};
use crate::ops::suggest::Candidate;
use crate::ops::wire::summarize;
use crate::state::store::ServerRecord;

/// `e`, or, when the caller cancelled the operation (which stops a
/// backup's download at its next chunk), the cancellation.
fn stopped_or(ctx: &Context, e: Error) -> Error {
    if !ctx.progress().cancelled() {
        return e;
    }
    Error::new(
        ErrorKind::Cancelled,
        "Backup cancelled before it was complete: nothing was listed",
    )
    .with_hint("The partial copy was removed; call backup-create again to back up")
}

/// Backs `server` up over SSH (any platform, bare included), compressing
/// where kastell decides ([`kastell_core::wire::CompressMode::Auto`]). Order: policy, server,
/// host key, platform, then the engine (which publishes only a complete
/// backup).
/// The backup also goes to the server's default repository, if it has
/// one.
pub async fn backup_create(ctx: &Context, query: Option<&str>) -> OpResult<BackupCreateResult> {
    backup_create_with(ctx, query, CreateOptions::default()).await
}

/// [`backup_create`], compressing where `options` say (`--compress`) and
/// storing the backup, once complete and verified locally, in the
/// repository they choose. The repository is looked up before anything is
/// backed up; when storing there fails, the error says the local backup is
/// complete.
pub async fn backup_create_with(
    ctx: &Context,
    query: Option<&str>,
    options: CreateOptions,
) -> OpResult<BackupCreateResult> {
    let admitted = ctx.admit(BackupCreateOp::ID, query)?;
    let server = &admitted.server;
    let fail = |e: Error| {
        OpError::from(e)
            .on(server)
            .with_suggestions(health(ctx, server))
    };
    let transport = ctx.transport_for(server);
    let platform = ctx.platform_for(server, transport.clone()).map_err(fail)?;
    let body = back_up(ctx, server, transport, platform, &options, None)
        .await
        .map_err(fail)?;
    Ok(Reply::on(
        server,
        body,
        ctx.suggest(
            server,
            vec![Candidate::new(BackupListOp::ID, "See all backups")],
        ),
    ))
}

/// The backup itself, after the policy admitted it: the repository chosen
/// (looked up before anything is backed up), the host key, the engine's
/// backup (published only when complete; under `held` when the caller
/// already holds the server's lock, else waiting for it) and its copy in
/// the repository. When storing there fails, the error says the local
/// backup is complete.
pub(crate) async fn back_up(
    ctx: &Context,
    server: &ServerRecord,
    transport: Arc<dyn Transport>,
    platform: Arc<dyn Platform>,
    options: &CreateOptions,
    held: Option<&HostLock>,
) -> Result<BackupCreate, Error> {
    let repo = repository::chosen(ctx, &server.name, &options.repo)?;
    let host_key = transport.host_key().await?;
    // The artifacts go into the repository as they stream in (one pass).
    let stream = match &repo {
        Some(config) => repository::open_stream(ctx, config, &server.name).await,
        None => None,
    };
    let first_use = host_key.warning.clone();
    ctx.progress()
        .message(&format!("Backing up {} over SSH", server.name));
    let engine = ctx
        .engine
        .clone()
        .with_compress_mode(options.compress)
        .with_dump_jobs(options.jobs)
        .with_apps(options.apps.clone())
        .with_stream(stream.clone());
    let request = BackupRequest {
        server: server.clone(),
        platform,
        transport,
        host_key: Some(host_key.fingerprint),
        transfer: transfer(ctx),
    };
    let created = match held {
        Some(lock) => engine.create_held(&request, lock).await,
        None => engine.create(&request).await,
    }
    .map_err(|e| stopped_or(ctx, e))?;
    drop(engine);
    ctx.progress()
        .message(&format!("Backup {} is complete", created.id));
    let copy = match &repo {
        None => None,
        Some(config) => {
            ctx.progress().message(&format!(
                "Storing backup {} in repository {}",
                created.id, config.name
            ));
            let copy = repository::store_streamed(ctx, config, &server.name, &created.id, stream)
                .await
                .map_err(|e| repository::store_failed(e, &created.id, &config.name))?;
            Some(copy)
        }
    };
    Ok(BackupCreate {
        backup_id: created.id.to_string(),
        backup_path: created.path.display().to_string(),
        platform_version: created.manifest.platform_version.clone(),
        files: created.manifest.files.clone(),
        skipped: created.manifest.skipped.clone(),
        wire: summarize(&created.manifest.wire),
        repository: copy,
        warnings: first_use
            .into_iter()
            .chain(created.report.warnings.iter().cloned())
            .collect(),
        apps: created.report.apps.clone(),
    })
}
