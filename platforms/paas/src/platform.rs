//! [`PaasPlatform`]: the [`Platform`] implementation shared by every
//! PostgreSQL-in-Docker PaaS.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::types::{
    AppData, AppObserved, ArtifactSink, ArtifactSource, BackupReport, Health, HealthLook,
    PlatformInfo, RestoreReport, UpdateOptions, UpdateReport,
};
use kastell_core::{
    Error, Platform, PlatformCapability, PlatformContext, PlatformTarget, RemoteCommand, Result,
    Transport, TransportExt,
};

use crate::commands;
use crate::secret::SeenSecret;
use crate::settings::Settings;
use crate::spec::{CAPABILITY, DbContainer, LogSpec, PaasSpec};

/// A PaaS (Coolify, Dokploy, ...) described by a [`PaasSpec`], driven over
/// the transport of its [`PlatformContext`].
///
/// Options it reads are listed in [`crate::settings`]. It never opens a
/// connection of its own except the health check, which is an HTTP request
/// from the local machine.
#[derive(Debug)]
pub struct PaasPlatform {
    pub(crate) spec: &'static PaasSpec,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) target: PlatformTarget,
    pub(crate) settings: Settings,
    pub(crate) http: reqwest::Client,
    /// The platform secret last read on the server (id and keyed hash
    /// only), so a restore while the platform is stopped can tell whether
    /// the server's secret is the backup's.
    pub(crate) seen_secret: SeenSecret,
}

impl PaasPlatform {
    /// Builds the platform for `spec` over `ctx`. Refuses invalid options
    /// (see [`Settings::from_context`]) and a [`crate::SecretSpec`] it cannot
    /// keep (a dotenv file that is not a configuration entry, variable names
    /// a shell cannot carry), and fails when the HTTP client for health
    /// checks cannot be built.
    pub fn new(spec: &'static PaasSpec, ctx: PlatformContext) -> Result<Self> {
        Self::check_secret_spec(spec)
            .map_err(|e| e.with_provider(spec.id).with_operation("build"))?;
        let settings = Settings::from_context(&ctx)
            .map_err(|e| e.with_provider(spec.id).with_operation("build"))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(crate::health::HEALTH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::unexpected(format!("cannot build the health-check HTTP client: {e}"))
                    .with_provider(spec.id)
            })?;
        Ok(Self {
            spec,
            transport: ctx.transport,
            target: ctx.target,
            settings,
            http,
            seen_secret: SeenSecret::default(),
        })
    }

    /// Builds the platform as the registry wants it: the same as
    /// [`PaasPlatform::new`], behind an `Arc<dyn Platform>`.
    pub fn build(spec: &'static PaasSpec, ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(Self::new(spec, ctx)?))
    }

    /// The spec this platform was built from.
    pub fn spec(&self) -> &'static PaasSpec {
        self.spec
    }

    /// The parsed options.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Tags an error with this platform and `operation`.
    pub(crate) fn tag(&self, err: Error, operation: &'static str) -> Error {
        let err = if err.provider().is_none() {
            err.with_provider(self.spec.id)
        } else {
            err
        };
        if err.operation().is_none() {
            err.with_operation(operation)
        } else {
            err
        }
    }

    /// Runs a spec service command (stop, start, start the database),
    /// failing with [`kastell_core::ErrorKind::CommandFailed`] on a non-zero exit.
    pub(crate) async fn run_service(&self, script: &'static str, what: &str) -> Result<String> {
        let command = commands::service(self.spec, &self.settings, script)?;
        let out = self
            .transport
            .exec_checked(&command, self.settings.service_timeout)
            .await
            .map_err(|e| {
                e.or_hint(format!(
                    "Could not {what} {}; check `docker ps -a` on the server",
                    self.spec.display_name
                ))
            })?;
        Ok(out.stdout_text())
    }

    /// The database container's name or id: the fixed name, or the first
    /// running container matching the spec's filter. `Ok(None)` when no
    /// container matches.
    pub(crate) async fn find_db_container(&self) -> Result<Option<String>> {
        match self.spec.db_container {
            DbContainer::Fixed(name) => Ok(Some(name.to_owned())),
            DbContainer::NameFilter(filter) => {
                self.container_id(&commands::find_container(filter)?).await
            }
        }
    }

    /// Runs `lookup`, a `docker ps -q ... | head -1` style command, and
    /// returns the container id it printed; `Ok(None)` when it printed
    /// nothing or something that is not a container id.
    pub(crate) async fn container_id(&self, lookup: &RemoteCommand) -> Result<Option<String>> {
        let out = self
            .transport
            .exec_checked(lookup, self.settings.short_timeout)
            .await?;
        let id = out.stdout_text();
        let valid = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        Ok(valid.then_some(id))
    }

    /// Like [`PaasPlatform::find_db_container`], but no container is an error.
    pub(crate) async fn db_container(&self) -> Result<String> {
        self.find_db_container().await?.ok_or_else(|| {
            let filter = match self.spec.db_container {
                DbContainer::NameFilter(f) | DbContainer::Fixed(f) => f,
            };
            Error::not_found(format!(
                "no running container matches {filter} on the server"
            ))
            .with_hint(format!(
                "Check that the {} database service is running (`docker ps`)",
                self.spec.display_name
            ))
        })
    }

    /// Runs a read-only command and returns its output text, or `None` when
    /// it exits non-zero.
    pub(crate) async fn read(&self, command: &RemoteCommand) -> Result<Option<String>> {
        let out = self
            .transport
            .exec(command, self.settings.short_timeout)
            .await?;
        Ok(out.success().then(|| out.stdout_text()))
    }
}

