//! Benchmark 1b: the peak memory of `kastell-mcp` at `initialize` and at
//! `tools/list` (every tool and action: SAFE_MODE off), quiet, while every
//! core is busy, and over Streamable HTTP with sessions opened at the same
//! time; with what the memory is (the binary's code, its other pages,
//! shared libraries, anonymous memory) read from `/proc/PID/smaps`.
//!
//! The figure is `VmHWM`, what the process really held at its peak, as a
//! user's machine counts it: nothing is evicted or hidden first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kastell_core::{Error, Result};

use crate::mcp_start::verdict;
use crate::measure::peak_rss_kib;
use crate::report::Section;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"kastell-bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
/// The bearer token of the HTTP runs (loopback only, thrown away).
const TOKEN: &str = "kastell-bench-memory-0123456789";
/// The target the issue sets, in KiB.
const TARGET_KIB: u64 = 10 * 1024;

/// Where a process's resident memory is, in KiB.
#[derive(Debug, Default, Clone, Copy)]
struct Breakdown {
    /// The executable's code (its `r-xp` mapping).
    text: u64,
    /// The executable's other mappings (read-only data, relocated data).
    data: u64,
    /// Shared libraries (libc, libcrypto, ...).
    libs: u64,
    /// Anonymous memory: heap, thread stacks.
    anon: u64,
}

impl Breakdown {
    /// The breakdown of process `pid`, whose executable is `exe`.
    fn of(pid: u32, exe: &Path) -> Option<Self> {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
        let exe = std::fs::canonicalize(exe).ok()?;
        let exe = exe.to_string_lossy();
        let mut out = Self::default();
        let mut current: Option<(String, String)> = None;
        for line in smaps.lines() {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or_default();
            if first.contains('-') && !first.ends_with(':') {
                let perms = words.next().unwrap_or_default().to_owned();
                let path = words.nth(3).unwrap_or_default().to_owned();
                current = Some((perms, path));
            } else if first == "Rss:" {
                let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                match &current {
                    Some((perms, path)) if path.as_str() == exe => {
                        if perms == "r-xp" {
                            out.text += kib;
                        } else {
                            out.data += kib;
                        }
                    }
                    Some((_, path)) if path.starts_with('/') => out.libs += kib,
                    _ => out.anon += kib,
                }
            }
        }
        Some(out)
    }
}

/// One stdio session's peaks (KiB): after `initialize`, after
/// `tools/list`, and where the memory was then.
struct Stdio1 {
    initialize: u64,
    list: u64,
    parts: Option<Breakdown>,
}

/// Starts `mcp` on stdio in `home` with SAFE_MODE off.
fn spawn_stdio(mcp: &Path, home: &Path) -> Result<Child> {
    Command::new(mcp)
        .env_clear()
        .env("HOME", home)
        .env("KASTELL_DIR", home.join("kastell"))
        .env("KASTELL_SAFE_MODE", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("starting {}", mcp.display()), e))
}

