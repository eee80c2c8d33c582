//! The streaming writer: a snapshot written from streams of unknown length
//! is restored by stock restic and read by rustic_core, cuts its chunks
//! where restic does (so the two deduplicate), adds no data when the same
//! bytes come again, takes an entry an earlier snapshot holds unread, and
//! writes no snapshot when a stream fails or does not end. The S3 and SFTP
//! tests run [`one_pass_round_trip`] on their repositories.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::support::{PASSWORD, noise, restic_ok, tags, walk};
use kastell_repo::{BackupRepository, RepoLocation, RepoSnapshot, StoredEntry};

/// Application-like bytes: text lines with numbers, and a stretch that
/// does not compress, over several chunks (1 MiB on average).
fn dump() -> Vec<u8> {
    let mut data = Vec::new();
    let mut i = 0u64;
    while data.len() < 3 << 20 {
        data.extend_from_slice(
            format!("{i}\tcustomer-{}\t{}\tshipped\n", i * 7919 % 10_007, i * 31).as_bytes(),
        );
        i += 1;
    }
    data.extend(noise(41, 3 << 20));
    data
}

fn init(dir: &Path) -> Arc<BackupRepository> {
    Arc::new(BackupRepository::init(&RepoLocation::Local(dir.into()), PASSWORD, None).unwrap())
}

/// Writes `data` into `writer` in pieces of odd sizes.
fn write_in_pieces(writer: &mut impl Write, data: &[u8]) {
    for piece in data.chunks(777_777) {
        let (a, b) = piece.split_at(piece.len() / 3);
        writer.write_all(a).unwrap();
        writer.write_all(b).unwrap();
    }
}

/// Restores snapshot `id` with stock restic; each file's bytes by name.
fn restic_restored(repo: &str, id: &str) -> Vec<(String, Vec<u8>)> {
    restored_by(&|args| restic_ok(repo, PASSWORD, None, args), id)
}

/// Restores snapshot `id` with `restic` (stock restic on some repository,
/// given its arguments); each file's bytes by name.
pub(crate) fn restored_by(restic: &dyn Fn(&[&str]) -> Vec<u8>, id: &str) -> Vec<(String, Vec<u8>)> {
    let target = tempfile::tempdir().unwrap();
    restic(&["restore", id, "--target", target.path().to_str().unwrap()]);
    let mut files: Vec<(String, Vec<u8>)> = walk(target.path())
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(target.path()).unwrap();
            (
                name.to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn packs(dir: &Path) -> usize {
    walk(&dir.join("data")).len()
}

#[test]
fn a_streamed_snapshot_is_restored_by_restic_and_read_by_rustic() {
    let dir = tempfile::tempdir().unwrap();
    let repo_arg = dir.path().to_str().unwrap().to_owned();
    let repo = init(dir.path());
    let dump = dump();
    let conf = b"listen 80;\n".repeat(100);

    let writer = repo.stream("web").unwrap();
    let mut entry = writer.entry("db.dump").unwrap();
    write_in_pieces(&mut entry, &dump);
    assert_eq!(entry.finish(Some("sha256:d1")).unwrap(), dump.len() as u64);
    writer
        .add("conf.txt", &mut conf.as_slice(), Some("sha256:c1"))
        .unwrap();
    let snapshot = writer.finish(&tags("s1")).unwrap();
    assert_eq!(snapshot.host, "web");
    assert_eq!(snapshot.tags, ["backup:s1", "kastell"]);
    assert_eq!(snapshot.total_bytes, (dump.len() + conf.len()) as u64);
    // The text compressed, the noise did not.
    assert!(
        snapshot.added_bytes > (3 << 20) && snapshot.added_bytes < dump.len() as u64,
        "{snapshot:?}"
    );

    restic_ok(&repo_arg, PASSWORD, None, &["check", "--read-data"]);
    let restored = restic_restored(&repo_arg, &snapshot.id[..8]);
    assert!(
        restored
            == [
                ("conf.txt".to_owned(), conf.clone()),
                ("db.dump".to_owned(), dump.clone())
            ],
        "restic restored {:?}",
        restored
            .iter()
            .map(|(n, b)| (n, b.len()))
            .collect::<Vec<_>>()
    );
    let mut back = Vec::new();
    repo.read(&snapshot.id, "db.dump", &mut back).unwrap();
    assert!(back == dump, "rustic_core read {} bytes", back.len());
    let check = repo.check(true).unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert_eq!(repo.snapshots().unwrap(), [snapshot]);

    // Stock restic cuts the same bytes at the same places: the same dump
    // backed up by restic (another host, no parent) adds no data blob.
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("db.dump"), &dump).unwrap();
    let summary = restic_ok(
        &repo_arg,
        PASSWORD,
        None,
        &[
            "backup",
            "--json",
            "--host",
            "other",
            source.path().join("db.dump").to_str().unwrap(),
        ],
    );
    let summary: serde_json::Value = String::from_utf8_lossy(&summary)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|v| v["message_type"] == "summary")
        .unwrap();
    assert_eq!(summary["data_blobs"], 0, "restic added data: {summary}");
}

