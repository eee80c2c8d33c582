//! The streaming writer: a snapshot written from streams of unknown length
//! is restored by stock restic and read by rustic_core, cuts its chunks
//! where rustic_core does (so the two deduplicate), adds no data when the
//! same bytes come again, keeps later pushes' reuse working, and writes
//! no snapshot when a stream fails or does not end.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use crate::support::{PASSWORD, noise, restic_ok, tags, walk};
use kastell_repo::{BackupRepository, RepoLocation, StoredEntry};

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

    // rustic_core's archiver cuts the same bytes at the same places: the
    // same dump stored through it (another host, no parent) adds nothing.
    let through_rustic = repo
        .store(
            "other",
            &tags("r1"),
            vec![StoredEntry::new(
                "db.dump",
                dump.len() as u64,
                Box::new(std::io::Cursor::new(dump.clone())),
            )],
        )
        .unwrap();
    assert!(
        through_rustic.added_bytes < 4096,
        "rustic_core added {} bytes",
        through_rustic.added_bytes
    );
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
