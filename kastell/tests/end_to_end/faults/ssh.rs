//! Fault injection, SSH side: the connection to a server dies during a
//! backup, during a restore and while a reboot is being waited for, and
//! the whole sshd stops during a restore. The servers are the sandbox's
//! fake hosts and a fake Coolify host (a real PostgreSQL behind the
//! `docker` shim), all behind a real OpenSSH server on loopback; a
//! connection is killed the way a network failure or a host going down
//! kills it: every session process of the daemon gets `SIGKILL`
//! (`LocalSshd::kill_sessions`), while the daemon keeps listening.
//!
//! After each fault: what the user sees (through the operations layer),
//! no complete-looking partial backup, no temporary file on the server,
//! the platform running again, the store readable and, for reboots, the
//! server rebooted exactly once.
//!
//! Stopping the sshd in the middle of a backup is
//! `tests/backup_killed.rs` (nothing listed, nothing staged, nothing left
//! on the server); it is not repeated here.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "coolify"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::faults::common as faults_common;
use crate::paas_host;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faults_common::{
    PAAS_SERVER, RemoteTemp, SERIAL, Tally, Watched, assert_host_healthy, assert_no_partial_backup,
    assert_no_remote_temp, assert_paas_running, assert_store_readable, assert_user_sees,
    paas_context,
};
use kastell::engine::backup::STAGING_PREFIX;
use kastell::ops::{self, Context};
use kastell::surfaces::sandbox::{MANUAL_SERVER, Sandbox, SandboxPlan};
use kastell::{Env, Surface};
use kastell_core::Transport;

/// How long a fault may take to become injectable before the test gives
/// up (a broken harness, not a timing assertion).
const SETUP_LIMIT: Duration = Duration::from_secs(60);

/// Bytes of incompressible data put under a backed-up path, so transfers
/// last long enough to be interrupted.
const BLOB: u64 = 48 << 20;

