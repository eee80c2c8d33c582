//! The smallest provider: a complete cloud provider in one file.
//!
//! Implement [`CloudProvider`], declare a `const` [`ProviderEntry`] and call
//! [`register_provider!`]: any binary that links the code finds it in
//! [`Registry::global`] next to kastell's own providers. Acme Mini keeps one
//! server in memory and can only reboot it (the trait's defaults refuse
//! snapshots: nothing to write for them). `examples/acme/` is the full
//! story: a provider over HTTP with its simulator, a platform, and both in
//! a kastell build of one's own.
#![allow(clippy::print_stdout)] // An example program reports to its terminal.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::types::{ActionKind, ActionRef, ActionState, ActionStatus, ProviderInfo};
use kastell_core::types::{RebootMode, Server, ServerId, ServerStatus, TokenInfo};
use kastell_core::{CloudCapability, CloudProvider, CloudProviderExt, Error, ProviderConfig};
use kastell_core::{ProviderEntry, Registry, Result, Secret, register_provider};

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
        let server = Server {
            id: ServerId::new("mini-1")?,
            name: "web-1".into(),
            status: ServerStatus::Running,
            raw_status: "up".into(),
            public_ipv4: Some(Ipv4Addr::new(203, 0, 113, 7)),
            region: None,
            plan: None,
            disk_gb: None,
            created_at: None,
        };
        Ok(Arc::new(AcmeMini(server)))
    },
};

register_provider!(ENTRY);

#[async_trait]
impl CloudProvider for AcmeMini {
    fn info(&self) -> ProviderInfo {
        let (id, display_name) = (ENTRY.id, ENTRY.display_name);
        ProviderInfo {
            id,
            display_name,
            endpoint: "memory://acme-mini".into(),
        }
    }

    fn capability(&self) -> CloudCapability {
        ENTRY.capability
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        Ok(TokenInfo {
            can_write: Some(true),
            account: None,
            scopes: Vec::new(),
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
        Ok(ActionRef {
            id: "reboot-1".into(),
            kind: ActionKind::Reboot,
            server,
            resource: None,
        })
    }

    async fn action_status(&self, _action: &ActionRef) -> Result<ActionStatus> {
        let state = ActionState::Succeeded;
        Ok(ActionStatus {
            state,
            progress: None,
            resource: None,
            message: None,
        })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let registry = Registry::global();
    println!(
        "providers in this binary: {}",
        registry.provider_ids().join(", ")
    );
    let token = Secret::new("demo-token");
    println!("a token prints as {token:?}");
    let cloud = (registry.provider("acme-mini")?.build)(ProviderConfig {
        token,
        ..Default::default()
    })?;
    let server = cloud
        .find_server_by_ip(Ipv4Addr::new(203, 0, 113, 7))
        .await?;
    let server = server.ok_or_else(|| Error::not_found("no server at 203.0.113.7"))?;
    let rebooted = cloud
        .reboot_and_wait(&server.id, RebootMode::Soft, Duration::from_secs(5))
        .await?;
    println!("rebooted {} in {:?}", rebooted.server.name, rebooted.took);
    let refused = cloud
        .snapshot_and_wait(&server.id, "demo", Duration::from_secs(5))
        .await;
    println!(
        "snapshot refused before any request: {}",
        refused.err().map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(())
}
