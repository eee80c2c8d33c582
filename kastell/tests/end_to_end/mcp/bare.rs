//! Bare servers end to end through the real `kastell-mcp` (an rmcp client
//! over a child process), against the testkit's `BareHost` behind a real
//! sshd, as a manual server whose `platformOptions` point at the fake root.
//!
//! A file under the fake root round trips through backup-create/list/
//! restore (the safety backup listed as such, never offered as the
//! latest); update (the apt shim) reports the packages and that a reboot is
//! required; a backup holding a broken sshd_config is refused with a hint
//! and the host's file is untouched. An unknown server's error names the
//! known ones and suggests the fleet list. (SAFE_MODE on a bare server:
//! `mcp::safe_mode`.) Every response goes through [`Mcp::checked`].

#![cfg(feature = "bare")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::mcp::common as mcp_common;

use kastell_testkit::platform::BareHost;
use serde_json::json;

use mcp_common::{Mcp, backup, failed, listed, listed_ids, ok, step, step_names, suggested};

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

    // SAFE_MODE off (SAFE_MODE on: `mcp::safe_mode`).
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
    assert_eq!(listed_ids(list), [backup_id.as_str()]);
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
    let safety = restored["safetyBackupId"].as_str().unwrap().to_owned();
    // The safety backup is the newest now: listed as such, and the
    // suggestion to restore the latest offers the backup restored, not it.
    let r = off
        .checked(
            "server_backup",
            backup(name, "backup-list", json!({})),
            false,
        )
        .await;
    let list = ok(&r);
    assert_eq!(listed_ids(list), [safety.as_str(), backup_id.as_str()]);
    assert_eq!(listed(list, &safety)["safetyFor"], backup_id.as_str());
    assert!(
        listed(list, &backup_id).get("safetyFor").is_none(),
        "{list}"
    );
    let offered: Vec<&str> = list["suggested_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["command"].as_str().unwrap())
        .filter(|c| c.contains("backup-restore"))
        .collect();
    assert_eq!(offered.len(), 1, "{list}");
    assert!(
        offered[0].contains(&format!("backupId: '{backup_id}'")),
        "{list}"
    );

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
    // A bare server has no platform log of its own: the platform says so.
    assert_eq!(failed(&r)["kind"], "unsupported");
    assert!(
        failed(&r)["hint"]
            .as_str()
            .unwrap()
            .contains("source: system"),
        "{}",
        failed(&r)
    );

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
