//! However the sandbox binaries end, the sandbox leaves nothing behind:
//! `kastell demo` interrupted (SIGINT) at several points and terminated
//! (SIGTERM), `kastell-mcp --sandbox` stopped (SIGTERM, SIGINT) or killed
//! (SIGKILL, with and without its sshd guardian) while idle and during a
//! call, and clients that close stdin. Each run gets its own `TMPDIR`, so
//! "nothing behind" is checked exactly: no sandbox directory in it, no
//! process whose command line names it, and none of the processes that ran
//! the sandbox (each sshd from its pid file, its sessions and guardian)
//! still running. The exit statuses are 130, 143 and 0; after `SIGKILL` the
//! guardian stops the daemon and the next start sweeps the directories.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long a binary may take to stop after a signal or end of input.
const EXIT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a step of the sandbox may take to show up.
const STEP_DEADLINE: Duration = Duration::from_secs(120);

/// A private home and `TMPDIR` for one run (readable by the sandbox login
/// user, which must reach the shims in it).
pub(super) struct Scratch {
    root: tempfile::TempDir,
}

impl Scratch {
    pub(super) fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("sandbox-signals-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.path().join("tmp")).unwrap();
        std::fs::set_permissions(
            root.path().join("tmp"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        Self { root }
    }

    /// The scratch directory itself (0755), which holds `TMPDIR`.
    pub(super) fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    pub(super) fn tmp(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    /// `program` (a binary of this package) with a clean environment and
    /// this scratch's home, store and `TMPDIR`.
    pub(super) fn command(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.path())
            .env("KASTELL_DIR", self.root.path().join("state"))
            .env("TMPDIR", self.tmp())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The sandbox entries in `TMPDIR` (every `kastell-*` name).
    pub(super) fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("kastell-"))
            .collect()
    }

    /// The pids in the `sshd.pid` files of the sandbox daemons now running.
    fn daemons(&self) -> Vec<u32> {
        self.leftovers()
            .iter()
            .filter(|name| name.starts_with("kastell-sshd-"))
            .filter_map(|name| std::fs::read_to_string(self.tmp().join(name).join("sshd.pid")).ok())
            .filter_map(|text| text.trim().parse().ok())
            .collect()
    }

    /// The processes (other than this test's) whose command line names
    /// this scratch's `TMPDIR`: guardians, daemons, shims.
    pub(super) fn processes_naming_tmp(&self) -> Vec<(u32, String)> {
        let tmp = self.tmp().to_string_lossy().into_owned();
        let me = std::process::id();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != me && running(*pid))
            .filter_map(|pid| {
                let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let line = String::from_utf8_lossy(&line).replace('\0', " ");
                line.contains(&tmp).then_some((pid, line))
            })
            .collect()
    }

    /// Every process of the sandbox now: the daemons from their pid files
    /// and their descendants (sessions, commands), and the processes
    /// naming `TMPDIR`, each with its start time. Checks that the sandbox
    /// runs: at least one daemon.
    pub(super) fn sandbox_processes(&self) -> BTreeSet<(u32, u64)> {
        let daemons = self.daemons();
        assert!(
            !daemons.is_empty(),
            "no sandbox sshd runs: {:?}",
            self.leftovers()
        );
        let mut pids: Vec<u32> = daemons;
        pids.extend(self.processes_naming_tmp().into_iter().map(|(pid, _)| pid));
        let mut all = BTreeSet::new();
        while let Some(pid) = pids.pop() {
            if let Some(start) = start_time(pid) {
                if all.insert((pid, start)) {
                    pids.extend(children(pid));
                }
            }
        }
        all
    }

    /// Waits until nothing of the sandbox is left: no directory in
    /// `TMPDIR`, no process naming it, and none of `seen` (same pid and
    /// start time) still running. Panics with what is left otherwise.
    pub(super) fn assert_nothing_left(&self, seen: &BTreeSet<(u32, u64)>) {
        self.wait_until_gone(seen, true);
    }

