//! The Hetzner [`CloudProvider`] over the shared [`ApiClient`].

use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::types::{
    ActionKind, ActionRef, ActionStatus, CostEstimate, ManagedServer, ManagedSshKey, RebootMode,
    Server, ServerChoice, ServerId, ServerPrice, ServerSpec, Snapshot, SnapshotId, SnapshotStatus,
    TokenInfo,
};
use kastell_core::{
    CloudProvider, Error, ErrorKind, Idempotency, PollSchedule, ProviderConfig, ProviderIdentity,
    Result,
};
use kastell_http::{ApiClient, ApiRequest, ClientConfig, paginate};
use serde_json::json;

use crate::model::{
    ActionEnvelope, CreateImageAnswer, HImage, HServer, ImageEnvelope, ImageList, Paged,
    PricingEnvelope, PrimaryIpList, SNAPSHOT_LABEL, ServerEnvelope, ServerList,
};
use crate::{DEFAULT_ENDPOINT, ID, error::map_error};

/// Hetzner's documented maximum page size.
const PER_PAGE: &str = "50";

/// Hetzner Cloud, one project (tokens are per project). `Debug` shows the
/// endpoint, never the token.
#[derive(Debug)]
pub struct Hetzner {
    pub(crate) api: ApiClient,
    endpoint: String,
    poll: PollSchedule,
}

impl Hetzner {
    /// A provider for `config`; refuses an empty token or a bad endpoint.
    pub(crate) fn new(config: ProviderConfig) -> Result<Self> {
        let client_config = ClientConfig::for_provider(ID, DEFAULT_ENDPOINT, &config);
        let endpoint = client_config.base_url.clone();
        let api = ApiClient::new(client_config, map_error).map_err(|e| {
            e.or_hint(format!(
                "Set {} to a Hetzner Cloud API token",
                crate::TOKEN_ENV
            ))
        })?;
        let poll = config.poll.unwrap_or(PollSchedule::new(
            Duration::from_millis(500),
            Duration::from_secs(5),
        ));
        Ok(Self {
            api,
            endpoint,
            poll,
        })
    }

    /// Every page of a list at `path`, `per_page=50`, following
    /// `meta.pagination.next_page`.
    pub(crate) async fn all_pages<L: Paged>(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<L::Item>> {
        paginate(|cursor| async move {
            let mut request = ApiRequest::get(path)
                .query("page", cursor.unwrap_or_else(|| "1".to_owned()))
                .query("per_page", PER_PAGE);
            for (key, value) in query {
                request = request.query(*key, *value);
            }
            let list: L = self.api.get_json(operation, request).await?;
            let (items, next) = list.into_page();
            Ok((items, next.map(|n| n.to_string())))
        })
        .await
    }

    pub(crate) async fn server(&self, operation: &'static str, id: i64) -> Result<HServer> {
        let request = ApiRequest::get(format!("servers/{id}"));
        match self
            .api
            .get_json::<ServerEnvelope>(operation, request)
            .await
        {
            Ok(env) => Ok(env.server),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(e.with_hint(
                "Check the server id, or that the token belongs to the server's Hetzner project",
            )),
            Err(e) => Err(e),
        }
    }

    /// The snapshot `snapshot`, refused as not found unless it is a snapshot
    /// taken from `server`.
    async fn own_snapshot(
        &self,
        operation: &'static str,
        server: i64,
        snapshot: &SnapshotId,
    ) -> Result<HImage> {
        let image_id = numeric(snapshot.as_str(), "snapshot")?;
        let not_yours = || {
            Error::not_found(format!(
                "snapshot {snapshot} is not a snapshot of server {server}"
            ))
            .with_provider(ID)
            .with_operation(operation)
            .with_hint("Use snapshot-list for this server to see its snapshot ids")
        };
        let request = ApiRequest::get(format!("images/{image_id}"));
        match self.api.get_json::<ImageEnvelope>(operation, request).await {
            Ok(env) if env.image.is_snapshot_of(server) => Ok(env.image),
            Ok(_) => Err(not_yours()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(not_yours()),
            Err(e) => Err(e),
        }
    }

    async fn start_action(
        &self,
        operation: &'static str,
        path: String,
        body: serde_json::Value,
    ) -> Result<i64> {
        let request = ApiRequest::post(path, body, Idempotency::NonIdempotent);
        let env: ActionEnvelope = self.api.get_json(operation, request).await?;
        Ok(env.action.id)
    }
}

/// A Hetzner id (int64) from our text id; anything else names no Hetzner
/// resource (a `manual-` server, a typo).
pub(crate) fn numeric(id: &str, what: &str) -> Result<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        Error::invalid_input(format!(
            "{what} id {id:?} is not a Hetzner id (Hetzner ids are numbers)"
        ))
        .with_provider(ID)
        .with_hint("Manually added servers have no Hetzner id; use the id shown by Hetzner")
    })
}

