//! The official MCP client SDKs, driving an MCP server the way Claude
//! Desktop, Claude Code, Cursor and VS Code do: the TypeScript SDK (v1, and
//! the v2 client package, which speaks 2026-07-28) and the Python SDK,
//! installed by `.ci/setup` (through `.ci/mcp-clients`) into
//! `.ci/cache/mcp-clients`, each run through a thin script in `clients/`
//! that follows a JSON plan and prints a JSON report. Any test of any
//! crate can point them at a binary it built (`kastell-mcp`, or a kastell
//! build of one's own).

// Test support: a panic is the test failing, with the reason shown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Which client runs a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `@modelcontextprotocol/sdk` (v1) on Node: the initialize handshake
    /// only, and it does not report the version it negotiated.
    TypeScript,
    /// `@modelcontextprotocol/client` (v2) on Node, negotiating the
    /// version (`auto`: 2026-07-28 when the server offers it); its report
    /// carries the `protocolVersion` it got.
    TypeScriptV2,
    /// PyPI `mcp`, with the protocol negotiation `mode` (`legacy` for the
    /// initialize handshake, `auto` to let it pick 2026-07-28).
    Python(&'static str),
}

impl Sdk {
    /// Every client and negotiation mode, for the tests that check each
    /// lists and calls everything.
    pub const ALL: [Sdk; 4] = [
        Sdk::TypeScript,
        Sdk::TypeScriptV2,
        Sdk::Python("legacy"),
        Sdk::Python("auto"),
    ];
}

/// Where `.ci/mcp-clients` installed the SDKs.
pub fn cache() -> PathBuf {
    let dir = crate::ci_cache("mcp-clients");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir()
            && dir
                .join("node_modules/@modelcontextprotocol/client")
                .is_dir()
            && dir.join("venv/bin/python").exists()
            && dir.join("bin/node").exists(),
        "the official MCP client SDKs are not installed in {}: run `bash .ci/setup` \
         (README's test command does)",
        dir.display()
    );
    dir
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(name)
}

/// Runs `plan` with `sdk`; returns its report and what it wrote on stderr
/// (for the TypeScript SDKs, their warnings). Panics if the client itself
/// crashed or printed no report.
pub fn run(sdk: Sdk, plan: &Value) -> (Value, String) {
    let cache = cache();
    // ES modules resolve their imports next to the script: run a copy
    // that sits beside the installed node_modules.
    let scratch = tempfile::tempdir_in(&cache).unwrap();
    let plan_file = scratch.path().join("plan.json");
    let mut plan = plan.clone();
    if let Sdk::Python(mode) = sdk {
        plan["mode"] = json!(mode);
    }
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let mut command = match sdk {
        Sdk::TypeScript | Sdk::TypeScriptV2 => {
            let entry = if sdk == Sdk::TypeScript {
                "ts_client.mjs"
            } else {
                "ts2_client.mjs"
            };
            for name in [entry, "ts_drive.mjs"] {
                std::fs::copy(script(name), scratch.path().join(name)).unwrap();
            }
            let mut c = Command::new(cache.join("bin/node"));
            c.arg(scratch.path().join(entry));
            c
        }
        Sdk::Python(_) => {
            let mut c = Command::new(cache.join("venv/bin/python"));
            c.arg(script("py_client.py"));
            c
        }
    };
    let output = command
        .arg(&plan_file)
        .env("HOME", scratch.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "{sdk:?} printed no report; status {}; stderr:\n{stderr}",
                output.status
            )
        });
    (report, stderr)
}

/// A plan that starts the MCP server `command` over stdio with `args`, and
/// the environment it gives it (the client clears the rest): PATH, HOME
/// and `env`.
pub fn stdio_plan(command: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut vars = json!({
        "PATH": std::env::var("PATH").unwrap_or_default(),
        "HOME": home.display().to_string(),
    });
    for (k, v) in env {
        vars[*k] = json!(v);
    }
    json!({
        "transport": "stdio",
        "command": command.display().to_string(),
        "args": args,
        "env": vars,
    })
}
