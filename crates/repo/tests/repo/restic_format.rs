//! A kastell repository is a restic repository: stock restic checks it,
//! lists it and restores from it; kastell reads restic's snapshots, and
//! its retention plan matches `restic forget --dry-run`.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::Command;

use crate::support::{PASSWORD, entry, noise, restic, restic_ok, walk};
use kastell_core::ErrorKind;
use kastell_repo::retention::Candidate;
use kastell_repo::{BackupRepository, KeepPolicy, RepoLocation, StoredEntry};

fn local(dir: &std::path::Path) -> RepoLocation {
    RepoLocation::Local(dir.to_path_buf())
}

fn tags(backup: &str) -> Vec<String> {
    vec![format!("backup:{backup}"), "platform:coolify".to_owned()]
}

#[test]
fn stock_restic_checks_and_restores_what_kastell_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let repo = BackupRepository::init(&local(&path), PASSWORD, None).unwrap();
    let dump = noise(7, 3 << 20);
    let manifest = br#"{"id":"b1","artifacts":["db.dump"]}"#.to_vec();
    let snapshot = repo
        .store(
            "web-1",
            &tags("b1"),
            vec![entry("db.dump", &dump), entry("manifest.json", &manifest)],
        )
        .unwrap();
    assert_eq!(snapshot.host, "web-1");
    assert_eq!(snapshot.tag_value("backup"), Some("b1"));
    assert_eq!(snapshot.total_bytes, (dump.len() + manifest.len()) as u64);

    let repo_arg = path.to_str().unwrap();
    restic_ok(repo_arg, PASSWORD, None, &["check", "--read-data"]);
    let restored = restic_ok(repo_arg, PASSWORD, None, &["dump", "latest", "/db.dump"]);
    assert!(restored == dump, "restic dump differs from what was stored");

    let listed: serde_json::Value = serde_json::from_slice(&restic_ok(
        repo_arg,
        PASSWORD,
        None,
        &["snapshots", "--json"],
    ))
    .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["hostname"], "web-1");
    assert_eq!(listed[0]["id"], snapshot.id.as_str());
    let restic_tags: BTreeSet<&str> = listed[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        restic_tags,
        BTreeSet::from(["kastell", "backup:b1", "platform:coolify"])
    );

    // kastell reads it back the same way.
    let mut read_back = Vec::new();
    repo.read(&snapshot.id[..8], "db.dump", &mut read_back)
        .unwrap();
    assert!(read_back == dump);
    let report = repo.check(true).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn a_second_backup_of_unchanged_data_adds_almost_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap();
    let dump = noise(11, 4 << 20);
    let first = repo
        .store("db-1", &tags("b1"), vec![entry("db.dump", &dump)])
        .unwrap();
    let second = repo
        .store("db-1", &tags("b2"), vec![entry("db.dump", &dump)])
        .unwrap();
    assert!(first.added_bytes >= dump.len() as u64 * 9 / 10, "{first:?}");
    assert!(
        second.added_bytes < dump.len() as u64 / 20,
        "the unchanged second backup added {} bytes",
        second.added_bytes
    );
    let ids: Vec<_> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![first.id, second.id]);
}

#[test]
fn a_wrong_password_is_refused_as_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap();
    let error = BackupRepository::open(&local(dir.path()), "not the password", None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthenticated, "{error}");
    assert!(error.hint().is_some());
    assert!(!error.to_string().contains("not the password"));

    let absent =
        BackupRepository::open(&local(&dir.path().join("nothing")), PASSWORD, None).unwrap_err();
    assert_eq!(absent.kind(), ErrorKind::NotFound, "{absent}");

    let twice = BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap_err();
    assert_eq!(twice.kind(), ErrorKind::AlreadyExists, "{twice}");
}

/// A reader that fails after `good` bytes, as a dropped SSH stream does.
struct Broken {
    good: usize,
}

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.good == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the stream was cut",
            ));
        }
        let n = buf.len().min(self.good);
        buf[..n].fill(7);
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn a_short_or_failing_stream_is_never_listed_as_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let repo = BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap();
    repo.store("h", &tags("good"), vec![entry("db.dump", b"complete")])
        .unwrap();

    let short = StoredEntry {
        name: "db.dump".to_owned(),
        size: 1 << 20,
        reader: Box::new(std::io::Cursor::new(vec![1; 1000])),
        key: None,
    };
    let error = repo.store("h", &tags("short"), vec![short]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
    assert!(error.to_string().contains("ended after 1000"), "{error}");

    let cut = StoredEntry {
        name: "db.dump".to_owned(),
        size: 1 << 20,
        reader: Box::new(Broken { good: 300_000 }),
        key: None,
    };
    let error = repo.store("h", &tags("cut"), vec![cut]).unwrap_err();
    assert!(error.to_string().contains("db.dump"), "{error}");

    let backups: Vec<_> = repo
        .snapshots()
        .unwrap()
        .iter()
        .filter_map(|s| s.tag_value("backup").map(str::to_owned))
        .collect();
    assert_eq!(backups, vec!["good".to_owned()]);
    restic_ok(dir.path().to_str().unwrap(), PASSWORD, None, &["check"]);
}

#[test]
fn entry_names_that_are_not_plain_file_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap();
    for name in ["../etc/passwd", "/abs", "a/b", "..", ""] {
        let error = repo.store("h", &[], vec![entry(name, b"x")]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{name:?}: {error}");
    }
    let error = repo
        .store("h", &[], vec![entry("a", b"x"), entry("a", b"y")])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert!(repo.snapshots().unwrap().is_empty());
}

