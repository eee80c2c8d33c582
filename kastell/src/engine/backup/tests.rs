//! Engine tests over the memory platform and transport.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::memory::Reply;
use kastell_core::memory::{MemoryPlatform, MemoryTransport};
use kastell_core::types::{
    ArtifactSink, ArtifactSource, BackupId, BackupReport, Health, PlatformInfo, RestoreReport,
    StepStatus, UpdateOptions, UpdateReport,
};
use kastell_core::wire::{CompressMode, WireCodec};
use kastell_core::{ArtifactSinkExt, ErrorKind, Platform, PlatformCapability, Result, Transport};

use super::*;
use crate::state::store::ServerRecord;

fn record(name: &str) -> ServerRecord {
    ServerRecord::new("manual-1", name, "203.0.113.10")
}

fn setup(data: &[u8]) -> (tempfile::TempDir, BackupEngine, Arc<MemoryPlatform>) {
    let tmp = tempfile::tempdir().unwrap();
    let engine = BackupEngine::new(tmp.path());
    let platform = Arc::new(MemoryPlatform::new(Arc::new(MemoryTransport::new())));
    platform.set_data(data, b"APP_KEY=base64:abc");
    (tmp, engine, platform)
}

/// A connection whose host answers nothing but the shell built-ins.
fn memory_host() -> Arc<dyn Transport> {
    Arc::new(MemoryTransport::new())
}

fn request(platform: &Arc<MemoryPlatform>, name: &str) -> BackupRequest {
    BackupRequest {
        server: record(name),
        platform: platform.clone(),
        transport: memory_host(),
        host_key: Some("SHA256:host".into()),
        transfer: TransferProgress::none(),
    }
}

