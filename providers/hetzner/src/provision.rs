//! Creating, listing, pricing and deleting the servers kastell makes at
//! Hetzner: `POST /ssh_keys` then `POST /servers`, both labelled
//! `kastell-managed=true` and `kastell-role=<role>`; `GET /servers` with a
//! `label_selector`; `GET /pricing`; `DELETE /servers/{id}` and
//! `DELETE /ssh_keys/{id}`. The keys kastell labelled are listed with
//! `GET /ssh_keys?label_selector=kastell-managed=true`, and each is read
//! (`GET /ssh_keys/{id}`) and its label checked before it is deleted.

use kastell_core::cloud::{
    KeyUpload, create_with_uploaded_key, forget_uploaded_key, key_not_managed, not_managed,
    unknown_offer,
};
use kastell_core::types::{
    MANAGED_TAG, ManagedServer, ManagedSshKey, Server, ServerChoice, ServerId, ServerPrice,
    ServerSpec,
};
use kastell_core::{ErrorKind, Idempotency, Result};
use kastell_http::ApiRequest;
use serde_json::json;

use crate::ID;
use crate::client::{Hetzner, numeric};
use crate::model::provision::{ROLE_LABEL, SSH_KEY_LABEL, SshKey, SshKeyList};
use crate::model::{CreateServerAnswer, HServer, PricingEnvelope, ServerList, SshKeyEnvelope};

/// The label selector of everything kastell created.
const MANAGED_SELECTOR: &str = "kastell-managed=true";

impl Hetzner {
    /// CX23 (2 vCPU, 4 GB: Hetzner's smallest x86 plan since the CX22 was
    /// retired) in Falkenstein with Ubuntu 24.04.
    pub(crate) fn choice() -> ServerChoice {
        ServerChoice {
            size: "cx23".into(),
            region: "fsn1".into(),
            image: "ubuntu-24.04".into(),
        }
    }

    /// The gross price of server type `size` in location `region` from
    /// `GET /pricing`; refuses a type or location Hetzner does not price.
    pub(crate) async fn price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        const OP: &str = "server_price";
        let pricing: PricingEnvelope = self.api.get_json(OP, ApiRequest::get("pricing")).await?;
        let pricing = pricing.pricing;
        let Some(kind) = pricing.server_types.iter().find(|t| t.name == size) else {
            let names = pricing.server_types.iter().map(|t| t.name.clone());
            return Err(unknown_offer(ID, "server type", size, names).with_operation(OP));
        };
        let Some(at) = kind.prices.iter().find(|p| p.location == region) else {
            let places = kind.prices.iter().map(|p| p.location.clone());
            return Err(unknown_offer(ID, "location", region, places).with_operation(OP));
        };
        let (monthly, hourly) = at.gross()?;
        Ok(ServerPrice {
            monthly,
            hourly: Some(hourly),
            currency: pricing.currency_symbol(),
            basis: format!("pricing endpoint: {size} in {region}, gross"),
        })
    }

    /// Uploads the key labelled as kastell's, then creates the server
    /// referencing it, through the shared [`create_with_uploaded_key`]; a
    /// public key already in the project (409 `uniqueness_error`) is
    /// reused when a key of kastell's holds it.
    pub(crate) async fn create(&self, spec: &ServerSpec) -> Result<Server> {
        const OP: &str = "create_server";
        spec.validate(ID)?;
        let labels = json!({ MANAGED_TAG: "true", ROLE_LABEL: spec.role.as_str() });
        let key_body = json!({
            "name": spec.key_name(),
            "public_key": spec.ssh_public_key.trim(),
            "labels": labels,
        });
        let upload = async {
            let request = ApiRequest::post("ssh_keys", key_body, Idempotency::NonIdempotent);
            match self.api.get_json::<SshKeyEnvelope>(OP, request).await {
                Ok(key) => Ok(KeyUpload::Uploaded(key.ssh_key.id)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    Ok(KeyUpload::AlreadyOnAccount(e))
                }
                Err(e) => Err(e),
            }
        };
        let create = |key: i64| async move {
            let mut server_labels = labels;
            server_labels[SSH_KEY_LABEL] = json!(key.to_string());
            let body = json!({
                "name": spec.name,
                "server_type": spec.size,
                "image": spec.image,
                "location": spec.region,
                "ssh_keys": [key],
                "labels": server_labels,
                "start_after_create": true,
                "public_net": {"enable_ipv4": true, "enable_ipv6": true},
            });
            let request = ApiRequest::post("servers", body, Idempotency::NonIdempotent);
            let answer: CreateServerAnswer = self.api.get_json(OP, request).await?;
            answer.server.into_server()
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

    /// Every server labelled `kastell-managed=true`, every page.
    pub(crate) async fn managed(&self) -> Result<Vec<ManagedServer>> {
        let query = [("label_selector", MANAGED_SELECTOR)];
        let servers = self
            .all_pages::<ServerList>("list_managed_servers", "servers", &query)
            .await?;
        servers
            .into_iter()
            // The selector is server-side; checking again keeps an API that
            // ignored it from listing a person's server.
            .filter(HServer::is_managed)
            .map(|s| {
                let role = s.role();
                let ssh_key = s.ssh_key().map(|k| k.to_string());
                Ok(ManagedServer {
                    server: s.into_server()?,
                    role,
                    ssh_key,
                })
            })
            .collect()
    }

    /// Deletes server `id` after checking its marker, then its SSH key.
    pub(crate) async fn delete(&self, id: &ServerId) -> Result<()> {
        const OP: &str = "delete_server";
        let n = numeric(id.as_str(), "server")?;
        let server = self.server(OP, n).await?;
        if !server.is_managed() {
            return Err(not_managed(ID, id).with_operation(OP));
        }
        let key = server.ssh_key();
        match self
            .api
            .send(OP, ApiRequest::delete(format!("servers/{n}")))
            .await
        {
            // A retried DELETE whose first answer was lost finds it gone.
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if let Some(key) = key {
            forget_uploaded_key(&key, self.delete_key(key)).await;
        }
        Ok(())
    }

    /// Every SSH key labelled `kastell-managed=true`, every page (checked
    /// again here, so an API that ignored the selector lists no person's
    /// key).
    pub(crate) async fn managed_keys(&self) -> Result<Vec<ManagedSshKey>> {
        let query = [("label_selector", MANAGED_SELECTOR)];
        let keys = self
            .all_pages::<SshKeyList>("list_managed_ssh_keys", "ssh_keys", &query)
            .await?;
        Ok(keys
            .into_iter()
            .filter(SshKey::is_managed)
            .map(SshKey::into_managed)
            .collect())
    }

    /// Deletes SSH key `id` after reading it and checking its marker label.
    pub(crate) async fn delete_managed_key(&self, id: &str) -> Result<()> {
        const OP: &str = "delete_ssh_key";
        let n = numeric(id, "SSH key")?;
        let request = ApiRequest::get(format!("ssh_keys/{n}"));
        let key: SshKeyEnvelope = self.api.get_json(OP, request).await?;
        if !key.ssh_key.is_managed() {
            return Err(key_not_managed(ID, id));
        }
        self.api
            .send(OP, ApiRequest::delete(format!("ssh_keys/{n}")))
            .await
            .map(drop)
    }

    /// `DELETE /ssh_keys/{id}` of a key kastell uploaded.
    async fn delete_key(&self, key: i64) -> Result<()> {
        let request = ApiRequest::delete(format!("ssh_keys/{key}"));
        self.api.send("delete_server", request).await.map(drop)
    }
}
