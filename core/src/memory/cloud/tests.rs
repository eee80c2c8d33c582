use super::*;
use crate::ErrorKind;
use crate::cloud::CloudProviderExt;
use std::time::Duration;

#[tokio::test]
async fn created_servers_run_with_an_address_and_only_they_can_be_deleted() {
    let cloud = MemoryCloud::new();
    let person = cloud.add_server("by-hand", Ipv4Addr::new(10, 0, 0, 1));
    cloud.add_addresses([Ipv4Addr::new(127, 0, 0, 9)]);
    let spec = ServerSpec {
        name: "web-new".into(),
        size: "small".into(),
        region: "mem-1".into(),
        image: "ubuntu-24.04".into(),
        ssh_public_key: "ssh-ed25519 AAAA test".into(),
        role: ManagedRole::Drill,
    };
    let server = cloud
        .create_server_and_wait(&spec, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(server.status, ServerStatus::Running);
    assert_eq!(server.public_ipv4, Some(Ipv4Addr::new(127, 0, 0, 9)));
    let managed = cloud.list_managed_servers().await.unwrap();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].role, Some(ManagedRole::Drill));
    let refused = cloud.delete_server(&person).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::PermissionDenied);
    assert!(cloud.get_server(&person).await.is_ok());
    cloud.delete_server(&server.id).await.unwrap();
    let gone = cloud.get_server(&server.id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
    let mut empty = spec.clone();
    empty.size = " ".into();
    let bad = cloud.create_server(&empty).await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    let price = cloud.server_price("small", "mem-1").await.unwrap();
    assert!(price.monthly > 0.0);
    let wrong = cloud.server_price("huge", "mem-1").await.unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn reboot_and_snapshot_round_trip_with_ownership() {
    let cloud = MemoryCloud::new();
    cloud.set_polls_per_action(3);
    let a = cloud.add_server("web-1", Ipv4Addr::new(203, 0, 113, 10));
    let b = cloud.add_server("web-2", Ipv4Addr::new(203, 0, 113, 11));

    let outcome = cloud
        .reboot_and_wait(&a, RebootMode::Soft, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(outcome.server.status, ServerStatus::Running);
    assert_eq!(cloud.boots(&a), 2);

    let snap = cloud
        .snapshot_and_wait(&a, "kastell-1", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(snap.status, SnapshotStatus::Available);
    assert_eq!(cloud.list_snapshots(&a).await.unwrap().len(), 1);
    assert!(cloud.list_snapshots(&b).await.unwrap().is_empty());

    let err = cloud.delete_snapshot(&b, &snap.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = cloud.restore_snapshot(&b, &snap.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    cloud
        .restore_and_wait(&a, &snap.id, Duration::from_secs(5))
        .await
        .unwrap();
    cloud.delete_snapshot(&a, &snap.id).await.unwrap();
    assert!(cloud.list_snapshots(&a).await.unwrap().is_empty());

    let found = cloud
        .find_server_by_ip(Ipv4Addr::new(203, 0, 113, 11))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, b);
    assert_eq!(
        cloud.snapshot_cost_estimate(&a).await.unwrap().to_string(),
        "$0.40/mo"
    );
}

#[tokio::test]
async fn faults_unsupported_and_missing_servers() {
    let cloud = MemoryCloud::with_capability(CloudCapability {
        reboot: true,
        ..CloudCapability::default()
    });
    let a = cloud.add_server("web-1", Ipv4Addr::new(203, 0, 113, 10));
    cloud.fail_next("reboot", Error::unavailable("502"));
    let err = cloud.reboot(&a, RebootMode::Soft).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.provider(), Some("memory"));
    assert!(cloud.reboot(&a, RebootMode::Soft).await.is_ok());

    let before = cloud.calls().len();
    let err = cloud.create_snapshot(&a, "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(cloud.calls().len(), before, "unsupported must make no call");

    let ghost = ServerId::new("999").unwrap();
    assert_eq!(
        cloud.get_server(&ghost).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
