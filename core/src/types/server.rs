//! Servers as a cloud provider reports them.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::ids::ServerId;

/// Who a provider implementation is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    /// Registry id (`hetzner`, `digitalocean`, ...).
    pub id: &'static str,
    /// Human name (`Hetzner Cloud`).
    pub display_name: &'static str,
    /// The API endpoint in use (shown so a simulator or proxy is obvious).
    pub endpoint: String,
}

/// What validating a token found out (`Default`: nothing known).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TokenInfo {
    /// Whether the token may change things (reboot, snapshot); `None` when
    /// the API does not tell (Hetzner: a read-only token is only refused at
    /// the first write).
    pub can_write: Option<bool>,
    /// Account or project label, when the API tells.
    pub account: Option<String>,
    /// Scopes granted, when the API tells.
    pub scopes: Vec<String>,
}

/// A server's power state, normalised across providers. The provider's own
/// word is kept in [`Server::raw_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    /// Powered on and booted.
    Running,
    /// Powered off.
    Off,
    /// Powering on.
    Starting,
    /// Powering off.
    Stopping,
    /// In a reboot.
    Rebooting,
    /// Being created or rebuilt.
    Provisioning,
    /// Moving between hosts.
    Migrating,
    /// Being deleted.
    Deleting,
    /// Anything the normalisation does not know.
    Unknown,
}

impl ServerStatus {
    /// A stable lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Off => "off",
            Self::Starting => "starting",
            Self::Stopping => "stopping",
            Self::Rebooting => "rebooting",
            Self::Provisioning => "provisioning",
            Self::Migrating => "migrating",
            Self::Deleting => "deleting",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server at a cloud provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// The provider's id.
    pub id: ServerId,
    /// The provider's name for it.
    pub name: String,
    /// Normalised status.
    pub status: ServerStatus,
    /// The provider's own status word.
    pub raw_status: String,
    /// The public IPv4 address (never a private or VPC address).
    pub public_ipv4: Option<Ipv4Addr>,
    /// Region or location slug.
    pub region: Option<String>,
    /// Plan, size or server type slug.
    pub plan: Option<String>,
    /// Disk size in GB, used for snapshot cost estimates.
    pub disk_gb: Option<f64>,
    /// Creation time as the provider reports it (ISO-8601).
    pub created_at: Option<String>,
}

impl Server {
    /// A server with `id`, `name` and `status` (its raw status the same
    /// name) and nothing else known: fill in the fields the API gives.
    pub fn new(id: ServerId, name: impl Into<String>, status: ServerStatus) -> Self {
        Self {
            id,
            name: name.into(),
            status,
            raw_status: status.as_str().to_owned(),
            public_ipv4: None,
            region: None,
            plan: None,
            disk_gb: None,
            created_at: None,
        }
    }
}
