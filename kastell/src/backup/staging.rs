//! A backup being written: a hidden staging directory that implements
//! [`ArtifactSink`] and becomes a listed backup only through
//! [`Staging::publish`], one atomic rename once every artifact is sealed.
//! Dropping an unpublished staging directory removes it.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use kastell_core::types::{ArtifactRecord, ArtifactSink, ArtifactSpec, BackupId, Compression};
use kastell_core::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

use super::layout::STAGING_PREFIX;
use super::manifest::{MANIFEST_FILE, Manifest, stored_file};

/// zstd level used when compressing: level 1 keeps pace with a gigabit
/// link on one core and its artifacts are a few percent larger than level
/// 3's (see BENCHMARKS.md); far better than gzip -6 either way.
const ZSTD_LEVEL: i32 = 1;

/// A zstd encoder at [`ZSTD_LEVEL`] writing into `inner`. zstd's own
/// worker threads are not used: they would report a failing write (a full
/// disk) only when the artifact ends; the artifact's writer thread
/// ([`Worker`]) takes the work off the reading thread instead.
fn zstd_encoder<W: Write>(inner: W) -> Result<zstd::stream::write::Encoder<'static, W>> {
    zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)
        .map_err(|e| Error::io("starting zstd compression", e))
}

/// A file writer that hashes and counts what reaches the disk.
struct HashingFile {
    file: BufWriter<File>,
    hasher: Sha256,
    size: u64,
}

impl Write for HashingFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(data)?;
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

enum Pipeline {
    Plain(HashingFile),
    Zstd(Box<zstd::stream::write::Encoder<'static, HashingFile>>),
}

impl Pipeline {
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Plain(w) => w.write_all(data),
            Self::Zstd(w) => w.write_all(data),
        }
    }

    /// Finishes compression, flushes and fsyncs; returns size and SHA-256
    /// of the stored file.
    fn finish(self) -> std::io::Result<(u64, String)> {
        let mut file = match self {
            Self::Plain(w) => w,
            Self::Zstd(w) => w.finish()?,
        };
        file.flush()?;
        file.file.get_ref().sync_all()?;
        let digest = file.hasher.finalize();
        Ok((
            file.size,
            digest.iter().map(|b| format!("{b:02x}")).collect(),
        ))
    }
}

/// Chunks waiting for an artifact's writer thread, at most: the thread
/// reading from the server runs this far ahead of the disk, no further.
const QUEUED_CHUNKS: usize = 8;

/// An artifact's [`Pipeline`] (compression, hashing, the file) running on
/// its own thread, fed over a bounded channel: the thread reading from the
/// server only hands chunks over, and a failed write (a full disk) is seen
/// at the next chunk.
struct Worker {
    chunks: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<std::io::Result<(u64, String)>>>,
    /// The first write error, for the writer to report.
    failed: Arc<Mutex<Option<(std::io::ErrorKind, String)>>>,
    /// Set when the artifact is abandoned: the thread stops writing.
    abandoned: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the thread that runs `pipeline`, naming `path` in errors.
    fn start(mut pipeline: Pipeline, path: &Path) -> Result<Self> {
        let (chunks, queue) = sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
        let failed = Arc::new(Mutex::new(None));
        let abandoned = Arc::new(AtomicBool::new(false));
        let (failed_in, abandoned_in) = (failed.clone(), abandoned.clone());
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("kastell-artifact".into())
            .spawn(move || {
                for chunk in queue {
                    if abandoned_in.load(Ordering::Relaxed) {
                        return Err(std::io::Error::other("artifact abandoned"));
                    }
                    if let Err(e) = pipeline.write_all(&chunk) {
                        let message =
                            format!("writing the local backup file {}: {e}", path.display());
                        *failed_in.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((e.kind(), message));
                        return Err(e);
                    }
                }
                pipeline.finish()
            })
            .map_err(|e| Error::io("starting an artifact writer thread", e))?;
        Ok(Self {
            chunks: Some(chunks),
            thread: Some(thread),
            failed,
            abandoned,
        })
    }

    /// The error the thread stopped with, as the writer reports it.
    fn failure(&self) -> std::io::Error {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((kind, message)) => std::io::Error::new(*kind, message.clone()),
            None => std::io::Error::other("the artifact writer stopped"),
        }
    }

    /// Queues `data`; fails once the thread has failed.
    fn write(&self, data: &[u8]) -> std::io::Result<()> {
        if self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return Err(self.failure());
        }
        match &self.chunks {
            Some(chunks) => chunks.send(data.to_vec()).map_err(|_| self.failure()),
            None => Err(std::io::Error::other("artifact already sealed")),
        }
    }

    /// Ends the stream and waits for the thread: size and SHA-256 of the
    /// stored file, flushed and fsynced.
    fn finish(mut self) -> std::io::Result<(u64, String)> {
        drop(self.chunks.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the artifact writer thread panicked")),
            None => Err(std::io::Error::other("artifact already sealed")),
        }
    }
}

