//! A policy refusal names the server when it resolves and offers the
//! allowed alternatives, filtered through the policy.

use kastell_core::ErrorKind;

use super::*;

const SAFE_ON: (&str, &str) = ("KASTELL_SAFE_MODE", "true");

fn commands(err: &OpError) -> Vec<&str> {
    err.suggested_actions
        .iter()
        .map(|s| s.command.as_str())
        .collect()
}

#[tokio::test]
async fn a_refused_snapshot_create_offers_an_ssh_backup() {
    let world = World::new();
    // SAFE_MODE (MCP default), a manual server, a missing token.
    let safe = world.context(Surface::Mcp, &[CLOUD_TOKEN]);
    let no_token = world.context(Surface::Cli, &[]);
    for (ctx, server, kind) in [
        (&safe, "web-1", ErrorKind::PermissionDenied),
        (&world.cli(), "man-1", ErrorKind::InvalidState),
        (&no_token, "web-1", ErrorKind::Unauthenticated),
    ] {
        let err = snapshot_create(ctx, Some(server)).await.unwrap_err();
        assert!(err.is_kind(kind), "{err:?}");
        assert_eq!(err.server.as_deref(), Some(server));
        assert!(err.ip.as_deref().unwrap().starts_with("203.0.113."));
        assert_eq!(
            commands(&err),
            [format!(
                "server_backup {{ action: 'backup-create', server: '{server}' }}"
            )]
        );
        assert_eq!(
            err.suggested_actions[0].reason,
            "Use backup-create for an SSH-based backup instead"
        );
    }
    assert!(world.cloud.calls().is_empty());
}

#[tokio::test]
async fn safe_mode_refusals_offer_read_only_status_and_backup_list() {
    let world = World::new();
    let ctx = world.context(Surface::Cli, &[SAFE_ON, CLOUD_TOKEN]);
    let want = [
        "server_info { action: 'status', server: 'web-1' }",
        "server_backup { action: 'backup-list', server: 'web-1' }",
    ];
    let refusals = [
        backup_restore(&ctx, Some("web-1"), Some("2026-01-01_00-00-00-000"))
            .await
            .unwrap_err(),
        update(&ctx, Some("web-1")).await.unwrap_err(),
        restart(&ctx, Some("web-1")).await.unwrap_err(),
        maintain(&ctx, Some("web-1"), MaintainOptions::default())
            .await
            .unwrap_err(),
    ];
    for err in refusals {
        assert!(err.is_kind(ErrorKind::PermissionDenied));
        assert_eq!(err.server.as_deref(), Some("web-1"));
        assert_eq!(err.ip.as_deref(), Some("203.0.113.10"));
        assert_eq!(commands(&err), want, "{}", err.error);
    }
    assert!(world.transport.commands().is_empty());
    assert!(world.cloud.calls().is_empty());
}

#[tokio::test]
async fn an_unknown_server_still_gets_the_safe_mode_refusal() {
    let world = World::new();
    let ctx = world.context(Surface::Mcp, &[]);
    let err = update(&ctx, Some("ghost")).await.unwrap_err();
    assert_eq!(err.error, "Update is disabled in SAFE_MODE");
    assert_eq!(err.server, None);
    assert_eq!(err.ip, None);
    assert_eq!(
        commands(&err),
        [
            "server_info { action: 'status' }",
            "server_backup { action: 'backup-list' }",
        ]
    );
    let log = world.security_log();
    assert_eq!(log.lines().count(), 1, "one refusal logged: {log}");
}

#[tokio::test]
async fn a_missing_token_offers_an_ssh_backup() {
    let world = World::new();
    let ctx = world.context(Surface::Cli, &[]);
    // restart does not need it: without a token it reboots over SSH.
    for err in [
        snapshot_create(&ctx, Some("web-1")).await.unwrap_err(),
        snapshot_list(&ctx, Some("web-1")).await.unwrap_err(),
    ] {
        assert!(err.is_kind(ErrorKind::Unauthenticated));
        assert_eq!(err.server.as_deref(), Some("web-1"));
        assert_eq!(
            commands(&err),
            ["server_backup { action: 'backup-create', server: 'web-1' }"]
        );
    }
}

#[tokio::test]
async fn refusal_suggestions_go_through_the_policy() {
    let world = World::new();
    // Under SAFE_MODE, nothing destructive is ever offered.
    let ctx = world.context(Surface::Mcp, &[CLOUD_TOKEN]);
    for err in [
        snapshot_delete(&ctx, Some("web-1"), "1").await.unwrap_err(),
        snapshot_restore(&ctx, Some("web-1"), "1")
            .await
            .unwrap_err(),
        backup_restore(&ctx, Some("man-1"), None).await.unwrap_err(),
    ] {
        assert!(!err.suggested_actions.is_empty());
        for s in &err.suggested_actions {
            assert!(
                s.command.contains("'status'") || s.command.contains("'backup-list'"),
                "{}",
                s.command
            );
        }
    }
}

#[tokio::test]
async fn snapshot_restore_is_refused_while_another_operation_holds_the_server() {
    let world = World::new();
    let ctx = world.cli();
    let dir = crate::engine::backup::BackupLayout::new(ctx.store.dir())
        .server_dir("web-1")
        .unwrap();
    let held = crate::engine::backup::HostLock::try_acquire(&dir, "web-1", "maintain").unwrap();
    let err = snapshot_restore(&ctx, Some("web-1"), "1")
        .await
        .unwrap_err();
    assert!(
        err.error.contains("already running") && err.error.contains("maintain"),
        "{}",
        err.error
    );
    assert!(!world.cloud.calls().contains(&"restore_snapshot"));
    drop(held);
}
