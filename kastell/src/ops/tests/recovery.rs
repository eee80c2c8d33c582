//! Recovery onto a new server and scratch drills, over the memory cloud
//! (which creates, lists and deletes marked servers) and the memory
//! platform.

use kastell_core::types::ManagedRole;
use kastell_core::{Error, ErrorKind};

use super::*;
use crate::state::store::SshSettings;
use crate::state::verifications::{Proof, Verifications};

/// A tar archive holding `etc/app.conf` with `text` (the memory platform's
/// configuration artifact, which a drill unpacks).
fn config_tar(dir: &std::path::Path, text: &str) -> Vec<u8> {
    let src = dir.join("tar-src");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/app.conf"), text).unwrap();
    let out = std::process::Command::new("tar")
        .args(["cf", "-", "-C"])
        .arg(&src)
        .arg("etc")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A world whose `web-1` reaches its server with a key that has a public
/// half, and has one backup.
async fn world_with_backup() -> (World, Context, String) {
    let world = World::new();
    let key = world.dir.path().join("id_test");
    std::fs::write(
        key.with_extension("pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest kastell\n",
    )
    .unwrap();
    let store = FleetStore::open(world.dir.path()).unwrap();
    store
        .update("web-1", |r| {
            r.ssh = Some(SshSettings {
                identity_file: Some(key.display().to_string()),
                ..SshSettings::default()
            });
            r.domain = Some("localhost".into());
        })
        .unwrap();
    let ctx = world.cli();
    let config = config_tar(world.dir.path(), "env of web-1\n");
    world.platform.set_data(b"rows of web-1", &config);
    let backup = backup_create(&ctx, Some("web-1")).await.unwrap();
    world.platform.set_data(b"lost", b"lost");
    (world, ctx, backup.backup_id.clone())
}

fn to(target: &str) -> RecoverArgs {
    RecoverArgs {
        from: RecoverFrom {
            to: Some(target.into()),
            backup_id: None,
        },
        ..RecoverArgs::default()
    }
}

async fn managed(world: &World) -> Vec<kastell_core::types::ManagedServer> {
    world.cloud.list_managed_servers().await.unwrap()
}

#[tokio::test]
async fn recover_creates_installs_restores_and_joins_the_fleet_keeping_the_old_record_marked() {
    let (world, ctx, backup_id) = world_with_backup().await;
    let done = recover(&ctx, Some("web-1"), &to("digitalocean"))
        .await
        .unwrap();
    assert_eq!(done.backup_id, backup_id);
    assert_eq!(done.new_server, "web-1-recovered");
    assert_eq!(
        world.platform.data().0,
        b"rows of web-1",
        "the backup's data is back"
    );
    let events = world.platform.events();
    let install = events.iter().position(|e| e == "install").unwrap();
    let restore = events.iter().position(|e| e == "restore").unwrap();
    assert!(install < restore, "installed before restoring: {events:?}");
    let names: Vec<&str> = done.steps.iter().map(|s| s.name.as_str()).collect();
    for phase in [
        "Price a server at digitalocean",
        "Create server at digitalocean",
        "Wait for SSH",
        "Install Memory",
        "Verify backup",
        "Health check",
        "Join the fleet",
    ] {
        assert!(names.contains(&phase), "{phase} missing from {names:?}");
    }
    assert!(
        !names.contains(&"Safety backup"),
        "no safety backup on a fresh host"
    );
    assert_eq!(
        done.recovery_ms,
        done.steps.iter().map(|s| s.duration_ms).sum::<u64>()
    );
    assert!(done.price.contains("/mo"), "{}", done.price);

    let store = FleetStore::open(world.dir.path()).unwrap();
    let new = store.find("web-1-recovered").unwrap().unwrap();
    assert_eq!(new.provider.as_deref(), Some("digitalocean"));
    assert_eq!(new.ip, done.new_ip);
    let old = store.find("web-1").unwrap().unwrap();
    assert_eq!(
        super::super::recover::replaced_by(&old),
        Some("web-1-recovered")
    );
    let created = managed(&world).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].role, Some(ManagedRole::Recovery));
    assert_eq!(created[0].server.id.as_str(), new.id);
    assert!(
        done.cutover.iter().any(|l| l.contains(&done.new_ip)),
        "{:?}",
        done.cutover
    );
}

#[tokio::test]
async fn a_failed_install_leaves_the_created_server_marked_and_says_how_to_delete_it() {
    let (world, ctx, _) = world_with_backup().await;
    world.platform.fail_next_install("installer exploded");
    let err = recover(&ctx, Some("web-1"), &to("hetzner"))
        .await
        .unwrap_err();
    assert!(err.error.contains("installer exploded"), "{}", err.error);
    let hint = err.hint.clone().unwrap_or_default();
    assert!(hint.contains("kastell-recovery"), "{hint}");
    assert!(hint.contains("delete it"), "{hint}");
    let created = managed(&world).await;
    assert_eq!(created.len(), 1, "the created server is kept, marked");
    assert!(hint.contains(created[0].server.id.as_str()), "{hint}");
    let store = FleetStore::open(world.dir.path()).unwrap();
    assert!(store.find("web-1-recovered").unwrap().is_none());
    let old = store.find("web-1").unwrap().unwrap();
    assert_eq!(super::super::recover::replaced_by(&old), None);
    assert_eq!(world.platform.data().0, b"lost", "nothing was restored");
}

