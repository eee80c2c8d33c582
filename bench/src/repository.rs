//! Benchmark 7: the backup repository. Application-like text (see
//! `textdump`) staged as a kastell backup and pushed (through the
//! streaming writer, `kastell_repo::stream`) into a local repository
//! (first, unchanged second, a new backup of the same data, a slightly
//! changed backup, at restic's default level, from a backup without
//! content digests) and into S3 (SeaweedFS on loopback), against a plain
//! `zstd -3` copy of the same text (into a file, synced). Reported: time,
//! the bytes each push added and the files taken unread from an earlier
//! snapshot. Beside them, the text streamed into a new repository as
//! `backup create --repo` streams an artifact, and the same stream again.
//! Also the helpers the shaped-link benchmark shares.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kastell::engine::backup::{MANIFEST_FILE, Manifest, Staging, StoredBackup};
use kastell::engine::repos::{PushReport, push};
use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSpec, BackupId, Compression};
use kastell_core::{Error, Result};
use kastell_repo::backend::{BackendCredentials, S3Credentials};
use kastell_repo::repository::ZSTD_LEVEL;
use kastell_repo::{BackupRepository, RepoLocation, RepoSnapshot, StoredEntry};
use kastell_testkit::s3::{BUCKET, SeaweedS3};

use crate::measure::{mb_per_s, median, secs};
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
        key: None,
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

/// Stages `dump` as artifact `name` of a kastell backup in `server_dir`
/// (zstd, SHA-256, fsync, atomic publish): the backup and its stored size.
pub(crate) fn stage(
    server_dir: &Path,
    dump: &Path,
    name: &str,
    format: ArtifactFormat,
) -> Result<(StoredBackup, u64)> {
    let id = BackupId::at(SystemTime::now());
    let mut staging = Staging::create(server_dir, &id, Compression::Zstd)?;
    let mut writer = staging.open(&ArtifactSpec {
        name: name.to_owned(),
        format,
    })?;
    let mut file = File::open(dump).map_err(|e| Error::io("opening the dump", e))?;
    std::io::copy(&mut file, &mut writer).map_err(|e| Error::io("staging the dump", e))?;
    writer
        .flush()
        .map_err(|e| Error::io("staging the dump", e))?;
    drop(writer);
    let record = staging.seal(name)?;
    let manifest = Manifest::from_json(
        format!(r#"{{"serverName":"bench","timestamp":"{id}","formatVersion":2}}"#).as_bytes(),
        "the benchmark's manifest",
    )?;
    let dir = staging.publish(manifest)?;
    Ok((StoredBackup::load(id, dir), record.size))
}

/// The artifact's name in the staged backup.
const ARTIFACT: &str = "app-db.dump";

/// The first push of `backup` into a new local repository at zstd
/// `level` in `dir`: its time and what the repository grew by.
fn first_push(dir: &Path, backup: &StoredBackup, level: i32) -> Result<(Duration, PushReport)> {
    let location = RepoLocation::Local(dir.to_path_buf());
    let repo =
        BackupRepository::init_at_level(&location, PASSWORD, &BackendCredentials::s3(None), level)?;
    let (report, took) = timed(|| push(&repo, backup))?;
    Ok((took, report))
}

/// `source` streamed in one pass (`kastell_repo::stream`) into the
/// repository at `dir`, created at kastell's level unless it exists, as
/// `backup create --repo` streams an artifact: its time and snapshot.
fn one_pass(dir: &Path, source: &mut dyn std::io::Read) -> Result<(Duration, RepoSnapshot)> {
    let location = RepoLocation::Local(dir.to_path_buf());
    let repo = if dir.join("config").exists() {
        BackupRepository::open(&location, PASSWORD, None)?
    } else {
        BackupRepository::init_at_level(
            &location,
            PASSWORD,
            &BackendCredentials::s3(None),
            ZSTD_LEVEL,
        )?
    };
    let repo = Arc::new(repo);
    let (snapshot, took) = timed(|| {
        let writer = repo.stream("bench")?;
        writer.add(ARTIFACT, source, Some("sha256:bench"))?;
        writer.finish(&["backup:one-pass".to_owned()])
    })?;
    Ok((took, snapshot))
}

/// The text file at `path`, opened.
fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

/// The compressed size of `dump` at zstd `level` (all cores).
fn zstd_size(dump: &Path, out: &Path, level: i32) -> Result<u64> {
    let status = Command::new("zstd")
        .arg(format!("-{level}"))
        .args(["-T0", "-q", "-f", "-o"])
        .arg(out)
        .arg(dump)
        .status()
        .map_err(|e| Error::io("running zstd", e))?;
    if !status.success() {
        return Err(Error::unexpected("zstd failed"));
    }
    std::fs::metadata(out)
        .map(|m| m.len())
        .map_err(|e| Error::io("sizing the zstd file", e))
}

/// The gzip -6 size of `dump`.
fn gzip_size(dump: &Path) -> Result<u64> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("gzip -6 -c \"$1\" | wc -c")
        .arg("sh")
        .arg(dump)
        .output()
        .map_err(|e| Error::io("running gzip", e))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| Error::unexpected("gzip gave no size"))
}

