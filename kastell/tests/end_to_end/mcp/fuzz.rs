//! A property test of the MCP argument handling, through the real
//! `kastell-mcp` binary: thousands of generated tool calls (the four real
//! tools and made-up names; real, random, missing and wrong-typed
//! `action`, `server`, `backupId`, `snapshotId`, `skipReboot`, `lines`,
//! `source`...; huge strings, unicode, `..` segments, nested objects)
//! against a small store with SAFE_MODE on, one call at a time, each with
//! its own deadline.
//!
//! Every answer must be either a JSON-RPC error (only for a tool that does
//! not exist) or a `CallToolResult` whose text is its structured content
//! and whose failures carry a non-empty `error`, `hint` and `kind`. No call
//! may go unanswered, the server must not panic, and it must still answer
//! `tools/list` at the end. The seed is fixed so CI sees the same inputs
//! every run; the counts are printed (`mcp-fuzz: ...` and a
//! `fault-summary:` line).
//!
//! The store holds a bare server and a Hetzner server with no token set,
//! both on loopback with a closed SSH port (calls that reach them fail at
//! once), so no call leaves this machine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use crate::mcp::common as mcp_common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rmcp::ServiceError;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

/// The fixed seed (32 bytes for ChaCha).
const SEED: [u8; 32] = *b"kastell-mcp-fuzz-seed-2026-11-21";

/// How many generated calls are sent.
const CALLS: usize = 5000;

/// How long one call may take before it counts as a hang.
const CALL_DEADLINE: Duration = Duration::from_secs(15);

const TOOLS: [&str; 4] = [
    "server_backup",
    "server_maintain",
    "server_info",
    "server_logs",
];

const ACTIONS: [&str; 15] = [
    "backup-create",
    "backup-list",
    "backup-restore",
    "snapshot-create",
    "snapshot-list",
    "snapshot-delete",
    "snapshot-restore",
    "update",
    "restart",
    "maintain",
    "list",
    "status",
    "health",
    "logs",
    "monitor",
];

/// Strings an attacker or a confused agent might send.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("..".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("a/../b".to_owned()),
        Just("./.".to_owned()),
        Just("web-1\0".to_owned()),
        Just("web-1; rm -rf /".to_owned()),
        Just("$(touch /tmp/kastell-fuzz-never)".to_owned()),
        Just("`id`".to_owned()),
        Just("ünïcødé-🚀-Ω≈ç√".to_owned()),
        Just("\u{202e}1-bew".to_owned()),
        Just("2026-11-21_00-00-00-000".to_owned()),
        Just("%2e%2e%2f".to_owned()),
        (0usize..4).prop_map(|k| "x".repeat([255, 256, 257, 100_000][k])),
        "[a-zA-Z0-9_./-]{0,40}",
        "\\PC{0,30}",
        any::<String>(),
    ]
}

/// Any JSON value, nested up to a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plausible or implausible value for argument `key`.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let plausible: BoxedStrategy<Value> = match key {
        "action" => prop::sample::select(ACTIONS.to_vec())
            .prop_map(|a| Value::String(a.to_owned()))
            .boxed(),
        "server" => prop_oneof![
            Just(json!("web-1")),
            Just(json!("cloud-1")),
            Just(json!("127.0.0.1")),
            Just(json!("127.0.0.2")),
        ]
        .boxed(),
        "skipReboot" | "snapshot" | "rebootEvenIfUnhealthy" => {
            any::<bool>().prop_map(Value::Bool).boxed()
        }
        "lines" => prop_oneof![
            (0u32..3000).prop_map(Value::from),
            any::<i64>().prop_map(Value::from)
        ]
        .boxed(),
        "source" => prop::sample::select(vec!["system", "platform", "kernel"])
            .prop_map(|s| Value::String(s.to_owned()))
            .boxed(),
        _ => nasty_string().prop_map(Value::String).boxed(),
    };
    prop_oneof![
        3 => plausible,
        1 => nasty_string().prop_map(Value::String),
        1 => any_json(),
    ]
    .boxed()
}

const KEYS: [&str; 11] = [
    "action",
    "server",
    "backupId",
    "snapshotId",
    "skipReboot",
    "snapshot",
    "rebootEvenIfUnhealthy",
    "lines",
    "source",
    "Action",
    "backup_id",
];

/// One generated call: a tool name and its arguments (`None`: no
/// arguments at all).
fn call() -> impl Strategy<Value = (String, Option<Map<String, Value>>)> {
    let tool = prop_oneof![
        8 => prop::sample::select(TOOLS.to_vec()).prop_map(str::to_owned),
        1 => Just("server_backup ".to_owned()),
        1 => "[a-z_]{0,20}",
        1 => nasty_string(),
    ];
    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = KEYS
        .iter()
        .map(|&key| {
            let weight = if key == "action" { 6 } else { 2 };
            prop_oneof![
                weight => value_for(key).prop_map(move |v| Some((key.to_owned(), v))),
                3 => Just(None),
            ]
            .boxed()
        })
        .collect();
    let extra = prop::option::of(("[a-zA-Z]{1,12}|\\PC{1,8}", any_json()));
    let args = (fields, extra).prop_map(|(fields, extra)| {
        let mut map: Map<String, Value> = fields.into_iter().flatten().collect();
        if let Some((k, v)) = extra {
            map.insert(k, v);
        }
        map
    });
    (tool, prop::option::weighted(0.95, args))
}

#[derive(Debug, Default)]
struct Counts {
    sent: usize,
    tool_results: usize,
    successes: usize,
    tool_errors: usize,
    jsonrpc_errors: usize,
    hangs: usize,
    violations: Vec<String>,
    checks: usize,
}

