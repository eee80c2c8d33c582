//! The waiting helpers on a mocked provider.

use super::*;
use crate::types::{ActionKind, SnapshotStatus, ssh_key_fingerprint};
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
        async fn list_managed_ssh_keys(&self) -> Result<Vec<ManagedSshKey>>;
        async fn delete_ssh_key(&self, id: &str) -> Result<()>;
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
            managed: None,
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

/// A public key line for the helper's tests (no one holds its private half).
const KEY_LINE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bmEta2FzdGVsbC10ZXN0LWtleS0xMjM0NTY kastell-trial";

/// Another key (a different blob, so a different fingerprint).
const OTHER_LINE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG90aGVyLWthc3RlbGwtdGVzdC1rZXktOTg3NjU0 other";

/// A marked key `id` holding `line`.
fn marked(id: &str, line: &str) -> ManagedSshKey {
    ManagedSshKey {
        id: id.into(),
        name: format!("kastell-managed-recovery-web-{id}"),
        created_at: None,
        fingerprint: ssh_key_fingerprint(line),
    }
}

/// The create a refused key never reaches.
async fn never_created(_: u64) -> Result<String> {
    panic!("no server is created")
}

/// The listing of marked keys a create never needs.
async fn unlisted() -> Result<Vec<ManagedSshKey>> {
    panic!("the marked keys are listed only after a duplicate refusal")
}