/// A copy of `backup` in `server_dir` whose manifest lacks the content
/// digests, as a backup taken before they existed: its push hashes each
/// artifact's decompressed bytes as it reads them.
fn without_digests(backup: &StoredBackup, server_dir: &Path) -> Result<StoredBackup> {
    let id = BackupId::at(SystemTime::now());
    let dir = server_dir.join(id.as_str());
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("copying the backup", e))?;
    for entry in std::fs::read_dir(&backup.dir).map_err(|e| Error::io("copying the backup", e))? {
        let entry = entry.map_err(|e| Error::io("copying the backup", e))?;
        std::fs::copy(entry.path(), dir.join(entry.file_name()))
            .map_err(|e| Error::io("copying the backup", e))?;
    }
    let mut manifest = Manifest::read(&dir)?;
    manifest.content.clear();
    manifest.timestamp = id.to_string();
    std::fs::write(dir.join(MANIFEST_FILE), manifest.to_json()?)
        .map_err(|e| Error::io("writing the manifest", e))?;
    Ok(StoredBackup::load(id, dir))
}

/// `dump` with a few small changes, written to `out`: 4 KiB overwritten in
/// each of its sixteenths and 64 KiB appended, as a database changes
/// between two backups.
fn slightly_changed(dump: &Path, out: &Path) -> Result<()> {
    let mut data = std::fs::read(dump).map_err(|e| Error::io("reading the dump", e))?;
    let step = (data.len() / 16).max(1);
    for (n, at) in (0..data.len()).step_by(step).enumerate() {
        let end = (at + 4096).min(data.len());
        let line = format!("changed row {n}\n");
        for (i, byte) in data[at..end].iter_mut().enumerate() {
            *byte = line.as_bytes()[i % line.len()];
        }
    }
    data.extend(
        (0..65_536u32)
            .map(|i| b"appended rows\n"[(i % 14) as usize])
            .collect::<Vec<u8>>(),
    );
    std::fs::write(out, data).map_err(|e| Error::io("writing the changed dump", e))
}

