//! Maintenance that rolls itself back, on the sandbox (a real sshd and fake
//! host, the Hetzner simulator): an update after which a declared health
//! check fails is rolled back to the snapshot taken before it (`auto`:
//! restored through the simulator, a new boot id, health checked again),
//! asked about (`ask`: in a terminal, declined leaves it and accepted rolls
//! back; over MCP no one is asked and the confirmed restore is suggested)
//! or left (`never`). The declared check is an HTTP endpoint on loopback
//! that answers 503 until the server boots again: a service the update
//! broke and the snapshot's disk brings back.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use kastell::ops::{self, MaintainOptions, OpError, StepOutcome};
use kastell::state::checks::{CheckEntry, ChecksFile, HttpCheck, RollbackPolicy, Scope};
use kastell::surfaces::sandbox::{Sandbox, SandboxServer};
use kastell::{Env, Surface};

use crate::support;

fn unsafe_mode() -> Env {
    Env::from_pairs([("KASTELL_SAFE_MODE", "false")])
}

/// A health endpoint on loopback answering the current value of `status`
/// to every request; its URL.
fn health_endpoint(status: Arc<AtomicU16>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = [0u8; 2048];
            let _ = stream.read(&mut head);
            let code = status.load(Ordering::SeqCst);
            let answer =
                format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    url
}

