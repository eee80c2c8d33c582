//! Shared helpers for tests that drive the real `kastell-mcp` binary with
//! an rmcp client over a child process.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    ProgressNotificationParam, ProtocolVersion,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// A client that records progress notifications.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    pub(crate) progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("kastell-tests", "0"),
        )
        .with_protocol_version(ProtocolVersion::V_2025_06_18)
    }
}

/// A running `kastell-mcp` and its client.
pub(crate) struct Mcp {
    pub(crate) client: RunningService<RoleClient, Recorder>,
    pub(crate) recorder: Recorder,
    pub(crate) stderr: Option<tokio::process::ChildStderr>,
}

/// Starts `kastell-mcp` with a cleared environment: PATH, HOME (`dir`),
/// KASTELL_DIR (`dir/state`), loopback addresses allowed, plus `env`.
pub(crate) async fn start(dir: &Path, env: &[(&str, &str)]) -> Mcp {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kastell-mcp"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let recorder = Recorder::default();
    let client = recorder.clone().serve(transport).await.unwrap();
    Mcp {
        client,
        recorder,
        stderr,
    }
}

impl Mcp {
    /// Calls `tool` with `args` (a JSON object).
    pub(crate) async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(map))
            .await
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
    }

    /// Stops the server and returns everything it wrote to stderr.
    pub(crate) async fn stop(mut self) -> String {
        let _ = self.client.cancel().await;
        let mut text = String::new();
        if let Some(mut err) = self.stderr.take() {
            let _ = err.read_to_string(&mut text).await;
        }
        text
    }
}

/// The structured content of a result (panics without one).
pub(crate) fn content(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .expect("structured content")
}

/// Whether the result is an error.
pub(crate) fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// Asserts the result is an error with a non-empty hint, and that its text
/// is the same JSON as its structured content.
pub(crate) fn assert_error_with_hint(result: &CallToolResult) -> &Value {
    assert!(is_error(result), "expected an error: {result:?}");
    let value = content(result);
    let hint = value["hint"].as_str().unwrap_or("");
    assert!(!hint.is_empty(), "no hint in {value}");
    assert!(value["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_text_matches(result);
    value
}

/// The text content is the same JSON as the structured content.
pub(crate) fn assert_text_matches(result: &CallToolResult) {
    let text = result
        .content
        .iter()
        .find_map(|c| c.as_text().map(|t| t.text.clone()))
        .expect("text content");
    let parsed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(&parsed, content(result));
}

/// Every `suggested_actions` command names a tool and action that exist
/// and, when `safe_mode` is on, none that SAFE_MODE blocks.
pub(crate) fn assert_suggestions_valid(value: &Value, safe_mode: bool) {
    const ACTIONS: &[(&str, &[&str])] = &[
        (
            "server_backup",
            &[
                "backup-create",
                "backup-list",
                "backup-restore",
                "snapshot-create",
                "snapshot-list",
                "snapshot-delete",
                "snapshot-restore",
            ],
        ),
        ("server_maintain", &["update", "restart", "maintain"]),
        ("server_info", &["list", "status", "health"]),
        ("server_logs", &["logs", "monitor"]),
    ];
    const BLOCKED: &[&str] = &[
        "backup-restore",
        "snapshot-create",
        "snapshot-delete",
        "snapshot-restore",
        "update",
        "restart",
        "maintain",
    ];
    let Some(list) = value["suggested_actions"].as_array() else {
        panic!("no suggested_actions in {value}")
    };
    for s in list {
        let command = s["command"].as_str().unwrap();
        let (tool, rest) = command.split_once(' ').unwrap();
        let actions = ACTIONS
            .iter()
            .find(|(t, _)| *t == tool)
            .unwrap_or_else(|| panic!("unknown tool in {command}"))
            .1;
        let action = rest
            .split("action: '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap_or_else(|| panic!("no action in {command}"));
        assert!(actions.contains(&action), "unknown action in {command}");
        if safe_mode {
            assert!(!BLOCKED.contains(&action), "SAFE_MODE blocks {command}");
        }
    }
}

/// Checks a success payload against the tool's output schema from the
/// golden file: the `oneOf` branch whose `action` const matches, with every
/// required field of the referenced result type present and no field the
/// type does not declare.
pub(crate) fn assert_matches_output_schema(tool: &str, value: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tools_list.json");
    let tools: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schema = &tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == tool)
        .unwrap()["outputSchema"];
    let branch = schema["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["properties"]["action"]["const"] == value["action"])
        .unwrap_or_else(|| panic!("no branch for {}", value["action"]));
    let name = branch["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
    let def = &schema["$defs"][name];
    let props = def["properties"].as_object().unwrap();
    for key in def["required"].as_array().unwrap() {
        assert!(
            value.get(key.as_str().unwrap()).is_some(),
            "{tool}: missing {key} in {value}"
        );
    }
    for key in value.as_object().unwrap().keys() {
        assert!(
            key == "action" || props.contains_key(key),
            "{tool}: undeclared {key}"
        );
    }
}