/// Bytes staged so far for `server` in the store at `dir`.
fn staged_bytes(dir: &Path, server: &str) -> u64 {
    let server_dir = dir.join("backups").join(server);
    std::fs::read_dir(server_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Writes `len` pseudo-random bytes to `path`.
fn write_blob(path: &Path, len: u64) {
    let (mut data, _) = kastell_testkit::data::RandomReader::new(6, len);
    let mut file = std::fs::File::create(path).unwrap();
    std::io::copy(&mut data, &mut file).unwrap();
    file.flush().unwrap();
}

/// Polls `ready` every 5 ms until it holds, failing when `task` ended
/// first or the harness limit passes.
async fn strike_when<T>(task: &tokio::task::JoinHandle<T>, what: &str, ready: impl Fn() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(!task.is_finished(), "the operation ended before {what}");
        assert!(started.elapsed() < SETUP_LIMIT, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The sandbox with one Hetzner server and the manual server, and its
/// operations context.
struct Fleet {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plan = SandboxPlan {
            providers: Some(vec!["hetzner".to_owned()]),
            servers_per_provider: 1,
            manual_server: true,
            platform: None,
            spare_hosts_per_provider: 0,
        };
        let sandbox = Sandbox::start_with(dir.path(), &plan).await.unwrap();
        Self { sandbox, dir }
    }

    fn ctx(&self) -> Context {
        self.sandbox
            .context(&Env::from_pairs([("KASTELL_LOG", "warn")]), Surface::Cli)
    }

    fn user(&self) -> String {
        self.sandbox.sshd().user().to_owned()
    }

    fn root(&self, server: &str) -> std::path::PathBuf {
        let address = self.sandbox.server(server).unwrap().address;
        self.sandbox.hosts().root(address).unwrap()
    }
}

/// The connection dies while a backup streams in: nothing is listed or
/// staged, nothing is left on the server, the host still answers, and the
/// next backup works.
async fn killed_mid_backup(fleet: &Fleet) {
    let mut t = Tally::new("ssh-killed-mid-backup", &[]);
    let ctx = fleet.ctx();
    let blob = fleet.root(MANUAL_SERVER).join("etc/nginx/blob.bin");
    write_blob(&blob, BLOB);
    fleet.sandbox.hosts().hand_over().unwrap();
    let remote = RemoteTemp::snapshot(&fleet.user());

    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move { ops::backup_create(&ctx, Some(MANUAL_SERVER)).await }
    });
    strike_when(&task, "the backup streamed", || {
        staged_bytes(fleet.dir.path(), MANUAL_SERVER) > 0
    })
    .await;
    let killed = fleet.sandbox.sshd().kill_sessions();
    t.injected(1);
    t.check(killed > 0, "a session was open to kill");

    let err = task
        .await
        .unwrap()
        .expect_err("a killed connection fails the backup");
    assert_user_sees(
        &mut t,
        &err,
        &["unavailable", "command_failed", "timeout", "unexpected"],
        &[],
    );
    let listed = assert_no_partial_backup(&mut t, fleet.dir.path(), MANUAL_SERVER);
    t.check(listed.is_empty(), format!("nothing is listed: {listed:?}"));
    assert_no_remote_temp(&mut t, &remote);
    assert_store_readable(&mut t, fleet.dir.path());
    assert_host_healthy(&mut t, &ctx, MANUAL_SERVER).await;
    let again = ops::backup_create(&ctx, Some(MANUAL_SERVER)).await;
    t.check(again.is_ok(), format!("the next backup works: {again:?}"));
    let listed = assert_no_partial_backup(&mut t, fleet.dir.path(), MANUAL_SERVER);
    t.check(listed.len() == 1, "exactly the new backup is listed");
    t.finish();
}

/// The connection dies while a restore streams the archive to the server
/// (the safety backup already taken): the restore fails, the server's
/// files are as they were, the restore script's temporary directory is
/// gone, and both backups are intact.
async fn killed_mid_restore_bare(fleet: &Fleet) {
    let mut t = Tally::new("ssh-killed-mid-restore-bare", &[]);
    let ctx = fleet.ctx();
    let listed = ops::backup_list(&ctx, Some(MANUAL_SERVER)).await.unwrap();
    let id = listed.backups[0].backup_id.clone();
    let crontab = fleet.root(MANUAL_SERVER).join("etc/crontab");
    std::fs::write(&crontab, "# changed after the backup\n").unwrap();
    fleet.sandbox.hosts().hand_over().unwrap();
    let remote = RemoteTemp::snapshot(&fleet.user());

    let task = tokio::spawn({
        let (ctx, id) = (ctx.clone(), id.clone());
        async move { ops::backup_restore(&ctx, Some(MANUAL_SERVER), Some(&id)).await }
    });
    // The restore script receives the archive into a private temporary
    // directory before unpacking it: strike while it arrives.
    strike_when(&task, "the archive was being received", || {
        remote
            .new_entries()
            .iter()
            .any(|dir| std::fs::metadata(dir.join("archive.tar")).is_ok_and(|m| m.len() > 0))
    })
    .await;
    let killed = fleet.sandbox.sshd().kill_sessions();
    t.injected(1);
    t.check(killed > 0, "a session was open to kill");

    let err = task
        .await
        .unwrap()
        .expect_err("a killed connection fails the restore");
    assert_user_sees(
        &mut t,
        &err,
        &["unavailable", "command_failed", "timeout", "unexpected"],
        &[],
    );
    t.check(
        err.steps.iter().any(|s| s.name == "Safety backup"),
        "the steps that ran are shown",
    );
    assert_no_remote_temp(&mut t, &remote);
    let now = std::fs::read_to_string(&crontab).unwrap();
    t.check(
        now == "# changed after the backup\n",
        format!("nothing was half-restored: crontab is {now:?}"),
    );
    let listed = assert_no_partial_backup(&mut t, fleet.dir.path(), MANUAL_SERVER);
    t.check(
        listed.len() == 2,
        "the backup and the safety backup are listed",
    );
    assert_store_readable(&mut t, fleet.dir.path());
    assert_host_healthy(&mut t, &ctx, MANUAL_SERVER).await;
    let again = ops::backup_restore(&ctx, Some(MANUAL_SERVER), Some(&id)).await;
    t.check(
        again.is_ok(),
        format!("the restore works once the connection holds: {again:?}"),
    );
    let now = std::fs::read_to_string(&crontab).unwrap();
    t.check(
        now.contains("nightly-report"),
        "the backup's crontab is back",
    );
    std::fs::remove_file(fleet.root(MANUAL_SERVER).join("etc/nginx/blob.bin")).unwrap();
    t.finish();
}

/// The connection dies while a reboot is waited for, on a cloud server
/// (rebooted through the provider) and on the manual server (rebooted over
/// SSH): the wait rides it out, the reboot is proven by the new boot id and
/// happened exactly once.
async fn killed_during_reboot_wait(fleet: &Fleet) {
    let mut t = Tally::new("ssh-killed-during-reboot-wait", &[]);
    let remote = RemoteTemp::snapshot(&fleet.user());
    let sandbox = &fleet.sandbox;

    // The cloud server: strike once the provider's reboot reached the host.
    let cloud = sandbox.server("hetzner-web").unwrap().clone();
    let ctx = fleet.ctx();
    let boots = sandbox.boots(&cloud).unwrap();
    let boot_before = sandbox.hosts().boot_id(cloud.address);
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move { ops::restart(&ctx, Some("hetzner-web")).await }
    });
    strike_when(&task, "the provider rebooted the host", || {
        sandbox.hosts().boot_id(cloud.address) != boot_before
    })
    .await;
    sandbox.sshd().kill_sessions();
    t.injected(1);
    let done = task.await.unwrap();
    t.check(
        done.is_ok(),
        format!("the restart rides out the dropped connection: {done:?}"),
    );
    let proof = done.unwrap().body.reboot;
    t.check(
        proof.boot_id_before.is_some()
            && proof.boot_id_before.as_deref() != Some(&*proof.boot_id_after),
        "the reboot is proven by a new boot id",
    );
    t.check(
        sandbox.boots(&cloud) == Some(boots + 1),
        "the provider rebooted it exactly once",
    );
    t.saw(&format!("success, {}", proof.detail()));
    assert_host_healthy(&mut t, &ctx, "hetzner-web").await;

    // The manual server: strike right after the reboot command was sent,
    // while the host goes down.
    let sent = Arc::new(tokio::sync::Notify::new());
    let plain = fleet.ctx();
    let signal = sent.clone();
    let watched: ops::TransportFactory = Arc::new(move |record| {
        let signal = signal.clone();
        Arc::new(Watched::new(
            plain.transport_for(record),
            Box::new(move |command| {
                if command.contains("systemctl reboot") {
                    signal.notify_one();
                }
            }),
        )) as Arc<dyn Transport>
    });
    let ctx = fleet.ctx().with_transport_factory(watched);
    sandbox.hosts().clear_log().unwrap();
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move { ops::restart(&ctx, Some(MANUAL_SERVER)).await }
    });
    tokio::time::timeout(SETUP_LIMIT, sent.notified())
        .await
        .expect("the reboot command was sent");
    sandbox.sshd().kill_sessions();
    t.injected(1);
    let done = task.await.unwrap();
    t.check(
        done.is_ok(),
        format!("the SSH restart rides out the dropped connection: {done:?}"),
    );
    let proof = done.unwrap().body.reboot;
    t.check(
        proof.boot_id_before.as_deref() != Some(&*proof.boot_id_after),
        "the reboot is proven by a new boot id",
    );
    let reboots = sandbox
        .hosts()
        .log()
        .iter()
        .filter(|line| line.starts_with("reboot"))
        .count();
    t.check(
        reboots == 1,
        format!("the host rebooted exactly once ({reboots})"),
    );
    t.saw(&format!("success, {}", proof.detail()));
    assert_host_healthy(&mut t, &ctx, MANUAL_SERVER).await;
    assert_no_remote_temp(&mut t, &remote);
    assert_store_readable(&mut t, fleet.dir.path());
    t.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_on_the_sandbox_fleet() {
    let _serial = SERIAL.lock().await;
    let fleet = Fleet::start().await;
    killed_mid_backup(&fleet).await;
    killed_mid_restore_bare(&fleet).await;
    killed_during_reboot_wait(&fleet).await;
}

