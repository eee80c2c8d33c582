//! The conformance trial for kastell's SSH keys: a key a lost create left
//! without a server is found as an orphan and deleted; the key of a server
//! kastell made is not an orphan; a person's key is never listed and never
//! deleted (refused before any DELETE).

use std::collections::BTreeSet;

use kastell_core::types::{ManagedRole, is_managed_key_name};
use kastell_core::{CloudProviderExt, ErrorKind};

use super::create::spec;
use super::{CloudFixture, CloudOp, Fault, TokenChoice, WAIT, rw};

/// A second test public key (no one holds its private half).
const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG90aGVyLWthc3RlbGwtdGVzdC1rZXktOTg3NjU0 kastell-trial-2";

/// The keys in `after` that are not in `before`.
fn added(before: &[String], after: Vec<String>) -> BTreeSet<String> {
    after.into_iter().filter(|k| !before.contains(k)).collect()
}

/// A create whose answer is lost before it took effect leaves its uploaded
/// key and no server; `orphan_ssh_keys` lists exactly that key (none where
/// the provider uploads no keys), not the key of a server kastell made;
/// the person's key is not listed and deleting it is refused with no
/// DELETE sent; a read-only token cannot delete; the orphan is deleted,
/// after which it is gone (`NotFound`), and deleting the server takes its
/// own key, leaving the account's keys as they were.
pub async fn orphan_ssh_keys_are_found_and_only_kastells_are_deleted(f: &dyn CloudFixture) {
    let p = rw(f);
    let keys_before = f.uploaded_keys();

    let lost = spec(&p, "kastell-trial-orphan", ManagedRole::Drill);
    assert!(f.inject(CloudOp::CreateServer, Fault::Gateway(502), 1, false));
    let err = p
        .create_server(&lost)
        .await
        .expect_err("the create's answer was lost");
    assert!(err.may_have_taken_effect(), "ambiguous: {err}");
    assert!(f.created_servers().is_empty(), "no server was made");
    let left = added(&keys_before, f.uploaded_keys());
    assert!(left.len() <= 1, "one key per create: {left:?}");

    let orphans = p.orphan_ssh_keys().await.expect("orphan_ssh_keys");
    let orphan_ids: BTreeSet<String> = orphans.iter().map(|k| k.id.clone()).collect();
    assert_eq!(orphan_ids, left, "exactly the key the lost create left");
    for key in &orphans {
        assert!(is_managed_key_name(&key.name), "{key:?}");
    }

    // Another public key: DigitalOcean refuses a key already on the
    // account, such as the orphan's.
    let mut kept = spec(&p, "kastell-trial-keyed", ManagedRole::Recovery);
    kept.ssh_public_key = OTHER_KEY.to_owned();
    let server = p
        .create_server_and_wait(&kept, WAIT)
        .await
        .expect("create_server_and_wait");
    let its_key: BTreeSet<String> = added(&keys_before, f.uploaded_keys())
        .difference(&left)
        .cloned()
        .collect();
    let managed = p
        .list_managed_ssh_keys()
        .await
        .expect("list_managed_ssh_keys");
    let managed_ids: BTreeSet<String> = managed.iter().map(|k| k.id.clone()).collect();
    assert!(
        its_key.is_subset(&managed_ids),
        "the server's key is kastell's"
    );
    let still: BTreeSet<String> = p
        .orphan_ssh_keys()
        .await
        .expect("orphans with a server")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(still, left, "the server's key is in use, not an orphan");

    let deletes = f.requests(CloudOp::DeleteSshKey).len();
    if let Some(person) = f.person_key() {
        assert!(
            !managed_ids.contains(&person),
            "a person's key is not listed"
        );
        let err = p
            .delete_ssh_key(&person)
            .await
            .expect_err("a person's key is never deleted");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(err.hint().is_some(), "{err:?}");
        assert!(f.uploaded_keys().contains(&person), "still there");
    }
    let err = p
        .delete_ssh_key("../servers/1")
        .await
        .expect_err("not a key id");
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound),
        "{err}"
    );
    assert_eq!(
        f.requests(CloudOp::DeleteSshKey).len(),
        deletes,
        "no DELETE was sent for a refused key"
    );

    if let Some(orphan) = orphans.first() {
        let read_only = f.provider(TokenChoice::ReadOnly, false);
        let err = read_only
            .delete_ssh_key(&orphan.id)
            .await
            .expect_err("read-only tokens cannot delete");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        p.delete_ssh_key(&orphan.id)
            .await
            .expect("the orphan is deleted");
        let gone = p
            .delete_ssh_key(&orphan.id)
            .await
            .expect_err("deleted already");
        assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    }
    assert!(
        p.orphan_ssh_keys().await.expect("orphans after").is_empty(),
        "nothing left over"
    );
    p.delete_server(&server.id).await.expect("delete_server");
    assert_eq!(
        f.uploaded_keys(),
        keys_before,
        "the server's key went with it"
    );
}
