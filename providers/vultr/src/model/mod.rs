//! Vultr's JSON shapes (tolerant: unknown fields are ignored, anything that
//! may be missing is optional) and their normalisation into kastell types.

use std::net::Ipv4Addr;

use kastell_core::types::{Server, ServerId, ServerStatus, Snapshot, SnapshotId, SnapshotStatus};
use kastell_core::{Error, Result};
use serde::Deserialize;

use crate::ID;

/// Bytes per GB in Vultr's sizes (binary gigabytes, as disks are sold).
const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Where kastell's own snapshot descriptions start.
const SNAPSHOT_PREFIX: &str = "kastell:";

/// `GET /account`.
#[derive(Debug, Deserialize)]
pub(crate) struct AccountEnvelope {
    pub(crate) account: Account,
}

/// The account a key belongs to.
#[derive(Debug, Deserialize)]
pub(crate) struct Account {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) acls: Vec<String>,
}

/// The ACL that lets a key change existing servers (reboot, snapshot,
/// restore, destroy), as Vultr documents its ACLs (`manage_users`,
/// `subscriptions_view`, `subscriptions`, `provisioning`, `billing`,
/// `support`, `abuse`, `dns`, `upgrade`, `objstore`, `loadbalancer`, ...).
pub(crate) const WRITE_ACL: &str = "subscriptions";

/// Whether a key with `acls` may change servers: `None` when the list is
/// empty (it says nothing either way).
pub(crate) fn can_write(acls: &[String]) -> Option<bool> {
    (!acls.is_empty()).then(|| acls.iter().any(|a| a == WRITE_ACL))
}

/// `GET /instances/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct InstanceEnvelope {
    pub(crate) instance: Instance,
}

/// `GET /instances`: one cursor page.
#[derive(Debug, Deserialize)]
pub(crate) struct InstancePage {
    #[serde(default)]
    pub(crate) instances: Vec<Instance>,
    #[serde(default)]
    pub(crate) meta: Option<Meta>,
}

/// One instance.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Instance {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) label: Option<String>,
    #[serde(default)]
    pub(crate) hostname: Option<String>,
    #[serde(default)]
    pub(crate) main_ip: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) power_status: Option<String>,
    #[serde(default)]
    pub(crate) server_status: Option<String>,
    #[serde(default)]
    pub(crate) plan: Option<String>,
    #[serde(default)]
    pub(crate) region: Option<String>,
    /// Disk size in GB.
    #[serde(default)]
    pub(crate) disk: Option<f64>,
    #[serde(default)]
    pub(crate) date_created: Option<String>,
    /// Its tags; kastell's marker lives here.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// Pagination metadata.
#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    #[serde(default)]
    pub(crate) links: Option<Links>,
}

/// Cursor links; `""` when there is no such page.
#[derive(Debug, Deserialize)]
pub(crate) struct Links {
    #[serde(default)]
    pub(crate) next: Option<String>,
}

/// The next cursor of a page, `None` on the last page.
pub(crate) fn next_cursor(meta: Option<Meta>) -> Option<String> {
    meta.and_then(|m| m.links)
        .and_then(|l| l.next)
        .filter(|next| !next.trim().is_empty())
}

/// `GET /snapshots/{id}` and `POST /snapshots`.
#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotEnvelope {
    pub(crate) snapshot: VultrSnapshot,
}

/// `GET /snapshots`: one cursor page.
#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotPage {
    #[serde(default)]
    pub(crate) snapshots: Vec<VultrSnapshot>,
    #[serde(default)]
    pub(crate) meta: Option<Meta>,
}

/// One snapshot. It names no instance; see [`description_for`].
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VultrSnapshot {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) date_created: Option<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Size in bytes; 0 while pending.
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) status: Option<String>,
}

/// Whether `id` is a UUID (`8-4-4-4-12` hex digits), the only id shape the
/// v2 API accepts for instances and snapshots.
pub(crate) fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Vultr's three status words as one raw value, `active/running/ok`.
pub(crate) fn raw_status(instance: &Instance) -> String {
    let word = |w: &Option<String>| w.clone().unwrap_or_else(|| "?".to_owned());
    format!(
        "{}/{}/{}",
        word(&instance.status),
        word(&instance.power_status),
        word(&instance.server_status)
    )
}

/// Normalises Vultr's `status`, `power_status` and `server_status`.
///
/// Only `active` + `running` + `ok` is [`ServerStatus::Running`] (Vultr's
/// "ready"): `power_status` reads `running` long before the boot finishes.
pub(crate) fn server_status(instance: &Instance) -> ServerStatus {
    let status = instance.status.as_deref().unwrap_or("");
    let power = instance.power_status.as_deref().unwrap_or("");
    let server = instance.server_status.as_deref().unwrap_or("");
    match (status, power, server) {
        ("pending", _, _) => ServerStatus::Provisioning,
        ("suspended", _, _) => ServerStatus::Off,
        ("resizing", _, _) => ServerStatus::Migrating,
        ("active", "running", "ok") => ServerStatus::Running,
        ("active", _, "locked") => ServerStatus::Provisioning,
        ("active", "stopped", "installingbooting") => ServerStatus::Rebooting,
        ("active", "stopped", _) => ServerStatus::Off,
        ("active", "running", "installingbooting") => ServerStatus::Starting,
        ("active", "running", "none") => ServerStatus::Provisioning,
        _ => ServerStatus::Unknown,
    }
}

