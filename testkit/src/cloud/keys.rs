//! The conformance trials for kastell's SSH keys: a key a lost create left
//! without a server is found as an orphan and deleted; the key of a server
//! kastell made is not an orphan; a person's key is never listed and never
//! deleted (refused before any DELETE); a public key already on the
//! account is reused only as kastell's own marked key of that fingerprint.

use std::collections::BTreeSet;

use kastell_core::types::{ManagedRole, is_managed_key_name, ssh_key_fingerprint};
use kastell_core::{CloudProvider, CloudProviderExt, ErrorKind};

use super::create::{TEST_KEY, spec};
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

/// The id of the SSH key the marked server named `name` was created with,
/// as the provider lists it (`None` where it uploads none).
async fn key_of(p: &dyn CloudProvider, name: &str) -> Option<String> {
    p.list_managed_servers()
        .await
        .expect("list_managed_servers")
        .into_iter()
        .find(|m| m.server.name == name)
        .expect("the created server is listed as kastell's")
        .ssh_key
}

/// The fingerprint of kastell's marked key `id`.
async fn fingerprint_of(p: &dyn CloudProvider, id: &str) -> Option<String> {
    p.list_managed_ssh_keys()
        .await
        .expect("list_managed_ssh_keys")
        .into_iter()
        .find(|k| k.id == id)
        .and_then(|k| k.fingerprint)
}

/// A public key already on the account. After a create whose answer was
/// lost left its marked key, the next create with the same public key
/// succeeds: where the vendor refuses a second copy it reuses that key
/// (no new key; the server names it), elsewhere it uploads its own marked
/// copy. A create with another public key never takes a marked key of a
/// different fingerprint. A person's own copy of a public key is never
/// used: where the vendor refuses a second copy the create is refused
/// with the vendor's error and a hint, before any server exists, and the
/// person's key is untouched; elsewhere the server names a marked copy.
/// Deleting the servers and the orphan leaves the account's keys as they
/// were.
pub async fn a_public_key_already_on_the_account_is_reused_only_when_kastells(
    f: &dyn CloudFixture,
) {
    let p = rw(f);
    let keys_before = f.uploaded_keys();
    let refuses = f.refuses_duplicate_keys();
    let wanted = ssh_key_fingerprint(TEST_KEY).expect("the test key has a fingerprint");

    let lost = spec(&p, "kastell-trial-lost", ManagedRole::Recovery);
    assert!(f.inject(CloudOp::CreateServer, Fault::Gateway(502), 1, false));
    let err = p
        .create_server(&lost)
        .await
        .expect_err("the create's answer was lost");
    assert!(err.may_have_taken_effect(), "ambiguous: {err}");
    let left = added(&keys_before, f.uploaded_keys());
    assert!(left.len() <= 1, "one key per create: {left:?}");

    let again = spec(&p, "kastell-trial-again", ManagedRole::Recovery);
    let server = p
        .create_server_and_wait(&again, WAIT)
        .await
        .expect("a create with a public key already on the account succeeds");
    let after = added(&keys_before, f.uploaded_keys());
    let named = key_of(p.as_ref(), &again.name).await;
    if let Some(key) = &named {
        assert_eq!(
            fingerprint_of(p.as_ref(), key).await.as_deref(),
            Some(wanted.as_str()),
            "the server's key is a marked key of its public key"
        );
    }
    if refuses && !left.is_empty() {
        assert_eq!(after, left, "no second copy was uploaded");
        assert_eq!(
            named.as_ref(),
            left.first(),
            "the server names the key the lost create left"
        );
    }

    // Another public key: its own key, never the marked one of another
    // fingerprint.
    let mut other = spec(&p, "kastell-trial-other", ManagedRole::Recovery);
    other.ssh_public_key = OTHER_KEY.to_owned();
    let other_server = p
        .create_server_and_wait(&other, WAIT)
        .await
        .expect("a create with another public key");
    if let Some(key) = key_of(p.as_ref(), &other.name).await {
        assert!(!after.contains(&key), "not a key of another fingerprint");
        assert_eq!(
            fingerprint_of(p.as_ref(), &key).await,
            ssh_key_fingerprint(OTHER_KEY)
        );
    }

    let mut made = vec![server.id, other_server.id];
    if let Some(person) = f.person_key() {
        let mut theirs = spec(&p, "kastell-trial-person", ManagedRole::Recovery);
        theirs.ssh_public_key = kastell_sim::PERSON_PUBLIC_KEY.to_owned();
        let deletes = f.requests(CloudOp::DeleteSshKey).len();
        let servers = f.created_servers();
        match p.create_server_and_wait(&theirs, WAIT).await {
            Err(err) => {
                assert!(refuses, "only a vendor refusing copies refuses: {err}");
                assert!(
                    matches!(
                        err.kind(),
                        ErrorKind::InvalidInput | ErrorKind::AlreadyExists
                    ),
                    "{err}"
                );
                let hint = err.hint().expect("the refusal says what to do");
                assert!(hint.contains("never a person's"), "{hint}");
                assert_eq!(f.created_servers(), servers, "no server was made");
            }
            Ok(created) => {
                assert!(!refuses, "the person's key is never used: {created:?}");
                let key = key_of(p.as_ref(), &theirs.name).await;
                assert_ne!(key.as_ref(), Some(&person), "a marked copy, not theirs");
                made.push(created.id);
            }
        }
        assert!(
            f.uploaded_keys().contains(&person),
            "the person's key stays"
        );
        assert_eq!(
            f.requests(CloudOp::DeleteSshKey).len(),
            deletes,
            "no key was deleted"
        );
    }

    for id in &made {
        p.delete_server(id).await.expect("delete_server");
    }
    for orphan in p.orphan_ssh_keys().await.expect("orphans") {
        p.delete_ssh_key(&orphan.id)
            .await
            .expect("the orphan is deleted");
    }
    assert_eq!(f.uploaded_keys(), keys_before, "nothing left over");
}