/// Rows of the round-trip table, as one line.
const ROWS: &str = "SELECT count(*) || ':' || coalesce(sum(length(blob)), 0) FROM big";

/// A fake Coolify host with a table large enough that its restore takes a
/// while, a store server `paas-1` for it, and an operations context whose
/// transport and platform are the host's.
struct Paas {
    host: kastell_testkit::platform::PaasHost,
    dir: tempfile::TempDir,
    ctx: Context,
}

impl Paas {
    fn start() -> Self {
        let host = paas_host::start(paas_host::Kind::Coolify);
        host.pg
            .execute(
                "coolify",
                "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 40) AS blob \
                 FROM generate_series(1, 60000) g;",
            )
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ctx = paas_context(
            dir.path(),
            "coolify",
            host.sshd.ssh(),
            host.platform.clone(),
        );
        Self { host, dir, ctx }
    }

    fn rows(&self) -> String {
        self.host.pg.psql("coolify", ROWS).unwrap()
    }

    /// Backs up, then changes the data; returns the backup id and the
    /// changed rows.
    async fn backup_then_change(&self) -> (String, String) {
        let created = ops::backup_create(&self.ctx, Some(PAAS_SERVER))
            .await
            .unwrap();
        self.host
            .pg
            .execute("coolify", "DELETE FROM big WHERE id % 2 = 0;")
            .unwrap();
        (created.body.backup_id, self.rows())
    }

