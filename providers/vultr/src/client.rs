//! [`VultrCloud`]: the [`CloudProvider`] over Vultr's API v2.

use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::capability::unsupported;
use kastell_core::types::{
    ActionKind, ActionRef, ActionState, ActionStatus, CostEstimate, ManagedServer, ManagedSshKey,
    RebootMode, Server, ServerChoice, ServerId, ServerPrice, ServerSpec, Snapshot, SnapshotId,
    SnapshotStatus, TokenInfo,
};
use kastell_core::{
    CloudProvider, Error, ErrorKind, Idempotency, PollSchedule, ProviderConfig, ProviderIdentity,
    Result,
};
use kastell_http::{ApiClient, ApiRequest, ClientConfig, paginate};
use serde_json::json;

use crate::actions::Tracker;
use crate::error::map_error;
use crate::model::{
    self, AccountEnvelope, Instance, InstanceEnvelope, InstancePage, SnapshotEnvelope,
    SnapshotPage, VultrSnapshot,
};
use crate::{DEFAULT_ENDPOINT, ID};

/// Vultr's largest page.
const PER_PAGE: &str = "500";

/// Dollars per GB-month of snapshot storage (Vultr's documented rate).
const PRICE_PER_GB_MONTH: f64 = 0.05;

/// The Vultr provider: one account, reached with one API key.
///
/// Refuses hard reboots (Vultr has no such call), ids that are not UUIDs,
/// and snapshots that kastell did not take of the given server. `Debug`
/// never shows the token.
#[derive(Debug)]
pub struct VultrCloud {
    pub(crate) api: ApiClient,
    endpoint: String,
    poll: PollSchedule,
    actions: Tracker,
}

impl VultrCloud {
    /// A provider for `config`: its token, and optionally an endpoint,
    /// timeout (default 30 s), retry policy and poll schedule (default 3 s
    /// growing to 15 s). Refuses an empty token and an endpoint that is not
    /// an http(s) URL.
    pub fn new(config: ProviderConfig) -> Result<Self> {
        let client_config = ClientConfig::for_provider(ID, DEFAULT_ENDPOINT, &config);
        let endpoint = client_config.base_url.clone();
        let api = ApiClient::new(client_config, map_error)
            .map_err(|e| e.or_hint(format!("Set {} to a Vultr API key", crate::TOKEN_ENV)))?;
        let poll = config.poll.unwrap_or_else(default_poll);
        Ok(Self {
            api,
            endpoint,
            poll,
            actions: Tracker::new(&poll),
        })
    }

    pub(crate) async fn instance(
        &self,
        operation: &'static str,
        id: &ServerId,
    ) -> Result<Instance> {
        let path = instance_path(id)?;
        let envelope: InstanceEnvelope = self
            .api
            .get_json(operation, ApiRequest::get(path))
            .await
            .map_err(|e| e.with_context("server", id))?;
        Ok(envelope.instance)
    }

    /// Every instance, or those matching one server-side filter.
    pub(crate) async fn instances(
        &self,
        operation: &'static str,
        filter: Option<(&'static str, String)>,
    ) -> Result<Vec<Instance>> {
        paginate(|cursor| {
            let filter = filter.clone();
            async move {
                let mut request = ApiRequest::get("instances").query("per_page", PER_PAGE);
                if let Some((key, value)) = filter {
                    request = request.query(key, value);
                }
                if let Some(cursor) = cursor {
                    request = request.query("cursor", cursor);
                }
                let page: InstancePage = self.api.get_json(operation, request).await?;
                Ok((page.instances, model::next_cursor(page.meta)))
            }
        })
        .await
    }

    /// `snapshot`, after checking kastell took it of `server`; any other
    /// snapshot is [`ErrorKind::NotFound`].
    async fn own_snapshot(
        &self,
        operation: &'static str,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<VultrSnapshot> {
        instance_path(server)?;
        let path = snapshot_path(snapshot)?;
        let envelope: SnapshotEnvelope = self
            .api
            .get_json(operation, ApiRequest::get(path))
            .await
            .map_err(|e| e.with_context("snapshot", snapshot))?;
        if !model::belongs_to(&envelope.snapshot, server) {
            return Err(Error::not_found(format!(
                "snapshot {snapshot} is not a snapshot of server {server}"
            ))
            .with_provider(ID)
            .with_operation(operation)
            .with_hint(
                "List this server's snapshots to see their ids; kastell only acts on \
                 snapshots it took of the same server",
            ));
        }
        Ok(envelope.snapshot)
    }

    async fn snapshot_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        let id = action
            .resource
            .clone()
            .or_else(|| action.id.strip_prefix("snapshot-").map(str::to_owned))
            .ok_or_else(|| {
                Error::invalid_input(format!("action {} names no snapshot", action.id))
                    .with_provider(ID)
            })?;
        let path = snapshot_path(&SnapshotId::new(id.clone())?)?;
        let envelope: SnapshotEnvelope = self
            .api
            .get_json("action_status", ApiRequest::get(path))
            .await?;
        let status = model::snapshot_status(envelope.snapshot.status.as_deref());
        let (state, message) = match status {
            SnapshotStatus::Available => (ActionState::Succeeded, None),
            SnapshotStatus::Creating | SnapshotStatus::Unknown => (ActionState::Running, None),
            SnapshotStatus::Deleting | SnapshotStatus::Failed => (
                ActionState::Failed,
                Some(format!(
                    "snapshot {id} is {}",
                    envelope.snapshot.status.as_deref().unwrap_or("gone")
                )),
            ),
        };
        Ok(ActionStatus {
            state,
            progress: (state == ActionState::Succeeded).then_some(100),
            resource: Some(id),
            message,
        })
    }
}

