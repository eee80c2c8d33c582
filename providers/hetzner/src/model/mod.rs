//! Hetzner Cloud JSON shapes (tolerant: unknown fields are ignored, nullable
//! fields are `Option`) and their normalisation into the core types.

use std::net::Ipv4Addr;

use kastell_core::types::{
    ActionState, ActionStatus, Server, ServerId, ServerStatus, Snapshot, SnapshotId, SnapshotStatus,
};
use kastell_core::{Error, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::ID;

/// A list answer: its items and the next page number, if any.
pub(crate) trait Paged: DeserializeOwned {
    /// One listed item.
    type Item;
    /// The items and `meta.pagination.next_page`.
    fn into_page(self) -> (Vec<Self::Item>, Option<u64>);
}

/// `meta` of a list answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub(crate) pagination: Option<Pagination>,
}

/// `meta.pagination`; every field may be null.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub(crate) next_page: Option<u64>,
}

fn next_page(meta: Option<Meta>) -> Option<u64> {
    meta.and_then(|m| m.pagination).and_then(|p| p.next_page)
}

/// `{"server": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServerEnvelope {
    pub(crate) server: HServer,
}

/// `{"servers": [...], "meta": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ServerList {
    #[serde(default)]
    servers: Vec<HServer>,
    #[serde(default)]
    meta: Option<Meta>,
}

impl Paged for ServerList {
    type Item = HServer;
    fn into_page(self) -> (Vec<HServer>, Option<u64>) {
        (self.servers, next_page(self.meta))
    }
}

/// A Hetzner server.
#[derive(Debug, Deserialize)]
pub(crate) struct HServer {
    pub(crate) id: i64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    public_net: Option<PublicNet>,
    #[serde(default)]
    server_type: Option<ServerType>,
    #[serde(default)]
    primary_disk_size: Option<f64>,
    #[serde(default)]
    location: Option<Named>,
    /// User-defined labels; kastell's marker lives here.
    #[serde(default)]
    pub(crate) labels: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct PublicNet {
    #[serde(default)]
    ipv4: Option<Ipv4Info>,
}

#[derive(Debug, Deserialize)]
struct Ipv4Info {
    #[serde(default)]
    ip: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ServerType {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disk: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
}

impl HServer {
    /// The public IPv4 (`public_net.ipv4.ip`); `None` for IPv6-only servers.
    pub(crate) fn public_ipv4(&self) -> Option<Ipv4Addr> {
        let ip = self.public_net.as_ref()?.ipv4.as_ref()?.ip.as_deref()?;
        ip.trim().parse().ok()
    }

    /// The normalised server.
    pub(crate) fn into_server(self) -> Result<Server> {
        let raw = self.status.clone().unwrap_or_else(|| "unknown".to_owned());
        let public_ipv4 = self.public_ipv4();
        let disk_gb = self
            .server_type
            .as_ref()
            .and_then(|t| t.disk)
            .or(self.primary_disk_size);
        Ok(Server {
            id: ServerId::new(self.id.to_string())?,
            name: self.name.unwrap_or_default(),
            status: server_status(&raw),
            raw_status: raw,
            public_ipv4,
            region: self.location.and_then(|l| l.name),
            plan: self.server_type.and_then(|t| t.name),
            disk_gb,
            created_at: self.created,
        })
    }
}

/// Hetzner's server status word, normalised.
pub(crate) fn server_status(raw: &str) -> ServerStatus {
    match raw {
        "running" => ServerStatus::Running,
        "off" => ServerStatus::Off,
        "starting" => ServerStatus::Starting,
        "stopping" => ServerStatus::Stopping,
        "initializing" | "rebuilding" => ServerStatus::Provisioning,
        "migrating" => ServerStatus::Migrating,
        "deleting" => ServerStatus::Deleting,
        _ => ServerStatus::Unknown,
    }
}

/// `{"primary_ips": [...], "meta": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct PrimaryIpList {
    #[serde(default)]
    primary_ips: Vec<PrimaryIp>,
    #[serde(default)]
    meta: Option<Meta>,
}

impl Paged for PrimaryIpList {
    type Item = PrimaryIp;
    fn into_page(self) -> (Vec<PrimaryIp>, Option<u64>) {
        (self.primary_ips, next_page(self.meta))
    }
}

/// A primary IP and what it is assigned to.
#[derive(Debug, Deserialize)]
pub(crate) struct PrimaryIp {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    assignee_id: Option<i64>,
    #[serde(default)]
    assignee_type: Option<String>,
}

impl PrimaryIp {
    /// The server holding `ip`, when this primary IP is `ip` and assigned
    /// to a server.
    pub(crate) fn server_holding(&self, ip: Ipv4Addr) -> Option<i64> {
        let own: Ipv4Addr = self.ip.as_deref()?.trim().parse().ok()?;
        (own == ip && self.assignee_type.as_deref() == Some("server"))
            .then_some(self.assignee_id)
            .flatten()
    }
}

/// `{"image": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageEnvelope {
    pub(crate) image: HImage,
}

/// `{"images": [...], "meta": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageList {
    #[serde(default)]
    images: Vec<HImage>,
    #[serde(default)]
    meta: Option<Meta>,
}

impl Paged for ImageList {
    type Item = HImage;
    fn into_page(self) -> (Vec<HImage>, Option<u64>) {
        (self.images, next_page(self.meta))
    }
}

/// The answer to `create_image`: the new image and the action making it.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateImageAnswer {
    pub(crate) image: HImage,
    pub(crate) action: HAction,
}

