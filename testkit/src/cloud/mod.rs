//! Conformance trials for [`CloudProvider`] implementations.
//!
//! A provider crate wraps its simulator (seeded with at least 120 servers,
//! so single-page bugs show) in a [`crate::sim_cloud::SimCloudFixture`] and
//! instantiates every trial with
//! [`all_cloud_trials!`](crate::all_cloud_trials)`(ID, fixture)`, which
//! also adds the live test of [`crate::live`]. The memory reference
//! implementation runs the trials that need no HTTP faults, through
//! [`cloud_trials!`](crate::cloud_trials).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell_core::types::{RebootMode, ServerId, ServerStatus, SnapshotStatus};
use kastell_core::{CloudProvider, CloudProviderExt, Error, ErrorKind, Registry, Result};
pub use kastell_sim::Fault;

mod create;
mod keys;

pub use create::{
    created_servers_run_marked_and_only_they_are_deleted,
    read_only_tokens_create_and_delete_nothing, server_creation_is_never_resent,
};
pub use keys::{
    a_public_key_already_on_the_account_is_reused_only_when_kastells,
    orphan_ssh_keys_are_found_and_only_kastells_are_deleted,
};

/// The operations a fixture can fault or count, mapped by each provider to
/// its own method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudOp {
    /// Reading one server.
    GetServer,
    /// Starting a reboot.
    Reboot,
    /// Starting a snapshot.
    CreateSnapshot,
    /// Deleting a snapshot.
    DeleteSnapshot,
    /// Starting a restore.
    RestoreSnapshot,
    /// Creating a server (not the SSH key uploaded before it).
    CreateServer,
    /// Deleting a server.
    DeleteServer,
    /// Deleting an SSH key (not the reads before it).
    DeleteSshKey,
}

/// Which token a fixture's provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenChoice {
    /// A valid read-write token.
    ReadWrite,
    /// A valid read-only token.
    ReadOnly,
    /// A token the API rejects.
    Invalid,
}

/// The seeded account the trials run against.
#[derive(Debug, Clone)]
pub struct Account {
    /// A running server.
    pub server_a: ServerId,
    /// Another running server.
    pub server_b: ServerId,
    /// A well-formed id of no server in this account.
    pub missing_server: ServerId,
    /// Server A's public IPv4.
    pub public_ip_a: Ipv4Addr,
    /// Server A's private address, when it has one.
    pub private_ip_a: Option<Ipv4Addr>,
    /// The public IPv4 of the server listed last (on the last page).
    pub last_ip: Ipv4Addr,
    /// Servers in the account.
    pub server_count: usize,
}

/// What the trials need from a provider under test.
pub trait CloudFixture: Send + Sync {
    /// The registry id the provider registers under.
    fn id(&self) -> &'static str;

    /// A provider with `token`; `retries: false` gives a provider that
    /// never retries, to observe single answers.
    fn provider(&self, token: TokenChoice, retries: bool) -> Arc<dyn CloudProvider>;

    /// The seeded account.
    fn account(&self) -> Account;

    /// Every secret the fixture holds; none may appear in any output.
    fn secrets(&self) -> Vec<String>;

    /// How many times server `id` has booted.
    fn boots(&self, id: &ServerId) -> u64;

    /// Arms `fault` on `op` for the next `times` calls, before (or with
    /// `after_effect`, after) the request takes effect. Returns `false`
    /// when the fixture cannot inject faults.
    fn inject(&self, op: CloudOp, fault: Fault, times: u64, after_effect: bool) -> bool;

    /// When each request for `op` arrived.
    fn requests(&self, op: CloudOp) -> Vec<Instant>;

    /// The servers created through the provider and not yet deleted; none
    /// when the fixture cannot tell.
    fn created_servers(&self) -> Vec<String> {
        Vec::new()
    }

    /// The SSH keys uploaded through the provider and not yet deleted; none
    /// when the fixture cannot tell.
    fn uploaded_keys(&self) -> Vec<String> {
        Vec::new()
    }

