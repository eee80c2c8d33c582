//! The recovery shared by `recover` and `drill --scratch`: price the new
//! server, create it, reach it, install the platform, restore the backup
//! into it, every phase timed. What it created is reported on failure, so
//! the caller keeps it marked (recover) or deletes it (a scratch drill).

use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{
    BackupId, ManagedRole, ServerId, ServerPrice, ServerSpec, StepReport, StepTimer,
};
use kastell_core::{
    CloudProvider, CloudProviderExt, Error, ErrorKind, HostKeyTrust, Look, Transport,
};

use super::record::fresh_record;
use crate::engine::backup::RestoreRequest;
use crate::engine::recover::{Target, public_key};
use crate::ops::Context;
use crate::ops::progress::transfer;
use crate::state::store::ServerRecord;

/// How long a created server may take to be running with an address.
const CREATE_DEADLINE: Duration = Duration::from_secs(900);

/// The server a recovery will create, priced, before anything is created.
pub(crate) struct Priced {
    /// The provider id.
    pub provider_id: String,
    /// The provider.
    pub provider: Arc<dyn CloudProvider>,
    /// What is asked for.
    pub spec: ServerSpec,
    /// What it costs.
    pub price: ServerPrice,
    /// How long choosing and pricing took.
    pub step: StepReport,
}

impl std::fmt::Debug for Priced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Priced")
            .field("provider", &self.provider_id)
            .field("spec", &self.spec)
            .field("price", &self.price)
            .finish_non_exhaustive()
    }
}

/// Resolves `target` for a server named `name` replacing `old` in `role`:
/// the provider (with `old`'s account when it is the same provider), its
/// default size, region and image for what the target leaves out, the
/// price, and the public key kastell reaches `old` with. Creates nothing.
pub(crate) async fn price(
    ctx: &Context,
    old: &ServerRecord,
    target: &Target,
    name: &str,
    role: ManagedRole,
) -> Result<Priced, Error> {
    let timer = StepTimer::start(format!("Price a server at {}", target.provider));
    let account = (old.provider_id() == Some(target.provider.as_str()))
        .then_some(old.account.as_deref())
        .flatten();
    let provider = ctx.provider_named(&target.provider, account)?;
    if !provider.capability().server_create || !provider.capability().server_delete {
        return Err(Error::unsupported(format!(
            "{} cannot create and delete servers through kastell",
            target.provider
        ))
        .with_hint("Recover onto a provider that can (see `kastell doctor`)"));
    }
    let choice = provider.default_server_choice()?;
    let size = target.size.clone().unwrap_or(choice.size);
    let region = target.region.clone().unwrap_or(choice.region);
    let price = provider.server_price(&size, &region).await?;
    let key = public_key(old, &ctx.env)?;
    let spec = ServerSpec {
        name: name.to_owned(),
        size,
        region,
        image: choice.image,
        ssh_public_key: key,
        role,
    };
    spec.validate(provider.info().id)?;
    let step = timer.success(format!(
        "{} {} in {} ({}): {price}",
        target.provider, spec.size, spec.region, spec.image
    ));
    Ok(Priced {
        provider_id: target.provider.clone(),
        provider,
        spec,
        price,
        step,
    })
}

/// A recovery that ran to its end: the new server restored and healthy.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The new server's record, its host key pinned (not stored yet).
    pub record: ServerRecord,
    /// Every phase, timed.
    pub steps: Vec<StepReport>,
    /// What the restore warned about.
    pub warnings: Vec<String>,
}

/// A recovery that stopped: the error, the phases that ran and the server
/// it created, if it got that far.
#[derive(Debug)]
pub(crate) struct Failed {
    /// What stopped it.
    pub error: Error,
    /// Every phase that ran, the failed one last.
    pub steps: Vec<StepReport>,
    /// The server it created (id), when one exists.
    pub created: Option<ServerId>,
}

