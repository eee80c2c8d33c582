//! [`DigitalOcean`]: the [`CloudProvider`] over the DigitalOcean v2 API.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::capability::unsupported;
use kastell_core::types::{
    ActionKind, ActionRef, ActionState, ActionStatus, CostEstimate, ManagedServer, ManagedSshKey,
    RebootMode, Server, ServerChoice, ServerId, ServerPrice, ServerSpec, Snapshot, SnapshotId,
    TokenInfo,
};
use kastell_core::{
    CloudProvider, Error, ErrorKind, Idempotency, PollSchedule, ProviderConfig, ProviderIdentity,
    Result,
};
use kastell_http::{ApiClient, ApiRequest, ClientConfig, path_segment};
use serde_json::json;

use crate::error::map_error;
use crate::model::{
    AccountEnvelope, ActionEnvelope, DropletEnvelope, action_state, pick_new_snapshot,
};
use crate::pages::{all_pages, split_droplets};
use crate::{CAPABILITY, DEFAULT_ENDPOINT, ID, SNAPSHOT_PRICE_PER_GB_MONTH};

/// Snapshot names remembered for resolving the new snapshot's id; older
/// entries are dropped past this (the fallback then matches by time).
const MAX_PENDING_NAMES: usize = 1024;

/// A DigitalOcean account reached through its v2 API.
///
/// Debug shows the endpoint only; the token lives in the [`ApiClient`],
/// which never prints it.
#[derive(Debug)]
pub struct DigitalOcean {
    pub(crate) api: ApiClient,
    endpoint: String,
    poll: PollSchedule,
    /// Snapshot action id → requested snapshot name. The action does not
    /// name the image it makes; the name finds it once the action completes.
    snapshot_names: Mutex<HashMap<String, String>>,
}

impl DigitalOcean {
    /// A provider for `config`: the token is required, the endpoint defaults
    /// to the public API, the timeout to 30 s, retries to the shared default
    /// policy and polling to 2 s growing to 15 s. Refuses an empty token or
    /// an unusable endpoint.
    pub fn new(config: ProviderConfig) -> Result<Self> {
        let client_config = ClientConfig::for_provider(ID, DEFAULT_ENDPOINT, &config);
        let endpoint = client_config.base_url.clone();
        let api = ApiClient::new(client_config, map_error).map_err(|e| match e.kind() {
            ErrorKind::Unauthenticated => e.or_hint(format!("Set {}", crate::TOKEN_ENV)),
            _ => e,
        })?;
        Ok(Self {
            api,
            endpoint,
            poll: config.poll.unwrap_or_else(default_poll),
            snapshot_names: Mutex::default(),
        })
    }

    async fn droplet_actions(
        &self,
        operation: &'static str,
        id: &ServerId,
        body: serde_json::Value,
        kind: ActionKind,
    ) -> Result<ActionRef> {
        let path = format!("droplets/{}/actions", droplet_id(id)?);
        let request = ApiRequest::post(path, body, Idempotency::NonIdempotent);
        let envelope: ActionEnvelope = self
            .api
            .send(operation, request)
            .await
            .map_err(|e| e.with_context("server", id))?
            .json(ID, operation)?;
        Ok(ActionRef::new(envelope.action.id, kind, id.clone()))
    }

    /// Refuses `snapshot` unless it is in `server`'s own snapshot list.
    async fn own_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<Snapshot> {
        self.list_snapshots(server)
            .await?
            .into_iter()
            .find(|s| s.id == *snapshot)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "snapshot {snapshot} is not a snapshot of droplet {server}"
                ))
                .with_provider(ID)
                .with_hint("List this droplet's snapshots to see the ids that belong to it")
            })
    }

    fn remember_name(&self, action: &str, name: &str) {
        let mut names = self
            .snapshot_names
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if names.len() >= MAX_PENDING_NAMES {
            names.clear();
        }
        names.insert(action.to_owned(), name.to_owned());
    }

    fn remembered_name(&self, action: &str) -> Option<String> {
        let names = self
            .snapshot_names
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        names.get(action).cloned()
    }
}

/// DigitalOcean actions: a reboot takes seconds, a snapshot minutes.
fn default_poll() -> PollSchedule {
    PollSchedule::new(Duration::from_secs(2), Duration::from_secs(15))
}

/// The droplet id as a number: DigitalOcean ids are integers, so anything
/// else (a `manual-` id) is refused before any request.
pub(crate) fn droplet_id(id: &ServerId) -> Result<u64> {
    id.as_str().parse().map_err(|_| {
        Error::invalid_input(format!("{id} is not a DigitalOcean droplet id"))
            .with_provider(ID)
            .with_hint("DigitalOcean droplet ids are numbers; manually added servers have none")
    })
}

