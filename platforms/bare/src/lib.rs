//! # kastell-bare: servers with no PaaS
//!
//! A [`Platform`] for plain Linux servers, driven entirely over the
//! [`Transport`] it is handed (it never opens connections of its own):
//!
//! - **version**: the OS name (`PRETTY_NAME` from `/etc/os-release`, else
//!   `uname -sr`, else `unknown`);
//! - **health**: the server answers over SSH and `systemctl
//!   is-system-running` says `running` (`degraded` is unhealthy and lists the
//!   failed units; a server without systemctl, or where systemd is not
//!   running, is healthy when it answers);
//! - **backup**: one `tar` of the server's configured backup paths (or
//!   [`DEFAULT_BACKUP_PATHS`]) streamed into the artifact
//!   `bare-config.tar`; missing paths are skipped and named; nothing is
//!   written on the server;
//! - **restore**: one remote script that unpacks the archive into a private
//!   temporary directory, validates the candidate (`sshd -t`, `nginx -t`)
//!   **before** touching anything, and only then puts it in place and
//!   reloads the services whose configuration changed. A configuration the
//!   checks refuse fails with [`ErrorKind::InvalidInput`](kastell_core::ErrorKind::InvalidInput) and leaves the
//!   server exactly as it was, so a restore cannot lock the operator out;
//! - **update**: non-interactive `apt-get update` + `upgrade` keeping local
//!   config files, reporting the upgraded packages and whether a reboot is
//!   required; a dry run only simulates (`apt-get -s`) against the package
//!   lists already on the server.
//!
//! - **install** (on a host a recovery created): nothing to install; it
//!   checks that the host has `tar`, which the restore unpacks with.
//!
//! There is no stop/start: [`Platform::stop`] and [`Platform::start`] fail
//! with [`ErrorKind::Unsupported`](kastell_core::ErrorKind::Unsupported) before running anything.
//!
//! ## Root, privilege and options
//! - [`PlatformContext::root`](kastell_core::PlatformContext::root): every
//!   path is resolved under it (the sandbox's fake root);
//! - [`PlatformContext::privilege`](kastell_core::PlatformContext::privilege):
//!   `Auto` (default: privileged commands — backup, restore and apt — run
//!   through `sudo -n sh -c '...'` unless the login user is `root`), `Sudo`
//!   or `LoginUser` (never sudo). `sudo -n` never prompts: a user without
//!   passwordless sudo gets [`ErrorKind::PermissionDenied`](kastell_core::ErrorKind::PermissionDenied) with a hint;
//! - the option `update_timeout_secs`: time allowed for each apt step
//!   (default 3600; the longer of this and the caller's timeout is used).

mod backup;
mod options;
mod remote;
mod restore;
mod system;
mod update;

use std::sync::Arc;

use async_trait::async_trait;
use kastell_core::types::{
    ArtifactSink, ArtifactSource, BackupReport, BackupStyle, Health, PlatformInfo,
    RebootAfterUpdate, RestoreReport, UpdateOptions, UpdateReport, UpdateStyle,
};
use kastell_core::{
    Platform, PlatformCapability, PlatformContext, PlatformEntry, Result, Transport,
};

pub use backup::{ARTIFACT, LEGACY_ARTIFACT};
pub use options::{
    BareOptions, DEFAULT_BACKUP_PATHS, DEFAULT_UPDATE_TIMEOUT, OPTION_UPDATE_TIMEOUT, relative_path,
};
pub use restore::{EXIT_NGINX_INVALID, EXIT_RELOAD, EXIT_SSHD_INVALID, EXIT_SWITCH, EXIT_UNPACK};
pub use update::{APT_SIMULATE, APT_UPDATE, APT_UPGRADE};

use remote::Elevation;

/// The platform's registry id.
pub const ID: &str = "bare";
/// The platform's human name.
pub const DISPLAY_NAME: &str = "Bare server";

