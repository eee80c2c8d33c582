//! A backup being written: a hidden staging directory that implements
//! [`ArtifactSink`] and becomes a listed backup only through
//! [`Staging::publish`], one atomic rename once every artifact is sealed.
//! Dropping an unpublished staging directory removes it.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use kastell_core::types::{
    AppData, AppSelection, ArtifactRecord, ArtifactSink, ArtifactSpec, BackupId, Compression,
};
use kastell_core::wire::{DumpJobs, WireCodec, WirePlan, WireTransfer};
use kastell_core::{Error, ErrorKind, Result};

use super::layout::STAGING_PREFIX;
use super::manifest::{
    ContentDigest, MANIFEST_FILE, Manifest, is_plain_artifact_name, stored_file,
};
use super::pipeline::{self, Chunks, HashingFile, LocalZstd, Stored, is_disk_error};
use super::tap::Tap;

/// Chunks waiting for an artifact's writer thread, at most: the thread
/// reading from the server runs this far ahead of the disk, no further.
const QUEUED_CHUNKS: usize = 8;

/// An artifact's [`pipeline`] (decoding, compression, hashing, the file) running on
/// its own thread, fed over a bounded channel: the thread reading from the
/// server only hands chunks over, and a failed write (a full disk) is seen
/// at the next chunk.
struct Worker {
    chunks: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<std::io::Result<Stored>>>,
    /// The first write error, for the writer to report.
    failed: Arc<Mutex<Option<(std::io::ErrorKind, String)>>>,
    /// Set when the artifact is abandoned: the thread stops writing.
    abandoned: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the thread that decodes `codec`, stores with `compression`
    /// (zstd as `local` says) into `file`, copies the decoded bytes into
    /// `tap` and names `path` in errors.
    fn start(
        codec: WireCodec,
        compression: Compression,
        local: LocalZstd,
        file: HashingFile,
        tap: Tap,
        path: &Path,
    ) -> Result<Self> {
        let (chunks, queue) = sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
        let failed = Arc::new(Mutex::new(None));
        let abandoned = Arc::new(AtomicBool::new(false));
        let (failed_in, abandoned_in) = (failed.clone(), abandoned.clone());
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("kastell-artifact".into())
            .spawn(move || {
                let input = Chunks::new(queue, abandoned_in.clone());
                let result = pipeline::run(input, codec, compression, local, file, tap);
                if let Err(e) = &result {
                    if !abandoned_in.load(Ordering::Relaxed) {
                        let message = if is_disk_error(e) {
                            e.to_string()
                        } else {
                            format!(
                                "the {codec} stream for {} did not decode: {e}",
                                path.display()
                            )
                        };
                        *failed_in.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some((e.kind(), message));
                    }
                }
                result
            })
            .map_err(|e| Error::io("starting an artifact writer thread", e))?;
        Ok(Self {
            chunks: Some(chunks),
            thread: Some(thread),
            failed,
            abandoned,
        })
    }

