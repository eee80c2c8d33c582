//! The operations' plans: what `--dry-run` prints and an MCP dry run shows,
//! from the operation's own arguments and the server's record.

use super::World;
use crate::ops::{
    BackupRef, BackupRestoreOp, LogsArgs, LogsOp, LogsSource, MaintainOp, MaintainOptions,
    Operation, RepoArg, RestoreArgs, SnapshotDeleteOp, SnapshotRef,
};
use crate::state::store::FleetStore;

fn server(world: &World, name: &str) -> crate::ServerRecord {
    FleetStore::open(world.dir.path())
        .unwrap()
        .find(name)
        .unwrap()
        .unwrap()
}

#[test]
fn a_restore_plan_names_the_backup_the_repository_and_what_the_platform_entry_says_it_replaces() {
    let world = World::new();
    let ctx = world.cli();
    let web = server(&world, "web-1");
    let args = RestoreArgs {
        backup: BackupRef {
            backup_id: Some("2026-12-01_03-00-00-000".into()),
            repo: RepoArg {
                repo: Some("offsite".into()),
            },
        },
        ..RestoreArgs::default()
    };
    let steps = BackupRestoreOp::plan(&ctx, &web, &args);
    assert!(steps[0].starts_with("Pull backup 2026-12-01_03-00-00-000 from repository offsite"));
    assert!(
        steps.iter().any(|s| s.contains(
            "onto the coolify platform over SSH, replacing the platform's database and configuration"
        )),
        "{steps:?}"
    );
    assert_eq!(
        BackupRestoreOp::question(&web, &args),
        "This will restore \"web-1\" (203.0.113.10) from backup 2026-12-01_03-00-00-000 in repository offsite. Current data will be OVERWRITTEN. Continue?"
    );
}

#[test]
fn a_maintain_plan_follows_its_options() {
    let world = World::new();
    let ctx = world.cli();
    let web = server(&world, "web-1");
    let plain = MaintainOp::plan(&ctx, &web, &MaintainOptions::default());
    assert!(
        plain[0].starts_with("Backup: the platform's database"),
        "{plain:?}"
    );
    assert!(
        plain[1].starts_with("Snapshot (where the provider has them"),
        "{plain:?}"
    );
    assert!(
        plain.contains(&"Health Check: the platform's (a failure skips the reboot)".to_owned())
    );
    assert!(
        plain
            .last()
            .unwrap()
            .starts_with("On a failure from the update on: rollback policy ask (default)"),
        "{plain:?}"
    );
    let forced = MaintainOptions {
        reboot_even_if_unhealthy: true,
        snapshot: true,
        ..MaintainOptions::default()
    };
    let steps = MaintainOp::plan(&ctx, &web, &forced);
    assert!(
        steps[1].starts_with("Snapshot (required): estimate its monthly cost"),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.contains("the reboot follows even if it fails")),
        "{steps:?}"
    );
    let skipped = MaintainOptions {
        skip_reboot: true,
        reboot_even_if_unhealthy: true,
        ..MaintainOptions::default()
    };
    let steps = MaintainOp::plan(&ctx, &web, &skipped);
    assert!(
        steps.contains(&"Reboot: skipped (--skip-reboot)".to_owned()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"Health Check: the platform's (a failure skips the reboot)".to_owned())
    );
    let none = MaintainOptions {
        no_snapshot: true,
        no_backup: true,
        ..MaintainOptions::default()
    };
    let steps = MaintainOp::plan(&ctx, &web, &none);
    assert!(
        steps[0].starts_with("Backup: skipped (--no-backup"),
        "{steps:?}"
    );
    assert!(
        steps[1].starts_with("Snapshot: skipped (--no-snapshot"),
        "{steps:?}"
    );
}

#[test]
fn targets_and_lines_come_from_the_arguments() {
    let world = World::new();
    let ctx = world.cli();
    let man = server(&world, "man-1");
    let delete = SnapshotRef {
        snapshot_id: Some("snap-9".into()),
    };
    assert_eq!(SnapshotDeleteOp::target(&delete), Some("snap-9"));
    assert_eq!(
        SnapshotDeleteOp::plan(&ctx, &man, &delete),
        ["Delete snapshot snap-9 via no provider API (manual server)"]
    );
    let logs = LogsArgs {
        source: LogsSource::Platform,
        lines: Some(25),
        follow: false,
    };
    let steps = LogsOp::plan(&ctx, &man, &logs);
    assert_eq!(
        steps,
        [
            "Read the last 25 lines of the platform's container log (docker logs) over SSH (root@203.0.113.20:22; read-only)"
        ]
    );
}