    /// Waits until no process of the sandbox runs (directories may stay).
    fn assert_no_process_left(&self, seen: &BTreeSet<(u32, u64)>) {
        self.wait_until_gone(seen, false);
    }

    fn wait_until_gone(&self, seen: &BTreeSet<(u32, u64)>, with_directories: bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let dirs = if with_directories {
                self.leftovers()
            } else {
                Vec::new()
            };
            let named = self.processes_naming_tmp();
            let alive: Vec<_> = seen
                .iter()
                .filter(|(pid, start)| running(*pid) && start_time(*pid) == Some(*start))
                .collect();
            if dirs.is_empty() && named.is_empty() && alive.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind: directories {dirs:?}, processes {named:?}, still running {alive:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The fields of `/proc/<pid>/stat` after the command name.
fn stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(") ")?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Whether `pid` runs (exists and is not a zombie).
pub(super) fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|f| f[0] != "Z" && f[0] != "X")
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid)?.get(19)?.parse().ok()
}

/// Sends `signal` to process `pid`.
fn send(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

fn children(pid: u32) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// A running binary: its stdout lines arrive on a channel, stderr is
/// collected when it ends.
pub(super) struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    pub(super) fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `text` and returns it.
    pub(super) fn wait_for(&mut self, text: &str) -> String {
        self.lines_until(text).pop().unwrap_or_default()
    }

    /// Waits for a stdout line containing `text` and returns every line
    /// read since the last wait, that one last.
    pub(super) fn lines_until(&mut self, text: &str) -> Vec<String> {
        let start = self.seen.len();
        let deadline = Instant::now() + STEP_DEADLINE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return self.seen[start..].to_vec();
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no line with {text:?}; stdout so far:\n{}\nstderr:\n{}",
            self.seen.join("\n"),
            self.stderr_now()
        );
    }

    fn stderr_now(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            let mut text = String::new();
            if let Some(mut err) = self.child.stderr.take() {
                let _ = err.read_to_string(&mut text);
            }
            text
        } else {
            "(still running)".to_owned()
        }
    }

    pub(super) fn send(&mut self, message: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    pub(super) fn signal(&self, signal: rustix::process::Signal) {
        send(self.child.id(), signal);
    }

    /// Whether the process still runs.
    pub(super) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin, waits for the process to end and returns its status
    /// and stderr.
    pub(super) fn finish(self) -> (ExitStatus, String) {
        self.finish_with(true)
    }

    /// Waits for the process to exit (closing its stdin first when
    /// `close_stdin`) and returns its status and stderr.
    fn finish_with(mut self, close_stdin: bool) -> (ExitStatus, String) {
        if close_stdin {
            drop(self.stdin.take());
        }
        let deadline = Instant::now() + EXIT_DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running {EXIT_DEADLINE:?} after the end was asked");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr).unwrap();
        }
        (status, stderr)
    }
}

/// Sends `signal` (named `name`) to `run` and checks that `program` exits
/// with 128 + its number and says on stderr that it stopped the sandbox.
pub(super) fn stop_with(run: Running, signal: rustix::process::Signal, name: &str, program: &str) {
    run.signal(signal);
    // The signal alone must end it: stdin stays open.
    let (status, stderr) = run.finish_with(false);
    assert_eq!(
        status.code(),
        Some(128 + signal.as_raw()),
        "{status:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{program}: {name} received: stopped the sandbox")),
        "{stderr}"
    );
}

fn demo(scratch: &Scratch) -> Running {
    Running::spawn(scratch.command(env!("CARGO_BIN_EXE_kastell"), &["demo"], &[]))
}

/// Interrupts `kastell demo` (SIGINT) once a stdout line contains
/// `point`; checks exit status 130, the message and that nothing is left.
fn interrupt_demo_at(point: &str, sandbox_running: bool) {
    stop_demo_at(
        point,
        sandbox_running,
        rustix::process::Signal::INT,
        "SIGINT",
    );
}

