//! Backups and snapshots through the operations.

use kastell_core::ErrorKind;

use super::*;

#[tokio::test]
async fn an_empty_backup_list_is_a_success_with_its_shape() {
    let world = World::new();
    let listed = backup_list(&world.context(Surface::Mcp, &[]), Some("web-1"))
        .await
        .unwrap();
    let json = serde_json::to_value(&listed).unwrap();
    assert_eq!(json["success"], true);
    assert_eq!(json["backupCount"], 0);
    assert_eq!(json["backups"], serde_json::json!([]));
    assert_eq!(json["ip"], "203.0.113.10");
    assert_eq!(json["message"], "No backups found for this server");
    assert_eq!(
        json["suggested_actions"][0]["command"],
        "server_backup { action: 'backup-create', server: 'web-1' }"
    );
}

#[tokio::test]
async fn backup_create_list_verify_and_restore_the_newest() {
    let world = World::new();
    let ctx = world.cli();
    world.platform.set_data(b"rows v1", b"env v1");
    let first = backup_create(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(first.platform_version, "1.0.0");
    world.platform.set_data(b"rows v2", b"env v2");
    let second = backup_create(&ctx, Some("web-1")).await.unwrap();
    world.platform.set_data(b"rows v3", b"env v3");

    let listed = backup_list(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(listed.backup_count, 2);
    assert_eq!(
        listed.backups[0].backup_id, second.backup_id,
        "newest first"
    );
    assert_eq!(listed.backups[0].status, "complete");

    let verified = backup_verify(&ctx, Some("web-1"), None).await.unwrap();
    assert_eq!(verified.backup_id, second.backup_id);

    // CLI: no id means the newest (the original took the oldest).
    let restored = backup_restore(&ctx, Some("web-1"), None).await.unwrap();
    assert_eq!(restored.backup_id, second.backup_id);
    assert_eq!(world.platform.data().0, b"rows v2");
    assert!(restored.safety_backup_id.is_some());
    assert!(
        restored
            .steps
            .iter()
            .all(|s| s.status != StepOutcome::Failure)
    );

    // MCP: the id is required.
    let mcp = world.context(Surface::Mcp, &[("KASTELL_SAFE_MODE", "false")]);
    let err = backup_restore(&mcp, Some("web-1"), None).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::InvalidInput));
    let err = backup_restore(&mcp, Some("web-1"), Some("../../etc"))
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::InvalidInput));
    let restored = backup_restore(&mcp, Some("web-1"), Some(&first.backup_id))
        .await
        .unwrap();
    assert_eq!(restored.backup_id, first.backup_id);
    assert_eq!(world.platform.data().0, b"rows v1");
}

/// A restore the platform stops part-way shows the platform's own steps in
/// the engine's place, the failed one with its error, and the platform
/// started again; the error names the step in plain words.
#[tokio::test]
async fn a_failed_restore_shows_the_platforms_steps_beside_its_error() {
    let world = World::new();
    let ctx = world.cli();
    backup_create(&ctx, Some("web-1")).await.unwrap();
    world
        .platform
        .fail_next_restore("pg_restore: error: could not execute query");
    let err = backup_restore(&ctx, Some("web-1"), None).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::CommandFailed), "{err:?}");
    assert!(
        err.error.contains("could not execute query"),
        "{}",
        err.error
    );
    assert!(
        !err.error.contains('{'),
        "no JSON in the message: {}",
        err.error
    );
    let failed: Vec<&str> = err
        .steps
        .iter()
        .filter(|s| s.status == StepOutcome::Failure)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(failed, ["Restore database"], "{:?}", names(&err.steps));
    let shown = names(&err.steps);
    assert!(!shown.contains(&"Restore"), "no generic step: {shown:?}");
    assert_eq!(
        world.platform.events().last().map(String::as_str),
        Some("start")
    );
}

#[tokio::test]
async fn snapshots_round_trip_and_ownership_errors_surface() {
    let world = World::new();
    let ctx = world.cli();
    let empty = snapshot_list(&ctx, Some("web-1")).await.unwrap();
    let json = serde_json::to_value(&empty).unwrap();
    assert_eq!(json["snapshotCount"], 0);
    assert_eq!(json["ip"], "203.0.113.10");
    assert_eq!(json["message"], "No snapshots found");

    let created = snapshot_create(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(created.snapshot.status, "available");
    assert_ne!(created.snapshot.id, "pending");
    assert_eq!(created.cost_estimate, "$0.40/mo");
    let listed = snapshot_list(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(listed.snapshot_count, 1);

    // web-2 cannot delete or restore web-1's snapshot.
    let theirs = created.snapshot.id.clone();
    let err = snapshot_delete(&ctx, Some("web-2"), &theirs)
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::NotFound), "{err}");
    assert_eq!(err.server.as_deref(), Some("web-2"));
    let err = snapshot_restore(&ctx, Some("web-2"), &theirs)
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::NotFound));
    let err = snapshot_delete(&ctx, Some("web-1"), "a/../b")
        .await
        .unwrap_err();
    assert!(err.is_kind(ErrorKind::InvalidInput));

    let restored = snapshot_restore(&ctx, Some("web-1"), &theirs)
        .await
        .unwrap();
    assert!(restored.message.contains("running"));
    let deleted = snapshot_delete(&ctx, Some("web-1"), &theirs).await.unwrap();
    assert_eq!(deleted.message, "Snapshot deleted");
    assert_eq!(
        snapshot_list(&ctx, Some("web-1"))
            .await
            .unwrap()
            .snapshot_count,
        0
    );
}