/// The bytes of the round trip: a dump over several chunks and a small
/// file.
fn conf(version: u8) -> Vec<u8> {
    format!("listen 80;\nversion {version};\n")
        .repeat(200)
        .into_bytes()
}

/// Writes two snapshots of `web` into `repo` in one pass each, and
/// returns them. The first takes a dump (in pieces) and a small file at
/// the same time from two threads; the second takes the dump from the
/// first unread (its key) and a changed small file.
pub(crate) fn one_pass_round_trip(repo: &BackupRepository) -> (RepoSnapshot, RepoSnapshot) {
    let dump = dump();
    let writer = repo.stream("web").unwrap();
    std::thread::scope(|scope| {
        let writer = &writer;
        let dump = &dump;
        let a = scope.spawn(move || {
            let mut entry = writer.entry("db.dump").unwrap();
            write_in_pieces(&mut entry, dump);
            entry.finish(Some("sha256:d1")).unwrap()
        });
        let b = scope.spawn(move || {
            let mut entry = writer.entry("conf.txt").unwrap();
            write_in_pieces(&mut entry, &conf(1));
            entry.finish(Some("sha256:c1")).unwrap()
        });
        assert_eq!(a.join().unwrap(), dump.len() as u64);
        assert_eq!(b.join().unwrap(), conf(1).len() as u64);
    });
    let first = writer.finish(&tags("s1")).unwrap();
    assert_eq!(first.unchanged_files, 0, "{first:?}");

    let writer = repo.stream("web").unwrap();
    let size = writer
        .reuse("db.dump", "sha256:d1", Some(dump.len() as u64))
        .unwrap();
    assert_eq!(size, Some(dump.len() as u64));
    // Another key, or another host's snapshot, is never taken.
    assert_eq!(writer.reuse("conf.txt", "sha256:c2", None).unwrap(), None);
    writer
        .add("conf.txt", &mut conf(2).as_slice(), Some("sha256:c2"))
        .unwrap();
    let second = writer.finish(&tags("s2")).unwrap();
    assert_eq!(second.unchanged_files, 1, "{second:?}");
    assert_eq!(second.total_bytes, (dump.len() + conf(2).len()) as u64);
    assert!(second.added_bytes < 64 << 10, "{second:?}");
    (first, second)
}

/// Checks the snapshots of [`one_pass_round_trip`] with `restic` (stock
/// restic on that repository): `check --read-data`, then each restored and
/// compared byte for byte.
pub(crate) fn restic_reads_the_round_trip(
    restic: &dyn Fn(&[&str]) -> Vec<u8>,
    first: &RepoSnapshot,
    second: &RepoSnapshot,
) {
    restic(&["check", "--read-data"]);
    let dump = dump();
    for (snapshot, conf) in [(first, conf(1)), (second, conf(2))] {
        let restored = restored_by(restic, &snapshot.id[..8]);
        assert!(
            restored
                == [
                    ("conf.txt".to_owned(), conf),
                    ("db.dump".to_owned(), dump.clone())
                ],
            "restic restored {:?}",
            restored
                .iter()
                .map(|(n, b)| (n, b.len()))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_local_round_trip_is_read_back_by_restic() {
    let dir = tempfile::tempdir().unwrap();
    let repo_arg = dir.path().to_str().unwrap().to_owned();
    let repo = init(dir.path());
    let (first, second) = one_pass_round_trip(&repo);
    restic_reads_the_round_trip(
        &|args| restic_ok(&repo_arg, PASSWORD, None, args),
        &first,
        &second,
    );
    // The unread entry lies in the first snapshot's packs: the second
    // added no pack but the changed file's.
    let mut back = Vec::new();
    repo.read(&second.id, "db.dump", &mut back).unwrap();
    assert!(back == dump());
}

/// A reader that fails the snapshot if anything reads it.
struct Untouchable;

impl Read for Untouchable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("this entry must not be read"))
    }
}

