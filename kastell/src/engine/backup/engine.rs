//! The backup engine: create, list, verify and restore backups of one
//! server, one operation per server at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kastell_core::types::{
    AppSelection, ArtifactSource, BackupId, BackupReport, Compression, HealthWait, ScopedSource,
    StepReport, StepStatus, StepTimer,
};
use kastell_core::wire::{CompressMode, DumpJobs};
use kastell_core::{Error, ErrorKind, Platform, PlatformExt, PollSchedule, Result, Transport};

use super::layout::{BackupLayout, STAGING_PREFIX};
use super::manifest::{FORMAT_VERSION, MANIFEST_FILE, Manifest};
use super::restore_steps::{RestoreHealth, nothing_changed, stop_restore_start};
use super::staging::{Staging, sweep_abandoned};
use super::stored::{BackupStatus, StoredBackup, VerifiedSource};
use super::transfer::{ObservedSink, TransferProgress};
use super::wire;
use crate::state::HostLock;
use crate::state::store::{MODE_BARE, ServerRecord, stored_platform};

/// What to back up, and what to record about it.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The server.
    pub server: ServerRecord,
    /// Its platform, over a connection to it.
    pub platform: Arc<dyn Platform>,
    /// The connection the platform uses: the engine probes the host's
    /// compressors and samples the link over it before the backup, and
    /// hands the plan to the platform on the sink.
    pub transport: Arc<dyn Transport>,
    /// The SSH host key fingerprint of the connection, for the manifest.
    pub host_key: Option<String>,
    /// Told how many bytes of each artifact arrived so far (the default:
    /// nobody).
    pub transfer: TransferProgress,
}

/// A published backup.
#[derive(Debug, Clone)]
pub struct CreatedBackup {
    /// Its id.
    pub id: BackupId,
    /// Its directory.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// What the platform reported.
    pub report: BackupReport,
    /// How long the platform's backup took (probe, dumps, archives).
    pub elapsed: Duration,
}

/// What to restore.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The server to restore onto.
    pub server: ServerRecord,
    /// Its platform, over a connection to it.
    pub platform: Arc<dyn Platform>,
    /// The connection the platform uses: the engine asks the host whether
    /// it can decompress zstd (and plans the safety backup) over it.
    pub transport: Arc<dyn Transport>,
    /// The backup to restore.
    pub backup_id: BackupId,
    /// Take a backup of the current state first (default: yes).
    pub safety_backup: bool,
    /// The SSH host key of the connection, for the safety backup's manifest.
    pub host_key: Option<String>,
    /// How long to wait for the platform to be healthy afterwards.
    pub health_deadline: Duration,
    /// Told how many bytes of each artifact were sent so far, and of the
    /// safety backup's artifacts received (the default: nobody).
    pub transfer: TransferProgress,
}

/// How a restore went: every step, warnings, the safety backup taken, and
/// the error that stopped it, if any.
#[derive(Debug)]
pub struct RestoreOutcome {
    /// The backup restored.
    pub backup_id: BackupId,
    /// Each step, in order.
    pub steps: Vec<StepReport>,
    /// Things the user should know (legacy backup, other server).
    pub warnings: Vec<String>,
    /// The backup of the state before the restore.
    pub safety_backup: Option<BackupId>,
    /// Why it failed.
    pub error: Option<Error>,
}

impl RestoreOutcome {
    /// Whether every step succeeded.
    pub fn success(&self) -> bool {
        self.error.is_none() && self.steps.iter().all(|s| s.status != StepStatus::Failure)
    }
}

/// Creates, lists, verifies and restores backups under one kastell
/// directory.
#[derive(Debug, Clone)]
pub struct BackupEngine {
    layout: BackupLayout,
    compression: Compression,
    compress: CompressMode,
    jobs: DumpJobs,
    apps: AppSelection,
    health: RestoreHealth,
    /// The repository stream artifacts are also copied into, if any.
    stream: Option<Arc<kastell_repo::StreamWriter>>,
}

impl BackupEngine {
    /// An engine for `<kastell_dir>/backups`, compressing with zstd.
    pub fn new(kastell_dir: &Path) -> Self {
        Self {
            layout: BackupLayout::new(kastell_dir),
            compression: Compression::Zstd,
            compress: CompressMode::Auto,
            jobs: DumpJobs::Auto,
            apps: AppSelection::default(),
            health: RestoreHealth::default(),
            stream: None,
        }
    }

