//! The [`CloudProvider`] trait: one cloud account's servers and snapshots.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use crate::capability::{CloudCapability, unsupported};
use crate::error::{Error, ErrorKind, Result};
use crate::poll::{Look, PollSchedule};
use crate::registry::ProviderIdentity;
use crate::types::{
    ActionRef, ActionState, ActionStatus, CostEstimate, ManagedServer, ManagedSshKey, ProviderInfo,
    RebootMode, Server, ServerChoice, ServerId, ServerPrice, ServerSpec, ServerStatus, Snapshot,
    SnapshotId, SnapshotStatus, TokenInfo, orphan_keys, ssh_key_fingerprint,
};

/// The longest wait between looks at a server being created. A creation
/// happens once per recovery or scratch drill, and each second a look
/// comes late adds to the recovery time (a provider's own schedule backs
/// off to 10-15 s, meant for snapshots that take minutes; at 5 s the
/// looks still came 4.5 s late on a 1 Gbit/s recovery, BENCHMARKS.md §2f);
/// a look every 2 s over a two-minute creation is about 60 requests, far
/// inside every provider's rate limit (the lowest, Hetzner's, is 3,600 an
/// hour).
pub const CREATE_POLL_MAX: Duration = Duration::from_secs(2);

/// One account at one cloud provider.
///
/// # Behaviour every implementation keeps
/// - An operation the [`CloudCapability`] does not declare fails with
///   [`ErrorKind::Unsupported`] before any request.
/// - Lists are complete: every page is read.
/// - Snapshot operations act only on the given server's snapshots; a
///   snapshot of another server is [`ErrorKind::NotFound`].
/// - Reboot, snapshot creation and restore are never sent twice after an
///   ambiguous failure (see [`crate::retry`]).
/// - Server creation is never sent twice after an ambiguous failure; what
///   it creates carries kastell's marker ([`crate::types::MANAGED_TAG`] and
///   the role's tag), and deletion refuses a server without it.
/// - `Debug` and `Display` never show the token.
#[async_trait]
pub trait CloudProvider: Send + Sync + fmt::Debug {
    /// Who this provider is: its registry entry, the endpoint it talks to
    /// and its polling ([`crate::ProviderEntry::identity`]). The three
    /// methods below answer from it.
    fn identity(&self) -> ProviderIdentity;

    /// Who this provider is and which endpoint it talks to; by default
    /// the identity's.
    fn info(&self) -> ProviderInfo {
        self.identity().info()
    }

    /// What this provider supports; by default its entry's capability.
    fn capability(&self) -> CloudCapability {
        self.identity().entry.capability
    }

    /// How often to poll this provider's actions (per-provider timing); by
    /// default the identity's.
    fn poll_schedule(&self) -> PollSchedule {
        self.identity().poll
    }

    /// Checks the token and reports whether it can write.
    async fn validate_token(&self) -> Result<TokenInfo>;

    /// One server, with normalised status and its public IPv4.
    async fn get_server(&self, id: &ServerId) -> Result<Server>;

    /// The server whose public IPv4 is `ip`, searching every page. The
    /// default looks through [`CloudProvider::list_servers`]; a provider
    /// whose API can filter by IP overrides it.
    async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>> {
        let servers = self.list_servers().await?;
        Ok(servers.into_iter().find(|s| s.public_ipv4 == Some(ip)))
    }

    /// Every server in the account.
    async fn list_servers(&self) -> Result<Vec<Server>>;

    /// Starts a reboot. Requires `reboot` (or `reboot_hard` for
    /// [`RebootMode::Hard`]).
    async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef>;

    /// Starts a snapshot named `name`. Requires `snapshot_create`; the
    /// default refuses with `Unsupported`.
    async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef> {
        let _ = (id, name);
        Err(unsupported(self.info().id, "snapshot_create"))
    }

    /// The snapshots taken from server `id`, every page. Requires
    /// `snapshot_list`; the default refuses with `Unsupported`.
    async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>> {
        let _ = id;
        Err(unsupported(self.info().id, "snapshot_list"))
    }

    /// Deletes `snapshot` after checking it belongs to `server`. Requires
    /// `snapshot_delete`; the default refuses with `Unsupported`.
    async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()> {
        let _ = (server, snapshot);
        Err(unsupported(self.info().id, "snapshot_delete"))
    }

    /// Rebuilds `server` from its own `snapshot`. Requires
    /// `snapshot_restore`; the default refuses with `Unsupported`.
    async fn restore_snapshot(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
    ) -> Result<ActionRef> {
        let _ = (server, snapshot);
        Err(unsupported(self.info().id, "snapshot_restore"))
    }