    /// The id of an SSH key a person uploaded to the account (unmarked);
    /// `None` when the fixture has none.
    fn person_key(&self) -> Option<String> {
        None
    }

    /// Whether the provider's API refuses to upload a public key the
    /// account already holds (so a create must reuse kastell's marked copy).
    fn refuses_duplicate_keys(&self) -> bool {
        false
    }

    /// Queues `addresses` for the next servers created. Returns `false`
    /// when the fixture cannot choose addresses.
    fn queue_addresses(&self, addresses: &[Ipv4Addr]) -> bool {
        let _ = addresses;
        false
    }
}

/// Instantiates trials as `#[tokio::test]` functions named after them, each
/// with a fresh fixture from `$fixture().await`.
#[macro_export]
macro_rules! cloud_trials {
    ($fixture:path; $($trial:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $trial() {
                let fixture = $fixture().await;
                $crate::cloud::$trial(&fixture).await;
            }
        )+
    };
}

/// Instantiates every cloud trial for provider `$id` against its
/// simulator, so a trial added here runs for every provider crate, plus the
/// test `read_only_trials_against_the_live_api` (see [`crate::live`]): the
/// read-only trials against the real API when `KASTELL_TEST_LIVE` names
/// the provider and its token is set, else a printed note.
#[macro_export]
macro_rules! all_cloud_trials {
    ($id:expr, $fixture:path) => {
        $crate::cloud_trials!($fixture;
            lists_every_page_and_finds_by_ip,
            find_by_ip_picks_the_public_address,
            refuses_an_invalid_token,
            reboot_waits_for_the_new_boot,
            snapshot_round_trip_is_scoped_to_its_server,
            restore_from_own_snapshot_waits_until_running,
            errors_map_to_kinds,
            rate_limit_storm_is_survived,
            busy_answers_are_retried,
            non_idempotent_calls_reach_the_provider_at_most_once,
            secrets_never_appear_in_output,
            validates_tokens,
            registry_entry_matches_the_provider,
            created_servers_run_marked_and_only_they_are_deleted,
            server_creation_is_never_resent,
            read_only_tokens_create_and_delete_nothing,
            orphan_ssh_keys_are_found_and_only_kastells_are_deleted,
            a_public_key_already_on_the_account_is_reused_only_when_kastells,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn read_only_trials_against_the_live_api() {
            $crate::live::run($id).await;
        }
    };
}

const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn rw(f: &dyn CloudFixture) -> Arc<dyn CloudProvider> {
    f.provider(TokenChoice::ReadWrite, true)
}

/// Every page is read: the account lists completely and the server on the
/// last page is found by its IP.
pub async fn lists_every_page_and_finds_by_ip(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let servers = p.list_servers().await.expect("list_servers");
    assert_eq!(
        servers.len(),
        account.server_count,
        "every page must be read"
    );
    let last = p
        .find_server_by_ip(account.last_ip)
        .await
        .expect("find_server_by_ip")
        .expect("the server on the last page must be found");
    assert_eq!(last.public_ipv4, Some(account.last_ip));
    let absent = p
        .find_server_by_ip(Ipv4Addr::new(192, 0, 2, 254))
        .await
        .expect("find of an unknown IP");
    assert!(absent.is_none());
}

/// A server's public address is its public IPv4, never a private one, and
/// finding by the public address gives that server.
pub async fn find_by_ip_picks_the_public_address(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let a = p.get_server(&account.server_a).await.expect("get_server");
    assert_eq!(a.public_ipv4, Some(account.public_ip_a));
    assert_eq!(a.status, ServerStatus::Running);
    assert!(!a.raw_status.is_empty());
    let found = p
        .find_server_by_ip(account.public_ip_a)
        .await
        .expect("find")
        .expect("A by its public IP");
    assert_eq!(found.id, account.server_a);
    if let Some(private) = account.private_ip_a {
        let by_private = p.find_server_by_ip(private).await.expect("find private");
        assert!(by_private.is_none(), "a private address is not a public IP");
    }
}

/// A reboot is waited for until the server really booted again.
pub async fn reboot_waits_for_the_new_boot(f: &dyn CloudFixture) {
    let account = f.account();
    let before = f.boots(&account.server_a);
    let b_before = f.boots(&account.server_b);
    let outcome = rw(f)
        .reboot_and_wait(&account.server_a, RebootMode::Soft, WAIT)
        .await
        .expect("reboot_and_wait");
    assert_eq!(outcome.server.status, ServerStatus::Running);
    assert_eq!(
        f.boots(&account.server_a),
        before + 1,
        "the reboot must have happened"
    );
    assert!(outcome.took > Duration::ZERO);
    assert_eq!(f.boots(&account.server_b), b_before, "B was not rebooted");
}

/// Create, wait, list for this server only, refuse through another server,
/// delete, gone.
pub async fn snapshot_round_trip_is_scoped_to_its_server(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let name = format!("kastell-conformance-{}", fastrand::u32(..));
    let snap = p
        .snapshot_and_wait(&account.server_a, &name, WAIT)
        .await
        .expect("snapshot_and_wait");
    assert_eq!(snap.status, SnapshotStatus::Available);
    assert!(snap.id.as_str() != "pending" && !snap.id.as_str().is_empty());
    let of_a = p.list_snapshots(&account.server_a).await.expect("list A");
    assert!(of_a.iter().any(|s| s.id == snap.id), "listed for A");
    let of_b = p.list_snapshots(&account.server_b).await.expect("list B");
    assert!(of_b.iter().all(|s| s.id != snap.id), "not listed for B");

    let err = p
        .delete_snapshot(&account.server_b, &snap.id)
        .await
        .expect_err("B must not delete A's snapshot");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = p
        .restore_snapshot(&account.server_b, &snap.id)
        .await
        .expect_err("B must not be rebuilt from A's snapshot");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    p.delete_snapshot(&account.server_a, &snap.id)
        .await
        .expect("delete");
    let after = p
        .list_snapshots(&account.server_a)
        .await
        .expect("list after delete");
    assert!(after.iter().all(|s| s.id != snap.id), "gone after delete");
}

/// A server rebuilt from its own snapshot is running again when the wait
/// returns.
pub async fn restore_from_own_snapshot_waits_until_running(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let snap = p
        .snapshot_and_wait(&account.server_a, "kastell-conformance-restore", WAIT)
        .await
        .expect("snapshot");
    p.restore_and_wait(&account.server_a, &snap.id, WAIT)
        .await
        .expect("restore_and_wait");
    let a = p
        .get_server(&account.server_a)
        .await
        .expect("get after restore");
    assert_eq!(a.status, ServerStatus::Running);
    p.delete_snapshot(&account.server_a, &snap.id)
        .await
        .expect("cleanup");
}

fn expect_kind(
    result: Result<impl std::fmt::Debug>,
    kind: ErrorKind,
    retryable: bool,
    what: &str,
) -> Error {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), kind, "{what}: {err}");
    assert_eq!(err.is_retryable(), retryable, "{what}: retryable of {err}");
    err
}

