//! Fault injection, platform side: a restore into a Coolify or Dokploy
//! whose database refuses. The database is a real PostgreSQL behind the
//! `docker` shim, reached over a real sshd, and the restore goes through
//! the operations layer (verify, safety backup, stop, restore, start,
//! health), as `kastell backup restore` and MCP's `backup-restore` run it.
//!
//! - It refuses connections from the start (`ALLOW_CONNECTIONS false`):
//!   the safety backup fails, so nothing is stopped or changed.
//! - It starts refusing once the platform was stopped: `pg_restore` is
//!   refused, the data stays as it was, and the platform is started again.
//! - It never becomes ready (`pg_isready` keeps failing): the wait times
//!   out with what to do, and the platform is started again.
//!
//! After each: what the user sees, the platform running, the data as it
//! was, no complete-looking partial backup, nothing left on the server and
//! the store readable. A `pg_restore` that fails on a truncated dump is
//! `tests/backup_real.rs` (`a_restore_that_fails_after_the_stop_leaves_the_platform_started`).
#![cfg(all(feature = "coolify", feature = "dokploy"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::faults::common as faults_common;
use crate::paas_host;

use std::sync::Arc;

use async_trait::async_trait;
use faults_common::{
    PAAS_SERVER, RemoteTemp, SERIAL, Tally, assert_no_partial_backup, assert_no_remote_temp,
    assert_paas_running, assert_store_readable, assert_user_sees, paas_context,
};
use kastell::ops::{self, Context};
use kastell_core::types::{
    ArtifactSink, ArtifactSource, BackupReport, Health, PlatformInfo, RestoreReport, UpdateOptions,
    UpdateReport,
};
use kastell_core::{Platform, PlatformCapability, PlatformContext, PlatformTarget, Result};
use kastell_testkit::platform::{PaasHost, health_endpoint};
use paas_host::Kind;

const ROWS: &str = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM apps";

/// A fake host of `kind` with an `apps` table, backed up once and changed
/// since; returns the backup id and the rows after the change.
async fn backed_up_then_changed(host: &PaasHost, ctx: &Context, kind: Kind) -> (String, String) {
    let db = kind.database();
    host.pg
        .execute(
            db,
            "CREATE TABLE apps (id int PRIMARY KEY, name text); \
             INSERT INTO apps VALUES (1, 'one'), (2, 'two'), (3, 'three');",
        )
        .unwrap();
    let created = ops::backup_create(ctx, Some(PAAS_SERVER)).await.unwrap();
    host.pg
        .execute(db, "UPDATE apps SET name = 'changed' WHERE id = 2;")
        .unwrap();
    (created.body.backup_id, host.pg.psql(db, ROWS).unwrap())
}

fn set_connections(host: &PaasHost, db: &str, allowed: bool) {
    host.pg
        .execute(
            "postgres",
            &format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS {allowed};"),
        )
        .unwrap();
}

/// Runs `hook` once the inner platform has been stopped.
struct AfterStop {
    inner: Arc<dyn Platform>,
    hook: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for AfterStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfterStop")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait]
impl Platform for AfterStop {
    fn info(&self) -> PlatformInfo {
        self.inner.info()
    }
    fn capability(&self) -> PlatformCapability {
        self.inner.capability()
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
        self.inner.backup(sink).await
    }
    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        self.inner.restore(source).await
    }
    async fn stop(&self) -> Result<()> {
        let stopped = self.inner.stop().await;
        (self.hook)();
        stopped
    }
    async fn start(&self) -> Result<()> {
        self.inner.start().await
    }
}

