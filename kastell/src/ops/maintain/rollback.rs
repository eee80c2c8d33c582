//! The rollback of a maintenance whose update left the server unhealthy:
//! what the server's policy (`checks.json`) decides, and the restore of the
//! snapshot taken before the update, proven by a new boot id.

use std::time::Instant;

use kastell_core::types::{SnapshotId, StepTimer};
use kastell_core::{CloudProviderExt, Error, TransportExt};

use super::health::health_step;
use crate::ops::blast::age_in_words;
use crate::ops::context::{Context, server_id};
use crate::ops::flow::{Ran, Target, unknown_outcome};
use crate::ops::reboot::{RebootMethod, RebootProof, wait_new_boot};
use crate::ops::result::SnapshotInfo;
use crate::state::checks::{Declared, RollbackPolicy};

/// The step that restores the snapshot.
pub(super) const ROLLBACK: &str = "Rollback";
/// The health check after it.
pub(super) const ROLLBACK_CHECK: &str = "Rollback Check";

/// The snapshot taken before the update, and when.
#[derive(Debug, Clone)]
pub(super) struct Taken {
    /// The snapshot.
    pub info: SnapshotInfo,
    /// When it became available.
    pub at: Instant,
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Restore the snapshot.
    Restore,
    /// Leave the server as it is, saying why (a skipped step's detail).
    Leave(String),
}

/// Whether to roll back after `failure`: never without a snapshot (`why`
/// none was taken); by the policy otherwise. `ask` asks through the
/// surface's hook ([`crate::ops::Progress::ask`]), naming the snapshot's
/// age and that every write since is lost; a surface that cannot ask (MCP,
/// a CLI off a terminal) leaves the server, and the suggested
/// `snapshot-restore` goes through that surface's own confirmation.
pub(super) fn decide(
    ctx: &Context,
    target: &Target,
    declared: &Declared,
    taken: Option<&Taken>,
    why_none: &str,
    failure: &Error,
) -> Decision {
    let Some(taken) = taken else {
        return Decision::Leave(format!(
            "No snapshot was taken before the update ({why_none}): nothing to roll back to"
        ));
    };
    let id = &taken.info.id;
    let from = &declared.rollback_from;
    match declared.rollback {
        RollbackPolicy::Auto => Decision::Restore,
        RollbackPolicy::Never => Decision::Leave(format!(
            "Rollback policy never ({from}): left as it is; snapshot {id} restores it \
             (snapshot-restore)"
        )),
        RollbackPolicy::Ask => {
            let question = question(target, taken, failure);
            match ctx.progress().ask(&question) {
                Some(true) => Decision::Restore,
                Some(false) => Decision::Leave(format!(
                    "Declined at the prompt: left as it is; snapshot {id} restores it \
                     (snapshot-restore)"
                )),
                None => Decision::Leave(format!(
                    "Rollback policy ask ({from}) and no one to ask here: left as it is; \
                     restoring snapshot {id} (snapshot-restore, confirmed like any restore) \
                     rolls it back and loses every write since it was taken"
                )),
            }
        }
    }
}

/// The question `ask` puts to a person.
fn question(target: &Target, taken: &Taken, failure: &Error) -> String {
    let server = &target.server;
    let age = age_in_words(i64::try_from(taken.at.elapsed().as_secs()).unwrap_or(i64::MAX));
    format!(
        "The update left \"{}\" ({}) unhealthy: {}\nRoll it back to snapshot {} ({}), taken {age} \
         ago? Everything written on the server since then (database rows, uploads, logs) is LOST.",
        server.name,
        server.ip,
        crate::state::store::display_safe(failure.message()),
        taken.info.id,
        taken.info.name,
    )
}

/// `Rollback`: restores the snapshot through the provider, waits until the
/// server runs, and proves it booted from it by a boot id different from
/// the one read before.
pub(super) async fn restore_step(
    ctx: &Context,
    target: &Target,
    taken: &Taken,
) -> Ran<RebootProof> {
    let timer = StepTimer::start(ROLLBACK);
    let outcome = restore(ctx, target, taken).await;
    match outcome {
        Ok(proof) => Ran {
            step: timer.success(format!(
                "Snapshot {} restored; {}",
                taken.info.id,
                proof.detail()
            )),
            outcome: Ok(proof),
        },
        Err(e) => Ran {
            step: timer.failure(&e),
            outcome: Err(e),
        },
    }
}

async fn restore(ctx: &Context, target: &Target, taken: &Taken) -> Result<RebootProof, Error> {
    let started = Instant::now();
    let provider = target.provider.as_ref().ok_or_else(|| {
        Error::invalid_state("A rollback needs the provider API")
            .with_hint("Set the provider's token and restore the snapshot with snapshot-restore")
    })?;
    let snapshot = SnapshotId::new(taken.info.id.clone())?;
    let before = target.transport.boot_id().await.ok();
    ctx.progress().message(&format!(
        "Restoring snapshot {snapshot}, then waiting until the server runs"
    ));
    provider
        .restore_and_wait(
            &server_id(&target.server)?,
            &snapshot,
            ctx.timing.snapshot_restore,
        )
        .await
        .map_err(|e| {
            unknown_outcome(
                e,
                "The restore may have started even though the answer was lost or late: check \
                 the server with server_info status before restoring again",
            )
        })?;
    ctx.progress()
        .message("Waiting for the server to boot from the snapshot (new boot id over SSH)");
    let after = wait_new_boot(
        ctx,
        &target.transport,
        before.as_deref(),
        RebootMethod::Restore,
    )
    .await?;
    Ok(RebootProof {
        method: RebootMethod::Restore,
        boot_id_before: before,
        boot_id_after: after,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// `Rollback Check`: the platform and the declared checks on the restored
/// server.
pub(super) async fn recheck_step(ctx: &Context, target: &Target, declared: &Declared) -> Ran<()> {
    let label = target.label();
    health_step(
        ctx,
        target,
        declared,
        ROLLBACK_CHECK,
        &format!("{label} is healthy on the restored snapshot"),
        &format!("{label} did not respond after the rollback"),
    )
    .await
}
