//! [`LinodeCloud`]: the HTTP plumbing shared by the provider operations
//! (configuration, pagination, `X-Filter`, event lookup, ownership checks).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use kastell_core::types::{ServerId, SnapshotId};
use kastell_core::{
    Error, ErrorKind, PollSchedule, ProviderConfig, Result, cloud::server_not_found,
};
use kastell_http::{ApiClient, ApiRequest, ClientConfig, paginate, path_segment};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::convention::linode_time;
use crate::model::{Event, Image, Instance, InstanceIps, IpAddress, Page, public_ipv4};
use crate::{DEFAULT_ENDPOINT, ID};

/// Largest page Linode serves, and the default here (fewest requests).
const MAX_PAGE_SIZE: u32 = 500;

/// Smallest page Linode serves.
const MIN_PAGE_SIZE: u32 = 25;

/// How far back an event search reaches before the request time, to
/// tolerate a client clock running ahead of Linode's. A previous event of
/// the same kind cannot be confused with ours: while it ran, Linode would
/// have answered "Linode busy." to our request.
const EVENT_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Prefix of an [`ActionRef`](kastell_core::types::ActionRef) id whose event
/// was not visible yet when the action started:
/// `pending:<action>:<instance id>:<created since>`.
pub(crate) const PENDING: &str = "pending:";

/// A Linode account reached through its API token.
///
/// `Debug` shows the endpoint, never the token.
#[derive(Debug)]
pub struct LinodeCloud {
    pub(crate) api: ApiClient,
    pub(crate) endpoint: String,
    pub(crate) poll: PollSchedule,
    page_size: u32,
}

