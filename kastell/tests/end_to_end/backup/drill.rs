//! Restore drills against real dumps: a Coolify backup taken over a real
//! sshd from a real PostgreSQL is restored into a throwaway cluster and
//! every table and row of the dump is found there; a plain SQL dump (the
//! original tool's format, with owners that do not exist here) drills the
//! same way.

#![cfg(feature = "coolify")]
#![allow(clippy::unwrap_used)]

use crate::paas_host;

use kastell::engine::backup::{BackupRequest, Manifest, Staging, TransferProgress};
use kastell_core::Transport;
use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSpec, BackupId, Compression};
use paas_host::{Kind, engine, record, start};

const SCHEMA: &str = "SET ROLE coolify;
    CREATE TABLE apps (id int PRIMARY KEY, name text);
    INSERT INTO apps SELECT g, 'app ' || g FROM generate_series(1, 1234) g;
    CREATE TABLE \"Mixed Case\" (note text);
    INSERT INTO \"Mixed Case\" VALUES (E'two\\nlines'), ('tab\there');
    CREATE TABLE empty_one (id int);
    CREATE SCHEMA audit;
    CREATE TABLE audit.events (at timestamptz DEFAULT now());
    INSERT INTO audit.events SELECT now() FROM generate_series(1, 7);";

fn check<'a>(
    report: &'a kastell::engine::drill::DrillReport,
    name: &str,
) -> &'a kastell::engine::drill::DrillCheck {
    report.artifacts[0]
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coolify_dump_restores_into_a_throwaway_cluster_with_every_row() {
    let kind = Kind::Coolify;
    let host = start(kind);
    host.pg.execute(kind.database(), SCHEMA).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let host_key = host.sshd.ssh().host_key().await.unwrap().fingerprint;
    let created = engine(tmp.path())
        .create(&BackupRequest {
            server: record(kind),
            platform: host.platform.clone(),
            transport: host.transport.clone(),
            host_key: Some(host_key),
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap();
    let backup = engine(tmp.path()).find("paas-1", &created.id).unwrap();
    let report = tokio::task::spawn_blocking(move || kastell::engine::drill::drill(&backup))
        .await
        .unwrap()
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    let dump = &report.artifacts[0];
    assert!(dump.target.starts_with("PostgreSQL "), "{dump:?}");
    assert!(
        check(&report, "restore")
            .detail
            .contains("the dump is from"),
        "{report:#?}"
    );
    assert_eq!(
        check(&report, "tables").detail,
        "all 4 tables of the dump exist after the restore"
    );
    // 1234 + 2 + 0 + 7: the two-line value is one row.
    assert_eq!(
        check(&report, "rows").detail,
        "1243 rows restored, table by table as many as the dump holds"
    );
    // The configuration archive unpacked too.
    assert!(
        report
            .artifacts
            .iter()
            .any(|a| a.checks[0].name == "unpack" && !a.checks[0].failed()),
        "{report:#?}"
    );

    // The same database as plain SQL, the original tool's format: its
    // owner statements name a role the throwaway cluster does not have.
    let plain = std::process::Command::new(host.pg.bin_dir().join("pg_dump"))
        .args(["-h"])
        .arg(host.pg.socket_dir())
        .args([
            "-p",
            &host.pg.port().to_string(),
            "-U",
            "coolify",
            "-d",
            "coolify",
        ])
        .output()
        .unwrap();
    assert!(
        plain.status.success(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(String::from_utf8_lossy(&plain.stdout).contains("OWNER TO coolify"));
    let server_dir = tmp.path().join("plain");
    let id = BackupId::new("2026-01-01_00-00-00-000").unwrap();
    let mut staging = Staging::create(&server_dir, &id, Compression::Zstd).unwrap();
    let spec = ArtifactSpec {
        name: "coolify-backup.sql".into(),
        format: ArtifactFormat::PgPlain,
    };
    let mut writer = staging.open(&spec).unwrap();
    std::io::Write::write_all(&mut writer, &plain.stdout).unwrap();
    drop(writer);
    staging.seal(&spec.name).unwrap();
    let manifest: Manifest = serde_json::from_str(
        r#"{"serverName":"paas-1","timestamp":"2026-01-01_00-00-00-000","formatVersion":2}"#,
    )
    .unwrap();
    let dir = staging.publish(manifest).unwrap();
    let backup = kastell::engine::backup::StoredBackup::load(id, dir);
    let report = tokio::task::spawn_blocking(move || kastell::engine::drill::drill(&backup))
        .await
        .unwrap()
        .unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(
        check(&report, "rows").detail,
        "1243 rows restored, table by table as many as the dump holds"
    );
}