/// What the bare platform supports: everything but stop/start.
pub const CAPABILITY: PlatformCapability = PlatformCapability {
    version: true,
    health: true,
    update: true,
    update_dry_run: true,
    backup: true,
    backup_restore: true,
    stop_start: false,
};

/// The registry entry of the bare platform: never detected itself, it is
/// what a server where no other platform's marker exists runs.
pub const ENTRY: PlatformEntry = PlatformEntry {
    id: ID,
    display_name: DISPLAY_NAME,
    capability: CAPABILITY,
    update: UPDATE_STYLE,
    backup: BACKUP_STYLE,
    detect: None,
    build,
};

/// A backup holds the configured files and directories.
pub const BACKUP_STYLE: BackupStyle = BackupStyle {
    holds: "the backed-up files and directories",
};

/// A package upgrade, followed by a reboot only when it requires one.
pub const UPDATE_STYLE: UpdateStyle = UpdateStyle {
    step: Some("Package Upgrade"),
    runs: "apt-get update, then a non-interactive apt-get upgrade",
    reboot: RebootAfterUpdate::WhenRequired,
};

kastell_core::register_platform!(ENTRY);

/// Builds the bare platform for `ctx`. Refuses invalid options (see
/// [`BareOptions::from_context`]) and invalid backup paths.
pub fn build(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(BarePlatform::new(ctx)?))
}

/// A server with no PaaS, reached over a [`Transport`].
#[derive(Debug)]
pub struct BarePlatform {
    transport: Arc<dyn Transport>,
    options: BareOptions,
    privilege: Elevation,
    backup_paths: Vec<String>,
}

impl BarePlatform {
    /// Creates the platform. Refuses invalid options and backup paths that
    /// are not absolute or contain `..`, before any command runs.
    pub fn new(ctx: PlatformContext) -> Result<Self> {
        let options = BareOptions::from_context(&ctx)?;
        backup::plan(&ctx.target.backup_paths)?;
        let privilege = Elevation::new(options.privilege, &ctx.transport.target().user);
        Ok(Self {
            transport: ctx.transport,
            options,
            privilege,
            backup_paths: ctx.target.backup_paths,
        })
    }

    /// The parsed options.
    pub fn options(&self) -> &BareOptions {
        &self.options
    }
}

#[async_trait]
impl Platform for BarePlatform {
    fn info(&self) -> PlatformInfo {
        ENTRY.info()
    }

    fn capability(&self) -> PlatformCapability {
        ENTRY.capability
    }

    async fn version(&self) -> Result<String> {
        system::version(
            self.transport.as_ref(),
            &self.options.under_root("etc/os-release"),
        )
        .await
    }

    async fn health(&self) -> Result<Health> {
        system::health(self.transport.as_ref()).await
    }

    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        let before = self.version().await?;
        let mut report = update::run(
            self.transport.as_ref(),
            &self.options,
            &self.privilege,
            options,
        )
        .await?;
        let after = if options.dry_run {
            before.clone()
        } else {
            self.version()
                .await
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        report.version_before = Some(before);
        report.version_after = Some(after);
        Ok(report)
    }

    /// Nothing to install: checks that the host answers and has `tar`
    /// (the restore unpacks with it), refusing with a hint when not.
    async fn install(&self, timeout: std::time::Duration) -> Result<String> {
        use kastell_core::TransportExt as _;
        self.transport
            .exec_checked(
                &kastell_core::RemoteCommand::fixed("command -v tar >/dev/null"),
                timeout.min(std::time::Duration::from_secs(60)),
            )
            .await
            .map_err(|e| {
                e.or_hint("A bare server's restore unpacks with tar: install it (apt-get install -y tar) and recover again")
            })?;
        Ok("bare: nothing to install (tar is there for the restore)".to_owned())
    }

    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        let version = self.version().await?;
        backup::run(
            self.transport.as_ref(),
            &self.options,
            &self.privilege,
            &self.backup_paths,
            version,
            sink,
        )
        .await
    }

    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        restore::run(
            self.transport.as_ref(),
            &self.options,
            &self.privilege,
            source,
        )
        .await
    }
}
