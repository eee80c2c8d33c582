//! The [`CloudProvider`] operations of [`LinodeCloud`].

use std::net::Ipv4Addr;

use async_trait::async_trait;
use kastell_core::capability::unsupported;
use kastell_core::types::{
    ActionKind, ActionRef, ActionState, ActionStatus, CostEstimate, MANAGED_TAG, ManagedServer,
    ManagedSshKey, RebootMode, Server, ServerChoice, ServerId, ServerPrice, ServerSpec, Snapshot,
    SnapshotId, TokenInfo,
};
use kastell_core::{CloudProvider, Error, ErrorKind, Idempotency, ProviderIdentity, Result};
use kastell_http::{ApiRequest, path_segment};
use serde_json::json;

use crate::ID;
use crate::client::{LinodeCloud, instance_id};
use crate::convention::{image_description, image_label, root_password};
use crate::model::{
    Disk, Image, Instance, IpAddress, event_status, image_action_status, mb_to_gb, pick_disk,
    to_server, to_snapshot,
};

/// The per-GB-month image price used for estimates: commonly cited, not
/// confirmed by any Linode source found.
const IMAGE_PRICE_PER_GB_MONTH: f64 = 0.10;

#[async_trait]
impl CloudProvider for LinodeCloud {
    fn identity(&self) -> ProviderIdentity {
        crate::ENTRY.identity(self.endpoint.clone(), self.poll)
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        let response = self
            .api
            .send("validate_token", ApiRequest::get("profile"))
            .await?;
        let profile: crate::model::Profile = response.json(ID, "validate_token")?;
        let header = response
            .headers
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok());
        let scopes: Vec<String> = header
            .unwrap_or("")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let can_write =
            header.map(|_| scopes.iter().any(|s| s == "*" || s == "linodes:read_write"));
        Ok(TokenInfo {
            can_write,
            account: profile.username,
            scopes,
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let instance = self.instance("get_server", id).await?;
        let ip = self.instance_public_ip("get_server", id).await?;
        to_server(&instance, ip)
    }

    async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>> {
        let request = ApiRequest::get(format!("networking/ips/{ip}"));
        let address: IpAddress = match self.api.get_json("find_server_by_ip", request).await {
            Ok(address) => address,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // The lookup also knows private addresses; those are not public IPs.
        let (Some(linode), Some(_)) = (address.linode_id, address.public_ipv4()) else {
            return Ok(None);
        };
        // The address is known to be this instance's public one, so the
        // instance alone completes the answer (no second IP lookup).
        let id = ServerId::new(linode.to_string())?;
        match self.instance("find_server_by_ip", &id).await {
            Ok(instance) => to_server(&instance, Some(ip)).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        let instances: Vec<Instance> = self
            .list_all("list_servers", "linode/instances", None)
            .await?;
        let ips = self.public_ips_by_instance().await?;
        let mut servers = Vec::with_capacity(instances.len());
        for instance in &instances {
            let ip = match ips.get(&instance.id) {
                Some(ip) => Some(*ip),
                None => {
                    let id = ServerId::new(instance.id.to_string())?;
                    self.instance_public_ip("list_servers", &id).await?
                }
            };
            servers.push(to_server(instance, ip)?);
        }
        Ok(servers)
    }

    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        if mode == RebootMode::Hard {
            return Err(unsupported(ID, "reboot_hard"));
        }
        let n = instance_id(id)?;
        let since = LinodeCloud::event_search_start();
        let request = ApiRequest::post(
            format!("linode/instances/{n}/reboot"),
            json!({}),
            Idempotency::NonIdempotent,
        );
        self.api.send("reboot", request).await?;
        let event = self.locate_event("linode_reboot", n, &since).await;
        Ok(ActionRef::new(event, ActionKind::Reboot, id.clone()))
    }

    async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef> {
        let disk = self.image_disk("create_snapshot", id).await?;
        let body = json!({
            "disk_id": disk.id,
            "label": image_label(id, name),
            "description": image_description(id),
            // kastell's marker, which rotation requires.
            "tags": [MANAGED_TAG],
        });
        let request = ApiRequest::post("images", body, Idempotency::NonIdempotent);
        let image: Image = self
            .api
            .send("create_snapshot", request)
            .await?
            .json(ID, "create_snapshot")?;
        Ok(ActionRef {
            id: image.id.clone(),
            kind: ActionKind::CreateSnapshot,
            server: id.clone(),
            resource: Some(image.id),
        })
    }

    async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        instance_id(id)?;
        let filter = json!({"is_public": false});
        let images: Vec<Image> = self
            .list_all("list_snapshots", "images", Some(&filter))
            .await?;
        images
            .iter()
            .filter(|image| image.belongs_to(id))
            .map(|image| to_snapshot(image, id))
            .collect()
    }

    async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()> {
        let image = self
            .owned_image("delete_snapshot", server, snapshot)
            .await?;
        let request = ApiRequest::delete(format!("images/{}", path_segment(&image.id)));
        match self.api.send("delete_snapshot", request).await {
            // It existed and was ours a moment ago: a 404 now (a retried
            // DELETE whose first answer was lost) means it is gone.
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn restore_snapshot(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<ActionRef> {
        let image = self
            .owned_image("restore_snapshot", server, snapshot)
            .await?;
        let n = instance_id(server)?;
        let since = LinodeCloud::event_search_start();
        // The password is only ever placed in this request body.
        let body = json!({"image": image.id, "root_pass": root_password()});
        let request = ApiRequest::post(
            format!("linode/instances/{n}/rebuild"),
            body,
            Idempotency::NonIdempotent,
        );
        self.api.send("restore_snapshot", request).await?;
        Ok(ActionRef {
            id: self.locate_event("linode_rebuild", n, &since).await,
            kind: ActionKind::RestoreSnapshot,
            server: server.clone(),
            resource: Some(image.id),
        })
    }

    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        if action.kind == ActionKind::CreateSnapshot {
            let request = ApiRequest::get(format!("images/{}", path_segment(&action.id)));
            return match self.api.get_json::<Image>("action_status", request).await {
                Ok(image) => Ok(image_action_status(&image)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(ActionStatus {
                    state: ActionState::Failed,
                    progress: None,
                    resource: Some(action.id.clone()),
                    message: Some(format!("image {} no longer exists", action.id)),
                }),
                Err(e) => Err(e),
            };
        }
        Ok(match self.event_for(&action.id).await? {
            Some(event) => event_status(&event),
            None => ActionStatus {
                state: ActionState::Running,
                progress: Some(0),
                resource: None,
                message: None,
            },
        })
    }

    async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate> {
        let size_mb = match self.image_disk("cost_estimate", id).await {
            Ok(disk) => disk.size,
            Err(e) if e.kind() == ErrorKind::InvalidState => None,
            Err(e) => return Err(e),
        };
        let size_mb = match size_mb {
            Some(mb) => mb,
            None => self
                .instance("cost_estimate", id)
                .await?
                .specs
                .and_then(|s| s.disk)
                .unwrap_or(0),
        };
        let size_gb = mb_to_gb(size_mb);
        Ok(CostEstimate {
            monthly: size_gb * IMAGE_PRICE_PER_GB_MONTH,
            currency: "$".into(),
            size_gb,
            basis: "image of the ext4 disk at $0.10 per GB-month: a commonly cited Linode \
                    image storage price, unverified (check linode.com/pricing)"
                .into(),
        })
    }

    /// `g6-standard-1` in `eu-central` with `linode/ubuntu24.04`.
    fn default_server_choice(&self) -> Result<ServerChoice> {
        Ok(Self::choice())
    }

    /// The type's price (per region where Linode prices it differently)
    /// from `GET /linode/types`, after checking the region exists.
    async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        self.price(size, region).await
    }

    /// `POST /linode/instances` (never re-sent) with the key in
    /// `authorized_keys`, a random root password and the tags
    /// `kastell-managed` and the role's.
    async fn create_server(&self, spec: &ServerSpec) -> Result<Server> {
        self.create(spec).await
    }

    /// The instances tagged `kastell-managed`, every page.
    async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>> {
        self.managed().await
    }

    /// `DELETE /linode/instances/{id}`, only for an instance tagged
    /// `kastell-managed` (no key was uploaded for it).
    async fn delete_server(&self, id: &ServerId) -> Result<()> {
        self.delete(id).await
    }

    /// None, without a request: Linode takes the public key inline
    /// (`authorized_keys`), so kastell uploads no SSH key there.
    async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        Ok(Vec::new())
    }

    /// Refused without a request (`NotFound`): kastell uploads no SSH key
    /// at Linode, so no key there is one of kastell's.
    async fn delete_ssh_key(&self, id: &str) -> Result<()> {
        Err(Error::new(
            ErrorKind::NotFound,
            format!("SSH key {id} is not one of kastell's: kastell uploads no SSH keys at Linode"),
        )
        .with_provider(crate::ID)
        .with_operation("delete_ssh_key")
        .with_hint("kastell gives Linode the key inline with the instance; delete other keys in Linode's console"))
    }
}

impl LinodeCloud {
    /// The disk an image of instance `id` is made from (ext4, never swap).
    async fn image_disk(&self, operation: &'static str, id: &ServerId) -> Result<Disk> {
        let n = instance_id(id)?;
        let path = format!("linode/instances/{n}/disks");
        let disks: Vec<Disk> = match self.list_all(operation, &path, None).await {
            Ok(disks) => disks,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(kastell_core::cloud::server_not_found(ID, id).with_operation(operation));
            }
            Err(e) => return Err(e),
        };
        pick_disk(&disks).cloned().ok_or_else(|| {
            Error::invalid_state(format!("Linode {id} has no disk to make an image from"))
                .with_provider(ID)
                .with_operation(operation)
                .with_hint("Instance may still be provisioning — try again shortly")
        })
    }
}
