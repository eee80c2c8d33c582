//! Creating, listing, pricing and deleting the instances kastell makes at
//! Linode: `POST /linode/instances` with `authorized_keys` (Linode takes
//! the key inline, so nothing else is uploaded), a random `root_pass`
//! (Linode requires one with an image; it is generated here, only ever
//! placed in that request body, never logged or stored) and the tags;
//! `GET /linode/instances` filtered on the tag; `GET /linode/types` and
//! `GET /regions`; `DELETE /linode/instances/{id}`.

use kastell_core::cloud::{not_managed, unknown_offer};
use kastell_core::types::{
    MANAGED_TAG, ManagedRole, ManagedServer, Server, ServerChoice, ServerId, ServerPrice,
    ServerSpec,
};
use kastell_core::{Error, ErrorKind, Idempotency, Result};
use kastell_http::ApiRequest;
use serde::Deserialize;
use serde_json::json;

use crate::ID;
use crate::client::{LinodeCloud, instance_id};
use crate::convention::root_password;
use crate::model::{Instance, to_server};

/// One of `GET /linode/types`.
#[derive(Debug, Deserialize)]
struct LinodeType {
    id: String,
    price: Price,
    #[serde(default)]
    region_prices: Vec<RegionPrice>,
}

#[derive(Debug, Deserialize)]
struct Price {
    #[serde(default)]
    hourly: Option<f64>,
    monthly: f64,
}

/// A region whose price differs from the type's base price.
#[derive(Debug, Deserialize)]
struct RegionPrice {
    id: String,
    #[serde(default)]
    hourly: Option<f64>,
    monthly: f64,
}

/// One of `GET /regions`.
#[derive(Debug, Deserialize)]
struct Region {
    id: String,
}

fn is_managed(instance: &Instance) -> bool {
    instance.tags.iter().any(|t| t == MANAGED_TAG)
}

/// Linode labels are 3 to 64 characters; refused before any request.
fn check_label(name: &str) -> Result<()> {
    if (3..=64).contains(&name.len()) && !name.contains("--") && !name.contains("..") {
        return Ok(());
    }
    Err(
        Error::invalid_input(format!("{name:?} is not a usable Linode label"))
            .with_provider(ID)
            .with_hint("Linode labels are 3 to 64 characters, without `--` or `..`"),
    )
}

impl LinodeCloud {
    /// A 1 vCPU / 2 GB Linode in Frankfurt with Ubuntu 24.04.
    pub(crate) fn choice() -> ServerChoice {
        ServerChoice {
            size: "g6-standard-1".into(),
            region: "eu-central".into(),
            image: "linode/ubuntu24.04".into(),
        }
    }

    /// The type's price in `region` (its region price where Linode has
    /// one); refuses an unknown type or region.
    pub(crate) async fn price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        const OP: &str = "server_price";
        let types: Vec<LinodeType> = self.list_all(OP, "linode/types", None).await?;
        let Some(kind) = types.iter().find(|t| t.id == size) else {
            let ids = types.iter().map(|t| t.id.clone());
            return Err(unknown_offer(ID, "type", size, ids).with_operation(OP));
        };
        let regions: Vec<Region> = self.list_all(OP, "regions", None).await?;
        if !regions.iter().any(|r| r.id == region) {
            let ids = regions.iter().map(|r| r.id.clone());
            return Err(unknown_offer(ID, "region", region, ids).with_operation(OP));
        }
        let (monthly, hourly) = match kind.region_prices.iter().find(|p| p.id == region) {
            Some(p) => (p.monthly, p.hourly),
            None => (kind.price.monthly, kind.price.hourly),
        };
        Ok(ServerPrice {
            monthly,
            hourly,
            currency: "$".into(),
            basis: format!("types endpoint: {size} in {region}"),
        })
    }

    /// `POST /linode/instances`, never re-sent.
    pub(crate) async fn create(&self, spec: &ServerSpec) -> Result<Server> {
        const OP: &str = "create_server";
        spec.validate(ID)?;
        check_label(&spec.name)?;
        let [managed, role] = spec.tags();
        // The password is only ever placed in this request body.
        let body = json!({
            "label": spec.name,
            "region": spec.region,
            "type": spec.size,
            "image": spec.image,
            "root_pass": root_password(),
            "authorized_keys": [spec.ssh_public_key.trim()],
            "tags": [managed, role],
            "booted": true,
        });
        let request = ApiRequest::post("linode/instances", body, Idempotency::NonIdempotent);
        let instance: Instance = self.api.get_json(OP, request).await?;
        to_server(&instance, None)
    }

    /// Every instance tagged `kastell-managed` (`X-Filter` on `tags`).
    pub(crate) async fn managed(&self) -> Result<Vec<ManagedServer>> {
        const OP: &str = "list_managed_servers";
        let filter = json!({ "tags": MANAGED_TAG });
        let instances: Vec<Instance> = self.list_all(OP, "linode/instances", Some(&filter)).await?;
        let ips = self.public_ips_by_instance().await?;
        instances
            .iter()
            .filter(|i| is_managed(i))
            .map(|i| {
                Ok(ManagedServer {
                    server: to_server(i, ips.get(&i.id).copied())?,
                    role: ManagedRole::from_tags(i.tags.iter().map(String::as_str)),
                    ssh_key: None,
                })
            })
            .collect()
    }

    /// `DELETE /linode/instances/{id}` after checking its tag.
    pub(crate) async fn delete(&self, id: &ServerId) -> Result<()> {
        const OP: &str = "delete_server";
        let n = instance_id(id)?;
        let instance = self.instance(OP, id).await?;
        if !is_managed(&instance) {
            return Err(not_managed(ID, id).with_operation(OP));
        }
        let request = ApiRequest::delete(format!("linode/instances/{n}"));
        match self.api.send(OP, request).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
