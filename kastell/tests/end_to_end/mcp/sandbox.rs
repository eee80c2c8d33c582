//! `kastell-mcp --sandbox` through the real binary and an MCP client: the
//! sandbox fleet is served, SAFE_MODE still guards it, and with SAFE_MODE
//! off an agent can restart a cloud server (reboot proven by the boot id),
//! maintain the manual bare server (packages upgraded, reboot because the
//! upgrade asked for it), and take, list and delete snapshots.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use crate::mcp::common as mcp_common;

use mcp_common::{content, is_error, start_with_args};

fn names(list: &Value) -> Vec<String> {
    list["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("no servers in {list}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_fleet_is_served_with_safe_mode_on_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = start_with_args(dir.path(), &["--sandbox"], &[]).await;
    let list = mcp
        .checked("server_info", json!({"action": "list"}), true)
        .await;
    let servers = names(content(&list));
    assert!(servers.contains(&"hetzner-web".to_owned()), "{servers:?}");
    assert!(servers.contains(&"manual-web".to_owned()), "{servers:?}");

    let refused = mcp
        .checked(
            "server_maintain",
            json!({"action": "restart", "server": "hetzner-web"}),
            true,
        )
        .await;
    assert!(is_error(&refused));
    let value = content(&refused);
    assert!(
        value["error"].as_str().unwrap().contains("SAFE_MODE"),
        "{value}"
    );
    // The caller's real fleet is untouched: the sandbox has its own store.
    assert!(!dir.path().join("state/servers.json").exists());
    let stderr = mcp.stop().await;
    assert!(stderr.contains("sandbox fleet of"), "{stderr}");
    assert!(stderr.contains("SAFE_MODE=on"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restarts_maintains_and_snapshots_the_sandbox_with_safe_mode_off() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = start_with_args(
        dir.path(),
        &["--sandbox"],
        &[("KASTELL_SAFE_MODE", "false")],
    )
    .await;

    let restart = mcp
        .checked(
            "server_maintain",
            json!({"action": "restart", "server": "hetzner-web"}),
            false,
        )
        .await;
    assert!(!is_error(&restart), "{}", content(&restart));
    let proof = &content(&restart)["reboot"];
    assert_ne!(proof["bootIdBefore"], proof["bootIdAfter"], "{proof}");
    assert!(proof["bootIdBefore"].is_string(), "{proof}");

    let (maintain, progress) = mcp
        .call_with_progress(
            "server_maintain",
            json!({"action": "maintain", "server": "manual-web"}),
        )
        .await;
    let value = content(&maintain);
    assert!(!is_error(&maintain), "{value}");
    let steps = value["steps"].as_array().unwrap();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} step in {value}"))
    };
    assert_eq!(step("Package Upgrade")["status"], "success", "{value}");
    assert_eq!(step("Reboot")["status"], "success", "{value}");
    assert!(
        step("Reboot")["detail"]
            .as_str()
            .unwrap()
            .contains("via SSH"),
        "{value}"
    );
    assert_eq!(step("Final Check")["status"], "success", "{value}");
    assert!(
        progress.len() >= steps.len(),
        "one notification per step at least: {progress:?}"
    );

    let created = mcp
        .checked(
            "server_backup",
            json!({"action": "snapshot-create", "server": "hetzner-web"}),
            false,
        )
        .await;
    assert!(!is_error(&created), "{}", content(&created));
    let id = content(&created)["snapshot"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = mcp
        .checked(
            "server_backup",
            json!({"action": "snapshot-list", "server": "hetzner-web"}),
            false,
        )
        .await;
    assert!(
        content(&listed)["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str()),
        "{}",
        content(&listed)
    );
    let deleted = mcp
        .checked(
            "server_backup",
            json!({"action": "snapshot-delete", "server": "hetzner-web", "snapshotId": id}),
            false,
        )
        .await;
    assert!(!is_error(&deleted), "{}", content(&deleted));
    mcp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_a_server_reports_every_server_of_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let mcp = start_with_args(dir.path(), &["--sandbox"], &[]).await;
    let list = mcp
        .checked("server_info", json!({"action": "list"}), true)
        .await;
    let servers = names(content(&list));
    assert!(servers.len() > 1, "{servers:?}");

    let args = json!({"action": "status"});
    let result = mcp.call("server_info", args.clone()).await;
    let value = content(&result);
    assert!(!is_error(&result), "{value}");
    assert_eq!(value["action"], "fleet-status", "{value}");
    assert_eq!(value["serverCount"], servers.len());
    let reported: Vec<String> = value["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reported, servers, "every server, in store order");
    for server in value["servers"].as_array().unwrap() {
        assert_eq!(server["reachable"], true, "{server}");
        assert!(server["platform"].is_string(), "{server}");
        assert_eq!(server["backupCount"], 0, "{server}");
    }
    let schema = &mcp.output_schemas().await["server_info"];
    let mut problems = mcp_common::violations(schema, value);
    problems.extend(mcp_common::violations(
        &mcp_common::strict(&mcp_common::full_schema("server_info")),
        value,
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Naming a server still answers for that server alone.
    let one = mcp
        .checked(
            "server_info",
            json!({"action": "status", "server": servers[0]}),
            true,
        )
        .await;
    assert_eq!(content(&one)["server"], servers[0].as_str());
    mcp.stop().await;
}