    /// Copies each artifact's decoded bytes into `writer` as it streams in
    /// (the one-pass repository backup); the stored backup is unchanged.
    pub fn with_stream(mut self, writer: Option<Arc<kastell_repo::StreamWriter>>) -> Self {
        self.stream = writer;
        self
    }

    /// Checks the platform after a restore as `health` says (default:
    /// the request's deadline, ending after a grace of refused
    /// connections).
    pub fn with_restore_health(mut self, health: RestoreHealth) -> Self {
        self.health = health;
        self
    }

    /// Stores artifacts with `compression` (`None` or `Zstd`).
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Compresses where `mode` says: `none` also stores uncompressed;
    /// `auto` (the default), `server` and `local` store zstd.
    pub fn with_compress_mode(mut self, mode: CompressMode) -> Self {
        self.compress = mode;
        if mode == CompressMode::None {
            self.compression = Compression::None;
        } else if self.compression == Compression::None {
            self.compression = Compression::Zstd;
        }
        self
    }

    /// Lets database dumps use `jobs` parallel jobs (default: `auto`, the
    /// platform decides; `1` never writes on the server).
    pub fn with_dump_jobs(mut self, jobs: DumpJobs) -> Self {
        self.jobs = jobs;
        self
    }

    /// Covers only the apps `apps` selects (default: every app): a backup
    /// holds only their data besides the platform's own; a restore puts
    /// back every app's data but those left out or, when only some are
    /// named ([`AppSelection::is_only`]), only theirs, in place, the
    /// platform neither stopped nor its own data touched, after a safety
    /// backup of just those apps.
    pub fn with_apps(mut self, apps: AppSelection) -> Self {
        self.apps = apps;
        self
    }

    /// Backs the server up: plans where compression runs (probing the
    /// host and the link for `auto` and `server`), streams every artifact
    /// into a staging directory and publishes it only when all are sealed.
    /// A failure leaves nothing behind. Waits while another operation
    /// holds the server. Reports the bytes received to the request's
    /// `transfer`.
    pub async fn create(&self, request: &BackupRequest) -> Result<CreatedBackup> {
        let server_dir = self.layout.server_dir(&request.server.name)?;
        let _lock = HostLock::acquire_async(&server_dir).await?;
        self.create_locked(request, None, &self.apps).await
    }

    /// Backs the server up as the safety backup of a restore about to put
    /// back `restoring` (marked so, never picked as the newest), with the
    /// server's lock held while it runs: the whole server, or only the
    /// apps this engine restores in place ([`Self::with_apps`]). A restore
    /// that takes its safety copy itself (to store it in a repository
    /// first) calls this, then [`Self::restore`] without a safety backup.
    /// A failure says nothing on the server was changed.
    pub async fn create_safety(
        &self,
        request: &BackupRequest,
        restoring: &BackupId,
    ) -> Result<CreatedBackup> {
        let server_dir = self.layout.server_dir(&request.server.name)?;
        let _lock = HostLock::acquire_async(&server_dir).await?;
        self.create_locked(request, Some(restoring), &self.safety_apps())
            .await
            .map_err(nothing_changed)
    }

    /// What a restore's safety backup covers: the apps restored in place
    /// when only some are, else the whole server.
    fn safety_apps(&self) -> AppSelection {
        if self.apps.is_only() {
            self.apps.clone()
        } else {
            AppSelection::default()
        }
    }

    /// [`BackupEngine::create`] by a caller that already holds the
    /// server's lock (`held`, taken with [`HostLock::try_acquire_async`])
    /// and keeps it for work after the backup, so nothing else gets in
    /// between: `maintain` backs up before its update this way. Refuses a
    /// lock of another server's directory without backing anything up.
    pub async fn create_held(
        &self,
        request: &BackupRequest,
        held: &HostLock,
    ) -> Result<CreatedBackup> {
        let server_dir = self.layout.server_dir(&request.server.name)?;
        if !held.guards(&server_dir) {
            return Err(Error::unexpected(format!(
                "the lock held is not server {}'s",
                request.server.name
            )));
        }
        self.create_locked(request, None, &self.apps).await
    }

