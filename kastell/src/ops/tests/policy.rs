//! The policy comes first, is logged, and filters suggestions.

#[allow(unused_imports)]
use crate::ops::Operation as _;
use crate::ops::{
    BackupRestoreOp, HealthOp, MaintainOp, RestartOp, SnapshotCreateOp, SnapshotDeleteOp,
    SnapshotListOp, SnapshotRestoreOp, UpdateOp,
};
use crate::policy::OpId;
use kastell_core::ErrorKind;

use super::*;

const SAFE_ON: (&str, &str) = ("KASTELL_SAFE_MODE", "true");

#[tokio::test]
async fn safe_mode_refusals_come_first_and_are_logged() {
    let world = World::new();
    for surface in [Surface::Cli, Surface::Mcp] {
        let ctx = world.context(surface, &[SAFE_ON, CLOUD_TOKEN]);
        // Even an unknown server gets the SAFE_MODE refusal, not "not found".
        let refusals: Vec<(OpError, &str)> = vec![
            (
                update(&ctx, Some("nope")).await.unwrap_err(),
                "Update is disabled in SAFE_MODE",
            ),
            (
                restart(&ctx, Some("web-1")).await.unwrap_err(),
                "Restart is disabled in SAFE_MODE",
            ),
            (
                maintain(&ctx, Some("man-1"), MaintainOptions::default())
                    .await
                    .unwrap_err(),
                "Maintenance is disabled in SAFE_MODE",
            ),
            (
                snapshot_create(&ctx, Some("web-1")).await.unwrap_err(),
                "Snapshot creation is disabled in SAFE_MODE",
            ),
            (
                snapshot_delete(&ctx, Some("web-1"), "x/../y")
                    .await
                    .unwrap_err(),
                "Snapshot delete disabled in SAFE_MODE",
            ),
            (
                backup_restore(&ctx, Some("web-1"), None).await.unwrap_err(),
                "Restore disabled in SAFE_MODE",
            ),
        ];
        for (err, message) in refusals {
            assert_eq!(err.error, message);
            assert!(err.is_kind(ErrorKind::PermissionDenied));
            assert!(
                err.hint
                    .as_deref()
                    .unwrap()
                    .starts_with("Set KASTELL_SAFE_MODE=false")
            );
        }
    }
    assert!(
        world.transport.commands().is_empty(),
        "nothing ran over SSH"
    );
    assert!(world.cloud.calls().is_empty(), "no provider call");
    let log = world.security_log();
    for action in [
        "update",
        "restart",
        "maintain",
        "snapshot-create",
        "backup-restore",
    ] {
        assert!(
            log.contains(&format!("\"action\":\"{action}\"")),
            "{action} in {log}"
        );
    }
    assert!(log.contains("mcp"), "the MCP surface is logged");
    // Each refusal names the server the call was for, though SAFE_MODE is
    // decided before the server is looked up.
    // (An unknown server, as `nope` for update, stays unnamed.)
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let expected = match event["action"].as_str().unwrap() {
            "update" => serde_json::Value::Null,
            "maintain" => "man-1".into(),
            _ => "web-1".into(),
        };
        assert_eq!(event["server"], expected, "{line}");
    }
}

#[tokio::test]
async fn server_rules_follow_safe_mode_manual_then_token() {
    let world = World::new();
    let ctx = world.cli();
    let err = snapshot_list(&ctx, Some("man-1")).await.unwrap_err();
    assert!(
        err.error
            .starts_with("Snapshots require cloud provider API")
    );
    assert_eq!(err.server.as_deref(), Some("man-1"));

    let no_token = world.context(Surface::Cli, &[]);
    let err = snapshot_list(&no_token, Some("web-1")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::Unauthenticated));
    assert_eq!(
        err.hint.as_deref(),
        Some("Set HETZNER_TOKEN environment variable")
    );
    assert!(world.cloud.calls().is_empty());
    assert!(world.security_log().contains("missing API token"));

    let err = update(&ctx, Some("ghost")).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::NotFound));
    assert_eq!(err.error, "Server not found: ghost");
}

/// Every operation MCP offers.
fn offered() -> impl Iterator<Item = OpId> {
    crate::ops::catalog::all()
        .iter()
        .filter(|op| op.spec().mcp.is_some())
        .map(|op| op.id())
}

fn action_of(suggestion: &Suggestion) -> OpId {
    crate::ops::catalog::all()
        .iter()
        .find(|op| {
            op.spec().mcp.is_some_and(|m| {
                suggestion
                    .command
                    .starts_with(&format!("{} {{ action: '{}'", m.tool, m.action))
            })
        })
        .map(|op| op.id())
        .unwrap_or_else(|| panic!("unknown tool/action in {}", suggestion.command))
}