#[tokio::test]
async fn a_failed_cost_estimate_is_unknown_not_an_error() {
    let world = World::new();
    world.cloud.fail_next(
        "snapshot_cost_estimate",
        kastell_core::Error::unavailable("pricing down"),
    );
    let created = snapshot_create(&world.cli(), Some("web-1")).await.unwrap();
    assert_eq!(created.cost_estimate, "unknown");
}

#[test]
fn errors_serialise_with_the_original_field_names() {
    let err = OpError::from(
        kastell_core::Error::not_found("Server not found: x").with_hint("Available servers: a"),
    );
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["error"], "Server not found: x");
    assert_eq!(json["hint"], "Available servers: a");
    assert_eq!(json["kind"], "not_found");
    assert_eq!(json["suggested_actions"], serde_json::json!([]));
    assert!(json.get("steps").is_none());
    let schema = serde_json::to_value(schemars::schema_for!(OpError)).unwrap();
    assert!(schema["properties"]["suggested_actions"].is_object());
    let schema = serde_json::to_value(schemars::schema_for!(MaintainResult)).unwrap();
    for field in [
        "success",
        "server",
        "ip",
        "steps",
        "summary",
        "suggested_actions",
    ] {
        assert!(schema["properties"][field].is_object(), "{field}");
    }
}

#[test]
fn snapshot_sizes_are_shown_rounded_to_two_decimals() {
    use kastell_core::types::{Snapshot, SnapshotId, SnapshotStatus};
    let snapshot = |size: Option<f64>| Snapshot {
        id: SnapshotId::new("42".to_owned()).unwrap(),
        server_id: None,
        name: "kastell-1".into(),
        status: SnapshotStatus::Available,
        raw_status: "available".into(),
        size_gb: size,
        created_at: None,
        managed: None,
    };
    for (raw, shown) in [
        (0.5200000000000001, 0.52),
        (2.2499999999999996, 2.25),
        (1.2 + 0.35 * 3.0, 2.25),
        (0.005, 0.01),
        (40.0, 40.0),
        (0.0, 0.0),
    ] {
        let info = SnapshotInfo::from(&snapshot(Some(raw)));
        assert_eq!(info.size_gb, Some(shown), "{raw}");
        let json = serde_json::to_string(&info).unwrap();
        assert!(
            json.contains(&format!("\"sizeGb\":{shown}")),
            "{raw} serialised as {json}"
        );
    }
    assert_eq!(SnapshotInfo::from(&snapshot(None)).size_gb, None);
    for bad in [f64::NAN, f64::INFINITY] {
        let info = SnapshotInfo::from(&snapshot(Some(bad)));
        assert_eq!(info.size_gb, None, "{bad}");
        assert!(!serde_json::to_string(&info).unwrap().contains("sizeGb"));
    }
}

