//! Benchmark 7: the backup repository. A dump-like file (text rows, as
//! `pg_dump` writes; it compresses about as a real dump does) stored twice
//! in a local repository and once in S3 (SeaweedFS on loopback), against
//! the local store's work on the same file (zstd into a file, synced).
//! Reported: time, and the bytes each store added (the second backup of
//! unchanged data should add under 5% of its size).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kastell_core::{Error, Result};
use kastell_repo::backend::S3Credentials;
use kastell_repo::{BackupRepository, RepoLocation, StoredEntry};
use kastell_testkit::s3::{BUCKET, SeaweedS3};

use crate::measure::{mb_per_s, secs};
use crate::report::Section;

pub(crate) const PASSWORD: &str = "benchmark repository password";

/// Writes `bytes` of dump-like rows to `path`.
pub(crate) fn write_dump(path: &Path, bytes: u64) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io("creating the dump", e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut written = 0;
    let mut row = 0u64;
    while written < bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let line = format!(
            "{row}\tcustomer-{}\t{}@example.org\t{}.{:02}\t2026-{:02}-{:02}\n",
            state % 100_000,
            state % 7919,
            state % 10_000,
            state % 100,
            state % 12 + 1,
            state % 28 + 1
        );
        out.write_all(line.as_bytes())
            .map_err(|e| Error::io("writing the dump", e))?;
        written += line.len() as u64;
        row += 1;
    }
    out.flush().map_err(|e| Error::io("writing the dump", e))
}

pub(crate) fn entry(path: &Path) -> Result<StoredEntry> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io("reading the dump", e))?
        .len();
    let file = File::open(path).map_err(|e| Error::io("opening the dump", e))?;
    Ok(StoredEntry {
        name: "db.dump".to_owned(),
        size,
        reader: Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
    })
}

pub(crate) fn timed<T>(work: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let start = Instant::now();
    let value = work()?;
    Ok((value, start.elapsed()))
}

/// What the local store does with a dump: zstd (level 3, all cores) into
/// a file, synced.
pub(crate) fn local_store(dump: &Path, out: &Path) -> Result<Duration> {
    let start = Instant::now();
    let status = Command::new("zstd")
        .args(["-3", "-T0", "-q", "-f", "-o"])
        .arg(out)
        .arg(dump)
        .status()
        .map_err(|e| Error::io("running zstd", e))?;
    if !status.success() {
        return Err(Error::unexpected("zstd failed"));
    }
    File::open(out)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", e))?;
    Ok(start.elapsed())
}

/// Runs the benchmark on a `mib` MiB dump. Blocking.
pub(crate) fn run(mib: u64) -> Result<Section> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("a temporary directory", e))?;
    let dump = dir.path().join("db.dump");
    let size = mib << 20;
    write_dump(&dump, size)?;

    let baseline = local_store(&dump, &dir.path().join("db.dump.zst"))?;
    let location = RepoLocation::Local(dir.path().join("repo"));
    let repo = BackupRepository::init(&location, PASSWORD, None)?;
    let (first, first_took) = timed(|| repo.store("bench", &[], vec![entry(&dump)?]))?;
    let (second, second_took) = timed(|| repo.store("bench", &[], vec![entry(&dump)?]))?;

    let server = SeaweedS3::start();
    let keys = S3Credentials {
        access_key_id: server.credentials.access_key_id.clone(),
        secret_access_key: server.credentials.secret_access_key.clone(),
    };
    let s3 = RepoLocation::parse(&format!("s3:{}/{BUCKET}/bench", server.endpoint))?;
    let runtime = tokio::runtime::Handle::current();
    let _entered = runtime.enter();
    let s3_repo = BackupRepository::init(&s3, PASSWORD, Some(&keys))?;
    let (s3_first, s3_took) = timed(|| s3_repo.store("bench", &[], vec![entry(&dump)?]))?;

    let row = |what: &str, took: Duration, added: Option<u64>| {
        vec![
            what.to_owned(),
            secs(took),
            format!("{:.0}", mb_per_s(size, took)),
            added.map_or("-".to_owned(), |a| format!("{:.1} MB", a as f64 / 1e6)),
            added.map_or("-".to_owned(), |a| {
                format!("{:.2}%", a as f64 * 100.0 / size as f64)
            }),
            format!("{:.2}×", took.as_secs_f64() / baseline.as_secs_f64()),
        ]
    };
    let mut section = Section::new("7. Backup repository (restic format, local and S3)");
    section.para(format!(
        "A {mib} MiB dump-like file (text rows) stored as one snapshot: twice in a local \
         repository, once in S3 (SeaweedFS on loopback, through object_store), against the local \
         store's work on the same file (`zstd -3 -T0` into a file, synced). `added` is what the \
         repository grew by after dedup and compression."
    ));
    section.table(
        &["run", "time", "MB/s", "added", "of size", "vs local store"],
        vec![
            row("local store (zstd -3 -T0, baseline)", baseline, None),
            row(
                "repository, local directory, first",
                first_took,
                Some(first.added_bytes),
            ),
            row(
                "repository, local directory, unchanged second",
                second_took,
                Some(second.added_bytes),
            ),
            row(
                "repository, S3 on loopback, first",
                s3_took,
                Some(s3_first.added_bytes),
            ),
        ],
    );
    Ok(section)
}