/// Runs the benchmark on `mib` MiB of application-like text, timed
/// pushes `runs` times each (median). Blocking.
pub(crate) fn run(mib: u64, runs: usize) -> Result<Section> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("a temporary directory", e))?;
    let dump = dir.path().join("db.dump");
    let size = crate::textdump::write(&dump, mib << 20)?;
    let zstd1 = zstd_size(&dump, &dir.path().join("db.1.zst"), 1)?;
    let zstd3 = zstd_size(&dump, &dir.path().join("db.3.zst"), 3)?;
    let gzip = gzip_size(&dump)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut baselines = Vec::new();
    for _ in 0..runs {
        baselines.push(local_store(&dump, &dir.path().join("db.dump.zst"))?);
    }
    let baseline = median(&baselines);
    let server_dir = dir.path().join("store").join("bench");
    let (backup, stored) = stage(&server_dir, &dump, ARTIFACT, ArtifactFormat::Raw)?;

    // First pushes, each into a new repository, at kastell's level; the
    // last repository takes the unchanged second pushes.
    let repos = dir.path().join("repos");
    let mut firsts = Vec::new();
    let mut first_report = None;
    for run in 0..runs {
        let (took, report) = first_push(&repos.join(format!("l{run}")), &backup, ZSTD_LEVEL)?;
        firsts.push(took);
        first_report = Some(report);
    }
    let first_report =
        first_report.ok_or_else(|| Error::unexpected("no first push was measured"))?;
    let repo = BackupRepository::open(
        &RepoLocation::Local(repos.join(format!("l{}", runs - 1))),
        PASSWORD,
        None,
    )?;
    let mut seconds = Vec::new();
    let mut second_report = None;
    for _ in 0..runs {
        let (report, took) = timed(|| push(&repo, &backup))?;
        seconds.push(took);
        second_report = Some(report);
    }
    let second_report =
        second_report.ok_or_else(|| Error::unexpected("no second push was measured"))?;
    // A new backup of the same data: a new stored file (the same bytes
    // when zstd is deterministic, as it is at one level and thread count).
    let (again, _) = stage(&server_dir, &dump, ARTIFACT, ArtifactFormat::Raw)?;
    let (again_report, again_took) = timed(|| push(&repo, &again))?;
    // A slightly changed backup: read in full, little of it new.
    let changed_dump = dir.path().join("changed.dump");
    slightly_changed(&dump, &changed_dump)?;
    let (changed, _) = stage(&server_dir, &changed_dump, ARTIFACT, ArtifactFormat::Raw)?;
    let (changed_report, changed_took) = timed(|| push(&repo, &changed))?;
    // restic's default level, for the choice of kastell's.
    let (level3_took, level3_report) = first_push(&repos.join("level3"), &backup, 3)?;
    // A backup from before the content digests: read twice.
    let older = without_digests(&backup, &server_dir)?;
    let (older_took, older_report) = first_push(&repos.join("older"), &older, ZSTD_LEVEL)?;

    let server = SeaweedS3::start();
    let keys = S3Credentials {
        access_key_id: server.credentials.access_key_id.clone(),
        secret_access_key: server.credentials.secret_access_key.clone(),
    };
    let s3 = RepoLocation::parse(&format!("s3:{}/{BUCKET}/bench", server.endpoint))?;
    let runtime = tokio::runtime::Handle::current();
    let _entered = runtime.enter();
    let s3_repo = BackupRepository::init_at_level(
        &s3,
        PASSWORD,
        &BackendCredentials::s3(Some(&keys)),
        ZSTD_LEVEL,
    )?;
    let (s3_report, s3_took) = timed(|| push(&s3_repo, &backup))?;

    // The one-pass backup: first streams (a new repository each), then
    // the same stream again into the last.
    let mut streams = Vec::new();
    let mut stream_snapshot = None;
    for run in 0..runs {
        let (took, snapshot) = one_pass(&repos.join(format!("s{run}")), &mut open(&dump)?)?;
        streams.push(took);
        stream_snapshot = Some(snapshot);
    }
    let stream_snapshot =
        stream_snapshot.ok_or_else(|| Error::unexpected("no one-pass write was measured"))?;
    let last_stream = repos.join(format!("s{}", runs - 1));
    let mut restreams = Vec::new();
    let mut restream_snapshot = None;
    for _ in 0..runs {
        let (took, snapshot) = one_pass(&last_stream, &mut open(&dump)?)?;
        restreams.push(took);
        restream_snapshot = Some(snapshot);
    }
    let restream_snapshot =
        restream_snapshot.ok_or_else(|| Error::unexpected("no one-pass write was measured"))?;

    let ratio = |took: Duration| took.as_secs_f64() / baseline.as_secs_f64();
    let row = |what: &str, took: Duration, snapshot: Option<&RepoSnapshot>| {
        let added = snapshot.map(|s| s.added_bytes);
        vec![
            what.to_owned(),
            secs(took),
            format!("{:.0}", mb_per_s(size, took)),
            added.map_or("-".to_owned(), |a| format!("{:.1} MB", a as f64 / 1e6)),
            added.map_or("-".to_owned(), |a| {
                format!("{:.2}%", a as f64 * 100.0 / size as f64)
            }),
            snapshot.map_or("-".to_owned(), |s| s.unchanged_files.to_string()),
            format!("{:.2}×", ratio(took)),
        ]
    };
    let first = median(&firsts);
    let second = median(&seconds);
    let mut section = Section::new("7. Backup repository: pushing a stored backup");
    section.para(format!(
        "{:.1} MB of application-like text (this machine's package lists and documentation: \
         `/var/lib/dpkg/status`, `/usr/share/doc`, `/usr/share/man`, gzip'd files decompressed; \
         zstd -1 leaves {:.1}%, zstd -3 {:.1}%, gzip -6 {:.1}%), staged as a kastell backup \
         ({:.1} MB stored, zstd), then pushed with `kastell::engine::repos::push` through the \
         streaming writer (the stored file decompressed and checked on its own thread; restic's \
         chunking on the pushing thread; hashing, dedup, compression and encryption on one \
         worker per core; packs fsynced into a local restic-format repository; a file an \
         earlier snapshot holds taken unread). Baseline: `zstd -3 -T0` of the same text into \
         a file, synced. Median of {runs} run(s) for the baseline, the first push (a new \
         repository each) and the unchanged second push; the other rows one run. Load average \
         at the start: {}. `unread` is the files taken from an earlier snapshot without reading.",
        size as f64 / 1e6,
        zstd1 as f64 * 100.0 / size as f64,
        zstd3 as f64 * 100.0 / size as f64,
        gzip as f64 * 100.0 / size as f64,
        stored as f64 / 1e6,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    ));
    section.table(
        &[
            "run",
            "time",
            "MB/s",
            "added",
            "of size",
            "unread",
            "vs zstd -3 copy",
        ],
        vec![
            row("zstd -3 -T0 copy, synced (baseline)", baseline, None),
            row(
                &format!("first push (repository zstd level {ZSTD_LEVEL})"),
                first,
                Some(&first_report.snapshot),
            ),
            row(
                "unchanged second push of the same backup",
                second,
                Some(&second_report.snapshot),
            ),
            row(
                "a new backup of the same data, pushed",
                again_took,
                Some(&again_report.snapshot),
            ),
            row(
                "a slightly changed backup, pushed (read in full)",
                changed_took,
                Some(&changed_report.snapshot),
            ),
            row(
                "first push, repository at zstd level 3 (restic's default)",
                level3_took,
                Some(&level3_report.snapshot),
            ),
            row(
                "first push of a backup without content digests (its content hashed too)",
                older_took,
                Some(&older_report.snapshot),
            ),
            row(
                "first push into S3 on loopback (SeaweedFS)",
                s3_took,
                Some(&s3_report.snapshot),
            ),
            row(
                "one pass: the text streamed into a new repository (backup create --repo)",
                median(&streams),
                Some(&stream_snapshot),
            ),
            row(
                "one pass, the same stream again (read in full, nothing added)",
                median(&restreams),
                Some(&restream_snapshot),
            ),
        ],
    );
    let verdict = |measured: f64, target: f64| if measured <= target { "met" } else { "missed" };
    section.table(
        &["target", "measured", "verdict"],
        vec![
            vec![
                "first push within 1.3× of a zstd -3 copy".to_owned(),
                format!("{:.2}×", ratio(first)),
                verdict(ratio(first), 1.3).to_owned(),
            ],
            vec![
                "unchanged second push within 0.3×".to_owned(),
                format!("{:.2}×", ratio(second)),
                verdict(ratio(second), 0.3).to_owned(),
            ],
            vec![
                "one-pass backup into a new repository within 1.3×".to_owned(),
                format!("{:.2}×", ratio(median(&streams))),
                verdict(ratio(median(&streams)), 1.3).to_owned(),
            ],
        ],
    );
    Ok(section)
}
