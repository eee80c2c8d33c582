//! Maintain's step list and skip rules, and update's token handling.

use kastell_core::ErrorKind;

use super::*;

const STEPS: [&str; 7] = [
    "Backup",
    "Snapshot",
    "Status Check",
    "Memory Update",
    "Health Check",
    "Reboot",
    "Final Check",
];

#[tokio::test]
async fn cloud_maintain_backs_up_and_snapshots_by_default_and_runs_seven_timed_steps() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    let done = maintain(&world.cli(), Some("web-1"), MaintainOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&done.steps), STEPS);
    assert!(
        done.steps.iter().all(|s| s.status == StepOutcome::Success),
        "{:?}",
        done.steps
    );
    assert_eq!(done.summary.total, 7);
    assert_eq!(done.summary.success, 7);
    assert_eq!(done.steps[0].step, 1);
    let backup = done.body.backup_id.clone().unwrap();
    assert!(
        done.steps[0].detail.as_deref().unwrap().contains(&backup),
        "{:?}",
        done.steps[0]
    );
    let listed = backup_list(&world.cli(), Some("web-1")).await.unwrap();
    assert_eq!(listed.backups[0].backup_id, backup, "listed, complete");
    assert_eq!(listed.backups[0].status, "complete");
    let snapshot = done.body.snapshot.clone().unwrap();
    assert!(snapshot.name.starts_with("kastell-maintain-"));
    assert!(world.cloud.calls().contains(&"create_snapshot"));
    assert!(
        done.notes
            .contains(&"Rollback policy: ask (default)".to_owned()),
        "{:?}",
        done.notes
    );
    assert!(world.platform.events().contains(&"update".to_string()));
    let json = serde_json::to_value(&done).unwrap();
    for step in json["steps"].as_array().unwrap() {
        assert!(step["durationMs"].is_u64());
    }
    assert_eq!(json["provider"], "hetzner");
    let status = [
        "server_info { action: 'status'",
        "server_logs { action: 'logs'",
    ];
    for (s, want) in done.suggested_actions.iter().zip(status) {
        assert!(s.command.starts_with(want), "{}", s.command);
    }
}

#[tokio::test]
async fn skip_reboot_skips_reboot_and_final_check() {
    let world = World::new();
    let options = MaintainOptions {
        skip_reboot: true,
        ..MaintainOptions::default()
    };
    let done = maintain(&world.cli(), Some("web-1"), options)
        .await
        .unwrap();
    assert_eq!(outcome(&done.steps, "Reboot").status, StepOutcome::Skipped);
    assert_eq!(
        outcome(&done.steps, "Reboot").detail.as_deref(),
        Some("Skipped by user")
    );
    assert_eq!(
        outcome(&done.steps, "Final Check").status,
        StepOutcome::Skipped
    );
    assert!(!world.cloud.calls().contains(&"reboot"));
}

#[tokio::test]
async fn an_unhealthy_platform_skips_the_reboot_unless_asked() {
    let world = World::new();
    world.link_boot_id_to_cloud();
    world.platform.stop().await.unwrap();
    let err = maintain(&world.cli(), Some("web-1"), MaintainOptions::default())
        .await
        .unwrap_err();
    let mut listed = STEPS.to_vec();
    listed.push("Rollback");
    assert_eq!(names(&err.steps), listed, "every step is listed");
    let rollback = outcome(&err.steps, "Rollback");
    assert_eq!(rollback.status, StepOutcome::Skipped);
    assert!(
        rollback
            .detail
            .as_deref()
            .unwrap()
            .contains("no one to ask here"),
        "ask with no one to ask leaves it: {rollback:?}"
    );
    assert!(
        err.suggested_actions
            .iter()
            .any(|s| s.command.contains("snapshot-restore")),
        "{:?}",
        err.suggested_actions
    );
    assert_eq!(
        outcome(&err.steps, "Health Check").status,
        StepOutcome::Failure
    );
    let reboot = outcome(&err.steps, "Reboot");
    assert_eq!(reboot.status, StepOutcome::Skipped);
    assert!(reboot.detail.as_deref().unwrap().contains("unhealthy"));
    assert!(
        err.error.starts_with("Maintenance failed at Health Check"),
        "{}",
        err.error
    );
    assert!(!world.cloud.calls().contains(&"reboot"));

    let options = MaintainOptions {
        reboot_even_if_unhealthy: true,
        ..MaintainOptions::default()
    };
    let err = maintain(&world.cli(), Some("web-1"), options)
        .await
        .unwrap_err();
    assert_eq!(outcome(&err.steps, "Reboot").status, StepOutcome::Success);
    assert_eq!(
        outcome(&err.steps, "Final Check").status,
        StepOutcome::Failure
    );
    assert!(world.cloud.calls().contains(&"reboot"));
}