impl Drop for Worker {
    /// An artifact never sealed: the thread stops at its next chunk and is
    /// waited for, so its file is closed before the staging directory goes.
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Relaxed);
        drop(self.chunks.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

type Slot = Arc<Mutex<Option<Worker>>>;

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Worker>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writer handed to a platform for one artifact.
struct ArtifactWriter {
    slot: Slot,
}

impl Write for ArtifactWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match lock(&self.slot).as_ref() {
            Some(worker) => worker.write(data).map(|()| data.len()),
            None => Err(std::io::Error::other("artifact already sealed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Open {
    spec: ArtifactSpec,
    slot: Slot,
}

/// A backup in a hidden staging directory next to where it will be
/// published. Files are created 0600 and the directory 0700.
pub struct Staging {
    dir: PathBuf,
    final_dir: PathBuf,
    compression: Compression,
    open: BTreeMap<String, Open>,
    sealed: Vec<ArtifactRecord>,
    published: bool,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name != MANIFEST_FILE
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn private_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", path.display()), e))
}

impl Staging {
    /// Starts staging backup `id` inside `server_dir` (created 0700).
    pub fn create(server_dir: &Path, id: &BackupId, compression: Compression) -> Result<Self> {
        private_dir(server_dir)?;
        let final_dir = server_dir.join(id.as_str());
        if final_dir.exists() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("backup {id} already exists"),
            ));
        }
        static SEQUENCE: AtomicU64 = AtomicU64::new(0);
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let dir = server_dir.join(format!("{STAGING_PREFIX}{id}-{n}-{}", std::process::id()));
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Self {
            dir,
            final_dir,
            compression,
            open: BTreeMap::new(),
            sealed: Vec::new(),
            published: false,
        })
    }

    /// The staging directory (hidden from listings).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifacts sealed so far.
    pub fn sealed(&self) -> &[ArtifactRecord] {
        &self.sealed
    }

    /// Writes `manifest` (0600, fsynced) and renames the staging directory
    /// to its final name, then fsyncs the parent. Refuses while an artifact
    /// is still open or when nothing was sealed.
    pub fn publish(mut self, mut manifest: Manifest) -> Result<PathBuf> {
        if let Some(name) = self.open.keys().next() {
            return Err(Error::invalid_state(format!(
                "artifact {name} was opened but never sealed"
            )));
        }
        if self.sealed.is_empty() {
            return Err(Error::invalid_state("the backup produced no artifacts"));
        }
        manifest.artifacts = self.sealed.clone();
        manifest.files = self.sealed.iter().map(stored_file).collect();
        manifest.compression = self.compression;
        let path = self.dir.join(MANIFEST_FILE);
        let bytes = manifest.to_json()?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        sync_dir(&self.dir)?;
        fs::rename(&self.dir, &self.final_dir)
            .map_err(|e| Error::io(format!("publishing {}", self.final_dir.display()), e))?;
        self.published = true;
        if let Some(parent) = self.final_dir.parent() {
            sync_dir(parent)?;
        }
        Ok(self.final_dir.clone())
    }
}

impl ArtifactSink for Staging {
    fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>> {
        if !valid_artifact_name(&spec.name) {
            return Err(Error::invalid_input(format!(
                "artifact name {:?} is not a plain file name",
                spec.name
            )));
        }
        if self.open.contains_key(&spec.name) || self.sealed.iter().any(|r| r.name == spec.name) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("artifact {} was already written", spec.name),
            ));
        }
        let record_name = ArtifactRecord {
            name: spec.name.clone(),
            format: spec.format,
            compression: self.compression,
            size: 0,
            sha256: String::new(),
        };
        let path = self.dir.join(stored_file(&record_name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let hashing = HashingFile {
            file: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            size: 0,
        };
        let pipeline = match self.compression {
            Compression::Zstd => Pipeline::Zstd(Box::new(zstd_encoder(hashing)?)),
            Compression::None => Pipeline::Plain(hashing),
            Compression::Gzip => {
                return Err(Error::unsupported(
                    "kastell writes zstd or uncompressed artifacts, not gzip",
                ));
            }
        };
        let slot: Slot = Arc::new(Mutex::new(Some(Worker::start(pipeline, &path)?)));
        self.open.insert(
            spec.name.clone(),
            Open {
                spec: spec.clone(),
                slot: slot.clone(),
            },
        );
        Ok(Box::new(ArtifactWriter { slot }))
    }

    fn seal(&mut self, name: &str) -> Result<ArtifactRecord> {
        let open = self
            .open
            .remove(name)
            .ok_or_else(|| Error::not_found(format!("artifact {name} was never opened")))?;
        if Arc::strong_count(&open.slot) > 1 {
            let message = format!("artifact {name} is still being written");
            self.open.insert(name.to_owned(), open);
            return Err(Error::invalid_state(message));
        }
        let worker = lock(&open.slot)
            .take()
            .ok_or_else(|| Error::invalid_state(format!("artifact {name} was already sealed")))?;
        let (size, sha256) = worker
            .finish()
            .map_err(|e| Error::io(format!("finishing artifact {name}"), e))?;
        let record = ArtifactRecord {
            name: name.to_owned(),
            format: open.spec.format,
            compression: self.compression,
            size,
            sha256,
        };
        self.sealed.push(record.clone());
        Ok(record)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Writers of unsealed artifacts stop first, so no file is still
        // being written when the directory goes.
        self.open.clear();
        if !self.published {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                tracing::warn!(
                    "could not remove unfinished backup {}: {e}",
                    self.dir.display()
                );
            }
        }
    }
}

