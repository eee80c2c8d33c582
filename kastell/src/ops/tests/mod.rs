//! Operations tests over in-memory doubles injected through the context's
//! factories.

mod backups;
mod maintenance;
mod plans;
mod policy;
mod progress;
mod recovery;
mod refusals;
mod restarts;
mod safety;

use std::net::Ipv4Addr;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use kastell_core::memory::{MemoryCloud, MemoryPlatform, MemoryTransport, Reply};
use kastell_core::types::{
    ArtifactSink, ArtifactSource, BackupReport, Health, PlatformInfo, RestoreReport, ServerId,
    UpdateOptions, UpdateReport,
};
use kastell_core::{CloudProvider, Platform, PlatformCapability, Result, Transport};
use tempfile::TempDir;

use super::*;
use crate::env::Env;
use crate::policy::Surface;
use crate::state::store::{FleetStore, ServerRecord};

/// A platform that says it is `bare` and reports a configurable
/// `reboot_required`, delegating everything else to a [`MemoryPlatform`].
#[derive(Debug)]
pub(super) struct BareDouble {
    inner: MemoryPlatform,
    reboot_required: bool,
}

#[async_trait]
impl Platform for BareDouble {
    fn info(&self) -> PlatformInfo {
        // A package upgrade that reboots only when required, as bare's.
        PlatformInfo {
            update: kastell_core::types::UpdateStyle {
                step: Some("Package Upgrade"),
                runs: "apt-get upgrade",
                reboot: kastell_core::types::RebootAfterUpdate::WhenRequired,
            },
            ..PlatformInfo::new("bare", "Bare")
        }
    }
    fn capability(&self) -> PlatformCapability {
        self.inner.capability()
    }
    async fn version(&self) -> Result<String> {
        self.inner.version().await
    }
    async fn health(&self) -> Result<Health> {
        self.inner.health().await
    }
    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        let mut report = self.inner.update(options).await?;
        report.packages_upgraded = vec!["openssl".into()];
        report.reboot_required = self.reboot_required;
        report.hint = Some("needrestart listed services".into());
        Ok(report)
    }
    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        self.inner.backup(sink).await
    }
    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        self.inner.restore(source).await
    }
    async fn stop(&self) -> Result<()> {
        self.inner.stop().await
    }
    async fn start(&self) -> Result<()> {
        self.inner.start().await
    }
}

/// One test world: a fleet store with a cloud server `web-1` (coolify, at
/// the memory cloud) and a manual server `man-1`, one transport and one
/// platform shared by both.
pub(super) struct World {
    pub(super) dir: TempDir,
    pub(super) cloud: Arc<MemoryCloud>,
    pub(super) transport: Arc<MemoryTransport>,
    pub(super) platform: Arc<MemoryPlatform>,
    pub(super) web_id: ServerId,
    pub(super) bare_reboot_required: bool,
}

pub(super) const CLOUD_TOKEN: (&str, &str) = ("HETZNER_TOKEN", "secret-token");

impl World {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cloud = Arc::new(MemoryCloud::new());
        let web_id = cloud.add_server("web-1", Ipv4Addr::new(203, 0, 113, 10));
        cloud.add_server("web-2", Ipv4Addr::new(203, 0, 113, 11));
        let transport = Arc::new(MemoryTransport::new());
        let platform = Arc::new(MemoryPlatform::new(transport.clone()));
        let store = FleetStore::open(dir.path()).unwrap();
        let mut web = ServerRecord::new(web_id.to_string(), "web-1", "203.0.113.10");
        web.provider = Some("hetzner".into());
        store.add(web).unwrap();
        let mut web2 = ServerRecord::new("1002", "web-2", "203.0.113.11");
        web2.provider = Some("hetzner".into());
        store.add(web2).unwrap();
        store
            .add(ServerRecord::new("manual-1", "man-1", "203.0.113.20"))
            .unwrap();
        let mut bare = ServerRecord::new("manual-2", "bare-1", "203.0.113.21");
        bare.mode = "bare".into();
        store.add(bare).unwrap();
        Self {
            dir,
            cloud,
            transport,
            platform,
            web_id,
            bare_reboot_required: false,
        }
    }

    /// A context for `surface` with `env`, every factory injected, fast
    /// timings.
    pub(super) fn context(&self, surface: Surface, env: &[(&str, &str)]) -> Context {
        let store = FleetStore::open(self.dir.path()).unwrap();
        let cloud = self.cloud.clone();
        let transport = self.transport.clone();
        let platform = self.platform.clone();
        let reboot_required = self.bare_reboot_required;
        Context::new(Env::from_pairs(env.iter().copied()), store, surface)
            .with_timing(Timing::fast())
            .with_provider_factory(Arc::new(move |_| {
                Ok(cloud.clone() as Arc<dyn CloudProvider>)
            }))
            .with_transport_factory(Arc::new(move |_| transport.clone() as Arc<dyn Transport>))
            .with_platform_factory(Arc::new(move |record, transport| {
                if record.is_bare() {
                    return Ok(Arc::new(BareDouble {
                        inner: MemoryPlatform::new(transport),
                        reboot_required,
                    }) as Arc<dyn Platform>);
                }
                Ok(platform.clone() as Arc<dyn Platform>)
            }))
    }

    /// The CLI with SAFE_MODE off and the cloud token set.
    pub(super) fn cli(&self) -> Context {
        self.context(Surface::Cli, &[CLOUD_TOKEN])
    }

    /// Makes the SSH reboot command reboot the memory host.
    pub(super) fn script_ssh_reboot(&self) {
        let weak: Weak<MemoryTransport> = Arc::downgrade(&self.transport);
        self.transport.on_fn(REBOOT_WITH_SUDO, move |_, _| {
            if let Some(t) = weak.upgrade() {
                t.reboot();
            }
            Reply::ok("")
        });
    }

    /// Makes the host's boot id follow the memory cloud's boot count of
    /// `web-1`, as a real host's does after a provider reboot.
    pub(super) fn link_boot_id_to_cloud(&self) {
        let cloud = Arc::downgrade(&self.cloud);
        let id = self.web_id.clone();
        self.transport
            .on_fn("cat /proc/sys/kernel/random/boot_id", move |_, _| {
                let boots = cloud.upgrade().map_or(0, |c| c.boots(&id));
                Reply::ok(format!("boot-{boots}\n"))
            });
    }

    /// What `security.log` holds.
    pub(super) fn security_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("security.log")).unwrap_or_default()
    }
}

/// The step names of a result's steps.
pub(super) fn names(steps: &[Step]) -> Vec<&str> {
    steps.iter().map(|s| s.name.as_str()).collect()
}

/// The outcome of the step called `name`.
pub(super) fn outcome<'a>(steps: &'a [Step], name: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {:?}", names(steps)))
}
