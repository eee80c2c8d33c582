//! Parallel dumps (`pg_dump -Fd -j N`) on a real PostgreSQL behind the
//! `docker` shim, over a real sshd: the tar of the dump's directory is one
//! verified artifact that restores exactly the rows that were backed up
//! (zstd on the server and raw on the wire), drills in a throwaway
//! cluster, and leaves no temporary directory on the server; `auto` picks
//! it from what the database container reports.

#![cfg(feature = "coolify")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use crate::paas_host;

use std::path::Path;

use kastell::engine::backup::{BackupRequest, CreatedBackup, TransferProgress};
use kastell_core::types::ArtifactFormat;
use kastell_core::wire::{CompressMode, DumpJobs, WireCodec};
use paas_host::{Host, Kind, engine, record, start_with};

const KIND: Kind = Kind::Coolify;

/// Three tables, two of them over the 8 MiB that count as large (as the
/// catalog says after ANALYZE), and a fingerprint of every row of each.
const SCHEMA: &str = "SET ROLE coolify;
    CREATE TABLE apps (id int PRIMARY KEY, name text);
    INSERT INTO apps SELECT g, 'app ' || g || repeat('x', g % 50) FROM generate_series(1, 20000) g;
    CREATE TABLE events (id bigint PRIMARY KEY, body text);
    INSERT INTO events SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 90000) g;
    CREATE TABLE logs (id bigint, line text);
    INSERT INTO logs SELECT g, repeat(md5((g * 7)::text), 3) FROM generate_series(1, 90000) g;
    ANALYZE;";

const ROWS: &str = "SELECT (SELECT count(*) || ':' || md5(string_agg(name, ',' ORDER BY id)) FROM apps) \
    || '/' || (SELECT count(*) || ':' || md5(string_agg(body, ',' ORDER BY id)) FROM events) \
    || '/' || (SELECT count(*) || ':' || md5(string_agg(line, ',' ORDER BY id)) FROM logs)";

fn host(extra: &[(&str, &str)]) -> Host {
    host_of(KIND, extra)
}

fn host_of(kind: Kind, extra: &[(&str, &str)]) -> Host {
    let host = start_with(kind, extra);
    let schema = SCHEMA.replace(
        "SET ROLE coolify;",
        &format!("SET ROLE {};", kind.database()),
    );
    host.pg.execute(kind.database(), &schema).unwrap();
    host
}

async fn backup(host: &Host, dir: &Path, mode: CompressMode, jobs: DumpJobs) -> CreatedBackup {
    backup_of(KIND, host, dir, mode, jobs).await
}

