//! An in-memory cloud account with servers, snapshots and actions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::capability::{CloudCapability, unsupported};
use crate::cloud::{CloudProvider, server_not_found};
use crate::error::{Error, Result};
use crate::poll::PollSchedule;
use crate::registry::{ProviderEntry, ProviderIdentity};
use crate::types::{
    ActionKind, ActionRef, ActionState, ActionStatus, CostEstimate, ManagedRole, ManagedServer,
    ManagedSshKey, RebootMode, Server, ServerChoice, ServerId, ServerPrice, ServerSpec,
    ServerStatus, Snapshot, SnapshotId, SnapshotStatus, TokenInfo,
};

const ID: &str = "memory";

/// The in-memory cloud's entry (registered nowhere: tests build it
/// directly).
static ENTRY: ProviderEntry = ProviderEntry {
    id: ID,
    display_name: "In-memory cloud",
    token_env: "MEMORY_TOKEN",
    capability: CloudCapability::all(),
    build: |_| Ok(std::sync::Arc::new(MemoryCloud::new())),
};

#[derive(Debug)]
struct PendingAction {
    kind: ActionKind,
    server: ServerId,
    polls_left: u32,
    resource: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    servers: BTreeMap<ServerId, Server>,
    boots: HashMap<ServerId, u64>,
    snapshots: BTreeMap<SnapshotId, Snapshot>,
    actions: HashMap<String, PendingAction>,
    next_id: u64,
    /// Servers kastell created, by role.
    managed: BTreeMap<ServerId, ManagedRole>,
    /// Created servers still provisioning: status polls left before they
    /// run with an address.
    provisioning: HashMap<ServerId, u32>,
    /// Addresses new servers get, in order (then `198.51.100.<n>`).
    address_pool: VecDeque<Ipv4Addr>,
    calls: Vec<&'static str>,
    faults: VecDeque<(&'static str, Error)>,
}

/// A cloud account held in memory.
///
/// Actions finish after a configurable number of status polls
/// ([`MemoryCloud::set_polls_per_action`], default 1). A reboot puts the
/// server in `rebooting` and counts a new boot when it finishes; a snapshot is
/// `creating` until its action finishes. Faults can be queued per operation
/// with [`MemoryCloud::fail_next`], and every call is recorded.
#[derive(Debug)]
pub struct MemoryCloud {
    capability: CloudCapability,
    polls_per_action: Mutex<u32>,
    state: Mutex<State>,
}

impl Default for MemoryCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCloud {
    /// An empty account supporting everything.
    pub fn new() -> Self {
        Self::with_capability(CloudCapability::all())
    }