/// One stdio session: initialize, then tools/list; the peaks after each.
fn stdio_session(mcp: &Path, home: &Path) -> Result<Stdio1> {
    let mut child = spawn_stdio(mcp, home)?;
    let outcome = stdio_exchange(&mut child, mcp);
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// The requests of [`stdio_session`] to `child` (running `mcp`).
fn stdio_exchange(child: &mut Child, mcp: &Path) -> Result<Stdio1> {
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::unexpected("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::unexpected("no stdout"))?;
    let mut lines = BufReader::new(stdout);
    let mut ask = |request: &str, expect: Option<&str>| -> Result<()> {
        writeln!(stdin, "{request}").map_err(|e| Error::io("writing a request", e))?;
        stdin
            .flush()
            .map_err(|e| Error::io("writing a request", e))?;
        if let Some(expect) = expect {
            let mut line = String::new();
            lines
                .read_line(&mut line)
                .map_err(|e| Error::io("reading an answer", e))?;
            if !line.contains(expect) {
                return Err(Error::unexpected(format!(
                    "kastell-mcp answered {line:.200}"
                )));
            }
        }
        Ok(())
    };
    ask(INITIALIZE, Some("\"id\":1"))?;
    let initialize = peak_rss_kib(child.id()).unwrap_or(0);
    ask(INITIALIZED, None)?;
    ask(TOOLS_LIST, Some("\"tools\""))?;
    let list = peak_rss_kib(child.id()).unwrap_or(0);
    let parts = Breakdown::of(child.id(), mcp);
    Ok(Stdio1 {
        initialize,
        list,
        parts,
    })
}

/// Every core busy (a spinning thread per core) until dropped.
struct Burners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Burners {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `runs` stdio sessions (after one that warms the page cache).
fn stdio_runs(mcp: &Path, home: &Path, runs: usize) -> Result<Vec<Stdio1>> {
    stdio_session(mcp, home)?;
    (0..runs).map(|_| stdio_session(mcp, home)).collect()
}

/// One HTTP exchange on its own connection: the status, the
/// `mcp-session-id` header and the body.
fn post(port: u16, session: Option<&str>, body: &str) -> Result<(u16, Option<String>, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| Error::io("connecting to kastell-mcp", e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| Error::io("setting a timeout", e))?;
    let session = session
        .map(|s| format!("Mcp-Session-Id: {s}\r\nMcp-Protocol-Version: 2025-06-18\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         {session}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| Error::io("sending a request", e))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| Error::io("reading an answer", e))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, rest) = answer.split_once("\r\n\r\n").unwrap_or((&*answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let id = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("mcp-session-id")
            .then(|| value.trim().to_owned())
    });
    Ok((status, id, rest.to_owned()))
}

/// One HTTP session: initialize, initialized, tools/list.
fn http_session(port: u16) -> Result<()> {
    let (status, id, _) = post(port, None, INITIALIZE)?;
    let id = id.ok_or_else(|| Error::unexpected(format!("initialize answered {status}")))?;
    post(port, Some(id.as_str()), INITIALIZED)?;
    let (status, _, body) = post(port, Some(id.as_str()), TOOLS_LIST)?;
    if status != 200 || !body.contains("\"tools\"") {
        return Err(Error::unexpected(format!(
            "tools/list answered {status}: {body:.200}"
        )));
    }
    Ok(())
}

/// The peak (KiB) of `kastell-mcp --http` after `sessions` sessions ran
/// at the same time (each on its own thread), and how long they took.
fn http_run(mcp: &Path, home: &Path, sessions: usize) -> Result<(u64, Duration)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::io("finding a free port", e))?
        .port();
    let mut child = Command::new(mcp)
        .args(["--http", &format!("127.0.0.1:{port}")])
        .env_clear()
        .env("HOME", home)
        .env("KASTELL_DIR", home.join("kastell"))
        .env("KASTELL_SAFE_MODE", "false")
        .env("KASTELL_MCP_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(format!("starting {}", mcp.display()), e))?;
    let outcome = http_sessions(&child, port, sessions);
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// [`http_run`]'s sessions against `child`, listening on `port`.
fn http_sessions(child: &Child, port: u16, sessions: usize) -> Result<(u64, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(Error::unexpected("kastell-mcp --http did not listen"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let handles: Vec<_> = (0..sessions)
        .map(|_| std::thread::spawn(move || http_session(port)))
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| Error::unexpected("a session thread panicked"))??;
    }
    let took = started.elapsed();
    Ok((peak_rss_kib(child.id()).unwrap_or(0), took))
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The rows of one set of stdio runs: median and max of each peak, and
/// the breakdown of the run with the highest peak.
fn stdio_row(label: &str, runs: &[Stdio1]) -> Vec<String> {
    let init: Vec<u64> = runs.iter().map(|r| r.initialize).collect();
    let list: Vec<u64> = runs.iter().map(|r| r.list).collect();
    let parts = runs
        .iter()
        .max_by_key(|r| r.list)
        .and_then(|r| r.parts)
        .unwrap_or_default();
    vec![
        label.to_owned(),
        format!(
            "{} / {}",
            mb(median(init.clone())),
            mb(init.iter().copied().max().unwrap_or(0))
        ),
        format!(
            "{} / {}",
            mb(median(list.clone())),
            mb(list.iter().copied().max().unwrap_or(0))
        ),
        mb(parts.text),
        mb(parts.data),
        mb(parts.libs),
        mb(parts.anon),
    ]
}

/// Runs the memory benchmark of `kastell-mcp` at `mcp`: `runs` stdio
/// sessions quiet and as many with every core busy, and HTTP servers
/// with 1, 10 and 50 sessions at once.
pub(crate) fn run(mcp: &Path, runs: usize) -> Result<Section> {
    let home = tempfile::tempdir().map_err(|e| Error::io("creating a home", e))?;
    let quiet = stdio_runs(mcp, home.path(), runs)?;
    let busy = {
        let _burners = Burners::start();
        stdio_runs(mcp, home.path(), runs)?
    };
    let mut http = Vec::new();
    for sessions in [1, 10, 50] {
        http.push((sessions, http_run(mcp, home.path(), sessions)?));
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut section = Section::new("1b. MCP memory");
    section.para(format!(
        "Peak RSS (`VmHWM`) of the release `kastell-mcp` (SAFE_MODE off: every tool and action) \
         after its answer to `initialize` and after its answer to `tools/list`, {runs} stdio sessions \
         each (median / max), quiet and with a spinning thread on each of the {cores} cores; then \
         where the memory was (`/proc/PID/smaps` of the highest run: the binary's code, its other \
         pages, shared libraries, anonymous memory)."
    ));
    section.table(
        &[
            "stdio",
            "initialize",
            "tools/list",
            "code",
            "other binary",
            "libraries",
            "anonymous",
        ],
        vec![stdio_row("quiet", &quiet), stdio_row("cores busy", &busy)],
    );
    section.para(
        "`kastell-mcp --http` on loopback: that many sessions at once, each `initialize`, \
         `notifications/initialized` and `tools/list` on its own connections; the server's peak.",
    );
    section.table(
        &["sessions at once", "peak RSS", "time"],
        http.iter()
            .map(|(n, (kib, took))| vec![n.to_string(), mb(*kib), crate::measure::ms(*took)])
            .collect(),
    );
    let worst = quiet.iter().chain(&busy).map(|r| r.list).max().unwrap_or(0);
    section.para(format!(
        "Target under 10 MB at initialize and tools/list, quiet and busy: {} (highest {}).",
        verdict(worst < TARGET_KIB),
        mb(worst)
    ));
    Ok(section)
}