/// The database refuses connections from the start, then once Coolify was
/// stopped for the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coolify_database_that_refuses_connections() {
    let _serial = SERIAL.lock().await;
    let kind = Kind::Coolify;
    let host = Arc::new(paas_host::start(kind));
    let dir = tempfile::tempdir().unwrap();
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let platform: Arc<dyn Platform> = Arc::new(AfterStop {
        inner: host.platform.clone(),
        hook: {
            let (host, refuse) = (host.clone(), refuse.clone());
            Box::new(move || {
                if refuse.load(std::sync::atomic::Ordering::SeqCst) {
                    set_connections(&host, kind.database(), false);
                }
            })
        },
    });
    let ctx = paas_context(dir.path(), "coolify", host.sshd.ssh(), platform);
    let (id, changed) = backed_up_then_changed(&host, &ctx, kind).await;
    let user = host.sshd.sshd.user().to_owned();

    // From the start: the safety backup cannot be taken.
    let mut t = Tally::new("platform-db-refuses-from-the-start", &[]);
    let remote = RemoteTemp::snapshot(&user);
    set_connections(&host, kind.database(), false);
    t.injected(1);
    host.shim.clear_commands().unwrap();
    let err = ops::backup_restore(&ctx, Some(PAAS_SERVER), Some(&id))
        .await
        .unwrap_err();
    assert_user_sees(
        &mut t,
        &err,
        &["command_failed"],
        &["accepting connections"],
    );
    t.check(
        err.hint
            .as_deref()
            .unwrap_or("")
            .starts_with("Nothing was changed on the server"),
        "the user is told nothing was changed",
    );
    let commands = host.shim.commands().join("\n");
    t.check(
        !commands.contains(kind.stop_marker()),
        format!("Coolify was never stopped: {commands}"),
    );
    set_connections(&host, kind.database(), true);
    assert_paas_running(&mut t, &host);
    t.check(
        host.pg.psql(kind.database(), ROWS).unwrap() == changed,
        "the data is as it was",
    );
    let listed = assert_no_partial_backup(&mut t, dir.path(), PAAS_SERVER);
    t.check(listed.len() == 1, "only the first backup is listed");
    assert_no_remote_temp(&mut t, &remote);
    assert_store_readable(&mut t, dir.path());
    t.finish();

    // Once Coolify was stopped: the restore itself is refused.
    let mut t = Tally::new("platform-db-refuses-after-the-stop", &[]);
    let remote = RemoteTemp::snapshot(&user);
    refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    t.injected(1);
    let err = ops::backup_restore(&ctx, Some(PAAS_SERVER), Some(&id))
        .await
        .unwrap_err();
    refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_user_sees(
        &mut t,
        &err,
        &["command_failed"],
        &["Restore database failed", "accepting connections"],
    );
    let names: Vec<&str> = err.steps.iter().map(|s| s.name.as_str()).collect();
    t.check(
        names.ends_with(&["Restore database", "Start Coolify"]),
        format!("the platform is started again right after the failure: {names:?}"),
    );
    t.check(
        err.steps
            .last()
            .is_some_and(|s| s.status == ops::StepOutcome::Success),
        "and it started",
    );
    assert_paas_running(&mut t, &host);
    set_connections(&host, kind.database(), true);
    t.check(
        host.pg.psql(kind.database(), ROWS).unwrap() == changed,
        "the data is as it was",
    );
    let listed = assert_no_partial_backup(&mut t, dir.path(), PAAS_SERVER);
    t.check(
        listed.len() == 2,
        "the backup and the safety backup are listed",
    );
    assert_no_remote_temp(&mut t, &remote);
    assert_store_readable(&mut t, dir.path());
    let again = ops::backup_restore(&ctx, Some(PAAS_SERVER), Some(&id)).await;
    t.check(
        again.is_ok(),
        format!("with the database back, the restore works: {again:?}"),
    );
    t.check(
        host.pg.psql(kind.database(), ROWS).unwrap() == "1:one,2:two,3:three",
        "and brings the backup's rows back",
    );
    t.finish();
}

/// The database never says it is ready: the wait times out with a hint,
/// and Dokploy is started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dokploy_database_that_never_gets_ready() {
    let _serial = SERIAL.lock().await;
    let kind = Kind::Dokploy;
    let host = paas_host::start(kind);
    let root = host.shim.root().to_string_lossy().into_owned();
    // The host's platform, waiting 2 s for its database instead of 180.
    let platform = kastell_dokploy::build(PlatformContext {
        transport: host.sshd.ssh(),
        target: PlatformTarget {
            name: PAAS_SERVER.into(),
            ip: "127.0.0.1".into(),
            domain: None,
            backup_paths: Vec::new(),
        },
        root: kastell_core::types::PlatformRoot::new(&root).unwrap(),
        privilege: kastell_core::types::Privilege::default(),
        options: [
            ("health_url", health_endpoint().as_str()),
            ("db_ready_timeout_secs", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctx = paas_context(dir.path(), "dokploy", host.sshd.ssh(), platform);
    let (id, changed) = backed_up_then_changed(&host, &ctx, kind).await;

    let mut t = Tally::new("platform-db-never-ready", &[]);
    let remote = RemoteTemp::snapshot(host.sshd.sshd.user());
    const ARMED: usize = 20;
    for _ in 0..ARMED {
        host.shim
            .fail_next("pg_isready", 2, "/var/run/postgresql:5432 - no response")
            .unwrap();
    }
    let err = ops::backup_restore(&ctx, Some(PAAS_SERVER), Some(&id))
        .await
        .unwrap_err();
    let unused = host
        .shim
        .pending_failures()
        .iter()
        .filter(|k| k.as_str() == "pg_isready")
        .count();
    t.injected(ARMED - unused);
    assert_user_sees(
        &mut t,
        &err,
        &["timeout"],
        &[
            "Wait for database failed",
            "did not accept connections within 2s",
        ],
    );
    t.check(
        err.hint
            .as_deref()
            .unwrap_or("")
            .contains("db_ready_timeout_secs"),
        "the hint says how to wait longer",
    );
    let last = err.steps.last().unwrap();
    t.check(
        last.name == "Start Dokploy" && last.status == ops::StepOutcome::Success,
        format!("Dokploy was started again: {:?}", err.steps),
    );
    assert_paas_running(&mut t, &host);
    t.check(
        host.pg.psql(kind.database(), ROWS).unwrap() == changed,
        "the data is as it was",
    );
    let listed = assert_no_partial_backup(&mut t, dir.path(), PAAS_SERVER);
    t.check(
        listed.len() == 2,
        "the backup and the safety backup are listed",
    );
    assert_no_remote_temp(&mut t, &remote);
    assert_store_readable(&mut t, dir.path());
    t.finish();
}
