//! What the real `kastell-mcp` answers, validated against the MCP
//! specification's own JSON Schemas (`tests/mcp_spec/`) for every protocol
//! version it negotiates: 2025-06-18 and 2025-11-25 (initialize
//! handshake) and 2026-07-28 (per-request metadata, no handshake).
//!
//! The session is raw JSON-RPC over the binary's stdio, so what is
//! validated is the bytes a client receives, not a client library's
//! reading of them. Every tool result's `structuredContent` is also
//! validated against the tool's own `outputSchema`, successes and failures
//! alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// The protocol versions kastell negotiates, each with its schema file.
const VERSIONS: &[&str] = &["2025-06-18", "2025-11-25", "2026-07-28"];

/// The version with no `initialize` handshake.
const STATELESS: &str = "2026-07-28";

fn spec(version: &str) -> Value {
    let path = format!(
        "{}/tests/mcp_spec/{version}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The violations of `instance` against definition `name` of `doc`.
fn against(doc: &Value, name: &str, instance: &Value) -> Vec<String> {
    let key = if doc.get("$defs").is_some() {
        "$defs"
    } else {
        "definitions"
    };
    assert!(doc[key].get(name).is_some(), "the spec has no {name}");
    let mut root = doc.clone();
    root["$ref"] = json!(format!("#/{key}/{name}"));
    let validator = jsonschema::validator_for(&root).unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at `{}`", e.instance_path()))
        .collect()
}

/// A raw JSON-RPC session with `kastell-mcp --sandbox` over stdio.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    version: &'static str,
    next_id: u64,
    _home: tempfile::TempDir,
}

impl Session {
    fn start(version: &'static str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kastell-mcp"))
            .arg("--sandbox")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut session = Self {
            child,
            stdin,
            stdout,
            version,
            next_id: 1,
            _home: home,
        };
        if version != STATELESS {
            let init = session.request(
                "initialize",
                json!({
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "kastell-spec-test", "version": "1.0.0"}
                }),
            );
            assert_eq!(init["result"]["protocolVersion"], version, "{init}");
            session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        }
        session
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends `method` with `params` (plus the per-request metadata of the
    /// stateless version) and returns the response, skipping notifications.
    fn request(&mut self, method: &str, mut params: Value) -> Value {
        if self.version == STATELESS && method != "initialize" {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": STATELESS,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "kastell-spec-test", "version": "1.0.0"}
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "kastell-mcp closed stdout"
            );
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
        }
    }

    /// The `result` of `method`, which must not be a JSON-RPC error.
    fn result(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The calls every version makes: reads, a strictness refusal, a SAFE_MODE
/// refusal, and an argument the action does not use.
fn calls() -> Vec<(&'static str, Value, bool)> {
    vec![
        ("server_info", json!({"action": "list"}), false),
        (
            "server_info",
            json!({"action": "status", "server": "manual-web"}),
            false,
        ),
        (
            "server_logs",
            json!({"action": "monitor", "server": "manual-web"}),
            false,
        ),
        (
            "server_backup",
            json!({"action": "backup-list", "server": "manual-web"}),
            false,
        ),
        (
            "server_backup",
            json!({"action": "snapshot-list", "server": "hetzner-web"}),
            false,
        ),
        (
            "server_maintain",
            json!({"action": "maintain", "server": "manual-web", "skip_reboot": true}),
            true,
        ),
        (
            "server_backup",
            json!({"action": "backup-restore", "server": "manual-web", "backupId": "x"}),
            true,
        ),
        (
            "server_info",
            json!({"action": "list", "server": "manual-web"}),
            true,
        ),
    ]
}

#[test]
fn every_answer_validates_against_the_spec_of_every_version() {
    for &version in VERSIONS {
        let doc = spec(version);
        let mut session = Session::start(version);

        let listed = session.result("tools/list", json!({}));
        let problems = against(&doc, "ListToolsResult", &listed);
        assert!(problems.is_empty(), "{version} tools/list: {problems:#?}");
        let tools = listed["tools"].as_array().unwrap();
        // SAFE_MODE is on: server_maintain is not offered.
        assert_eq!(tools.len(), 3, "{version}");
        let text = listed.to_string();
        for format in ["\"uint", "\"int32", "\"int64", "\"double", "\"float"] {
            assert!(
                !text.contains(&format!("\"format\":{format}")),
                "{version}: a non-standard format {format} in tools/list"
            );
        }
        for tool in tools {
            assert_eq!(tool["inputSchema"]["type"], "object", "{}", tool["name"]);
            assert_eq!(tool["outputSchema"]["type"], "object", "{}", tool["name"]);
            assert!(tool["title"].is_string(), "{}", tool["name"]);
            for hint in [
                "readOnlyHint",
                "destructiveHint",
                "idempotentHint",
                "openWorldHint",
            ] {
                assert!(
                    tool["annotations"][hint].is_boolean(),
                    "{} {hint}",
                    tool["name"]
                );
            }
        }

        for (tool, arguments, fails) in calls() {
            let result =
                session.result("tools/call", json!({"name": tool, "arguments": arguments}));
            let problems = against(&doc, "CallToolResult", &result);
            assert!(
                problems.is_empty(),
                "{version} {tool} {arguments}: {problems:#?}"
            );
            assert_eq!(
                result["isError"].as_bool().unwrap_or(false),
                fails,
                "{version} {tool} {arguments}: {result}"
            );
            // A tool SAFE_MODE hides (server_maintain) is still called and
            // refused: its answer holds to the schema it is listed with
            // when SAFE_MODE is off, the complete one.
            let schema = match tools.iter().find(|t| t["name"] == tool) {
                Some(listed) => listed["outputSchema"].clone(),
                None => kastell::surfaces::mcp::full_output_schema(tool).unwrap(),
            };
            let validator = jsonschema::validator_for(&schema).unwrap();
            let content = &result["structuredContent"];
            let problems: Vec<String> = validator
                .iter_errors(content)
                .map(|e| e.to_string())
                .collect();
            assert!(
                problems.is_empty(),
                "{version} {tool} {arguments}: structuredContent against the outputSchema: {problems:#?}"
            );
        }

        let resources = session.result("resources/list", json!({}));
        assert!(
            against(&doc, "ListResourcesResult", &resources).is_empty(),
            "{resources}"
        );
        assert_eq!(resources["resources"][0]["uri"], "kastell://fleet");
        let read = session.result("resources/read", json!({"uri": "kastell://fleet"}));
        let problems = against(&doc, "ReadResourceResult", &read);
        assert!(
            problems.is_empty(),
            "{version} resources/read: {problems:#?}"
        );
        let fleet: Value =
            serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(fleet["serverCount"], 5, "{fleet}");
        assert_eq!(resources["resources"][1]["uri"], "kastell://audit/recent");
        let read = session.result("resources/read", json!({"uri": "kastell://audit/recent"}));
        let problems = against(&doc, "ReadResourceResult", &read);
        assert!(
            problems.is_empty(),
            "{version} resources/read audit: {problems:#?}"
        );
        let audit: Value =
            serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
        assert!(audit["entries"].is_array(), "{audit}");
        assert_eq!(audit["verify"]["ok"], true, "{audit}");

        let prompts = session.result("prompts/list", json!({}));
        assert!(
            against(&doc, "ListPromptsResult", &prompts).is_empty(),
            "{prompts}"
        );
        let prompt = session.result(
            "prompts/get",
            json!({"name": "safe-maintenance", "arguments": {"server": "manual-web"}}),
        );
        assert!(
            against(&doc, "GetPromptResult", &prompt).is_empty(),
            "{prompt}"
        );
        let missing = session.request("prompts/get", json!({"name": "safe-maintenance"}));
        assert!(
            missing["error"]["message"]
                .as_str()
                .unwrap()
                .contains("needs the argument server"),
            "{missing}"
        );
    }
}

#[test]
fn the_specs_reject_what_kastell_used_to_send() {
    // The oracle can fail: the tools/list that the official SDKs refused
    // (a root oneOf output schema without type: object) fails the schema
    // of each handshake version.
    let old = json!({"tools": [{
        "name": "server_info",
        "inputSchema": {"type": "object", "properties": {}},
        "outputSchema": {"oneOf": [{"type": "object"}]}
    }]});
    for version in ["2025-06-18", "2025-11-25"] {
        assert!(
            !against(&spec(version), "ListToolsResult", &old).is_empty(),
            "{version} accepted a root oneOf output schema"
        );
    }
}
