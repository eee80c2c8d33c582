//! Restarts: cloud through the provider, manual over SSH, both proven by a
//! changed boot id.

use kastell_core::ErrorKind;
use kastell_core::memory::Reply;

use super::*;

#[tokio::test]
async fn cloud_restart_goes_through_the_provider_and_proves_the_boot() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    let done = restart(&world.cli(), Some("web-1")).await.unwrap();
    assert_eq!(done.reboot.method, RebootMethod::Provider);
    assert_eq!(done.reboot.boot_id_before.as_deref(), Some("boot-1"));
    assert_eq!(done.reboot.boot_id_after, "boot-2");
    assert_eq!(done.message, "Server restarted successfully");
    assert_eq!(names(&done.steps), ["Reboot", "Health Check"]);
    assert!(world.cloud.calls().contains(&"reboot"));
    assert!(
        !world
            .transport
            .commands()
            .iter()
            .any(|c| c.contains("systemctl reboot")),
        "no SSH reboot for a cloud server"
    );
    let json = serde_json::to_value(&done).unwrap();
    assert_eq!(json["finalStatus"], "running");
    assert!(json["suggested_actions"].is_array());
}

#[tokio::test]
async fn a_provider_success_without_a_new_boot_id_is_a_failure() {
    let world = World::new();
    // The memory cloud reports the reboot done, but the host's boot id
    // (the transport's built-in) never changes.
    let err = restart(&world.cli(), Some("web-1")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::InvalidState), "{err}");
    assert!(
        err.error
            .contains("The provider reported the reboot as done"),
        "{}",
        err.error
    );
    assert!(err.error.contains("did not reboot"));
    assert_eq!(err.steps.len(), 1);
    assert_eq!(err.steps[0].status, StepOutcome::Failure);
    assert!(world.cloud.calls().contains(&"reboot"));
}

#[tokio::test]
async fn manual_restart_reboots_over_ssh_and_proves_it() {
    let world = World::new();
    world.script_ssh_reboot();
    let done = restart(&world.cli(), Some("man-1")).await.unwrap();
    assert_eq!(done.reboot.method, RebootMethod::Ssh);
    assert_ne!(
        done.reboot.boot_id_before.as_deref(),
        Some(done.reboot.boot_id_after.as_str())
    );
    assert!(
        world
            .transport
            .commands()
            .iter()
            .any(|c| c == REBOOT_WITH_SUDO)
    );
    assert!(
        world.cloud.calls().is_empty(),
        "no provider for a manual server"
    );
    // No token is needed for a manual server.
    let no_token = world.context(Surface::Cli, &[]);
    restart(&no_token, Some("man-1")).await.unwrap();
}

#[tokio::test]
async fn manual_restart_failures_are_clear() {
    let world = World::new();
    // Without a handler the reboot command exits 127.
    let err = restart(&world.cli(), Some("man-1")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::CommandFailed), "{err}");
    assert!(err.hint.unwrap().contains("sudo"));

    // The command "succeeds" but the host never reboots.
    world.transport.on(REBOOT_WITH_SUDO, Reply::ok(""));
    let err = restart(&world.cli(), Some("man-1")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::InvalidState));
    assert!(
        err.error.starts_with("The server did not reboot"),
        "{}",
        err.error
    );

    // Unreachable before: refused without sending anything.
    world.transport.set_reachable(false);
    let err = restart(&world.cli(), Some("man-1")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::Unavailable));
}

#[test]
fn reboot_commands_detach_and_use_sudo_for_other_users() {
    assert_eq!(reboot_command("root").as_str(), REBOOT_AS_ROOT);
    assert_eq!(reboot_command("deploy").as_str(), REBOOT_WITH_SUDO);
    for cmd in [REBOOT_AS_ROOT, REBOOT_WITH_SUDO] {
        assert!(cmd.starts_with("nohup") || cmd.starts_with("sudo -n true && nohup"));
        assert!(cmd.ends_with('&'), "detached");
        assert!(cmd.contains(">/dev/null 2>&1"), "no open output");
    }
}
