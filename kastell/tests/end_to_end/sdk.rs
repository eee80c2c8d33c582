//! The official MCP client SDKs ([`kastell_testkit::mcp_sdk`]) against
//! the real `kastell-mcp`, and `kastell-mcp --http` started for a test,
//! with the address it reports.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[allow(unused_imports)] // Each test binary uses its own part.
pub(crate) use kastell_testkit::mcp_sdk::{Sdk, cache, run};

/// A stdio plan that starts this build's `kastell-mcp` with `args`.
pub(crate) fn stdio_plan(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    kastell_testkit::mcp_sdk::stdio_plan(
        Path::new(env!("CARGO_BIN_EXE_kastell-mcp")),
        home,
        args,
        env,
    )
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