    /// An empty account with the given capability.
    pub fn with_capability(capability: CloudCapability) -> Self {
        Self {
            capability,
            polls_per_action: Mutex::new(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a running server and returns its id.
    pub fn add_server(&self, name: &str, ip: Ipv4Addr) -> ServerId {
        let mut state = self.state();
        state.next_id += 1;
        let id = ServerId::new(format!("{}", 1000 + state.next_id))
            .unwrap_or_else(|_| unreachable!("numeric ids are valid"));
        state.servers.insert(
            id.clone(),
            Server {
                id: id.clone(),
                name: name.to_owned(),
                status: ServerStatus::Running,
                raw_status: "running".into(),
                public_ipv4: Some(ip),
                region: Some("mem-1".into()),
                plan: Some("small".into()),
                disk_gb: Some(40.0),
                created_at: None,
            },
        );
        state.boots.insert(id.clone(), 1);
        id
    }

    /// Adds addresses that created servers get, in order, before the
    /// default `198.51.100.<n>` (so a test can hand out addresses a fake
    /// host answers on).
    pub fn add_addresses(&self, addresses: impl IntoIterator<Item = Ipv4Addr>) {
        self.state().address_pool.extend(addresses);
    }

    /// How many status polls an action takes to finish.
    pub fn set_polls_per_action(&self, polls: u32) {
        *self
            .polls_per_action
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = polls;
    }

    /// Makes the next call of `operation` (a trait method name) fail with `error`.
    pub fn fail_next(&self, operation: &'static str, error: Error) {
        self.state().faults.push_back((operation, error));
    }

    /// Every call made so far, by trait method name.
    pub fn calls(&self) -> Vec<&'static str> {
        self.state().calls.clone()
    }

    /// How many times the server has booted.
    pub fn boots(&self, id: &ServerId) -> u64 {
        self.state().boots.get(id).copied().unwrap_or(0)
    }

    fn enter(&self, operation: &'static str) -> Result<MutexGuard<'_, State>> {
        let mut state = self.state();
        state.calls.push(operation);
        if let Some(pos) = state.faults.iter().position(|(op, _)| *op == operation) {
            if let Some((_, error)) = state.faults.remove(pos) {
                return Err(error.with_provider(ID).with_operation(operation));
            }
        }
        Ok(state)
    }

    fn start_action(
        &self,
        state: &mut State,
        kind: ActionKind,
        server: &ServerId,
        resource: Option<String>,
    ) -> ActionRef {
        state.next_id += 1;
        let id = format!("action-{}", state.next_id);
        let polls_left = *self
            .polls_per_action
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.actions.insert(
            id.clone(),
            PendingAction {
                kind,
                server: server.clone(),
                polls_left,
                resource: resource.clone(),
            },
        );
        ActionRef {
            id,
            kind,
            server: server.clone(),
            resource,
        }
    }
}

/// Counts one status poll of a provisioning server; the last one makes it
/// run with the next address.
fn advance_provisioning(state: &mut State, id: &ServerId) {
    let Some(left) = state.provisioning.get_mut(id) else {
        return;
    };
    if *left > 0 {
        *left -= 1;
        return;
    }
    state.provisioning.remove(id);
    let address = state.address_pool.pop_front().unwrap_or_else(|| {
        let n = (state.next_id % 250) as u8;
        Ipv4Addr::new(198, 51, 100, n.saturating_add(1))
    });
    if let Some(server) = state.servers.get_mut(id) {
        server.status = ServerStatus::Running;
        server.raw_status = "running".into();
        server.public_ipv4 = Some(address);
    }
}

fn set_status(state: &mut State, id: &ServerId, status: ServerStatus) {
    if let Some(server) = state.servers.get_mut(id) {
        server.status = status;
        server.raw_status = status.as_str().to_owned();
    }
}

fn owned_snapshot<'a>(
    state: &'a State,
    server: &ServerId,
    snapshot: &SnapshotId,
) -> Result<&'a Snapshot> {
    state
        .snapshots
        .get(snapshot)
        .filter(|s| s.server_id.as_ref() == Some(server))
        .ok_or_else(|| {
            Error::not_found(format!(
                "snapshot {snapshot} does not belong to server {server}"
            ))
            .with_provider(ID)
            .with_hint("Use snapshot-list to see this server's snapshots")
        })
}

#[async_trait]
impl CloudProvider for MemoryCloud {
    fn identity(&self) -> ProviderIdentity {
        let poll = PollSchedule::new(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(5),
        );
        ENTRY.identity("memory://", poll)
    }

    /// The capability it was made with, not its entry's.
    fn capability(&self) -> CloudCapability {
        self.capability
    }

    async fn validate_token(&self) -> Result<TokenInfo> {
        drop(self.enter("validate_token")?);
        Ok(TokenInfo {
            can_write: Some(true),
            account: Some("memory".into()),
            scopes: vec!["read".into(), "write".into()],
        })
    }

    /// A created server runs, with its address, once its provisioning
    /// polls are used up.
    async fn get_server(&self, id: &ServerId) -> Result<Server> {
        let mut state = self.enter("get_server")?;
        advance_provisioning(&mut state, id);
        state
            .servers
            .get(id)
            .cloned()
            .ok_or_else(|| server_not_found(ID, id))
    }

    async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>> {
        let state = self.enter("find_server_by_ip")?;
        Ok(state
            .servers
            .values()
            .find(|s| s.public_ipv4 == Some(ip))
            .cloned())
    }

    async fn list_servers(&self) -> Result<Vec<Server>> {
        let state = self.enter("list_servers")?;
        Ok(state.servers.values().cloned().collect())
    }

    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef> {
        let allowed = match mode {
            RebootMode::Soft => self.capability.reboot,
            RebootMode::Hard => self.capability.reboot_hard,
        };
        if !allowed {
            return Err(unsupported(ID, "reboot"));
        }
        let mut state = self.enter("reboot")?;
        if !state.servers.contains_key(id) {
            return Err(server_not_found(ID, id));
        }
        set_status(&mut state, id, ServerStatus::Rebooting);
        Ok(self.start_action(&mut state, ActionKind::Reboot, id, None))
    }

