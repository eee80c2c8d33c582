//! The DigitalOcean JSON this crate reads, and its normalisation into the
//! kastell types.
//!
//! Every struct is tolerant: unknown fields are ignored and anything the API
//! may leave out or send as `null` is an `Option` or defaults.

use std::net::Ipv4Addr;

use kastell_core::types::{
    ActionState, MANAGED_TAG, Server, ServerId, ServerStatus, Snapshot, SnapshotId, SnapshotStatus,
};
use kastell_core::{Error, Result};
use serde::{Deserialize, Deserializer};

use crate::ID;

/// An id that DigitalOcean sends as a number (`/v2/droplets`) or as a string
/// (`/v2/snapshots`), kept as text.
fn id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::Number(n) => n.to_string(),
        Raw::Text(s) => s,
    })
}

/// `{"account": {...}}` from `GET /v2/account`.
#[derive(Debug, Deserialize)]
pub(crate) struct AccountEnvelope {
    pub(crate) account: Account,
}

/// The parts of an account kastell shows.
#[derive(Debug, Deserialize)]
pub(crate) struct Account {
    pub(crate) email: Option<String>,
    pub(crate) uuid: Option<String>,
    pub(crate) team: Option<Team>,
}

/// The team a token belongs to.
#[derive(Debug, Deserialize)]
pub(crate) struct Team {
    pub(crate) name: Option<String>,
}

impl Account {
    /// The most readable label: team name, then e-mail, then uuid.
    pub(crate) fn label(&self) -> Option<String> {
        self.team
            .as_ref()
            .and_then(|t| t.name.clone())
            .or_else(|| self.email.clone())
            .or_else(|| self.uuid.clone())
            .filter(|s| !s.is_empty())
    }
}

/// `{"droplet": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct DropletEnvelope {
    pub(crate) droplet: Droplet,
}

/// One droplet.
#[derive(Debug, Deserialize)]
pub(crate) struct Droplet {
    #[serde(deserialize_with = "id_text")]
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
    /// Disk in GB.
    pub(crate) disk: Option<f64>,
    pub(crate) size_slug: Option<String>,
    pub(crate) networks: Option<Networks>,
    pub(crate) region: Option<Region>,
    pub(crate) created_at: Option<String>,
    /// Its tags; kastell's marker lives here.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// A droplet's addresses.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Networks {
    #[serde(default)]
    pub(crate) v4: Option<Vec<NetworkV4>>,
}

/// One IPv4 address with its kind (`public` or `private`).
#[derive(Debug, Deserialize)]
pub(crate) struct NetworkV4 {
    pub(crate) ip_address: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
}

/// A region reference.
#[derive(Debug, Deserialize)]
pub(crate) struct Region {
    pub(crate) slug: Option<String>,
}

/// `links` of a list answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Links {
    pub(crate) pages: Option<Pages>,
}

/// `links.pages`: only the meaningful keys are present.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Pages {
    pub(crate) next: Option<String>,
}

/// `{"droplets": [...], "links": {...}, "meta": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct DropletPage {
    #[serde(default)]
    pub(crate) droplets: Option<Vec<Droplet>>,
    pub(crate) links: Option<Links>,
}

/// `{"snapshots": [...], "links": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotPage {
    #[serde(default)]
    pub(crate) snapshots: Option<Vec<DoSnapshot>>,
    pub(crate) links: Option<Links>,
}

/// One droplet snapshot as `/v2/snapshots` shows it (string ids; an int
/// id in a droplet's own list, which kastell no longer reads).
#[derive(Debug, Deserialize)]
pub(crate) struct DoSnapshot {
    #[serde(deserialize_with = "id_text")]
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) size_gigabytes: Option<f64>,
    /// The droplet it was taken of.
    #[serde(default, deserialize_with = "some_id_text")]
    pub(crate) resource_id: Option<String>,
    /// Its tags (kastell's marker among them when kastell took it).
    #[serde(default)]
    pub(crate) tags: Option<Vec<String>>,
}

/// [`id_text`] that may be absent or `null`.
fn some_id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    Ok(
        Option::<Raw>::deserialize(deserializer)?.map(|raw| match raw {
            Raw::Number(n) => n.to_string(),
            Raw::Text(s) => s,
        }),
    )
}

/// `{"action": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionEnvelope {
    pub(crate) action: Action,
}

/// An action: `in-progress`, `completed` or `errored`.
#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    #[serde(deserialize_with = "id_text")]
    pub(crate) id: String,
    pub(crate) status: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) started_at: Option<String>,
}

/// The normalised status of a droplet status word. DigitalOcean has no
/// "rebooting": work in flight only shows as `locked`.
pub(crate) fn server_status(raw: &str) -> ServerStatus {
    match raw {
        "active" => ServerStatus::Running,
        "off" | "archive" => ServerStatus::Off,
        "new" => ServerStatus::Provisioning,
        _ => ServerStatus::Unknown,
    }
}

