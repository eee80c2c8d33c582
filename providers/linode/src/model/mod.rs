//! Linode's JSON, read tolerantly (unknown fields ignored, nullable fields
//! optional), and its normalisation into the kastell types.

use std::net::Ipv4Addr;

use kastell_core::types::{
    ActionState, ActionStatus, MANAGED_TAG, Server, ServerId, ServerStatus, Snapshot, SnapshotId,
    SnapshotStatus,
};
use kastell_core::{Error, Result};
use serde::Deserialize;

use crate::convention;

/// One page of a list: `{"data": [...], "page": 1, "pages": 3, "results": 300}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub(crate) data: Vec<T>,
    #[serde(default)]
    pub(crate) page: Option<u64>,
    #[serde(default)]
    pub(crate) pages: Option<u64>,
}

/// `GET /profile`.
#[derive(Debug, Deserialize)]
pub(crate) struct Profile {
    #[serde(default)]
    pub(crate) username: Option<String>,
}

/// `GET /linode/instances/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Instance {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) region: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) plan: Option<String>,
    #[serde(default)]
    pub(crate) specs: Option<Specs>,
    #[serde(default)]
    pub(crate) created: Option<String>,
    /// Its tags; kastell's marker lives here.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// An instance's `specs`; `disk` is in MB.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Specs {
    #[serde(default)]
    pub(crate) disk: Option<u64>,
}

/// `GET /linode/instances/{id}/ips`.
#[derive(Debug, Deserialize)]
pub(crate) struct InstanceIps {
    #[serde(default)]
    pub(crate) ipv4: Option<Ipv4Groups>,
}

/// The IPv4 groups of an instance.
#[derive(Debug, Deserialize)]
pub(crate) struct Ipv4Groups {
    #[serde(default)]
    pub(crate) public: Option<Vec<IpAddress>>,
}

/// One address, as in `/networking/ips` and the instance's `ips`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IpAddress {
    pub(crate) address: String,
    #[serde(default)]
    pub(crate) linode_id: Option<u64>,
    #[serde(default)]
    pub(crate) public: Option<bool>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
}

impl IpAddress {
    /// The address when it is a public IPv4.
    pub(crate) fn public_ipv4(&self) -> Option<Ipv4Addr> {
        let public = self.public == Some(true);
        let v4 = self.kind.as_deref().is_none_or(|k| k == "ipv4");
        if public && v4 {
            self.address.parse().ok()
        } else {
            None
        }
    }
}

/// The first public IPv4 of an instance's `ips` answer.
pub(crate) fn public_ipv4(ips: &InstanceIps) -> Option<Ipv4Addr> {
    ips.ipv4
        .as_ref()?
        .public
        .as_ref()?
        .iter()
        .find_map(|ip| ip.address.parse().ok())
}

/// `GET /linode/instances/{id}/disks` items; `size` is in MB.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Disk {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) filesystem: Option<String>,
}

/// The disk an image is made from: the largest ext4 disk, else the largest
/// disk that is not swap. Never a swap disk.
pub(crate) fn pick_disk(disks: &[Disk]) -> Option<&Disk> {
    fn is(d: &Disk, fs: &str) -> bool {
        d.filesystem.as_deref() == Some(fs)
    }
    let largest = |a: &&Disk, b: &&Disk| a.size.unwrap_or(0).cmp(&b.size.unwrap_or(0));
    disks
        .iter()
        .filter(|d| is(d, "ext4"))
        .max_by(largest)
        .or_else(|| disks.iter().filter(|d| !is(d, "swap")).max_by(largest))
}

/// An image (`private/N`); `size` is in MB.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Image {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) is_public: Option<bool>,
    #[serde(default)]
    pub(crate) created: Option<String>,
    /// Its tags; absent where the API predates tags on images.
    #[serde(default)]
    pub(crate) tags: Option<Vec<String>>,
}

impl Image {
    /// Whether this is a private image kastell made from instance `server`.
    pub(crate) fn belongs_to(&self, server: &ServerId) -> bool {
        self.is_public != Some(true)
            && convention::image_owner(self.label.as_deref(), self.description.as_deref())
                .is_some_and(|owner| owner == server.as_str())
    }
}