/// Recovers backup `backup_id` of `old` onto the server `priced` describes:
/// creates it and waits until it runs with an address, waits for SSH and
/// pins its host key, installs the platform, then restores (verify, the
/// platform's own order, start, health; no safety backup on a fresh host).
/// The new record is named `priced.spec.name`. On failure after the server
/// was asked for, [`Failed::created`] names it (looked up by its name when
/// the provider's answer was lost).
pub(crate) async fn recover_onto(
    ctx: &Context,
    old: &ServerRecord,
    priced: &Priced,
    backup_id: &BackupId,
) -> Result<Recovered, Failed> {
    let mut steps = vec![priced.step.clone()];
    let fail = |error: Error, steps: Vec<StepReport>, created: Option<ServerId>| Failed {
        error,
        steps,
        created,
    };
    let progress = ctx.progress();

    progress.message(&format!(
        "Creating server {} at {} ({}, {})",
        priced.spec.name, priced.provider_id, priced.spec.size, priced.spec.region
    ));
    let timer = StepTimer::start(format!("Create server at {}", priced.provider_id));
    let server = match priced
        .provider
        .create_server_and_wait(&priced.spec, CREATE_DEADLINE)
        .await
    {
        Ok(server) => {
            steps.push(timer.success(format!(
                "server {} running at {}",
                server.id,
                server
                    .public_ipv4
                    .map_or_else(|| "no address".to_owned(), |ip| ip.to_string())
            )));
            server
        }
        Err(e) => {
            steps.push(timer.failure(&e));
            let created = find_created(priced).await;
            return Err(fail(e, steps, created));
        }
    };

    let created = Some(server.id.clone());
    let mut record = match fresh_record(
        old,
        &server,
        &priced.provider_id,
        &priced.spec.name,
        &ctx.env,
    ) {
        Ok(record) => record,
        Err(e) => return Err(fail(e, steps, created)),
    };

    progress.message(&format!("Waiting for SSH on {}", record.ip));
    let timer = StepTimer::start("Wait for SSH");
    let (fingerprint, trust) = match wait_for_ssh(ctx, &record).await {
        Ok((fingerprint, trust)) => {
            steps.push(timer.success(format!(
                "{} answered with host key {fingerprint}",
                record.ip
            )));
            (fingerprint, trust)
        }
        Err(e) => {
            steps.push(timer.failure(&e));
            return Err(fail(e, steps, created));
        }
    };
    if trust != HostKeyTrust::NotApplicable {
        record.ssh.get_or_insert_with(Default::default).host_key = Some(fingerprint.clone());
    }
    let transport = ctx.transport_unstored(&record);
    let platform = match ctx.platform_for(&record, transport.clone()) {
        Ok(platform) => platform,
        Err(e) => return Err(fail(e, steps, created)),
    };

    let name = platform.info().display_name;
    progress.message(&format!("Installing {name} on {}", record.ip));
    let timer = StepTimer::start(format!("Install {name}"));
    match platform.install(ctx.timing.update).await {
        Ok(detail) => steps.push(timer.success(detail)),
        Err(e) => {
            steps.push(timer.failure(&e));
            return Err(fail(e, steps, created));
        }
    }

    progress.message(&format!(
        "Restoring backup {backup_id} of {} onto {} (verify, restore, start, health check)",
        old.name, record.name
    ));
    let outcome = ctx
        .engine
        .restore(RestoreRequest {
            server: old.clone(),
            platform,
            transport,
            backup_id: backup_id.clone(),
            safety_backup: false,
            host_key: Some(fingerprint),
            health_deadline: ctx.timing.health,
            transfer: transfer(ctx),
        })
        .await;
    let success = outcome.success();
    steps.extend(outcome.steps);
    if !success {
        let error = outcome
            .error
            .unwrap_or_else(|| Error::unexpected("a restore step failed"));
        return Err(fail(error, steps, created));
    }
    Ok(Recovered {
        record,
        steps,
        warnings: outcome.warnings,
    })
}

/// Polls the new server's SSH until it answers (a fresh server boots for a
/// while after the provider reports it running), for at most
/// [`Timing::ssh_back`](crate::ops::Timing) twice over; returns the host key
/// it showed and how it was trusted.
async fn wait_for_ssh(
    ctx: &Context,
    record: &ServerRecord,
) -> Result<(String, HostKeyTrust), Error> {
    let deadline = ctx.timing.ssh_back * 2;
    let look = || async {
        let transport: Arc<dyn Transport> = ctx.transport_unstored(record);
        match transport.host_key().await {
            Ok(info) => Look::Done((info.fingerprint, info.trust)),
            Err(e) if e.kind() == ErrorKind::HostKeyMismatch => Look::Failed(e),
            Err(e) => Look::Pending(e.to_string()),
        }
    };
    let expired = |last: String| {
        Error::timeout(format!(
            "the new server {} did not answer over SSH within {}s (last: {last})",
            record.ip,
            deadline.as_secs()
        ))
        .with_hint("It may still be booting, or its firewall may block SSH")
    };
    ctx.timing.poll.poll_until(deadline, look, expired).await
}

/// The id of the server `priced` asked for, looked up by its name among
/// the provider's marked servers (when the create request's answer was an
/// error, the server may exist anyway); `None` when there is none or the
/// list fails.
pub(crate) async fn find_created(priced: &Priced) -> Option<ServerId> {
    let managed = priced.provider.list_managed_servers().await.ok()?;
    managed
        .into_iter()
        .find(|m| m.server.name == priced.spec.name && m.role == Some(priced.spec.role))
        .map(|m| m.server.id)
}
