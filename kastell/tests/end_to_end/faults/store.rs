//! Fault injection, the fleet store and its locks: two maintenance runs
//! (in one process and from a second process) go for one server at once,
//! `kastell` processes writing the fleet store are killed mid-write, a
//! full disk refuses a restart it could not audit, and a FIFO in place of
//! a kastell file is refused rather than waited on.
//!
//! Same fake hosts and real disks as `local.rs`, whose set-up this shares.
//! Two processes adding servers at once is `tests/cli.rs`
//! (`two_concurrent_processes_lose_no_server`); here writers are killed.
#![cfg(feature = "bare")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::faults::common as faults_common;
use kastell_testkit::tmpfs::Tmpfs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faults_common::{
    SERIAL, Tally, assert_host_healthy, assert_no_partial_backup, assert_store_readable,
    assert_user_sees, entries,
};
use kastell::ops::{self, Context, MaintainOptions};
use kastell::surfaces::sandbox::MANUAL_SERVER;
use kastell_core::types::{
    ArtifactSink, ArtifactSource, BackupReport, Health, PlatformInfo, RestoreReport, UpdateOptions,
    UpdateReport,
};
use kastell_core::{Platform, PlatformCapability, Result};
use tokio::sync::Notify;

use super::local::{commands_run, ctx, fleet, kastell_limited, watched_ctx};

/// Holds a platform's update until released, so a second operation can be
/// started while the first one is certainly running.
struct Gate {
    entered: Notify,
    release: Notify,
}

#[derive(Debug)]
struct Gated {
    inner: Arc<dyn Platform>,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

#[async_trait]
impl Platform for Gated {
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
        self.gate.entered.notify_one();
        self.gate.release.notified().await;
        self.inner.update(options).await
    }
    async fn backup(&self, sink: &mut dyn ArtifactSink) -> Result<BackupReport> {
        self.inner.backup(sink).await
    }
    async fn restore(&self, source: &dyn ArtifactSource) -> RestoreReport {
        self.inner.restore(source).await
    }
    async fn stop(&self) -> Result<()> {
        self.inner.stop().await
    }
    async fn start(&self) -> Result<()> {
        self.inner.start().await
    }
}

