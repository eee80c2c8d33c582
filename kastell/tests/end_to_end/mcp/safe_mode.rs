//! SAFE_MODE through the real `kastell-mcp`, derived from the policy
//! table: [`every_action_as_the_policy_table_says`] calls every MCP (tool,
//! action) pair with SAFE_MODE on and checks each answer against the pair's
//! rule in `kastell::policy::RULES` (run here on a manual bare server, and
//! by `mcp::paas` on Coolify and Dokploy servers). Then every action with
//! `KASTELL_SAFE_MODE=false` on a manual bare server backed by a real sshd
//! (the testkit's fake bare host, with its fake root in the record's
//! `platformOptions`), plus progress notifications for a backup.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use kastell_testkit::platform::BareHost;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, NumberOrString, ProgressToken, RequestMetaObject,
};
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{
    Mcp, McpAction, assert_safe_mode_refusal, backup, content, is_error, mcp_actions, security_log,
};

/// What a call did on a test host.
pub(crate) struct HostWatch<'a> {
    /// Forgets what ran so far, and may change what a restore would put
    /// back.
    pub(crate) reset: &'a dyn Fn(),
    /// What ran or changed since the last reset.
    pub(crate) ran: &'a dyn Fn() -> Vec<String>,
}

/// Calls every MCP (tool, action) pair of [`mcp_actions`] on `server`
/// through `mcp`, which runs with SAFE_MODE on, and checks that the server
/// answers each as the policy table says: a pair with a SAFE_MODE refusal
/// fails with exactly that error and hint (`permission_denied`, naming the
/// server, suggesting only what SAFE_MODE allows), runs nothing on `host`
/// and adds a block line for `server` to the `security.log` of the store in
/// `dir`; any other pair is not refused by SAFE_MODE. tools/list must offer
/// exactly the pairs SAFE_MODE lets through (a refused one is called
/// anyway, as a client that kept an older list would). The pairs SAFE_MODE lets through run first, so
/// backup-restore is refused for the backup that backup-create just made;
/// its id is returned.
pub(crate) async fn every_action_as_the_policy_table_says(
    mcp: &Mcp,
    dir: &Path,
    server: &str,
    host: &HostWatch<'_>,
) -> String {
    let (refused, allowed): (Vec<McpAction>, Vec<McpAction>) = mcp_actions()
        .into_iter()
        .partition(|a| a.safe_mode.is_some());
    assert_eq!(
        served_actions(mcp).await,
        sorted_pairs(&allowed),
        "tools/list offers other (tool, action) pairs than the policy table lets through"
    );
    let mut backup_id = None;
    for a in &allowed {
        let r = mcp.checked(a.tool, arguments(a, server, None), true).await;
        assert!(
            !refused_by_safe_mode(&r),
            "{} {}: SAFE_MODE refused what the policy table allows: {}",
            a.tool,
            a.action,
            content(&r)
        );
        if let Some(id) = content(&r)["backupId"].as_str().filter(|_| !is_error(&r)) {
            backup_id = Some(id.to_owned());
        }
    }
    let backup_id = backup_id.expect("SAFE_MODE allows backup-create, which made a backup");
    for a in &refused {
        let refusal = a.safe_mode.unwrap();
        // A fleet-wide action (a rollout) names no server.
        let named = (!a.fleet).then_some(server);
        let blocks_before = blocks(dir, named);
        (host.reset)();
        let r = mcp
            .checked(a.tool, arguments(a, server, Some(&backup_id)), true)
            .await;
        if a.fleet {
            let value = content(&r);
            assert!(is_error(&r), "{value}");
            assert_eq!(value["error"], refusal.error, "{value}");
            assert_eq!(value["hint"], refusal.hint, "{value}");
            assert_eq!(value["kind"], "permission_denied", "{value}");
        } else {
            assert_safe_mode_refusal(&r, server, refusal.error, refusal.hint);
        }
        assert_eq!(
            (host.ran)(),
            Vec::<String>::new(),
            "{} {}: a call SAFE_MODE refused ran on the host",
            a.tool,
            a.action
        );
        assert_eq!(
            blocks(dir, named),
            blocks_before + 1,
            "{} {}: the refusal is not in security.log",
            a.tool,
            a.action
        );
    }
    backup_id
}

/// The (tool, action) pairs of `actions`, sorted.
fn sorted_pairs(actions: &[McpAction]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = actions
        .iter()
        .map(|a| (a.tool.to_owned(), a.action.to_owned()))
        .collect();
    pairs.sort();
    pairs
}