#[async_trait]
impl CloudProvider for DigitalOcean {
    fn identity(&self) -> ProviderIdentity {
        crate::ENTRY.identity(self.endpoint.clone(), self.poll)
    }

    /// `GET /account`. The API does not say what a token may do, so
    /// `can_write` is `None`; a read-only token is refused at its first write.
    async fn validate_token(&self) -> Result<TokenInfo> {
        let envelope: AccountEnvelope = self
            .api
            .get_json("validate_token", ApiRequest::get("account"))
            .await?;
        Ok(TokenInfo {
            can_write: None,
            account: envelope.account.label(),
            scopes: Vec::new(),
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let path = format!("droplets/{}", droplet_id(id)?);
        let envelope: DropletEnvelope = self
            .api
            .get_json("get_server", ApiRequest::get(path))
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => e
                    .with_message(format!("droplet {id} not found"))
                    .with_hint("Check the droplet id, or that the token belongs to the right team"),
                _ => e,
            })?;
        envelope.droplet.into_server()
    }

    /// DigitalOcean has no server-side IP filter: pages through every droplet.
    async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>> {
        Ok(self
            .list_servers()
            .await?
            .into_iter()
            .find(|s| s.public_ipv4 == Some(ip)))
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        all_pages(&self.api, "list_servers", "droplets", split_droplets)
            .await?
            .into_iter()
            .map(crate::model::Droplet::into_server)
            .collect()
    }

