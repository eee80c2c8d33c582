//! Servers kastell created that the fleet does not hold: what a recovery
//! that failed after creating its server, or a scratch drill that was
//! killed before it could delete its own, left at a provider. They carry
//! kastell's marker, so the provider lists them
//! ([`CloudProvider::list_managed_servers`]) and deletes only them.

use std::sync::Arc;

use kastell_core::types::{ManagedRole, Server};
use kastell_core::{CloudProvider, Result};

use crate::state::store::ServerRecord;

/// A marked server at a provider that no fleet record names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leftover {
    /// The provider id.
    pub provider: String,
    /// The server as the provider lists it.
    pub server: Server,
    /// Its role tag, when it has one.
    pub role: Option<ManagedRole>,
}

impl Leftover {
    /// Whether it is a scratch drill's server (deleted without asking by
    /// the next drill and `doctor --fix`).
    pub(crate) fn is_drill(&self) -> bool {
        self.role == Some(ManagedRole::Drill)
    }

    /// `digitalocean server 77 (kastell-drill-web-…, 127.0.0.40, drill)`.
    pub(crate) fn describe(&self) -> String {
        let ip = self
            .server
            .public_ipv4
            .map_or_else(|| "no address".to_owned(), |ip| ip.to_string());
        let role = self.role.map_or("no role", |r| r.as_str());
        format!(
            "{} server {} ({:?}, {ip}, {role})",
            self.provider, self.server.id, self.server.name
        )
    }
}

/// The servers with kastell's marker at `provider` (id `id`) that no record
/// of `fleet` names (by provider and server id).
pub(crate) async fn at(
    id: &str,
    provider: &Arc<dyn CloudProvider>,
    fleet: &[ServerRecord],
) -> Result<Vec<Leftover>> {
    let managed = provider.list_managed_servers().await?;
    Ok(managed
        .into_iter()
        .filter(|m| {
            !fleet
                .iter()
                .any(|r| r.provider_id() == Some(id) && r.id == m.server.id.as_str())
        })
        .map(|m| Leftover {
            provider: id.to_owned(),
            server: m.server,
            role: m.role,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::CloudProviderExt;
    use kastell_core::memory::MemoryCloud;
    use kastell_core::types::ServerSpec;
    use std::time::Duration;

    fn spec(name: &str, role: ManagedRole) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            size: "small".into(),
            region: "mem-1".into(),
            image: "ubuntu-24.04".into(),
            ssh_public_key: "ssh-ed25519 AAAA me".into(),
            role,
        }
    }

    #[tokio::test]
    async fn marked_servers_outside_the_fleet_are_leftovers_and_fleet_ones_are_not() {
        let cloud = Arc::new(MemoryCloud::new());
        cloud.add_server("by-hand", std::net::Ipv4Addr::new(203, 0, 113, 5));
        let wait = Duration::from_secs(5);
        let joined = cloud
            .create_server_and_wait(&spec("web-recovered", ManagedRole::Recovery), wait)
            .await
            .unwrap();
        let drill = cloud
            .create_server_and_wait(&spec("kastell-drill-web", ManagedRole::Drill), wait)
            .await
            .unwrap();
        let mut record = ServerRecord::new(joined.id.to_string(), "web-recovered", "198.51.100.3");
        record.provider = Some("memory".into());
        let provider: Arc<dyn CloudProvider> = cloud;
        let found = at("memory", &provider, &[record]).await.unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].server.id, drill.id);
        assert!(found[0].is_drill());
        assert!(
            found[0].describe().contains("kastell-drill-web"),
            "{}",
            found[0].describe()
        );
        let elsewhere = at("hetzner", &provider, &[]).await.unwrap();
        assert_eq!(
            elsewhere.len(),
            2,
            "a record at another provider hides nothing"
        );
    }
}