/// An invalid token is refused as unauthenticated, with a hint, both on a
/// read and on the token check (read-only: it runs live too).
pub async fn refuses_an_invalid_token(f: &dyn CloudFixture) {
    let account = f.account();
    let invalid = f.provider(TokenChoice::Invalid, false);
    let err = expect_kind(
        invalid.get_server(&account.server_a).await,
        ErrorKind::Unauthenticated,
        false,
        "401 on a read",
    );
    assert!(err.hint().is_some(), "{err:?}");
    expect_kind(
        invalid.validate_token().await,
        ErrorKind::Unauthenticated,
        false,
        "401 on the token check",
    );
}

/// Status codes, busy answers, 429s, 5xx, hangs and malformed bodies map to
/// the right kinds and retryability.
pub async fn errors_map_to_kinds(f: &dyn CloudFixture) {
    let account = f.account();
    let a = &account.server_a;
    let invalid = f.provider(TokenChoice::Invalid, false);
    let err = expect_kind(
        invalid.get_server(a).await,
        ErrorKind::Unauthenticated,
        false,
        "401",
    );
    assert!(err.hint().is_some());
    let once = f.provider(TokenChoice::ReadWrite, false);
    expect_kind(
        once.get_server(&account.missing_server).await,
        ErrorKind::NotFound,
        false,
        "404",
    );

    let read_only = f.provider(TokenChoice::ReadOnly, false);
    let err = expect_kind(
        read_only.reboot(a, RebootMode::Soft).await,
        ErrorKind::PermissionDenied,
        false,
        "read-only token writing",
    );
    assert!(err.hint().unwrap_or("").contains("token"), "{err:?}");

    assert!(f.inject(CloudOp::Reboot, Fault::Busy, 1, false));
    let err = expect_kind(
        once.reboot(a, RebootMode::Soft).await,
        ErrorKind::InvalidState,
        true,
        "busy",
    );
    assert!(!err.may_have_taken_effect());

    assert!(f.inject(
        CloudOp::GetServer,
        Fault::RateLimited {
            retry_after_secs: 7
        },
        1,
        false
    ));
    let err = expect_kind(
        once.get_server(a).await,
        ErrorKind::RateLimited,
        true,
        "429",
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)), "{err:?}");

    for status in [500, 503] {
        assert!(f.inject(CloudOp::GetServer, Fault::Status(status), 1, false));
        expect_kind(
            once.get_server(a).await,
            ErrorKind::Unavailable,
            true,
            "5xx",
        );
    }
    assert!(f.inject(CloudOp::GetServer, Fault::Gateway(502), 1, false));
    expect_kind(
        once.get_server(a).await,
        ErrorKind::Unavailable,
        true,
        "502 gateway page",
    );

    assert!(f.inject(CloudOp::GetServer, Fault::Hang, 1, false));
    expect_kind(once.get_server(a).await, ErrorKind::Timeout, true, "hang");

    assert!(f.inject(CloudOp::GetServer, Fault::Malformed, 1, false));
    expect_kind(
        once.get_server(a).await,
        ErrorKind::Unexpected,
        false,
        "malformed JSON",
    );
    assert!(f.inject(CloudOp::GetServer, Fault::NotJson, 1, false));
    expect_kind(
        once.get_server(a).await,
        ErrorKind::Unexpected,
        false,
        "non-JSON body",
    );
}

