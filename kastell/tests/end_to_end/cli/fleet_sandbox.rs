//! `--all` doing real work through the `kastell` binary on a sandbox fleet
//! of 20 servers (the Hetzner simulator, each server its own fake host
//! behind real sshd daemons): `backup create --all` publishes one verified
//! backup per server, and `maintain --all` upgrades every server and
//! reboots each exactly once through the API, proven by its boot id. A
//! fleet run asks first (or takes `--force`) exactly when one server's
//! run would: `backup create --all` off a terminal runs without it,
//! `update --all` refuses.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use serde_json::Value;

use crate::support;

const FLEET: usize = 20;

async fn kastell(sandbox: &Sandbox, home: &std::path::Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

fn results(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    value.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_maintain_all_work_on_every_server_of_a_twenty_server_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: FLEET,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    assert_eq!(sandbox.servers().len(), FLEET);
    assert!(sandbox.sshds().len() > 1, "more hosts than one sshd serves");

    let backups = results(
        &kastell(
            &sandbox,
            home.path(),
            &["--json", "backup", "create", "--all", "--force"],
        )
        .await,
    );
    assert_eq!(backups.len(), FLEET);
    for (server, result) in sandbox.servers().iter().zip(&backups) {
        assert_eq!(result["success"], true, "{result}");
        assert_eq!(result["server"], server.name.as_str(), "fleet order");
    }
    // Each backup is complete and its checksums hold (first, middle, last).
    for server in [0, FLEET / 2, FLEET - 1].map(|i| &sandbox.servers()[i]) {
        let out = kastell(
            &sandbox,
            home.path(),
            &["--json", "backup", "verify", &server.name],
        )
        .await;
        assert!(
            out.status.success(),
            "{}: {}",
            server.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let boots: Vec<u64> = sandbox
        .servers()
        .iter()
        .map(|s| sandbox.boots(s).unwrap())
        .collect();
    // A rollout: the canary, then batches; `results` in plan order.
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "maintain", "--all", "--force"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rollout"]["state"], "finished", "{report}");
    let maintained = report["results"].as_array().unwrap().clone();
    assert_eq!(maintained.len(), FLEET);
    for ((server, result), before) in sandbox.servers().iter().zip(&maintained).zip(boots) {
        assert_eq!(result["success"], true, "{result}");
        let reboot = result["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "Reboot")
            .unwrap();
        assert_eq!(reboot["status"], "success", "{result}");
        assert_eq!(
            sandbox.boots(server).unwrap(),
            before + 1,
            "{} rebooted exactly once",
            server.name
        );
    }
}

/// One confirmation rule for one server and the fleet, by the operation's
/// category: a backup of every server (adds, loses nothing) runs off a
/// terminal without `--force`, as one backup does; an update of every
/// server (interrupts service) is refused without it, touching nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_backup_needs_no_force_and_a_fleet_update_does() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 2,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let backups = results(
        &kastell(
            &sandbox,
            home.path(),
            &["--json", "backup", "create", "--all"],
        )
        .await,
    );
    assert_eq!(backups.len(), 2);
    for result in &backups {
        assert_eq!(result["success"], true, "{result}");
    }
    let boots: Vec<u64> = sandbox
        .servers()
        .iter()
        .map(|s| sandbox.boots(s).unwrap())
        .collect();
    let out = kastell(&sandbox, home.path(), &["update", "--all"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Pass --force to proceed"), "{stderr}");
    let after: Vec<u64> = sandbox
        .servers()
        .iter()
        .map(|s| sandbox.boots(s).unwrap())
        .collect();
    assert_eq!(boots, after);
    assert!(
        !sandbox.hosts().log().iter().any(|l| l.contains("apt")),
        "nothing was updated: {:?}",
        sandbox.hosts().log()
    );
}