    /// The current state of an action started by this provider.
    async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus>;

    /// What keeping a snapshot of `id` would cost per month. Requires
    /// `cost_estimate`; the default refuses with `Unsupported`.
    async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate> {
        let _ = id;
        Err(unsupported(self.info().id, "cost_estimate"))
    }

    /// The size, region and image to use when the user names none.
    /// Requires `server_create`; the default refuses with `Unsupported`.
    fn default_server_choice(&self) -> Result<ServerChoice> {
        Err(unsupported(self.info().id, "server_create"))
    }

    /// What a server of `size` in `region` costs. Requires `server_create`;
    /// refuses a size or region the provider does not offer (`InvalidInput`,
    /// naming some that exist); the default refuses with `Unsupported`.
    async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice> {
        let _ = (size, region);
        Err(unsupported(self.info().id, "server_create"))
    }

    /// Starts creating a server as `spec` says: root login with
    /// `spec.ssh_public_key`, tagged [`crate::types::MANAGED_TAG`] and the
    /// role's tag (as is any resource made for it, such as an uploaded SSH
    /// key). Returns at once with the server as the provider first reports
    /// it (usually not yet running, maybe without an address); wait with
    /// [`CloudProviderExt::create_server_and_wait`]. Never retried after an
    /// ambiguous failure. Requires `server_create`; the default refuses with
    /// `Unsupported`.
    async fn create_server(&self, spec: &ServerSpec) -> Result<Server> {
        let _ = spec;
        Err(unsupported(self.info().id, "server_create"))
    }

    /// Every server in the account that carries kastell's marker, with its
    /// role, every page. Requires `server_create`; the default refuses with
    /// `Unsupported`.
    async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>> {
        Err(unsupported(self.info().id, "server_create"))
    }

    /// Deletes server `id` and what kastell made for it (its SSH key).
    /// Refuses (`PermissionDenied`, nothing deleted) a server without
    /// kastell's marker; a server already gone is `NotFound`. Requires
    /// `server_delete`; the default refuses with `Unsupported`.
    async fn delete_server(&self, id: &ServerId) -> Result<()> {
        let _ = id;
        Err(unsupported(self.info().id, "server_delete"))
    }

    /// Every SSH key in the account that carries kastell's marker (see
    /// [`ManagedSshKey`]), every page. A provider that takes the key inline
    /// with the server and uploads none (Linode) answers an empty list
    /// without a request. Requires `server_create`; the default refuses
    /// with `Unsupported`.
    async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        Err(unsupported(self.info().id, "server_create"))
    }

    /// Deletes SSH key `id` after reading it and checking it carries
    /// kastell's marker: an unmarked key is refused (`PermissionDenied`)
    /// with no deleting request sent; a key already gone is `NotFound`; an
    /// id that cannot be one of the provider's is `InvalidInput` before any
    /// request. Servers created with the key keep it (a provider copies a
    /// key into the server when it is created). Requires `server_delete`;
    /// the default refuses with `Unsupported`.
    async fn delete_ssh_key(&self, id: &str) -> Result<()> {
        let _ = id;
        Err(unsupported(self.info().id, "server_delete"))
    }
}

/// What a completed reboot looked like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebootOutcome {
    /// The action that was started.
    pub action: ActionRef,
    /// The server once it was running again.
    pub server: Server,
    /// From the request to the server running again.
    pub took: Duration,
}

/// Waiting helpers built on [`CloudProvider`], available on every provider.
#[async_trait]
pub trait CloudProviderExt: CloudProvider {
    /// Polls `action` with this provider's schedule until it finishes or
    /// `deadline` passes. A failed action is [`ErrorKind::InvalidState`] with
    /// the provider's message; polling errors that are retryable are
    /// tolerated until the deadline.
    async fn wait_for_action(
        &self,
        action: &ActionRef,
        deadline: Duration,
    ) -> Result<ActionStatus> {
        let provider = self.info().id;
        let look = || async {
            match self.action_status(action).await {
                Ok(status) if status.state == ActionState::Succeeded => Look::Done(status),
                Ok(status) if status.state == ActionState::Failed => Look::Failed(
                    Error::invalid_state(format!(
                        "{:?} action {} failed: {}",
                        action.kind,
                        action.id,
                        status.message.as_deref().unwrap_or("no reason given")
                    ))
                    .with_provider(provider)
                    .with_context("server", &action.server),
                ),
                Ok(_) => Look::Pending(None),
                Err(e) if e.is_retryable() => Look::Pending(Some(e)),
                Err(e) => Look::Failed(e),
            }
        };
        let expired = |last_error: Option<Error>| {
            let mut err = Error::timeout(format!(
                "{:?} action {} did not finish within {}s",
                action.kind,
                action.id,
                deadline.as_secs()
            ))
            .with_provider(provider)
            .with_context("server", &action.server)
            .with_hint("The provider may still be working on it; check again later");
            if let Some(last) = last_error {
                err = err.with_context("last_error", last);
            }
            err
        };
        self.poll_schedule()
            .poll_until(deadline, look, expired)
            .await
    }