/// Two maintenance runs on one server at once: the second (from this
/// process or another `kastell` process) is refused at once with a clear
/// message naming the first, before anything runs on the server; so are a
/// restart and an update. A backup waits its turn. Once the first is done,
/// a maintenance runs normally: the host rebooted exactly once per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_maintenance_of_one_server_is_refused_while_the_first_runs() {
    let _serial = SERIAL.lock().await;
    let mut t = Tally::new("local-two-maintains", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kastell");
    let sandbox = fleet(&dir).await;
    let gate = Arc::new(Gate {
        entered: Notify::new(),
        release: Notify::new(),
    });
    let plain = ctx(&sandbox);
    let held = gate.clone();
    let gated = ctx(&sandbox).with_platform_factory(Arc::new(move |record, transport| {
        let inner = plain.platform_for(record, transport)?;
        Ok(Arc::new(Gated {
            inner,
            gate: held.clone(),
        }) as Arc<dyn Platform>)
    }));
    sandbox.hosts().clear_log().unwrap();
    let reboots = || {
        sandbox
            .hosts()
            .log()
            .iter()
            .filter(|l| l.starts_with("reboot"))
            .count()
    };

    let first = tokio::spawn({
        let ctx = gated.clone();
        async move { ops::maintain(&ctx, Some(MANUAL_SERVER), MaintainOptions::default()).await }
    });
    tokio::time::timeout(Duration::from_secs(60), gate.entered.notified())
        .await
        .expect("the first maintenance reached its update");

    // A second one in this process, and a restart and an update.
    let (second_ctx, seen) = watched_ctx(&sandbox);
    let err = ops::maintain(&second_ctx, Some(MANUAL_SERVER), MaintainOptions::default())
        .await
        .unwrap_err();
    t.injected(1);
    assert_user_sees(
        &mut t,
        &err,
        &["invalid_state"],
        &["Another kastell operation is already running on server manual-web: maintain (pid"],
    );
    let err = ops::restart(&second_ctx, Some(MANUAL_SERVER))
        .await
        .unwrap_err();
    t.injected(1);
    assert_user_sees(&mut t, &err, &["invalid_state"], &["maintain (pid"]);
    let err = ops::update(&second_ctx, Some(MANUAL_SERVER))
        .await
        .unwrap_err();
    t.injected(1);
    assert_user_sees(&mut t, &err, &["invalid_state"], &["maintain (pid"]);
    t.check(
        commands_run(&seen) == 0,
        "nothing of theirs ran on the server",
    );

    // A second process.
    let out = kastell_limited(
        &sandbox,
        &dir,
        1 << 20,
        &["maintain", MANUAL_SERVER, "--force"],
    );
    t.injected(1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    t.check(
        !out.status.success(),
        format!("the second process is refused: {stderr}"),
    );
    t.check(
        stderr.contains(
            "Another kastell operation is already running on server manual-web: maintain (pid",
        ),
        format!("and told which operation runs: {stderr}"),
    );
    t.check(stderr.contains("hint: "), format!("with a hint: {stderr}"));
    let error = stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("");
    t.saw(&format!("second process: {error}"));
    t.check(reboots() == 0, "no reboot happened meanwhile");

    // A backup waits for the server instead of being refused.
    let backup = tokio::spawn({
        let ctx = ctx(&sandbox);
        async move { ops::backup_create(&ctx, Some(MANUAL_SERVER)).await }
    });

    gate.release.notify_one();
    let done = first.await.unwrap();
    t.check(
        done.is_ok(),
        format!("the first maintenance finishes: {done:?}"),
    );
    t.check(reboots() == 1, "the host rebooted once");
    let backed_up = backup.await.unwrap();
    t.check(
        backed_up.is_ok(),
        format!("the waiting backup ran: {backed_up:?}"),
    );

    gate.release.notify_one();
    let again = gated_maintain(&gated).await;
    t.check(
        again.is_ok(),
        format!("a maintenance after it runs: {again:?}"),
    );
    t.check(reboots() == 2, "and rebooted once more");
    assert_host_healthy(&mut t, &ctx(&sandbox), MANUAL_SERVER).await;
    assert_no_partial_backup(&mut t, &dir, MANUAL_SERVER);
    assert_store_readable(&mut t, &dir);
    t.finish();
}

async fn gated_maintain(ctx: &Context) -> std::result::Result<ops::MaintainResult, ops::OpError> {
    ops::maintain(ctx, Some(MANUAL_SERVER), MaintainOptions::default()).await
}

/// `kastell server add --name <name> --ip <ip>` on the store in `dir`.
fn add_server(dir: &Path, name: &str, ip: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kastell"));
    cmd.args([
        "server",
        "add",
        "--name",
        name,
        "--ip",
        ip,
        "--platform",
        "coolify",
    ])
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("HOME", dir)
    .env("KASTELL_DIR", dir)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// `kastell server add` processes killed at arbitrary points while two
/// others add servers: the store stays a readable JSON array, every add
/// that reported success is there, a killed add is all there or not at
/// all, and no lock is left to block the next writer.
#[test]
fn writers_killed_mid_write_leave_a_readable_store() {
    let mut t = Tally::new("local-store-killed-writers", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let workers: Vec<_> = [("a", "198.51.100"), ("b", "203.0.113")]
        .into_iter()
        .enumerate()
        .map(|(w, (tag, net))| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut killed = Vec::new();
                for i in 1..=24u32 {
                    let name = format!("srv-{tag}-{i}");
                    let mut child = add_server(&dir, &name, &format!("{net}.{i}"))
                        .spawn()
                        .unwrap();
                    // Every third add is killed after a delay that walks
                    // through its life: start-up, lock, write, rename.
                    if i % 3 == w as u32 {
                        std::thread::sleep(Duration::from_millis(u64::from(i % 8) * 3));
                        let _ = child.kill();
                        let status = child.wait().unwrap();
                        if status.success() {
                            kept.push(name);
                        } else {
                            killed.push(name);
                        }
                    } else {
                        let out = child.wait_with_output().unwrap();
                        assert!(
                            out.status.success(),
                            "{name}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                        kept.push(name);
                    }
                }
                (kept, killed)
            })
        })
        .collect();
    let mut kept = Vec::new();
    let mut killed = Vec::new();
    for worker in workers {
        let (k, x) = worker.join().unwrap();
        kept.extend(k);
        killed.extend(x);
    }
    t.injected(killed.len());
    // Readers never need the lock: the file is whole whatever was killed.
    let bytes = std::fs::read(dir.join("servers.json")).unwrap();
    let readable: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    t.check(
        readable.as_ref().is_some_and(serde_json::Value::is_array),
        "servers.json is whole while killed writers' leftovers lie around",
    );
    let debris = || -> Vec<String> {
        entries(&dir)
            .into_iter()
            .filter(|n| n.starts_with(kastell::state::store::TEMP_PREFIX) || n.contains(".lock."))
            .collect()
    };
    let stale_lock = dir.join("servers.json.lock").exists();
    let left_by_killed = debris().len();
    // The next writer breaks a lock left by a killed writer at once and
    // sweeps what it left.
    let out = add_server(&dir, "srv-after", "192.0.2.77")
        .output()
        .unwrap();
    t.check(
        out.status.success(),
        format!(
            "the next writer is not blocked: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    t.check(
        debris().is_empty(),
        format!(
            "the next writer swept the killed writers' temporary files: {:?}",
            debris()
        ),
    );
    let names = assert_store_readable(&mut t, &dir);
    for name in &kept {
        t.check(
            names.contains(name),
            format!("{name} (reported added) is there"),
        );
    }
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    t.check(unique.len() == names.len(), "no server is there twice");
    t.saw(&format!(
        "{} adds killed, {} kept, {} in the store; left by killed writers: lock {}, {left_by_killed} temporary files; the next write broke and swept them",
        killed.len(),
        kept.len(),
        names.len() - 1,
        if stale_lock { "yes" } else { "no" },
    ));
    t.finish();
}

/// Fills the file system holding `dir` with `dir/filler` until a write
/// fails with `ENOSPC`; returns the filler's path.
fn fill_disk(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    path
}

/// The audit log fails closed: on a full disk a restart, asked for on
/// the command line and over MCP, is refused before it runs (the boot id
/// stays, the host saw no reboot), saying that its audit entry could not
/// be written and what to do; `backup prune --apply` deletes nothing.
/// With room again the same restart runs and is recorded as started,
/// then ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_a_restart_that_cannot_be_audited() {
    let _serial = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kastell");
    let Some(_disk) = Tmpfs::mount(&dir, "2m") else {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    };
    let sandbox = fleet(&dir).await;
    let address = sandbox.server(MANUAL_SERVER).unwrap().address;
    let boot = || sandbox.hosts().boot_id(address);
    let before = boot();
    let rebooted = || {
        sandbox
            .hosts()
            .log()
            .iter()
            .any(|l| l.starts_with("reboot"))
    };
    let ctx = ctx(&sandbox);
    for _ in 0..2 {
        ops::backup_create(&ctx, Some(MANUAL_SERVER)).await.unwrap();
    }
    let backups = || entries(&dir.join("backups").join(MANUAL_SERVER));
    let kept = backups();
    let filler = fill_disk(&dir);

    // Pruning frees space, but deletes nothing it cannot record first.
    let out = kastell_limited(
        &sandbox,
        &dir,
        1 << 20,
        &[
            "backup",
            "prune",
            MANUAL_SERVER,
            "--keep-last",
            "1",
            "--apply",
            "--force",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("backup-prune on {MANUAL_SERVER} was not run")),
        "{stderr}"
    );
    assert_eq!(backups(), kept, "{stderr}");

    // The command line.
    let out = kastell_limited(
        &sandbox,
        &dir,
        1 << 20,
        &["restart", MANUAL_SERVER, "--force"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("restart on {MANUAL_SERVER} was not run")),
        "{stderr}"
    );
    assert!(
        stderr.contains("the audit entry was not written to"),
        "{stderr}"
    );
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("kastell audit verify"), "{stderr}");
    assert_eq!(boot(), before, "the CLI rebooted the host");
    assert!(!rebooted(), "{:?}", sandbox.hosts().log());

    // MCP, the same refusal as the tool's failure.
    let overlay: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    let mut env: Vec<(&str, &str)> = overlay
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let dir_text = dir.display().to_string();
    env.extend([
        ("KASTELL_DIR", dir_text.as_str()),
        ("KASTELL_SAFE_MODE", "false"),
    ]);
    let mcp = crate::mcp::common::start(tmp.path(), &env).await;
    let result = mcp
        .call(
            "server_maintain",
            serde_json::json!({"action": "restart", "server": MANUAL_SERVER}),
        )
        .await;
    let value = crate::mcp::common::failed(&result).clone();
    let error = value["error"].as_str().unwrap_or("");
    assert!(error.contains("was not run"), "{value}");
    assert!(error.contains("audit entry was not written"), "{value}");
    assert!(
        value["hint"]
            .as_str()
            .unwrap_or("")
            .contains("kastell audit verify"),
        "{value}"
    );
    assert_eq!(boot(), before, "kastell-mcp rebooted the host");
    assert!(!rebooted(), "{:?}", sandbox.hosts().log());
    drop(mcp);

    // Room again: the restart runs and the log holds it twice.
    std::fs::remove_file(filler).unwrap();
    let out = kastell_limited(
        &sandbox,
        &dir,
        1 << 20,
        &["restart", MANUAL_SERVER, "--force"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(boot(), before, "the restart ran once there was room");
    let log = kastell::state::audit::AuditLog::in_dir(&dir);
    let page = log
        .entries(&kastell::state::audit::AuditFilter::default())
        .unwrap();
    let outcomes: Vec<(&str, &str)> = page
        .entries
        .iter()
        .map(|e| (e.op.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        &outcomes[..2],
        [("restart", "ok"), ("restart", "started")],
        "{outcomes:?}"
    );
    assert!(log.verify().unwrap().ok);
    drop(sandbox);
}

/// Runs `cmd`, killing it when it has not ended within `limit`: `None`
/// then (it hung).
fn output_within(mut cmd: Command, limit: Duration) -> Option<std::process::Output> {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Some(out.unwrap()),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            None
        }
    }
}

/// A FIFO in place of `servers.json`, `safety.json`, `repositories.json`,
/// the audit log or its anchor, `retention.json` or `verifications.json`
/// hangs nothing: each command that reads it
/// ends at once with an error naming the path, and so does an MCP call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_place_of_a_kastell_file_is_refused_not_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let prune: &[&str] = &["backup", "prune", "web-1", "--keep-last", "1"];
    let cases: [(&str, &[&str]); 7] = [
        ("servers.json", &["server", "list"]),
        ("safety.json", &["update", "web-1", "--force"]),
        ("repositories.json", &["repo", "list"]),
        ("audit.jsonl", &["audit", "verify"]),
        ("audit.head", &["audit", "verify"]),
        ("retention.json", prune),
        ("verifications.json", prune),
    ];
    let kastell = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kastell"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", tmp.path())
            .env("KASTELL_DIR", &state)
            .stdin(Stdio::null());
        cmd
    };
    let added = kastell(&[
        "server",
        "add",
        "--name",
        "web-1",
        "--ip",
        "203.0.113.10",
        "--platform",
        "coolify",
    ])
    .output()
    .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    for (name, args) in cases {
        let path = state.join(name);
        let kept = std::fs::read(&path).ok();
        if kept.is_some() {
            std::fs::remove_file(&path).unwrap();
        }
        let made = Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success());
        let out = output_within(kastell(args), Duration::from_secs(20))
            .unwrap_or_else(|| panic!("kastell {args:?} hung on a FIFO {name}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{} is a FIFO (named pipe), not a regular file",
                path.display()
            )),
            "{name}: {stderr}"
        );
        std::fs::remove_file(&path).unwrap();
        if let Some(bytes) = kept {
            std::fs::write(&path, bytes).unwrap();
        }
    }

    // Over MCP: the call answers, with the error.
    let fifo = state.join("safety.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mcp = crate::mcp::common::start(tmp.path(), &[]).await;
    let call = mcp.call(
        "server_maintain",
        serde_json::json!({"action": "restart", "server": "web-1"}),
    );
    let result = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("kastell-mcp hung on a FIFO safety.json");
    let value = crate::mcp::common::failed(&result);
    assert!(
        value["error"]
            .as_str()
            .unwrap_or("")
            .contains("is a FIFO (named pipe)"),
        "{value}"
    );
}
