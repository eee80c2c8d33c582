//! The backup engine against real things: a PostgreSQL cluster behind the
//! `docker` shim, reached over a real sshd, for Coolify and Dokploy.

#![cfg(all(feature = "coolify", feature = "dokploy"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use crate::paas_host;

use kastell::engine::backup::{BackupRequest, BackupStatus, RestoreRequest, TransferProgress};
use kastell_core::types::StepStatus;
use kastell_core::{ErrorKind, Transport};
use paas_host::{Host, Kind, engine, record, start};

const ROWS: &str = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM apps";

async fn backup(
    host: &Host,
    kind: Kind,
    dir: &std::path::Path,
) -> kastell::engine::backup::CreatedBackup {
    let host_key = host.sshd.ssh().host_key().await.unwrap().fingerprint;
    engine(dir)
        .create(&BackupRequest {
            server: record(kind),
            platform: host.platform.clone(),
            transport: host.transport.clone(),
            host_key: Some(host_key),
            transfer: TransferProgress::none(),
        })
        .await
        .unwrap()
}

fn restore_request(host: &Host, kind: Kind, id: &kastell_core::types::BackupId) -> RestoreRequest {
    paas_host::restore_request(host, kind, id, true)
}

async fn round_trip(kind: Kind) {
    let host = start(kind);
    let db = kind.database();
    host.pg
        .execute(db, "CREATE TABLE apps (id int PRIMARY KEY, name text); INSERT INTO apps VALUES (1,'one'),(2,'two'),(3,'three');")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let created = backup(&host, kind, tmp.path()).await;
    assert_eq!(created.manifest.platform.as_deref(), Some(db));
    assert!(
        created
            .manifest
            .host_key
            .as_deref()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert_eq!(created.manifest.platform_version, host.shim.state().version);

    host.pg
        .execute(db, "UPDATE apps SET name='changed'; DELETE FROM apps WHERE id=2; INSERT INTO apps VALUES (4,'four');")
        .unwrap();
    let outcome = engine(tmp.path())
        .restore(restore_request(&host, kind, &created.id))
        .await;
    assert!(outcome.success(), "{outcome:#?}");
    assert_eq!(host.pg.psql(db, ROWS).unwrap(), "1:one,2:two,3:three");
    let state = host.shim.state();
    assert!(state.app_running && state.db_running);
    let safety = outcome.safety_backup.unwrap();
    let listed = engine(tmp.path()).list("paas-1").unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|b| b.id == safety && b.status == BackupStatus::Complete)
    );
    assert!(
        outcome
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Success)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coolify_rows_equal_the_backup_after_restore() {
    round_trip(Kind::Coolify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dokploy_rows_equal_the_backup_after_restore() {
    round_trip(Kind::Dokploy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_artifact_is_refused_before_anything_is_stopped() {
    let kind = Kind::Coolify;
    let host = start(kind);
    host.pg
        .execute(
            kind.database(),
            "CREATE TABLE apps (id int PRIMARY KEY, name text); INSERT INTO apps VALUES (1,'one');",
        )
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let created = backup(&host, kind, tmp.path()).await;
    let file = created.path.join(&created.manifest.files[0]);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    host.shim.clear_commands().unwrap();

    let outcome = engine(tmp.path())
        .restore(restore_request(&host, kind, &created.id))
        .await;
    assert_eq!(outcome.error.as_ref().unwrap().kind(), ErrorKind::Corrupt);
    assert!(outcome.error.as_ref().unwrap().hint().is_some());
    let commands = host.shim.commands();
    assert!(
        commands.is_empty(),
        "nothing ran on the server: {commands:?}"
    );
    assert!(host.shim.state().app_running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_fails_after_the_stop_leaves_the_platform_started() {
    for kind in [Kind::Coolify, Kind::Dokploy] {
        let host = start(kind);
        host.pg.execute(kind.database(), "CREATE TABLE apps (id int PRIMARY KEY, name text); INSERT INTO apps VALUES (1,'one');").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let created = backup(&host, kind, tmp.path()).await;
        host.shim
            .fail_next("pg_restore", 1, "pg_restore: error: simulated failure")
            .unwrap();
        let outcome = engine(tmp.path())
            .restore(restore_request(&host, kind, &created.id))
            .await;
        assert!(!outcome.success(), "{kind:?}");
        let commands = host.shim.commands().join("\n");
        assert!(
            commands.contains(kind.stop_marker()),
            "the platform was stopped: {commands}"
        );
        let state = host.shim.state();
        assert!(
            state.app_running && state.db_running,
            "{kind:?} left stopped: {outcome:#?}"
        );
        let names: Vec<&str> = outcome.steps.iter().map(|s| s.name.as_str()).collect();
        assert!(names.last().unwrap().starts_with("Start "), "{names:?}");
        assert_eq!(outcome.steps.last().unwrap().status, StepStatus::Success);
        assert!(outcome.steps.iter().any(|s| s.status == StepStatus::Failure
            && s.error.as_deref().unwrap_or("").contains("simulated")));
        // The data is untouched: the failed restore ran in one transaction.
        assert_eq!(host.pg.psql(kind.database(), ROWS).unwrap(), "1:one");
    }
}