/// A storm of 429s is ridden out within the deadline, waiting as long as
/// each `Retry-After` asks.
pub async fn rate_limit_storm_is_survived(f: &dyn CloudFixture) {
    let account = f.account();
    assert!(f.inject(
        CloudOp::GetServer,
        Fault::RateLimited {
            retry_after_secs: 1
        },
        3,
        false
    ));
    let before = f.requests(CloudOp::GetServer).len();
    let server = rw(f)
        .get_server(&account.server_a)
        .await
        .expect("survives the storm");
    assert_eq!(server.id, account.server_a);
    let times = f.requests(CloudOp::GetServer);
    let storm = &times[before..];
    assert_eq!(storm.len(), 4, "three refusals and one success");
    for pair in storm.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(950),
            "retried after {gap:?}, before Retry-After"
        );
    }
}

/// Busy answers are retried until the server is free, even for a reboot:
/// the vendor refused them, so nothing happened.
pub async fn busy_answers_are_retried(f: &dyn CloudFixture) {
    let account = f.account();
    let before = f.boots(&account.server_a);
    assert!(f.inject(CloudOp::Reboot, Fault::Busy, 2, false));
    let sent_before = f.requests(CloudOp::Reboot).len();
    rw(f)
        .reboot_and_wait(&account.server_a, RebootMode::Soft, WAIT)
        .await
        .expect("reboot after busy answers");
    assert_eq!(f.requests(CloudOp::Reboot).len() - sent_before, 3);
    assert_eq!(
        f.boots(&account.server_a),
        before + 1,
        "rebooted exactly once"
    );
}