/// After a restore the newest backup is the safety backup of the state it
/// replaced. It is marked as such (durably, in its manifest), and every
/// "newest" a restore uses skips it: the engine's default, the pinned id
/// the CLI asks about, the listing's suggestion and the blast radius. A
/// retried restore puts the good backup back again; the safety backup is
/// restored only by its id, and then says what it is.
#[tokio::test]
async fn a_restore_without_an_id_never_picks_the_safety_backup_of_the_last_one() {
    let world = World::new();
    let ctx = world.cli();
    world.platform.set_data(b"rows good", b"env good");
    let good = backup_create(&ctx, Some("web-1")).await.unwrap();
    world.platform.set_data(b"rows broken", b"env broken");
    let first = backup_restore(&ctx, Some("web-1"), None).await.unwrap();
    assert_eq!(first.backup_id, good.backup_id);
    let safety = first.safety_backup_id.clone().unwrap();

    // The listing marks it, from what is on disk.
    let listed = backup_list(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(listed.backups[0].backup_id, safety, "newest first");
    assert_eq!(
        listed.backups[0].safety_for.as_deref(),
        Some(good.backup_id.as_str())
    );
    assert_eq!(listed.backups[1].safety_for, None);
    let json = serde_json::to_value(&listed.backups).unwrap();
    assert_eq!(json[0]["safetyFor"], good.backup_id.as_str());
    assert!(json[1].get("safetyFor").is_none(), "{json}");

    // The kastell://fleet resource shows it as the newest, marked.
    let fleet = fleet_overview(&ctx).await.unwrap();
    let web = fleet.servers.iter().find(|s| s.name == "web-1").unwrap();
    let last = web.last_backup.as_ref().unwrap();
    assert_eq!(last.backup_id, safety);
    assert_eq!(last.safety_for.as_deref(), Some(good.backup_id.as_str()));

    // MCP's suggestion offers the good backup, not the safety copy.
    let mcp = world.context(Surface::Mcp, &[("KASTELL_SAFE_MODE", "false")]);
    let offered = backup_list(&mcp, Some("web-1")).await.unwrap();
    let restore = offered
        .suggested_actions
        .iter()
        .find(|s| s.reason == "Restore latest backup")
        .expect("a restore suggestion");
    assert!(
        restore.command.contains(&good.backup_id) && !restore.command.contains(&safety),
        "{}",
        restore.command
    );

    // The CLI's question and plan name the good one.
    let web = crate::state::store::FleetStore::open(world.dir.path())
        .unwrap()
        .find("web-1")
        .unwrap()
        .unwrap();
    let mut pinned = RestoreArgs::default();
    BackupRestoreOp::pin(&ctx, &web, &mut pinned);
    assert_eq!(
        pinned.backup.backup_id.as_deref(),
        Some(good.backup_id.as_str())
    );

    // The blast radius's newest backup for a restore is the good one.
    let blast = blast_radius(
        &mcp,
        BackupRestoreOp::ID,
        Some("web-1"),
        Some(&good.backup_id),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        blast.newest_backup.map(|b| b.backup_id).as_deref(),
        Some(good.backup_id.as_str())
    );

    // A retried restore (no id) puts the good backup back again.
    world
        .platform
        .set_data(b"rows broken again", b"env broken again");
    let again = backup_restore(&ctx, Some("web-1"), None).await.unwrap();
    assert_eq!(again.backup_id, good.backup_id);
    assert_eq!(world.platform.data().0, b"rows good");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);

    // By its id, the safety backup restores as any backup, saying what it is.
    let plan = BackupRestoreOp::plan(
        &ctx,
        &web,
        &RestoreArgs {
            backup: BackupRef {
                backup_id: Some(safety.clone()),
                ..BackupRef::default()
            },
            ..RestoreArgs::default()
        },
    );
    let note = format!(
        "backup {safety} is the safety backup taken before restoring {}",
        good.backup_id
    );
    assert!(plan.iter().any(|s| s.contains(&note)), "{plan:?}");
    let back = backup_restore(&ctx, Some("web-1"), Some(&safety))
        .await
        .unwrap();
    assert_eq!(back.backup_id, safety);
    assert_eq!(world.platform.data().0, b"rows broken");
    assert!(
        back.warnings.iter().any(|w| w.contains(&note)),
        "{:?}",
        back.warnings
    );
}

/// A server whose only backups are safety backups has no newest to
/// restore: the error names them and says to pass one's id.
#[tokio::test]
async fn only_safety_backups_means_no_newest_and_the_error_names_them() {
    let world = World::new();
    let ctx = world.cli();
    let good = backup_create(&ctx, Some("web-1")).await.unwrap();
    let first = backup_restore(&ctx, Some("web-1"), None).await.unwrap();
    let safety = first.safety_backup_id.clone().unwrap();
    std::fs::remove_dir_all(
        world
            .dir
            .path()
            .join("backups")
            .join("web-1")
            .join(&good.backup_id),
    )
    .unwrap();
    let err = backup_restore(&ctx, Some("web-1"), None).await.unwrap_err();
    assert!(err.is_kind(ErrorKind::NotFound), "{err:?}");
    assert!(err.error.contains("only safety backups"), "{}", err.error);
    assert!(
        err.hint.as_deref().is_some_and(|h| h.contains(&safety)),
        "{:?}",
        err.hint
    );
}

/// `status` names a safety backup as the newest proven one: that proof
/// does not cover the backup a restore without an id picks.
#[tokio::test]
async fn status_says_when_the_newest_proven_backup_is_a_safety_backup() {
    let world = World::new();
    let ctx = world.cli();
    let good = backup_create(&ctx, Some("web-1")).await.unwrap();
    let verified = backup_verify(&ctx, Some("web-1"), None).await.unwrap();
    assert_eq!(verified.backup_id, good.backup_id);
    let plain = server_status(&ctx, Some("web-1")).await.unwrap();
    assert!(
        plain.warnings.iter().all(|w| !w.contains("safety backup")),
        "{:?}",
        plain.warnings
    );

    let restored = backup_restore(&ctx, Some("web-1"), None).await.unwrap();
    let safety = restored.safety_backup_id.clone().unwrap();
    let verified = backup_verify(&ctx, Some("web-1"), Some(&safety))
        .await
        .unwrap();
    assert_eq!(verified.backup_id, safety, "verified by its id");
    let status = server_status(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(
        status
            .last_verified_backup
            .as_ref()
            .map(|v| v.backup_id.as_str()),
        Some(safety.as_str())
    );
    let note = format!(
        "({safety}) is the safety backup taken before restoring {}",
        good.backup_id
    );
    assert!(
        status.warnings.iter().any(|w| w.contains(&note)),
        "{:?}",
        status.warnings
    );
}