/// The (tool, action) pairs tools/list offers (each tool's `action` enum),
/// sorted.
async fn served_actions(mcp: &Mcp) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for tool in mcp.client.list_all_tools().await.unwrap() {
        let actions = tool.input_schema["properties"]["action"]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no action enum", tool.name))
            .clone();
        for action in actions {
            pairs.push((tool.name.to_string(), action.as_str().unwrap().to_owned()));
        }
    }
    pairs.sort();
    pairs
}

/// The arguments of a call of `a` on `server`: the ids the action needs
/// (`backup_id`, else one that does not exist), and no server for what
/// works on the fleet (the list, a rollout).
fn arguments(a: &McpAction, server: &str, backup_id: Option<&str>) -> Value {
    let mut args = json!({"action": a.action});
    if !a.fleet {
        args["server"] = json!(server);
    }
    match a.action {
        "backup-restore" => args["backupId"] = json!(backup_id.unwrap_or("no-such-backup")),
        "snapshot-delete" | "snapshot-restore" => args["snapshotId"] = json!("s-1"),
        _ => {}
    }
    args
}

/// How many refusals for `server` (none: of fleet-wide work) the
/// `security.log` of the store in `dir` holds.
fn blocks(dir: &Path, server: Option<&str>) -> usize {
    security_log(dir)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| {
            let on = match server {
                Some(name) => e["server"] == name,
                None => e["server"].is_null(),
            };
            e["result"] == "block" && on && e["surface"] == "mcp"
        })
        .count()
}

/// Whether `result` is a SAFE_MODE refusal: one of the policy table's, or
/// any error whose hint is to turn SAFE_MODE off.
fn refused_by_safe_mode(result: &CallToolResult) -> bool {
    let value = content(result);
    is_error(result)
        && (mcp_actions()
            .iter()
            .filter_map(|a| a.safe_mode)
            .any(|r| value["error"] == r.error)
            || value["hint"]
                .as_str()
                .is_some_and(|h| h.contains("KASTELL_SAFE_MODE")))
}

