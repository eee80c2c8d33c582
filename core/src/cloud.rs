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
    ActionRef, ActionState, ActionStatus, CostEstimate, ManagedServer, ProviderInfo, RebootMode,
    Server, ServerChoice, ServerId, ServerPrice, ServerSpec, ServerStatus, Snapshot, SnapshotId,
    SnapshotStatus, TokenInfo,
};

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
    /// with a public IPv4, for at most `deadline`. A server that was
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
            .poll_until(remaining, look, expired)
            .await
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
mod tests {
    use super::*;
    use crate::types::{ActionKind, SnapshotStatus};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    mockall::mock! {
        Cloud {}

        impl fmt::Debug for Cloud {
            fn fmt<'a>(&self, f: &mut fmt::Formatter<'a>) -> fmt::Result;
        }

        #[async_trait]
        impl CloudProvider for Cloud {
            fn identity(&self) -> ProviderIdentity;
            fn info(&self) -> ProviderInfo;
            fn capability(&self) -> CloudCapability;
            fn poll_schedule(&self) -> PollSchedule;
            async fn validate_token(&self) -> Result<TokenInfo>;
            async fn get_server(&self, id: &ServerId) -> Result<Server>;
            async fn find_server_by_ip(&self, ip: Ipv4Addr) -> Result<Option<Server>>;
            async fn list_servers(&self) -> Result<Vec<Server>>;
            async fn reboot(&self, id: &ServerId, mode: RebootMode) -> Result<ActionRef>;
            async fn create_snapshot(&self, id: &ServerId, name: &str) -> Result<ActionRef>;
            async fn list_snapshots(&self, id: &ServerId) -> Result<Vec<Snapshot>>;
            async fn delete_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<()>;
            async fn restore_snapshot(&self, server: &ServerId, snapshot: &SnapshotId) -> Result<ActionRef>;
            async fn action_status(&self, action: &ActionRef) -> Result<ActionStatus>;
            async fn snapshot_cost_estimate(&self, id: &ServerId) -> Result<CostEstimate>;
            fn default_server_choice(&self) -> Result<ServerChoice>;
            async fn server_price(&self, size: &str, region: &str) -> Result<ServerPrice>;
            async fn create_server(&self, spec: &ServerSpec) -> Result<Server>;
            async fn list_managed_servers(&self) -> Result<Vec<ManagedServer>>;
            async fn delete_server(&self, id: &ServerId) -> Result<()>;
        }
    }

    fn mock() -> MockCloud {
        let mut cloud = MockCloud::new();
        cloud.expect_info().returning(|| ProviderInfo {
            id: "mock",
            display_name: "Mock",
            endpoint: "mock://".into(),
        });
        cloud
            .expect_poll_schedule()
            .returning(|| PollSchedule::new(Duration::from_millis(1), Duration::from_millis(2)));
        cloud
    }

    fn action(kind: ActionKind) -> ActionRef {
        ActionRef {
            id: "a-1".into(),
            kind,
            server: ServerId::new("42").unwrap(),
            resource: None,
        }
    }

    fn status(state: ActionState, resource: Option<&str>) -> ActionStatus {
        ActionStatus {
            state,
            progress: None,
            resource: resource.map(str::to_owned),
            message: Some("disk full".into()),
        }
    }

    #[tokio::test]
    async fn waiting_rides_out_retryable_errors_until_the_action_succeeds() {
        let mut cloud = mock();
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        cloud.expect_action_status().times(3).returning(move |_| {
            match seen.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Error::unavailable("502")),
                1 => Ok(status(ActionState::Running, None)),
                _ => Ok(status(ActionState::Succeeded, None)),
            }
        });
        let done = cloud
            .wait_for_action(&action(ActionKind::Reboot), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(done.state, ActionState::Succeeded);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_action_or_a_permanent_error_ends_the_wait_at_once() {
        let mut cloud = mock();
        cloud
            .expect_action_status()
            .times(1)
            .returning(|_| Ok(status(ActionState::Failed, None)));
        let err = cloud
            .wait_for_action(&action(ActionKind::Reboot), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(err.message().contains("disk full"), "{err}");

        let mut cloud = mock();
        cloud
            .expect_action_status()
            .times(1)
            .returning(|_| Err(Error::new(ErrorKind::Unauthenticated, "401")));
        let err = cloud
            .wait_for_action(&action(ActionKind::Reboot), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    }

    #[tokio::test]
    async fn a_running_action_past_the_deadline_is_a_timeout() {
        let mut cloud = mock();
        cloud
            .expect_action_status()
            .returning(|_| Ok(status(ActionState::Running, None)));
        let err = cloud
            .wait_for_action(&action(ActionKind::Reboot), Duration::from_millis(30))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.hint().is_some());
    }

    #[tokio::test]
    async fn unsupported_reboots_and_snapshots_make_no_request() {
        let mut cloud = mock();
        cloud.expect_capability().returning(|| CloudCapability {
            reboot: true,
            ..CloudCapability::NONE
        });
        cloud.expect_reboot().never();
        cloud.expect_create_snapshot().never();
        let id = ServerId::new("42").unwrap();
        let err = cloud
            .reboot_and_wait(&id, RebootMode::Hard, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        let err = cloud
            .snapshot_and_wait(&id, "x", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }

    #[tokio::test]
    async fn a_snapshot_is_found_by_the_id_the_finished_action_reports() {
        let mut cloud = mock();
        cloud.expect_capability().returning(CloudCapability::all);
        cloud
            .expect_create_snapshot()
            .times(1)
            .returning(|_, _| Ok(action(ActionKind::CreateSnapshot)));
        cloud
            .expect_action_status()
            .returning(|_| Ok(status(ActionState::Succeeded, Some("snap-9"))));
        cloud.expect_list_snapshots().returning(|id| {
            Ok(vec![Snapshot {
                id: SnapshotId::new("snap-9").unwrap(),
                server_id: Some(id.clone()),
                name: "x".into(),
                status: SnapshotStatus::Available,
                raw_status: "available".into(),
                size_gb: Some(1.0),
                created_at: None,
            }])
        });
        let id = ServerId::new("42").unwrap();
        let snapshot = cloud
            .snapshot_and_wait(&id, "x", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(snapshot.id.as_str(), "snap-9");

        // An action that never names its snapshot is an error, not a guess.
        let mut cloud = mock();
        cloud.expect_capability().returning(CloudCapability::all);
        cloud
            .expect_create_snapshot()
            .returning(|_, _| Ok(action(ActionKind::CreateSnapshot)));
        cloud
            .expect_action_status()
            .returning(|_| Ok(status(ActionState::Succeeded, None)));
        cloud.expect_list_snapshots().never();
        let err = cloud
            .snapshot_and_wait(&id, "x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected);
    }
}
