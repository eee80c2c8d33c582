//! Coolify and Dokploy servers end to end through the real `kastell-mcp`
//! (an rmcp client over a child process). Each server is a manual server
//! (no provider) in a temporary fleet store, reached over a real sshd with
//! the fixture's key and port, and `platformOptions` pointing the platform
//! at the fixture's fake root: the testkit's `PaasHost` (a private
//! PostgreSQL cluster behind the `docker` shim).
//!
//! backup-create, backup-list, backup-restore of changed rows (checked in
//! PostgreSQL, containers running after), update (the shim's version moves
//! on), status, health, logs and monitor; a restore whose `pg_restore` fails
//! is `isError` with error, hint and steps and leaves the platform running
//! and the data as it was. With SAFE_MODE on (the MCP default), every
//! action is answered as the policy table says
//! ([`safe_mode::every_action_as_the_policy_table_says`]): what it refuses
//! is refused with the table's messages, suggesting only allowed actions,
//! and runs nothing on the host.
//!
//! Every response goes through `Mcp::checked`: successes validate against
//! the tool's `outputSchema` (strictly), failures against the error schema.

#![cfg(all(feature = "coolify", feature = "dokploy"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp::common as mcp_common;
use crate::mcp::safe_mode;
use crate::paas_host;

use std::path::Path;

use kastell_testkit::platform::health_endpoint;
use serde_json::json;

use mcp_common::{backup, failed, listed, listed_ids, ok, step, step_names, suggested};
use paas_host::{Host, Kind};
use safe_mode::HostWatch;

const ROWS: &str = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM apps";

/// The configuration file of `kind` the backup must carry (relative to the
/// fake root) and the platform's display name.
fn paas_facts(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Coolify => ("data/coolify/source/.env", "Coolify"),
        Kind::Dokploy => ("etc/dokploy/dokploy.yml", "Dokploy"),
    }
}

