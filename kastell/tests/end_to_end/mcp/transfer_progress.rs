//! Byte-level progress through the real `kastell-mcp`: a backup-create and
//! a backup-restore of a few MiB on a manual bare server behind a real sshd
//! (the testkit's fake bare host) send progress notifications that count
//! the bytes moved, with strictly increasing progress values, each with a
//! total it never passes, the last one exactly its total.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kastell_testkit::platform::BareHost;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject,
};
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{Mcp, add_manual_server, noise};

/// Size of the file on the server: many times the engine's reporting step
/// (256 KiB), so byte counts are reported whatever the throttling lets
/// through.
const BIG: usize = 6 << 20;

/// Calls server_backup `action` with a progress token and returns the
/// result and the notifications the call sent.
async fn with_token(
    mcp: &Mcp,
    action: &str,
    extra: Value,
    token: i64,
) -> (CallToolResult, Vec<ProgressNotificationParam>) {
    let mut args = json!({"action": action, "server": "sandbox"});
    if let (Value::Object(a), Value::Object(e)) = (&mut args, extra) {
        a.extend(e);
    }
    let mut params = CallToolRequestParams::new("server_backup")
        .with_arguments(args.as_object().unwrap().clone());
    let mut meta = RequestMetaObject::default();
    meta.set_progress_token(ProgressToken(NumberOrString::Number(token)));
    params.meta = Some(meta);
    mcp.recorder.progress.lock().unwrap().clear();
    let result = mcp.client.call_tool(params).await.unwrap();
    // Notifications travel before the response, but the client hands them
    // to the handler on tasks of their own: let those run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let progress = mcp.recorder.progress.lock().unwrap().clone();
    for p in &progress {
        eprintln!("{action} {} {:?}", p.progress, p.message);
    }
    (result, progress)
}

/// The notifications' values strictly increase and carry one token.
fn assert_increasing(action: &str, progress: &[ProgressNotificationParam]) {
    assert!(!progress.is_empty(), "{action}: no progress notification");
    let first = &progress[0].progress_token;
    assert!(progress.iter().all(|p| &p.progress_token == first));
    let values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "{action}: values not strictly increasing: {values:?}"
    );
}

/// Every notification carries a total (never lowered), no value passes
/// it, and the last one is the total: a client's bar ends full, not at
/// 8.5 of 8.
fn assert_within_total(action: &str, progress: &[ProgressNotificationParam]) {
    let shown: Vec<(f64, Option<f64>)> = progress.iter().map(|p| (p.progress, p.total)).collect();
    let totals: Vec<f64> = shown
        .iter()
        .map(|(_, t)| {
            t.unwrap_or_else(|| panic!("{action}: a notification without a total: {shown:?}"))
        })
        .collect();
    assert!(
        shown.iter().all(|(v, t)| t.is_some_and(|t| *v <= t)),
        "{action}: a value above its total: {shown:?}"
    );
    assert!(
        totals.windows(2).all(|w| w[0] <= w[1]),
        "{action}: the total went down: {shown:?}"
    );
    let (last, total) = shown.last().copied().unwrap();
    assert_eq!(
        Some(last),
        total,
        "{action}: the last is not the total: {shown:?}"
    );
    assert!(
        shown[..shown.len() - 1].iter().all(|(v, t)| Some(*v) < *t),
        "{action}: the total reached before the end: {shown:?}"
    );
}

/// The messages of notifications that count bytes of `verb`.
fn byte_messages(progress: &[ProgressNotificationParam], verb: &str) -> Vec<String> {
    progress
        .iter()
        .filter_map(|p| p.message.clone())
        .filter(|m| m.contains(verb) && (m.contains(" MiB") || m.contains(" KiB")))
        .collect()
}

// One thread: the rmcp client hands each notification to the handler on a
// task of its own, and only a single-threaded runtime runs those tasks in
// the order the notifications arrived (the order the server sent them).
#[tokio::test(flavor = "current_thread")]
async fn backup_create_and_restore_report_bytes_moved() {
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    host.write("etc/crontab", "0 3 * * * root /usr/local/bin/nightly\n");
    host.write("etc/nginx/nginx.conf", "events {}\n");
    std::fs::write(host.path("etc/nginx/big.bin"), noise(BIG)).unwrap();
    host.hand_over();
    let tmp = tempfile::tempdir().unwrap();
    add_manual_server(
        tmp.path(),
        "sandbox",
        None,
        &host.fixture.sshd,
        json!({"root": host.root().to_string_lossy(), "sudo": "never"}),
    );
    let mcp = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "false")]).await;

    let (created, progress) = with_token(&mcp, "backup-create", json!({}), 7).await;
    assert_eq!(created.is_error, Some(false), "{created:?}");
    assert_increasing("backup-create", &progress);
    assert_within_total("backup-create", &progress);
    let received = byte_messages(&progress, "receiving ");
    assert!(
        !received.is_empty(),
        "no byte counts in {:?}",
        progress.iter().map(|p| &p.message).collect::<Vec<_>>()
    );
    assert!(
        received.iter().all(|m| m.starts_with("backup-create: ")),
        "{received:?}"
    );
    let backup_id = mcp_common::content(&created)["backupId"]
        .as_str()
        .unwrap()
        .to_owned();

    std::fs::remove_file(host.path("etc/nginx/big.bin")).unwrap();
    let (restored, progress) =
        with_token(&mcp, "backup-restore", json!({"backupId": backup_id}), 8).await;
    assert_eq!(restored.is_error, Some(false), "{restored:?}");
    assert_increasing("backup-restore", &progress);
    assert_within_total("backup-restore", &progress);
    let sent = byte_messages(&progress, "sending ");
    assert!(
        sent.iter()
            .any(|m| m.starts_with("backup-restore: sending ") && m.contains(" MiB of ")),
        "no byte counts out of the stored size in {:?}",
        progress.iter().map(|p| &p.message).collect::<Vec<_>>()
    );
    assert_eq!(
        std::fs::read(host.path("etc/nginx/big.bin")).unwrap().len(),
        BIG,
        "restored"
    );
    mcp.stop().await;
}
