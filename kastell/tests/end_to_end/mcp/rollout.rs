//! The fleet rollout over MCP (`server_maintain`, action `rollout`)
//! through the real `kastell-mcp` on a sandbox fleet, for a client that
//! declares the tasks extension (rmcp's client: the official TypeScript
//! and Python SDKs do not speak it yet): one task whose status message
//! names the stage and its servers; a cancel stops it between servers
//! (no server after the one in flight is touched); and after kastell-mcp
//! is stopped and started again, the journaled rollout is resumed by its
//! id and finishes with every server rebooted exactly once. Tasks outlive
//! their process: after kastell-mcp is killed mid-rollout, a new one
//! answers `tasks/get` of the old task as failed (interrupted), naming the
//! rollout to resume, and a task that ended before a restart is answered
//! with its result.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kastell::surfaces::sandbox::Sandbox;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, DetailedTask,
    GetTaskParams, TaskPayload, TaskStatus,
};
use serde_json::{Value, json};

use crate::mcp::common::{self as mcp_common, Mcp, Recorder};
use crate::support;

async fn start_mcp(dir: &std::path::Path, sandbox: &Sandbox) -> Mcp {
    let overlay = sandbox.env_overlay();
    let mut env: Vec<(&str, &str)> = overlay
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.push(("KASTELL_SAFE_MODE", "false"));
    let recorder = Recorder {
        tasks: true,
        ..Recorder::default()
    };
    mcp_common::start_as(recorder, dir, &[], &env).await
}

async fn start_task(mcp: &Mcp, args: Value) -> String {
    let params = CallToolRequestParams::new("server_maintain".to_owned())
        .with_arguments(args.as_object().unwrap().clone());
    match mcp.client.call_tool_once(params).await.unwrap() {
        CallToolResponse::Task(created) => created.task.task_id,
        other => panic!("expected a task, got {other:?}"),
    }
}

/// `tasks/get` of task `id`.
async fn get(mcp: &Mcp, id: &str) -> DetailedTask {
    mcp.client
        .peer()
        .get_task(GetTaskParams::new(id.to_owned()))
        .await
        .unwrap()
        .task
}