fn action_ref(id: i64, kind: ActionKind, server: &ServerId, resource: Option<String>) -> ActionRef {
    ActionRef {
        id: id.to_string(),
        kind,
        server: server.clone(),
        resource,
    }
}

#[async_trait]
impl CloudProvider for Hetzner {
    fn identity(&self) -> ProviderIdentity {
        crate::ENTRY.identity(self.endpoint.clone(), self.poll)
    }

    /// `GET /servers?per_page=1`. Hetzner does not say whether a token is
    /// read-only (it refuses the first write with `token_readonly`), so
    /// `can_write` is `None`.
    async fn validate_token(&self) -> Result<TokenInfo> {
        let request = ApiRequest::get("servers").query("per_page", "1");
        self.api.send("validate_token", request).await?;
        Ok(TokenInfo {
            can_write: None,
            account: None,
            scopes: Vec::new(),
        })
    }

    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let n = numeric(id.as_str(), "server")?;
        self.server("get_server", n).await?.into_server()
    }

    /// `GET /primary_ips?ip=` names the server holding a public IPv4 in one
    /// call; when that lookup is unavailable (or ignores the filter), every
    /// page of `/servers` is searched instead.
    async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>> {
        const OP: &str = "find_server_by_ip";
        let request = ApiRequest::get("primary_ips").query("ip", ip.to_string());
        let fallback = match self.api.get_json::<PrimaryIpList>(OP, request).await {
            Ok(list) => {
                let (ips, next) = list.into_page();
                match ips.iter().find_map(|p| p.server_holding(ip)) {
                    Some(server) => {
                        return match self.server(OP, server).await {
                            Ok(s) if s.public_ipv4() == Some(ip) => s.into_server().map(Some),
                            Ok(_) => Ok(None),
                            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                            Err(e) => Err(e),
                        };
                    }
                    // More pages means the filter was ignored.
                    None => next.is_some(),
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => {
                tracing::debug!("primary IP lookup unavailable, listing servers: {e}");
                true
            }
            Err(e) => return Err(e),
        };
        if !fallback {
            return Ok(None);
        }
        let servers = self.all_pages::<ServerList>(OP, "servers", &[]).await?;
        servers
            .into_iter()
            .find(|s| s.public_ipv4() == Some(ip))
            .map(HServer::into_server)
            .transpose()
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        let servers = self
            .all_pages::<ServerList>("list_servers", "servers", &[])
            .await?;
        servers.into_iter().map(HServer::into_server).collect()
    }

    /// Soft: `/actions/reboot` (ACPI); hard: `/actions/reset`.
    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        // Both modes are supported, so nothing is refused here.
        let verb = match mode {
            RebootMode::Soft => "reboot",
            RebootMode::Hard => "reset",
        };
        let n = numeric(id.as_str(), "server")?;
        let path = format!("servers/{n}/actions/{verb}");
        let action = self.start_action("reboot", path, json!({})).await?;
        Ok(action_ref(action, ActionKind::Reboot, id, None))
    }

    /// `POST /servers/{id}/actions/create_image`; the image id is known at
    /// once and carried in [`ActionRef::resource`].
    async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef> {
        let n = numeric(id.as_str(), "server")?;
        let body = json!({
            "type": "snapshot",
            "description": name,
            "labels": { SNAPSHOT_LABEL.0: SNAPSHOT_LABEL.1 },
        });
        let request = ApiRequest::post(
            format!("servers/{n}/actions/create_image"),
            body,
            Idempotency::NonIdempotent,
        );
        let answer: CreateImageAnswer = self.api.get_json("create_snapshot", request).await?;
        let image = answer.image.id.to_string();
        Ok(action_ref(
            answer.action.id,
            ActionKind::CreateSnapshot,
            id,
            Some(image),
        ))
    }

    /// Every page of `GET /images?type=snapshot`, kept when `created_from`
    /// is this server (Hetzner has no server filter for snapshots).
    async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        let n = numeric(id.as_str(), "server")?;
        let query = [("type", "snapshot"), ("sort", "created:desc")];
        let images = self
            .all_pages::<ImageList>("list_snapshots", "images", &query)
            .await?;
        images
            .into_iter()
            .filter(|image| image.is_snapshot_of(n))
            .map(HImage::into_snapshot)
            .collect()
    }

    async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()> {
        let n = numeric(server.as_str(), "server")?;
        let image = self.own_snapshot("delete_snapshot", n, snapshot).await?;
        let request = ApiRequest::delete(format!("images/{}", image.id));
        self.api.send("delete_snapshot", request).await?;
        Ok(())
    }

    /// `POST /servers/{id}/actions/rebuild` with the image id, after checking
    /// the snapshot is this server's and is available.
    async fn restore_snapshot(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<ActionRef> {
        const OP: &str = "restore_snapshot";
        let n = numeric(server.as_str(), "server")?;
        let image = self.own_snapshot(OP, n, snapshot).await?;
        let status = image.raw_status().to_owned();
        if crate::model::snapshot_status(&status) != SnapshotStatus::Available {
            return Err(Error::invalid_state(format!(
                "snapshot {snapshot} is {status}, not available"
            ))
            .with_provider(ID)
            .with_operation(OP)
            .with_hint("Wait until the snapshot is available, then restore"));
        }
        let path = format!("servers/{n}/actions/rebuild");
        let body = json!({"image": image.id.to_string()});
        let action = self.start_action(OP, path, body).await?;
        Ok(action_ref(
            action,
            ActionKind::RestoreSnapshot,
            server,
            None,
        ))
    }

    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        let n = numeric(&action.id, "action")?;
        let request = ApiRequest::get(format!("actions/{n}"));
        let env: ActionEnvelope = self.api.get_json("action_status", request).await?;
        env.action.status(action.resource.clone())
    }

    /// `GET /pricing` (gross image price per GB-month) times the server
    /// type's disk: an upper bound, as a snapshot is usually smaller.
    async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate> {
        const OP: &str = "snapshot_cost_estimate";
        let server = self
            .get_server(id)
            .await
            .map_err(|e| e.with_operation(OP))?;
        let size_gb = server.disk_gb.ok_or_else(|| {
            Error::unexpected(format!("Hetzner did not report server {id}'s disk size"))
                .with_provider(ID)
                .with_operation(OP)
        })?;
        let pricing: PricingEnvelope = self.api.get_json(OP, ApiRequest::get("pricing")).await?;
        let rate = pricing.pricing.gross_per_gb_month()?;
        Ok(CostEstimate {
            monthly: rate * size_gb,
            currency: pricing.pricing.currency_symbol(),
            size_gb,
            basis: format!(
                "pricing endpoint: {rate} {}/GB-month gross x {size_gb} GB disk",
                pricing.pricing.currency
            ),
        })
    }

    /// CX23 in Falkenstein (`fsn1`) with Ubuntu 24.04.
    fn default_server_choice(&self) -> Result<ServerChoice> {
        Ok(Self::choice())
    }

    /// The gross price from `GET /pricing`.
    async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        self.price(size, region).await
    }

    /// `POST /ssh_keys`, then `POST /servers` (never re-sent), both
    /// labelled `kastell-managed=true` and `kastell-role=<role>`.
    async fn create_server(&self, spec: &ServerSpec) -> Result<Server> {
        self.create(spec).await
    }

    /// `GET /servers?label_selector=kastell-managed=true`, every page.
    async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>> {
        self.managed().await
    }

    /// `DELETE /servers/{id}` and its uploaded key, only for a server
    /// labelled `kastell-managed=true`.
    async fn delete_server(&self, id: &ServerId) -> Result<()> {
        self.delete(id).await
    }

    /// `GET /ssh_keys` with kastell's label selector.
    async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        self.managed_keys().await
    }

    /// `GET /ssh_keys/{id}`, its label checked, then `DELETE`.
    async fn delete_ssh_key(&self, id: &str) -> Result<()> {
        self.delete_managed_key(id).await
    }
}
