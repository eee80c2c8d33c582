//! The sandbox fleet end to end through the operations layer: every cloud
//! server is rebooted through its simulator and the reboot is proven by the
//! fake host's boot id; the manual server reboots over SSH; a full
//! maintenance cycle upgrades packages, reboots because the upgrade asked
//! for it and clears the flag; snapshots and backups work on every server;
//! and nothing in the sandbox context can reach a real provider API.
#![cfg(all(
    feature = "sandbox",
    feature = "hetzner",
    feature = "digitalocean",
    feature = "vultr",
    feature = "linode",
    feature = "bare"
))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use kastell::ops::{self, Context, MaintainOptions, RebootMethod, StepOutcome, Timing};
use kastell::surfaces::sandbox::{MANUAL_SERVER, Sandbox};
use kastell::{Env, Surface};

fn unsafe_mode() -> Env {
    Env::from_pairs([("KASTELL_SAFE_MODE", "false")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_cloud_server_reboots_through_its_simulator_and_the_boot_id_proves_it() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await.unwrap();
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    let clouds: Vec<_> = sandbox
        .servers()
        .iter()
        .filter(|s| s.provider.is_some())
        .cloned()
        .collect();
    assert_eq!(clouds.len(), 4, "{:?}", sandbox.servers());
    for server in &clouds {
        let boots = sandbox.boots(server).unwrap();
        let before = sandbox.hosts().boot_id(server.address).unwrap();
        let result = ops::restart(&ctx, Some(&server.name))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", server.name));
        assert_eq!(
            result.reboot.boot_id_before.as_deref(),
            Some(before.as_str())
        );
        assert_ne!(result.reboot.boot_id_after, before, "{}", server.name);
        assert_eq!(
            sandbox.boots(server).unwrap(),
            boots + 1,
            "{} was rebooted by its simulator",
            server.name
        );
        assert_eq!(result.final_status, "running");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_manual_server_reboots_over_ssh_with_proof() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await.unwrap();
    let ctx = sandbox.context(&unsafe_mode(), Surface::Mcp);
    let manual = sandbox.server(MANUAL_SERVER).unwrap().clone();
    let before = sandbox.hosts().boot_id(manual.address).unwrap();
    let result = ops::restart(&ctx, Some(MANUAL_SERVER)).await.unwrap();
    assert_eq!(
        result.reboot.boot_id_before.as_deref(),
        Some(before.as_str())
    );
    assert_ne!(result.reboot.boot_id_after, before);
    assert!(
        sandbox
            .hosts()
            .log()
            .iter()
            .any(|l| l.starts_with("reboot")),
        "{:?}",
        sandbox.hosts().log()
    );
}

/// `restart` of a cloud server without its provider's token reboots over
/// SSH, as `maintain` does, instead of refusing: the boot id proves it,
/// the simulator saw no reboot, and the step says SSH and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_without_a_token_reboots_over_ssh_with_proof() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await.unwrap();
    let mut vars = sandbox.env_overlay();
    assert!(vars.remove("HETZNER_TOKEN").is_some());
    let mut ctx = Context::new(
        unsafe_mode().overlaid(vars),
        sandbox.store().clone(),
        Surface::Cli,
    )
    .with_timing(Timing::sandbox());
    for (id, endpoint) in sandbox.endpoints() {
        ctx = ctx.with_endpoint(id, endpoint);
    }
    let server = sandbox.server("hetzner-web").unwrap().clone();
    assert!(server.provider.is_some(), "a cloud server");
    let boots = sandbox.boots(&server).unwrap();
    let before = sandbox.hosts().boot_id(server.address).unwrap();
    let result = ops::restart(&ctx, Some(&server.name))
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(result.reboot.method, RebootMethod::Ssh);
    assert_eq!(
        result.reboot.boot_id_before.as_deref(),
        Some(before.as_str())
    );
    assert_ne!(result.reboot.boot_id_after, before);
    assert_eq!(
        sandbox.boots(&server).unwrap(),
        boots,
        "the simulator was not asked"
    );
    let reboot = result.steps.iter().find(|s| s.name == "Reboot").unwrap();
    let detail = reboot.detail.as_deref().unwrap_or_default();
    assert!(
        detail.starts_with("Server rebooted via SSH (boot id")
            && detail.contains("HETZNER_TOKEN not set"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn maintain_upgrades_then_reboots_because_the_upgrade_asked_and_the_flag_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await.unwrap();
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    for name in ["hetzner-web", MANUAL_SERVER] {
        let server = sandbox.server(name).unwrap().clone();
        let result = ops::maintain(&ctx, Some(name), MaintainOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let names: Vec<_> = result.steps.iter().map(|s| s.name.as_str()).collect();
        let reboot = result.steps.iter().find(|s| s.name == "Reboot").unwrap();
        assert_eq!(reboot.status, StepOutcome::Success, "{name}: {names:?}");
        let last = result.steps.last().unwrap();
        assert_eq!(last.name, "Final Check");
        assert_eq!(last.status, StepOutcome::Success, "{name}: {last:?}");
        let flag = sandbox
            .hosts()
            .root(server.address)
            .unwrap()
            .join("var/run/reboot-required");
        assert!(!flag.exists(), "{name}: the reboot cleared the flag");
    }
    // Nothing required a reboot the second time round.
    let again = ops::maintain(
        &ctx,
        Some(MANUAL_SERVER),
        MaintainOptions {
            skip_reboot: true,
            ..MaintainOptions::default()
        },
    )
    .await
    .unwrap();
    let reboot = again.steps.iter().find(|s| s.name == "Reboot").unwrap();
    assert_eq!(reboot.status, StepOutcome::Skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_and_backups_work_on_every_server_of_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await.unwrap();
    let ctx = sandbox.context(&unsafe_mode(), Surface::Cli);
    for server in sandbox.servers() {
        let backup = ops::backup_create(&ctx, Some(&server.name))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", server.name));
        assert_eq!(backup.files, ["bare-config.tar.zst"], "{}", server.name);
        // The seeded paths are in it; the default paths the sandbox does
        // not seed are named as skipped.
        assert!(
            backup.skipped.iter().any(|p| p.contains("fail2ban")),
            "{}: {:?}",
            server.name,
            backup.skipped
        );
        for seeded in ["crontab", "ufw", "nginx"] {
            assert!(
                !backup.skipped.iter().any(|p| p.contains(seeded)),
                "{}: {seeded} skipped: {:?}",
                server.name,
                backup.skipped
            );
        }
        if server.provider.is_none() {
            continue;
        }
        let created = ops::snapshot_create(&ctx, Some(&server.name))
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", server.name));
        let id = created.snapshot.id.clone();
        let listed = ops::snapshot_list(&ctx, Some(&server.name)).await.unwrap();
        assert!(
            listed.snapshots.iter().any(|s| s.id == id),
            "{}: {id} listed",
            server.name
        );
        ops::snapshot_delete(&ctx, Some(&server.name), &id)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", server.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_overrides_real_tokens_and_endpoints_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await.unwrap();
    let base = Env::from_pairs([
        ("HETZNER_TOKEN", "a-real-looking-token"),
        ("KASTELL_HETZNER_ENDPOINT", "https://api.hetzner.cloud/v1"),
    ]);
    let ctx = sandbox.context(&base, Surface::Cli);
    let endpoint = ctx.endpoint("hetzner").unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let token = ctx.env.get("HETZNER_TOKEN").unwrap();
    assert_ne!(token, "a-real-looking-token");
    // SAFE_MODE still comes from the caller's environment.
    let safe = sandbox.context(&Env::from_pairs([("X", "y")]), Surface::Mcp);
    assert!(safe.policy.safe_mode(Surface::Mcp));
}