    /// Backs up with the server's lock held; `safety_for` names the backup
    /// a restore is about to put back when this is its safety backup.
    async fn create_locked(
        &self,
        request: &BackupRequest,
        safety_for: Option<&BackupId>,
        apps: &AppSelection,
    ) -> Result<CreatedBackup> {
        let server_dir = self.layout.server_dir(&request.server.name)?;
        sweep_abandoned(&server_dir);
        let id = fresh_id(&server_dir).await;
        let started = Instant::now();
        let last_bytes = self.last_backup_bytes(&request.server.name);
        let plan = wire::plan(request.transport.as_ref(), self.wire_mode(), last_bytes).await;
        let mut staging = Staging::create(&server_dir, &id, self.compression)?
            .with_wire(plan.clone())
            .with_dump_jobs(self.jobs)
            .with_apps(apps.clone())
            .with_stream(self.stream.clone());
        let mut sink = ObservedSink::new(&mut staging, request.transfer.clone());
        let mut report = request.platform.backup(&mut sink).await?;
        drop(sink);
        let elapsed = started.elapsed();
        if let (DumpJobs::Exactly(n), false) = (self.jobs, staging.dump_jobs_asked()) {
            report
                .warnings
                .push(unused_jobs(n, request.platform.info().display_name));
        }
        if let Some(warning) = plan.warning {
            if !report.warnings.contains(&warning) {
                report.warnings.insert(0, warning);
            }
        }
        let manifest = self.manifest_for(request, &id, &report, safety_for);
        let (path, manifest) = staging.publish_manifest(manifest)?;
        Ok(CreatedBackup {
            id,
            path,
            manifest,
            report,
            elapsed,
        })
    }

    /// How many bytes, uncompressed, the server's newest readable backup
    /// held (what its artifacts streamed in as, else their stored size);
    /// `None` when it has none, so the next backup measures the link.
    fn last_backup_bytes(&self, server: &str) -> Option<u64> {
        let listed = self.list(server).ok()?;
        let manifest = listed.into_iter().find_map(|b| b.manifest)?;
        if !manifest.content.is_empty() {
            return Some(manifest.content.iter().map(|c| c.size).sum());
        }
        if !manifest.wire.is_empty() {
            return Some(manifest.wire.iter().map(|w| w.bytes_uncompressed).sum());
        }
        None
    }

    /// Where compression may run for this engine's backups: nowhere when
    /// artifacts are stored uncompressed, else as asked.
    fn wire_mode(&self) -> CompressMode {
        if self.compression == Compression::None {
            CompressMode::None
        } else {
            self.compress
        }
    }

