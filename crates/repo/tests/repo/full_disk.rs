//! A repository whose disk fills up mid-backup: a real 8 MiB tmpfs (root
//! only, as the local store's own full-disk test does). The backup fails
//! with an error that says the storage is full and what to do, is not
//! listed, and the backups already there stay whole: check with every
//! byte read passes, and they read back.

use kastell_testkit::tmpfs::Tmpfs;

use crate::support::{PASSWORD, entry, noise};
use kastell_repo::{BackupRepository, RepoLocation};

#[test]
fn a_full_disk_fails_the_backup_and_keeps_the_earlier_ones_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_disk) = Tmpfs::mount(tmp.path(), "8m") else {
        // Not root: no way to make a real full disk here. The S3 trial
        // (a server killed mid-upload) covers the same promise.
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let at = RepoLocation::Local(tmp.path().join("repo"));
    let repo = BackupRepository::init(&at, PASSWORD, None).unwrap();
    let small = noise(7, 1 << 20);
    let kept = repo
        .store(
            "db-1",
            &["backup:kept".to_owned()],
            vec![entry("db.dump", small.clone())],
        )
        .unwrap();

    let err = repo
        .store(
            "db-1",
            &["backup:too-big".to_owned()],
            vec![entry("db.dump", noise(8, 32 << 20))],
        )
        .unwrap_err();
    let text = format!("{err} {}", err.hint().unwrap_or_default()).to_lowercase();
    assert!(
        text.contains("no space") || text.contains("full"),
        "the error says the storage is full: {err:?}"
    );
    assert!(err.hint().is_some(), "{err:?}");
    eprintln!(
        "the full disk said: {err} (hint: {})",
        err.hint().unwrap_or_default()
    );

    // Only the first is listed; pruning removes the packs the failed
    // backup left, and the first is whole.
    let repo = BackupRepository::open(&at, PASSWORD, None).unwrap();
    let listed: Vec<String> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        listed,
        vec![kept.id.clone()],
        "nothing half-written is listed"
    );
    repo.prune().unwrap();
    let report = repo.check(true).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let mut back = Vec::new();
    repo.read(&kept.id, "db.dump", &mut back).unwrap();
    assert!(back == small, "the earlier backup reads back unchanged");
}
