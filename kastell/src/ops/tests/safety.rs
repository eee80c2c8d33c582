//! The safety copy a restore takes first (`--safety`): a provider
//! snapshot awaited and named in the result, a failed one stopping the
//! restore before the platform is stopped, and `none` refused over MCP
//! unless `safety.json` allows it.

use kastell_core::{CloudProvider as _, Error, ErrorKind};

use super::*;
use crate::ops::{BackupRestoreResult, SafetyChoice, backup_restore_from};

/// A world whose web-1 holds `rows v2` after a backup taken while it held
/// `rows v1`: the world, its CLI context and that backup's id.
async fn backed_up_then_changed() -> (World, Context, String) {
    let world = World::new();
    let ctx = world.cli();
    world.platform.set_data(b"rows v1", b"env v1");
    let first = backup_create(&ctx, Some("web-1")).await.unwrap();
    world.platform.set_data(b"rows v2", b"env v2");
    (world, ctx, first.backup_id.clone())
}

/// Restores web-1 from backup `id` through `ctx` with the safety copy
/// `choice`.
async fn restore(ctx: &Context, id: &str, choice: SafetyChoice) -> OpResult<BackupRestoreResult> {
    backup_restore_from(ctx, Some("web-1"), Some(id), None, choice).await
}

#[tokio::test]
async fn a_safety_snapshot_is_awaited_and_the_result_names_it_and_its_restore() {
    let (world, ctx, first) = backed_up_then_changed().await;
    let locals = backup_list(&ctx, Some("web-1")).await.unwrap().backup_count;

    let restored = restore(&ctx, &first, SafetyChoice::Snapshot).await.unwrap();
    assert_eq!(world.platform.data().0, b"rows v1");
    assert_eq!(restored.safety.kind, "snapshot");
    let id = restored.safety.id.clone().unwrap();
    let snapshots = world.cloud.list_snapshots(&world.web_id).await.unwrap();
    let taken = snapshots
        .iter()
        .find(|s| s.id.to_string() == id)
        .unwrap_or_else(|| panic!("snapshot {id} not at the provider: {snapshots:?}"));
    assert!(taken.name.starts_with("kastell-safety-"), "{}", taken.name);
    assert_eq!(
        restored.safety.restore_with,
        format!("kastell snapshot restore web-1 --snapshot {id}")
    );
    // No local safety backup: the snapshot is the copy.
    assert!(restored.safety_backup_id.is_none());
    assert_eq!(
        backup_list(&ctx, Some("web-1")).await.unwrap().backup_count,
        locals
    );
    let names = names(&restored.steps);
    let snap = names.iter().position(|n| *n == "Safety snapshot").unwrap();
    assert!(
        names[snap..].iter().any(|n| n.starts_with("Stop")),
        "the snapshot comes before the stop: {names:?}"
    );
}

#[tokio::test]
async fn a_failed_safety_snapshot_stops_the_restore_before_the_platform_is_stopped() {
    let (world, ctx, first) = backed_up_then_changed().await;
    world.cloud.fail_next(
        "create_snapshot",
        Error::new(ErrorKind::PermissionDenied, "token is read-only"),
    );

    let err = restore(&ctx, &first, SafetyChoice::Snapshot)
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::PermissionDenied), "{err:?}");
    assert!(
        err.hint
            .as_deref()
            .unwrap_or_default()
            .starts_with("Nothing was changed on the server"),
        "{err:?}"
    );
    assert_eq!(names(&err.steps), vec!["Connect", "Safety snapshot"]);
    assert_eq!(world.platform.data().0, b"rows v2", "nothing restored");
}

#[tokio::test]
async fn none_is_refused_over_mcp_unless_safety_json_allows_it() {
    let (world, cli, first) = backed_up_then_changed().await;
    let mcp = world.context(Surface::Mcp, &[("KASTELL_SAFE_MODE", "false"), CLOUD_TOKEN]);

    let err = restore(&mcp, &first, SafetyChoice::None).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::PermissionDenied), "{err:?}");
    assert!(err.error.contains("refused over MCP"), "{}", err.error);
    // The agent is told to ask the person, not how to lift the rule.
    let hint = err.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("ask them"), "{hint}");
    assert!(!hint.contains("safety.json"), "{hint}");
    assert!(!hint.contains("restore_without_safety_copy"), "{hint}");
    assert!(err.steps.is_empty(), "refused before anything ran");
    assert_eq!(world.platform.data().0, b"rows v2");

    std::fs::write(
        world.dir.path().join("safety.json"),
        r#"{"level": "destructive", "restore_without_safety_copy": true}"#,
    )
    .unwrap();
    let locals = backup_list(&cli, Some("web-1")).await.unwrap().backup_count;
    let done = restore(&mcp, &first, SafetyChoice::None).await.unwrap();
    assert_eq!(done.safety.kind, "none");
    assert!(done.safety.id.is_none() && done.safety_backup_id.is_none());
    assert_eq!(world.platform.data().0, b"rows v1");
    assert_eq!(
        backup_list(&cli, Some("web-1")).await.unwrap().backup_count,
        locals,
        "no safety backup taken"
    );
}