    /// The error the thread stopped with, as the writer reports it. The
    /// thread lets go of the queue a moment before it records its error,
    /// so a send that found the queue closed waits (briefly) for the thread
    /// to end first: the user sees "File too large", not that a writer
    /// stopped.
    fn failure(&self) -> std::io::Error {
        if let Some(thread) = &self.thread {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
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
    /// stored file, flushed and fsynced, and the uncompressed size.
    fn finish(mut self) -> std::io::Result<Stored> {
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

/// The writer handed to a platform for one artifact; it counts the bytes
/// that came over the wire.
struct ArtifactWriter {
    slot: Slot,
    received: Arc<AtomicU64>,
}

impl Write for ArtifactWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match lock(&self.slot).as_ref() {
            Some(worker) => worker.write(data).map(|()| {
                self.received
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                data.len()
            }),
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
    codec: WireCodec,
    reason: String,
    received: Arc<AtomicU64>,
    opened: Instant,
}

/// A backup in a hidden staging directory next to where it will be
/// published. Files are created 0600 and the directory 0700.
pub struct Staging {
    dir: PathBuf,
    final_dir: PathBuf,
    compression: Compression,
    wire: WirePlan,
    jobs: DumpJobs,
    /// Whether the platform asked how many dump jobs it may use (one
    /// whose backup has no database dump never does).
    jobs_asked: AtomicBool,
    apps: AppSelection,
    open: BTreeMap<String, Open>,
    sealed: Vec<ArtifactRecord>,
    transfers: Vec<WireTransfer>,
    /// Each sealed artifact's bytes before compression.
    contents: Vec<ContentDigest>,
    /// The repository stream each artifact is also copied into, if any.
    stream: Option<Arc<kastell_repo::StreamWriter>>,
    published: bool,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
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
            wire: WirePlan::default(),
            jobs: DumpJobs::Auto,
            jobs_asked: AtomicBool::new(false),
            apps: AppSelection::default(),
            open: BTreeMap::new(),
            sealed: Vec::new(),
            transfers: Vec::new(),
            contents: Vec::new(),
            stream: None,
            published: false,
        })
    }

    /// Carries `plan` to the platform (default: raw bytes on the wire):
    /// its artifacts are compressed on the server as the plan says.
    pub fn with_wire(mut self, plan: WirePlan) -> Self {
        self.wire = plan;
        self
    }

    /// Copies each artifact's decoded bytes into `writer` as it streams in
    /// (see `tap`): the one-pass repository backup.
    pub fn with_stream(mut self, writer: Option<Arc<kastell_repo::StreamWriter>>) -> Self {
        self.stream = writer;
        self
    }

    /// Where artifact `name`'s decoded bytes are copied: an entry of the
    /// repository stream, if there is one and it takes the entry (else
    /// the stream is marked failed and writes no snapshot).
    fn tap(&self, name: &str) -> Tap {
        let Some(writer) = &self.stream else {
            return Tap::default();
        };
        match writer.entry(name) {
            Ok(entry) => Tap::into_entry(entry),
            Err(e) => {
                writer.fail(e);
                Tap::default()
            }
        }
    }

    /// Lets a database dump use `jobs` parallel jobs (default: `auto`).
    pub fn with_dump_jobs(mut self, jobs: DumpJobs) -> Self {
        self.jobs = jobs;
        self
    }

    /// Backs up only the apps `apps` selects (default: every app).
    pub fn with_apps(mut self, apps: AppSelection) -> Self {
        self.apps = apps;
        self
    }

    /// Whether the platform asked how many dump jobs it may use: when it
    /// did not, a number given with `--jobs` was not used.
    pub fn dump_jobs_asked(&self) -> bool {
        self.jobs_asked.load(Ordering::Relaxed)
    }

    /// How each sealed artifact came over the wire.
    pub fn transfers(&self) -> &[WireTransfer] {
        &self.transfers
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
    pub fn publish(self, manifest: Manifest) -> Result<PathBuf> {
        self.publish_manifest(manifest).map(|(path, _)| path)
    }

    /// [`Staging::publish`], returning the manifest as written too (with
    /// the artifacts, files and wire records filled in), so the caller
    /// need not read back what was just written.
    pub fn publish_manifest(mut self, mut manifest: Manifest) -> Result<(PathBuf, Manifest)> {
        if let Some(name) = self.open.keys().next() {
            return Err(Error::invalid_state(format!(
                "artifact {name} was opened but never sealed"
            )));
        }
        if self.sealed.is_empty() {
            return Err(Error::invalid_state("the backup produced no artifacts"));
        }
        // Which app an artifact belongs to comes from the sink
        // (assign_app) or, for a copy (a pull), from the manifest given.
        let mut sealed = self.sealed.clone();
        for record in sealed.iter_mut().filter(|r| r.app.is_none()) {
            record.app = manifest
                .artifacts
                .iter()
                .find(|given| given.name == record.name)
                .and_then(|given| given.app.clone());
        }
        manifest.artifacts = sealed;
        manifest.files = self.sealed.iter().map(stored_file).collect();
        manifest.compression = self.compression;
        manifest.wire = self.transfers.clone();
        manifest.content = self.contents.clone();
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
        Ok((self.final_dir.clone(), manifest))
    }
}

#[deny(clippy::missing_trait_methods)]
impl ArtifactSink for Staging {
    fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>> {
        self.open_encoded(spec, WireCodec::Raw, "")
    }

    fn wire(&self) -> &WirePlan {
        &self.wire
    }

    fn dump_jobs(&self) -> DumpJobs {
        self.jobs_asked.store(true, Ordering::Relaxed);
        self.jobs
    }

    fn apps(&self) -> &AppSelection {
        &self.apps
    }

    fn assign_app(&mut self, name: &str, app: &AppData) -> Result<ArtifactRecord> {
        app.check()?;
        let record = self
            .sealed
            .iter_mut()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::not_found(format!("artifact {name} was never sealed")))?;
        record.app = Some(app.clone());
        Ok(record.clone())
    }

    fn open_encoded(
        &mut self,
        spec: &ArtifactSpec,
        codec: WireCodec,
        reason: &str,
    ) -> Result<Box<dyn Write + Send>> {
        if !is_plain_artifact_name(&spec.name) {
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
            app: None,
        };
        let path = self.dir.join(stored_file(&record_name));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        if self.compression == Compression::Gzip {
            return Err(Error::unsupported(
                "kastell writes zstd or uncompressed artifacts, not gzip",
            ));
        }
        let hashing = HashingFile::new(file, &path);
        let local = LocalZstd::at(self.wire.local_level);
        let tap = self.tap(&spec.name);
        let worker = Worker::start(codec, self.compression, local, hashing, tap, &path)?;
        let slot: Slot = Arc::new(Mutex::new(Some(worker)));
        let received = Arc::new(AtomicU64::new(0));
        self.open.insert(
            spec.name.clone(),
            Open {
                spec: spec.clone(),
                slot: slot.clone(),
                codec,
                reason: reason.to_owned(),
                received: received.clone(),
                opened: Instant::now(),
            },
        );
        Ok(Box::new(ArtifactWriter { slot, received }))
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
        let stored = worker
            .finish()
            .map_err(|e| Error::io(format!("finishing artifact {name}"), e))?;
        let record = ArtifactRecord {
            name: name.to_owned(),
            format: open.spec.format,
            compression: self.compression,
            size: stored.size,
            sha256: stored.sha256,
            app: None,
        };
        self.transfers.push(WireTransfer {
            artifact: name.to_owned(),
            codec: open.codec,
            stored: self.compression,
            bytes_on_wire: open.received.load(Ordering::Relaxed),
            bytes_uncompressed: stored.uncompressed,
            millis: u64::try_from(open.opened.elapsed().as_millis()).unwrap_or(u64::MAX),
            reason: open.reason,
        });
        self.contents.push(ContentDigest {
            name: name.to_owned(),
            size: stored.uncompressed,
            sha256: stored.content_sha256,
        });
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
        if is_abandoned(&entry.file_name().to_string_lossy()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `name` is a staging directory's whose process (the pid its
/// name ends with) no longer runs: what a killed backup or prune left.
pub fn is_abandoned(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(STAGING_PREFIX) else {
        return false;
    };
    let pid = rest.rsplit('-').next().and_then(|p| p.parse::<i32>().ok());
    let alive = pid
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
    !alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::types::ArtifactFormat;
    use sha2::{Digest, Sha256};
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
        // The bytes before compression, hashed as they streamed in.
        let content: String = Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            m.content,
            vec![ContentDigest {
                name: "db.dump".into(),
                size: data.len() as u64,
                sha256: content,
            }]
        );
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