    /// Polls the server until its status is `wanted`, for at most `deadline`.
    async fn wait_for_status(
        &self,
        id: &ServerId,
        wanted: ServerStatus,
        deadline: Duration,
    ) -> Result<Server> {
        let look = || async {
            match self.get_server(id).await {
                Ok(server) if server.status == wanted => Look::Done(server),
                Ok(server) => Look::Pending(server.raw_status),
                Err(e) if e.is_retryable() => Look::Pending(e.to_string()),
                Err(e) => Look::Failed(e),
            }
        };
        let expired = |seen: String| {
            Error::timeout(format!(
                "server {id} was not {wanted} within {}s (last seen: {seen})",
                deadline.as_secs()
            ))
            .with_provider(self.info().id)
            .with_hint("The server may still be changing state; check its status later")
        };
        self.poll_schedule()
            .poll_until(deadline, look, expired)
            .await
    }

    /// Reboots and waits until the provider reports the action done and the
    /// server running again.
    async fn reboot_and_wait(
        &self,
        id: &ServerId,
        mode: RebootMode,
        deadline: Duration,
    ) -> Result<RebootOutcome> {
        let cap = self.capability();
        let allowed = match mode {
            RebootMode::Soft => cap.reboot,
            RebootMode::Hard => cap.reboot_hard,
        };
        if !allowed {
            return Err(unsupported(self.info().id, "reboot"));
        }
        let started = Instant::now();
        let action = self.reboot(id, mode).await?;
        self.wait_for_action(&action, deadline).await?;
        let remaining = deadline.saturating_sub(started.elapsed());
        let server = self
            .wait_for_status(id, ServerStatus::Running, remaining)
            .await?;
        Ok(RebootOutcome {
            action,
            server,
            took: started.elapsed(),
        })
    }

    /// Takes a snapshot and waits until it is available; returns it with its
    /// real id.
    async fn snapshot_and_wait(
        &self,
        id: &ServerId,
        name: &str,
        deadline: Duration,
    ) -> Result<Snapshot> {
        if !self.capability().snapshot_create || !self.capability().snapshot_list {
            return Err(unsupported(self.info().id, "snapshot_create"));
        }
        let started = Instant::now();
        let action = self.create_snapshot(id, name).await?;
        let status = self.wait_for_action(&action, deadline).await?;
        let snapshot_id = status.resource.or(action.resource.clone()).ok_or_else(|| {
            Error::unexpected("the provider did not report the new snapshot's id")
                .with_provider(self.info().id)
        })?;
        let remaining = deadline.saturating_sub(started.elapsed());
        let look = || async {
            let listed = match self.list_snapshots(id).await {
                Ok(listed) => listed,
                Err(e) => return Look::Failed(e),
            };
            match listed.into_iter().find(|s| s.id.as_str() == snapshot_id) {
                Some(s) if s.status == SnapshotStatus::Available => Look::Done(s),
                Some(s) if s.status == SnapshotStatus::Failed => Look::Failed(
                    Error::invalid_state(format!("snapshot {} failed", s.id))
                        .with_provider(self.info().id),
                ),
                _ => Look::Pending(()),
            }
        };
        let expired = |()| {
            Error::timeout(format!(
                "snapshot {snapshot_id} was not available within {}s",
                deadline.as_secs()
            ))
            .with_provider(self.info().id)
        };
        self.poll_schedule()
            .poll_until(remaining, look, expired)
            .await
    }

