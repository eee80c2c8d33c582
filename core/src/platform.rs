//! The [`Platform`] trait: what runs on a server (Coolify, Dokploy, bare).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::capability::PlatformCapability;
use crate::error::{Error, ErrorKind, Result};
use crate::poll::{Look, PollSchedule};
use crate::types::{
    AppData, AppObserved, ArtifactSink, ArtifactSource, BackupReport, Health, HealthLook,
    HealthWait, PlatformInfo, RestoreReport, UpdateOptions, UpdateReport,
};

/// The software a server runs, driven over a [`crate::Transport`] it was
/// handed when built. A platform never opens connections of its own.
///
/// # Behaviour every implementation keeps
/// - An operation its [`PlatformCapability`] does not declare fails with
///   [`crate::ErrorKind::Unsupported`] before any command runs.
/// - `update` with `dry_run` runs no command that changes the server.
/// - `backup` streams every artifact into the sink (no temporary files on
///   the server) and leaves nothing behind on failure.
/// - `restore` runs between the engine's `stop` and `start`; it reports each
///   step and fails on the first step that fails. The engine, not the
///   platform, guarantees `start` after a `stop`.
#[async_trait]
pub trait Platform: Send + Sync + fmt::Debug {
    /// Who this platform is.
    fn info(&self) -> PlatformInfo;

    /// What this platform supports.
    fn capability(&self) -> PlatformCapability;

    /// The installed version.
    async fn version(&self) -> Result<String>;

    /// Whether the platform answers as it should.
    async fn health(&self) -> Result<Health>;

    /// [`Self::health`] as a wait looks at it: also whether the check's
    /// connection was refused (nothing listens there), which
    /// [`PlatformExt::wait_healthy_with`] may end early on. The default
    /// asks [`Self::health`] and never reports a refusal, so a platform
    /// that does not override it is waited on for the whole deadline.
    async fn health_look(&self) -> Result<HealthLook> {
        Ok(HealthLook {
            health: self.health().await?,
            refused: false,
        })
    }

    /// Updates the platform (or reports the plan for a dry run).
    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport>;

    /// Streams a backup into `sink`: one
    /// [`sink.stream(..)`](crate::ArtifactSinkExt::stream) per artifact,
    /// which compresses on the server when the engine's plan for this host
    /// says so (the platform need not know). Fails with the first error;
    /// the engine then discards whatever was written.
    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport>;

    /// Restores from verified artifacts while the platform is stopped, and
    /// reports every step that ran with the error that stopped it (a
    /// backup it cannot use is [`RestoreReport::refused`] before any step).
    /// [`crate::wire::restore_feed`] sends a stored zstd artifact as it is
    /// when the engine found zstd on the host.
    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport;

    /// Installs the platform on a fresh host (one the provider just
    /// created, reached over this platform's transport) so a backup can be
    /// restored into it: its own installer, run as an update runs it, for at
    /// most `timeout`. Returns one line saying what was installed. Never
    /// run on a server already in service (a recovery or a scratch drill
    /// calls it on the host it created). The default refuses with
    /// `Unsupported`: the platform cannot be brought up on a new host.
    async fn install(&self, timeout: Duration) -> Result<String> {
        let _ = timeout;
        Err(crate::capability::unsupported(self.info().id, "install"))
    }

    /// Reads what the app data `part` (an app artifact's
    /// [`AppData`], checked) looks like on this host now: whether its
    /// container runs, a PostgreSQL resource's rows per table, a volume's
    /// files and their SHA-256, and what Docker's health check says of its
    /// container where one is declared. Only reads, once: a caller waiting
    /// for a `starting` container asks again. A rehearsal (`drill
    /// --scratch`) compares it with the backup before deleting its server. The default
    /// refuses with `Unsupported`: the platform has no apps.
    async fn observe_app(&self, part: &AppData) -> Result<AppObserved> {
        let _ = part;
        Err(crate::capability::unsupported(
            self.info().id,
            "observe_app",
        ))
    }

    /// Stops the platform's services. Requires `stop_start`; the default
    /// refuses with `Unsupported`.
    async fn stop(&self) -> Result<()> {
        Err(crate::capability::unsupported(self.info().id, "stop"))
    }