#[tokio::test]
async fn a_stopped_server_aborts_after_the_status_check() {
    let world = World::new();
    world.cloud.fail_next(
        "get_server",
        kastell_core::Error::new(ErrorKind::Unauthenticated, "bad token")
            .with_hint("Check the token"),
    );
    let options = MaintainOptions {
        no_snapshot: true,
        ..MaintainOptions::default()
    };
    let err = maintain(&world.cli(), Some("web-1"), options)
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::Unauthenticated));
    assert_eq!(err.hint.as_deref(), Some("Check the token"));
    assert_eq!(err.steps[0].status, StepOutcome::Success, "the backup");
    assert_eq!(err.steps[1].status, StepOutcome::Skipped, "--no-snapshot");
    assert_eq!(err.steps[2].status, StepOutcome::Failure);
    assert!(
        err.steps[3..]
            .iter()
            .all(|s| s.status == StepOutcome::Skipped)
    );
    assert!(
        !world.platform.events().contains(&"update".to_string()),
        "no update ran"
    );
}

#[tokio::test]
async fn maintain_can_snapshot_first_and_wait() {
    let world = World::new();
    let options = MaintainOptions {
        snapshot: true,
        skip_reboot: true,
        ..MaintainOptions::default()
    };
    let done = maintain(&world.cli(), Some("web-1"), options)
        .await
        .unwrap();
    assert_eq!(done.steps[1].name, "Snapshot");
    let snap = done.body.snapshot.clone().unwrap();
    assert_eq!(snap.status, "available");
    assert!(snap.name.starts_with("kastell-maintain-"));
    // Manual servers cannot take one: refused before anything runs.
    let err = maintain(&world.cli(), Some("man-1"), options)
        .await
        .unwrap_err();
    assert!(
        err.error
            .starts_with("Snapshots require cloud provider API")
    );
}

#[tokio::test]
async fn bare_servers_are_maintained_and_reboot_only_when_required() {
    let mut world = World::new();
    let done = maintain(&world.cli(), Some("bare-1"), MaintainOptions::default())
        .await
        .unwrap();
    assert_eq!(
        outcome(&done.steps, "Package Upgrade").hint.as_deref(),
        Some("needrestart listed services")
    );
    let reboot = outcome(&done.steps, "Reboot");
    assert_eq!(reboot.status, StepOutcome::Skipped);
    assert!(
        reboot
            .detail
            .as_deref()
            .unwrap()
            .contains("No reboot required")
    );
    assert!(
        !world
            .transport
            .commands()
            .iter()
            .any(|c| c == REBOOT_WITH_SUDO)
    );

    world.bare_reboot_required = true;
    world.script_ssh_reboot();
    let done = maintain(&world.cli(), Some("bare-1"), MaintainOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome(&done.steps, "Reboot").status, StepOutcome::Success);
    assert_eq!(
        outcome(&done.steps, "Final Check").status,
        StepOutcome::Success
    );
    assert!(
        world
            .transport
            .commands()
            .iter()
            .any(|c| c == REBOOT_WITH_SUDO)
    );
}

#[tokio::test]
async fn update_without_a_token_skips_the_status_check_with_a_note() {
    let world = World::new();
    let no_token = world.context(Surface::Mcp, &[("KASTELL_SAFE_MODE", "false")]);
    let done = update(&no_token, Some("web-1")).await.unwrap();
    assert_eq!(done.steps[0].status, StepOutcome::Skipped);
    assert!(
        done.steps[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("No API token for hetzner")
    );
    assert!(done.notes.iter().any(|n| n.contains("HETZNER_TOKEN")));
    assert_eq!(done.message, "Memory update completed successfully");
    assert!(world.cloud.calls().is_empty());
}

#[tokio::test]
async fn update_checks_status_with_a_token_and_keeps_hints() {
    let world = World::new();
    let done = update(&world.cli(), Some("web-1")).await.unwrap();
    assert_eq!(done.steps[0].status, StepOutcome::Success);
    assert!(world.cloud.calls().contains(&"get_server"));
    let bare = update(&world.cli(), Some("bare-1")).await.unwrap();
    assert_eq!(bare.hint.as_deref(), Some("needrestart listed services"));
    assert_eq!(bare.packages_upgraded, ["openssl"]);

    world.cloud.fail_next(
        "get_server",
        kastell_core::Error::new(ErrorKind::RateLimited, "slow down").with_hint("Wait a minute"),
    );
    let err = update(&world.cli(), Some("web-1")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::RateLimited));
    assert_eq!(
        err.hint.as_deref(),
        Some("Server: web-1 (203.0.113.10). Wait a minute")
    );
    assert_eq!(err.steps.len(), 1);
    assert!(
        err.suggested_actions[0]
            .command
            .starts_with("server_info { action: 'health'")
    );
}
