//! The third-party Cron host platform (the `acme` example's file, linked
//! in here as it is) has no wire code of its own, yet a backup of it in
//! the sandbox, asked to compress on the server, is compressed there: the
//! engine planned it and the platform's one `sink.stream(..)` followed the
//! plan. `server add`'s detection finds it by the marker its registry
//! entry names, as it finds kastell's own platforms.

#[path = "../examples/acme/cron_host.rs"]
mod cron_host;

use kastell::engine::backup::{MANIFEST_FILE, Manifest};
use kastell::ops::{self, CreateOptions};
use kastell::surfaces::sandbox::{MANUAL_SERVER, Sandbox, SandboxPlan};
use kastell::{Env, Surface};
use kastell_core::types::Compression;
use kastell_core::wire::{CompressMode, WireCodec};

/// The first bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cronhost_backup_is_compressed_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(Vec::new()),
        platform: Some("cronhost".to_owned()),
        ..SandboxPlan::default()
    };
    let sandbox = Sandbox::start_with(dir.path(), &plan).await.unwrap();
    let ctx = sandbox.context(
        &Env::from_pairs([("KASTELL_SAFE_MODE", "false")]),
        Surface::Cli,
    );
    // Enough crontab to compress well (a tar of one small file is mostly
    // zero padding anyway).
    let server = sandbox.server(MANUAL_SERVER).unwrap().clone();
    let crontab: String = (0..200)
        .map(|i| format!("{} 3 * * * root /usr/local/bin/job-{i}\n", i % 60))
        .collect();
    sandbox
        .hosts()
        .write(server.address, "etc/crontab", &crontab)
        .unwrap();

    // What `kastell backup create --compress server` runs.
    let options = CreateOptions {
        compress: CompressMode::Server,
        ..CreateOptions::default()
    };
    let created = ops::backup_create_with(&ctx, Some(&server.name), options)
        .await
        .unwrap_or_else(|e| panic!("{e:?}"))
        .body;
    assert_eq!(created.files, ["cron-tables.tar.zst"], "{created:?}");
    assert_eq!(created.wire.compressed_on, "server", "{created:?}");
    assert_eq!(
        created.wire.server_compressor.as_deref(),
        Some("zstd"),
        "{created:?}"
    );

    // The manifest says the same, and the bytes agree: what came over SSH
    // is exactly the stored zstd file, smaller than the tar it holds.
    let backup = dir
        .path()
        .join("backups")
        .join(&server.name)
        .join(&created.backup_id);
    let manifest = Manifest::read(&backup).unwrap();
    assert!(
        !backup.join(MANIFEST_FILE).is_symlink(),
        "{}",
        backup.display()
    );
    let [artifact] = manifest.artifacts.as_slice() else {
        panic!("one artifact: {:?}", manifest.artifacts)
    };
    let [wire] = manifest.wire.as_slice() else {
        panic!("one transfer: {:?}", manifest.wire)
    };
    assert_eq!(wire.codec, WireCodec::Zstd, "{wire:?}");
    assert_eq!(wire.ran_on(), "server", "{wire:?}");
    assert_eq!(artifact.compression, Compression::Zstd);
    assert_eq!(wire.bytes_on_wire, artifact.size, "{wire:?} {artifact:?}");
    assert!(wire.bytes_on_wire < wire.bytes_uncompressed / 4, "{wire:?}");
    let stored = std::fs::read(backup.join("cron-tables.tar.zst")).unwrap();
    assert_eq!(stored[..4], ZSTD_MAGIC);
    let tar = zstd::decode_all(stored.as_slice()).unwrap();
    assert_eq!(tar.len() as u64, wire.bytes_uncompressed);
    assert!(
        String::from_utf8_lossy(&tar).contains("/usr/local/bin/job-199"),
        "the crontab is in the archive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cronhost_host_is_detected_by_the_marker_its_entry_names() {
    use kastell_core::Registry;
    use kastell_core::detect::{detect_platform, detectors};
    use kastell_core::types::PlatformRoot;

    let dir = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(Vec::new()),
        platform: Some("cronhost".to_owned()),
        ..SandboxPlan::default()
    };
    let sandbox = Sandbox::start_with(dir.path(), &plan).await.unwrap();
    let record = sandbox.store().find(MANUAL_SERVER).unwrap().unwrap();
    let root = ops::platform_options(&record).unwrap()[ops::ROOT_OPTION].clone();
    let ctx = sandbox.context(&Env::from_pairs::<&str, &str>([]), Surface::Cli);
    let transport = ctx.transport_for(&record);
    let found = detect_platform(
        transport.as_ref(),
        &PlatformRoot::new(&root).unwrap(),
        &detectors(Registry::global()),
    )
    .await
    .unwrap();
    assert_eq!(found.platform.map(|p| p.id), Some("cronhost"), "{found:?}");
    assert_eq!(
        found.searched.last().map(String::as_str),
        Some(format!("{root}/etc/cronhost").as_str()),
        "tried after kastell's own platforms"
    );
}
