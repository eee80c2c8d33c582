//! Safety levels over MCP, through the real `kastell-mcp` on a sandbox
//! server tagged `prod`: tools/list offers only the actions some server
//! may run (and the official TypeScript SDK accepts the narrowed schemas),
//! a hidden action called anyway is refused naming the level, editing
//! `safety.json` sends `notifications/tools/list_changed`, and every call
//! lands in the audit log with the client's name.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp::common::{self as mcp_common, Recorder};
use crate::sdk::{self, Sdk};
use crate::support;

fn actions(tools: &[Value], tool: &str) -> Option<Vec<String>> {
    let found = tools.iter().find(|t| t["name"] == tool)?;
    Some(
        found["inputSchema"]["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect(),
    )
}

async fn listed(mcp: &mcp_common::Mcp) -> Vec<Value> {
    let tools = mcp.client.list_all_tools().await.unwrap();
    tools
        .iter()
        .map(|t| serde_json::to_value(t).unwrap())
        .collect()
}

fn write_safety(dir: &std::path::Path, value: &Value) {
    support::write_safety(&dir.join("state"), value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_offers_what_the_levels_allow_and_follows_their_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, name) = support::prod_sandbox(dir.path()).await;
    write_safety(
        dir.path(),
        &json!({"tags": {"prod": {"level": "safe-writes"}}}),
    );
    let overlay: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    let env: Vec<(&str, &str)> = overlay
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    let mcp = mcp_common::start_as(Recorder::default(), dir.path(), &[], &env).await;
    let tools = listed(&mcp).await;
    assert_eq!(
        actions(&tools, "server_backup").unwrap(),
        [
            "backup-create",
            "backup-list",
            "snapshot-create",
            "snapshot-list"
        ]
    );
    assert_eq!(
        actions(&tools, "server_maintain"),
        None,
        "nothing disruptive is allowed"
    );
    assert!(actions(&tools, "server_info").is_some());
    let backup = tools.iter().find(|t| t["name"] == "server_backup").unwrap();
    assert_eq!(backup["annotations"]["destructiveHint"], false, "{backup}");

    // A hidden action called anyway: refused, naming the level.
    let refused = mcp
        .call(
            "server_maintain",
            json!({"action": "update", "server": name}),
        )
        .await;
    let failure = mcp_common::failed(&refused);
    assert_eq!(failure["kind"], "permission_denied", "{failure}");
    assert!(
        failure["error"].as_str().unwrap().contains(&format!(
            "needs safety level disruptive; the level on {name} is safe-writes (tag prod in safety.json)"
        )),
        "{failure}"
    );
    // What the level allows runs: SAFE_MODE is unset, and levels govern.
    let created = mcp
        .call(
            "server_backup",
            json!({"action": "backup-create", "server": name}),
        )
        .await;
    mcp_common::ok(&created);

    // Widening the level is announced, and then offered.
    write_safety(
        dir.path(),
        &json!({"tags": {"prod": {"level": "destructive"}}}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while mcp.recorder.tools_changed.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "no tools/list_changed notification"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tools = listed(&mcp).await;
    assert_eq!(
        actions(&tools, "server_backup").unwrap(),
        [
            "backup-create",
            "backup-list",
            "backup-restore",
            "snapshot-create",
            "snapshot-list",
            "snapshot-delete",
            "snapshot-restore",
            "snapshot-rotate",
            "recover"
        ]
    );
    assert_eq!(
        actions(&tools, "server_maintain").unwrap(),
        ["update", "restart", "maintain", "rollout"]
    );
    mcp.stop().await;

    // The audit log holds both calls, with the client that made them.
    let page = kastell::state::audit::AuditLog::in_dir(&dir.path().join("state"))
        .entries(&kastell::state::audit::AuditFilter::default())
        .unwrap();
    let newest: Vec<(String, String)> = page
        .entries
        .iter()
        .take(2)
        .map(|e| (e.op.clone(), e.outcome.as_str().to_owned()))
        .collect();
    assert_eq!(
        newest,
        [
            ("backup-create".to_owned(), "ok".to_owned()),
            ("update".to_owned(), "refused".to_owned())
        ]
    );
    assert_eq!(page.entries[0].client.as_deref(), Some("kastell-tests 0"));
    assert!(page.entries[0].ids.contains_key("backup_id"));

    // The official TypeScript SDK, v1 and v2, takes the narrowed tools/list.
    write_safety(
        dir.path(),
        &json!({"level": "read-only", "tags": {"prod": {"level": "read-only"}}}),
    );
    let home = tempfile::tempdir().unwrap();
    let mut env = env.clone();
    let state = dir.path().join("state").display().to_string();
    env.push(("KASTELL_DIR", state.as_str()));
    let plan = sdk::stdio_plan(home.path(), &[], &env);
    for client in [Sdk::TypeScript, Sdk::TypeScriptV2] {
        let (report, stderr) = sdk::run(client, &plan);
        assert!(
            report.get("toolsError").is_none(),
            "{client:?}: {report}\n{stderr}"
        );
        let tools = report["tools"].as_array().unwrap();
        assert_eq!(
            actions(tools, "server_backup").unwrap(),
            ["backup-list", "snapshot-list"],
            "{client:?}"
        );
        let backup = tools.iter().find(|t| t["name"] == "server_backup").unwrap();
        assert_eq!(
            backup["annotations"]["readOnlyHint"], true,
            "{client:?}: {backup}"
        );
    }
}

/// Over MCP a dry run is recorded as `dry-run`, not like the restore that
/// later ran; that restore is recorded as `started` before it runs and
/// `ok` after, and `kastell audit show` tells the three apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_is_audited_apart_from_the_restore_that_ran() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (sandbox, name) = support::prod_sandbox(dir.path()).await;
    let overlay: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    let mut env: Vec<(&str, &str)> = overlay
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend([("KASTELL_SAFE_MODE", "false"), ("KASTELL_CONFIRM", "on")]);
    // This client cannot ask its user: the model confirms with a plan
    // token only where safety.json says so.
    support::write_safety(
        sandbox.store().dir(),
        &json!({"level": "destructive", "confirm": "plan-token"}),
    );
    let mcp = mcp_common::start_as(Recorder::default(), dir.path(), &[], &env).await;
    let created = mcp
        .call(
            "server_backup",
            json!({"action": "backup-create", "server": name}),
        )
        .await;
    let backup_id = mcp_common::ok(&created)["backupId"]
        .as_str()
        .unwrap()
        .to_owned();
    let restore = json!({"action": "backup-restore", "server": name, "backupId": backup_id});
    let mut dry = restore.clone();
    dry["dryRun"] = json!(true);
    let planned = mcp.call("server_backup", dry).await;
    let plan = mcp_common::content(&planned);
    assert_eq!(plan["dryRun"], true, "{plan}");
    let mut confirmed = restore.clone();
    confirmed["planToken"] = plan["planToken"].clone();
    let restored = mcp.call("server_backup", confirmed).await;
    mcp_common::ok(&restored);
    mcp.stop().await;

    let out = support::kastell_in(&sandbox, home.path(), &["--json", "audit", "show"]).await;
    let page = support::ok_json(&out);
    let newest: Vec<(&str, &str)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|e| (e["op"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        newest,
        [
            ("backup-restore", "ok"),
            ("backup-restore", "started"),
            ("backup-restore", "dry-run"),
            ("backup-create", "ok"),
        ],
        "{page}"
    );
    let verified = support::ok_json(
        &support::kastell_in(&sandbox, home.path(), &["--json", "audit", "verify"]).await,
    );
    assert_eq!(verified["ok"], true, "{verified}");
}