/// Sets `status` to 200 once the fake host at `address` boots again (its
/// boot id changes), until `done`.
async fn healthy_after_a_boot(
    sandbox: &Sandbox,
    address: Ipv4Addr,
    status: &AtomicU16,
    done: &AtomicBool,
) {
    let first = sandbox.hosts().boot_id(address);
    while !done.load(Ordering::SeqCst) {
        if sandbox.hosts().boot_id(address) != first {
            status.store(200, Ordering::SeqCst);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A one-server sandbox broken by updates, and its server as it was
/// before anything ran.
struct Broken {
    sandbox: Sandbox,
    name: String,
    /// What the declared health endpoint answers (503 for now).
    status: Arc<AtomicU16>,
    server: SandboxServer,
    /// The provider's boot count of the server.
    boots: u64,
    /// The server's boot id.
    boot_id: String,
}

/// A one-server sandbox whose server is tagged `prod`, with `scope`'s
/// entry in checks.json declaring the endpoint (which answers 503 for
/// now) and `policy`.
async fn broken_by_updates(
    dir: &std::path::Path,
    scope: fn(&str) -> Scope,
    policy: RollbackPolicy,
) -> Broken {
    let (sandbox, name) = support::prod_sandbox(dir).await;
    let status = Arc::new(AtomicU16::new(503));
    let url = health_endpoint(status.clone());
    let mut file = ChecksFile::default();
    file.set(
        &scope(&name),
        CheckEntry {
            rollback: Some(policy),
            http: vec![HttpCheck { url, status: 200 }],
            commands: vec!["test -n \"$HOME\"".to_owned()],
            wait: Some(2),
            ..CheckEntry::default()
        },
    );
    file.save(sandbox.store().dir()).unwrap();
    let server = sandbox.servers()[0].clone();
    let boots = sandbox.boots(&server).unwrap();
    let boot_id = sandbox.hosts().boot_id(server.address).unwrap();
    Broken {
        sandbox,
        name,
        status,
        server,
        boots,
        boot_id,
    }
}

impl Broken {
    /// Runs `work` while the endpoint turns healthy once the server boots
    /// again (a restore from the snapshot); its result.
    async fn healing<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let done = AtomicBool::new(false);
        let run = async {
            let out = work.await;
            done.store(true, Ordering::SeqCst);
            out
        };
        let (out, ()) = tokio::join!(
            run,
            healthy_after_a_boot(&self.sandbox, self.server.address, &self.status, &done)
        );
        out
    }

    fn boots_now(&self) -> u64 {
        self.sandbox.boots(&self.server).unwrap()
    }
}

fn step<'a>(err: &'a OpError, name: &str) -> &'a ops::Step {
    err.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {:?}", err.steps))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_restores_the_snapshot_proves_the_boot_and_checks_health_again() {
    let dir = tempfile::tempdir().unwrap();
    let b = broken_by_updates(
        dir.path(),
        |n| Scope::Server(n.to_owned()),
        RollbackPolicy::Auto,
    )
    .await;
    let ctx = b.sandbox.context(&unsafe_mode(), Surface::Cli);
    let err = b
        .healing(ops::maintain(
            &ctx,
            Some(&b.name),
            MaintainOptions::default(),
        ))
        .await
        .unwrap_err();

    let snapshot = step(&err, "Snapshot");
    assert_eq!(snapshot.status, StepOutcome::Success, "{:?}", err.steps);
    let health = step(&err, "Health Check");
    assert_eq!(health.status, StepOutcome::Failure);
    assert!(
        health
            .error
            .as_deref()
            .unwrap()
            .contains("answered 503, not 200"),
        "{health:?}"
    );
    assert_eq!(step(&err, "Reboot").status, StepOutcome::Skipped);
    let rollback = step(&err, "Rollback");
    assert_eq!(rollback.status, StepOutcome::Success, "{:?}", err.steps);
    let after = b.sandbox.hosts().boot_id(b.server.address).unwrap();
    assert_ne!(after, b.boot_id);
    let detail = rollback.detail.as_deref().unwrap();
    assert!(
        detail.contains(&b.boot_id) && detail.contains(&after),
        "the boot ids prove it: {detail}"
    );
    let check = step(&err, "Rollback Check");
    assert_eq!(check.status, StepOutcome::Success, "{check:?}");
    assert!(
        check
            .detail
            .as_deref()
            .unwrap()
            .contains("2 declared checks pass"),
        "{check:?}"
    );
    assert_eq!(
        b.boots_now(),
        b.boots + 1,
        "one boot: the simulator's rebuild from the snapshot"
    );
    assert!(
        err.error.starts_with("Maintenance failed at Health Check")
            && err.error.contains("rolled back to snapshot")
            && err.error.contains("healthy again"),
        "{}",
        err.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_from_a_tag_reports_and_leaves_the_server_with_the_restore_suggested() {
    let dir = tempfile::tempdir().unwrap();
    let b = broken_by_updates(
        dir.path(),
        |_| Scope::Tag("prod".into()),
        RollbackPolicy::Never,
    )
    .await;
    let ctx = b.sandbox.context(&unsafe_mode(), Surface::Cli);
    let err = ops::maintain(&ctx, Some(&b.name), MaintainOptions::default())
        .await
        .unwrap_err();
    assert_eq!(step(&err, "Health Check").status, StepOutcome::Failure);
    let rollback = step(&err, "Rollback");
    assert_eq!(rollback.status, StepOutcome::Skipped);
    assert!(
        rollback
            .detail
            .as_deref()
            .unwrap()
            .contains("Rollback policy never (tag prod)"),
        "{rollback:?}"
    );
    assert!(err.steps.iter().all(|s| s.name != "Rollback Check"));
    assert_eq!(b.boots_now(), b.boots, "left as it is");
    assert_eq!(
        b.sandbox.hosts().boot_id(b.server.address).unwrap(),
        b.boot_id
    );
    assert!(err.error.contains("not rolled back"), "{}", err.error);
    let restore = err
        .suggested_actions
        .iter()
        .find(|s| s.command.contains("snapshot-restore"))
        .unwrap_or_else(|| panic!("{:?}", err.suggested_actions));
    assert!(
        restore.command.contains("snapshotId"),
        "{}",
        restore.command
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_over_mcp_asks_no_one_and_leaves_the_confirmed_restore_to_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let b = broken_by_updates(
        dir.path(),
        |n| Scope::Server(n.to_owned()),
        RollbackPolicy::Ask,
    )
    .await;
    support::write_safety(
        b.sandbox.store().dir(),
        &serde_json::json!({"level": "destructive"}),
    );
    let ctx = b.sandbox.context(&unsafe_mode(), Surface::Mcp);
    let err = ops::maintain(&ctx, Some(&b.name), MaintainOptions::default())
        .await
        .unwrap_err();
    let rollback = step(&err, "Rollback");
    assert_eq!(rollback.status, StepOutcome::Skipped);
    assert!(
        rollback
            .detail
            .as_deref()
            .unwrap()
            .contains("no one to ask here"),
        "{rollback:?}"
    );
    assert_eq!(b.boots_now(), b.boots, "never auto-accepted");
    assert!(
        err.suggested_actions
            .iter()
            .any(|s| s.command.contains("snapshot-restore")),
        "{:?}",
        err.suggested_actions
    );
}

/// `kastell --json maintain --force <server>` in a terminal with `ask`, typing
/// `answer` at the rollback question; what the terminal showed.
async fn maintain_in_terminal(sandbox: &Sandbox, name: &str, answer: &'static [u8]) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = sandbox.cli_environment().into_iter().collect();
    env.push(("KASTELL_SAFE_MODE".into(), "false".into()));
    let home_path = home.path().to_owned();
    let name = name.to_owned();
    let (text, _ok) = tokio::task::spawn_blocking(move || {
        crate::cli::original::in_terminal_with(
            &home_path,
            &env,
            &["--json", "maintain", "--force", &name],
            "[y/N]",
            answer,
        )
    })
    .await
    .unwrap();
    drop(home);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_in_a_terminal_says_what_is_lost_and_declined_leaves_accepted_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = broken_by_updates(
        dir.path(),
        |n| Scope::Server(n.to_owned()),
        RollbackPolicy::Ask,
    )
    .await;

    let declined = maintain_in_terminal(&b.sandbox, &b.name, b"n\n").await;
    assert!(
        declined.contains("Everything written on the server since then"),
        "{declined}"
    );
    assert!(declined.contains("Declined at the prompt"), "{declined}");
    assert_eq!(b.boots_now(), b.boots, "declined: left");

    let accepted = b
        .healing(maintain_in_terminal(&b.sandbox, &b.name, b"y\n"))
        .await;
    assert!(accepted.contains("rolled back to snapshot"), "{accepted}");
    assert!(accepted.contains("healthy again"), "{accepted}");
    assert_eq!(
        b.boots_now(),
        b.boots + 1,
        "accepted: restored from the snapshot"
    );
}