    async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef> {
        if !self.capability.snapshot_create {
            return Err(unsupported(ID, "snapshot_create"));
        }
        let mut state = self.enter("create_snapshot")?;
        let disk = state
            .servers
            .get(id)
            .ok_or_else(|| server_not_found(ID, id))?
            .disk_gb;
        state.next_id += 1;
        let snapshot_id = SnapshotId::new(format!("snap-{}", state.next_id))?;
        state.snapshots.insert(
            snapshot_id.clone(),
            Snapshot {
                id: snapshot_id.clone(),
                server_id: Some(id.clone()),
                name: name.to_owned(),
                status: SnapshotStatus::Creating,
                raw_status: "creating".into(),
                size_gb: disk.map(|d| d / 4.0),
                created_at: None,
                managed: None,
            },
        );
        Ok(self.start_action(
            &mut state,
            ActionKind::CreateSnapshot,
            id,
            Some(snapshot_id.to_string()),
        ))
    }

    async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        if !self.capability.snapshot_list {
            return Err(unsupported(ID, "snapshot_list"));
        }
        let state = self.enter("list_snapshots")?;
        if !state.servers.contains_key(id) {
            return Err(server_not_found(ID, id));
        }
        Ok(state
            .snapshots
            .values()
            .filter(|s| s.server_id.as_ref() == Some(id))
            .cloned()
            .collect())
    }

    async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()> {
        if !self.capability.snapshot_delete {
            return Err(unsupported(ID, "snapshot_delete"));
        }
        let mut state = self.enter("delete_snapshot")?;
        owned_snapshot(&state, server, snapshot)?;
        state.snapshots.remove(snapshot);
        Ok(())
    }

    async fn restore_snapshot(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<ActionRef> {
        if !self.capability.snapshot_restore {
            return Err(unsupported(ID, "snapshot_restore"));
        }
        let mut state = self.enter("restore_snapshot")?;
        let found = owned_snapshot(&state, server, snapshot)?;
        if found.status != SnapshotStatus::Available {
            return Err(Error::invalid_state(format!(
                "snapshot {snapshot} is {}, not available",
                found.raw_status
            ))
            .with_provider(ID));
        }
        set_status(&mut state, server, ServerStatus::Provisioning);
        Ok(self.start_action(
            &mut state,
            ActionKind::RestoreSnapshot,
            server,
            Some(snapshot.to_string()),
        ))
    }

    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus> {
        let mut state = self.enter("action_status")?;
        let pending = state.actions.get_mut(&action.id).ok_or_else(|| {
            Error::not_found(format!("action {} not found", action.id)).with_provider(ID)
        })?;
        if pending.polls_left > 0 {
            pending.polls_left -= 1;
        }
        if pending.polls_left > 0 {
            return Ok(ActionStatus {
                state: ActionState::Running,
                progress: Some(50),
                resource: None,
                message: None,
            });
        }
        let (kind, server, resource) = (
            pending.kind,
            pending.server.clone(),
            pending.resource.clone(),
        );
        match kind {
            ActionKind::Reboot | ActionKind::RestoreSnapshot => {
                if state.servers.get(&server).map(|s| s.status) != Some(ServerStatus::Running) {
                    *state.boots.entry(server.clone()).or_insert(0) += 1;
                }
                set_status(&mut state, &server, ServerStatus::Running);
            }
            ActionKind::CreateSnapshot => {
                if let Some(snapshot) = resource
                    .as_deref()
                    .and_then(|r| SnapshotId::new(r).ok())
                    .and_then(|id| state.snapshots.get_mut(&id))
                {
                    snapshot.status = SnapshotStatus::Available;
                    snapshot.raw_status = "available".into();
                }
            }
        }
        Ok(ActionStatus {
            state: ActionState::Succeeded,
            progress: Some(100),
            resource,
            message: None,
        })
    }

    fn default_server_choice(&self) -> Result<ServerChoice> {
        if !self.capability.server_create {
            return Err(unsupported(ID, "server_create"));
        }
        Ok(ServerChoice {
            size: "small".into(),
            region: "mem-1".into(),
            image: "ubuntu-24.04".into(),
        })
    }

    async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        if !self.capability.server_create {
            return Err(unsupported(ID, "server_create"));
        }
        drop(self.enter("server_price")?);
        if size != "small" || region != "mem-1" {
            return Err(Error::invalid_input(format!(
                "the memory cloud has no size {size:?} in region {region:?}"
            ))
            .with_provider(ID)
            .with_hint("It offers size `small` in region `mem-1`"));
        }
        Ok(ServerPrice {
            monthly: 5.0,
            hourly: Some(0.007),
            currency: "$".into(),
            basis: "memory reference rate".into(),
        })
    }