    /// `reboot` (soft) or `power_cycle` (hard), sent once.
    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        let kind = match mode {
            RebootMode::Soft if CAPABILITY.reboot => "reboot",
            RebootMode::Hard if CAPABILITY.reboot_hard => "power_cycle",
            _ => return Err(unsupported(ID, "reboot")),
        };
        self.droplet_actions("reboot", id, json!({ "type": kind }), ActionKind::Reboot)
            .await
    }

    /// A `snapshot` action. Its id is only known once the action completes;
    /// [`CloudProvider::action_status`] then reports it. Refuses an empty
    /// name.
    async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid_input("a snapshot needs a name").with_provider(ID));
        }
        let body = json!({ "type": "snapshot", "name": name });
        let action = self
            .droplet_actions("create_snapshot", id, body, ActionKind::CreateSnapshot)
            .await?;
        self.remember_name(&action.id, name);
        Ok(action)
    }

    /// The droplet's snapshots from the account's list, which carries
    /// their tags (kastell's marker): see [`crate::marker`].
    async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        self.snapshots_of(id).await
    }

    /// `DELETE /snapshots/{id}`, only for a snapshot of `server`.
    async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()> {
        self.own_snapshot(server, snapshot).await?;
        let path = format!("snapshots/{}", path_segment(snapshot.as_str()));
        self.api
            .send("delete_snapshot", ApiRequest::delete(path))
            .await
            .map_err(|e| e.with_context("snapshot", snapshot))?;
        Ok(())
    }

    /// A `rebuild` action from the image (DigitalOcean reserves `restore`
    /// for backups), only for a snapshot of `server`.
    async fn restore_snapshot(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<ActionRef> {
        self.own_snapshot(server, snapshot).await?;
        let image: u64 = snapshot.as_str().parse().map_err(|_| {
            Error::unexpected(format!("snapshot id {snapshot} is not a number")).with_provider(ID)
        })?;
        let body = json!({ "type": "rebuild", "image": image });
        self.droplet_actions(
            "restore_snapshot",
            server,
            body,
            ActionKind::RestoreSnapshot,
        )
        .await
    }

    /// `GET /actions/{id}`. A completed snapshot action is reported running
    /// until its snapshot is listed, then (once the snapshot carries
    /// kastell's tag, [`crate::marker`]) succeeded with the snapshot id; a
    /// snapshot that cannot be tagged fails the wait, naming it.
    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        let path = format!("actions/{}", path_segment(&action.id));
        let envelope: ActionEnvelope = self
            .api
            .get_json("action_status", ApiRequest::get(path))
            .await?;
        let found = envelope.action;
        let state = action_state(found.status.as_deref().unwrap_or(""));
        let mut status = ActionStatus {
            state,
            progress: (state == ActionState::Succeeded).then_some(100),
            resource: action.resource.clone(),
            message: (state == ActionState::Failed).then(|| {
                format!(
                    "DigitalOcean reports the {} action errored",
                    found.kind.as_deref().unwrap_or("droplet")
                )
            }),
        };
        if action.kind == ActionKind::CreateSnapshot && state == ActionState::Succeeded {
            let name = self.remembered_name(&action.id);
            let snapshots = self.list_snapshots(&action.server).await?;
            match pick_new_snapshot(&snapshots, name.as_deref(), found.started_at.as_deref()) {
                Some(snapshot) => {
                    if snapshot.managed != Some(true) {
                        self.mark_snapshot(&snapshot.id).await?;
                    }
                    status.resource = Some(snapshot.id.to_string());
                }
                None => {
                    status.state = ActionState::Running;
                    status.progress = None;
                    status.message =
                        Some("the snapshot action completed; its image is not listed yet".into());
                }
            }
        }
        Ok(status)
    }

    /// The droplet's disk × $0.06 per GB-month: an upper bound, as
    /// DigitalOcean bills the compressed used size.
    async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate> {
        let server = self.get_server(id).await?;
        let size_gb = server.disk_gb.ok_or_else(|| {
            Error::unexpected(format!("droplet {id} reports no disk size")).with_provider(ID)
        })?;
        Ok(CostEstimate {
            monthly: size_gb * SNAPSHOT_PRICE_PER_GB_MONTH,
            currency: "$".into(),
            size_gb,
            basis: format!(
                "documented rate ${SNAPSHOT_PRICE_PER_GB_MONTH}/GB-month on the droplet disk \
                 (upper bound: the used size is billed)"
            ),
        })
    }

    /// `s-1vcpu-2gb` in `fra1` with `ubuntu-24-04-x64`.
    fn default_server_choice(&self) -> Result<ServerChoice> {
        Ok(Self::choice())
    }

    /// `price_monthly` and `price_hourly` from `GET /sizes`.
    async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        self.price(size, region).await
    }

    /// `POST /account/keys`, then `POST /droplets` (never re-sent), tagged
    /// `kastell-managed`, the role's tag and `kastell-ssh-key:<key id>`.
    async fn create_server(&self, spec: &ServerSpec) -> Result<Server> {
        self.create(spec).await
    }

    /// `GET /droplets?tag_name=kastell-managed`, every page.
    async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>> {
        self.managed().await
    }

    /// `DELETE /droplets/{id}` and its uploaded key, only for a droplet
    /// tagged `kastell-managed`.
    async fn delete_server(&self, id: &ServerId) -> Result<()> {
        self.delete(id).await
    }

    /// `GET /account/keys`, the keys named `kastell-managed-…`.
    async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        self.managed_keys().await
    }

    /// `GET /account/keys/{id}`, its name checked, then `DELETE`.
    async fn delete_ssh_key(&self, id: &str) -> Result<()> {
        self.delete_managed_key(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::Secret;

    fn provider(endpoint: Option<&str>) -> DigitalOcean {
        DigitalOcean::new(ProviderConfig {
            token: Secret::new("dop_v1_secret-value"),
            endpoint: endpoint.map(str::to_owned),
            ..ProviderConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn defaults_and_redaction() {
        let p = provider(None);
        assert_eq!(p.info().endpoint, DEFAULT_ENDPOINT);
        assert_eq!(p.poll_schedule(), default_poll());
        assert!(!format!("{p:?}").contains("secret-value"));
        let p = provider(Some("http://127.0.0.1:9/v2/"));
        assert_eq!(p.info().endpoint, "http://127.0.0.1:9/v2");
    }

    #[test]
    fn refuses_an_empty_token_and_foreign_ids() {
        let err = DigitalOcean::new(ProviderConfig::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert!(err.hint().unwrap().contains("DIGITALOCEAN_TOKEN"));
        let err = DigitalOcean::new(ProviderConfig {
            token: Secret::new("t"),
            endpoint: Some("ftp://example.invalid".into()),
            ..ProviderConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        let manual = ServerId::new("manual-1742050000000").unwrap();
        assert_eq!(
            droplet_id(&manual).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(droplet_id(&ServerId::new("42").unwrap()).unwrap(), 42);
    }

    #[tokio::test]
    async fn manual_servers_are_refused_before_any_request() {
        // The endpoint is unroutable: an attempted request would fail as
        // Unavailable, not InvalidInput.
        let p = provider(Some("http://127.0.0.1:9/v2"));
        let manual = ServerId::new("manual-1").unwrap();
        let err = p.reboot(&manual, RebootMode::Soft).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = p.create_snapshot(&manual, " ").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
