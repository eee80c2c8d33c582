//! Coolify, Dokploy and bare servers end to end through the real
//! `kastell-mcp` (an rmcp client over a child process). Each server is a
//! manual server (no provider) in a temporary fleet store, reached over a
//! real sshd with the fixture's key and port, and `platformOptions` pointing
//! the platform at the fixture's fake root:
//!
//! - Coolify and Dokploy: the testkit's `PaasHost` (a private PostgreSQL
//!   cluster behind the `docker` shim). backup-create, backup-list,
//!   backup-restore of changed rows (checked in PostgreSQL, containers
//!   running after), update (the shim's version moves on), status, health,
//!   logs and monitor; a restore whose `pg_restore` fails is `isError` with
//!   error, hint and steps and leaves the platform running and the data as
//!   it was.
//! - bare: the testkit's `BareHost`. A file under the fake root round trips
//!   through backup-create/list/restore; update (the apt shim) reports the
//!   packages and that a reboot is required; a backup holding a broken
//!   sshd_config is refused with a hint and the host's file is untouched.
//! - SAFE_MODE on (the MCP default) for the same servers: backup-restore and
//!   update are refused with the original's messages, suggesting only
//!   allowed actions, and nothing runs on the host; backup-create works.
//!
//! Every response goes through [`Mcp::checked`]: successes validate against
//! the tool's `outputSchema` (strictly), failures against the error schema.
//! Reboots are not exercised here.

#![cfg(all(feature = "coolify", feature = "dokploy", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp_common;
mod paas_host;

use std::path::Path;

use kastell_testkit::platform::{BareHost, health_endpoint};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use mcp_common::{Mcp, content, is_error};
use paas_host::{Host, Kind};

const ROWS: &str = "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM apps";

/// `server_backup` arguments for `action` on `server`, plus `extra`.
fn backup(server: &str, action: &str, extra: Value) -> Value {
    let mut v = json!({"action": action, "server": server});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

/// The structured content of a success (panics on a failure).
fn ok(result: &CallToolResult) -> &Value {
    let value = content(result);
    assert_eq!(result.is_error, Some(false), "expected success: {value}");
    assert_eq!(value["success"], true, "{value}");
    value
}

/// The structured content of a failure (panics on a success).
fn failed(result: &CallToolResult) -> &Value {
    let value = content(result);
    assert!(is_error(result), "expected a failure: {value}");
    value
}

/// The `(tool, action)` of every suggestion.
fn suggested(value: &Value) -> Vec<(String, String)> {
    value["suggested_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let command = s["command"].as_str().unwrap();
            let (tool, rest) = command.split_once(' ').unwrap();
            let action = rest.split("action: '").nth(1).unwrap().split('\'').next();
            (tool.to_owned(), action.unwrap().to_owned())
        })
        .collect()
}

/// Step names of a result or failure, in order.
fn step_names(value: &Value) -> Vec<String> {
    value["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {value}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The step called `name`.
fn step<'a>(value: &'a Value, name: &str) -> &'a Value {
    value["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {value}"))
}

/// The backup ids of a backup-list result, in order.
fn listed_ids(value: &Value) -> Vec<String> {
    value["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap().to_owned())
        .collect()
}

/// The listed backup `id`.
fn listed<'a>(value: &'a Value, id: &str) -> &'a Value {
    value["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backupId"] == id)
        .unwrap_or_else(|| panic!("backup {id} not listed in {value}"))
}

/// A SAFE_MODE refusal on `server`: the original's error and hint, kind
/// `permission_denied`, the server named, and at least one suggestion, each
/// for this server and none of them blocked (the latter checked by
/// [`Mcp::checked`] with `safe`).
fn assert_safe_mode_refusal(result: &CallToolResult, server: &str, error: &str, hint: &str) {
    let value = failed(result);
    assert_eq!(value["error"], error, "{value}");
    assert_eq!(value["hint"], hint, "{value}");
    assert_eq!(value["kind"], "permission_denied", "{value}");
    assert_eq!(value["server"], server, "{value}");
    assert_eq!(value["ip"], "127.0.0.1", "{value}");
    let suggestions = value["suggested_actions"].as_array().unwrap();
    assert!(!suggestions.is_empty(), "no alternative offered: {value}");
    for s in suggestions {
        let command = s["command"].as_str().unwrap();
        assert!(
            command.contains(&format!("server: '{server}'")),
            "a suggestion for another server: {command}"
        );
    }
}

