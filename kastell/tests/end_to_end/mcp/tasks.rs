//! Long work as MCP tasks through the real `kastell-mcp`, for a client that
//! declares the tasks extension (rmcp's client: the official TypeScript and
//! Python SDKs do not speak this extension yet), against the testkit's
//! bare host behind a real sshd:
//! - a backup returns a task at once and is polled to completion; the
//!   result is the one a direct call returns, and the backup is listed;
//! - a large backup cancelled while it downloads ends `cancelled`, lists
//!   nothing and leaves no staging directory;
//! - a maintain cancelled while the upgrade runs finishes the upgrade,
//!   never reboots, and names the steps that ran;
//! - a read-only action is answered directly, not as a task; a client
//!   without the extension gets direct answers for long work too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kastell_testkit::platform::BareHost;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, GetTaskParams,
    TaskPayload, TaskStatus,
};
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{Mcp, Recorder, add_manual_server, content, noise};

/// A large file under the bare host's backed-up paths.
const BIG: usize = 96 << 20;

/// A bare host as manual server `bare-1` (with a large file when `big`),
/// and kastell-mcp (SAFE_MODE off) with a client that declares tasks when
/// `tasks`.
async fn setup(big: bool, tasks: bool) -> (BareHost, tempfile::TempDir, Mcp) {
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    host.write("etc/crontab", "0 3 * * * root /usr/local/bin/nightly\n");
    host.write("etc/nginx/nginx.conf", "events {}\n");
    if big {
        std::fs::write(host.path("etc/nginx/big.bin"), noise(BIG)).unwrap();
    }
    host.hand_over();
    let tmp = tempfile::tempdir().unwrap();
    add_manual_server(
        tmp.path(),
        "bare-1",
        None,
        &host.fixture.sshd,
        json!({"root": host.root().to_string_lossy(), "sudo": "never"}),
    );
    let recorder = Recorder {
        tasks,
        ..Recorder::default()
    };
    let mcp =
        mcp_common::start_as(recorder, tmp.path(), &[], &[("KASTELL_SAFE_MODE", "false")]).await;
    (host, tmp, mcp)
}

fn params(tool: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned()).with_arguments(args.as_object().unwrap().clone())
}

/// Calls `tool` and expects a task; returns its id.
async fn start_task(mcp: &Mcp, tool: &str, args: Value) -> String {
    match mcp.client.call_tool_once(params(tool, args)).await.unwrap() {
        CallToolResponse::Task(created) => {
            assert_eq!(created.task.status, TaskStatus::Working);
            created.task.task_id
        }
        other => panic!("expected a task, got {other:?}"),
    }
}

/// Starts a backup of `bare-1` as a task; returns its id.
async fn start_backup(mcp: &Mcp) -> String {
    start_task(
        mcp,
        "server_backup",
        json!({"action": "backup-create", "server": "bare-1"}),
    )
    .await
}