/// Sends `signal` (named `name`) to `kastell demo` once a stdout line
/// contains `point`; checks exit status, message and that nothing is left.
fn stop_demo_at(point: &str, sandbox_running: bool, signal: rustix::process::Signal, name: &str) {
    let scratch = Scratch::new();
    let mut run = demo(&scratch);
    run.wait_for(point);
    let seen = if sandbox_running {
        scratch.sandbox_processes()
    } else {
        BTreeSet::new()
    };
    stop_with(run, signal, name, "kastell demo");
    scratch.assert_nothing_left(&seen);
}

#[test]
fn demo_interrupted_while_the_sandbox_starts_leaves_nothing() {
    // The first line is printed before the sandbox starts.
    interrupt_demo_at("kastell demo:", false);
}

#[test]
fn demo_interrupted_once_the_sandbox_runs_leaves_nothing() {
    interrupt_demo_at("2. Fleet store", true);
}

#[test]
fn demo_interrupted_during_the_backups_leaves_nothing() {
    interrupt_demo_at("6. Backups of", true);
}

#[test]
fn demo_interrupted_during_the_fleet_maintenance_leaves_nothing() {
    interrupt_demo_at("8. Maintenance of", true);
}

#[test]
fn demo_terminated_during_the_snapshots_leaves_nothing() {
    stop_demo_at(
        "7. A provider snapshot",
        true,
        rustix::process::Signal::TERM,
        "SIGTERM",
    );
}

/// A raw MCP client over the child's stdio: JSON-RPC lines.
fn mcp(scratch: &Scratch, env: &[(&str, &str)]) -> Running {
    initialized(Running::spawn(scratch.command(
        env!("CARGO_BIN_EXE_kastell-mcp"),
        &["--sandbox"],
        env,
    )))
}

/// `run` (a `kastell-mcp --sandbox`) past the MCP initialisation.
pub(super) fn initialized(mut run: Running) -> Running {
    run.send(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"sandbox-signals","version":"0"}}}"#,
    );
    run.wait_for(r#""id":1"#);
    run.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    run
}

/// Starts a maintenance of the manual server with a progress token and
/// waits for its first progress notification: a call is under way.
fn start_a_long_call(run: &mut Running) {
    run.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"server_maintain","arguments":{"action":"maintain","server":"manual-web"},"_meta":{"progressToken":7}}}"#,
    );
    run.wait_for("notifications/progress");
}

/// A `kastell-mcp --sandbox` (SAFE_MODE off) past initialisation, idle or
/// `during_a_call`, with the processes of its sandbox.
fn running_mcp(during_a_call: bool) -> (Scratch, Running, BTreeSet<(u32, u64)>) {
    let scratch = Scratch::new();
    let mut run = mcp(&scratch, &[("KASTELL_SAFE_MODE", "false")]);
    if during_a_call {
        start_a_long_call(&mut run);
    }
    let seen = scratch.sandbox_processes();
    (scratch, run, seen)
}

/// Stops `kastell-mcp --sandbox` with SIGTERM, idle or `during_a_call`;
/// checks exit status 143, the message and that nothing is left.
fn terminate_mcp(during_a_call: bool) {
    stop_mcp(during_a_call, rustix::process::Signal::TERM, "SIGTERM");
}

/// Sends `signal` (named `name`) to `kastell-mcp --sandbox`, idle or
/// `during_a_call`; checks exit status, message and that nothing is left.
fn stop_mcp(during_a_call: bool, signal: rustix::process::Signal, name: &str) {
    let (scratch, run, seen) = running_mcp(during_a_call);
    stop_with(run, signal, name, "kastell-mcp");
    scratch.assert_nothing_left(&seen);
}

#[test]
fn mcp_sandbox_terminated_while_idle_leaves_nothing() {
    terminate_mcp(false);
}

#[test]
fn mcp_sandbox_terminated_during_a_call_leaves_nothing() {
    terminate_mcp(true);
}

#[test]
fn mcp_sandbox_interrupted_during_a_call_leaves_nothing() {
    stop_mcp(true, rustix::process::Signal::INT, "SIGINT");
}