/// What `security.log` of the store in `dir` holds.
fn security_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("state/security.log")).unwrap_or_default()
}

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

    // SAFE_MODE on (the MCP default): back up, but no restore or update.
    let on = mcp_common::start(dir, &[]).await;
    let r = on
        .checked(
            "server_backup",
            backup(&name, "backup-create", json!({})),
            true,
        )
        .await;
    let first_id = ok(&r)["backupId"].as_str().unwrap().to_owned();
    host.shim.clear_commands().unwrap();
    let r = on
        .checked(
            "server_backup",
            backup(&name, "backup-restore", json!({"backupId": first_id})),
            true,
        )
        .await;
    assert_safe_mode_refusal(
        &r,
        &name,
        "Restore disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable restore operations",
    );
    let r = on
        .checked(
            "server_maintain",
            json!({"action": "update", "server": name}),
            true,
        )
        .await;
    assert_safe_mode_refusal(
        &r,
        &name,
        "Update is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable platform updates",
    );
    on.stop().await;
    assert_eq!(
        host.shim.commands(),
        Vec::<String>::new(),
        "a refused call ran commands on the host"
    );
    assert_eq!(host.shim.state().version, version);
    let log = security_log(dir);
    for action in ["backup-restore", "update"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("\"{action}\"")) && l.contains("block")),
            "no {action} refusal in security.log:\n{log}"
        );
    }

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
    assert_eq!(created["files"].as_array().unwrap().len(), 2, "{created}");
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
    assert_eq!(names[..2], ["Verify backup", "Safety backup"], "{names:?}");
    assert_eq!(names[2], format!("Stop {label}"), "{names:?}");
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
        names[..3],
        ["Verify backup", "Safety backup", &format!("Stop {label}")]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_through_mcp() {
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    host.write_sshd_config("PermitRootLogin prohibit-password\n");
    host.write("etc/crontab", "# first crontab\n");
    host.hand_over();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = "bare-1";
    mcp_common::add_manual_server(
        dir,
        name,
        None,
        &host.fixture.sshd,
        json!({"root": host.root().to_string_lossy(), "sudo": "never"}),
    );
    let crontab = || std::fs::read_to_string(host.path("etc/crontab")).unwrap();
    let reboot_flag = host.path("var/run/reboot-required");

    // SAFE_MODE on (the MCP default): back up, but no restore or update.
    let on = mcp_common::start(dir, &[]).await;
    let r = on
        .checked(
            "server_backup",
            backup(name, "backup-create", json!({})),
            true,
        )
        .await;
    let first_id = ok(&r)["backupId"].as_str().unwrap().to_owned();
    host.write("etc/crontab", "# changed under SAFE_MODE\n");
    host.clear_log();
    let r = on
        .checked(
            "server_backup",
            backup(name, "backup-restore", json!({"backupId": first_id})),
            true,
        )
        .await;
    assert_safe_mode_refusal(
        &r,
        name,
        "Restore disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable restore operations",
    );
    let r = on
        .checked(
            "server_maintain",
            json!({"action": "update", "server": name}),
            true,
        )
        .await;
    assert_safe_mode_refusal(
        &r,
        name,
        "Update is disabled in SAFE_MODE",
        "Set KASTELL_SAFE_MODE=false to enable platform updates",
    );
    on.stop().await;
    assert_eq!(crontab(), "# changed under SAFE_MODE\n");
    assert_eq!(host.log(), Vec::<String>::new(), "a refused call ran shims");
    assert!(!reboot_flag.exists());
    host.write("etc/crontab", "# first crontab\n");

    // SAFE_MODE off.
    let off = mcp_common::start(dir, &[("KASTELL_SAFE_MODE", "false")]).await;
    let r = off
        .checked(
            "server_info",
            json!({"action": "status", "server": name}),
            false,
        )
        .await;
    let status = ok(&r);
    assert_eq!(status["reachable"], true, "{status}");
    assert_eq!(status["platform"], "bare");
    let r = off
        .checked(
            "server_info",
            json!({"action": "health", "server": name}),
            false,
        )
        .await;
    assert_eq!(ok(&r)["healthy"], true);
    host.set_state("system-state", "degraded");
    let r = off
        .checked(
            "server_info",
            json!({"action": "health", "server": name}),
            false,
        )
        .await;
    let health = ok(&r);
    assert_eq!(health["healthy"], false, "{health}");
    assert!(
        suggested(health).contains(&("server_logs".into(), "logs".into())),
        "{health}"
    );
    host.set_state("system-state", "running");

    // Round trip of a file under the fake root.
    let r = off
        .checked(
            "server_backup",
            backup(name, "backup-create", json!({})),
            false,
        )
        .await;
    let created = ok(&r);
    let backup_id = created["backupId"].as_str().unwrap().to_owned();
    let skipped: Vec<&str> = created["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(skipped.contains(&"/etc/nginx"), "{created}");
    assert!(!skipped.contains(&"/etc/crontab"), "{created}");
    assert!(!skipped.contains(&"/etc/ssh/sshd_config"), "{created}");
    let r = off
        .checked(
            "server_backup",
            backup(name, "backup-list", json!({})),
            false,
        )
        .await;
    let list = ok(&r);
    assert_eq!(listed_ids(list), [backup_id.clone(), first_id.clone()]);
    assert_eq!(listed(list, &backup_id)["status"], "complete");
    assert_eq!(listed(list, &backup_id)["platform"], "bare");

    host.write("etc/crontab", "# someone emptied the crontab\n");
    host.hand_over();
    let r = off
        .checked(
            "server_backup",
            backup(name, "backup-restore", json!({"backupId": backup_id})),
            false,
        )
        .await;
    let restored = ok(&r);
    assert_eq!(crontab(), "# first crontab\n");
    assert_eq!(step(restored, "Validate sshd_config")["status"], "success");
    assert_eq!(step(restored, "Switch config")["status"], "success");
    assert!(restored["safetyBackupId"].is_string(), "{restored}");

    // update: packages upgraded and the reboot it asks for reported.
    host.clear_log();
    let r = off
        .checked(
            "server_maintain",
            json!({"action": "update", "server": name}),
            false,
        )
        .await;
    let updated = ok(&r);
    assert_eq!(updated["packagesUpgraded"], json!(["libssl3", "openssl"]));
    assert_eq!(updated["rebootRequired"], true, "{updated}");
    assert!(reboot_flag.exists(), "the apt shim did not upgrade");
    assert_eq!(step_names(updated), ["Status Check", "Package Upgrade"]);
    assert_eq!(step(updated, "Package Upgrade")["status"], "success");
    assert!(
        host.log()
            .iter()
            .any(|l| l.starts_with("apt-get DEBIAN_FRONTEND=noninteractive")
                && l.contains("upgrade")),
        "{:?}",
        host.log()
    );
    // The same call with SAFE_MODE on suggests nothing blocked: checked by
    // `checked`; with it off, the reboot is offered.
    assert!(
        suggested(updated).contains(&("server_maintain".into(), "restart".into())),
        "{updated}"
    );

    // Logs and monitor.
    let r = off
        .checked(
            "server_logs",
            json!({"action": "logs", "server": name, "lines": 3}),
            false,
        )
        .await;
    assert!(ok(&r)["lines"].as_array().unwrap().len() <= 3);
    let r = off
        .checked(
            "server_logs",
            json!({"action": "logs", "server": name, "source": "platform"}),
            false,
        )
        .await;
    assert_eq!(failed(&r)["kind"], "invalid_input");

    // A backup holding a broken sshd_config is refused; nothing changes.
    host.write("etc/ssh/sshd_config", "ThisIsNotAnOption yes\n");
    host.hand_over();
    let r = off
        .checked(
            "server_backup",
            backup(name, "backup-create", json!({})),
            false,
        )
        .await;
    let broken = ok(&r)["backupId"].as_str().unwrap().to_owned();
    host.write_sshd_config("PermitRootLogin prohibit-password\n");
    host.write("etc/crontab", "# after the broken backup\n");
    host.hand_over();
    let sshd_before = std::fs::read(host.path("etc/ssh/sshd_config")).unwrap();
    host.clear_log();
    let r = off
        .checked(
            "server_backup",
            backup(name, "backup-restore", json!({"backupId": broken})),
            false,
        )
        .await;
    let value = failed(&r);
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .contains("`sshd -t` rejected"),
        "{value}"
    );
    assert_eq!(value["kind"], "invalid_input");
    assert!(
        value["hint"]
            .as_str()
            .unwrap()
            .contains("ThisIsNotAnOption"),
        "the hint names what sshd -t refused: {value}"
    );
    assert_eq!(step(value, "Unpack backup")["status"], "success");
    assert_eq!(step(value, "Validate sshd_config")["status"], "failure");
    assert!(
        !step_names(value).contains(&"Switch config".to_owned())
            || step(value, "Switch config")["status"] != "success",
        "{value}"
    );
    assert_eq!(
        std::fs::read(host.path("etc/ssh/sshd_config")).unwrap(),
        sshd_before,
        "the host's sshd_config changed"
    );
    assert_eq!(crontab(), "# after the broken backup\n");
    assert!(
        !host
            .log()
            .iter()
            .any(|l| l.contains("try-reload-or-restart")),
        "a service was reloaded: {:?}",
        host.log()
    );
    off.stop().await;
}

