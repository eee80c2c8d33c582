//! Creating, listing, pricing and deleting the droplets kastell makes:
//! `POST /account/keys` then `POST /droplets`, both tagged (the key by its
//! name, as keys carry no tags); `GET /droplets?tag_name=`; `GET /sizes`;
//! `DELETE /droplets/{id}` and `DELETE /account/keys/{id}`. The keys named
//! as kastell's are listed with `GET /account/keys`, and each is read
//! (`GET /account/keys/{id}`) and its name checked before it is deleted.

use kastell_core::cloud::{
    KeyUpload, create_with_uploaded_key, forget_uploaded_key, key_not_managed, not_managed,
    unknown_offer,
};
use kastell_core::types::{
    MANAGED_TAG, ManagedRole, ManagedServer, ManagedSshKey, SSH_KEY_TAG, Server, ServerChoice,
    ServerId, ServerPrice, ServerSpec, is_managed_key_name, ssh_key_fingerprint, ssh_key_from_tags,
};
use kastell_core::{Error, ErrorKind, Idempotency, Result};
use kastell_http::{ApiRequest, path_segment};
use serde::Deserialize;
use serde_json::json;

use crate::ID;
use crate::client::{DigitalOcean, droplet_id};
use crate::model::{Droplet, DropletEnvelope, Links};
use crate::pages::{all_pages, next_page, split_droplets};

/// `{"ssh_key": {...}}` (`POST /account/keys`, `GET /account/keys/{id}`).
#[derive(Debug, Deserialize)]
struct KeyEnvelope {
    ssh_key: Key,
}

/// An SSH key on the account: DigitalOcean keys have no tags and no
/// creation time, so kastell's marker is the name.
#[derive(Debug, Deserialize)]
struct Key {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    public_key: Option<String>,
}

/// What DigitalOcean answers (422) to a public key already on the account.
const KEY_IN_USE: &str = "already in use";

/// Whether `e` is DigitalOcean refusing a key upload because the account
/// holds the same public key.
fn key_in_use(e: &Error) -> bool {
    e.kind() == ErrorKind::InvalidInput && e.message().to_ascii_lowercase().contains(KEY_IN_USE)
}

/// `{"ssh_keys": [...], "links": {...}}` (`GET /account/keys`).
#[derive(Debug, Deserialize)]
struct KeyPage {
    #[serde(default)]
    ssh_keys: Vec<Key>,
    links: Option<Links>,
}

fn split_keys(page: KeyPage) -> (Vec<Key>, Option<String>) {
    let next = next_page(page.links.as_ref());
    (page.ssh_keys, next)
}

/// `{"sizes": [...], "links": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct SizePage {
    #[serde(default)]
    sizes: Vec<Size>,
    links: Option<Links>,
}

/// One size with its prices and the regions offering it.
#[derive(Debug, Deserialize)]
pub(crate) struct Size {
    slug: String,
    price_monthly: f64,
    #[serde(default)]
    price_hourly: Option<f64>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default = "available")]
    available: bool,
}

fn available() -> bool {
    true
}

fn split_sizes(page: SizePage) -> (Vec<Size>, Option<String>) {
    let next = next_page(page.links.as_ref());
    (page.sizes, next)
}

impl Droplet {
    fn is_managed(&self) -> bool {
        self.tags.iter().any(|t| t == MANAGED_TAG)
    }

    fn role(&self) -> Option<ManagedRole> {
        ManagedRole::from_tags(self.tags.iter().map(String::as_str))
    }
}

impl DigitalOcean {
    /// A 1 vCPU / 2 GB droplet in Frankfurt with Ubuntu 24.04.
    pub(crate) fn choice() -> ServerChoice {
        ServerChoice {
            size: "s-1vcpu-2gb".into(),
            region: "fra1".into(),
            image: "ubuntu-24-04-x64".into(),
        }
    }

