//! Backups into memory artifacts and restores from them, over a scripted
//! transport.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{COMPOSE, DUMP, SWARM, SWARM_ID, TAR, context, healthy_host, platform};
use kastell_core::memory::{MemoryArtifacts, Reply};
use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSource, ArtifactSpec, StepStatus};
use kastell_core::{ErrorKind, Platform};
use kastell_paas::PaasPlatform;

#[tokio::test]
async fn backup_streams_the_dump_and_the_existing_config() {
    let t = healthy_host(&COMPOSE);
    // ssh/keys is missing on this host.
    t.on("d=", Reply::ok("source/.env\nsource/docker-compose.yml\n"));
    let p = platform(&COMPOSE, t.clone());
    let mut store = MemoryArtifacts::new();
    let report = p.backup(&mut store).await.unwrap();
    assert_eq!(report.platform_version, "4.0.1");
    let names: Vec<(&str, ArtifactFormat)> = report
        .artifacts
        .iter()
        .map(|a| (a.name.as_str(), a.format))
        .collect();
    assert_eq!(
        names,
        vec![
            ("compose-db.dump", ArtifactFormat::PgCustom),
            ("compose-config.tar", ArtifactFormat::Tar)
        ]
    );
    assert_eq!(report.skipped, vec!["/data/app/ssh/keys"]);
    assert!(report.warnings.is_empty());
    assert_eq!(store.bytes("compose-db.dump").unwrap(), DUMP);
    assert_eq!(store.bytes("compose-config.tar").unwrap(), TAR);
    assert_eq!(store.records().len(), 2);
    let cmds = t.commands();
    assert_eq!(
        cmds[1],
        "docker exec 'compose-db' pg_dump -Fc -Z0 -U 'appuser' -d 'appdb'"
    );
    assert!(cmds[2].starts_with(
        "d='/data/app'; printf '%s\\n' 'source/.env\nsource/docker-compose.yml\nssh/keys' |"
    ));
    assert_eq!(
        cmds[3],
        "printf '%s\\n' 'source/.env\nsource/docker-compose.yml' | tar -C '/data/app' -cf - -T -"
    );
    // Nothing on the server is written: no rm, no redirect into a file.
    assert!(
        cmds.iter()
            .all(|c| !c.contains(" > ") && !c.contains("rm "))
    );
}

#[tokio::test]
async fn swarm_backup_looks_the_container_up() {
    let t = healthy_host(&SWARM);
    let p = platform(&SWARM, t.clone());
    let mut store = MemoryArtifacts::new();
    let report = p.backup(&mut store).await.unwrap();
    assert_eq!(report.artifacts.len(), 2);
    assert!(report.skipped.is_empty());
    let cmds = t.commands();
    assert_eq!(
        cmds[1],
        "docker ps -qf 'name=swarm-postgres' --no-trunc | head -1"
    );
    assert_eq!(
        cmds[2],
        format!("docker exec '{SWARM_ID}' pg_dump -Fc -Z0 -U 'swarm' -d 'swarm'")
    );
    assert_eq!(
        cmds[4],
        "printf '%s\\n' '.' | tar -C '/etc/swarm' -cf - -T -"
    );

    // No container running: an error before any dump.
    t.on("docker ps -qf", Reply::ok(""));
    let mut store = MemoryArtifacts::new();
    let err = p.backup(&mut store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("swarm-postgres"));
    assert!(store.records().is_empty());
}

#[tokio::test]
async fn failed_dump_is_command_failed_and_seals_nothing() {
    let t = healthy_host(&COMPOSE);
    t.on(
        "docker exec",
        Reply {
            status: 1,
            stdout: b"PGDMP partial".to_vec(),
            stderr: b"pg_dump: error: connection to server failed".to_vec(),
            ..Reply::default()
        },
    );
    let p = platform(&COMPOSE, t.clone());
    let mut store = MemoryArtifacts::new();
    let err = p.backup(&mut store).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("connection to server failed"));
    assert_eq!(err.operation(), Some("backup"));
    assert!(store.records().is_empty());
    assert!(!t.commands().iter().any(|c| c.contains("tar")));

    // Exit 0 without a byte is not a dump either.
    t.on("docker exec", Reply::ok(""));
    let err = p.backup(&mut MemoryArtifacts::new()).await.unwrap_err();
    assert!(err.message().contains("no output"));
}