/// Unknown servers: the error names the known servers in its hint and
/// suggests the fleet list, in both SAFE_MODE settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_server_suggests_the_fleet_list() {
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    mcp_common::add_manual_server(
        tmp.path(),
        "bare-1",
        None,
        &host.fixture.sshd,
        json!({"root": host.root().to_string_lossy(), "sudo": "never"}),
    );
    for (env, safe) in [(None, true), (Some("false"), false)] {
        let env: Vec<(&str, &str)> = env.map(|v| ("KASTELL_SAFE_MODE", v)).into_iter().collect();
        let mcp: Mcp = mcp_common::start(tmp.path(), &env).await;
        for (tool, args) in [
            ("server_backup", backup("ghost", "backup-list", json!({}))),
            ("server_backup", backup("ghost", "backup-create", json!({}))),
            (
                "server_info",
                json!({"action": "status", "server": "ghost"}),
            ),
            (
                "server_logs",
                json!({"action": "monitor", "server": "ghost"}),
            ),
        ] {
            let r = mcp.checked(tool, args, safe).await;
            let value = failed(&r);
            assert_eq!(value["error"], "Server not found: ghost", "{value}");
            assert_eq!(value["kind"], "not_found");
            assert!(
                value["hint"].as_str().unwrap().contains("bare-1"),
                "{value}"
            );
            assert_eq!(
                suggested(value),
                [("server_info".to_owned(), "list".to_owned())],
                "{value}"
            );
        }
        mcp.stop().await;
    }
}