#[tokio::test]
async fn an_uploaded_key_is_deleted_only_when_the_create_surely_failed() {
    let deleted = Arc::new(AtomicUsize::new(0));
    let delete = |seen: Arc<AtomicUsize>| {
        move |key: u64| async move {
            assert_eq!(key, 7);
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    };
    let uploaded = || async { Ok(KeyUpload::Uploaded(7_u64)) };
    let made = create_with_uploaded_key(
        KEY_LINE,
        uploaded(),
        unlisted,
        |key| async move { Ok(format!("server with key {key}")) },
        delete(deleted.clone()),
    )
    .await
    .unwrap();
    assert_eq!(made, "server with key 7");
    assert_eq!(deleted.load(Ordering::SeqCst), 0);

    let refused = create_with_uploaded_key(
        KEY_LINE,
        uploaded(),
        unlisted,
        |_| async { Err::<String, _>(Error::invalid_input("no such size")) },
        delete(deleted.clone()),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        deleted.load(Ordering::SeqCst),
        1,
        "a sure failure deletes the key"
    );

    let lost = create_with_uploaded_key(
        KEY_LINE,
        uploaded(),
        unlisted,
        |_| async { Err::<String, _>(Error::unavailable("502")) },
        delete(deleted.clone()),
    )
    .await
    .unwrap_err();
    assert!(lost.may_have_taken_effect());
    assert_eq!(
        deleted.load(Ordering::SeqCst),
        1,
        "an ambiguous failure keeps the key: a server may use it"
    );

    let no_key = create_with_uploaded_key(
        KEY_LINE,
        async { Err::<KeyUpload<u64>, _>(Error::new(ErrorKind::PermissionDenied, "read-only")) },
        unlisted,
        |_| async { Ok::<_, Error>(String::new()) },
        delete(deleted.clone()),
    )
    .await
    .unwrap_err();
    assert_eq!(no_key.kind(), ErrorKind::PermissionDenied);
    assert_eq!(deleted.load(Ordering::SeqCst), 1);
}

/// The vendor's refusal of a key already on the account.
fn in_use() -> Error {
    Error::invalid_input("HTTP 422: SSH Key is already in use on your account")
}

#[tokio::test]
async fn a_key_already_on_the_account_is_reused_only_when_kastell_marked_it_with_that_fingerprint()
{
    let never_delete = |_: u64| async { panic!("a reused key is never deleted") };
    // The marked key with the same blob (another comment) is reused.
    let listed = || async {
        Ok(vec![
            marked("3", OTHER_LINE),
            marked("5", &KEY_LINE.replace("kastell-trial", "a comment")),
        ])
    };
    let made = create_with_uploaded_key(
        KEY_LINE,
        async { Ok(KeyUpload::AlreadyOnAccount(in_use())) },
        listed,
        |key: u64| async move { Ok(format!("server with key {key}")) },
        never_delete,
    )
    .await
    .unwrap();
    assert_eq!(made, "server with key 5");

    // A sure failure of the create keeps the reused key (another server
    // may name it).
    let refused = create_with_uploaded_key(
        KEY_LINE,
        async { Ok(KeyUpload::AlreadyOnAccount(in_use())) },
        listed,
        |_: u64| async { Err::<String, _>(Error::invalid_input("no such size")) },
        never_delete,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.message(), "no such size");

    // Only marked keys of other fingerprints (the copy is a person's, or
    // unreadable): the vendor's refusal, with the hint.
    let unreadable = || async {
        Ok(vec![
            marked("3", OTHER_LINE),
            ManagedSshKey {
                fingerprint: None,
                ..marked("4", KEY_LINE)
            },
        ])
    };
    let err = create_with_uploaded_key(
        KEY_LINE,
        async { Ok(KeyUpload::AlreadyOnAccount(in_use())) },
        unreadable,
        never_created,
        never_delete,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.message().contains("already in use"), "{err}");
    let hint = err.hint().unwrap();
    assert!(hint.contains("never a person's"), "{hint}");
    assert!(
        hint.contains(&ssh_key_fingerprint(KEY_LINE).unwrap()),
        "{hint}"
    );

    // A failed listing is the answer.
    let err = create_with_uploaded_key(
        KEY_LINE,
        async { Ok(KeyUpload::AlreadyOnAccount(in_use())) },
        || async { Err(Error::unavailable("list failed")) },
        never_created,
        never_delete,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[test]
fn fingerprints_are_openssh_sha256_of_the_blob() {
    // A key made with `ssh-keygen -t ed25519` (its private half
    // discarded); `ssh-keygen -l` printed this fingerprint for it.
    let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJLDLY5zcr05YYzv5AKTGB5If3ccON8NCzRxLwyHWjg \
                vector@test";
    let fingerprint = ssh_key_fingerprint(line).unwrap();
    assert_eq!(
        fingerprint,
        "SHA256:E8wMi8Sa9aZhZjuKhnNaHFG4YeaUzYrzHNk8XFzGrUM"
    );
    assert_eq!(
        ssh_key_fingerprint(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJLDLY5zcr05YYzv5AKTGB5If3ccON8NCzRxLwyHWjg"
        ),
        Some(fingerprint.clone()),
        "the comment does not count"
    );
    assert_ne!(ssh_key_fingerprint(KEY_LINE), Some(fingerprint));
    for bad in [
        "",
        "ssh-ed25519",
        "ssh-ed25519 not*base64",
        // A blob naming another type than the line.
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHBlcnNvbi1sYXB0b3Ata2V5",
    ] {
        assert_eq!(ssh_key_fingerprint(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn orphan_keys_are_the_marked_keys_no_marked_server_names() {
    let key = |id: &str| ManagedSshKey {
        id: id.into(),
        name: format!("kastell-managed-drill-web-{id}"),
        created_at: None,
        fingerprint: None,
    };
    let mut cloud = mock();
    cloud.expect_capability().returning(CloudCapability::all);
    cloud
        .expect_list_managed_ssh_keys()
        .times(1)
        .returning(move || Ok(vec![key("1"), key("2")]));
    cloud.expect_list_managed_servers().times(1).returning(|| {
        Ok(vec![ManagedServer {
            server: Server::new(ServerId::new("9").unwrap(), "web", ServerStatus::Running),
            role: None,
            ssh_key: Some("2".into()),
        }])
    });
    let orphans = cloud.orphan_ssh_keys().await.unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].id, "1");

    // No keys: the servers are not listed at all.
    let mut cloud = mock();
    cloud.expect_capability().returning(CloudCapability::all);
    cloud
        .expect_list_managed_ssh_keys()
        .returning(|| Ok(Vec::new()));
    cloud.expect_list_managed_servers().never();
    assert!(cloud.orphan_ssh_keys().await.unwrap().is_empty());

    let mut cloud = mock();
    cloud
        .expect_capability()
        .returning(|| CloudCapability::NONE);
    cloud.expect_list_managed_ssh_keys().never();
    let err = cloud.orphan_ssh_keys().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}