    fn manifest_for(
        &self,
        request: &BackupRequest,
        id: &BackupId,
        report: &BackupReport,
        safety_for: Option<&BackupId>,
    ) -> Manifest {
        let server = &request.server;
        // The original's form: a bare backup has a mode, no platform and
        // no platform version.
        let platform = stored_platform(request.platform.info().id).map(str::to_owned);
        Manifest {
            server_name: server.name.clone(),
            provider: server.provider.clone().unwrap_or_default(),
            timestamp: id.to_string(),
            platform_version: match platform {
                Some(_) => report.platform_version.clone(),
                None => "n/a".into(),
            },
            files: Vec::new(),
            mode: platform.is_none().then(|| MODE_BARE.to_owned()),
            platform,
            format_version: FORMAT_VERSION,
            kastell_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            server_id: Some(server.id.clone()),
            host_key: request.host_key.clone(),
            created_at: Some(
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
            compression: self.compression,
            // The staging fills these in as the artifacts stream.
            content: Vec::new(),
            // Which app each artifact belongs to (the staging keeps the
            // rest of the records its own).
            artifacts: report.artifacts.clone(),
            skipped: report.skipped.clone(),
            reason: safety_for.map(|restored| format!("safety backup before restoring {restored}")),
            safety_for: safety_for.map(ToString::to_string),
            wire: Vec::new(),
            pulled_from: None,
        }
    }

    /// The server's backups, newest first. Staging directories and
    /// directories without a manifest (interrupted backups of the original
    /// tool) are not backups and are not listed. An entry named like a
    /// backup that is a symbolic link (or holds a manifest that is not a
    /// regular file) is listed, as corrupt, and never followed.
    pub fn list(&self, server: &str) -> Result<Vec<StoredBackup>> {
        let dir = self.layout.server_dir(server)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        };
        let mut backups: Vec<StoredBackup> = entries
            .flatten()
            .filter(|e| is_backup_entry(&e.path()))
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(STAGING_PREFIX) {
                    return None;
                }
                BackupId::new(name)
                    .ok()
                    .map(|id| StoredBackup::load(id, e.path()))
            })
            .collect();
        backups.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(backups)
    }

    /// One backup of the server. `NotFound` (listing what exists) when
    /// there is no such backup.
    pub fn find(&self, server: &str, id: &BackupId) -> Result<StoredBackup> {
        let dir = self.layout.backup_dir(server, id)?;
        if is_backup_entry(&dir) {
            return Ok(StoredBackup::load(id.clone(), dir));
        }
        let known: Vec<String> = self
            .list(server)?
            .iter()
            .take(5)
            .map(|b| b.id.to_string())
            .collect();
        Err(
            Error::not_found(format!("backup {id} of server {server} not found")).with_hint(
                if known.is_empty() {
                    "This server has no backups yet; create one with backup-create".to_owned()
                } else {
                    format!("Newest backups: {}", known.join(", "))
                },
            ),
        )
    }

    /// The server's newest backup a restore picks when none is named: the
    /// newest that is not a safety backup (the state a restore replaced,
    /// which only its explicit id restores). `NotFound` when there is
    /// none, naming the safety backups when they are all there is.
    pub fn latest(&self, server: &str) -> Result<StoredBackup> {
        let listed = self.list(server)?;
        let safety: Vec<String> = listed
            .iter()
            .filter(|b| b.safety_for().is_some())
            .take(3)
            .map(|b| b.id.to_string())
            .collect();
        listed
            .into_iter()
            .find(|b| b.safety_for().is_none())
            .ok_or_else(|| {
                if safety.is_empty() {
                    Error::not_found(format!("server {server} has no backups"))
                        .with_hint("Create one with backup-create")
                } else {
                    Error::not_found(format!(
                        "server {server} has only safety backups (taken before a restore), which are never picked as the newest"
                    ))
                    .with_hint(format!(
                        "Name the one to restore explicitly ({}), or create a new backup with backup-create",
                        safety.join(", ")
                    ))
                }
            })
    }

    /// Recomputes the checksums of one backup; returns warnings (a legacy
    /// backup cannot be verified). Refuses a corrupt backup.
    pub fn verify(&self, server: &str, id: &BackupId) -> Result<Vec<String>> {
        self.find(server, id)?.verify()
    }

    /// Restores a backup onto the server. Nothing on the server is touched
    /// until the backup verified, matches the server's platform and a
    /// safety backup of the current state exists; once the platform was
    /// stopped it is started again whatever fails, even if the caller stops
    /// waiting. Never returns `Err`: the outcome carries the steps and error.
    /// Reports the bytes sent (and those of the safety backup received) to
    /// the request's `transfer`.
    pub async fn restore(&self, request: RestoreRequest) -> RestoreOutcome {
        let mut outcome = RestoreOutcome {
            backup_id: request.backup_id.clone(),
            steps: Vec::new(),
            warnings: Vec::new(),
            safety_backup: None,
            error: None,
        };
        if let Err(e) = self.restore_into(&request, &mut outcome).await {
            outcome.error = Some(e);
        }
        outcome
    }

    async fn restore_into(
        &self,
        request: &RestoreRequest,
        outcome: &mut RestoreOutcome,
    ) -> Result<()> {
        let server = &request.server.name;
        let server_dir = self.layout.server_dir(server)?;
        let waiting = StepTimer::start(format!("Wait for {server}'s lock"));
        let _lock = HostLock::acquire_async(&server_dir).await?;
        let waited = waiting.success("another operation on the server ended");
        // Only a wait worth telling is a step (the steps add up to the run).
        if waited.duration_ms >= LOCK_WAIT_SHOWN_MS {
            outcome.steps.push(waited);
        }

        let step = StepTimer::start("Verify backup");
        let source = match self.verified(server, &request.backup_id) {
            Ok((source, manifest, warnings)) => {
                outcome.warnings.extend(warnings);
                if manifest.server_name != *server {
                    outcome.warnings.push(format!(
                        "backup {} was taken from server {}, not {server}",
                        request.backup_id, manifest.server_name
                    ));
                }
                let theirs = manifest.platform_id().to_owned();
                let ours = request.platform.info().id;
                if theirs != ours {
                    let e = Error::invalid_input(format!(
                        "backup {} is a {theirs} backup; server {server} runs {ours}",
                        request.backup_id
                    ))
                    .with_hint("Restore a backup taken from a server of the same platform");
                    outcome.steps.push(step.failure(&e));
                    return Err(e);
                }
                // One probe, only when there is zstd to decompress on the
                // server (timed with the step: the steps add up to the run).
                let zstd = source
                    .records()
                    .iter()
                    .any(|r| r.compression == Compression::Zstd);
                let unzstd = zstd && wire::server_unzstd(request.transport.as_ref()).await;
                outcome.steps.push(step.success("checksums match"));
                source
                    .with_transfer(request.transfer.clone())
                    .with_server_unzstd(unzstd)
            }
            Err(e) => {
                outcome.steps.push(step.failure(&e));
                return Err(e);
            }
        };

        if request.safety_backup {
            let step = StepTimer::start("Safety backup");
            let backup = BackupRequest {
                server: request.server.clone(),
                platform: request.platform.clone(),
                transport: request.transport.clone(),
                host_key: request.host_key.clone(),
                transfer: request.transfer.clone(),
            };
            // An app restored in place: its state before, not the whole
            // server's.
            match self
                .create_locked(&backup, Some(&request.backup_id), &self.safety_apps())
                .await
            {
                Ok(created) => {
                    outcome
                        .steps
                        .push(step.success(format!("current state saved as {}", created.id)));
                    outcome.safety_backup = Some(created.id);
                }
                Err(e) => {
                    let e = nothing_changed(e);
                    outcome.steps.push(step.failure(&e));
                    return Err(e);
                }
            }
        }

        // The last safe point: once the platform is stopped, the restore
        // runs to its end and the platform is started again.
        if request.transfer.stop_requested() {
            let e = Error::new(
                ErrorKind::Cancelled,
                "Restore cancelled before the platform was stopped: nothing was changed on the server",
            )
            .with_hint("Call backup-restore again to restore; the safety backup (if taken) is kept");
            outcome.steps.push(StepReport::skipped(
                "Restore",
                "cancelled before it started",
            ));
            return Err(e);
        }

        // The stop → restore → start sequence runs as its own task: if the
        // caller is cancelled, the task still starts the platform again.
        let platform = request.platform.clone();
        let source = ScopedSource::new(source, self.apps.clone());
        let guarded = tokio::spawn(async move { stop_restore_start(platform, source).await });
        let (steps, result) = guarded
            .await
            .map_err(|e| Error::unexpected(format!("the restore task failed: {e}")))?;
        outcome.steps.extend(steps);
        result?;

        let wait = match &self.health {
            RestoreHealth::Default => HealthWait::new(request.health_deadline),
            RestoreHealth::Wait(wait) => *wait,
            RestoreHealth::Skip(why) => {
                outcome
                    .steps
                    .push(StepReport::skipped("Health check", why.clone()));
                return Ok(());
            }
        };
        let step = StepTimer::start("Health check");
        let schedule = PollSchedule::new(Duration::from_millis(200), Duration::from_secs(5));
        match request.platform.wait_healthy_with(wait, schedule).await {
            Ok(health) => outcome.steps.push(step.success(health.detail)),
            Err(e) => {
                let e = e.or_hint("The data was restored but the platform is not healthy yet; check it with server_info health");
                outcome.steps.push(step.failure(&e));
                return Err(e);
            }
        }
        Ok(())
    }

    fn verified(
        &self,
        server: &str,
        id: &BackupId,
    ) -> Result<(VerifiedSource, Manifest, Vec<String>)> {
        let stored = self.find(server, id)?;
        if stored.status == BackupStatus::Corrupt {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "backup {id} is corrupt: {}",
                    stored.problem.as_deref().unwrap_or("unreadable")
                ),
            )
            .with_hint("Nothing was changed on the server; restore another backup"));
        }
        let (source, warnings) = stored
            .source()
            .map_err(|e| e.or_hint("Nothing was changed on the server; restore another backup"))?;
        let manifest = stored
            .manifest
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "no manifest"))?;
        Ok((source, manifest, warnings))
    }
}

/// The least wait for a server's lock a restore reports as a step.
const LOCK_WAIT_SHOWN_MS: u64 = 100;

/// Why `--jobs n` did nothing: the platform's backup has no database dump
/// to run in parallel (bare servers, a platform that never asks).
fn unused_jobs(n: u16, platform: &str) -> String {
    format!(
        "--jobs {n} was not used: a {platform} backup has no database dump to run in parallel (--jobs applies to Coolify and Dokploy)"
    )
}

/// A backup id for now that no backup of this server has yet.
async fn fresh_id(server_dir: &Path) -> BackupId {
    loop {
        let id = BackupId::at(SystemTime::now());
        if !server_dir.join(id.as_str()).exists() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Whether `path` is a backup for listing: a symbolic link (listed as
/// corrupt, never followed), or a directory holding a `manifest.json` of
/// any kind (checked when it is read). Looks at links, never through them.
fn is_backup_entry(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => true,
        Ok(meta) if meta.is_dir() => std::fs::symlink_metadata(path.join(MANIFEST_FILE)).is_ok(),
        _ => false,
    }
}