    /// Starts a restore of `id` and waits until `pg_restore` runs.
    async fn restore_until_pg_restore(
        &self,
        id: &str,
    ) -> tokio::task::JoinHandle<Result<ops::BackupRestoreResult, ops::OpError>> {
        self.host.shim.clear_commands().unwrap();
        let task = tokio::spawn({
            let (ctx, id) = (self.ctx.clone(), id.to_owned());
            async move { ops::backup_restore(&ctx, Some(PAAS_SERVER), Some(&id)).await }
        });
        let shim = &self.host.shim;
        strike_when(&task, "pg_restore ran", || {
            shim.commands().iter().any(|c| c.contains("pg_restore"))
        })
        .await;
        task
    }
}

/// The connection dies while `pg_restore` reads the dump: the database is
/// left exactly as it was (one transaction), the engine's guard starts
/// Coolify again over a new connection, nothing is left on the server and
/// both backups are intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_restore_leaves_the_platform_started() {
    let _serial = SERIAL.lock().await;
    let mut t = Tally::new("ssh-killed-mid-restore-coolify", &[]);
    let paas = Paas::start();
    let (id, changed) = paas.backup_then_change().await;
    let remote = RemoteTemp::snapshot(paas.host.sshd.sshd.user());
    let task = paas.restore_until_pg_restore(&id).await;
    let killed = paas.host.sshd.sshd.kill_sessions();
    t.injected(1);
    t.check(killed > 0, "a session was open to kill");

    let err = task
        .await
        .unwrap()
        .expect_err("a killed connection fails the restore");
    assert_user_sees(
        &mut t,
        &err,
        &["unavailable", "command_failed", "timeout", "unexpected"],
        &[],
    );
    let names: Vec<&str> = err.steps.iter().map(|s| s.name.as_str()).collect();
    t.check(
        names.last() == Some(&"Start Coolify"),
        format!("the platform was started again last: {names:?}"),
    );
    t.check(
        err.steps
            .last()
            .is_some_and(|s| s.status == ops::StepOutcome::Success),
        "and it started",
    );
    assert_paas_running(&mut t, &paas.host);
    t.check(
        paas.rows() == changed,
        "the database is exactly as before the restore",
    );
    assert_no_remote_temp(&mut t, &remote);
    let listed = assert_no_partial_backup(&mut t, paas.dir.path(), PAAS_SERVER);
    t.check(
        listed.len() == 2,
        "the backup and the safety backup are listed",
    );
    assert_store_readable(&mut t, paas.dir.path());
    t.finish();
}

/// The whole sshd stops while `pg_restore` reads the dump: the database is
/// left as it was, and since the guard cannot reach the server to start
/// Coolify again, the user is told exactly that, with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_stopped_mid_restore_says_the_platform_may_be_down() {
    let _serial = SERIAL.lock().await;
    let mut t = Tally::new("sshd-stopped-mid-restore-coolify", &[]);
    let mut paas = Paas::start();
    let (id, changed) = paas.backup_then_change().await;
    let remote = RemoteTemp::snapshot(paas.host.sshd.sshd.user());
    let task = paas.restore_until_pg_restore(&id).await;
    paas.host.sshd.sshd.stop();
    t.injected(1);

    let err = task
        .await
        .unwrap()
        .expect_err("a stopped sshd fails the restore");
    assert_user_sees(
        &mut t,
        &err,
        &["unavailable", "command_failed", "timeout", "unexpected"],
        &[],
    );
    let start = err.steps.last().unwrap();
    t.check(
        start.name == "Start Coolify" && start.status == ops::StepOutcome::Failure,
        format!("the failed start is the last step: {:?}", err.steps),
    );
    t.check(
        start
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("start it by hand")),
        format!("the user is told to start it by hand: {start:?}"),
    );
    t.check(
        paas.rows() == changed,
        "the database is exactly as before the restore",
    );
    assert_no_remote_temp(&mut t, &remote);
    let listed = assert_no_partial_backup(&mut t, paas.dir.path(), PAAS_SERVER);
    t.check(
        listed.len() == 2,
        "the backup and the safety backup are listed",
    );
    assert_store_readable(&mut t, paas.dir.path());
    t.finish();
}