/// Polls the task until it ends (or `until` says to stop polling); returns
/// the last state and every status message seen.
async fn poll(
    mcp: &Mcp,
    id: &str,
    mut until: impl FnMut(&str) -> bool,
) -> (rmcp::model::DetailedTask, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut messages = Vec::new();
    loop {
        let got = mcp
            .client
            .peer()
            .get_task(GetTaskParams::new(id.to_owned()))
            .await
            .unwrap();
        let task = got.task;
        if let Some(m) = &task.task.status_message
            && messages.last() != Some(m)
        {
            messages.push(m.clone());
        }
        let stop = task.task.status_message.as_deref().is_some_and(&mut until);
        if task.status().is_terminal() || stop {
            return (task, messages);
        }
        assert!(
            Instant::now() < deadline,
            "task {id} never ended: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Cancels the task, then polls until it ends.
async fn cancel_and_settle(mcp: &Mcp, id: &str) -> (rmcp::model::DetailedTask, Vec<String>) {
    mcp.client
        .peer()
        .cancel_task(CancelTaskParams::new(id.to_owned()))
        .await
        .unwrap();
    settle(mcp, id).await
}

/// Polls until the task ends.
async fn settle(mcp: &Mcp, id: &str) -> (rmcp::model::DetailedTask, Vec<String>) {
    poll(mcp, id, |_| false).await
}

fn completed(task: &rmcp::model::DetailedTask) -> CallToolResult {
    match &task.payload {
        TaskPayload::Completed { result } => {
            serde_json::from_value(Value::Object(result.clone())).unwrap()
        }
        other => panic!("expected a completed task, got {other:?}"),
    }
}

async fn backup_count(mcp: &Mcp) -> u64 {
    let listed = mcp
        .call(
            "server_backup",
            json!({"action": "backup-list", "server": "bare-1"}),
        )
        .await;
    content(&listed)["backupCount"].as_u64().unwrap()
}

/// Entries of the server's backup directory (a leftover staging
/// directory would show here).
fn backup_dir_entries(tmp: &tempfile::TempDir) -> Vec<String> {
    let dir = tmp.path().join("state/backups/bare-1");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_task_is_polled_to_completion() {
    let (_host, _tmp, mcp) = setup(false, true).await;
    let id = start_backup(&mcp).await;
    let (task, messages) = settle(&mcp, &id).await;
    assert_eq!(task.status(), TaskStatus::Completed, "{messages:?}");
    let result = completed(&task);
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let value = content(&result);
    assert_eq!(value["action"], "backup-create");
    mcp_common::assert_matches_output_schema("server_backup", value);
    assert!(
        messages.iter().all(|m| m.starts_with("backup-create: ")),
        "{messages:?}"
    );
    assert_eq!(backup_count(&mcp).await, 1);

    // Reads are answered directly, even for a client that takes tasks.
    let listed = mcp
        .client
        .call_tool_once(params("server_info", json!({"action": "list"})))
        .await
        .unwrap();
    assert!(
        matches!(listed, CallToolResponse::Complete(_)),
        "{listed:?}"
    );
    mcp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_cancelled_while_it_downloads_lists_nothing() {
    let (_host, tmp, mcp) = setup(true, true).await;
    let id = start_backup(&mcp).await;
    // Cancel once bytes are arriving.
    let (task, seen) = poll(&mcp, &id, |m| m.contains("receiving")).await;
    assert!(
        !task.status().is_terminal(),
        "the backup ended before it could be cancelled: {seen:?}"
    );
    let (task, messages) = cancel_and_settle(&mcp, &id).await;
    assert_eq!(task.status(), TaskStatus::Cancelled, "{messages:?}");
    assert!(
        messages
            .last()
            .is_some_and(|m| m.contains("stopped at a safe point")),
        "{messages:?}"
    );
    assert_eq!(backup_count(&mcp).await, 0, "a cancelled backup was listed");
    assert_eq!(
        backup_dir_entries(&tmp),
        Vec::<String>::new(),
        "the cancelled backup left files behind"
    );
    mcp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintain_cancelled_during_the_upgrade_never_reboots() {
    let (host, _tmp, mcp) = setup(false, true).await;
    host.set_state("upgrade-delay", "3");
    host.clear_log();
    let id = start_task(
        &mcp,
        "server_maintain",
        json!({"action": "maintain", "server": "bare-1"}),
    )
    .await;
    let (task, seen) = poll(&mcp, &id, |m| m.contains("now: Package Upgrade")).await;
    assert!(!task.status().is_terminal(), "{seen:?}");
    let (task, messages) = cancel_and_settle(&mcp, &id).await;
    assert_eq!(task.status(), TaskStatus::Cancelled, "{messages:?}");
    let last = messages.last().unwrap();
    assert!(
        last.contains("Package Upgrade: success"),
        "the upgrade did not finish: {last}"
    );
    assert!(!last.contains("Reboot: success"), "{last}");
    let log = host.log();
    assert!(
        log.iter()
            .any(|l| l.contains("apt-get") && l.contains("upgrade")),
        "{log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("reboot") || l.contains("systemctl reboot")),
        "the server rebooted after the cancel: {log:?}"
    );
    assert!(
        host.path("var/run/reboot-required").exists(),
        "the reboot the upgrade asked for was not left pending"
    );
    mcp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_tasks_gets_long_work_answered_directly() {
    let (_host, _tmp, mcp) = setup(false, false).await;
    let answer = mcp
        .client
        .call_tool_once(params(
            "server_backup",
            json!({"action": "backup-create", "server": "bare-1"}),
        ))
        .await
        .unwrap();
    let CallToolResponse::Complete(result) = answer else {
        panic!("a client without tasks got {answer:?}");
    };
    assert_eq!(content(&result)["action"], "backup-create");
    mcp.stop().await;
}