/// An account event (`GET /account/events/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Event {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) percent_complete: Option<f64>,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// An event's progress as an [`ActionStatus`].
pub(crate) fn event_status(event: &Event) -> ActionStatus {
    let raw = event.status.as_deref().unwrap_or("");
    let state = match raw {
        "finished" | "notification" => ActionState::Succeeded,
        "failed" | "canceled" => ActionState::Failed,
        _ => ActionState::Running,
    };
    let progress = match state {
        ActionState::Succeeded => Some(100),
        _ => event.percent_complete.map(|p| p.clamp(0.0, 100.0) as u8),
    };
    let message = match state {
        ActionState::Failed => Some(
            event
                .message
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("event {} {raw}", event.id)),
        ),
        _ => None,
    };
    ActionStatus {
        state,
        progress,
        resource: None,
        message,
    }
}

/// An image's progress as an [`ActionStatus`] of its snapshot action.
pub(crate) fn image_action_status(image: &Image) -> ActionStatus {
    let state = match snapshot_status(image.status.as_deref().unwrap_or("")) {
        SnapshotStatus::Available => ActionState::Succeeded,
        SnapshotStatus::Failed | SnapshotStatus::Deleting => ActionState::Failed,
        _ => ActionState::Running,
    };
    ActionStatus {
        state,
        progress: (state == ActionState::Succeeded).then_some(100),
        resource: Some(image.id.clone()),
        message: (state == ActionState::Failed).then(|| {
            format!(
                "image {} is {}",
                image.id,
                image.status.as_deref().unwrap_or("?")
            )
        }),
    }
}

/// Linode's instance status in kastell's words.
pub(crate) fn server_status(raw: &str) -> ServerStatus {
    match raw {
        "running" => ServerStatus::Running,
        "offline" | "stopped" => ServerStatus::Off,
        "booting" => ServerStatus::Starting,
        "rebooting" => ServerStatus::Rebooting,
        "shutting_down" => ServerStatus::Stopping,
        // `busy`: held by an operation, like the rebuilds and clones.
        "provisioning" | "rebuilding" | "cloning" | "restoring" | "busy" => {
            ServerStatus::Provisioning
        }
        // A suspended account's instances are powered off.
        "billing_suspension" => ServerStatus::Off,
        "migrating" | "resizing" => ServerStatus::Migrating,
        "deleting" => ServerStatus::Deleting,
        _ => ServerStatus::Unknown,
    }
}

/// Linode's image status in kastell's words.
pub(crate) fn snapshot_status(raw: &str) -> SnapshotStatus {
    match raw {
        "creating" | "pending_upload" => SnapshotStatus::Creating,
        "available" => SnapshotStatus::Available,
        "deleted" => SnapshotStatus::Deleting,
        _ => SnapshotStatus::Unknown,
    }
}

/// Megabytes (Linode's disk and image unit) to gigabytes.
pub(crate) fn mb_to_gb(mb: u64) -> f64 {
    mb as f64 / 1024.0
}

/// An instance as a kastell [`Server`], with its public IPv4 found elsewhere.
pub(crate) fn to_server(instance: &Instance, public_ipv4: Option<Ipv4Addr>) -> Result<Server> {
    let raw_status = instance.status.clone().unwrap_or_default();
    Ok(Server {
        id: ServerId::new(instance.id.to_string())?,
        name: instance.label.clone().unwrap_or_default(),
        status: server_status(&raw_status),
        raw_status,
        public_ipv4,
        region: instance.region.clone(),
        plan: instance.plan.clone(),
        disk_gb: instance.specs.as_ref().and_then(|s| s.disk).map(mb_to_gb),
        created_at: instance.created.clone(),
    })
}

/// An image as a kastell [`Snapshot`] of `server`.
pub(crate) fn to_snapshot(image: &Image, server: &ServerId) -> Result<Snapshot> {
    let raw_status = image.status.clone().unwrap_or_default();
    Ok(Snapshot {
        id: SnapshotId::new(image.id.clone())
            .map_err(|e| Error::unexpected(format!("Linode returned an unusable image id: {e}")))?,
        server_id: Some(server.clone()),
        name: image.label.clone().unwrap_or_default(),
        status: snapshot_status(&raw_status),
        raw_status,
        size_gb: image.size.filter(|s| *s > 0).map(mb_to_gb),
        created_at: image.created.clone(),
        // The `kastell-managed` tag every image kastell captures gets; an
        // API without tags on images leaves the label to decide.
        managed: image
            .tags
            .as_ref()
            .map(|tags| tags.iter().any(|t| t == MANAGED_TAG)),
    })
}

#[cfg(test)]
mod tests;