/// Removes staging directories left by processes that no longer run (a
/// killed backup), so nothing half-written stays behind.
pub fn sweep_abandoned(server_dir: &Path) {
    let Ok(entries) = fs::read_dir(server_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(STAGING_PREFIX) else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
        let alive = pid
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::types::ArtifactFormat;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn spec(name: &str) -> ArtifactSpec {
        ArtifactSpec {
            name: name.into(),
            format: ArtifactFormat::Raw,
        }
    }

    fn manifest() -> Manifest {
        serde_json::from_str(r#"{"serverName":"s","timestamp":"t"}"#).unwrap()
    }

    #[test]
    fn sealed_artifacts_are_hashed_compressed_private_and_published_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let id = BackupId::new("2026-01-01_00-00-00-000").unwrap();
        let mut staging = Staging::create(tmp.path(), &id, Compression::Zstd).unwrap();
        let data = vec![7u8; 300_000];
        let mut w = staging.open(&spec("db.dump")).unwrap();
        w.write_all(&data).unwrap();
        assert!(staging.seal("db.dump").is_err(), "still open");
        drop(w);
        let record = staging.seal("db.dump").unwrap();
        let stored = fs::read(staging.dir().join("db.dump.zst")).unwrap();
        assert_eq!(record.size, stored.len() as u64);
        assert!(record.size < 10_000, "compressed");
        let digest: String = Sha256::digest(&stored)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(record.sha256, digest);
        let mut back = Vec::new();
        zstd::stream::read::Decoder::new(&stored[..])
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let mode = fs::metadata(staging.dir().join("db.dump.zst"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        assert!(
            !tmp.path().join(id.as_str()).exists(),
            "invisible until published"
        );
        let dir = staging.publish(manifest()).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let m = Manifest::read(&dir).unwrap();
        assert_eq!(m.files, vec!["db.dump.zst"]);
        assert_eq!(m.artifacts[0].sha256, record.sha256);
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the published backup remains");
    }

    #[test]
    fn an_abandoned_backup_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let id = BackupId::new("2026-01-01_00-00-00-001").unwrap();
        {
            let mut staging = Staging::create(tmp.path(), &id, Compression::None).unwrap();
            let mut w = staging.open(&spec("half")).unwrap();
            w.write_all(b"half of it").unwrap();
        }
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);

        let leftover = tmp.path().join(format!("{STAGING_PREFIX}{id}-999999999"));
        fs::create_dir(&leftover).unwrap();
        let mine = tmp
            .path()
            .join(format!("{STAGING_PREFIX}{id}-7-{}", std::process::id()));
        fs::create_dir(&mine).unwrap();
        sweep_abandoned(tmp.path());
        assert!(!leftover.exists(), "a dead process's staging dir is swept");
        assert!(mine.exists(), "a live process's staging dir is kept");
    }

    #[test]
    fn refuses_bad_names_duplicates_and_empty_backups() {
        let tmp = tempfile::tempdir().unwrap();
        let id = BackupId::new("x1").unwrap();
        let mut staging = Staging::create(tmp.path(), &id, Compression::None).unwrap();
        for bad in ["../x", ".hidden", "manifest.json", "a/b", ""] {
            assert!(staging.open(&spec(bad)).is_err(), "{bad:?}");
        }
        let w = staging.open(&spec("a")).unwrap();
        assert!(staging.open(&spec("a")).is_err());
        drop(w);
        let second = Staging::create(tmp.path(), &id, Compression::None);
        assert!(
            second.is_ok(),
            "a second staging of the same id is allowed until one publishes"
        );
        let empty =
            Staging::create(tmp.path(), &BackupId::new("x2").unwrap(), Compression::None).unwrap();
        assert!(empty.publish(manifest()).is_err());
    }
}