    /// The size's prices from `GET /sizes`; refuses a size DigitalOcean
    /// does not sell, or one not offered in `region`.
    pub(crate) async fn price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        const OP: &str = "server_price";
        let sizes = all_pages(&self.api, OP, "sizes", split_sizes).await?;
        let Some(found) = sizes.iter().find(|s| s.slug == size && s.available) else {
            let slugs = sizes.iter().filter(|s| s.available).map(|s| s.slug.clone());
            return Err(unknown_offer(ID, "size", size, slugs).with_operation(OP));
        };
        if !found.regions.iter().any(|r| r == region) {
            let regions = found.regions.iter().cloned();
            return Err(unknown_offer(ID, "region", region, regions).with_operation(OP));
        }
        Ok(ServerPrice {
            monthly: found.price_monthly,
            hourly: found.price_hourly,
            currency: "$".into(),
            basis: format!("sizes endpoint: {size}"),
        })
    }

    /// Uploads the key (named as kastell's), then creates the droplet
    /// tagged with the marker, the role and the key, through the shared
    /// [`create_with_uploaded_key`]; a public key already on the account
    /// (422) is reused when a key of kastell's holds it.
    pub(crate) async fn create(&self, spec: &ServerSpec) -> Result<Server> {
        const OP: &str = "create_server";
        spec.validate(ID)?;
        let upload = async {
            let body = json!({
                "name": spec.key_name(),
                "public_key": spec.ssh_public_key.trim(),
            });
            let request = ApiRequest::post("account/keys", body, Idempotency::NonIdempotent);
            match self.api.get_json::<KeyEnvelope>(OP, request).await {
                Ok(key) => Ok(KeyUpload::Uploaded(key.ssh_key.id)),
                Err(e) if key_in_use(&e) => Ok(KeyUpload::AlreadyOnAccount(e)),
                Err(e) => Err(e),
            }
        };
        let create = |key: u64| async move {
            let [managed, role] = spec.tags();
            let body = json!({
                "name": spec.name,
                "region": spec.region,
                "size": spec.size,
                "image": spec.image,
                "ssh_keys": [key],
                "tags": [managed, role, format!("{SSH_KEY_TAG}{key}")],
                "ipv6": true,
                "monitoring": false,
            });
            let request = ApiRequest::post("droplets", body, Idempotency::NonIdempotent);
            let answer: DropletEnvelope = self.api.get_json(OP, request).await?;
            answer.droplet.into_server()
        };
        create_with_uploaded_key(
            &spec.ssh_public_key,
            upload,
            || self.managed_keys(),
            create,
            |key| self.delete_key(key.to_string()),
        )
        .await
    }

    /// Every droplet tagged `kastell-managed`, every page.
    pub(crate) async fn managed(&self) -> Result<Vec<ManagedServer>> {
        let first = format!("droplets?tag_name={MANAGED_TAG}");
        let droplets = all_pages(&self.api, "list_managed_servers", &first, split_droplets).await?;
        droplets
            .into_iter()
            .filter(Droplet::is_managed)
            .map(|d| {
                let role = d.role();
                let ssh_key =
                    ssh_key_from_tags(d.tags.iter().map(String::as_str)).map(str::to_owned);
                Ok(ManagedServer {
                    server: d.into_server()?,
                    role,
                    ssh_key,
                })
            })
            .collect()
    }

    /// Deletes droplet `id` after checking its tag, then its SSH key.
    pub(crate) async fn delete(&self, id: &ServerId) -> Result<()> {
        const OP: &str = "delete_server";
        let n = droplet_id(id)?;
        let droplet: DropletEnvelope = self
            .api
            .get_json(OP, ApiRequest::get(format!("droplets/{n}")))
            .await?;
        let droplet = droplet.droplet;
        if !droplet.is_managed() {
            return Err(not_managed(ID, id).with_operation(OP));
        }
        let key = ssh_key_from_tags(droplet.tags.iter().map(String::as_str)).map(str::to_owned);
        match self
            .api
            .send(OP, ApiRequest::delete(format!("droplets/{n}")))
            .await
        {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Some(key) = key {
            forget_uploaded_key(&key.clone(), self.delete_key(key)).await;
        }
        Ok(())
    }

    /// Every key on the account named as kastell's (DigitalOcean keys
    /// carry no tags), every page.
    pub(crate) async fn managed_keys(&self) -> Result<Vec<ManagedSshKey>> {
        let keys = all_pages(
            &self.api,
            "list_managed_ssh_keys",
            "account/keys",
            split_keys,
        )
        .await?;
        Ok(keys
            .into_iter()
            .filter(|k| is_managed_key_name(&k.name))
            .map(|k| ManagedSshKey {
                id: k.id.to_string(),
                name: k.name,
                created_at: None,
                fingerprint: k.public_key.as_deref().and_then(ssh_key_fingerprint),
            })
            .collect())
    }

    /// Deletes SSH key `id` after reading it (`GET /account/keys/{id}`) and
    /// checking its name is kastell's.
    pub(crate) async fn delete_managed_key(&self, id: &str) -> Result<()> {
        const OP: &str = "delete_ssh_key";
        let n: u64 = id.parse().map_err(|_| {
            Error::invalid_input(format!("{id:?} is not a DigitalOcean SSH key id"))
                .with_provider(ID)
                .with_hint("DigitalOcean SSH key ids are numbers (see `kastell doctor`)")
        })?;
        let key: KeyEnvelope = self
            .api
            .get_json(OP, ApiRequest::get(format!("account/keys/{n}")))
            .await?;
        if !is_managed_key_name(&key.ssh_key.name) {
            return Err(key_not_managed(ID, id));
        }
        self.api
            .send(OP, ApiRequest::delete(format!("account/keys/{n}")))
            .await
            .map(drop)
    }

    /// `DELETE /account/keys/{key}` of a key kastell uploaded.
    async fn delete_key(&self, key: String) -> Result<()> {
        let request = ApiRequest::delete(format!("account/keys/{}", path_segment(&key)));
        self.api.send("delete_server", request).await.map(drop)
    }
}