    async fn create_server(&self, spec: &ServerSpec) -> Result<Server> {
        if !self.capability.server_create {
            return Err(unsupported(ID, "server_create"));
        }
        if [
            &spec.name,
            &spec.size,
            &spec.region,
            &spec.image,
            &spec.ssh_public_key,
        ]
        .iter()
        .any(|field| field.trim().is_empty())
        {
            return Err(Error::invalid_input(
                "a new server needs a name, size, region, image and SSH public key",
            )
            .with_provider(ID));
        }
        let polls = *self
            .polls_per_action
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut state = self.enter("create_server")?;
        state.next_id += 1;
        let id = ServerId::new(format!("{}", 1000 + state.next_id))?;
        let mut server = Server::new(id.clone(), spec.name.clone(), ServerStatus::Provisioning);
        server.region = Some(spec.region.clone());
        server.plan = Some(spec.size.clone());
        server.disk_gb = Some(40.0);
        state.servers.insert(id.clone(), server.clone());
        state.managed.insert(id.clone(), spec.role);
        state.provisioning.insert(id.clone(), polls);
        state.boots.insert(id, 1);
        Ok(server)
    }

    async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>> {
        if !self.capability.server_create {
            return Err(unsupported(ID, "server_create"));
        }
        let state = self.enter("list_managed_servers")?;
        Ok(state
            .managed
            .iter()
            .filter_map(|(id, role)| {
                state.servers.get(id).map(|server| ManagedServer {
                    server: server.clone(),
                    role: Some(*role),
                    ssh_key: None,
                })
            })
            .collect())
    }

    async fn delete_server(&self, id: &ServerId) -> Result<()> {
        if !self.capability.server_delete {
            return Err(unsupported(ID, "server_delete"));
        }
        let mut state = self.enter("delete_server")?;
        if !state.servers.contains_key(id) {
            return Err(server_not_found(ID, id));
        }
        if !state.managed.contains_key(id) {
            return Err(Error::new(
                crate::ErrorKind::PermissionDenied,
                format!("server {id} was not created by kastell; it is not deleted"),
            )
            .with_provider(ID)
            .with_hint("kastell deletes only servers that carry its marker"));
        }
        state.servers.remove(id);
        state.managed.remove(id);
        state.provisioning.remove(id);
        state
            .snapshots
            .retain(|_, s| s.server_id.as_ref() != Some(id));
        Ok(())
    }

    /// The memory account takes keys inline and uploads none: empty.
    async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        if !self.capability.server_create {
            return Err(unsupported(ID, "server_create"));
        }
        drop(self.enter("list_managed_ssh_keys")?);
        Ok(Vec::new())
    }

    /// No key was ever uploaded here: every id is `NotFound`.
    async fn delete_ssh_key(&self, id: &str) -> Result<()> {
        if !self.capability.server_delete {
            return Err(unsupported(ID, "server_delete"));
        }
        drop(self.enter("delete_ssh_key")?);
        Err(Error::new(
            crate::ErrorKind::NotFound,
            format!("SSH key {id} not found"),
        )
        .with_provider(ID))
    }

    async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate> {
        if !self.capability.cost_estimate {
            return Err(unsupported(ID, "cost_estimate"));
        }
        let state = self.enter("snapshot_cost_estimate")?;
        let server = state
            .servers
            .get(id)
            .ok_or_else(|| server_not_found(ID, id))?;
        let size_gb = server.disk_gb.unwrap_or(0.0);
        Ok(CostEstimate {
            monthly: size_gb * 0.01,
            currency: "$".into(),
            size_gb,
            basis: "memory reference rate $0.01/GB-month".into(),
        })
    }
}

#[cfg(test)]
mod tests;
