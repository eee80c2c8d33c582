//! Instances created and deleted through the API, and the types and
//! regions they are created from.

use std::net::Ipv4Addr;

use kastell_sim::private_ip;
use serde_json::{Value, json};

use super::{JobKind, Linode, Owner, Refusal, State};

/// Types on offer: id, label, memory MB, disk MB, vCPUs, monthly and
/// hourly dollars.
const TYPES: [(&str, &str, u64, u64, u32, f64, f64); 3] = [
    ("g6-nanode-1", "Nanode 1 GB", 1024, 25_600, 1, 5.0, 0.0075),
    ("g6-standard-1", "Linode 2 GB", 2048, 51_200, 1, 12.0, 0.018),
    ("g6-standard-2", "Linode 4 GB", 4096, 81_920, 2, 24.0, 0.036),
];

/// Regions: id, label, country.
const REGIONS: [(&str, &str, &str); 6] = [
    ("us-east", "Newark, NJ", "us"),
    ("us-sea", "Seattle, WA", "us"),
    ("eu-central", "Frankfurt, DE", "de"),
    ("eu-west", "London, UK", "gb"),
    ("id-cgk", "Jakarta, ID", "id"),
    ("br-gru", "Sao Paulo, BR", "br"),
];

/// Regions priced 20 % above the base price, as Linode's are.
const DEARER: [&str; 2] = ["id-cgk", "br-gru"];

/// Every type as `GET /linode/types` shows it.
pub(crate) fn type_json() -> Vec<Value> {
    TYPES
        .iter()
        .map(|(id, label, memory, disk, vcpus, monthly, hourly)| {
            let dearer: Vec<Value> = DEARER
                .iter()
                .map(|r| json!({"id": r, "monthly": monthly * 1.2, "hourly": hourly * 1.2}))
                .collect();
            json!({
                "id": id, "label": label, "class": if *id == "g6-nanode-1" { "nanode" } else { "standard" },
                "memory": memory, "disk": disk, "vcpus": vcpus, "gpus": 0,
                "network_out": 1000, "transfer": memory, "successor": null,
                "price": {"monthly": monthly, "hourly": hourly}, "region_prices": dearer,
                "addons": {"backups": {"price": {"monthly": 2.5, "hourly": 0.004}, "region_prices": []}},
            })
        })
        .collect()
}

/// Every region as `GET /regions` shows it.
pub(crate) fn region_json() -> Vec<Value> {
    REGIONS
        .iter()
        .map(|(id, label, country)| {
            json!({
                "id": id, "label": label, "country": country, "status": "ok",
                "capabilities": ["Linodes", "Block Storage", "Cloud Firewall"],
                "resolvers": {"ipv4": "192.0.2.53", "ipv6": "2001:db8::53"},
                "site_type": "core",
            })
        })
        .collect()
}

/// What a checked `POST /linode/instances` asks for.
#[derive(Debug)]
pub(crate) struct NewLinode {
    pub(crate) label: String,
    pub(crate) region: String,
    pub(crate) kind: String,
    pub(crate) image: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) public: Ipv4Addr,
}

/// Whether `label` is a label Linode accepts: 3 to 64 letters, digits,
/// `-`, `_` and `.`, starting and ending alphanumeric, no doubled symbol.
fn valid_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (3..=64).contains(&label.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !["--", "__", ".."].iter().any(|d| label.contains(d))
}

impl State {
    /// Creates an instance: `provisioning`, then `booting`, then `running`
    /// with its first boot. Refuses an unknown region, type or image, a bad
    /// or taken label and a tag of the wrong length.
    pub(crate) fn create_linode(&mut self, new: NewLinode, now: f64) -> Result<Value, Refusal> {
        let region = REGIONS
            .iter()
            .find(|r| r.0 == new.region)
            .ok_or_else(|| Refusal::Invalid("region", "region is not valid".into()))?
            .0;
        let kind = TYPES
            .iter()
            .find(|t| t.0 == new.kind)
            .ok_or_else(|| {
                Refusal::Invalid("type", "A valid plan type by that ID was not found".into())
            })?
            .0;
        let image = match new.image {
            Some(image) => self
                .image(&image)
                .map(|i| i.id.clone())
                .ok_or_else(|| Refusal::Invalid("image", "image is not valid".into()))?,
            None => String::new(),
        };
        if !valid_label(&new.label) {
            return Err(Refusal::Invalid(
                "label",
                "Label must be 3 to 64 letters, digits, dashes, underscores or periods".into(),
            ));
        }
        if self.linodes().any(|l| l.label == new.label) {
            return Err(Refusal::Invalid(
                "label",
                "Label must be unique among your Linodes".into(),
            ));
        }
        if new.tags.iter().any(|t| !(3..=50).contains(&t.len())) {
            return Err(Refusal::Invalid(
                "tags",
                "Length must be 3-50 characters".into(),
            ));
        }
        let id = self.next_linode;
        self.next_linode += 1;
        let linode = Linode {
            id,
            owner: Owner::Us,
            label: new.label,
            public: new.public,
            private: private_ip(50_000 + (id - super::FIRST_CREATED) as usize),
            boots: 0,
            job: None,
            image,
            tags: new.tags,
            kind,
            region,
            via_api: true,
        };
        self.linodes.insert(id, linode);
        self.start(id, JobKind::Provision, "linode_create", None, now)?;
        self.linode(id)
            .map(|l| l.json(now))
            .ok_or(Refusal::NotFound)
    }

    /// Deletes our instance `id`, whatever it is doing.
    pub(crate) fn delete_linode(&mut self, id: u64) -> Result<(), Refusal> {
        self.linode(id).ok_or(Refusal::NotFound)?;
        self.linodes.remove(&id);
        Ok(())
    }
}