    /// Starts the platform's services. Requires `stop_start`; the default
    /// refuses with `Unsupported`.
    async fn start(&self) -> Result<()> {
        Err(crate::capability::unsupported(self.info().id, "start"))
    }

    /// The command that prints the last `lines` lines of the platform's own
    /// log (its container's or service's), run by whoever asks for logs.
    /// The default: the platform has no log of its own (`Unsupported`,
    /// with a hint to read the system journal).
    fn log_command(&self, lines: u32) -> Result<crate::RemoteCommand> {
        let _ = lines;
        Err(Error::unsupported(format!(
            "{} has no platform log of its own",
            self.info().display_name
        ))
        .with_hint("Read the system journal instead (source: system)"))
    }

    /// The command that prints the last `lines` lines of the platform's own
    /// log and then every new line until it is stopped (`docker logs -f`).
    /// The default: the platform cannot follow its log (`Unsupported`,
    /// with a hint to read it without following).
    fn follow_log_command(&self, lines: u32) -> Result<crate::RemoteCommand> {
        self.log_command(lines)?;
        Err(Error::unsupported(format!(
            "{} cannot follow its platform log",
            self.info().display_name
        ))
        .with_hint("Read its last lines without --follow, or follow the system journal"))
    }
}

/// Waiting helpers built on [`Platform`], available on every platform.
#[async_trait]
pub trait PlatformExt: Platform {
    /// Polls [`Platform::health`] until healthy, for at most `deadline`.
    /// Returns the healthy report, or a timeout carrying the last detail.
    /// Never ends early on refused connections (see
    /// [`Self::wait_healthy_with`]).
    async fn wait_healthy(&self, deadline: Duration, schedule: PollSchedule) -> Result<Health> {
        let wait = HealthWait {
            deadline,
            refused_grace: None,
        };
        self.wait_healthy_with(wait, schedule).await
    }

    /// Polls [`Platform::health_look`] until healthy, for at most
    /// `wait.deadline`. When every look for `wait.refused_grace` after the
    /// first refused connection was refused too, stops early with
    /// `Unavailable` saying nothing listens where the check asks; any other
    /// answer (a 5xx, a timeout) restarts that count and keeps waiting.
    /// Returns the healthy report, or a timeout carrying the last detail.
    async fn wait_healthy_with(&self, wait: HealthWait, schedule: PollSchedule) -> Result<Health> {
        let refused_since = std::sync::Mutex::new(None::<tokio::time::Instant>);
        let since_ref = &refused_since;
        let name = self.info().display_name;
        let look = move || async move {
            match self.health_look().await {
                Ok(look) if look.health.healthy => Look::Done(look.health),
                Ok(look) => {
                    let mut since = since_ref.lock().unwrap_or_else(|p| p.into_inner());
                    if !look.refused {
                        *since = None;
                        return Look::Pending(look.health.detail);
                    }
                    let first = *since.get_or_insert_with(tokio::time::Instant::now);
                    match wait.refused_grace {
                        Some(grace) if first.elapsed() >= grace => Look::Failed(
                            Error::new(
                                ErrorKind::Unavailable,
                                format!(
                                    "{name} is not listening: its health check was refused for {}s ({})",
                                    first.elapsed().as_secs(),
                                    look.health.detail
                                ),
                            )
                            .with_provider(self.info().id)
                            .with_hint(
                                "Nothing answers where the health check asks: check that the platform started, \
                                 or set the server's health URL, deadline or \"no web UI\" in checks.json \
                                 (kastell server checks set)",
                            ),
                        ),
                        _ => Look::Pending(look.health.detail),
                    }
                }
                Err(e) if e.is_retryable() => Look::Pending(e.to_string()),
                Err(e) => Look::Failed(e),
            }
        };
        let expired = |last: String| {
            Error::timeout(format!(
                "{name} was not healthy within {}s: {last}",
                wait.deadline.as_secs()
            ))
            .with_provider(self.info().id)
        };
        schedule.poll_until(wait.deadline, look, expired).await
    }
}

impl<T: Platform + ?Sized> PlatformExt for T {}