/// A Hetzner image (we only keep snapshots).
#[derive(Debug, Deserialize)]
pub(crate) struct HImage {
    pub(crate) id: i64,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    image_size: Option<f64>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    created_from: Option<CreatedFrom>,
    #[serde(default)]
    labels: std::collections::HashMap<String, String>,
}

/// The label every snapshot kastell takes at Hetzner carries
/// (`managed-by=kastell`, as the original tool set it): the marker
/// rotation requires.
pub(crate) const SNAPSHOT_LABEL: (&str, &str) = ("managed-by", "kastell");

#[derive(Debug, Deserialize)]
struct CreatedFrom {
    id: i64,
}

impl HImage {
    /// Whether this is a snapshot taken from server `server`.
    pub(crate) fn is_snapshot_of(&self, server: i64) -> bool {
        self.kind.as_deref() == Some("snapshot")
            && self.created_from.as_ref().is_some_and(|c| c.id == server)
    }

    /// The raw status word (`creating`, `available`, `unavailable`).
    pub(crate) fn raw_status(&self) -> &str {
        self.status.as_deref().unwrap_or("unknown")
    }

    /// The normalised snapshot.
    pub(crate) fn into_snapshot(self) -> Result<Snapshot> {
        let raw = self.raw_status().to_owned();
        let server_id = match &self.created_from {
            Some(from) => Some(ServerId::new(from.id.to_string())?),
            None => None,
        };
        Ok(Snapshot {
            id: SnapshotId::new(self.id.to_string())?,
            server_id,
            name: self.description.or(self.name).unwrap_or_default(),
            status: snapshot_status(&raw),
            raw_status: raw,
            size_gb: self.image_size,
            created_at: self.created,
            managed: Some(
                self.labels.get(SNAPSHOT_LABEL.0).map(String::as_str) == Some(SNAPSHOT_LABEL.1),
            ),
        })
    }
}

/// Hetzner's image status word, normalised.
pub(crate) fn snapshot_status(raw: &str) -> SnapshotStatus {
    match raw {
        "creating" => SnapshotStatus::Creating,
        "available" => SnapshotStatus::Available,
        "unavailable" => SnapshotStatus::Failed,
        _ => SnapshotStatus::Unknown,
    }
}

/// `{"action": {...}}` (reboot, reset, rebuild, `GET /actions/{id}`).
#[derive(Debug, Deserialize)]
pub(crate) struct ActionEnvelope {
    pub(crate) action: HAction,
}

/// A Hetzner action.
#[derive(Debug, Deserialize)]
pub(crate) struct HAction {
    pub(crate) id: i64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    progress: Option<f64>,
    #[serde(default)]
    resources: Vec<Resource>,
    #[serde(default)]
    error: Option<ActionError>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    id: i64,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ActionError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl HAction {
    /// The action's state; `resource` is the image it produced, if any,
    /// else `fallback`.
    pub(crate) fn status(&self, fallback: Option<String>) -> Result<ActionStatus> {
        let state = match self.status.as_deref() {
            Some("running") => ActionState::Running,
            Some("success") => ActionState::Succeeded,
            Some("error") => ActionState::Failed,
            other => {
                return Err(Error::unexpected(format!(
                    "action {} has an unknown status {other:?}",
                    self.id
                ))
                .with_provider(ID));
            }
        };
        let message = self.error.as_ref().map(|e| match (&e.code, &e.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (code, message) => message.clone().or(code.clone()).unwrap_or_default(),
        });
        let image = self
            .resources
            .iter()
            .find(|r| r.kind.as_deref() == Some("image"))
            .map(|r| r.id.to_string());
        Ok(ActionStatus {
            state,
            progress: self.progress.map(|p| p.clamp(0.0, 100.0).round() as u8),
            resource: image.or(fallback),
            message,
        })
    }
}

/// `{"pricing": {...}}`, only what the snapshot estimate needs.
#[derive(Debug, Deserialize)]
pub(crate) struct PricingEnvelope {
    pub(crate) pricing: Pricing,
}

/// Prices: currency, the image (snapshot) price per GB-month and each
/// server type's prices per location.
#[derive(Debug, Deserialize)]
pub(crate) struct Pricing {
    pub(crate) currency: String,
    pub(crate) image: ImagePrice,
    #[serde(default)]
    pub(crate) server_types: Vec<PricingServerType>,
}

/// `pricing.image`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImagePrice {
    pub(crate) price_per_gb_month: Price,
}

/// A price as decimal strings.
#[derive(Debug, Deserialize)]
pub(crate) struct Price {
    pub(crate) gross: String,
}

impl Pricing {
    /// The gross price per GB-month as a number.
    pub(crate) fn gross_per_gb_month(&self) -> Result<f64> {
        let text = self.image.price_per_gb_month.gross.trim();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(Error::unexpected(format!(
                "Hetzner's pricing has an unreadable image price {text:?}"
            ))
            .with_provider(ID)),
        }
    }

    /// The currency as the original tool printed it (`€` for EUR).
    pub(crate) fn currency_symbol(&self) -> String {
        match self.currency.as_str() {
            "EUR" => "€".to_owned(),
            "USD" => "$".to_owned(),
            other => other.to_owned(),
        }
    }
}

pub(crate) mod provision;

pub(crate) use provision::{CreateServerAnswer, PricingServerType, SshKeyEnvelope};

#[cfg(test)]
mod tests;