#[tokio::test]
async fn a_provider_error_on_create_creates_nothing_and_says_so() {
    let (world, ctx, _) = world_with_backup().await;
    world.cloud.fail_next(
        "create_server",
        Error::new(ErrorKind::Unavailable, "the region is full"),
    );
    let err = recover(&ctx, Some("web-1"), &to("hetzner"))
        .await
        .unwrap_err();
    assert!(err.error.contains("the region is full"), "{}", err.error);
    assert!(
        err.hint
            .unwrap_or_default()
            .contains("No server was created"),
        "nothing to clean up"
    );
    assert!(managed(&world).await.is_empty());
}

#[tokio::test]
async fn bad_targets_and_sizes_are_refused_before_anything_is_created() {
    let (world, ctx, _) = world_with_backup().await;
    let err = recover(&ctx, Some("web-1"), &RecoverArgs::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, "invalid_input", "{err:?}");
    let err = recover(&ctx, Some("web-1"), &to("Hetzner;rm"))
        .await
        .unwrap_err();
    assert!(err.hint.unwrap_or_default().contains("--to PROVIDER"));
    let err = recover(&ctx, Some("web-1"), &to("hetzner:huge"))
        .await
        .unwrap_err();
    assert!(err.error.contains("huge"), "{}", err.error);
    assert!(!world.cloud.calls().contains(&"create_server"));
}

#[tokio::test]
async fn recover_is_blocked_in_safe_mode_over_mcp() {
    let (world, _, _) = world_with_backup().await;
    let mcp = world.context(Surface::Mcp, &[CLOUD_TOKEN, ("KASTELL_SAFE_MODE", "true")]);
    let err = recover(&mcp, Some("web-1"), &to("hetzner"))
        .await
        .unwrap_err();
    assert!(err.error.contains("SAFE_MODE"), "{}", err.error);
    assert!(managed(&world).await.is_empty());
}

fn scratch() -> ScratchArgs {
    ScratchArgs {
        scratch: true,
        ..ScratchArgs::default()
    }
}

#[tokio::test]
async fn a_scratch_drill_recovers_measures_records_and_deletes_its_server() {
    let (world, ctx, backup_id) = world_with_backup().await;
    let done = drill_scratch(&ctx, Some("web-1"), &scratch())
        .await
        .unwrap();
    assert_eq!(done.backup_id, backup_id);
    assert!(managed(&world).await.is_empty(), "its server is deleted");
    assert!(world.cloud.calls().contains(&"delete_server"));
    let names: Vec<&str> = done.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"Delete the throwaway server"), "{names:?}");
    let proofs = Verifications::load(world.dir.path()).unwrap();
    let last = proofs.last_recovery("web-1").unwrap();
    assert_eq!(last.proof, Proof::Scratch);
    assert_eq!(last.duration_ms, done.recovery_ms);
    assert!(
        last.phases
            .iter()
            .any(|p| p.name == "Create server at hetzner")
    );
    let store = FleetStore::open(world.dir.path()).unwrap();
    assert_eq!(store.servers().unwrap().len(), 4, "the fleet is unchanged");
}

#[tokio::test]
async fn a_scratch_drill_that_fails_halfway_deletes_what_it_created() {
    let (world, ctx, _) = world_with_backup().await;
    world.platform.fail_next_restore("artifact unreadable");
    let err = drill_scratch(&ctx, Some("web-1"), &scratch())
        .await
        .unwrap_err();
    assert!(err.error.contains("artifact unreadable"), "{}", err.error);
    assert!(world.cloud.calls().contains(&"create_server"));
    assert!(managed(&world).await.is_empty(), "deleted on failure");
    let proofs = Verifications::load(world.dir.path()).unwrap();
    assert!(
        proofs.last_recovery("web-1").is_none(),
        "a failure proves nothing"
    );
}

#[tokio::test]
async fn a_scratch_drill_over_its_cost_cap_creates_nothing() {
    let (world, ctx, _) = world_with_backup().await;
    let args = ScratchArgs {
        max_cost: Some(0.001),
        ..scratch()
    };
    let err = drill_scratch(&ctx, Some("web-1"), &args).await.unwrap_err();
    assert!(err.error.contains("more than --max-cost"), "{}", err.error);
    assert!(err.hint.unwrap_or_default().contains("Nothing was created"));
    assert!(!world.cloud.calls().contains(&"create_server"));
}

#[tokio::test]
async fn the_next_scratch_drill_deletes_what_a_killed_one_left() {
    let (world, ctx, _) = world_with_backup().await;
    let left = world
        .cloud
        .create_server(&kastell_core::types::ServerSpec {
            name: "kastell-drill-web-1-killed".into(),
            size: "small".into(),
            region: "mem-1".into(),
            image: "ubuntu-24.04".into(),
            ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIx x".into(),
            role: ManagedRole::Drill,
        })
        .await
        .unwrap();
    let done = drill_scratch(&ctx, Some("web-1"), &scratch())
        .await
        .unwrap();
    assert!(
        done.warnings
            .iter()
            .any(|w| w.contains(left.id.as_str()) && w.contains("deleted")),
        "{:?}",
        done.warnings
    );
    assert!(managed(&world).await.is_empty());
}

#[tokio::test]
async fn the_cli_asks_for_scratch_by_name() {
    let (world, ctx, _) = world_with_backup().await;
    let err = drill_scratch(&ctx, Some("web-1"), &ScratchArgs::default())
        .await
        .unwrap_err();
    assert!(err.error.contains("--scratch"), "{}", err.error);
    assert!(world.cloud.calls().is_empty() || !world.cloud.calls().contains(&"create_server"));
}