#[test]
fn suggestions_only_name_allowed_actions() {
    let world = World::new();
    let every = || {
        offered()
            .map(|a| Candidate::new(a, "because"))
            .collect::<Vec<_>>()
    };
    let records = FleetStore::open(world.dir.path())
        .unwrap()
        .servers()
        .unwrap();
    let destructive = [
        UpdateOp::ID,
        RestartOp::ID,
        MaintainOp::ID,
        BackupRestoreOp::ID,
        SnapshotCreateOp::ID,
        SnapshotDeleteOp::ID,
        SnapshotRestoreOp::ID,
    ];
    for (surface, safe, env) in [
        (Surface::Mcp, true, vec![CLOUD_TOKEN]),
        (
            Surface::Mcp,
            false,
            vec![CLOUD_TOKEN, ("KASTELL_SAFE_MODE", "false")],
        ),
        (Surface::Cli, true, vec![CLOUD_TOKEN, SAFE_ON]),
        (Surface::Cli, false, vec![CLOUD_TOKEN]),
    ] {
        let ctx = world.context(surface, &env);
        for record in &records {
            let got: Vec<OpId> = ctx.suggest(record, every()).iter().map(action_of).collect();
            for action in offered() {
                let allowed = allowed(&ctx.policy, action, surface, Some(record), |p| {
                    ctx.token_present(p)
                });
                assert_eq!(
                    got.contains(&action),
                    allowed,
                    "{action:?} on {}",
                    record.name
                );
            }
            assert!(got.contains(&HealthOp::ID));
            for action in destructive {
                if safe {
                    assert!(
                        !got.contains(&action),
                        "{action:?} suggested under SAFE_MODE"
                    );
                }
            }
            if !safe {
                assert!(
                    got.contains(&UpdateOp::ID),
                    "update allowed without SAFE_MODE"
                );
            }
        }
    }
    let manual = records.iter().find(|r| r.name == "man-1").unwrap();
    let ctx = world.cli();
    let got: Vec<OpId> = ctx.suggest(manual, every()).iter().map(action_of).collect();
    assert!(
        !got.contains(&SnapshotListOp::ID),
        "manual servers have no snapshots"
    );
    assert!(
        got.contains(&RestartOp::ID),
        "manual servers restart over SSH"
    );
    assert!(
        world.security_log().is_empty(),
        "suggestions are not refusals"
    );
}

#[tokio::test]
async fn real_results_never_suggest_what_safe_mode_refuses() {
    let world = World::new();
    backup_create(&world.cli(), Some("man-1")).await.unwrap();
    let safe = world.context(Surface::Mcp, &[]);
    let listed = backup_list(&safe, Some("man-1")).await.unwrap();
    assert_eq!(listed.backup_count, 1);
    assert!(
        listed
            .suggested_actions
            .iter()
            .all(|s| !s.command.contains("backup-restore"))
    );
    let open = backup_list(&world.cli(), Some("man-1")).await.unwrap();
    let restore = &open.suggested_actions[0];
    assert_eq!(
        restore.command,
        format!(
            "server_backup {{ action: 'backup-restore', server: 'man-1', backupId: '{}' }}",
            open.backups[0].backup_id
        )
    );
    assert_eq!(restore.reason, "Restore latest backup");
}

fn commands(suggestions: &[Suggestion]) -> Vec<&str> {
    suggestions.iter().map(|s| s.command.as_str()).collect()
}

#[tokio::test]
async fn an_unknown_server_suggests_the_fleet_list_and_names_the_servers() {
    let world = World::new();
    let list = ["server_info { action: 'list' }"];
    for ctx in [
        world.cli(),
        world.context(Surface::Mcp, &[]),
        world.context(Surface::Mcp, &[("KASTELL_SAFE_MODE", "false"), CLOUD_TOKEN]),
    ] {
        let errors = [
            backup_list(&ctx, Some("ghost")).await.unwrap_err(),
            backup_create(&ctx, Some("ghost")).await.unwrap_err(),
            server_status(&ctx, Some("ghost")).await.unwrap_err(),
            monitor(&ctx, Some("ghost")).await.unwrap_err(),
        ];
        for err in errors {
            assert!(err.is_kind(ErrorKind::NotFound), "{err}");
            assert_eq!(err.error, "Server not found: ghost");
            assert_eq!(
                err.hint.as_deref(),
                Some("Available servers: web-1, web-2, man-1, bare-1")
            );
            assert_eq!(commands(&err.suggested_actions), list, "{err:?}");
        }
        // No server named among several: the list too.
        let err = backup_list(&ctx, None).await.unwrap_err();
        assert!(err.is_kind(ErrorKind::InvalidInput), "{err}");
        assert_eq!(commands(&err.suggested_actions), list);
    }
    // A SAFE_MODE refusal comes before the lookup and keeps its own
    // suggestions.
    let err = update(&world.context(Surface::Mcp, &[]), Some("ghost"))
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::PermissionDenied));
    assert!(!commands(&err.suggested_actions).contains(&list[0]));

    // An empty fleet has nothing to list.
    let empty = tempfile::tempdir().unwrap();
    let ctx = Context::new(
        Env::from_pairs([("KASTELL_SAFE_MODE", "false")]),
        FleetStore::open(empty.path()).unwrap(),
        Surface::Mcp,
    );
    let err = backup_list(&ctx, Some("ghost")).await.unwrap_err();
    assert_eq!(err.error, "No servers found");
    assert!(err.suggested_actions.is_empty(), "{err:?}");
}