#[test]
fn the_same_stream_again_adds_no_data_and_later_pushes_reuse_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo_arg = dir.path().to_str().unwrap().to_owned();
    let repo = init(dir.path());
    let dump = dump();
    let write = |backup: &str| {
        let writer = repo.stream("web").unwrap();
        let mut entry = writer.entry("db.dump").unwrap();
        write_in_pieces(&mut entry, &dump);
        entry.finish(Some("sha256:d1")).unwrap();
        writer.finish(&tags(backup)).unwrap()
    };
    let first = write("s1");
    let before = packs(dir.path());
    let second = write("s2");
    // No new pack: no data, and the tree is the first one's (the same
    // stored file keeps its recorded time).
    assert_eq!(packs(dir.path()), before);
    assert!(second.added_bytes < 4096, "{second:?}");
    assert_eq!(second.total_bytes, first.total_bytes);

    // A push of the same stored file (same key, name and size) takes the
    // content from the streamed snapshot without reading it.
    let pushed = repo
        .store(
            "web",
            &tags("p1"),
            vec![
                StoredEntry::new("db.dump", dump.len() as u64, Box::new(Untouchable))
                    .keyed("sha256:d1"),
            ],
        )
        .unwrap();
    assert_eq!(pushed.unchanged_files, 1, "{pushed:?}");
    restic_ok(&repo_arg, PASSWORD, None, &["check", "--read-data"]);
    let restored = restic_restored(&repo_arg, &pushed.id[..8]);
    assert!(restored == [("db.dump".to_owned(), dump.clone())]);
}

/// A reader that yields `left` bytes of noise, then fails.
struct BreaksOff {
    left: usize,
}

impl Read for BreaksOff {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the server went away"));
        }
        let n = buf.len().min(self.left);
        buf[..n].copy_from_slice(&noise(self.left as u64, n));
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_failed_or_unfinished_stream_leaves_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let repo_arg = dir.path().to_str().unwrap().to_owned();
    let repo = init(dir.path());

    // A source that breaks off.
    let writer = repo.stream("web").unwrap();
    let error = writer
        .add("db.dump", &mut BreaksOff { left: 3 << 20 }, None)
        .unwrap_err();
    assert!(error.to_string().contains("server went away"), "{error}");
    let error = writer.finish(&tags("s1")).unwrap_err();
    assert!(error.to_string().contains("db.dump"), "{error}");

    // An entry never finished (the backup stopped while it streamed).
    let writer = repo.stream("web").unwrap();
    writer.add("conf.txt", &mut &b"x"[..], None).unwrap();
    let mut entry = writer.entry("db.dump").unwrap();
    entry.write_all(&noise(5, 2 << 20)).unwrap();
    drop(entry);
    assert!(writer.finish(&tags("s2")).is_err());

    // A failure the caller records (a stored artifact that did not verify).
    let writer = repo.stream("web").unwrap();
    writer
        .add("db.dump", &mut &noise(6, 1 << 20)[..], None)
        .unwrap();
    writer.fail(kastell_core::Error::invalid_input(
        "the checksum did not match",
    ));
    let error = writer.finish(&tags("s3")).unwrap_err();
    assert!(error.to_string().contains("checksum"), "{error}");

    // Bad names and keys are refused before anything is written.
    let writer = repo.stream("web").unwrap();
    assert!(writer.entry("../etc/passwd").is_err());
    writer.add("a", &mut &b"1"[..], None).unwrap();
    assert!(writer.entry("a").is_err());
    assert!(writer.add("b", &mut &b"2"[..], Some("bad key")).is_err());
    drop(writer);

    assert!(repo.snapshots().unwrap().is_empty());
    let listed = restic_ok(&repo_arg, PASSWORD, None, &["snapshots", "--json"]);
    assert_eq!(String::from_utf8_lossy(&listed).trim(), "[]");
    restic_ok(&repo_arg, PASSWORD, None, &["check"]);
}
