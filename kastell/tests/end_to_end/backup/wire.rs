//! Where compression runs, on a real PostgreSQL behind the `docker` shim
//! over a real sshd: each path (zstd on the server, gzip on the server,
//! none) restores exactly the rows that were backed up, and a host
//! without zstd falls back and says so.

#![cfg(feature = "coolify")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use crate::paas_host;

use kastell::engine::backup::{BackupRequest, CreatedBackup, TransferProgress};
use kastell_core::types::{ArtifactFormat, Compression};
use kastell_core::wire::{CompressMode, WireCodec};
use paas_host::{Host, Kind, engine, record, start};

const KIND: Kind = Kind::Coolify;
const ROWS: &str =
    "SELECT count(*) || ':' || sum(id) || ':' || md5(string_agg(name, ',' ORDER BY id)) FROM apps";

async fn backup(host: &Host, dir: &std::path::Path, mode: CompressMode) -> CreatedBackup {
    engine(dir)
        .with_compress_mode(mode)
        .create(&BackupRequest {
            server: record(KIND),
            platform: host.platform.clone(),
            transport: host.transport.clone(),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap()
}

/// Backs up in `mode`, damages the data, restores, and checks the rows
/// came back exactly. Returns the backup and what the database step of the
/// restore said.
async fn round_trip(
    host: &Host,
    dir: &std::path::Path,
    mode: CompressMode,
) -> (CreatedBackup, String) {
    let db = KIND.database();
    let before = host.pg.psql(db, ROWS).unwrap();
    let created = backup(host, dir, mode).await;
    host.pg
        .execute(
            db,
            "DELETE FROM apps WHERE id % 3 = 0; UPDATE apps SET name = 'changed' WHERE id < 100;",
        )
        .unwrap();
    assert_ne!(host.pg.psql(db, ROWS).unwrap(), before);
    let outcome = engine(dir)
        .restore(paas_host::restore_request(host, KIND, &created.id, false))
        .await;
    assert!(outcome.success(), "{mode}: {outcome:#?}");
    assert_eq!(host.pg.psql(db, ROWS).unwrap(), before, "{mode}");
    let detail = outcome
        .steps
        .iter()
        .filter_map(|s| s.detail.clone())
        .find(|d| d.contains("pg_restore"))
        .unwrap();
    (created, detail)
}

fn db_transfer(created: &CreatedBackup) -> &kastell_core::wire::WireTransfer {
    let db = created
        .manifest
        .artifacts
        .iter()
        .find(|a| a.format == ArtifactFormat::PgCustom)
        .unwrap();
    created
        .manifest
        .wire
        .iter()
        .find(|w| w.artifact == db.name)
        .unwrap()
}

fn host_with_rows() -> Host {
    let host = start(KIND);
    host.pg
        .execute(
            KIND.database(),
            "CREATE TABLE apps (id int PRIMARY KEY, name text); \
             INSERT INTO apps SELECT g, 'app ' || g || repeat('x', g % 50) FROM generate_series(1, 20000) g;",
        )
        .unwrap();
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_path_restores_the_same_rows() {
    let host = host_with_rows();
    let tmp = tempfile::tempdir().unwrap();

    // zstd on the server: stored as sent, and restored by sending the
    // stored bytes to `zstd -d` on the server.
    let (server, restored) = round_trip(&host, tmp.path(), CompressMode::Server).await;
    assert!(
        restored.contains("decompressed on the server"),
        "{restored}"
    );
    let wire = db_transfer(&server);
    assert_eq!(wire.codec, WireCodec::Zstd);
    assert_eq!(wire.stored, Compression::Zstd);
    assert!(wire.bytes_on_wire < wire.bytes_uncompressed / 2, "{wire:?}");
    let db_record = &server.manifest.artifacts[0];
    assert_eq!(
        wire.bytes_on_wire, db_record.size,
        "the stored file is what came over the wire"
    );
    assert!(
        server.report.warnings.is_empty(),
        "{:?}",
        server.report.warnings
    );

    // Raw on the wire, stored uncompressed.
    let (none, restored) = round_trip(&host, tmp.path(), CompressMode::None).await;
    assert!(
        !restored.contains("decompressed on the server"),
        "{restored}"
    );
    let wire = db_transfer(&none);
    assert_eq!(
        (wire.codec, wire.stored),
        (WireCodec::Raw, Compression::None)
    );
    assert_eq!(wire.bytes_on_wire, wire.bytes_uncompressed);
    assert_eq!(none.manifest.compression, Compression::None);

    // Raw on the wire, zstd here.
    let (local, _) = round_trip(&host, tmp.path(), CompressMode::Local).await;
    let wire = db_transfer(&local);
    assert_eq!(
        (wire.codec, wire.stored),
        (WireCodec::Raw, Compression::Zstd)
    );
    assert_eq!(wire.bytes_on_wire, wire.bytes_uncompressed);

    // gzip on the server once zstd is gone: decompressed and stored as
    // zstd here; the restore decompresses locally (no zstd there).
    for tool in ["zstd", "pigz"] {
        host.shim
            .shim()
            .add_script(tool, "echo 'not found' >&2; exit 127")
            .unwrap();
    }
    let (gzip, restored) = round_trip(&host, tmp.path(), CompressMode::Server).await;
    assert!(
        !restored.contains("decompressed on the server"),
        "no zstd on the host: decompressed here: {restored}"
    );
    let wire = db_transfer(&gzip);
    assert_eq!(
        (wire.codec, wire.stored),
        (WireCodec::Gzip, Compression::Zstd)
    );
    assert!(wire.bytes_on_wire < wire.bytes_uncompressed / 2, "{wire:?}");
    // The same dump either way (a custom-format header differs by a few
    // bytes between two dumps of the same data).
    let raw = db_transfer(&none).bytes_uncompressed;
    assert!(
        wire.bytes_uncompressed.abs_diff(raw) < raw / 100,
        "{} against {raw}",
        wire.bytes_uncompressed
    );
    assert!(
        gzip.report
            .warnings
            .iter()
            .any(|w| w.contains("zstd is not on the host")),
        "{:?}",
        gzip.report.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_zstd_falls_back_and_says_so() {
    let host = host_with_rows();
    host.shim
        .shim()
        .add_script("zstd", "echo 'zstd: not found' >&2; exit 127")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // auto: gzip only pays on a slow link, and loopback is not one.
    let auto = backup(&host, tmp.path(), CompressMode::Auto).await;
    let wire = db_transfer(&auto);
    assert_ne!(wire.codec, WireCodec::Zstd);
    assert!(
        auto.report
            .warnings
            .iter()
            .any(|w| w.contains("zstd is not on the host") && w.contains("gzip")),
        "{:?}",
        auto.report.warnings
    );
    assert!(wire.reason.contains("the link measured"), "{}", wire.reason);

    // Nothing at all to compress with: raw, zstd here, and the reason says why.
    for tool in ["gzip", "pigz"] {
        host.shim
            .shim()
            .add_script(tool, "echo 'not found' >&2; exit 127")
            .unwrap();
    }
    let bare = backup(&host, tmp.path(), CompressMode::Server).await;
    let wire = db_transfer(&bare);
    assert_eq!(
        (wire.codec, wire.stored),
        (WireCodec::Raw, Compression::Zstd)
    );
    assert!(
        wire.reason.contains("no zstd, pigz or gzip"),
        "{}",
        wire.reason
    );
    assert!(!bare.report.warnings.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_servers_next_backup_does_not_measure_the_link_again() {
    let host = host_with_rows();
    let tmp = tempfile::tempdir().unwrap();
    // The first backup has nothing to go by: it measures the link.
    let first = backup(&host, tmp.path(), CompressMode::Auto).await;
    let reason = &db_transfer(&first).reason;
    assert!(reason.contains("the link measured"), "{reason}");
    // The next one knows the server's backups are a few hundred KiB: zstd
    // on the host, no link sample, and the reason says so.
    let second = backup(&host, tmp.path(), CompressMode::Auto).await;
    let wire = db_transfer(&second);
    assert_eq!(wire.codec, WireCodec::Zstd);
    assert!(
        wire.reason
            .contains("too little for the link's speed to matter")
            && wire.reason.contains("32.0 MiB"),
        "{}",
        wire.reason
    );
    assert!(
        !wire.reason.contains("the link measured"),
        "{}",
        wire.reason
    );
}
