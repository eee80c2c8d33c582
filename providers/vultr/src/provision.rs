//! Creating, listing, pricing and deleting the instances kastell makes at
//! Vultr: `POST /ssh-keys` then `POST /instances`, the instance tagged;
//! `GET /instances?tag=`; `GET /plans`; `DELETE /instances/{id}` and
//! `DELETE /ssh-keys/{id}`. The keys named as kastell's are listed with
//! `GET /ssh-keys`, and each is read (`GET /ssh-keys/{id}`) and its name
//! checked before it is deleted.

use kastell_core::cloud::{
    KeyUpload, create_with_uploaded_key, forget_uploaded_key, key_not_managed, not_managed,
    unknown_offer,
};
use kastell_core::types::{
    MANAGED_TAG, ManagedRole, ManagedServer, ManagedSshKey, SSH_KEY_TAG, Server, ServerChoice,
    ServerId, ServerPrice, ServerSpec, is_managed_key_name, ssh_key_fingerprint, ssh_key_from_tags,
};
use kastell_core::{Error, ErrorKind, Idempotency, Result};
use kastell_http::{ApiRequest, paginate, path_segment};
use serde::Deserialize;
use serde_json::json;

use crate::ID;
use crate::client::{VultrCloud, instance_path};
use crate::model::{self, Instance, InstanceEnvelope, Meta};

/// `{"ssh_key": {...}}` (`POST /ssh-keys`, `GET /ssh-keys/{id}`).
#[derive(Debug, Deserialize)]
struct KeyEnvelope {
    ssh_key: Key,
}

/// An SSH key on the account: Vultr keys have no tags, so kastell's
/// marker is the name.
#[derive(Debug, Deserialize)]
struct Key {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    date_created: Option<String>,
    #[serde(default)]
    ssh_key: Option<String>,
}

/// `GET /ssh-keys`: one cursor page.
#[derive(Debug, Deserialize)]
struct KeyPage {
    #[serde(default)]
    ssh_keys: Vec<Key>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// `GET /plans`: one cursor page.
#[derive(Debug, Deserialize)]
struct PlanPage {
    #[serde(default)]
    plans: Vec<Plan>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// One plan with its prices and locations.
#[derive(Debug, Deserialize)]
struct Plan {
    id: String,
    monthly_cost: f64,
    #[serde(default)]
    hourly_cost: Option<f64>,
    #[serde(default)]
    locations: Vec<String>,
}

fn is_managed(instance: &Instance) -> bool {
    instance.tags.iter().any(|t| t == MANAGED_TAG)
}

/// Vultr images are `os_id` numbers; anything else is refused before any
/// request.
fn os_id(image: &str) -> Result<u64> {
    image.trim().parse().map_err(|_| {
        Error::invalid_input(format!("{image:?} is not a Vultr os_id"))
            .with_provider(ID)
            .with_hint("Vultr images are os_id numbers (GET /v2/os): 2284 is Ubuntu 24.04 x64")
    })
}

impl VultrCloud {
    /// 1 vCPU / 2 GB in Frankfurt with Ubuntu 24.04 x64.
    pub(crate) fn choice() -> ServerChoice {
        ServerChoice {
            size: "vc2-1c-2gb".into(),
            region: "fra".into(),
            image: "2284".into(),
        }
    }

    /// The plan's prices from `GET /plans`; refuses a plan Vultr does not
    /// sell or does not offer in `region`.
    pub(crate) async fn price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        const OP: &str = "server_price";
        let plans = paginate(|cursor| async move {
            let mut request = ApiRequest::get("plans").query("per_page", "500");
            if let Some(cursor) = cursor {
                request = request.query("cursor", cursor);
            }
            let page: PlanPage = self.api.get_json(OP, request).await?;
            Ok((page.plans, model::next_cursor(page.meta)))
        })
        .await?;
        let Some(plan) = plans.iter().find(|p| p.id == size) else {
            let ids = plans.iter().map(|p| p.id.clone());
            return Err(unknown_offer(ID, "plan", size, ids).with_operation(OP));
        };
        if !plan.locations.iter().any(|l| l == region) {
            let places = plan.locations.iter().cloned();
            return Err(unknown_offer(ID, "region", region, places).with_operation(OP));
        }
        Ok(ServerPrice {
            monthly: plan.monthly_cost,
            hourly: plan.hourly_cost,
            currency: "$".into(),
            basis: format!("plans endpoint: {size}"),
        })
    }