async fn backup_of(
    kind: Kind,
    host: &Host,
    dir: &Path,
    mode: CompressMode,
    jobs: DumpJobs,
) -> CreatedBackup {
    engine(dir)
        .with_compress_mode(mode)
        .with_dump_jobs(jobs)
        .create(&BackupRequest {
            server: record(kind),
            platform: host.platform.clone(),
            transport: host.transport.clone(),
            host_key: None,
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap()
}

/// The database artifact of `created`: its format and the wire's reason.
fn db_artifact(created: &CreatedBackup) -> (ArtifactFormat, String, WireCodec) {
    let db = created
        .manifest
        .artifacts
        .iter()
        .find(|a| a.name.contains("-db."))
        .unwrap();
    let wire = created
        .manifest
        .wire
        .iter()
        .find(|w| w.artifact == db.name)
        .unwrap();
    (db.format, wire.reason.clone(), wire.codec)
}

/// Damages the rows, restores `created`, and returns what the database
/// step said once the rows are checked to be `before` again.
async fn restore(host: &Host, dir: &Path, created: &CreatedBackup, before: &str) -> String {
    restore_of(KIND, host, dir, created, before).await
}

async fn restore_of(
    kind: Kind,
    host: &Host,
    dir: &Path,
    created: &CreatedBackup,
    before: &str,
) -> String {
    let db = kind.database();
    host.pg
        .execute(
            db,
            "DELETE FROM events WHERE id % 3 = 0; UPDATE logs SET line = 'changed' WHERE id < 500; \
             DROP TABLE apps;",
        )
        .unwrap();
    let outcome = engine(dir)
        .restore(paas_host::restore_request(host, kind, &created.id, false))
        .await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(host.pg.psql(db, ROWS).unwrap(), before);
    outcome
        .steps
        .iter()
        .filter_map(|s| s.detail.clone())
        .find(|d| d.contains("pg_restore"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_dump_restores_and_drills_the_same_rows() {
    let host = host(&[]);
    let before = host.pg.psql(KIND.database(), ROWS).unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // Two jobs asked for, zstd on the server.
    host.shim.shim().clear_commands().unwrap();
    let created = backup(
        &host,
        tmp.path(),
        CompressMode::Server,
        DumpJobs::Exactly(2),
    )
    .await;
    let (format, reason, codec) = db_artifact(&created);
    assert_eq!(format, ArtifactFormat::PgDirectoryTar);
    assert_eq!(codec, WireCodec::Zstd);
    assert!(reason.contains("pg_dump -Fd -j 2"), "{reason}");
    assert!(
        created.report.warnings.is_empty(),
        "{:?}",
        created.report.warnings
    );
    let ran = host.shim.shim().commands().join("\n");
    assert!(ran.contains("pg_dump -Fd -j"), "{ran}");
    assert!(
        host.shim.container_tmp().is_dir(),
        "the dump ran in the container's /tmp"
    );
    let empty: Vec<String> = Vec::new();
    assert_eq!(
        host.shim.container_tmp_entries(),
        empty,
        "the dump's directory is gone"
    );

    // The stored artifact is one verified unit.
    let stored = engine(tmp.path()).find("paas-1", &created.id).unwrap();
    stored.verify().unwrap();
    let said = restore(&host, tmp.path(), &created, &before).await;
    assert!(said.contains("directory of a parallel dump"), "{said}");
    assert!(said.contains("decompressed on the server"), "{said}");
    assert_eq!(
        host.shim.container_tmp_entries(),
        empty,
        "the restore's directory is gone"
    );

    // The drill unpacks it and finds every row of the dump.
    let report = tokio::task::spawn_blocking(move || kastell::engine::drill::drill(&stored))
        .await
        .unwrap()
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    let rows = report.artifacts[0]
        .checks
        .iter()
        .find(|c| c.name == "rows")
        .unwrap();
    assert!(rows.detail.starts_with("200000 rows restored"), "{rows:?}");

    // Raw on the wire, zstd here: the same rows again.
    let raw = backup(&host, tmp.path(), CompressMode::Local, DumpJobs::Exactly(3)).await;
    let (format, reason, codec) = db_artifact(&raw);
    assert_eq!(
        (format, codec),
        (ArtifactFormat::PgDirectoryTar, WireCodec::Raw)
    );
    assert!(reason.contains("pg_dump -Fd -j 3"), "{reason}");
    let said = restore(&host, tmp.path(), &raw, &before).await;
    assert!(said.contains("directory of a parallel dump"), "{said}");
    assert_eq!(host.shim.container_tmp_entries(), empty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_dumps_in_parallel_from_what_the_database_reports() {
    // Every size counts as large here, the host has two large tables, and
    // one dump job is taken to be slow (1 MB/s), so the loopback link is
    // more than fast enough for two to pay.
    let host = host(&[("parallel_dump_min_mib", "0"), ("dump_job_mb_per_sec", "1")]);
    let tmp = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let auto = backup(&host, tmp.path(), CompressMode::Auto, DumpJobs::Auto).await;
    let (format, reason, _) = db_artifact(&auto);
    if cores >= 2 {
        assert_eq!(format, ArtifactFormat::PgDirectoryTar, "{reason}");
        assert!(reason.contains("pg_dump -Fd -j 2"), "{reason}");
        assert!(reason.contains("2 large table(s)"), "{reason}");
    } else {
        assert_eq!(format, ArtifactFormat::PgCustom, "{reason}");
    }

    // Without a link sample (raw on the wire: none is taken) auto cannot
    // tell that it would pay.
    let unmeasured = backup(&host, tmp.path(), CompressMode::Local, DumpJobs::Auto).await;
    let (format, reason, _) = db_artifact(&unmeasured);
    assert_eq!(format, ArtifactFormat::PgCustom, "{reason}");
    assert!(reason.contains("one stream: no link sample"), "{reason}");

    // A dump job faster than any link: one stream, saying why.
    let quick_jobs = host_of(
        KIND,
        &[
            ("parallel_dump_min_mib", "0"),
            ("dump_job_mb_per_sec", "4000000"),
        ],
    );
    // A directory of its own: this server's earlier backups there are
    // small, and a small server's next backup takes no link sample.
    let fresh = tempfile::tempdir().unwrap();
    let slow_link = backup(
        &quick_jobs,
        fresh.path(),
        CompressMode::Auto,
        DumpJobs::Auto,
    )
    .await;
    let (format, reason, _) = db_artifact(&slow_link);
    assert_eq!(format, ArtifactFormat::PgCustom, "{reason}");
    assert!(reason.contains("dump jobs would need to win"), "{reason}");

    // At the default threshold (1 GiB) this database streams one dump,
    // with no question asked of the container when one job is asked for.
    let small = host_of(KIND, &[]);
    let unknown = tempfile::tempdir().unwrap();
    let single = backup(&small, unknown.path(), CompressMode::Auto, DumpJobs::Auto).await;
    let (format, reason, _) = db_artifact(&single);
    assert_eq!(format, ArtifactFormat::PgCustom);
    assert!(reason.contains("is below the 1.0 GiB"), "{reason}");
    small.shim.shim().clear_commands().unwrap();
    let one = backup(&small, tmp.path(), CompressMode::Auto, DumpJobs::ONE).await;
    assert_eq!(db_artifact(&one).0, ArtifactFormat::PgCustom);
    let ran = small.shim.shim().commands().join("\n");
    assert!(!ran.contains("pg_database_size"), "{ran}");

    // Asked for jobs the server has no room for: one stream, and a warning.
    host.shim
        .shim()
        .add_script("df", "printf 'Filesystem 1024-blocks Used Available Capacity Mounted on\\nfs 100 100 0 100%% /tmp\\n'")
        .unwrap();
    let full = backup(&host, tmp.path(), CompressMode::Auto, DumpJobs::Exactly(2)).await;
    assert_eq!(db_artifact(&full).0, ArtifactFormat::PgCustom);
    assert!(
        full.report
            .warnings
            .iter()
            .any(|w| w.starts_with("--jobs 2 was not used") && w.contains("is free")),
        "{:?}",
        full.report.warnings
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dokploy_dumps_and_restores_in_parallel_too() {
    let kind = Kind::Dokploy;
    let host = host_of(kind, &[]);
    let before = host.pg.psql(kind.database(), ROWS).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let created = backup_of(
        kind,
        &host,
        tmp.path(),
        CompressMode::Server,
        DumpJobs::Exactly(2),
    )
    .await;
    let (format, reason, _) = db_artifact(&created);
    assert_eq!(format, ArtifactFormat::PgDirectoryTar, "{reason}");
    assert!(
        created
            .manifest
            .artifacts
            .iter()
            .any(|a| a.name == "dokploy-db.dir.tar"),
        "{:?}",
        created.manifest.artifacts
    );
    let said = restore_of(kind, &host, tmp.path(), &created, &before).await;
    assert!(said.contains("directory of a parallel dump"), "{said}");
    let empty: Vec<String> = Vec::new();
    assert_eq!(host.shim.container_tmp_entries(), empty);
}