/// The poll schedule used unless configured: the terraform provider waits
/// at least 3 s between polls; 15 s keeps long snapshots cheap.
fn default_poll() -> PollSchedule {
    PollSchedule::new(Duration::from_secs(3), Duration::from_secs(15))
}

/// `instances/<id>`, refusing ids that are not UUIDs (manual servers
/// included) before any request.
pub(crate) fn instance_path(id: &ServerId) -> Result<String> {
    if !model::is_uuid(id.as_str()) {
        let hint = if id.is_manual() {
            "This server was added manually and has no Vultr instance; use SSH instead"
        } else {
            "Vultr instance ids are UUIDs; check the id in the fleet store or the Vultr console"
        };
        return Err(
            Error::invalid_input(format!("{id} is not a Vultr instance id (a UUID)"))
                .with_provider(ID)
                .with_hint(hint),
        );
    }
    Ok(format!("instances/{id}"))
}

/// `snapshots/<id>`, refusing ids that are not UUIDs before any request.
fn snapshot_path(id: &SnapshotId) -> Result<String> {
    if !model::is_uuid(id.as_str()) {
        return Err(
            Error::invalid_input(format!("{id} is not a Vultr snapshot id (a UUID)"))
                .with_provider(ID)
                .with_hint("List this server's snapshots to see their ids"),
        );
    }
    Ok(format!("snapshots/{id}"))
}

#[async_trait]
impl CloudProvider for VultrCloud {
    fn identity(&self) -> ProviderIdentity {
        crate::ENTRY.identity(self.endpoint.clone(), self.poll)
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        let envelope: AccountEnvelope = self
            .api
            .get_json("validate_token", ApiRequest::get("account"))
            .await?;
        let account = envelope.account;
        let can_write = model::can_write(&account.acls);
        Ok(TokenInfo {
            can_write,
            account: account.name.filter(|n| !n.is_empty()).or(account.email),
            scopes: account.acls,
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        model::to_server(self.instance("get_server", id).await?)
    }

    async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>> {
        // The filter is server-side; matching again keeps a proxy or an API
        // that ignores it from returning the wrong server.
        let matches = self
            .instances("find_server_by_ip", Some(("main_ip", ip.to_string())))
            .await?;
        matches
            .into_iter()
            .find(|i| model::public_ipv4(i) == Some(ip))
            .map(model::to_server)
            .transpose()
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        self.instances("list_servers", None)
            .await?
            .into_iter()
            .map(model::to_server)
            .collect()
    }

    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        if mode == RebootMode::Hard {
            return Err(unsupported(ID, "reboot_hard"));
        }
        let path = format!("{}/reboot", instance_path(id)?);
        let request = ApiRequest::post(path, json!({}), Idempotency::NonIdempotent);
        self.api
            .send("reboot", request)
            .await
            .map_err(|e| e.with_context("server", id))?;
        Ok(self.actions.start(ActionKind::Reboot, id, None))
    }

    async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef> {
        instance_path(id)?;
        let body = json!({
            "instance_id": id.as_str(),
            "description": model::description_for(id, name),
        });
        let request = ApiRequest::post("snapshots", body, Idempotency::NonIdempotent);
        let envelope: SnapshotEnvelope = self
            .api
            .send("create_snapshot", request)
            .await
            .map_err(|e| e.with_context("server", id))?
            .json(ID, "create_snapshot")?;
        let snapshot = envelope.snapshot.id;
        Ok(ActionRef {
            id: format!("snapshot-{snapshot}"),
            kind: ActionKind::CreateSnapshot,
            server: id.clone(),
            resource: Some(snapshot),
        })
    }

    async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        instance_path(id)?;
        // Every page of the account's snapshots, kept when the description
        // names this server: snapshots carry no instance id, and how the
        // `description` query filter matches is not documented.
        let all = paginate(|cursor| async move {
            let mut request = ApiRequest::get("snapshots").query("per_page", PER_PAGE);
            if let Some(cursor) = cursor {
                request = request.query("cursor", cursor);
            }
            let page: SnapshotPage = self.api.get_json("list_snapshots", request).await?;
            Ok((page.snapshots, model::next_cursor(page.meta)))
        })
        .await?;
        all.into_iter()
            .filter(|s| model::belongs_to(s, id))
            .map(|s| model::to_snapshot(s, id))
            .collect()
    }