/// The whole MCP story of one PaaS server: SAFE_MODE on, then off.
async fn paas_through_mcp(kind: Kind) {
    let host: Host = tokio::task::spawn_blocking(move || paas_host::start(kind))
        .await
        .unwrap();
    let db = kind.database();
    let (config_file, label) = paas_facts(kind);
    host.pg
        .execute(
            db,
            "CREATE TABLE apps (id int PRIMARY KEY, name text); \
             INSERT INTO apps VALUES (1,'one'),(2,'two'),(3,'three');",
        )
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = format!("{db}-1");
    let health_url = health_endpoint();
    mcp_common::add_manual_server(
        dir,
        &name,
        Some(db),
        &host.sshd.sshd,
        json!({
            "root": host.shim.root().to_string_lossy(),
            "health_url": health_url,
        }),
    );
    let version = host.shim.state().version;
    let config_path = host.shim.root_path(config_file);
    let config_before = std::fs::read(&config_path).unwrap();

    // SAFE_MODE on (the MCP default): every action as the policy table
    // says; nothing it refuses runs a command on the host.
    let on = mcp_common::start(dir, &[]).await;
    let reset = || host.shim.clear_commands().unwrap();
    let ran = || host.shim.commands();
    let first_id = safe_mode::every_action_as_the_policy_table_says(
        &on,
        dir,
        &name,
        &HostWatch {
            reset: &reset,
            ran: &ran,
        },
    )
    .await;
    on.stop().await;
    assert_eq!(host.shim.state().version, version);

    // SAFE_MODE off.
    let off = mcp_common::start(dir, &[("KASTELL_SAFE_MODE", "false")]).await;

    // The fleet, the server's status and its health.
    let r = off
        .checked("server_info", json!({"action": "list"}), false)
        .await;
    let list = ok(&r);
    assert_eq!(list["serverCount"], 1, "{list}");
    let summary = &list["servers"][0];
    assert_eq!(summary["name"], name);
    assert_eq!(summary["platform"], db);
    assert_eq!(summary["manual"], true);
    assert_eq!(summary["provider"], "manual");
    let r = off
        .checked(
            "server_info",
            json!({"action": "status", "server": name}),
            false,
        )
        .await;
    let status = ok(&r);
    assert_eq!(status["reachable"], true, "{status}");
    assert_eq!(status["platform"], db);
    let boot_id = status["bootId"].as_str().unwrap();
    assert_eq!(
        boot_id,
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim(),
        "the boot id is the host's"
    );
    assert_eq!(status["notes"], json!([]), "{status}");
    let r = off
        .checked(
            "server_info",
            json!({"action": "health", "server": name}),
            false,
        )
        .await;
    let health = ok(&r);
    assert_eq!(health["healthy"], true, "{health}");
    assert!(
        health["detail"].as_str().unwrap().contains(&health_url),
        "{health}"
    );

    // backup-create: a new backup with the database dump and the config.
    let args = backup(&name, "backup-create", json!({}));
    let (r, progress) = off.call_with_progress("server_backup", args.clone()).await;
    off.check("server_backup", &args, &r, false).await;
    let created = ok(&r).clone();
    let backup_id = created["backupId"].as_str().unwrap().to_owned();
    assert_ne!(backup_id, first_id);
    assert_eq!(created["server"], name);
    assert_eq!(created["platformVersion"], version);
    // Dokploy's backups also carry its auth secret (dokploy-platform-secret).
    let files = match kind {
        Kind::Coolify => 2,
        Kind::Dokploy => 3,
    };
    assert_eq!(
        created["files"].as_array().unwrap().len(),
        files,
        "{created}"
    );
    assert!(
        Path::new(created["backupPath"].as_str().unwrap())
            .join("manifest.json")
            .is_file(),
        "{created}"
    );
    // Its steps are reported as progress while it runs.
    assert!(!progress.is_empty(), "backup-create reported no progress");
    assert!(
        progress
            .iter()
            .any(|p| p.message.as_deref().is_some_and(|m| m.contains(&name))),
        "no progress step names the server: {progress:?}"
    );
    // Distinct values (the client handles each notification in a task of
    // its own, so the order they are recorded in is not the order sent).
    let mut values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    values.sort_by(f64::total_cmp);
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "repeated progress values: {progress:#?}"
    );

    // backup-list: both backups, newest first, complete.
    let r = off
        .checked(
            "server_backup",
            backup(&name, "backup-list", json!({})),
            false,
        )
        .await;
    let list = ok(&r);
    assert_eq!(list["backupCount"], 2, "{list}");
    assert_eq!(listed_ids(list), [backup_id.clone(), first_id.clone()]);
    let entry = listed(list, &backup_id);
    assert_eq!(entry["status"], "complete");
    assert_eq!(entry["platform"], db);
    assert_eq!(entry["coolifyVersion"], version);
    assert_eq!(entry["files"], created["files"]);
    assert!(
        suggested(list).contains(&("server_backup".into(), "backup-restore".into())),
        "{list}"
    );

    // Change the data and the config, then restore that backup.
    host.pg
        .execute(
            db,
            "UPDATE apps SET name='changed'; DELETE FROM apps WHERE id=2; \
             INSERT INTO apps VALUES (4,'four');",
        )
        .unwrap();
    std::fs::write(&config_path, "overwritten after the backup\n").unwrap();
    assert_eq!(
        host.pg.psql(db, ROWS).unwrap(),
        "1:changed,3:changed,4:four"
    );
    host.shim.clear_commands().unwrap();
    let r = off
        .checked(
            "server_backup",
            backup(&name, "backup-restore", json!({"backupId": backup_id})),
            false,
        )
        .await;
    let restored = ok(&r);
    assert_eq!(restored["backupId"], backup_id);
    let safety = restored["safetyBackupId"].as_str().unwrap().to_owned();
    assert!(safety != backup_id && safety != first_id, "{restored}");
    let names = step_names(restored);
    assert_eq!(
        names[..3],
        ["Connect", "Verify backup", "Safety backup"],
        "{names:?}"
    );
    assert_eq!(names[3], format!("Stop {label}"), "{names:?}");
    assert_eq!(
        names[names.len() - 2..],
        [format!("Start {label}"), "Health check".to_owned()],
        "{names:?}"
    );
    assert!(names.len() > 5, "no platform restore steps: {names:?}");
    for s in restored["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "success", "{s}");
    }
    assert_eq!(host.pg.psql(db, ROWS).unwrap(), "1:one,2:two,3:three");
    assert_eq!(std::fs::read(&config_path).unwrap(), config_before);
    let state = host.shim.state();
    assert!(
        state.app_running && state.db_running,
        "not running after the restore: {state:?}"
    );
    let commands = host.shim.commands().join("\n");
    assert!(commands.contains(kind.stop_marker()), "{commands}");
    assert!(commands.contains("pg_restore"), "{commands}");
    assert!(
        suggested(restored).contains(&("server_info".into(), "health".into())),
        "{restored}"
    );
    let r = off
        .checked(
            "server_backup",
            backup(&name, "backup-list", json!({})),
            false,
        )
        .await;
    let list = ok(&r);
    assert_eq!(list["backupCount"], 3, "{list}");
    assert_eq!(listed(list, &safety)["status"], "complete");

    // update: the installer runs and the version moves on.
    let r = off
        .checked(
            "server_maintain",
            json!({"action": "update", "server": name}),
            false,
        )
        .await;
    let updated = ok(&r);
    let after = host.shim.state().version;
    assert_ne!(after, version, "the installer did not run");
    assert_eq!(updated["versionBefore"], version, "{updated}");
    assert_eq!(updated["versionAfter"], after, "{updated}");
    assert_eq!(
        updated["message"],
        format!("{label} update completed successfully")
    );
    assert_eq!(updated["rebootRequired"], false);
    assert_eq!(
        step_names(updated),
        ["Status Check", &format!("{label} Update")]
    );
    assert_eq!(step(updated, "Status Check")["status"], "skipped");
    assert_eq!(
        step(updated, &format!("{label} Update"))["status"],
        "success"
    );
    let state = host.shim.state();
    assert!(state.app_running && state.db_running, "{state:?}");

    // Logs and monitor.
    let r = off
        .checked(
            "server_logs",
            json!({"action": "logs", "server": name, "lines": 5}),
            false,
        )
        .await;
    let logs = ok(&r);
    assert_eq!(logs["source"], "system");
    assert_eq!(logs["command"], "journalctl -n '5' --no-pager 2>&1");
    assert!(logs["lines"].as_array().unwrap().len() <= 5, "{logs}");
    let r = off
        .checked(
            "server_logs",
            json!({"action": "logs", "server": name, "source": "platform", "lines": 3}),
            false,
        )
        .await;
    let logs = ok(&r);
    assert_eq!(logs["source"], "platform");
    let (command, prefix) = match kind {
        Kind::Coolify => ("docker logs --tail '3' 'coolify' 2>&1", ""),
        Kind::Dokploy => (
            "docker service logs --tail '3' 'dokploy' 2>&1",
            "dokploy.1.",
        ),
    };
    assert_eq!(logs["command"], command);
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{logs}");
    for (line, n) in lines.iter().zip(18..) {
        assert!(
            line.starts_with(prefix) && line.ends_with(&format!("kastell-shim app log line {n}")),
            "{logs}"
        );
    }
    let r = off
        .checked(
            "server_logs",
            json!({"action": "monitor", "server": name}),
            false,
        )
        .await;
    let monitor = ok(&r);
    assert!(monitor["memory"]["totalBytes"].as_u64().unwrap() > 0);
    assert!(monitor["disk"]["totalBytes"].as_u64().unwrap() > 0);

    // A restore whose pg_restore fails: an error with a hint and the steps,
    // the platform started again and the data untouched.
    host.pg
        .execute(db, "UPDATE apps SET name='kept' WHERE id=1;")
        .unwrap();
    let kept = host.pg.psql(db, ROWS).unwrap();
    assert_eq!(kept, "1:kept,2:two,3:three");
    host.shim
        .fail_next("pg_restore", 1, "pg_restore: error: simulated failure")
        .unwrap();
    host.shim.clear_commands().unwrap();
    let r = off
        .checked(
            "server_backup",
            backup(&name, "backup-restore", json!({"backupId": backup_id})),
            false,
        )
        .await;
    let value = failed(&r);
    assert_eq!(value["kind"], "command_failed", "{value}");
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("simulated failure"),
        "{value}"
    );
    assert_eq!(value["server"], name);
    let names = step_names(value);
    assert_eq!(
        names[..4],
        [
            "Connect",
            "Verify backup",
            "Safety backup",
            &format!("Stop {label}")
        ]
    );
    assert_eq!(
        names.last().unwrap(),
        &format!("Start {label}"),
        "{names:?}"
    );
    assert_eq!(step(value, &format!("Start {label}"))["status"], "success");
    // The platform's own steps are shown, the failed one with its error,
    // and the message carries no copy of them.
    assert_eq!(step(value, "Start database")["status"], "success");
    let failed_step = step(value, "Restore database");
    assert_eq!(failed_step["status"], "failure", "{value}");
    assert!(
        failed_step["error"]
            .as_str()
            .unwrap()
            .contains("simulated failure"),
        "{value}"
    );
    assert!(
        value["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "failure")
            .count()
            == 1,
        "{value}"
    );
    let error = value["error"].as_str().unwrap();
    assert!(
        error.starts_with("Restore database failed:") && !error.contains('{'),
        "{error}"
    );
    assert!(
        !names.contains(&"Health check".to_owned()),
        "a failed restore reported health: {names:?}"
    );
    assert!(
        host.shim.pending_failures().is_empty(),
        "pg_restore never ran"
    );
    let commands = host.shim.commands().join("\n");
    assert!(commands.contains(kind.stop_marker()), "{commands}");
    let state = host.shim.state();
    assert!(
        state.app_running && state.db_running,
        "left stopped after a failed restore: {state:?}"
    );
    assert_eq!(host.pg.psql(db, ROWS).unwrap(), kept, "one transaction");
    let r = off
        .checked(
            "server_info",
            json!({"action": "health", "server": name}),
            false,
        )
        .await;
    assert_eq!(ok(&r)["healthy"], true);
    off.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coolify_through_mcp() {
    paas_through_mcp(Kind::Coolify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dokploy_through_mcp() {
    paas_through_mcp(Kind::Dokploy).await;
}
