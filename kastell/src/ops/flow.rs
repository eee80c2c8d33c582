//! The pieces update, restart and maintain share: opening a server
//! (transport, platform, provider when there is a token) and the steps
//! built on it, each timed.

#[allow(unused_imports)]
use super::Operation as _;
use super::StatusOp;
use std::sync::Arc;

use kastell_core::types::{
    RebootAfterUpdate, ServerStatus, StepReport, StepTimer, UpdateOptions, UpdateReport,
};
use kastell_core::{CloudProvider, Error, Platform, PlatformExt, Transport};

use super::context::{Context, server_id};
use super::reboot::{RebootProof, reboot_proven};
use super::result::{OpError, OpResult};
use super::suggest::Candidate;
use crate::engine::backup::{BackupLayout, HostLock};
use crate::policy::{Decision, TokenStatus};
use crate::state::store::ServerRecord;

/// Takes `server`'s host lock for `activity` (`update`, `restart`,
/// `maintain`) without waiting, so one operation runs per server at a time
/// (the lock the backup engine takes too, in the store's `backups/<server>/`).
/// Refuses, naming the operation that holds it and suggesting a status
/// check, while another process or task works on the server: a second
/// maintenance started late would repeat the upgrade and the reboot.
pub(super) async fn lock_host(
    ctx: &Context,
    server: &ServerRecord,
    activity: &str,
) -> OpResult<HostLock> {
    let taken = match BackupLayout::new(ctx.store.dir()).server_dir(&server.name) {
        Ok(dir) => HostLock::try_acquire_async(&dir, &server.name, activity).await,
        Err(e) => Err(e),
    };
    taken.map_err(|e| {
        OpError::from(e).on(server).with_suggestions(ctx.suggest(
            server,
            vec![Candidate::new(StatusOp::ID, "Check the server's status")],
        ))
    })
}

/// `err` from a request that must not be repeated blindly (a reboot, a
/// snapshot, a restore). When it may have been carried out anyway (its
/// answer was lost, late or a 5xx), the hint becomes `maybe_done`, which
/// says so and what to check: generic advice such as "try again shortly"
/// would reboot the server twice or take a second, billed snapshot. Errors
/// that certainly changed nothing are returned as they are.
pub(super) fn unknown_outcome(err: Error, maybe_done: &str) -> Error {
    if err.may_have_taken_effect() {
        err.with_hint(maybe_done)
    } else {
        err
    }
}

/// A step's report and what it produced, or the error that failed it.
#[derive(Debug)]
pub struct Ran<T> {
    /// The report shown to the user.
    pub step: StepReport,
    /// The step's product, or why it failed.
    pub outcome: Result<T, Error>,
}

impl<T> Ran<T> {
    fn ok(step: StepReport, value: T) -> Self {
        Self {
            step,
            outcome: Ok(value),
        }
    }

    fn failed(timer: StepTimer, error: Error) -> Self {
        Self {
            step: timer.failure(&error),
            outcome: Err(error),
        }
    }
}

/// A server opened for work: its connection, platform and, for a cloud
/// server whose token is there, its provider.
#[derive(Debug, Clone)]
pub struct Target {
    /// The record.
    pub server: ServerRecord,
    /// The connection.
    pub transport: Arc<dyn Transport>,
    /// The platform over it.
    pub platform: Arc<dyn Platform>,
    /// The provider, when the server is a cloud server and the token is set.
    pub provider: Option<Arc<dyn CloudProvider>>,
    /// Why there is no provider, when there is none.
    pub no_provider: Option<String>,
}

impl Target {
    /// Opens `server` as allowed by `decision`. Refuses when the platform
    /// or provider cannot be built.
    pub fn open(ctx: &Context, server: &ServerRecord, decision: &Decision) -> OpResult<Self> {
        let fail = |e: Error| OpError::from(e).on(server);
        let transport = ctx.transport_for(server);
        let platform = ctx.platform_for(server, transport.clone()).map_err(fail)?;
        let (provider, no_provider) = match &decision.token {
            _ if server.is_manual() => (None, Some("Manual server".to_owned())),
            TokenStatus::Present { .. } => (Some(ctx.provider_for(server).map_err(fail)?), None),
            TokenStatus::Missing { provider, env } => (
                None,
                Some(format!("No API token for {provider} ({} not set)", env.var)),
            ),
            TokenStatus::NotNeeded => (None, Some("No provider API needed".to_owned())),
        };
        Ok(Self {
            server: server.clone(),
            transport,
            platform,
            provider,
            no_provider,
        })
    }