#[test]
fn a_corrupted_pack_is_found_by_check_with_read_data() {
    let dir = tempfile::tempdir().unwrap();
    let repo = BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap();
    repo.store("h", &tags("b1"), vec![entry("db.dump", noise(3, 2 << 20))])
        .unwrap();
    assert!(repo.check(true).unwrap().is_ok());

    let biggest = walk(&dir.path().join("data"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&biggest, bytes).unwrap();

    let report = repo.check(true).unwrap();
    assert!(!report.is_ok(), "check missed a flipped byte: {report:?}");
    let output = restic(
        dir.path().to_str().unwrap(),
        PASSWORD,
        None,
        &["check", "--read-data"],
    );
    assert!(
        !output.status.success(),
        "restic agrees the pack is damaged"
    );
}

#[test]
fn the_retention_plan_matches_restic_forget_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let repo_arg = dir.path().join("repo");
    let repo_arg = repo_arg.to_str().unwrap();
    restic_ok(repo_arg, PASSWORD, None, &["init"]);
    let source = dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("file"), b"the same content every day").unwrap();
    let days = [
        "2025-12-31 23:00:00",
        "2026-01-01 12:00:00",
        "2026-01-15 12:00:00",
        "2026-02-01 12:00:00",
        "2026-02-20 12:00:00",
        "2026-03-01 08:00:00",
        "2026-03-01 12:00:00",
        "2026-03-02 12:00:00",
        "2026-03-03 12:00:00",
    ];
    for day in days {
        restic_ok(
            repo_arg,
            PASSWORD,
            None,
            &[
                "backup",
                "--host",
                "h",
                "--time",
                day,
                source.to_str().unwrap(),
            ],
        );
    }
    let policies = [
        KeepPolicy {
            keep_daily: Some(2),
            keep_weekly: Some(1),
            keep_monthly: Some(2),
            ..KeepPolicy::default()
        },
        KeepPolicy {
            keep_last: Some(2),
            keep_yearly: Some(3),
            ..KeepPolicy::default()
        },
        KeepPolicy {
            keep_hourly: Some(3),
            keep_monthly: Some(4),
            ..KeepPolicy::default()
        },
    ];
    let repo =
        BackupRepository::open(&RepoLocation::Local(repo_arg.into()), PASSWORD, None).unwrap();
    let candidates: Vec<Candidate> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| Candidate {
            id: s.id,
            time: s.time,
            verified: false,
        })
        .collect();
    assert_eq!(candidates.len(), days.len());
    for policy in policies {
        let ours: BTreeSet<String> = policy
            .plan(&candidates)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id)
            .collect();
        let theirs = restic_keeps(repo_arg, &policy);
        assert_eq!(ours, theirs, "{policy:?}");
    }
}

/// The ids `restic forget --dry-run --json` keeps under `policy`.
fn restic_keeps(repo: &str, policy: &KeepPolicy) -> BTreeSet<String> {
    let mut args = vec![
        "forget".to_owned(),
        "--dry-run".to_owned(),
        "--json".to_owned(),
    ];
    let rules = [
        ("--keep-last", policy.keep_last),
        ("--keep-hourly", policy.keep_hourly),
        ("--keep-daily", policy.keep_daily),
        ("--keep-weekly", policy.keep_weekly),
        ("--keep-monthly", policy.keep_monthly),
        ("--keep-yearly", policy.keep_yearly),
    ];
    for (flag, value) in rules {
        if let Some(n) = value {
            args.push(flag.to_owned());
            args.push(n.to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out: serde_json::Value =
        serde_json::from_slice(&restic_ok(repo, PASSWORD, None, &args)).unwrap();
    out.as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["keep"].as_array().unwrap().iter())
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn restic_is_on_the_path() {
    let status = Command::new("restic").arg("version").status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "restic is missing: run `bash .ci/setup`"
    );
}

#[test]
fn two_writers_at_once_both_land_and_the_repository_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    BackupRepository::init(&local(dir.path()), PASSWORD, None).unwrap();
    let writers: Vec<_> = (0..2u64)
        .map(|n| {
            let at = local(dir.path());
            std::thread::spawn(move || {
                let repo = BackupRepository::open(&at, PASSWORD, None).unwrap();
                // Half of each stream is shared, half is the writer's own.
                let mut data = noise(99, 2 << 20);
                data.extend(noise(100 + n, 2 << 20));
                repo.store(
                    &format!("host-{n}"),
                    &tags(&format!("b{n}")),
                    vec![entry("db.dump", &data)],
                )
                .unwrap()
            })
        })
        .collect();
    let stored: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let repo = BackupRepository::open(&local(dir.path()), PASSWORD, None).unwrap();
    let listed: BTreeSet<String> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, stored.iter().map(|s| s.id.clone()).collect());
    assert!(repo.check(true).unwrap().is_ok());
    restic_ok(
        dir.path().to_str().unwrap(),
        PASSWORD,
        None,
        &["check", "--read-data"],
    );
    for (n, snapshot) in stored.iter().enumerate() {
        let mut back = Vec::new();
        repo.read(&snapshot.id, "db.dump", &mut back).unwrap();
        assert!(back[2 << 20..] == noise(100 + n as u64, 2 << 20)[..]);
    }
}
