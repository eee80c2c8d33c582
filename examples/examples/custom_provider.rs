//! The smallest provider: implement [`CloudProvider`], declare a `const`
//! [`ProviderEntry`], call [`register_provider!`], and any binary linking it
//! finds it in [`Registry::global`]. Acme Mini keeps one server in memory
//! and only reboots (the trait's defaults refuse snapshots). `examples/acme/`
//! has the rest: HTTP, a simulator, a platform, a kastell build of one's own.
#![allow(clippy::print_stdout)] // An example program reports to its terminal.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::register_provider;
use kastell_core::types::{ActionKind, ActionRef, ActionState, ActionStatus};
use kastell_core::types::{RebootMode, Server, ServerId, ServerStatus, TokenInfo};
use kastell_core::{CloudCapability, CloudProvider, CloudProviderExt, Error, ProviderConfig};
use kastell_core::{PollSchedule, ProviderEntry, ProviderIdentity, Registry, Result, Secret};

#[derive(Debug)]
struct AcmeMini(Server);

const ENTRY: ProviderEntry = ProviderEntry {
    id: "acme-mini",
    display_name: "Acme Mini",
    token_env: "ACME_MINI_TOKEN",
    capability: CloudCapability {
        reboot: true,
        ..CloudCapability::NONE
    },
    build: |_config| {
        let mut server = Server::new(ServerId::new("mini-1")?, "web-1", ServerStatus::Running);
        server.public_ipv4 = Some(Ipv4Addr::new(203, 0, 113, 7));
        Ok(Arc::new(AcmeMini(server)))
    },
};

register_provider!(ENTRY);

#[async_trait]
impl CloudProvider for AcmeMini {
    fn identity(&self) -> ProviderIdentity {
        ENTRY.identity("memory://acme-mini", PollSchedule::default())
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        Ok(TokenInfo {
            can_write: Some(true),
            ..TokenInfo::default()
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let found = (*id == self.0.id).then(|| self.0.clone());
        found.ok_or_else(|| kastell_core::cloud::server_not_found(ENTRY.id, id))
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        Ok(vec![self.0.clone()])
    }

    async fn reboot(&self, id: &ServerId, _mode: RebootMode) -> Result<ActionRef> {
        let server = self.get_server(id).await?.id;
        Ok(ActionRef::new("reboot-1", ActionKind::Reboot, server))
    }

    async fn action_status(&self, _action: &ActionRef) -> Result<ActionStatus> {
        Ok(ActionStatus::of(ActionState::Succeeded))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let ids = Registry::global().provider_ids().join(", ");
    println!("providers in this binary: {ids}");
    let token = Secret::new("demo-token");
    println!("a token prints as {token:?}");
    let cloud = (ENTRY.build)(ProviderConfig::default())?;
    let ip = Ipv4Addr::new(203, 0, 113, 7);
    let server = cloud.find_server_by_ip(ip).await?;
    let server = server.ok_or_else(|| Error::not_found("no server at 203.0.113.7"))?;
    let (id, wait) = (&server.id, Duration::from_secs(5));
    let rebooted = cloud.reboot_and_wait(id, RebootMode::Soft, wait).await?;
    println!("rebooted {} in {:?}", rebooted.server.name, rebooted.took);
    let refused = cloud.snapshot_and_wait(id, "demo", wait).await.err();
    let why = refused.map(|e| e.to_string()).unwrap_or_default();
    println!("snapshot refused before any request: {why}");
    Ok(())
}