    /// Creates a server and waits until the provider reports it running
    /// with a public IPv4, for at most `deadline`, looking at most
    /// [`CREATE_POLL_MAX`] apart. A server that was
    /// created but did not come up in time is left as it is (it carries
    /// kastell's marker) and the timeout names its id.
    async fn create_server_and_wait(
        &self,
        spec: &ServerSpec,
        deadline: Duration,
    ) -> Result<Server> {
        if !self.capability().server_create {
            return Err(unsupported(self.info().id, "server_create"));
        }
        let started = Instant::now();
        let created = self.create_server(spec).await?;
        let id = created.id.clone();
        let look = || async {
            match self.get_server(&id).await {
                Ok(server)
                    if server.status == ServerStatus::Running && server.public_ipv4.is_some() =>
                {
                    Look::Done(server)
                }
                Ok(server) => Look::Pending(server.raw_status),
                Err(e) if e.is_retryable() || e.kind() == ErrorKind::NotFound => {
                    Look::Pending(e.to_string())
                }
                Err(e) => Look::Failed(e),
            }
        };
        let expired = |seen: String| {
            Error::timeout(format!(
                "new server {id} was not running with an address within {}s (last seen: {seen})",
                deadline.as_secs()
            ))
            .with_provider(self.info().id)
            .with_context("server", &id)
            .with_hint(
                "It carries kastell's marker: `kastell doctor` finds it and offers to delete it",
            )
        };
        let remaining = deadline.saturating_sub(started.elapsed());
        self.poll_schedule()
            .capped(CREATE_POLL_MAX)
            .poll_until(remaining, look, expired)
            .await
    }

    /// kastell's SSH keys that no server of kastell's names (see
    /// [`orphan_keys`]): what a create that failed ambiguously without
    /// making a server, or a server deleted in the provider's console,
    /// left behind. The keys are listed before the servers, so a server
    /// created in between still counts as using its key; a key uploaded by
    /// a create running at this moment may still be listed (deleting it
    /// makes that create fail, and nothing is left). Requires
    /// `server_create`.
    async fn orphan_ssh_keys(&self) -> Result<Vec<ManagedSshKey>> {
        if !self.capability().server_create {
            return Err(unsupported(self.info().id, "server_create"));
        }
        let keys = self.list_managed_ssh_keys().await?;
        if keys.is_empty() {
            return Ok(keys);
        }
        let servers = self.list_managed_servers().await?;
        Ok(orphan_keys(keys, &servers))
    }

    /// Restores `server` from `snapshot` and waits until it runs again.
    async fn restore_and_wait(
        &self,
        server: &ServerId,
        snapshot: &SnapshotId,
        deadline: Duration,
    ) -> Result<Duration> {
        if !self.capability().snapshot_restore {
            return Err(unsupported(self.info().id, "snapshot_restore"));
        }
        let started = Instant::now();
        let action = self.restore_snapshot(server, snapshot).await?;
        self.wait_for_action(&action, deadline).await?;
        let remaining = deadline.saturating_sub(started.elapsed());
        self.wait_for_status(server, ServerStatus::Running, remaining)
            .await?;
        Ok(started.elapsed())
    }
}

impl<T: CloudProvider + ?Sized> CloudProviderExt for T {}

/// The error for a server id that names no server at this provider.
pub fn server_not_found(provider: &'static str, id: &ServerId) -> Error {
    Error::new(ErrorKind::NotFound, format!("server {id} not found"))
        .with_provider(provider)
        .with_hint("Check the server id, or that the token belongs to the right project")
}

/// The refusal to delete server `id`, which does not carry kastell's
/// marker ([`crate::types::MANAGED_TAG`]): kastell deletes only what it
/// created.
pub fn not_managed(provider: &'static str, id: &ServerId) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!("server {id} was not created by kastell; it is not deleted"),
    )
    .with_provider(provider)
    .with_hint(format!(
        "kastell deletes only servers tagged {}; delete this one in the provider's console",
        crate::types::MANAGED_TAG
    ))
}

/// The refusal to delete SSH key `id`, which does not carry kastell's
/// marker: kastell deletes only the keys it uploaded.
pub fn key_not_managed(provider: &'static str, id: &str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!("SSH key {id} was not uploaded by kastell; it is not deleted"),
    )
    .with_provider(provider)
    .with_operation("delete_ssh_key")
    .with_hint(
        "kastell deletes only the SSH keys it marked (a kastell-managed label or a name starting kastell-managed-)",
    )
}

/// How a provider's upload of an SSH key ended, for
/// [`create_with_uploaded_key`].
#[derive(Debug)]
pub enum KeyUpload<K> {
    /// The key was uploaded, marked as kastell's: its id.
    Uploaded(K),
    /// The provider refused the key because the account already holds
    /// the same public key (DigitalOcean: 422 "SSH Key is already in use on
    /// your account"; Hetzner: 409 `uniqueness_error`). The vendor's
    /// refusal is kept: it is the answer when no marked key matches.
    AlreadyOnAccount(Error),
}