#[tokio::test]
async fn missing_config_is_a_warning_not_an_artifact() {
    let t = healthy_host(&COMPOSE);
    t.on("d=", Reply::ok(""));
    t.on("docker inspect", Reply::exit(1, "no such object"));
    let p = platform(&COMPOSE, t.clone());
    let report = p.backup(&mut MemoryArtifacts::new()).await.unwrap();
    assert_eq!(report.platform_version, "unknown");
    assert_eq!(report.artifacts.len(), 1);
    assert_eq!(report.skipped.len(), 3);
    assert_eq!(report.warnings.len(), 2);
}

type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Records the stdin of every command starting with `prefix`.
fn record_stdin(t: &kastell_core::memory::MemoryTransport, prefix: &str, seen: &Seen) {
    let seen = seen.clone();
    t.on_fn(prefix, move |cmd, stdin| {
        seen.lock().unwrap().push((cmd.to_owned(), stdin.to_vec()));
        Reply::ok("")
    });
}

async fn backed_up(spec: &'static kastell_paas::PaasSpec) -> MemoryArtifacts {
    let p = platform(spec, healthy_host(spec));
    let mut store = MemoryArtifacts::new();
    p.backup(&mut store).await.unwrap();
    store
}

#[tokio::test]
async fn restore_runs_the_steps_in_order() {
    let store = backed_up(&COMPOSE).await;
    let t = healthy_host(&COMPOSE);
    let seen: Seen = Arc::default();
    record_stdin(&t, "docker exec -i", &seen);
    record_stdin(&t, "tar -C", &seen);
    let p = platform(&COMPOSE, t.clone());
    let steps = p.restore(&store).await.into_result().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Start database",
            "Wait for database",
            "Restore database",
            "Restore config"
        ]
    );
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));
    assert_eq!(
        t.commands(),
        vec![
            "cd '/data/app/source' && docker compose up -d postgres".to_owned(),
            "docker exec 'compose-db' pg_isready -U 'appuser' -d 'appdb'".to_owned(),
            "docker exec -i 'compose-db' pg_restore --clean --if-exists --single-transaction \
             --exit-on-error --no-owner -U 'appuser' -d 'appdb'"
                .to_owned(),
            "tar -C '/data/app' -xf -".to_owned(),
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].1, DUMP);
    assert_eq!(seen[1].1, TAR);
}

#[tokio::test]
async fn plain_sql_backups_replay_into_a_fresh_schema() {
    let mut store = MemoryArtifacts::new();
    for (name, format, bytes) in [
        (
            "legacy-backup.sql",
            ArtifactFormat::PgPlain,
            &b"CREATE TABLE t();\n"[..],
        ),
        ("legacy-config.tar", ArtifactFormat::Tar, TAR),
    ] {
        let mut w = ArtifactSink::open(
            &mut store,
            &ArtifactSpec {
                name: name.into(),
                format,
            },
        )
        .unwrap();
        w.write_all(bytes).unwrap();
        drop(w);
        store.seal(name).unwrap();
    }
    let t = healthy_host(&SWARM);
    let seen: Seen = Arc::default();
    record_stdin(&t, "docker exec -i", &seen);
    let p = platform(&SWARM, t.clone());
    let steps = p.restore(&store).await.into_result().unwrap();
    assert_eq!(steps.len(), 4);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].0,
        format!(
            "docker exec -i '{SWARM_ID}' psql -v ON_ERROR_STOP=1 --single-transaction -U 'swarm' -d 'swarm'"
        )
    );
    assert_eq!(
        String::from_utf8(seen[0].1.clone()).unwrap(),
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public;\nCREATE TABLE t();\n"
    );
    assert!(
        t.commands()
            .contains(&"docker service scale swarm-postgres=1".to_owned())
    );
}