impl Counts {
    fn check(&mut self, holds: bool, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !holds && self.violations.len() < 20 {
            self.violations.push(what());
        }
    }
}

/// Checks one answer; records what it was.
fn judge(
    counts: &mut Counts,
    tool: &str,
    args: &Option<Map<String, Value>>,
    answer: Result<CallToolResult, ServiceError>,
) {
    let shown = || {
        let mut text = format!("{tool:?} {}", serde_json::to_string(args).unwrap());
        text.truncate(300);
        text
    };
    match answer {
        Err(ServiceError::McpError(_)) => {
            counts.jsonrpc_errors += 1;
            counts.check(!TOOLS.contains(&tool), || {
                format!("a JSON-RPC error for a real tool: {}", shown())
            });
        }
        Err(e) => counts.check(false, || format!("the call broke ({e}): {}", shown())),
        Ok(result) => {
            counts.tool_results += 1;
            counts.check(TOOLS.contains(&tool), || {
                format!("an unknown tool answered: {}", shown())
            });
            let Some(value) = result.structured_content.clone() else {
                counts.check(false, || format!("no structured content: {}", shown()));
                return;
            };
            let text = result
                .content
                .iter()
                .find_map(|c| c.as_text().map(|t| t.text.clone()))
                .unwrap_or_default();
            counts.check(
                serde_json::from_str::<Value>(&text).ok().as_ref() == Some(&value),
                || format!("the text is not the structured content: {}", shown()),
            );
            if result.is_error == Some(true) {
                counts.tool_errors += 1;
                for field in ["error", "hint", "kind"] {
                    counts.check(
                        value[field].as_str().is_some_and(|s| !s.trim().is_empty()),
                        || format!("an error without {field}: {value} for {}", shown()),
                    );
                }
                counts.check(value["suggested_actions"].is_array(), || {
                    format!("an error without suggested_actions: {value}")
                });
            } else {
                counts.successes += 1;
                counts.check(value["success"] == json!(true), || {
                    format!("a success without success: true: {value} for {}", shown())
                });
            }
        }
    }
}

/// The fuzzed server's store: a bare server and a Hetzner server (no token
/// is set), both on loopback with a closed SSH port.
fn seed_store(dir: &std::path::Path) {
    let store = kastell::FleetStore::open(dir.join("state")).unwrap();
    let mut bare = kastell::ServerRecord::new("manual-1700000000001", "web-1", "127.0.0.1");
    bare.mode = "bare".to_owned();
    bare.ssh = Some(kastell::state::store::SshSettings {
        user: Some("nobody".to_owned()),
        port: Some(kastell_testkit::sshd::closed_port()),
        identity_file: None,
        host_key: None,
    });
    store.add(bare).unwrap();
    let mut cloud = kastell::ServerRecord::new("42000001", "cloud-1", "127.0.0.2");
    cloud.provider = Some("hetzner".to_owned());
    cloud.ssh = Some(kastell::state::store::SshSettings {
        user: Some("nobody".to_owned()),
        port: Some(kastell_testkit::sshd::closed_port()),
        identity_file: None,
        host_key: None,
    });
    store.add(cloud).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_generated_tool_calls_get_an_answer_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    seed_store(tmp.path());
    let mut mcp = mcp_common::start(tmp.path(), &[("KASTELL_SAFE_MODE", "true")]).await;
    // Drain stderr as it comes, so the server never blocks on a full pipe.
    let mut stderr = mcp.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &SEED),
    );
    let strategy = call();
    let mut counts = Counts::default();
    let started = Instant::now();
    for _ in 0..CALLS {
        let (tool, args) = strategy.new_tree(&mut runner).unwrap().current();
        let mut params = CallToolRequestParams::new(tool.clone());
        if let Some(map) = args.clone() {
            params = params.with_arguments(map);
        }
        counts.sent += 1;
        match tokio::time::timeout(CALL_DEADLINE, mcp.client.call_tool(params)).await {
            Ok(answer) => judge(&mut counts, &tool, &args, answer),
            Err(_) => {
                counts.hangs += 1;
                counts.check(false, || {
                    format!("no answer within {CALL_DEADLINE:?}: {tool:?}")
                });
            }
        }
    }
    let elapsed = started.elapsed();

    let tools = tokio::time::timeout(CALL_DEADLINE, mcp.client.list_all_tools()).await;
    // SAFE_MODE is on: server_maintain, all of whose actions it blocks,
    // is not offered (it is still called, and refused).
    let listed = matches!(&tools, Ok(Ok(t)) if t.len() == TOOLS.len() - 1);
    counts.check(listed, || format!("tools/list after the run: {tools:?}"));
    let _ = mcp.stop().await;
    let stderr = log.await.unwrap();
    let panics = stderr.matches("panicked").count();
    counts.check(panics == 0, || {
        format!(
            "the server panicked: {}",
            stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
        )
    });

    println!(
        "mcp-fuzz: seed={:?} inputs={} tool_results={} successes={} is_error={} jsonrpc_errors={} panics={panics} hangs={} checks={} elapsed={:.1}s",
        std::str::from_utf8(&SEED).unwrap(),
        counts.sent,
        counts.tool_results,
        counts.successes,
        counts.tool_errors,
        counts.jsonrpc_errors,
        counts.hangs,
        counts.checks,
        elapsed.as_secs_f64(),
    );
    assert!(
        counts.violations.is_empty(),
        "{} violation(s), first ones:\n{}",
        counts.violations.len(),
        counts.violations.join("\n")
    );
    assert_eq!(counts.hangs, 0);
    println!(
        "fault-summary: mcp-fuzz injected={} invariants={}",
        counts.sent, counts.checks
    );
}