/// Reboot, snapshot and restore reach the provider at most once when the
/// answer is lost or ambiguous.
pub async fn non_idempotent_calls_reach_the_provider_at_most_once(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let sent = f.requests(CloudOp::Reboot).len();
    assert!(f.inject(CloudOp::Reboot, Fault::Gateway(502), 1, true));
    p.reboot(&account.server_a, RebootMode::Soft)
        .await
        .expect_err("the answer was lost");
    assert_eq!(
        f.requests(CloudOp::Reboot).len() - sent,
        1,
        "a reboot is never re-sent"
    );

    let sent = f.requests(CloudOp::CreateSnapshot).len();
    assert!(f.inject(CloudOp::CreateSnapshot, Fault::Hang, 1, false));
    let err = p
        .create_snapshot(&account.server_b, "kastell-conformance-hang")
        .await
        .expect_err("hang");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(f.requests(CloudOp::CreateSnapshot).len() - sent, 1);

    let snap = p
        .snapshot_and_wait(&account.server_b, "kastell-conformance-once", WAIT)
        .await
        .expect("snapshot of B");
    let sent = f.requests(CloudOp::RestoreSnapshot).len();
    assert!(f.inject(CloudOp::RestoreSnapshot, Fault::Status(500), 1, false));
    let err = p
        .restore_snapshot(&account.server_b, &snap.id)
        .await
        .expect_err("500 on restore");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(
        f.requests(CloudOp::RestoreSnapshot).len() - sent,
        1,
        "a restore is never re-sent after a 500"
    );
    p.delete_snapshot(&account.server_b, &snap.id)
        .await
        .expect("cleanup");
}

/// No token appears in `Debug`, `Display` or any error.
pub async fn secrets_never_appear_in_output(f: &dyn CloudFixture) {
    let account = f.account();
    let mut seen = Vec::new();
    for token in [
        TokenChoice::ReadWrite,
        TokenChoice::ReadOnly,
        TokenChoice::Invalid,
    ] {
        let p = f.provider(token, false);
        seen.push(format!("{p:?}"));
        seen.push(format!("{:?}", p.info()));
        if let Err(e) = p.get_server(&account.server_a).await {
            seen.push(format!("{e} {e:?} {:?}", e.report()));
        }
        if let Err(e) = p.reboot(&account.missing_server, RebootMode::Soft).await {
            seen.push(format!("{e} {e:?}"));
        }
        if let Err(e) = p.validate_token().await {
            seen.push(format!("{e} {e:?}"));
        }
    }
    for secret in f.secrets() {
        for text in &seen {
            assert!(!text.contains(&secret), "a token leaked into: {text}");
        }
    }
}

/// The token check says whether the token can write, where the API tells,
/// and refuses an invalid token.
pub async fn validates_tokens(f: &dyn CloudFixture) {
    let info = rw(f).validate_token().await.expect("valid token");
    assert_ne!(info.can_write, Some(false));
    let ro = f
        .provider(TokenChoice::ReadOnly, false)
        .validate_token()
        .await
        .expect("read-only token is valid");
    assert_ne!(
        ro.can_write,
        Some(true),
        "a read-only token must not be reported writable"
    );
    let err = f
        .provider(TokenChoice::Invalid, false)
        .validate_token()
        .await
        .expect_err("invalid token");
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
}

/// The registry entry matches what the provider says about itself.
pub async fn registry_entry_matches_the_provider(f: &dyn CloudFixture) {
    let entry = Registry::global().provider(f.id()).expect("registered");
    let p = rw(f);
    assert_eq!(p.info().id, entry.id);
    assert_eq!(p.capability(), entry.capability);
    assert!(entry.token_env.ends_with("_TOKEN"));
}