/// Whether the instance is ready: `active`, `running` and `ok`.
pub(crate) fn is_ready(instance: &Instance) -> bool {
    server_status(instance) == ServerStatus::Running
}

/// The public IPv4: `main_ip`, unless it is empty, `0.0.0.0` (pending) or
/// a private, link-local or broadcast address. A loopback address is kept:
/// Vultr never assigns one, and the sandbox's simulated servers are fake
/// hosts on loopback.
pub(crate) fn public_ipv4(instance: &Instance) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = instance.main_ip.as_deref()?.trim().parse().ok()?;
    let private = ip.is_unspecified() || ip.is_private() || ip.is_link_local() || ip.is_broadcast();
    (!private).then_some(ip)
}

/// The kastell server for a Vultr instance. Refuses an instance whose id
/// is not a valid server id.
pub(crate) fn to_server(instance: Instance) -> Result<Server> {
    let id = ServerId::new(instance.id.clone()).map_err(|e| {
        Error::unexpected(format!("Vultr returned an unusable instance id: {e}")).with_provider(ID)
    })?;
    let name = instance
        .label
        .clone()
        .filter(|l| !l.is_empty())
        .or_else(|| instance.hostname.clone())
        .unwrap_or_default();
    Ok(Server {
        id,
        name,
        status: server_status(&instance),
        raw_status: raw_status(&instance),
        public_ipv4: public_ipv4(&instance),
        region: instance.region.clone(),
        plan: instance.plan.clone(),
        disk_gb: instance.disk,
        created_at: instance.date_created.clone(),
    })
}

/// Normalises a snapshot's `status` (`pending`, `complete`, `deleted`).
pub(crate) fn snapshot_status(status: Option<&str>) -> SnapshotStatus {
    match status.unwrap_or("") {
        "pending" => SnapshotStatus::Creating,
        "complete" => SnapshotStatus::Available,
        "deleted" => SnapshotStatus::Deleting,
        "failed" | "error" => SnapshotStatus::Failed,
        _ => SnapshotStatus::Unknown,
    }
}

/// Bytes to GB; `None` for 0 (Vultr reports 0 until the snapshot is done).
pub(crate) fn bytes_to_gb(bytes: Option<u64>) -> Option<f64> {
    bytes.filter(|b| *b > 0).map(|b| b as f64 / BYTES_PER_GB)
}

/// The description kastell gives a snapshot of `server`:
/// `kastell:<instance-id>:<name>`.
pub(crate) fn description_for(server: &ServerId, name: &str) -> String {
    format!("{}{name}", owner_prefix(server))
}

/// The description prefix of `server`'s snapshots.
pub(crate) fn owner_prefix(server: &ServerId) -> String {
    format!("{SNAPSHOT_PREFIX}{server}:")
}

/// Whether kastell took `snapshot` from `server`.
pub(crate) fn belongs_to(snapshot: &VultrSnapshot, server: &ServerId) -> bool {
    snapshot
        .description
        .as_deref()
        .is_some_and(|d| d.starts_with(&owner_prefix(server)))
}

/// The kastell snapshot for a Vultr snapshot of `server`, with the name
/// taken from the description. Refuses an unusable snapshot id.
pub(crate) fn to_snapshot(snapshot: VultrSnapshot, server: &ServerId) -> Result<Snapshot> {
    let id = SnapshotId::new(snapshot.id.clone()).map_err(|e| {
        Error::unexpected(format!("Vultr returned an unusable snapshot id: {e}")).with_provider(ID)
    })?;
    let description = snapshot.description.clone().unwrap_or_default();
    let prefix = owner_prefix(server);
    let name = description
        .strip_prefix(&prefix)
        .unwrap_or(&description)
        .to_owned();
    Ok(Snapshot {
        id,
        server_id: Some(server.clone()),
        name,
        status: snapshot_status(snapshot.status.as_deref()),
        raw_status: snapshot.status.clone().unwrap_or_default(),
        size_gb: bytes_to_gb(snapshot.size),
        created_at: snapshot.date_created.clone(),
        // Vultr's snapshot object documents no tags or labels (id,
        // date_created, description, size, compressed_size, status, os_id,
        // app_id), and the description is the name: kastell's are told by
        // name alone.
        managed: None,
    })
}

#[cfg(test)]
mod tests;
