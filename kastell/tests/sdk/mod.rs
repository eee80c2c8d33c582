//! Running the official MCP client SDKs against the real `kastell-mcp`:
//! the TypeScript SDK (what Claude Desktop, Claude Code, Cursor and VS Code
//! are built on) and the Python SDK, installed by `.ci/setup` (through
//! `.ci/mcp-clients`) into `.ci/cache/mcp-clients`, each driven by a thin
//! script in `tests/clients/` that follows a JSON plan and prints a JSON
//! report.
//!
//! Also `kastell-mcp --http` started for a test, with the address it
//! reports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Which client runs a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sdk {
    /// `@modelcontextprotocol/sdk` on Node.
    TypeScript,
    /// PyPI `mcp`, with the protocol negotiation `mode` (`legacy` for the
    /// initialize handshake, `auto` to let it pick 2026-07-28).
    Python(&'static str),
}

/// Where `.ci/mcp-clients` installed the SDKs.
pub(crate) fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/cache/mcp-clients");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").is_dir()
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
        .join("tests/clients")
        .join(name)
}

/// Runs `plan` with `sdk`; returns its report and what it wrote on stderr
/// (for the TypeScript SDK, its warnings). Panics if the client itself
/// crashed or printed no report.
pub(crate) fn run(sdk: Sdk, plan: &Value) -> (Value, String) {
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
        Sdk::TypeScript => {
            let copy = scratch.path().join("ts_client.mjs");
            std::fs::copy(script("ts_client.mjs"), &copy).unwrap();
            let mut c = Command::new(cache.join("bin/node"));
            c.arg(copy);
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

/// The environment a stdio plan gives `kastell-mcp` (the client clears
/// the rest): PATH, HOME and `env`.
pub(crate) fn stdio_plan(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut vars = json!({
        "PATH": std::env::var("PATH").unwrap_or_default(),
        "HOME": home.display().to_string(),
    });
    for (k, v) in env {
        vars[*k] = json!(v);
    }
    json!({
        "transport": "stdio",
        "command": env!("CARGO_BIN_EXE_kastell-mcp"),
        "args": args,
        "env": vars,
    })
}

/// A `kastell-mcp --http` serving for one test; killed (SIGTERM, then
/// SIGKILL) when dropped.
pub(crate) struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT/mcp`.
    pub(crate) url: String,
    /// Everything it wrote on stderr until it was ready.
    pub(crate) banner: String,
    stderr: Option<std::thread::JoinHandle<String>>,
    _home: tempfile::TempDir,
}

impl HttpServer {
    /// Starts `kastell-mcp --http 127.0.0.1:0` plus `args`, with `env`
    /// (and a cleared environment otherwise), and waits until it serves.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kastell-mcp"));
        command
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("KASTELL_DIR", home.path().join("state"))
            .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut banner = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            assert!(
                Instant::now() < deadline,
                "kastell-mcp --http never served:\n{banner}"
            );
            let Some(Ok(line)) = lines.next() else {
                panic!("kastell-mcp --http ended before serving:\n{banner}");
            };
            banner.push_str(&line);
            banner.push('\n');
            if let Some(url) = line.split("serving MCP over HTTP at ").nth(1) {
                break url.trim().to_owned();
            }
        };
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            for line in lines.map_while(Result::ok) {
                rest.push_str(&line);
                rest.push('\n');
            }
            rest
        });
        Self {
            child,
            url,
            banner,
            stderr: Some(stderr),
            _home: home,
        }
    }

    /// Where its store lives (`KASTELL_DIR`).
    pub(crate) fn kastell_dir(&self) -> PathBuf {
        self._home.path().join("state")
    }

    /// Whether it is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops it with SIGTERM and returns everything it wrote on stderr.
    pub(crate) fn stop(mut self) -> String {
        self.terminate();
        let rest = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        format!("{}{rest}", self.banner)
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A plan for the SDK scripts that talks to this server with `token`.
    pub(crate) fn plan(&self, token: &str) -> Value {
        json!({
            "transport": "http",
            "url": self.url,
            "headers": {"Authorization": format!("Bearer {token}")},
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if self.is_running() {
            self.terminate();
        }
    }
}