/// The normalised state of an action status word; an unknown word is
/// treated as still running.
pub(crate) fn action_state(raw: &str) -> ActionState {
    match raw {
        "completed" => ActionState::Succeeded,
        "errored" => ActionState::Failed,
        _ => ActionState::Running,
    }
}

/// The public IPv4: the `networks.v4` entry of type `public` (the private
/// one may come first). `None` when there is none or it does not parse.
pub(crate) fn public_ipv4(networks: Option<&Networks>) -> Option<Ipv4Addr> {
    networks?
        .v4
        .as_ref()?
        .iter()
        .filter(|n| n.kind.as_deref() == Some("public"))
        .find_map(|n| n.ip_address.as_deref()?.trim().parse().ok())
}

impl Droplet {
    /// The kastell view of this droplet. Refuses an id that is not a valid
    /// server id.
    pub(crate) fn into_server(self) -> Result<Server> {
        let id = ServerId::new(&self.id).map_err(|e| {
            Error::unexpected(format!("droplet id {:?} is unusable: {e}", self.id))
                .with_provider(ID)
        })?;
        let raw_status = self.status.unwrap_or_default();
        Ok(Server {
            id,
            name: self.name.unwrap_or_default(),
            status: server_status(&raw_status),
            raw_status,
            public_ipv4: public_ipv4(self.networks.as_ref()),
            region: self.region.and_then(|r| r.slug),
            plan: self.size_slug,
            disk_gb: self.disk,
            created_at: self.created_at,
        })
    }
}

/// DigitalOcean snapshots carry no status: the list shows a snapshot only
/// once it is complete, so every listed snapshot is available.
pub(crate) const LISTED_SNAPSHOT_STATUS: &str = "available";

impl DoSnapshot {
    /// The kastell view of a snapshot of droplet `server`.
    pub(crate) fn into_snapshot(self, server: &ServerId) -> Result<Snapshot> {
        let id = SnapshotId::new(&self.id).map_err(|e| {
            Error::unexpected(format!("snapshot id {:?} is unusable: {e}", self.id))
                .with_provider(ID)
        })?;
        Ok(Snapshot {
            id,
            server_id: Some(server.clone()),
            name: self.name.unwrap_or_default(),
            status: SnapshotStatus::Available,
            raw_status: LISTED_SNAPSHOT_STATUS.to_owned(),
            size_gb: self.size_gigabytes,
            created_at: self.created_at,
            // A snapshot without kastell's tag (another tool's, a person's,
            // or one kastell took before it tagged them) is not kastell's.
            managed: Some(
                self.tags
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t == MANAGED_TAG),
            ),
        })
    }
}

