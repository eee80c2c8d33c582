//! Conformance trials for creating and deleting servers: what kastell
//! creates runs, carries its marker, is priced and is the only thing it
//! deletes; creation is never sent twice; a read-only token creates
//! nothing.

use std::net::Ipv4Addr;
use std::sync::Arc;

use kastell_core::types::{ManagedRole, RebootMode, ServerSpec, ServerStatus};
use kastell_core::{CloudProvider, CloudProviderExt, ErrorKind};

use super::{CloudFixture, CloudOp, Fault, TokenChoice, WAIT, rw};

/// A public key line for created servers (a test key; no one holds its
/// private half).
pub(super) const TEST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bmEta2FzdGVsbC10ZXN0LWtleS0xMjM0NTY kastell-trial";

/// A spec at the provider's default size, region and image.
pub(super) fn spec(p: &Arc<dyn CloudProvider>, name: &str, role: ManagedRole) -> ServerSpec {
    let choice = p.default_server_choice().expect("default_server_choice");
    ServerSpec {
        name: name.to_owned(),
        size: choice.size,
        region: choice.region,
        image: choice.image,
        ssh_public_key: TEST_KEY.to_owned(),
        role,
    }
}

/// A created server runs with the next address of the pool, has booted
/// once and reboots like a seeded one, is listed as kastell's with its
/// role, has a price; deleting a seeded (unmarked)
/// server is refused before any DELETE; deleting the created one removes
/// it and the SSH key uploaded for it.
pub async fn created_servers_run_marked_and_only_they_are_deleted(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let choice = p.default_server_choice().expect("default choice");
    let price = p
        .server_price(&choice.size, &choice.region)
        .await
        .expect("price of the default choice");
    assert!(price.monthly > 0.0, "{price:?}");
    assert!(!price.currency.is_empty() && !price.basis.is_empty());
    let err = p
        .server_price("no-such-size-9", &choice.region)
        .await
        .expect_err("an unknown size has no price");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.hint().is_some_and(|h| h.contains(&choice.size)),
        "{err:?}"
    );
    let err = p
        .server_price(&choice.size, "no-such-region-9")
        .await
        .expect_err("an unknown region has no price");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let address = Ipv4Addr::new(127, 0, 0, 213);
    let chosen = f.queue_addresses(&[address]);
    let keys_before = f.uploaded_keys();
    let spec = spec(&p, "kastell-trial-drill", ManagedRole::Drill);
    let server = p
        .create_server_and_wait(&spec, WAIT)
        .await
        .expect("create_server_and_wait");
    assert_eq!(server.status, ServerStatus::Running);
    assert_eq!(server.name, spec.name);
    if chosen {
        assert_eq!(server.public_ipv4, Some(address), "the pool's address");
        assert_eq!(f.created_servers(), vec![server.id.to_string()]);
    }
    let again = p.get_server(&server.id).await.expect("get the new server");
    assert_eq!(again.public_ipv4, server.public_ipv4);
    assert_eq!(f.boots(&server.id), 1, "a created server has booted once");
    p.reboot_and_wait(&server.id, RebootMode::Soft, WAIT)
        .await
        .expect("a created server reboots like any other");
    assert_eq!(f.boots(&server.id), 2);

    let managed = p
        .list_managed_servers()
        .await
        .expect("list_managed_servers");
    let ours: Vec<_> = managed
        .iter()
        .filter(|m| m.server.id == server.id)
        .collect();
    assert_eq!(ours.len(), 1, "the new server is listed once: {managed:?}");
    assert_eq!(ours[0].role, Some(ManagedRole::Drill));
    assert!(
        managed.iter().all(|m| m.server.id != account.server_a),
        "a seeded server is not kastell's"
    );

    let deletes = f.requests(CloudOp::DeleteServer).len();
    let err = p
        .delete_server(&account.server_a)
        .await
        .expect_err("a server kastell did not create is never deleted");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.hint().is_some(), "{err:?}");
    assert_eq!(
        f.requests(CloudOp::DeleteServer).len(),
        deletes,
        "no DELETE was sent for an unmarked server"
    );
    p.get_server(&account.server_a)
        .await
        .expect("the seeded server still exists");

    p.delete_server(&server.id).await.expect("delete_server");
    let gone = p
        .get_server(&server.id)
        .await
        .expect_err("the deleted server is gone");
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    assert!(f.created_servers().is_empty(), "{:?}", f.created_servers());
    assert_eq!(f.uploaded_keys(), keys_before, "its SSH key went with it");
    let listed = p.list_managed_servers().await.expect("list after delete");
    assert!(listed.iter().all(|m| m.server.id != server.id));
}

/// A create whose answer is lost is not sent again; what it created
/// anyway carries the marker, so it is found and deleted.
pub async fn server_creation_is_never_resent(f: &dyn CloudFixture) {
    let p = rw(f);
    let keys_before = f.uploaded_keys();
    let spec = spec(&p, "kastell-trial-lost", ManagedRole::Recovery);
    let sent = f.requests(CloudOp::CreateServer).len();
    assert!(f.inject(CloudOp::CreateServer, Fault::Gateway(502), 1, true));
    let err = p
        .create_server(&spec)
        .await
        .expect_err("the answer was lost");
    assert_eq!(
        f.requests(CloudOp::CreateServer).len() - sent,
        1,
        "a server creation is never re-sent: {err}"
    );
    let managed = p
        .list_managed_servers()
        .await
        .expect("list_managed_servers");
    let found: Vec<_> = managed
        .iter()
        .filter(|m| m.server.name == spec.name)
        .collect();
    assert_eq!(found.len(), 1, "created once and marked: {managed:?}");
    assert_eq!(found[0].role, Some(ManagedRole::Recovery));
    p.delete_server(&found[0].server.id)
        .await
        .expect("the marked leftover is deleted");
    assert_eq!(f.uploaded_keys(), keys_before, "and its key");
}

/// A read-only token creates and deletes nothing; a bad spec is refused
/// before any request.
pub async fn read_only_tokens_create_and_delete_nothing(f: &dyn CloudFixture) {
    let account = f.account();
    let p = rw(f);
    let spec = spec(&p, "kastell-trial-ro", ManagedRole::Drill);
    let keys_before = f.uploaded_keys();
    let read_only = f.provider(TokenChoice::ReadOnly, false);
    let err = read_only
        .create_server(&spec)
        .await
        .expect_err("read-only tokens cannot create");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(f.created_servers().is_empty());
    assert_eq!(f.uploaded_keys(), keys_before);
    let err = read_only
        .delete_server(&account.server_a)
        .await
        .expect_err("read-only tokens cannot delete");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let creates = f.requests(CloudOp::CreateServer).len();
    let mut bad = spec.clone();
    bad.ssh_public_key = "ssh-ed25519 AAAA\nssh-rsa BBBB".to_owned();
    let err = p.create_server(&bad).await.expect_err("two key lines");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(
        f.requests(CloudOp::CreateServer).len(),
        creates,
        "nothing was sent for a refused spec"
    );
    assert_eq!(f.uploaded_keys(), keys_before);
}