fn restore_request(platform: Arc<dyn Platform>, name: &str, id: &BackupId) -> RestoreRequest {
    RestoreRequest {
        server: record(name),
        platform,
        transport: memory_host(),
        backup_id: id.clone(),
        safety_backup: true,
        host_key: None,
        transfer: TransferProgress::none(),
        health_deadline: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn create_list_verify() {
    let (tmp, engine, platform) = setup(b"rows v1");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    assert_eq!(created.manifest.server_name, "web-1");
    assert_eq!(created.manifest.platform.as_deref(), Some("memory"));
    assert_eq!(created.manifest.host_key.as_deref(), Some("SHA256:host"));
    assert_eq!(created.manifest.artifacts.len(), 2);
    assert!(created.manifest.files.iter().all(|f| f.ends_with(".zst")));
    for file in &created.manifest.files {
        let mode = std::fs::metadata(created.path.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let dir_mode = std::fs::metadata(&created.path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    let second = engine.create(&request(&platform, "web-1")).await.unwrap();
    let listed = engine.list("web-1").unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, second.id, "newest first");
    assert!(listed.iter().all(|b| b.status == BackupStatus::Complete));
    assert!(engine.verify("web-1", &created.id).unwrap().is_empty());
    assert!(engine.list("web-2").unwrap().is_empty());
    let hidden: Vec<_> = std::fs::read_dir(tmp.path().join("backups/web-1"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
        .collect();
    assert!(hidden.is_empty(), "no staging directory left");
}

#[tokio::test]
async fn corruption_is_detected_by_listing_and_verify() {
    let (_tmp, engine, platform) = setup(b"rows");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    let file = created.path.join(&created.manifest.files[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(
        engine.list("web-1").unwrap()[0].status,
        BackupStatus::Complete,
        "same size"
    );
    let err = engine.verify("web-1", &created.id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    std::fs::write(&file, b"short").unwrap();
    assert_eq!(
        engine.list("web-1").unwrap()[0].status,
        BackupStatus::Corrupt
    );
}

#[tokio::test]
async fn legacy_backups_list_as_unverified() {
    let (tmp, engine, _platform) = setup(b"");
    let dir = tmp.path().join("backups/web-1/2026-03-15_12-30-45-123");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(MANIFEST_FILE),
        r#"{"serverName":"web-1","provider":"hetzner","timestamp":"2026-03-15_12-30-45-123","coolifyVersion":"4.0.0","files":["coolify-backup.sql.gz"],"platform":"coolify"}"#,
    )
    .unwrap();
    std::fs::write(dir.join("coolify-backup.sql.gz"), b"gz").unwrap();
    // An interrupted backup of the original tool: no manifest, not listed.
    std::fs::create_dir_all(tmp.path().join("backups/web-1/2026-03-16_00-00-00-000")).unwrap();
    let listed = engine.list("web-1").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, BackupStatus::UnverifiedLegacy);
    let id = BackupId::new("2026-03-15_12-30-45-123").unwrap();
    let warnings = engine.verify("web-1", &id).unwrap();
    assert!(warnings[0].contains("cannot be verified"));
}

#[tokio::test]
async fn restore_round_trip_with_safety_backup() {
    let (_tmp, engine, platform) = setup(b"rows v1");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    platform.set_data(b"rows v2", b"APP_KEY=changed");
    let outcome = engine
        .restore(restore_request(platform.clone(), "web-1", &created.id))
        .await;
    assert!(outcome.success(), "{:?}", outcome);
    assert_eq!(platform.data().0, b"rows v1");
    assert!(platform.is_running());
    assert_eq!(platform.events(), vec!["stop", "restore", "start"]);
    let names: Vec<&str> = outcome.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Verify backup",
            "Safety backup",
            "Stop Memory",
            "Restore database",
            "Restore config",
            "Start Memory",
            "Health check"
        ]
    );
    // The safety backup holds the state from before the restore.
    let safety = outcome.safety_backup.unwrap();
    let stored = engine.find("web-1", &safety).unwrap();
    assert!(
        stored
            .manifest
            .unwrap()
            .reason
            .unwrap()
            .contains(created.id.as_str())
    );
}

#[tokio::test]
async fn a_corrupt_backup_is_refused_before_anything_is_stopped() {
    let (_tmp, engine, platform) = setup(b"rows");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    let file = created.path.join(&created.manifest.files[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();
    let outcome = engine
        .restore(restore_request(platform.clone(), "web-1", &created.id))
        .await;
    assert!(!outcome.success());
    assert_eq!(outcome.error.as_ref().unwrap().kind(), ErrorKind::Corrupt);
    assert!(platform.events().is_empty(), "the platform was not touched");
    assert_eq!(outcome.steps.len(), 1);
    assert!(outcome.safety_backup.is_none());
}

#[tokio::test]
async fn a_failure_after_the_stop_still_starts_the_platform() {
    let (_tmp, engine, platform) = setup(b"rows");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    platform.fail_next_restore("pg_restore: error: relation exists");
    let outcome = engine
        .restore(restore_request(platform.clone(), "web-1", &created.id))
        .await;
    assert!(!outcome.success());
    assert!(
        platform.is_running(),
        "started again after the failed restore"
    );
    assert_eq!(platform.events(), vec!["stop", "start"]);
    let last = outcome.steps.last().unwrap();
    assert_eq!(last.name, "Start Memory");
    assert_eq!(last.status, StepStatus::Success);
    assert!(
        outcome
            .steps
            .iter()
            .any(|s| s.status == StepStatus::Failure)
    );
}

#[tokio::test]
async fn a_backup_of_another_platform_is_refused() {
    let (_tmp, engine, platform) = setup(b"rows");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    let mut renamed = TestPlatform::new(platform.clone());
    renamed.id = "other";
    let other: Arc<dyn Platform> = Arc::new(renamed);
    let outcome = engine
        .restore(restore_request(other, "web-1", &created.id))
        .await;
    assert_eq!(
        outcome.error.as_ref().unwrap().kind(),
        ErrorKind::InvalidInput
    );
    assert!(platform.events().is_empty());
}

#[tokio::test]
async fn a_backup_from_another_server_warns() {
    let (_tmp, engine, platform) = setup(b"rows");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    // Copy web-1's backup under web-2, as a user moving backups would.
    let target = created
        .path
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("web-2")
        .join(created.id.as_str());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(&created.path, &target).unwrap();
    let outcome = engine
        .restore(restore_request(platform.clone(), "web-2", &created.id))
        .await;
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("taken from server web-1"))
    );
}

#[tokio::test]
async fn a_failed_backup_leaves_nothing_listed_or_staged() {
    let (tmp, engine, _platform) = setup(b"");
    let mut failing = TestPlatform::new(_platform.clone());
    failing.fail_backup = true;
    let failing: Arc<dyn Platform> = Arc::new(failing);
    let err = engine
        .create(&BackupRequest {
            server: record("web-1"),
            platform: failing,
            transport: memory_host(),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(engine.list("web-1").unwrap().is_empty());
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("backups/web-1"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn cancelling_a_restore_still_starts_the_platform() {
    let (_tmp, engine, platform) = setup(b"rows");
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    let mut slow = TestPlatform::new(platform.clone());
    slow.restore_delay = Duration::from_millis(300);
    let slow = Arc::new(slow);
    let mut req = restore_request(slow.clone(), "web-1", &created.id);
    req.safety_backup = false;
    let task = tokio::spawn(async move { engine.restore(req).await });
    // Cancel while the restore is in flight (after the stop).
    while !platform.events().contains(&"stop".to_string()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task.abort();
    for _ in 0..200 {
        if platform.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        platform.is_running(),
        "the guard started the platform: {:?}",
        platform.events()
    );
}

#[tokio::test]
async fn two_backups_of_one_server_never_overlap() {
    let (_tmp, engine, platform) = setup(b"rows");
    let tracker = Arc::new(TestPlatform::new(platform.clone()));
    let make = |engine: BackupEngine, tracker: Arc<TestPlatform>| async move {
        engine
            .create(&BackupRequest {
                server: record("web-1"),
                platform: tracker,
                transport: memory_host(),
                host_key: None,
                transfer: TransferProgress::none(),
            })
            .await
    };
    let (a, b) = tokio::join!(
        make(engine.clone(), tracker.clone()),
        make(engine.clone(), tracker.clone())
    );
    assert_ne!(a.unwrap().id, b.unwrap().id);
    assert_eq!(
        tracker.max.load(Ordering::SeqCst),
        1,
        "the host lock serialised them"
    );
}

#[tokio::test]
async fn names_and_ids_cannot_escape_the_store() {
    let (_tmp, engine, platform) = setup(b"rows");
    for bad in ["../web-1", "..", "a/b", ".hidden"] {
        assert!(engine.list(bad).is_err(), "{bad}");
        let mut req = request(&platform, "web-1");
        req.server.name = bad.into();
        assert_eq!(
            engine.create(&req).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    assert!(BackupId::new("../../etc/passwd").is_err());
}

/// A copy of the flat backup directory `from` at `to`.
fn copy_backup(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `path` replaced by a symbolic link to a copy of it in `outside`: same
/// bytes, same size, same checksum.
fn swap_for_link(path: &std::path::Path, outside: &std::path::Path) {
    let target = outside.join(path.file_name().unwrap());
    std::fs::copy(path, &target).unwrap();
    std::fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(&target, path).unwrap();
}

/// Whether `id` of web-1 is listed corrupt with a problem mentioning `what`,
/// fails verification saying so, and is refused by a restore that
/// touches nothing.
async fn refused_everywhere(engine: &BackupEngine, id: &BackupId, what: &str) {
    let listed = engine.list("web-1").unwrap();
    let entry = listed.iter().find(|b| &b.id == id).unwrap();
    assert_eq!(entry.status, BackupStatus::Corrupt, "{id}");
    assert!(
        entry.problem.as_deref().unwrap_or_default().contains(what),
        "{id}: {:?}",
        entry.problem
    );
    let err = engine.verify("web-1", id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains(what), "{err}");
    let platform = Arc::new(MemoryPlatform::new(Arc::new(MemoryTransport::new())));
    platform.set_data(b"live rows", b"APP_KEY=live");
    let outcome = engine
        .restore(restore_request(platform.clone(), "web-1", id))
        .await;
    assert!(!outcome.success());
    assert_eq!(outcome.error.as_ref().unwrap().kind(), ErrorKind::Corrupt);
    assert!(platform.events().is_empty(), "the platform was touched");
    assert_eq!(platform.data().0, b"live rows");
}

#[tokio::test]
async fn links_and_special_files_in_a_backup_are_corrupt_and_never_followed() {
    let (tmp, engine, platform) = setup(b"rows");
    let outside = tempfile::tempdir().unwrap();
    let server_dir = tmp.path().join("backups/web-1");

    // A backup directory that is a link to a whole, valid backup outside
    // the store.
    let created = engine.create(&request(&platform, "web-1")).await.unwrap();
    let elsewhere = outside.path().join("elsewhere");
    copy_backup(&created.path, &elsewhere);
    let linked = BackupId::new("2099-01-01_00-00-00-000").unwrap();
    std::os::unix::fs::symlink(&elsewhere, server_dir.join(linked.as_str())).unwrap();
    refused_everywhere(&engine, &linked, "symbolic link").await;

    // An artifact that is a link to an identical file outside the store.
    let artifact = created.path.join(&created.manifest.files[0]);
    swap_for_link(&artifact, outside.path());
    refused_everywhere(&engine, &created.id, "symbolic link").await;

    // A manifest that is a link.
    let second = engine.create(&request(&platform, "web-1")).await.unwrap();
    swap_for_link(&second.path.join(MANIFEST_FILE), outside.path());
    refused_everywhere(&engine, &second.id, "symbolic link").await;

    // An artifact that is a FIFO: refused, and reading it cannot hang.
    let third = engine.create(&request(&platform, "web-1")).await.unwrap();
    let fifo = third.path.join(&third.manifest.files[0]);
    std::fs::remove_file(&fifo).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    refused_everywhere(&engine, &third.id, "not a regular file").await;

    // Pruning the linked backup removes the link, never what it points to.
    let removed = prune::remove(tmp.path(), "web-1", &[linked.to_string()]).unwrap();
    assert_eq!(removed, 1);
    assert!(std::fs::symlink_metadata(server_dir.join(linked.as_str())).is_err());
    assert!(elsewhere.join(MANIFEST_FILE).is_file());
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        std::fs::read_dir(&created.path).unwrap().count()
    );
}

/// A host with zstd, whose `cat rows` compressed on the server answers
/// real zstd, and a platform that streams it through the core helper.
fn streaming_host(platform: &Arc<MemoryPlatform>) -> (Arc<MemoryTransport>, Arc<dyn Platform>) {
    let host = Arc::new(MemoryTransport::new());
    host.on("for t in zstd pigz gzip", Reply::ok("zstd\ngzip\n4\n"));
    let compressed = zstd::encode_all(&b"rows v1\n"[..], 1).unwrap();
    host.on("exec 4>&1", Reply::ok(compressed));
    host.on("cat rows", Reply::ok("rows v1\n"));
    let mut streaming = TestPlatform::new(platform.clone());
    streaming.stream_over = Some(host.clone());
    (host, Arc::new(streaming))
}

#[tokio::test]
async fn the_engine_plans_the_wire_and_the_platform_only_streams() {
    let (_tmp, engine, platform) = setup(b"rows");
    let (host, streaming) = streaming_host(&platform);
    let backup = |engine: BackupEngine| {
        let (streaming, host) = (streaming.clone(), host.clone());
        async move {
            engine
                .create(&BackupRequest {
                    server: record("web-1"),
                    platform: streaming,
                    transport: host,
                    host_key: None,
                    transfer: TransferProgress::none(),
                })
                .await
                .unwrap()
        }
    };
    // `server`: one probe before the platform ran, then zstd on the host.
    let created = backup(engine.clone().with_compress_mode(CompressMode::Server)).await;
    let ran = host.commands();
    assert!(ran[0].starts_with("for t in zstd pigz gzip"), "{ran:?}");
    assert!(
        ran[1].contains("'cat rows'") && ran[1].contains("zstd -1"),
        "{ran:?}"
    );
    let wire = &created.manifest.wire[0];
    assert_eq!(wire.codec, WireCodec::Zstd, "{wire:?}");
    assert!(
        wire.reason.contains("--compress server: zstd on the host"),
        "{wire:?}"
    );
    assert!(
        created.report.warnings.is_empty(),
        "{:?}",
        created.report.warnings
    );
    // `local`: no probe, the command as it is.
    let created = backup(engine.with_compress_mode(CompressMode::Local)).await;
    assert_eq!(host.commands()[2..], ["cat rows".to_owned()]);
    assert_eq!(created.manifest.wire[0].codec, WireCodec::Raw);
}

#[tokio::test]
async fn a_host_that_cannot_be_probed_is_backed_up_raw_with_a_warning() {
    let (_tmp, engine, platform) = setup(b"rows");
    let (host, streaming) = streaming_host(&platform);
    host.on(
        "for t in zstd pigz gzip",
        Reply::exit(1, "rbash: restricted"),
    );
    let created = engine
        .with_compress_mode(CompressMode::Server)
        .create(&BackupRequest {
            server: record("web-1"),
            platform: streaming,
            transport: host.clone(),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap();
    assert_eq!(created.manifest.wire[0].codec, WireCodec::Raw);
    let warnings = &created.report.warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("could not check the host for zstd")),
        "{warnings:?}"
    );
}

/// The memory platform with knobs: another id, a slow restore, a dump
/// that fails half-way, and a count of backups running at once.
#[derive(Debug)]
struct TestPlatform {
    inner: Arc<MemoryPlatform>,
    id: &'static str,
    restore_delay: Duration,
    fail_backup: bool,
    /// Backs up one `cat rows` through the core helper over this host.
    stream_over: Option<Arc<MemoryTransport>>,
    now: AtomicUsize,
    max: AtomicUsize,
}

impl TestPlatform {
    fn new(inner: Arc<MemoryPlatform>) -> Self {
        Self {
            inner,
            id: "memory",
            restore_delay: Duration::ZERO,
            fail_backup: false,
            stream_over: None,
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Platform for TestPlatform {
    fn info(&self) -> PlatformInfo {
        PlatformInfo::new(self.id, "Memory")
    }
    fn capability(&self) -> PlatformCapability {
        PlatformCapability::all()
    }
    async fn version(&self) -> Result<String> {
        self.inner.version().await
    }
    async fn health(&self) -> Result<Health> {
        self.inner.health().await
    }
    async fn update(&self, options: &UpdateOptions) -> Result<UpdateReport> {
        self.inner.update(options).await
    }
    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let report = if let Some(host) = &self.stream_over {
            let spec = kastell_core::types::ArtifactSpec {
                name: "rows.txt".into(),
                format: kastell_core::types::ArtifactFormat::Raw,
            };
            let cat = kastell_core::RemoteCommand::fixed("cat rows");
            sink.stream(host.as_ref(), &spec, &cat, None, Duration::from_secs(5))
                .await
                .map(|record| BackupReport {
                    platform_version: "1".into(),
                    artifacts: vec![record],
                    skipped: Vec::new(),
                    warnings: Vec::new(),
                    apps: Vec::new(),
                })
        } else if self.fail_backup {
            use std::io::Write;
            let mut w = sink.open(&kastell_core::types::ArtifactSpec {
                name: "db.dump".into(),
                format: kastell_core::types::ArtifactFormat::PgCustom,
            })?;
            w.write_all(b"partial").unwrap();
            drop(w);
            Err(kastell_core::Error::new(
                ErrorKind::CommandFailed,
                "pg_dump: connection lost",
            ))
        } else {
            self.inner.backup(sink).await
        };
        self.now.fetch_sub(1, Ordering::SeqCst);
        report
    }
    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        tokio::time::sleep(self.restore_delay).await;
        self.inner.restore(source).await
    }
    async fn stop(&self) -> Result<()> {
        self.inner.stop().await
    }
    async fn start(&self) -> Result<()> {
        self.inner.start().await
    }
}
