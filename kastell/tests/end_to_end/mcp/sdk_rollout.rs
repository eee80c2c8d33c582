//! The fleet rollout (`server_maintain`, action `rollout`, maintaining
//! every server) through the official MCP SDKs, which have no tasks
//! extension yet: the rollout is one long request. Its progress
//! notifications name the rollout, the stage and its servers; cancelling
//! the request through the SDK (TypeScript's abort signal, a cancelled
//! Python scope: each sends `notifications/cancelled`) stops the rollout
//! between servers. `kastell rollout status` then shows it cancelled, and
//! the journal agrees with the servers themselves: each server marked
//! done rebooted once, each still pending was never touched.
//!
//! kastell-mcp serves over HTTP here, so it outlives each client and the
//! stop is the cancel's, not a closing connection's.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use kastell::surfaces::sandbox::Sandbox;
use serde_json::{Value, json};

use crate::sdk::{self, HttpServer, Sdk};
use crate::support;

const TOKEN: &str = "rollout-sdk-test-token-0123456789";

fn boots(sandbox: &Sandbox) -> Vec<u64> {
    sandbox
        .servers()
        .iter()
        .map(|s| sandbox.boots(s).unwrap())
        .collect()
}

/// The progress messages of a report's first call.
fn messages(call: &Value) -> Vec<String> {
    call["progress"]
        .as_array()
        .unwrap_or_else(|| panic!("no progress in {call}"))
        .iter()
        .filter_map(|p| p["message"].as_str().map(str::to_owned))
        .collect()
}

/// The rollout id the progress named (`... rolloutId <id> to go on`).
fn rollout_id(messages: &[String]) -> String {
    messages
        .iter()
        .find_map(|m| {
            let rest = m.split("rolloutId ").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no message names the rollout: {messages:?}"))
}

/// `kastell --json rollout status ID` until the rollout is no longer
/// running (the server in flight when the cancel came finishes first).
async fn settled(sandbox: &Sandbox, home: &std::path::Path, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = support::kastell_in(sandbox, home, &["--json", "rollout", "status", id]).await;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let rollout = report["rollout"].clone();
        if rollout["state"] != "running" {
            return rollout;
        }
        assert!(
            Instant::now() < deadline,
            "rollout {id} never stopped: {report}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_follow_a_rollout_and_cancelling_the_request_stops_it_between_servers() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::hetzner_sandbox(dir.path(), 4).await;
    let names: Vec<String> = sandbox.servers().iter().map(|s| s.name.clone()).collect();
    // Each upgrade takes a second: time to cancel while a batch runs.
    sandbox.hosts().set_state("upgrade-delay", "1").unwrap();
    let overlay = sandbox.env_overlay();
    let state = sandbox.store().dir().display().to_string();
    let mut env: Vec<(&str, &str)> = overlay
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend([
        ("KASTELL_DIR", state.as_str()),
        ("KASTELL_SAFE_MODE", "false"),
        ("KASTELL_MCP_TOKEN", TOKEN),
    ]);
    let mut server = HttpServer::start(&[], &env);

    for client in Sdk::ALL {
        let label = format!("{client:?}");
        let before = boots(&sandbox);
        let mut plan = server.plan(TOKEN);
        // batch 1: the canary, then one server per batch (1/3, 2/3, 3/3).
        let first_batch = format!("batch 1/3: {}", names[1]);
        plan["calls"] = json!([{
            "name": "server_maintain",
            "arguments": {"action": "rollout", "batch": "1"},
            "progress": true,
            "cancelWhen": first_batch,
        }]);
        let (report, stderr) = tokio::task::spawn_blocking(move || sdk::run(client, &plan))
            .await
            .unwrap();
        assert!(
            report.get("connectError").is_none(),
            "{label}: {report}\n{stderr}"
        );
        let call = &report["calls"][0];
        assert_eq!(call["cancelled"], true, "{label}: never cancelled: {call}");
        assert!(call.get("result").is_none(), "{label}: {call}");

        // The progress named the rollout, the canary and the batch with
        // their servers.
        let said = messages(call);
        let id = rollout_id(&said);
        assert!(
            said.iter()
                .any(|m| m.contains(&format!("canary: {}", names[0]))),
            "{label}: {said:?}"
        );
        assert!(
            said.iter().any(|m| m.contains(&first_batch)),
            "{label}: {said:?}"
        );
        assert!(
            !said.iter().any(|m| m.contains("batch 2/3")),
            "{label}: the rollout went on past the cancel: {said:?}"
        );

        // `kastell rollout status` says it was cancelled, resumable, and
        // which servers it reached; each server agrees.
        let rollout = settled(&sandbox, home.path(), &id).await;
        assert_eq!(rollout["state"], "cancelled", "{label}: {rollout}");
        let statuses: Vec<&str> = rollout["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses[0], "done", "{label}: the canary: {rollout}");
        // The batch's server finished if the cancel came while it ran
        // (the safe point is between servers), or never started.
        assert!(
            ["done", "pending"].contains(&statuses[1]),
            "{label}: {rollout}"
        );
        assert_eq!(statuses[2..], ["pending", "pending"], "{label}: {rollout}");
        let after = boots(&sandbox);
        for (i, status) in statuses.iter().enumerate() {
            let expected = before[i] + u64::from(*status == "done");
            assert_eq!(
                after[i], expected,
                "{label}: {} is {status} in the journal, but its boots went {} -> {}",
                names[i], before[i], after[i]
            );
        }
        assert!(server.is_running(), "{label}: kastell-mcp stopped");
    }
    let log = server.stop();
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
}
