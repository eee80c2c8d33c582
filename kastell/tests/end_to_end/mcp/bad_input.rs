//! Bad input through the real `kastell-mcp`: unknown servers, missing or
//! traversal ids, unknown actions, megabyte strings and wrong types give
//! `isError` with a hint (never a protocol error or a crash), and the
//! server answers the next request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{assert_error_with_hint, assert_suggestions_valid};

fn add(dir: &std::path::Path, name: &str, ip: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_kastell"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        .args([
            "server",
            "add",
            "--name",
            name,
            "--ip",
            ip,
            "--platform",
            "bare",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_with_a_hint_and_the_server_stays_up() {
    let tmp = tempfile::tempdir().unwrap();
    add(tmp.path(), "web-1", "127.0.0.2");
    add(tmp.path(), "web-2", "127.0.0.3");
    let mcp = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;
    let huge = "x".repeat(1024 * 1024);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "server_backup",
            json!({"action": "backup-list", "server": "nope"}),
            "not found",
        ),
        (
            "server_backup",
            json!({"action": "backup-list"}),
            "Multiple servers",
        ),
        (
            "server_backup",
            json!({"action": "backup-list", "server": ""}),
            "Multiple servers",
        ),
        (
            "server_backup",
            json!({"action": "backup-restore", "server": "web-1"}),
            "backupId is required",
        ),
        (
            "server_backup",
            json!({"action": "backup-restore", "server": "web-1", "backupId": "../../etc"}),
            "",
        ),
        (
            "server_backup",
            json!({"action": "snapshot-delete", "server": "web-1", "snapshotId": "a/../b"}),
            "",
        ),
        (
            "server_backup",
            json!({"action": "backup-destroy"}),
            "Invalid arguments",
        ),
        ("server_backup", json!({}), "Invalid arguments"),
        ("server_backup", json!({"action": 5}), "Invalid arguments"),
        (
            "server_backup",
            json!({"action": "backup-list", "server": huge}),
            "too long",
        ),
        (
            "server_backup",
            json!({"action": "backup-list", "server": ["web-1"]}),
            "Invalid",
        ),
        (
            "server_maintain",
            json!({"action": "maintain", "server": "web-1", "skipReboot": "yes"}),
            "Invalid arguments",
        ),
        (
            "server_maintain",
            json!({"action": "reboot-now"}),
            "Invalid arguments",
        ),
        (
            "server_info",
            json!({"action": "drop"}),
            "Invalid arguments",
        ),
        (
            "server_logs",
            json!({"action": "logs", "server": "web-1", "lines": 5000}),
            "lines",
        ),
        (
            "server_logs",
            json!({"action": "logs", "server": "web-1", "lines": -1}),
            "Invalid",
        ),
    ];
    for (tool, args, expected) in cases {
        let result = mcp.call(tool, args.clone()).await;
        let value = assert_error_with_hint(&result).clone();
        let error = value["error"].as_str().unwrap();
        assert!(error.contains(expected), "{tool} {args}: {error}");
        assert!(error.len() < 2000, "the error echoes a huge value");
        assert_suggestions_valid(&value, false);
        // The server is still up and answering.
        let list = mcp.call("server_info", json!({"action": "list"})).await;
        assert_eq!(list.is_error, Some(false));
        assert_eq!(mcp_common::content(&list)["serverCount"], 2);
    }
    mcp.stop().await;
}

#[tokio::test]
async fn an_empty_fleet_lists_nothing_and_suggests_nothing_blocked() {
    let tmp = tempfile::tempdir().unwrap();
    let mcp = mcp_common::start(tmp.path(), &[]).await;
    let list = mcp.call("server_info", json!({"action": "list"})).await;
    assert_eq!(list.is_error, Some(false));
    let value = mcp_common::content(&list);
    assert_eq!(value["servers"], json!([]));
    mcp_common::assert_matches_output_schema("server_info", value);
    assert_suggestions_valid(value, true);
    let r = mcp
        .call("server_backup", json!({"action": "backup-list"}))
        .await;
    assert_suggestions_valid(assert_error_with_hint(&r), true);
    mcp.stop().await;
}