#[tokio::test]
async fn restore_stops_at_the_first_failed_step() {
    let store = backed_up(&COMPOSE).await;
    let t = healthy_host(&COMPOSE);
    t.on(
        "docker exec -i",
        Reply::exit(1, "pg_restore: error: could not execute query"),
    );
    let p = platform(&COMPOSE, t.clone());

    let outcome = p.restore(&store).await;
    let statuses: Vec<(&str, StepStatus)> = outcome
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("Start database", StepStatus::Success),
            ("Wait for database", StepStatus::Success),
            ("Restore database", StepStatus::Failure),
        ]
    );
    assert!(
        outcome.steps[2]
            .error
            .as_deref()
            .unwrap()
            .contains("could not execute query")
    );
    assert!(!t.commands().iter().any(|c| c.starts_with("tar")));

    let err = outcome.into_result().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(
        err.message().starts_with("Restore database failed: "),
        "{err}"
    );
    let context: Vec<(&str, &str)> = err
        .context()
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    assert!(context.contains(&("failed_step", "Restore database")));
    assert!(
        !context.iter().any(|(k, _)| *k == "steps"),
        "the steps travel beside the error, not inside it"
    );

    // A database that does not start: nothing else runs.
    let t = healthy_host(&COMPOSE);
    t.on("cd ", Reply::exit(1, "service postgres failed"));
    let p = platform(&COMPOSE, t.clone());
    let outcome = p.restore(&store).await;
    assert_eq!(outcome.steps.len(), 1);
    assert_eq!(t.commands().len(), 1);
}

#[tokio::test]
async fn wait_for_database_polls_until_ready_or_deadline() {
    let store = backed_up(&SWARM).await;
    let t = healthy_host(&SWARM);
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    t.on_fn("docker ps -qf", move |_, _| {
        let mut n = c.lock().unwrap();
        *n += 1;
        // Not there on the first look, then there but not ready once.
        if *n == 1 {
            Reply::ok("")
        } else {
            Reply::ok(format!("{SWARM_ID}\n"))
        }
    });
    let ready = Arc::new(Mutex::new(0u32));
    let r = ready.clone();
    t.on_fn("docker exec '", move |_, _| {
        let mut n = r.lock().unwrap();
        *n += 1;
        if *n == 1 {
            Reply::exit(2, "no response")
        } else {
            Reply::ok("accepting connections")
        }
    });
    let p = platform(&SWARM, t.clone());
    let steps = p.restore(&store).await.into_result().unwrap();
    assert!(
        steps[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("after 3 check(s)")
    );

    // Never ready: a timeout naming the last answer.
    let t = healthy_host(&SWARM);
    t.on("docker exec '", Reply::exit(2, "no response"));
    let p = PaasPlatform::new(
        &SWARM,
        context(t.clone(), &[("db_ready_timeout_secs", "1")]),
    )
    .unwrap();
    let outcome = p.restore(&store).await;
    let err = outcome.error.unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("no response"));
    assert_eq!(outcome.steps.len(), 2);
    assert!(!t.commands().iter().any(|c| c.contains("pg_restore")));
}

#[tokio::test]
async fn corrupt_or_incomplete_backups_are_refused() {
    let store = backed_up(&COMPOSE).await;
    store.corrupt("compose-db.dump");
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    let outcome = p.restore(&store).await;
    assert_eq!(outcome.error.unwrap().kind(), ErrorKind::Corrupt);
    assert!(!t.commands().iter().any(|c| c.contains("pg_restore")));

    // No database artifact at all: nothing runs.
    let t = healthy_host(&COMPOSE);
    let p = platform(&COMPOSE, t.clone());
    let err = p
        .restore(&MemoryArtifacts::new())
        .await
        .into_result()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(t.commands().is_empty());
}
