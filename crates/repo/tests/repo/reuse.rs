//! Content an earlier snapshot holds is taken from it unread: a second
//! push of the same artifacts reads none of them and adds (almost)
//! nothing, changed content under the same name and size is read, and
//! stock restic restores every snapshot to the very bytes, sizes included.

use std::io::Read;

use crate::support::{PASSWORD, noise, restic_ok, tags, walk};
use kastell_repo::{BackupRepository, RepoLocation, StoredEntry};

fn keyed(name: &str, data: &[u8], key: &str) -> StoredEntry {
    StoredEntry::new(
        name,
        data.len() as u64,
        Box::new(std::io::Cursor::new(data.to_vec())),
    )
    .keyed(key)
}

/// A reader that fails the snapshot if anything reads it.
struct Untouchable;

impl Read for Untouchable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("this entry must not be read"))
    }
}

fn unread(name: &str, size: usize, key: &str) -> StoredEntry {
    StoredEntry::new(name, size as u64, Box::new(Untouchable)).keyed(key)
}

/// Restores snapshot `id` with stock restic into a new directory and
/// returns each file's bytes by name.
fn restored(repo: &str, id: &str) -> Vec<(String, Vec<u8>)> {
    let target = tempfile::tempdir().unwrap();
    restic_ok(
        repo,
        PASSWORD,
        None,
        &["restore", id, "--target", target.path().to_str().unwrap()],
    );
    let mut files: Vec<(String, Vec<u8>)> = walk(target.path())
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn unchanged_entries_are_taken_unread_and_restic_restores_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo_arg = dir.path().to_str().unwrap().to_owned();
    let repo =
        BackupRepository::init(&RepoLocation::Local(dir.path().into()), PASSWORD, None).unwrap();
    let dump = noise(21, 3 << 20);
    let conf = noise(22, 70_000);
    let first = repo
        .store(
            "web",
            &tags("b1"),
            vec![
                keyed("db.dump", &dump, "sha256:d1"),
                keyed("conf.tar", &conf, "sha256:c1"),
            ],
        )
        .unwrap();
    assert_eq!(first.unchanged_files, 0);
    assert!(first.added_bytes > dump.len() as u64 * 9 / 10, "{first:?}");

    // The same content again: neither reader is touched (one that is
    // read fails the snapshot), and almost nothing is added.
    let second = repo
        .store(
            "web",
            &tags("b2"),
            vec![
                unread("db.dump", dump.len(), "sha256:d1"),
                unread("conf.tar", conf.len(), "sha256:c1"),
            ],
        )
        .unwrap();
    assert_eq!(second.unchanged_files, 2, "{second:?}");
    assert_eq!(second.total_bytes, (dump.len() + conf.len()) as u64);
    assert!(
        second.added_bytes < 4096,
        "an unchanged push added {} bytes",
        second.added_bytes
    );

    // Changed content of the same name and size is read, never taken
    // from the parent; the unchanged file beside it still is.
    let changed = noise(23, dump.len());
    let third = repo
        .store(
            "web",
            &tags("b3"),
            vec![
                keyed("db.dump", &changed, "sha256:d2"),
                unread("conf.tar", conf.len(), "sha256:c1"),
            ],
        )
        .unwrap();
    assert_eq!(third.unchanged_files, 1, "{third:?}");
    assert!(
        third.added_bytes > changed.len() as u64 * 9 / 10,
        "{third:?}"
    );

    // Another server's identical files are not its parents: read again
    // (and deduplicated by content).
    let other = repo
        .store(
            "db",
            &tags("o1"),
            vec![keyed("db.dump", &dump, "sha256:d1")],
        )
        .unwrap();
    assert_eq!(other.unchanged_files, 0);
    assert!(other.added_bytes < 4096, "{other:?}");

    restic_ok(&repo_arg, PASSWORD, None, &["check", "--read-data"]);
    let want = |db: &[u8]| {
        vec![
            ("conf.tar".to_owned(), conf.clone()),
            ("db.dump".to_owned(), db.to_vec()),
        ]
    };
    assert!(restored(&repo_arg, &second.id[..8]) == want(&dump));
    assert!(restored(&repo_arg, &third.id[..8]) == want(&changed));
    let mut back = Vec::new();
    repo.read(&second.id, "db.dump", &mut back).unwrap();
    assert!(back == dump);
}

#[test]
fn a_wrong_size_or_a_malformed_key_is_not_taken_from_a_parent() {
    let dir = tempfile::tempdir().unwrap();
    let repo =
        BackupRepository::init(&RepoLocation::Local(dir.path().into()), PASSWORD, None).unwrap();
    let dump = noise(31, 100_000);
    repo.store("web", &tags("b1"), vec![keyed("db.dump", &dump, "k1")])
        .unwrap();
    // The key matches but the size does not: the entry is read (and this
    // reader fails, so no snapshot is written).
    let error = repo
        .store("web", &tags("b2"), vec![unread("db.dump", 99_999, "k1")])
        .unwrap_err();
    assert!(error.to_string().contains("db.dump"), "{error}");
    let error = repo
        .store("web", &tags("b3"), vec![keyed("db.dump", &dump, "k 1")])
        .unwrap_err();
    assert_eq!(error.kind(), kastell_core::ErrorKind::InvalidInput);
    assert_eq!(repo.snapshots().unwrap().len(), 1);
}