    /// Uploads the key (named as kastell's), then creates the instance
    /// tagged with the marker, the role and the key, through the shared
    /// [`create_with_uploaded_key`]. Vultr documents no refusal of a
    /// public key already on the account (it stores another copy), so an
    /// upload never asks to reuse one.
    pub(crate) async fn create(&self, spec: &ServerSpec) -> Result<Server> {
        const OP: &str = "create_server";
        spec.validate(ID)?;
        let os = os_id(&spec.image)?;
        let upload = async {
            let body = json!({
                "name": spec.key_name(),
                "ssh_key": spec.ssh_public_key.trim(),
            });
            let request = ApiRequest::post("ssh-keys", body, Idempotency::NonIdempotent);
            let key: KeyEnvelope = self.api.get_json(OP, request).await?;
            Ok::<_, Error>(KeyUpload::Uploaded(key.ssh_key.id))
        };
        let create = |key: String| async move {
            let [managed, role] = spec.tags();
            let body = json!({
                "region": spec.region,
                "plan": spec.size,
                "os_id": os,
                "label": spec.name,
                "hostname": spec.name,
                "sshkey_id": [key],
                "tags": [managed, role, format!("{SSH_KEY_TAG}{key}")],
                "enable_ipv6": true,
                "backups": "disabled",
            });
            let request = ApiRequest::post("instances", body, Idempotency::NonIdempotent);
            let answer: InstanceEnvelope = self.api.get_json(OP, request).await?;
            model::to_server(answer.instance)
        };
        create_with_uploaded_key(
            &spec.ssh_public_key,
            upload,
            || self.managed_keys(),
            create,
            |key| self.delete_key(key),
        )
        .await
    }

    /// Every instance tagged `kastell-managed`, every page.
    pub(crate) async fn managed(&self) -> Result<Vec<ManagedServer>> {
        let tagged = self
            .instances(
                "list_managed_servers",
                Some(("tag", MANAGED_TAG.to_owned())),
            )
            .await?;
        tagged
            .into_iter()
            .filter(is_managed)
            .map(|i| {
                let role = ManagedRole::from_tags(i.tags.iter().map(String::as_str));
                let ssh_key =
                    ssh_key_from_tags(i.tags.iter().map(String::as_str)).map(str::to_owned);
                Ok(ManagedServer {
                    server: model::to_server(i)?,
                    role,
                    ssh_key,
                })
            })
            .collect()
    }

    /// Deletes instance `id` after checking its tag, then its SSH key.
    pub(crate) async fn delete(&self, id: &ServerId) -> Result<()> {
        const OP: &str = "delete_server";
        let path = instance_path(id)?;
        let instance = self.instance(OP, id).await?;
        if !is_managed(&instance) {
            return Err(not_managed(ID, id).with_operation(OP));
        }
        let key = ssh_key_from_tags(instance.tags.iter().map(String::as_str)).map(str::to_owned);
        match self.api.send(OP, ApiRequest::delete(path)).await {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Some(key) = key {
            forget_uploaded_key(&key.clone(), self.delete_key(key)).await;
        }
        Ok(())
    }

    /// Every key on the account named as kastell's (Vultr keys carry no
    /// tags), every page.
    pub(crate) async fn managed_keys(&self) -> Result<Vec<ManagedSshKey>> {
        const OP: &str = "list_managed_ssh_keys";
        let keys = paginate(|cursor| async move {
            let mut request = ApiRequest::get("ssh-keys").query("per_page", "500");
            if let Some(cursor) = cursor {
                request = request.query("cursor", cursor);
            }
            let page: KeyPage = self.api.get_json(OP, request).await?;
            Ok((page.ssh_keys, model::next_cursor(page.meta)))
        })
        .await?;
        Ok(keys
            .into_iter()
            .filter(|k| is_managed_key_name(&k.name))
            .map(|k| ManagedSshKey {
                fingerprint: k.ssh_key.as_deref().and_then(ssh_key_fingerprint),
                id: k.id,
                name: k.name,
                created_at: k.date_created,
            })
            .collect())
    }

    /// Deletes SSH key `id` after reading it (`GET /ssh-keys/{id}`) and
    /// checking its name is kastell's.
    pub(crate) async fn delete_managed_key(&self, id: &str) -> Result<()> {
        const OP: &str = "delete_ssh_key";
        let well_formed = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !well_formed {
            return Err(
                Error::invalid_input(format!("{id:?} is not a Vultr SSH key id"))
                    .with_provider(ID)
                    .with_hint("Vultr SSH key ids are UUIDs (see `kastell doctor`)"),
            );
        }
        let path = format!("ssh-keys/{}", path_segment(id));
        let key: KeyEnvelope = self.api.get_json(OP, ApiRequest::get(&path)).await?;
        if !is_managed_key_name(&key.ssh_key.name) {
            return Err(key_not_managed(ID, id));
        }
        self.api.send(OP, ApiRequest::delete(path)).await.map(drop)
    }

    /// `DELETE /ssh-keys/{key}` of a key kastell uploaded.
    async fn delete_key(&self, key: String) -> Result<()> {
        let request = ApiRequest::delete(format!("ssh-keys/{}", path_segment(&key)));
        self.api.send("delete_server", request).await.map(drop)
    }
}