/// Uploads an SSH key, then creates a server with it: the opening every
/// provider that uploads keys shares. `upload` sends `public_key` (marked
/// as kastell's); `create` sends the server creation naming it; when the
/// creation failed and surely did not take effect
/// ([`Error::may_have_taken_effect`] is false), `delete` removes the key
/// again (its failure only logged). An ambiguous failure leaves the key:
/// the server, if it exists, names it and deleting the server takes the
/// key along; if none was made, [`CloudProviderExt::orphan_ssh_keys`]
/// finds it for `kastell doctor`.
///
/// Where the vendor refuses a public key already on the account
/// ([`KeyUpload::AlreadyOnAccount`]: a create whose answer was lost left
/// it, or another server of kastell's uses it), `existing` lists kastell's
/// marked keys and the one whose fingerprint is `public_key`'s is reused;
/// a reused key is never deleted here (another server may name it).
/// Refused, with the vendor's error and a hint, when no marked key has
/// that fingerprint: the copy on the account is a person's own key (never
/// taken over) or its fingerprint differs.
pub async fn create_with_uploaded_key<K, T, U, L, LF, C, CF, D, DF>(
    public_key: &str,
    upload: U,
    existing: L,
    create: C,
    delete: D,
) -> Result<T>
where
    K: Clone + fmt::Display + std::str::FromStr + Send + Sync,
    U: std::future::Future<Output = Result<KeyUpload<K>>>,
    L: FnOnce() -> LF,
    LF: std::future::Future<Output = Result<Vec<ManagedSshKey>>>,
    C: FnOnce(K) -> CF,
    CF: std::future::Future<Output = Result<T>>,
    D: FnOnce(K) -> DF,
    DF: std::future::Future<Output = Result<()>>,
{
    let (key, uploaded) = match upload.await? {
        KeyUpload::Uploaded(key) => (key, true),
        KeyUpload::AlreadyOnAccount(refusal) => {
            let marked = existing().await?;
            (reusable_key(public_key, &marked, refusal)?, false)
        }
    };
    match create(key.clone()).await {
        Ok(created) => Ok(created),
        Err(e) => {
            if uploaded && !e.may_have_taken_effect() {
                forget_uploaded_key(&key, delete(key.clone())).await;
            }
            Err(e)
        }
    }
}

/// The id of the key among `marked` (kastell's own keys) whose fingerprint
/// is `public_key`'s; `refusal` (the vendor's duplicate answer) with a
/// hint when there is none.
fn reusable_key<K: std::str::FromStr>(
    public_key: &str,
    marked: &[ManagedSshKey],
    refusal: Error,
) -> Result<K> {
    let wanted = ssh_key_fingerprint(public_key);
    let found = wanted.as_deref().and_then(|wanted| {
        marked
            .iter()
            .find(|k| k.fingerprint.as_deref() == Some(wanted))
    });
    match found.and_then(|k| k.id.parse().ok()) {
        Some(key) => Ok(key),
        None => Err(refusal.with_hint(format!(
            "The account already holds this public key{}, but not as a key kastell uploaded \
             (kastell reuses only its own marked keys, never a person's): remove that copy in \
             the provider's console (servers made with it keep it) and run again, or reach the \
             server with another key",
            wanted.map(|w| format!(" ({w})")).unwrap_or_default()
        ))),
    }
}

/// Awaits `deleting`, the deletion of the SSH key `key` kastell uploaded
/// (after its server is gone, or after a creation that surely failed): a
/// key already gone is fine, any other failure is only logged (the key is
/// marked, costs nothing, and `kastell doctor` finds it).
pub async fn forget_uploaded_key(
    key: &(dyn fmt::Display + Sync),
    deleting: impl std::future::Future<Output = Result<()>>,
) {
    match deleting.await {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            tracing::warn!("deleting the SSH key {key} kastell uploaded: {e}");
        }
        _ => {}
    }
}

/// The refusal of a size or region the provider does not offer, naming up
/// to eight that it does.
pub fn unknown_offer(
    provider: &'static str,
    what: &str,
    wanted: &str,
    offered: impl IntoIterator<Item = String>,
) -> Error {
    let some: Vec<String> = offered.into_iter().take(8).collect();
    Error::invalid_input(format!("{provider} offers no {what} {wanted:?}"))
        .with_provider(provider)
        .with_hint(if some.is_empty() {
            format!("Check the {what} in the provider's documentation")
        } else {
            format!("Some that exist: {}", some.join(", "))
        })
}

#[cfg(test)]
mod tests;