/// Polls task `id` until it ends or `until` holds for its status message;
/// returns the last state and every message seen.
async fn poll(mcp: &Mcp, id: &str, until: impl Fn(&str) -> bool) -> (DetailedTask, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let task = get(mcp, id).await;
        if let Some(m) = &task.task.status_message
            && seen.last() != Some(m)
        {
            seen.push(m.clone());
        }
        let hit = task.task.status_message.as_deref().is_some_and(&until);
        if task.status().is_terminal() || hit {
            return (task, seen);
        }
        assert!(Instant::now() < deadline, "task {id} never ended: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn result(task: &DetailedTask) -> CallToolResult {
    match &task.payload {
        TaskPayload::Completed { result } => {
            serde_json::from_value(Value::Object(result.clone())).unwrap()
        }
        other => panic!("expected a completed task, got {other:?}"),
    }
}

fn names(sandbox: &Sandbox) -> Vec<String> {
    sandbox.servers().iter().map(|s| s.name.clone()).collect()
}

fn journal(dir: &std::path::Path) -> Value {
    let path = std::fs::read_dir(dir.join("state/rollouts"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_is_one_task_cancelled_between_servers_and_resumed_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::hetzner_sandbox(dir.path(), 4).await;
    let names = names(&sandbox);
    let before: Vec<u64> = sandbox
        .servers()
        .iter()
        .map(|s| sandbox.boots(s).unwrap())
        .collect();
    // Each upgrade takes a second: time to cancel while a batch runs.
    sandbox.hosts().set_state("upgrade-delay", "1").unwrap();

    let mcp = start_mcp(dir.path(), &sandbox).await;
    let id = start_task(&mcp, json!({"action": "rollout", "batch": "1"})).await;
    // The status message names the stage and its servers.
    let first_batch = format!("batch 1/3: {}", names[1]);
    let (task, seen) = poll(&mcp, &id, |m| m.contains(&first_batch)).await;
    assert!(!task.status().is_terminal(), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m.contains(&format!("canary: {}", names[0]))),
        "{seen:?}"
    );
    mcp.client
        .peer()
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .unwrap();
    let (task, seen) = poll(&mcp, &id, |_| false).await;
    assert_eq!(task.status(), TaskStatus::Cancelled, "{seen:?}");
    let stopped = journal(dir.path());
    assert_eq!(stopped["state"], "cancelled", "{stopped}");
    let statuses: Vec<&str> = stopped["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    // The server in flight finished; the ones after it never started.
    assert_eq!(statuses[..2], ["done", "done"], "{stopped}");
    assert_eq!(statuses[2..], ["pending", "pending"], "{stopped}");
    for i in 2..4 {
        assert_eq!(
            sandbox.boots(&sandbox.servers()[i]).unwrap(),
            before[i],
            "{} was touched after the cancel",
            names[i]
        );
    }
    let rollout_id = stopped["id"].as_str().unwrap().to_owned();
    mcp.stop().await;

    // A new kastell-mcp: the journal is still there, and the rollout goes
    // on from where it stopped.
    let mcp = start_mcp(dir.path(), &sandbox).await;
    let id = start_task(&mcp, json!({"action": "rollout", "rolloutId": rollout_id})).await;
    let (task, seen) = poll(&mcp, &id, |_| false).await;
    assert_eq!(task.status(), TaskStatus::Completed, "{seen:?}");
    let done = result(&task);
    let body = done.structured_content.as_ref().unwrap();
    assert_eq!(body["state"], "finished", "{body}");
    assert_eq!(body["success"], true, "{body}");
    for (i, server) in sandbox.servers().iter().enumerate() {
        assert_eq!(
            sandbox.boots(server).unwrap(),
            before[i] + 1,
            "{} rebooted exactly once",
            server.name
        );
    }
    mcp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_get_answers_for_the_tasks_of_a_killed_and_of_a_stopped_kastell_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = support::hetzner_sandbox(dir.path(), 3).await;
    let names = names(&sandbox);
    sandbox.hosts().set_state("upgrade-delay", "1").unwrap();

    // A rollout task, and kastell-mcp killed while a batch runs.
    let mcp = start_mcp(dir.path(), &sandbox).await;
    let killed = start_task(&mcp, json!({"action": "rollout", "batch": "1"})).await;
    let batch = format!("batch 1/2: {}", names[1]);
    let (task, seen) = poll(&mcp, &killed, |m| m.contains(&batch)).await;
    assert!(!task.status().is_terminal(), "{seen:?}");
    mcp.kill().await;
    let rollout_id = journal(dir.path())["id"].as_str().unwrap().to_owned();

    // A new kastell-mcp does not know the task in memory, and answers from
    // the journal: failed, as interrupted, with what was last known and
    // the rollout to resume; never working.
    let mcp = start_mcp(dir.path(), &sandbox).await;
    let old = get(&mcp, &killed).await;
    assert_eq!(old.status(), TaskStatus::Failed, "{old:?}");
    let TaskPayload::Failed { error } = &old.payload else {
        panic!("{old:?}")
    };
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("interrupted") && message.contains(&rollout_id),
        "{message}"
    );
    assert_eq!(error["data"]["rolloutId"], rollout_id.as_str(), "{error:?}");
    assert_eq!(error["data"]["interrupted"], true, "{error:?}");
    let said = old.task.status_message.clone().unwrap();
    assert!(
        said.contains("interrupted") && said.contains(&batch),
        "{said}"
    );
    // Asked again, the same answer; a cancel of it is acknowledged.
    assert_eq!(get(&mcp, &killed).await.status(), TaskStatus::Failed);
    mcp.client
        .peer()
        .cancel_task(CancelTaskParams::new(killed.clone()))
        .await
        .unwrap();

    // As the answer says: the rollout resumes by its id and finishes.
    let resumed = start_task(&mcp, json!({"action": "rollout", "rolloutId": rollout_id})).await;
    let (task, seen) = poll(&mcp, &resumed, |_| false).await;
    assert_eq!(task.status(), TaskStatus::Completed, "{seen:?}");
    mcp.stop().await;

    // A third kastell-mcp answers for the finished task with its result.
    let mcp = start_mcp(dir.path(), &sandbox).await;
    let done = get(&mcp, &resumed).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{done:?}");
    let body = result(&done).structured_content.unwrap();
    assert_eq!(body["rolloutId"], rollout_id.as_str(), "{body}");
    assert_eq!(body["state"], "finished", "{body}");
    // An id no kastell-mcp handed out is still unknown.
    let unknown = mcp
        .client
        .peer()
        .get_task(GetTaskParams::new(
            "0000aaaa-0000-4000-8000-000000000000".to_owned(),
        ))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    mcp.stop().await;
}