impl LinodeCloud {
    /// A provider for `config`. Refuses an empty token, a malformed
    /// endpoint and a `page_size` option outside 25..=500.
    pub fn new(config: ProviderConfig) -> Result<Self> {
        let client_config = ClientConfig::for_provider(ID, DEFAULT_ENDPOINT, &config);
        let endpoint = client_config.base_url.clone();
        let page_size = match config.options.get("page_size") {
            None => MAX_PAGE_SIZE,
            Some(raw) => raw
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    Error::config_invalid(format!(
                        "linode option page_size must be a number from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}, not {raw:?}"
                    ))
                    .with_provider(ID)
                })?,
        };
        let api = ApiClient::new(client_config, crate::error::map_error)?;
        Ok(Self {
            api,
            endpoint,
            poll: config.poll.unwrap_or_else(|| {
                PollSchedule::new(Duration::from_secs(2), Duration::from_secs(15))
            }),
            page_size,
        })
    }

    /// Every item of a paginated list at `path`, optionally filtered.
    pub(crate) async fn list_all<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        filter: Option<&Value>,
    ) -> Result<Vec<T>> {
        paginate(|cursor| async move {
            let page: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(1);
            let mut request = ApiRequest::get(path)
                .query("page", page.to_string())
                .query("page_size", self.page_size.to_string());
            if let Some(filter) = filter {
                request = with_filter(request, filter)?;
            }
            let body: Page<T> = self.api.get_json(operation, request).await?;
            let current = body.page.unwrap_or(page);
            let next = (current < body.pages.unwrap_or(1)).then(|| (current + 1).to_string());
            Ok((body.data, next))
        })
        .await
    }

    /// The instance `id`; a 404 becomes the usual "server not found".
    pub(crate) async fn instance(
        &self,
        operation: &'static str,
        id: &ServerId,
    ) -> Result<Instance> {
        let n = instance_id(id)?;
        self.api
            .get_json(operation, ApiRequest::get(format!("linode/instances/{n}")))
            .await
            .map_err(|e| or_server_not_found(e, id))
    }

    /// The first public IPv4 of instance `id`, from its `ips` (the instance's
    /// own `ipv4` array mixes private addresses in).
    pub(crate) async fn instance_public_ip(
        &self,
        operation: &'static str,
        id: &ServerId,
    ) -> Result<Option<Ipv4Addr>> {
        let n = instance_id(id)?;
        let ips: InstanceIps = self
            .api
            .get_json(
                operation,
                ApiRequest::get(format!("linode/instances/{n}/ips")),
            )
            .await
            .map_err(|e| or_server_not_found(e, id))?;
        Ok(public_ipv4(&ips))
    }

    /// Public IPv4 of every instance, from one account-wide address list.
    pub(crate) async fn public_ips_by_instance(&self) -> Result<HashMap<u64, Ipv4Addr>> {
        let addresses: Vec<IpAddress> = self
            .list_all("list_servers", "networking/ips", None)
            .await?;
        let mut by_instance = HashMap::new();
        for address in addresses {
            if let (Some(linode), Some(ip)) = (address.linode_id, address.public_ipv4()) {
                by_instance.entry(linode).or_insert(ip);
            }
        }
        Ok(by_instance)
    }

    /// The image `snapshot` after checking it is a private image kastell made
    /// from `server`; anything else is [`ErrorKind::NotFound`].
    pub(crate) async fn owned_image(
        &self,
        operation: &'static str,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<Image> {
        instance_id(server)?;
        let request = ApiRequest::get(format!("images/{}", path_segment(snapshot.as_str())));
        let image: Image = match self.api.get_json(operation, request).await {
            Ok(image) => image,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(snapshot_not_found(server, snapshot, operation));
            }
            Err(e) => return Err(e),
        };
        if image.belongs_to(server) {
            Ok(image)
        } else {
            Err(snapshot_not_found(server, snapshot, operation))
        }
    }

    /// The time an event search for an action sent now starts from.
    pub(crate) fn event_search_start() -> String {
        let now = SystemTime::now();
        linode_time(now.checked_sub(EVENT_CLOCK_SKEW).unwrap_or(now))
    }

    /// The newest `action` event of instance `linode` created at or after
    /// `since`, searched the way linodego does (`X-Filter` on the events list).
    pub(crate) async fn find_event(
        &self,
        action: &str,
        linode: u64,
        since: &str,
    ) -> Result<Option<Event>> {
        let filter = json!({
            "+order": "desc",
            "+order_by": "created",
            "action": action,
            "entity.id": linode,
            "entity.type": "linode",
            "created": {"+gte": since},
        });
        let request = with_filter(
            ApiRequest::get("account/events")
                .query("page", "1")
                .query("page_size", MIN_PAGE_SIZE.to_string()),
            &filter,
        )?;
        let page: Page<Event> = self.api.get_json("action_status", request).await?;
        Ok(page.data.into_iter().next())
    }

    /// The ActionRef id for an `action` just started on `linode`: the
    /// event's id when it is already visible, else a pending search key
    /// that [`LinodeCloud::find_event`] resolves on each poll. Never fails:
    /// the action itself was accepted.
    pub(crate) async fn locate_event(&self, action: &str, linode: u64, since: &str) -> String {
        match self.find_event(action, linode, since).await {
            Ok(Some(event)) => return event.id.to_string(),
            Ok(None) => {}
            Err(e) => tracing::warn!("looking up the {action} event of linode {linode}: {e}"),
        }
        format!("{PENDING}{action}:{linode}:{since}")
    }

    /// The event behind an ActionRef id (numeric, or a pending search key).
    pub(crate) async fn event_for(&self, action_id: &str) -> Result<Option<Event>> {
        if let Some(key) = action_id.strip_prefix(PENDING) {
            let mut parts = key.splitn(3, ':');
            let (Some(action), Some(linode), Some(since)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad_action_id(action_id));
            };
            let linode: u64 = linode.parse().map_err(|_| bad_action_id(action_id))?;
            return self.find_event(action, linode, since).await;
        }
        let id: u64 = action_id.parse().map_err(|_| bad_action_id(action_id))?;
        let event = self
            .api
            .get_json(
                "action_status",
                ApiRequest::get(format!("account/events/{id}")),
            )
            .await?;
        Ok(Some(event))
    }
}

/// Adds Linode's `X-Filter` header to `request`.
fn with_filter(request: ApiRequest, filter: &Value) -> Result<ApiRequest> {
    let name = "x-filter"
        .try_into()
        .map_err(|_| Error::unexpected("x-filter is not a valid header name"))?;
    Ok(request.header(name, filter.to_string()))
}

/// Linode instance ids are numbers; anything else names no instance.
pub(crate) fn instance_id(id: &ServerId) -> Result<u64> {
    id.as_str().parse().map_err(|_| {
        Error::invalid_input(format!("{id} is not a Linode instance id"))
            .with_provider(ID)
            .with_hint("Linode instance ids are numbers, as the provider's server list shows them")
    })
}

fn or_server_not_found(error: Error, id: &ServerId) -> Error {
    if error.kind() == ErrorKind::NotFound {
        let operation = error.operation();
        let mut not_found = server_not_found(ID, id);
        if let Some(operation) = operation {
            not_found = not_found.with_operation(operation);
        }
        not_found
    } else {
        error
    }
}

fn snapshot_not_found(server: &ServerId, snapshot: &SnapshotId, op: &'static str) -> Error {
    Error::not_found(format!("snapshot {snapshot} of server {server} not found"))
        .with_provider(ID)
        .with_operation(op)
        .with_hint(format!(
            "Only private images kastell took of server {server} (labelled kastell-{server}-…) \
             can be used with it; list them with snapshot-list"
        ))
}

fn bad_action_id(id: &str) -> Error {
    Error::invalid_input(format!("{id:?} is not a Linode action handle")).with_provider(ID)
}