    /// The platform's display name (`Coolify`, `Bare`).
    pub fn label(&self) -> &'static str {
        self.platform.info().display_name
    }

    /// Whether a maintenance reboots after this platform's update only
    /// when the update says one is required (its registry entry's
    /// [`kastell_core::types::UpdateStyle`]).
    pub fn reboots_only_when_required(&self) -> bool {
        self.platform.info().update.reboot == RebootAfterUpdate::WhenRequired
    }

    /// `Status Check`: the provider's view of the server. Skipped for
    /// manual servers and when there is no token (with why); fails unless
    /// the server is `running`.
    pub async fn status_step(&self) -> Ran<()> {
        const NAME: &str = "Status Check";
        let Some(provider) = &self.provider else {
            let why = self.no_provider.as_deref().unwrap_or("No provider");
            return Ran::ok(
                StepReport::skipped(NAME, format!("{why} — assuming running")),
                (),
            );
        };
        let timer = StepTimer::start(NAME);
        let id = match server_id(&self.server) {
            Ok(id) => id,
            Err(e) => return Ran::failed(timer, e),
        };
        match provider.get_server(&id).await {
            Ok(s) if s.status == ServerStatus::Running => {
                Ran::ok(timer.success("Server is running"), ())
            }
            Ok(s) => Ran::failed(
                timer,
                Error::invalid_state(format!("Server is not running (status: {})", s.raw_status))
                    .with_hint("Start it at the provider, then try again"),
            ),
            Err(e) => Ran::failed(timer, e),
        }
    }

    /// The update step's name, from the platform's entry: `<Platform>
    /// Update`, or the platform's own (`Package Upgrade` on bare servers).
    pub fn update_name(&self) -> String {
        self.platform.info().update_step()
    }

    /// `<Platform> Update` (`Package Upgrade` on bare servers): the
    /// platform's update, keeping its hint (the original dropped it).
    pub async fn update_step(&self, ctx: &Context) -> Ran<UpdateReport> {
        let timer = StepTimer::start(self.update_name());
        let options = UpdateOptions {
            dry_run: false,
            timeout: ctx.timing.update,
        };
        match self.platform.update(&options).await {
            Ok(report) => {
                let mut step = timer.success(update_detail(self.label(), &report));
                step.hint = report.hint.clone();
                Ran::ok(step, report)
            }
            Err(e) => Ran::failed(timer, e),
        }
    }

    /// `name` (`Health Check`, `Final Check`): waits for the platform to
    /// be healthy, reporting `ok` or `failed` as detail.
    pub async fn health_step(&self, ctx: &Context, name: &str, ok: &str, failed: &str) -> Ran<()> {
        let timer = StepTimer::start(name);
        match self
            .platform
            .wait_healthy(ctx.timing.health, ctx.timing.poll)
            .await
        {
            Ok(_) => Ran::ok(timer.success(ok), ()),
            Err(e) => {
                let mut ran = Ran::failed(timer, e);
                ran.step.detail = Some(failed.to_owned());
                ran
            }
        }
    }

    /// `Reboot`: through the provider when there is one, else over SSH,
    /// proven by a changed boot id. A cloud server rebooted over SSH says
    /// why its provider was not used (no token).
    pub async fn reboot_step(&self, ctx: &Context) -> Ran<RebootProof> {
        let timer = StepTimer::start("Reboot");
        match reboot_proven(ctx, &self.server, &self.transport, self.provider.as_ref()).await {
            Ok(proof) => {
                let detail = match &self.no_provider {
                    Some(why) if !self.server.is_manual() => {
                        format!("{}; {why}", proof.detail())
                    }
                    _ => proof.detail(),
                };
                Ran::ok(timer.success(detail), proof)
            }
            Err(e) => Ran::failed(timer, e),
        }
    }
}

/// One line about an update: versions, or packages on bare servers.
pub fn update_detail(label: &str, report: &UpdateReport) -> String {
    let mut parts = Vec::new();
    match (&report.version_before, &report.version_after) {
        (Some(a), Some(b)) if a != b => parts.push(format!("{label} {a} → {b}")),
        (_, Some(b)) => parts.push(format!("{label} {b}")),
        _ => parts.push(format!("{label} updated")),
    }
    if !report.packages_upgraded.is_empty() {
        parts.push(format!(
            "{} packages upgraded",
            report.packages_upgraded.len()
        ));
    }
    if report.reboot_required {
        parts.push("reboot required".to_owned());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use kastell_core::{Error, ErrorKind};

    use super::unknown_outcome;

    #[test]
    fn a_request_that_may_have_happened_says_so_instead_of_try_again() {
        let lost = Error::new(ErrorKind::Unavailable, "HTTP 502").with_hint("try again shortly");
        assert!(lost.may_have_taken_effect());
        let shown = unknown_outcome(lost, "check first");
        assert_eq!(shown.hint(), Some("check first"));
        assert_eq!(shown.kind(), ErrorKind::Unavailable);

        let refused = Error::new(ErrorKind::InvalidState, "locked")
            .never_applied()
            .with_hint("retried when free");
        let shown = unknown_outcome(refused, "check first");
        assert_eq!(shown.hint(), Some("retried when free"), "nothing happened");
    }
}