/// Kills `kastell-mcp --sandbox` with SIGKILL, idle or `during_a_call`: no
/// process of the sandbox outlives it (the guardian stops the daemon and
/// removes its directory); the next start sweeps the rest and leaves
/// nothing itself after a clean end.
fn kill_mcp(during_a_call: bool) {
    let (scratch, run, seen) = running_mcp(during_a_call);
    run.signal(rustix::process::Signal::KILL);
    let (status, _) = run.finish();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    scratch.assert_no_process_left(&seen);
    let left = scratch.leftovers();
    assert!(
        left.iter().all(|name| !name.starts_with("kastell-sshd-")),
        "the guardian removes the daemon's directory: {left:?}"
    );
    assert!(
        left.iter().any(|name| name.starts_with("kastell-hosts-")),
        "nothing for the next start to sweep: {left:?}"
    );
    assert_next_start_sweeps(&scratch, &seen);
}

/// Starts `kastell-mcp --sandbox` again in `scratch` and ends it cleanly:
/// it says it swept what was left, and afterwards nothing is left, none
/// of `seen` either.
fn assert_next_start_sweeps(scratch: &Scratch, seen: &BTreeSet<(u32, u64)>) {
    let next = mcp(scratch, &[]);
    let (status, stderr) = next.finish();
    assert_eq!(status.code(), Some(0), "{status:?}; stderr:\n{stderr}");
    assert!(
        stderr.contains("removed sandbox directories left by kastell processes that are gone"),
        "{stderr}"
    );
    scratch.assert_nothing_left(seen);
}

#[test]
fn mcp_sandbox_killed_while_idle_leaves_no_process_and_the_next_start_sweeps() {
    kill_mcp(false);
}

#[test]
fn mcp_sandbox_killed_during_a_call_leaves_no_process_and_the_next_start_sweeps() {
    kill_mcp(true);
}

#[test]
fn a_daemon_whose_guardian_was_killed_too_is_stopped_by_the_next_start() {
    // As when the whole process group is killed: nothing of the sandbox
    // can react, the next start must clean up, the daemon included.
    let (scratch, run, seen) = running_mcp(false);
    let guardians: Vec<u32> = scratch
        .processes_naming_tmp()
        .into_iter()
        .filter(|(_, line)| line.contains("kastell-sshd-guardian"))
        .map(|(pid, _)| pid)
        .collect();
    assert!(!guardians.is_empty(), "no guardian runs");
    for pid in guardians {
        send(pid, rustix::process::Signal::KILL);
    }
    run.signal(rustix::process::Signal::KILL);
    let (status, _) = run.finish();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    std::thread::sleep(Duration::from_millis(500));
    let daemons = scratch.daemons();
    assert!(
        !daemons.is_empty() && daemons.iter().all(|pid| running(*pid)),
        "the daemon should outlive a killed guardian: {daemons:?}"
    );
    assert_next_start_sweeps(&scratch, &seen);
}

#[test]
fn mcp_sandbox_exits_0_and_leaves_nothing_when_the_client_closes_stdin() {
    let scratch = Scratch::new();
    let mut run = mcp(&scratch, &[]);
    run.send(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"server_info","arguments":{"action":"list"}}}"#,
    );
    let answer = run.wait_for(r#""id":2"#);
    assert!(answer.contains("manual-web"), "{answer}");
    let seen = scratch.sandbox_processes();
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "{status:?}; stderr:\n{stderr}");
    scratch.assert_nothing_left(&seen);
}

#[test]
fn mcp_sandbox_exits_0_and_leaves_nothing_when_the_client_leaves_before_initialising() {
    let scratch = Scratch::new();
    let run =
        Running::spawn(scratch.command(env!("CARGO_BIN_EXE_kastell-mcp"), &["--sandbox"], &[]));
    let (status, stderr) = run.finish();
    assert_eq!(status.code(), Some(0), "{status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("sandbox fleet of"), "{stderr}");
    scratch.assert_nothing_left(&BTreeSet::new());
}