    async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()> {
        self.own_snapshot("delete_snapshot", server, snapshot)
            .await?;
        self.api
            .send(
                "delete_snapshot",
                ApiRequest::delete(snapshot_path(snapshot)?),
            )
            .await
            .map_err(|e| e.with_context("snapshot", snapshot))?;
        Ok(())
    }

    async fn restore_snapshot(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<ActionRef> {
        let own = self
            .own_snapshot("restore_snapshot", server, snapshot)
            .await?;
        if model::snapshot_status(own.status.as_deref()) != SnapshotStatus::Available {
            return Err(Error::invalid_state(format!(
                "snapshot {snapshot} is not complete yet (status {})",
                own.status.as_deref().unwrap_or("unknown")
            ))
            .with_provider(ID)
            .with_operation("restore_snapshot")
            .with_hint("Wait until the snapshot is complete, then restore it"));
        }
        let path = format!("{}/restore", instance_path(server)?);
        let body = json!({ "snapshot_id": snapshot.as_str() });
        let request = ApiRequest::post(path, body, Idempotency::NonIdempotent);
        self.api
            .send("restore_snapshot", request)
            .await
            .map_err(|e| e.with_context("server", server))?;
        let resource = Some(snapshot.as_str().to_owned());
        Ok(self
            .actions
            .start(ActionKind::RestoreSnapshot, server, resource))
    }

    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        if action.kind == ActionKind::CreateSnapshot {
            return self.snapshot_status(action).await;
        }
        let instance = self.instance("action_status", &action.server).await?;
        let state = self.actions.observe(action, model::is_ready(&instance));
        Ok(ActionStatus {
            state,
            progress: (state == ActionState::Succeeded).then_some(100),
            resource: action.resource.clone(),
            message: None,
        })
    }

    async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate> {
        let instance = self.instance("snapshot_cost_estimate", id).await?;
        let size_gb = instance.disk.filter(|d| *d > 0.0).ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("Vultr reported no disk size for instance {id}"),
            )
            .with_provider(ID)
            .with_operation("snapshot_cost_estimate")
        })?;
        Ok(CostEstimate {
            monthly: size_gb * PRICE_PER_GB_MONTH,
            currency: "$".to_owned(),
            size_gb,
            basis: "documented rate ($0.05 per GB-month) on the instance disk, an upper bound"
                .to_owned(),
        })
    }

    /// `vc2-1c-2gb` in `fra` with Ubuntu 24.04 (`os_id` 2284).
    fn default_server_choice(&self) -> Result<ServerChoice> {
        Ok(Self::choice())
    }

    /// `monthly_cost` and `hourly_cost` from `GET /plans`.
    async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        self.price(size, region).await
    }

    /// `POST /ssh-keys`, then `POST /instances` (never re-sent), tagged
    /// `kastell-managed`, the role's tag and `kastell-ssh-key:<key id>`.
    async fn create_server(&self, spec: &ServerSpec) -> Result<Server> {
        self.create(spec).await
    }

    /// `GET /instances?tag=kastell-managed`, every page.
    async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>> {
        self.managed().await
    }

    /// `DELETE /instances/{id}` and its uploaded key, only for an instance
    /// tagged `kastell-managed`.
    async fn delete_server(&self, id: &ServerId) -> Result<()> {
        self.delete(id).await
    }

    /// `GET /ssh-keys`, the keys named `kastell-managed-…`.
    async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        self.managed_keys().await
    }

    /// `GET /ssh-keys/{id}`, its name checked, then `DELETE`.
    async fn delete_ssh_key(&self, id: &str) -> Result<()> {
        self.delete_managed_key(id).await
    }
}
