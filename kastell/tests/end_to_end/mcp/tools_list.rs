//! tools/list of the real `kastell-mcp` against a golden file (every
//! tool, SAFE_MODE off), its size, what SAFE_MODE leaves of it, and the
//! startup line on stderr.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;

use crate::mcp::common as mcp_common;

fn golden() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tools_list.json")
}

#[tokio::test]
async fn tools_list_matches_the_golden_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mcp = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;
    let mut tools = mcp.client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let actual = serde_json::to_value(&tools).unwrap();
    let path = golden();
    if std::env::var_os("KASTELL_UPDATE_GOLDEN").is_some() || !path.exists() {
        let text = serde_json::to_string_pretty(&actual).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        actual, expected,
        "tools/list changed; rerun with KASTELL_UPDATE_GOLDEN=1 and review the diff"
    );

    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "server_backup",
            "server_info",
            "server_logs",
            "server_maintain"
        ]
    );
    let backup = &actual[0];
    assert_eq!(
        backup["inputSchema"]["properties"]["action"]["enum"],
        serde_json::json!([
            "backup-create",
            "backup-list",
            "backup-restore",
            "snapshot-create",
            "snapshot-list",
            "snapshot-delete",
            "snapshot-restore",
            "snapshot-rotate",
            "recover"
        ])
    );
    for tool in &tools {
        assert!(
            tool.output_schema.is_some(),
            "{} has no output schema",
            tool.name
        );
    }
    // What a client receives, compact: under 16 KB (the original's is
    // 67 KB).
    let listing = serde_json::to_vec(&serde_json::json!({"tools": tools})).unwrap();
    assert!(
        listing.len() < 16 * 1024,
        "tools/list is {} bytes",
        listing.len()
    );
    mcp.stop().await;
}

/// In the default SAFE_MODE, tools/list offers only what can run: no
/// server_maintain (SAFE_MODE blocks all three of its actions), and
/// server_backup without restore and the snapshot changes; each tool says
/// which actions exist with SAFE_MODE off. The startup line says it is on.
#[tokio::test]
async fn safe_mode_lists_only_what_can_run_and_says_what_else_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let mcp = mcp_common::start(tmp.path(), &[]).await;
    let mut tools = mcp.client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["server_backup", "server_info", "server_logs"]);
    assert_eq!(
        tools[0].input_schema["properties"]["action"]["enum"],
        serde_json::json!(["backup-create", "backup-list", "snapshot-list"])
    );
    for tool in &tools {
        let text = tool.description.as_deref().unwrap_or_default();
        assert!(
            text.contains(
                "SAFE_MODE is on, so these actions are not offered: server_backup \
                 backup-restore, snapshot-create, snapshot-delete, snapshot-restore, \
                 snapshot-rotate, recover; server_maintain update, restart, maintain, rollout. They exist with \
                 KASTELL_SAFE_MODE=false"
            ),
            "{}: {text}",
            tool.name
        );
    }
    // A hidden action called anyway is refused by SAFE_MODE, as before.
    let refused = mcp
        .call("server_maintain", serde_json::json!({"action": "update"}))
        .await;
    assert!(mcp_common::is_error(&refused));
    assert!(
        mcp_common::content(&refused)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("SAFE_MODE"),
        "{refused:?}"
    );
    let stderr = mcp.stop().await;
    let line = stderr.lines().next().unwrap_or("");
    assert!(
        line.starts_with(&format!(
            "kastell-mcp v{} started (features=",
            env!("CARGO_PKG_VERSION")
        )) && line.ends_with("SAFE_MODE=on)"),
        "startup line: {stderr}"
    );
}

#[tokio::test]
async fn safe_mode_off_is_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let mcp = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;
    let stderr = mcp.stop().await;
    assert!(stderr.contains("SAFE_MODE=off)"), "{stderr}");
}