/// The snapshot a completed snapshot action produced: among `snapshots`,
/// those named `name` (when known) and created no earlier than the action
/// started (when known, compared to the second), the newest. ISO-8601 UTC
/// times compare as text once cut to whole seconds.
pub(crate) fn pick_new_snapshot<'a>(
    snapshots: &'a [Snapshot],
    name: Option<&str>,
    started_at: Option<&str>,
) -> Option<&'a Snapshot> {
    let to_second = |t: &'a str| t.get(..19).unwrap_or(t);
    snapshots
        .iter()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .filter(|s| match (started_at, s.created_at.as_deref()) {
            (Some(start), Some(created)) => to_second(created) >= start.get(..19).unwrap_or(start),
            _ => true,
        })
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DROPLET: &str = r#"{"droplet": {"id": 3164444, "name": "web-1", "status": "active", "locked": false,
      "memory": 1024, "vcpus": 1, "disk": 25, "size_slug": "s-1vcpu-1gb",
      "snapshot_ids": [67512819], "backup_ids": [],
      "networks": {"v4": [{"ip_address": "10.128.192.124", "netmask": "255.255.0.0", "gateway": "", "type": "private"},
                          {"ip_address": "192.241.165.154", "netmask": "255.255.255.0", "gateway": "192.241.165.1", "type": "public"}],
                   "v6": []},
      "region": {"slug": "nyc3", "name": "New York 3"}, "created_at": "2020-07-21T18:37:44Z"}}"#;

    #[test]
    fn droplet_normalises_with_the_public_address() {
        let envelope: DropletEnvelope = serde_json::from_str(DROPLET).unwrap();
        let server = envelope.droplet.into_server().unwrap();
        assert_eq!(server.id.as_str(), "3164444");
        assert_eq!(server.status, ServerStatus::Running);
        assert_eq!(server.raw_status, "active");
        assert_eq!(
            server.public_ipv4,
            Some(Ipv4Addr::new(192, 241, 165, 154)),
            "the public entry, not index 0"
        );
        assert_eq!(server.region.as_deref(), Some("nyc3"));
        assert_eq!(server.plan.as_deref(), Some("s-1vcpu-1gb"));
        assert_eq!(server.disk_gb, Some(25.0));
    }

    #[test]
    fn sparse_droplets_are_tolerated() {
        let json = r#"{"droplet": {"id": 7, "name": null, "status": "new", "networks": {"v4": [
            {"ip_address": "10.0.0.2", "type": "private"}]}, "extra": {"x": 1}}}"#;
        let server = serde_json::from_str::<DropletEnvelope>(json)
            .unwrap()
            .droplet
            .into_server()
            .unwrap();
        assert_eq!(server.status, ServerStatus::Provisioning);
        assert_eq!(
            server.public_ipv4, None,
            "a private address is never public"
        );
        let bare: DropletEnvelope =
            serde_json::from_str(r#"{"droplet": {"id": 8, "networks": null}}"#).unwrap();
        let server = bare.droplet.into_server().unwrap();
        assert_eq!(server.status, ServerStatus::Unknown);
        assert_eq!(server.public_ipv4, None);
    }

    #[test]
    fn statuses() {
        assert_eq!(server_status("active"), ServerStatus::Running);
        assert_eq!(server_status("off"), ServerStatus::Off);
        assert_eq!(server_status("archive"), ServerStatus::Off);
        assert_eq!(server_status("weird"), ServerStatus::Unknown);
        assert_eq!(action_state("in-progress"), ActionState::Running);
        assert_eq!(action_state("completed"), ActionState::Succeeded);
        assert_eq!(action_state("errored"), ActionState::Failed);
    }

    #[test]
    fn snapshots_accept_int_and_string_ids() {
        let json = r#"{"snapshots": [{"id": 6372321, "name": "web-01-1595954862243",
            "created_at": "2020-07-28T16:47:44Z", "regions": ["nyc3"], "min_disk_size": 25,
            "size_gigabytes": 2.34, "type": "snapshot"}], "links": {}, "meta": {"total": 1}}"#;
        let page: SnapshotPage = serde_json::from_str(json).unwrap();
        let server = ServerId::new("3164444").unwrap();
        let snap = page
            .snapshots
            .unwrap()
            .remove(0)
            .into_snapshot(&server)
            .unwrap();
        assert_eq!(snap.id.as_str(), "6372321");
        assert_eq!(snap.status, SnapshotStatus::Available);
        assert_eq!(snap.size_gb, Some(2.34));
        assert_eq!(snap.server_id, Some(server));
        let text: DoSnapshot =
            serde_json::from_str(r#"{"id": "6372321", "resource_id": "200776916"}"#).unwrap();
        assert_eq!(text.id, "6372321");
    }

    #[test]
    fn actions_parse() {
        let json = r#"{"action": {"id": 36804748, "status": "in-progress", "type": "reboot",
            "started_at": "2020-11-14T16:29:21Z", "completed_at": null,
            "resource_id": 3164444, "resource_type": "droplet", "region_slug": "nyc3"}}"#;
        let action = serde_json::from_str::<ActionEnvelope>(json).unwrap().action;
        assert_eq!(action.id, "36804748");
        assert_eq!(action.kind.as_deref(), Some("reboot"));
        assert_eq!(
            action_state(action.status.as_deref().unwrap()),
            ActionState::Running
        );
    }

    fn snap(id: &str, name: &str, created: &str) -> Snapshot {
        Snapshot {
            id: SnapshotId::new(id).unwrap(),
            server_id: None,
            name: name.into(),
            status: SnapshotStatus::Available,
            raw_status: "available".into(),
            size_gb: None,
            created_at: Some(created.into()),
            managed: None,
        }
    }

    #[test]
    fn the_new_snapshot_is_the_newest_of_its_name() {
        let all = [
            snap("1", "nightly", "2026-08-01T10:00:00Z"),
            snap("2", "nightly", "2026-08-02T10:00:00Z"),
            snap("3", "other", "2026-08-03T10:00:00Z"),
        ];
        let pick = |name, start| pick_new_snapshot(&all, name, start).map(|s| s.id.as_str());
        assert_eq!(pick(Some("nightly"), None), Some("2"));
        assert_eq!(
            pick(Some("nightly"), Some("2026-08-01T09:59:59Z")),
            Some("2")
        );
        assert_eq!(pick(None, Some("2026-08-02T10:00:00Z")), Some("3"));
        assert_eq!(pick(None, Some("2026-09-01T00:00:00Z")), None);
        assert_eq!(pick(Some("absent"), None), None);
        assert_eq!(
            pick(Some("nightly"), Some("2026-08-02T10:00:01Z")),
            None,
            "an older snapshot of the same name is never taken for the new one"
        );
        let fractional = [snap("4", "x", "2026-08-02T10:00:00.250Z")];
        assert_eq!(
            pick_new_snapshot(&fractional, Some("x"), Some("2026-08-02T10:00:00Z"))
                .map(|s| s.id.as_str()),
            Some("4")
        );
    }
}