fn add(dir: &Path, name: &str, ip: &str, user: &str, port: u16, key: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_kastell"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        .args(["server", "add", "--name", name, "--ip", ip])
        .args([
            "--platform",
            "bare",
            "--user",
            user,
            "--port",
            &port.to_string(),
        ])
        .arg("--identity-file")
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `platformOptions` (fake root, no sudo) to every record.
fn set_platform_options(dir: &Path, root: &Path) {
    let path = dir.join("state/servers.json");
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let records = match &mut value {
        Value::Array(a) => a,
        Value::Object(o) => o.get_mut("servers").unwrap().as_array_mut().unwrap(),
        _ => panic!("unexpected servers.json"),
    };
    for r in records {
        r["platformOptions"] = json!({"root": root.to_string_lossy(), "sudo": "never"});
    }
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

// One thread: rmcp hands each notification to the client handler on its own
// task, so with more threads the recorded order may differ from the sent one.
#[tokio::test(flavor = "current_thread")]
async fn safe_mode_matrix_on_a_manual_bare_server() {
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    host.write("etc/crontab", "0 3 * * * root /usr/local/bin/nightly\n");
    host.hand_over();
    let tmp = tempfile::tempdir().unwrap();
    let key = host.fixture.sshd.ed25519_key();
    let user = host.fixture.sshd.user().to_owned();
    add(
        tmp.path(),
        "sandbox",
        "127.0.0.1",
        &user,
        host.fixture.sshd.port(),
        &key,
    );
    let closed = kastell_testkit::sshd::closed_port();
    add(tmp.path(), "offline", "127.0.0.2", &user, closed, &key);
    set_platform_options(tmp.path(), &host.root());

    // SAFE_MODE unset: on for MCP, and every action as the table says.
    let on = mcp_common::start(tmp.path(), &[]).await;
    // Before each call SAFE_MODE refuses, the crontab differs from the
    // backup's: a restore that ran would show.
    const CHANGED: &str = "# changed under SAFE_MODE\n";
    let reset = || {
        host.clear_log();
        host.write("etc/crontab", CHANGED);
        host.hand_over();
    };
    let ran = || {
        let mut ran = host.log();
        if std::fs::read_to_string(host.path("etc/crontab")).unwrap() != CHANGED {
            ran.push("etc/crontab rewritten".to_owned());
        }
        ran
    };
    let backup_id = every_action_as_the_policy_table_says(
        &on,
        tmp.path(),
        "sandbox",
        &HostWatch {
            reset: &reset,
            ran: &ran,
        },
    )
    .await;
    on.stop().await;

    // SAFE_MODE off: nothing is refused by SAFE_MODE.
    let off = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;
    let r = off
        .checked(
            "server_backup",
            backup("sandbox", "backup-create", json!({})),
            false,
        )
        .await;
    assert_eq!(r.is_error, Some(false));
    let r = off
        .checked(
            "server_backup",
            backup("sandbox", "backup-list", json!({})),
            false,
        )
        .await;
    assert_eq!(content(&r)["backupCount"], 2);
    let r = off
        .checked(
            "server_backup",
            backup("sandbox", "backup-restore", json!({"backupId": backup_id})),
            false,
        )
        .await;
    assert!(!refused_by_safe_mode(&r));
    assert_eq!(r.is_error, Some(false), "bare restore onto the fake root");
    assert_eq!(content(&r)["action"], "backup-restore");
    // With confirmations on (the default outside these tests) SAFE_MODE=false
    // still lets the restore through SAFE_MODE; a client that cannot ask
    // its user waits for the operator's approval instead.
    let asking = mcp_common::start(
        tmp.path(),
        &[("KASTELL_SAFE_MODE", "false"), ("KASTELL_CONFIRM", "auto")],
    )
    .await;
    // (not `checked`: the answer's action is approval-pending, not the
    // one called)
    let r = asking
        .call(
            "server_backup",
            backup("sandbox", "backup-restore", json!({"backupId": backup_id})),
        )
        .await;
    mcp_common::assert_text_matches(&r);
    mcp_common::assert_matches_output_schema("server_backup", content(&r));
    mcp_common::assert_suggestions_valid(content(&r), false);
    assert!(!refused_by_safe_mode(&r), "{}", content(&r));
    assert_eq!(content(&r)["action"], "approval-pending", "{}", content(&r));
    asking.stop().await;
    for (action, extra) in [
        ("snapshot-create", json!({})),
        ("snapshot-list", json!({})),
        ("snapshot-delete", json!({"snapshotId": "s-1"})),
        ("snapshot-restore", json!({"snapshotId": "s-1"})),
    ] {
        let r = off
            .checked("server_backup", backup("sandbox", action, extra), false)
            .await;
        assert!(
            r.is_error == Some(true) && !refused_by_safe_mode(&r),
            "{action}"
        );
        let error = content(&r)["error"].as_str().unwrap();
        assert!(error.contains("Manual servers"), "{action}: {error}");
    }
    let r = off
        .checked(
            "server_maintain",
            json!({"action": "update", "server": "sandbox"}),
            false,
        )
        .await;
    assert!(!refused_by_safe_mode(&r));
    // A reboot of the fake host would never change its boot id (and wait
    // minutes): restart goes to a server whose SSH port is closed instead.
    let r = off
        .checked(
            "server_maintain",
            json!({"action": "restart", "server": "offline"}),
            false,
        )
        .await;
    assert!(r.is_error == Some(true) && !refused_by_safe_mode(&r));
    let r = off
        .checked(
            "server_maintain",
            json!({"action": "maintain", "server": "sandbox", "skipReboot": true}),
            false,
        )
        .await;
    assert!(!refused_by_safe_mode(&r));
    // The platform backup, the snapshot (skipped: a manual server has
    // none), then the five.
    let steps = content(&r)["steps"].clone();
    assert_eq!(steps.as_array().map(Vec::len), Some(7), "{steps}");
    assert_eq!(steps[0]["name"], "Backup", "{steps}");

    // Read-only tools work in both modes.
    let r = off
        .checked(
            "server_info",
            json!({"action": "status", "server": "sandbox"}),
            false,
        )
        .await;
    assert_eq!(content(&r)["reachable"], true);
    let r = off
        .checked(
            "server_logs",
            json!({"action": "monitor", "server": "sandbox"}),
            false,
        )
        .await;
    assert_eq!(r.is_error, Some(false));

    // Progress for a backup when the request carries a token.
    let mut params = CallToolRequestParams::new("server_backup").with_arguments(
        backup("sandbox", "backup-create", json!({}))
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut meta = RequestMetaObject::default();
    meta.set_progress_token(ProgressToken(NumberOrString::Number(7)));
    params.meta = Some(meta);
    off.recorder.progress.lock().unwrap().clear();
    let r = off.client.call_tool(params).await.unwrap();
    assert_eq!(r.is_error, Some(false));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let progress = off.recorder.progress.lock().unwrap().clone();
    assert!(!progress.is_empty(), "no progress notification");
    // (the rmcp client may put its own token in `_meta`; all of this call's
    // notifications carry the same one)
    let first = &progress[0].progress_token;
    assert!(progress.iter().all(|p| &p.progress_token == first));
    assert!(progress.windows(2).all(|w| w[0].progress < w[1].progress));
    off.stop().await;
}
