//! What `maintain` takes before the update: the platform's backup (into
//! the local store, under the server lock maintain already holds, so
//! nothing gets in between) and the provider snapshot a rollback restores.
//! Either failing stops the run before the update.

use kastell_core::Error;
use kastell_core::types::{StepReport, StepTimer};

use super::{BACKUP, MaintainOptions, SNAPSHOT};
use crate::engine::backup::HostLock;
use crate::ops::backup::{BackupCreate, BackupCreateOp, back_up};
use crate::ops::context::{Context, server_id};
use crate::ops::flow::{Ran, Target};
use crate::ops::operation::Operation;
use crate::ops::repository::CreateOptions;
use crate::ops::result::SnapshotInfo;
use crate::ops::snapshot::{SnapshotCreateOp, take_awaited};

/// Whether to back the platform up first: `Err` says why not (the skipped
/// step's detail). Everything that has a backup is backed up unless
/// `no_backup`.
pub(super) fn backup_wanted(target: &Target, options: MaintainOptions) -> Result<(), String> {
    if options.no_backup {
        return Err(
            "Skipped by user (--no-backup): no platform backup from just before the update".into(),
        );
    }
    if !target.platform.capability().backup {
        return Err(format!(
            "{} has no backup to take: no platform backup from just before the update",
            target.label()
        ));
    }
    Ok(())
}

/// `Backup`: the policy for `backup-create` (a refusal fails the step),
/// then the platform's backup under `held`, the server lock maintain took
/// before its first step, published only when complete (and copied to the
/// server's default repository when it has one). A failure stops the run
/// before the update: nothing changes without the backup.
pub(super) async fn backup_step(
    ctx: &Context,
    target: &Target,
    held: &HostLock,
) -> Ran<BackupCreate> {
    let timer = StepTimer::start(BACKUP);
    let server = &target.server;
    let outcome = async {
        ctx.policy
            .check(BackupCreateOp::ID, ctx.surface, Some(server), |p| {
                ctx.token_present_for(server, p)
            })?;
        back_up(
            ctx,
            server,
            target.transport.clone(),
            target.platform.clone(),
            &CreateOptions::default(),
            Some(held),
        )
        .await
    }
    .await
    .map_err(|e: Error| {
        e.or_hint("The update was not started. Fix the backup, or run maintain with --no-backup to update without one")
    });
    match outcome {
        Ok(created) => {
            let mut detail = format!(
                "Backup {} is complete ({} file(s))",
                created.backup_id,
                created.files.len()
            );
            if let Some(copy) = &created.repository {
                detail.push_str(&format!(", also in repository {}", copy.repository));
            }
            Ran {
                step: timer.success(detail),
                outcome: Ok(created),
            }
        }
        Err(e) => Ran {
            step: timer.failure(&e),
            outcome: Err(e),
        },
    }
}

/// The skipped `Backup` step, saying why.
pub(super) fn backup_skipped(why: String) -> StepReport {
    StepReport::skipped(BACKUP, why)
}

/// Whether to take the snapshot: `Err` says why not (the skipped step's
/// detail). With `options.snapshot` the step runs (and fails without a
/// provider).
pub(super) fn snapshot_wanted(
    ctx: &Context,
    target: &Target,
    options: MaintainOptions,
) -> Result<(), String> {
    if options.no_snapshot {
        return Err(
            "Skipped by user (--no-snapshot): a failed update cannot be rolled back".into(),
        );
    }
    if options.snapshot {
        return Ok(());
    }
    let Some(provider) = &target.provider else {
        let why = target.no_provider.as_deref().unwrap_or("No provider");
        return Err(format!(
            "{why}: no snapshot, so a failed update cannot be rolled back"
        ));
    };
    let caps = provider.capability();
    if !caps.snapshot_create || !caps.snapshot_restore {
        return Err(format!(
            "{} has no snapshots to take and restore: a failed update cannot be rolled back",
            provider.info().display_name
        ));
    }
    let server = &target.server;
    ctx.policy
        .quiet()
        .check(SnapshotCreateOp::ID, ctx.surface, Some(server), |p| {
            ctx.token_present_for(server, p)
        })
        .map(|_| ())
        .map_err(|e| format!("Not allowed here ({e}): a failed update cannot be rolled back"))
}

/// `Snapshot`: the monthly cost (best effort), then the snapshot, awaited
/// ([`take_awaited`], the one `snapshot create` and a restore's safety
/// snapshot take).
pub(super) async fn snapshot_step(
    ctx: &Context,
    target: &Target,
) -> Ran<(SnapshotInfo, Option<String>)> {
    let timer = kastell_core::types::StepTimer::start(SNAPSHOT);
    let outcome = async {
        let provider = target.provider.as_ref().ok_or_else(|| {
            Error::invalid_state("A snapshot needs the provider API")
                .with_hint("Set the provider's token, or run maintain with --no-snapshot")
        })?;
        let id = server_id(&target.server)?;
        let (snap, cost) = take_awaited(
            ctx,
            provider.as_ref(),
            &id,
            "kastell-maintain-",
            "running maintenance again",
        )
        .await
        .map_err(|e| {
            e.or_hint("Run maintain with --no-snapshot to update without one (no rollback)")
        })?;
        Ok::<_, Error>((SnapshotInfo::from(&snap), cost))
    }
    .await;
    match outcome {
        Ok((info, cost)) => Ran {
            step: timer.success(format!(
                "Snapshot {} is available ({})",
                info.id,
                cost.as_deref().map_or_else(
                    || "monthly cost unknown".to_owned(),
                    |c| format!("{c} while kept")
                )
            )),
            outcome: Ok((info, cost)),
        },
        Err(e) => Ran {
            step: timer.failure(&e),
            outcome: Err(e),
        },
    }
}