#[async_trait]
impl Platform for PaasPlatform {
    fn info(&self) -> PlatformInfo {
        PlatformInfo::new(self.spec.id, self.spec.display_name)
    }

    fn capability(&self) -> PlatformCapability {
        CAPABILITY
    }

    fn log_command(&self, lines: u32) -> Result<RemoteCommand> {
        let n = lines.to_string();
        match self.spec.log {
            LogSpec::Container(name) => {
                RemoteCommand::template("docker logs --tail {} {} 2>&1", &[&n, name])
            }
            LogSpec::SwarmService(name) => {
                RemoteCommand::template("docker service logs --tail {} {} 2>&1", &[&n, name])
            }
        }
    }

    fn follow_log_command(&self, lines: u32) -> Result<RemoteCommand> {
        let n = lines.to_string();
        match self.spec.log {
            LogSpec::Container(name) => {
                RemoteCommand::template("docker logs -f --tail {} {} 2>&1", &[&n, name])
            }
            LogSpec::SwarmService(name) => {
                RemoteCommand::template("docker service logs -f --tail {} {} 2>&1", &[&n, name])
            }
        }
    }

    async fn version(&self) -> Result<String> {
        self.read_version()
            .await
            .map_err(|e| self.tag(e, "version"))
    }

    async fn health(&self) -> Result<Health> {
        self.health_look().await.map(|look| look.health)
    }

    async fn health_look(&self) -> Result<HealthLook> {
        self.check_health().await.map_err(|e| self.tag(e, "health"))
    }

    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        self.run_update(options)
            .await
            .map_err(|e| self.tag(e, "update"))
    }

    async fn install(&self, timeout: Duration) -> Result<String> {
        self.run_install(timeout)
            .await
            .map_err(|e| self.tag(e, "install"))
    }

    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        self.run_backup(sink)
            .await
            .map_err(|e| self.tag(e, "backup"))
    }

    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        let mut report = self.restore_steps(source).await;
        report.error = report.error.map(|e| self.tag(e, "restore"));
        report
    }

    async fn observe_app(&self, part: &AppData) -> Result<AppObserved> {
        self.observe(part)
            .await
            .map_err(|e| self.tag(e, "observe_app"))
    }

    async fn stop(&self) -> Result<()> {
        self.run_service(self.spec.services.stop, "stop")
            .await
            .map(drop)
            .map_err(|e| self.tag(e, "stop"))
    }

    async fn start(&self) -> Result<()> {
        self.run_service(self.spec.services.start, "start")
            .await
            .map(drop)
            .map_err(|e| self.tag(e, "start"))
    }
}
