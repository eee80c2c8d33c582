//! The SAFE_MODE matrix through the real `kastell-mcp`: every action of
//! server_backup and server_maintain with KASTELL_SAFE_MODE unset (on, the
//! MCP default) and `false`, on a manual bare server backed by a real sshd
//! (the testkit's fake bare host, with its fake root in the record's
//! `platformOptions`); plus progress notifications for a backup.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use kastell_testkit::platform::BareHost;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, NumberOrString, ProgressToken, RequestMetaObject,
};
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{Mcp, assert_error_with_hint, assert_suggestions_valid, assert_text_matches};

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

fn blocked_by_safe_mode(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
        && mcp_common::content(result)["hint"]
            .as_str()
            .is_some_and(|h| h.contains("KASTELL_SAFE_MODE"))
}

/// Calls and checks what every response must satisfy.
async fn call(mcp: &Mcp, tool: &str, args: Value, safe: bool) -> CallToolResult {
    let result = mcp.call(tool, args.clone()).await;
    assert_text_matches(&result);
    if result.is_error == Some(true) {
        assert_error_with_hint(&result);
    } else {
        mcp_common::assert_matches_output_schema(tool, mcp_common::content(&result));
    }
    assert_suggestions_valid(mcp_common::content(&result), safe);
    eprintln!("{tool} {args} -> {}", mcp_common::content(&result));
    result
}

fn backup(action: &str, extra: Value) -> Value {
    let mut v = json!({"action": action, "server": "sandbox"});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
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

    // SAFE_MODE unset: on for MCP.
    let on = mcp_common::start(tmp.path(), &[]).await;
    let created = call(
        &on,
        "server_backup",
        backup("backup-create", json!({})),
        true,
    )
    .await;
    assert_eq!(
        created.is_error,
        Some(false),
        "backup-create is allowed in SAFE_MODE"
    );
    let backup_id = mcp_common::content(&created)["backupId"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = call(&on, "server_backup", backup("backup-list", json!({})), true).await;
    assert_eq!(mcp_common::content(&listed)["action"], "backup-list");
    assert_eq!(mcp_common::content(&listed)["backupCount"], 1);
    for (action, extra) in [
        ("backup-restore", json!({"backupId": backup_id})),
        ("snapshot-create", json!({})),
        ("snapshot-delete", json!({"snapshotId": "s-1"})),
        ("snapshot-restore", json!({"snapshotId": "s-1"})),
    ] {
        let r = call(&on, "server_backup", backup(action, extra), true).await;
        assert!(blocked_by_safe_mode(&r), "{action} must be blocked");
    }
    let r = call(
        &on,
        "server_backup",
        backup("snapshot-list", json!({})),
        true,
    )
    .await;
    assert!(
        r.is_error == Some(true) && !blocked_by_safe_mode(&r),
        "manual refusal"
    );
    for action in ["update", "restart", "maintain"] {
        let r = call(
            &on,
            "server_maintain",
            json!({"action": action, "server": "sandbox"}),
            true,
        )
        .await;
        assert!(blocked_by_safe_mode(&r), "{action} must be blocked");
    }
    on.stop().await;

    // SAFE_MODE off: nothing is refused by SAFE_MODE.
    let off = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;
    let r = call(
        &off,
        "server_backup",
        backup("backup-create", json!({})),
        false,
    )
    .await;
    assert_eq!(r.is_error, Some(false));
    let r = call(
        &off,
        "server_backup",
        backup("backup-list", json!({})),
        false,
    )
    .await;
    assert_eq!(mcp_common::content(&r)["backupCount"], 2);
    let r = call(
        &off,
        "server_backup",
        backup("backup-restore", json!({"backupId": backup_id})),
        false,
    )
    .await;
    assert!(!blocked_by_safe_mode(&r));
    assert_eq!(r.is_error, Some(false), "bare restore onto the fake root");
    assert_eq!(mcp_common::content(&r)["action"], "backup-restore");
    // With confirmations on (the default outside these tests) SAFE_MODE=false
    // still lets the restore through SAFE_MODE; a client that cannot ask
    // its user waits for the operator's approval instead.
    let asking = mcp_common::start(
        tmp.path(),
        &[("KASTELL_SAFE_MODE", "false"), ("KASTELL_CONFIRM", "auto")],
    )
    .await;
    let r = call(
        &asking,
        "server_backup",
        backup("backup-restore", json!({"backupId": backup_id})),
        false,
    )
    .await;
    assert!(!blocked_by_safe_mode(&r), "{}", mcp_common::content(&r));
    assert_eq!(
        mcp_common::content(&r)["action"],
        "approval-pending",
        "{}",
        mcp_common::content(&r)
    );
    asking.stop().await;
    for (action, extra) in [
        ("snapshot-create", json!({})),
        ("snapshot-list", json!({})),
        ("snapshot-delete", json!({"snapshotId": "s-1"})),
        ("snapshot-restore", json!({"snapshotId": "s-1"})),
    ] {
        let r = call(&off, "server_backup", backup(action, extra), false).await;
        assert!(
            r.is_error == Some(true) && !blocked_by_safe_mode(&r),
            "{action}"
        );
        let error = mcp_common::content(&r)["error"].as_str().unwrap();
        assert!(error.contains("Manual servers"), "{action}: {error}");
    }
    let r = call(
        &off,
        "server_maintain",
        json!({"action": "update", "server": "sandbox"}),
        false,
    )
    .await;
    assert!(!blocked_by_safe_mode(&r));
    // A reboot of the fake host would never change its boot id (and wait
    // minutes): restart goes to a server whose SSH port is closed instead.
    let r = call(
        &off,
        "server_maintain",
        json!({"action": "restart", "server": "offline"}),
        false,
    )
    .await;
    assert!(r.is_error == Some(true) && !blocked_by_safe_mode(&r));
    let r = call(
        &off,
        "server_maintain",
        json!({"action": "maintain", "server": "sandbox", "skipReboot": true}),
        false,
    )
    .await;
    assert!(!blocked_by_safe_mode(&r));
    assert_eq!(
        mcp_common::content(&r)["steps"].as_array().map(Vec::len),
        Some(5)
    );

    // Read-only tools work in both modes.
    let r = call(
        &off,
        "server_info",
        json!({"action": "status", "server": "sandbox"}),
        false,
    )
    .await;
    assert_eq!(mcp_common::content(&r)["reachable"], true);
    let r = call(
        &off,
        "server_logs",
        json!({"action": "monitor", "server": "sandbox"}),
        false,
    )
    .await;
    assert_eq!(r.is_error, Some(false));

    // Progress for a backup when the request carries a token.
    let mut params = CallToolRequestParams::new("server_backup").with_arguments(
        backup("backup-create", json!({}))
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
