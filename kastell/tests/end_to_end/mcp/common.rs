//! Shared helpers for tests that drive the real `kastell-mcp` binary with
//! an rmcp client over a child process.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    NumberOrString, ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// A client that records progress notifications and counts tool-list
/// changes (and declares the tasks extension when `tasks` is set).
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    pub(crate) progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    pub(crate) tasks: bool,
    /// How many `notifications/tools/list_changed` arrived.
    pub(crate) tools_changed: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.tasks {
            ClientCapabilities::builder().enable_tasks().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("kastell-tests", "0"))
            .with_protocol_version(ProtocolVersion::V_2025_06_18)
    }
}

/// A running `kastell-mcp` and its client.
pub(crate) struct Mcp {
    pub(crate) client: RunningService<RoleClient, Recorder>,
    pub(crate) recorder: Recorder,
    pub(crate) stderr: Option<tokio::process::ChildStderr>,
    /// The kastell-mcp process id.
    pub(crate) pid: Option<u32>,
    /// The tools' output schemas from tools/list, fetched on first use.
    schemas: tokio::sync::OnceCell<HashMap<String, Value>>,
}

/// Starts `kastell-mcp` with a cleared environment: PATH, HOME (`dir`),
/// KASTELL_DIR (`dir/state`), loopback addresses allowed, confirmations
/// off (`KASTELL_CONFIRM=off`), plus `env`.
pub(crate) async fn start(dir: &Path, env: &[(&str, &str)]) -> Mcp {
    start_with_args(dir, &[], env).await
}

/// [`start`] with command-line arguments (`--sandbox`).
pub(crate) async fn start_with_args(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Mcp {
    start_as(Recorder::default(), dir, args, env).await
}

/// [`start_with_args`] with the client `recorder`.
pub(crate) async fn start_as(
    recorder: Recorder,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Mcp {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kastell-mcp"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        // These tests are about the operations, and rmcp's client here
        // cannot ask a person: destructive calls run as the original tool
        // ran them. `mcp::confirm` tests the confirmation (a test may
        // still pass its own KASTELL_CONFIRM in `env`).
        .env("KASTELL_CONFIRM", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = transport.id();
    let client = recorder.clone().serve(transport).await.unwrap();
    Mcp {
        client,
        recorder,
        stderr,
        pid,
        schemas: tokio::sync::OnceCell::new(),
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

    /// Calls `tool` with `args` and checks what every response must
    /// satisfy: the text is the structured content; a failure has a
    /// non-empty `error`, `hint` and `kind` and validates against
    /// [`error_schema`]; a success carries the requested `action` and
    /// validates against the tool's `outputSchema` from tools/list, also
    /// with undeclared properties forbidden ([`strict`]); every suggestion
    /// names an existing action, and none SAFE_MODE blocks when `safe`.
    pub(crate) async fn checked(&self, tool: &str, args: Value, safe: bool) -> CallToolResult {
        let result = self.call(tool, args.clone()).await;
        self.check(tool, &args, &result, safe).await;
        result
    }

    /// The checks of [`Mcp::checked`] on `result`, the answer to `tool`
    /// called with `args`.
    pub(crate) async fn check(
        &self,
        tool: &str,
        args: &Value,
        result: &CallToolResult,
        safe: bool,
    ) {
        let value = content(result);
        eprintln!("{tool} {args} -> {value}");
        assert_text_matches(result);
        if is_error(result) {
            assert_error_with_hint(result);
            assert!(
                value["kind"].as_str().is_some_and(|k| !k.is_empty()),
                "{tool} {args}: failure without a kind: {value}"
            );
            let problems = violations(&error_schema(), value);
            assert!(
                problems.is_empty(),
                "{tool} {args}: the failure breaks the error schema:\n{}",
                problems.join("\n")
            );
        } else {
            assert_eq!(
                value["action"], args["action"],
                "{tool} {args}: another action answered"
            );
            let schema = &self.output_schemas().await[tool];
            let mut problems = violations(schema, value);
            problems.extend(violations(&strict(&full_schema(tool)), value));
            assert!(
                problems.is_empty(),
                "{tool} {args}: the result breaks the output schema:\n{}\n  instance: {value}",
                problems.join("\n")
            );
        }
        assert_suggestions_valid(value, safe);
    }

    /// Calls `tool` with `args` and a progress token; returns the result and
    /// the progress notifications that arrived for it (after a short grace
    /// period for the last ones), oldest first.
    pub(crate) async fn call_with_progress(
        &self,
        tool: &str,
        args: Value,
    ) -> (CallToolResult, Vec<ProgressNotificationParam>) {
        let Value::Object(map) = args else {
            panic!("arguments must be an object")
        };
        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(map);
        let mut meta = RequestMetaObject::default();
        meta.set_progress_token(ProgressToken(NumberOrString::Number(4242)));
        params.meta = Some(meta);
        self.recorder.progress.lock().unwrap().clear();
        let result = self
            .client
            .call_tool(params)
            .await
            .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let progress = self.recorder.progress.lock().unwrap().clone();
        (result, progress)
    }

    /// The output schemas by tool name, from tools/list (asked once).
    pub(crate) async fn output_schemas(&self) -> &HashMap<String, Value> {
        self.schemas
            .get_or_init(|| async { output_schemas(self).await })
            .await
    }

    /// Kills kastell-mcp with SIGKILL (no chance to stop anything at a
    /// safe point or write anything) and waits until it is gone.
    pub(crate) async fn kill(self) {
        let pid = self.pid.expect("kastell-mcp's pid");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -KILL {pid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{pid} survived SIGKILL"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(self.client);
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

/// One kind of MCP call: a tool, one of its actions, and what SAFE_MODE
/// answers it with according to the policy table (`None`: it runs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct McpAction {
    pub(crate) tool: &'static str,
    pub(crate) action: &'static str,
    pub(crate) safe_mode: Option<kastell::policy::Refusal>,
    /// It works on the fleet, not one server (no `server` argument).
    pub(crate) fleet: bool,
}

/// Every MCP (tool, action) pair with its SAFE_MODE refusal, from the
/// operations' own rows (`kastell::ops::catalog`): the one place these
/// tests learn the operations and their policy from.
pub(crate) fn mcp_actions() -> Vec<McpAction> {
    kastell::ops::catalog::all()
        .iter()
        .filter_map(|op| {
            let spec = op.spec();
            let mcp = spec.mcp?;
            Some(McpAction {
                tool: mcp.tool,
                action: mcp.action,
                safe_mode: spec.rule.safe_mode,
                fleet: spec.scope == kastell::ops::Scope::Fleet,
            })
        })
        .collect()
}

/// Every `suggested_actions` command names a tool and action that exist
/// and, when `safe_mode` is on, none that SAFE_MODE blocks.
pub(crate) fn assert_suggestions_valid(value: &Value, safe_mode: bool) {
    let actions = mcp_actions();
    let Some(list) = value["suggested_actions"].as_array() else {
        panic!("no suggested_actions in {value}")
    };
    for s in list {
        let command = s["command"].as_str().unwrap();
        let (tool, rest) = command.split_once(' ').unwrap();
        let action = rest
            .split("action: '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap_or_else(|| panic!("no action in {command}"));
        let known = actions
            .iter()
            .find(|a| a.tool == tool && a.action == action)
            .unwrap_or_else(|| panic!("unknown tool or action in {command}"));
        if safe_mode {
            assert!(known.safe_mode.is_none(), "SAFE_MODE blocks {command}");
        }
    }
}

/// Checks a success payload against the tool's output schema from the
/// golden file: every field the root and the `oneOf` branch whose `action`
/// const matches require is present, and every field is declared.
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
    let props = schema["properties"].as_object().unwrap();
    // No field common to every result (server_info's fleet status shares
    // none) leaves no root `required`.
    let root = schema
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in root.iter().chain(branch["required"].as_array().unwrap()) {
        assert!(
            value.get(key.as_str().unwrap()).is_some(),
            "{tool}: missing {key} in {value}"
        );
    }
    // Fields are declared by name at the root, in the branch, or in one of
    // the root's `patternProperties`, each an alternation `^(a|b|c)$` of
    // the fields that share one type.
    let patterned: Vec<&str> = schema["patternProperties"]
        .as_object()
        .map(|p| {
            p.keys()
                .flat_map(|k| k.trim_start_matches("^(").trim_end_matches(")$").split('|'))
                .collect()
        })
        .unwrap_or_default();
    let in_branch = branch["properties"].as_object();
    for key in value.as_object().unwrap().keys() {
        assert!(
            props.contains_key(key)
                || in_branch.is_some_and(|b| b.contains_key(key))
                || patterned.contains(&key.as_str()),
            "{tool}: undeclared {key}"
        );
    }
}

/// The complete output schema of `tool` (every field, nested ones too),
/// of which tools/list serves the lean form.
pub(crate) fn full_schema(tool: &str) -> Value {
    kastell::surfaces::mcp::full_output_schema(tool).unwrap_or_else(|| panic!("no tool {tool}"))
}

/// Output schemas by tool name, straight from tools/list.
pub(crate) async fn output_schemas(mcp: &Mcp) -> HashMap<String, Value> {
    let tools = mcp.client.list_all_tools().await.unwrap();
    tools
        .into_iter()
        .map(|t| {
            let schema = Value::Object((*t.output_schema.expect("output schema")).clone());
            (t.name.to_string(), schema)
        })
        .collect()
}

/// `schema` (a complete output schema, [`full_schema`]) with undeclared
/// properties forbidden: `unevaluatedProperties: false` on every `oneOf`
/// branch (which sees its `$ref`'s properties) and on every other object
/// definition.
pub(crate) fn strict(schema: &Value) -> Value {
    let mut schema = schema.clone();
    let mut targets = Vec::new();
    if let Some(branches) = schema["oneOf"].as_array_mut() {
        for b in branches {
            if let Some(r) = b["$ref"].as_str() {
                targets.push(r.rsplit('/').next().unwrap().to_owned());
            }
            b["unevaluatedProperties"] = json!(false);
        }
    }
    if let Some(defs) = schema["$defs"].as_object_mut() {
        for (name, def) in defs {
            if def.get("properties").is_some() && !targets.contains(name) {
                def["unevaluatedProperties"] = json!(false);
            }
        }
    }
    schema
}

/// Validates `instance` against `schema` (jsonschema, the draft the
/// schema names); each violation as text.
pub(crate) fn violations(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e}"));
    validator
        .iter_errors(instance)
        .map(|e| {
            format!(
                "{e} (instance path `{}`, schema path `{}`)",
                e.instance_path(),
                e.schema_path()
            )
        })
        .collect()
}

/// The schema of a failure's structured content: the one the operations
/// serialise ([`kastell::ops::OpError`], as serialised: skipped fields are
/// optional), with undeclared properties forbidden.
pub(crate) fn error_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<kastell::ops::OpError>();
    let mut schema = serde_json::to_value(schema).unwrap();
    schema["unevaluatedProperties"] = json!(false);
    schema
}

/// `len` bytes that do not compress.
pub(crate) fn noise(len: usize) -> Vec<u8> {
    kastell_testkit::data::noise(0x2545_f491_4f6c_dd1d, len)
}

/// Adds a manual server (no provider: a `manual-` id) to the fleet store
/// in `dir/state`: at 127.0.0.1 through `sshd` (its user, port and ed25519
/// key), running `platform` (`None`: a bare server), with `options` as its
/// `platformOptions`.
pub(crate) fn add_manual_server(
    dir: &Path,
    name: &str,
    platform: Option<&str>,
    sshd: &kastell_testkit::sshd::LocalSshd,
    options: Value,
) -> kastell::ServerRecord {
    let store = kastell::FleetStore::open(dir.join("state")).unwrap();
    let id = format!(
        "manual-{}",
        1_700_000_000_000u64 + store.servers().unwrap().len() as u64
    );
    let mut record = kastell::ServerRecord::new(id, name, "127.0.0.1");
    match platform {
        Some(p) => {
            record.mode = p.to_owned();
            record.platform = Some(p.to_owned());
        }
        None => record.mode = "bare".to_owned(),
    }
    record.ssh = Some(kastell::state::store::SshSettings {
        user: Some(sshd.user().to_owned()),
        port: Some(sshd.port()),
        identity_file: Some(sshd.ed25519_key().to_string_lossy().into_owned()),
        host_key: None,
    });
    record
        .extra
        .insert(kastell::ops::PLATFORM_OPTIONS_KEY.to_owned(), options);
    store.add(record).unwrap()
}

/// `server_backup` arguments for `action` on `server`, plus `extra`.
pub(crate) fn backup(server: &str, action: &str, extra: Value) -> Value {
    let mut v = json!({"action": action, "server": server});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

/// The structured content of a success (panics on a failure).
pub(crate) fn ok(result: &CallToolResult) -> &Value {
    let value = content(result);
    assert_eq!(result.is_error, Some(false), "expected success: {value}");
    assert_eq!(value["success"], true, "{value}");
    value
}

/// The structured content of a failure (panics on a success).
pub(crate) fn failed(result: &CallToolResult) -> &Value {
    let value = content(result);
    assert!(is_error(result), "expected a failure: {value}");
    value
}

/// The `(tool, action)` of every suggestion.
pub(crate) fn suggested(value: &Value) -> Vec<(String, String)> {
    value["suggested_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let command = s["command"].as_str().unwrap();
            let (tool, rest) = command.split_once(' ').unwrap();
            let action = rest.split("action: '").nth(1).unwrap().split('\'').next();
            (tool.to_owned(), action.unwrap().to_owned())
        })
        .collect()
}

/// Step names of a result or failure, in order.
pub(crate) fn step_names(value: &Value) -> Vec<String> {
    value["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps in {value}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The step called `name`.
pub(crate) fn step<'a>(value: &'a Value, name: &str) -> &'a Value {
    value["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {value}"))
}

/// The backup ids of a backup-list result, in order.
pub(crate) fn listed_ids(value: &Value) -> Vec<String> {
    value["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap().to_owned())
        .collect()
}

/// The listed backup `id`.
pub(crate) fn listed<'a>(value: &'a Value, id: &str) -> &'a Value {
    value["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backupId"] == id)
        .unwrap_or_else(|| panic!("backup {id} not listed in {value}"))
}

/// A SAFE_MODE refusal on `server`: the original's error and hint, kind
/// `permission_denied`, the server named, and at least one suggestion, each
/// for this server and none of them blocked (the latter checked by
/// [`Mcp::checked`] with `safe`).
pub(crate) fn assert_safe_mode_refusal(
    result: &CallToolResult,
    server: &str,
    error: &str,
    hint: &str,
) {
    let value = failed(result);
    assert_eq!(value["error"], error, "{value}");
    assert_eq!(value["hint"], hint, "{value}");
    assert_eq!(value["kind"], "permission_denied", "{value}");
    assert_eq!(value["server"], server, "{value}");
    assert_eq!(value["ip"], "127.0.0.1", "{value}");
    let suggestions = value["suggested_actions"].as_array().unwrap();
    assert!(!suggestions.is_empty(), "no alternative offered: {value}");
    for s in suggestions {
        let command = s["command"].as_str().unwrap();
        assert!(
            command.contains(&format!("server: '{server}'")),
            "a suggestion for another server: {command}"
        );
    }
}

/// What `security.log` of the store in `dir` holds.
pub(crate) fn security_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("state/security.log")).unwrap_or_default()
}
