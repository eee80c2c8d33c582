//! A transport that runs scripted replies instead of a remote shell.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::artifacts::hex_sha256;
use crate::error::{Error, ErrorKind, Result};
use crate::shell::RemoteCommand;
use crate::transport::{
    BoxRead, BoxWrite, HostKeyInfo, HostKeyTrust, HostTarget, Output, StreamOutput, Transport,
};

/// What a scripted command answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// Exit status.
    pub status: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// How long the command "runs" before answering.
    pub delay: Duration,
}

impl Reply {
    /// Exit 0 with `stdout`.
    pub fn ok(stdout: impl Into<Vec<u8>>) -> Self {
        Self {
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    /// Exit `status` with `stderr`.
    pub fn exit(status: i32, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            stderr: stderr.into(),
            ..Self::default()
        }
    }

    /// The same reply after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&str, &[u8]) -> Reply + Send + Sync>;

struct State {
    handlers: Vec<(String, Handler)>,
    commands: Vec<String>,
    files: BTreeMap<String, Vec<u8>>,
    boot: u64,
    reachable: bool,
}

/// A [`Transport`] for tests: commands are answered by handlers registered
/// by prefix (latest first), with a few shell built-ins so the generic
/// helpers work: `true`, the boot id, `umask 077 && cat > 'path'` (upload),
/// `cat -- 'path'` (download), `sha256sum 'path'`, `rm -f -- 'path'` and a
/// bare `cat` that echoes stdin. Anything else exits 127.
pub struct MemoryTransport {
    target: HostTarget,
    state: Mutex<State>,
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTransport {
    /// A reachable transport with no handlers.
    pub fn new() -> Self {
        Self {
            target: HostTarget {
                host: "memory".into(),
                port: 22,
                user: "memory".into(),
            },
            state: Mutex::new(State {
                handlers: Vec::new(),
                commands: Vec::new(),
                files: BTreeMap::new(),
                boot: 1,
                reachable: true,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers commands starting with `prefix` with `reply`.
    pub fn on(&self, prefix: &str, reply: Reply) {
        self.on_fn(prefix, move |_, _| reply.clone());
    }

    /// Answers commands starting with `prefix` by calling `handler` with the
    /// command line and everything read from stdin.
    pub fn on_fn(
        &self,
        prefix: &str,
        handler: impl Fn(&str, &[u8]) -> Reply + Send + Sync + 'static,
    ) {
        self.state()
            .handlers
            .push((prefix.to_owned(), Arc::new(handler)));
    }

    /// Every command run so far, in order.
    pub fn commands(&self) -> Vec<String> {
        self.state().commands.clone()
    }

    /// The content of a file in the fake filesystem.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.state().files.get(path).cloned()
    }

    /// Writes a file into the fake filesystem.
    pub fn put_file(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.state().files.insert(path.to_owned(), bytes.into());
    }

    /// Simulates a reboot: the boot id changes.
    pub fn reboot(&self) {
        self.state().boot += 1;
    }

    /// Makes every call fail with [`ErrorKind::Unavailable`] (or succeed again).
    pub fn set_reachable(&self, reachable: bool) {
        self.state().reachable = reachable;
    }

    fn run(&self, command: &str, stdin: &[u8]) -> Result<Reply> {
        let mut state = self.state();
        if !state.reachable {
            return Err(
                Error::unavailable(format!("{} is not reachable", self.target))
                    .never_applied()
                    .with_provider("memory"),
            );
        }
        state.commands.push(command.to_owned());
        let handler = state
            .handlers
            .iter()
            .rev()
            .find(|(prefix, _)| command.starts_with(prefix.as_str()))
            .map(|(_, h)| h.clone());
        if let Some(handler) = handler {
            drop(state);
            return Ok(handler(command, stdin));
        }
        Ok(builtin(&mut state, command, stdin))
    }

    async fn run_with_timeout(
        &self,
        command: &RemoteCommand,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Reply> {
        let reply = self.run(command.as_str(), stdin)?;
        if reply.delay > timeout {
            tokio::time::sleep(timeout).await;
            return Err(Error::timeout(format!(
                "remote command did not finish within {}s",
                timeout.as_secs_f64()
            ))
            .with_provider("memory")
            .with_operation("exec"));
        }
        tokio::time::sleep(reply.delay).await;
        Ok(reply)
    }
}

/// Reverses [`crate::shell::quote`] for a single quoted word.
fn unquote(word: &str) -> Option<String> {
    let inner = word.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("'\\''", "'"))
}

fn builtin(state: &mut State, command: &str, stdin: &[u8]) -> Reply {
    if command == "true" {
        return Reply::ok("");
    }
    if command == "cat /proc/sys/kernel/random/boot_id" {
        return Reply::ok(format!("00000000-0000-4000-8000-{:012x}\n", state.boot));
    }
    if command == "cat" {
        return Reply::ok(stdin.to_vec());
    }
    if let Some(path) = command
        .strip_prefix("umask 077 && cat > ")
        .and_then(unquote)
    {
        state.files.insert(path, stdin.to_vec());
        return Reply::ok("");
    }
    if let Some(path) = command.strip_prefix("cat -- ").and_then(unquote) {
        return match state.files.get(&path) {
            Some(bytes) => Reply::ok(bytes.clone()),
            None => Reply::exit(1, format!("cat: {path}: No such file or directory\n")),
        };
    }
    if let Some(path) = command.strip_prefix("sha256sum ").and_then(unquote) {
        return match state.files.get(&path) {
            Some(bytes) => Reply::ok(format!("{}  {path}\n", hex_sha256(bytes))),
            None => Reply::exit(1, format!("sha256sum: {path}: No such file or directory\n")),
        };
    }
    if let Some(path) = command.strip_prefix("rm -f -- ").and_then(unquote) {
        state.files.remove(&path);
        return Reply::ok("");
    }
    let name = command.split_whitespace().next().unwrap_or("");
    Reply::exit(127, format!("sh: 1: {name}: not found\n"))
}

#[async_trait]
impl Transport for MemoryTransport {
    fn target(&self) -> &HostTarget {
        &self.target
    }

    async fn exec(&self, command: &RemoteCommand, timeout: Duration) -> Result<Output> {
        let reply = self.run_with_timeout(command, &[], timeout).await?;
        Ok(Output {
            status: reply.status,
            stdout: reply.stdout,
            stderr: reply.stderr,
        })
    }

    async fn exec_streaming(
        &self,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        mut stdout: BoxWrite,
        timeout: Duration,
    ) -> Result<StreamOutput> {
        let mut input = Vec::new();
        if let Some(mut reader) = stdin {
            // A reader with nothing to send yet (a held-open stdin) ends
            // the input here: a memory host's commands run to completion.
            let mut chunk = [0u8; 64 * 1024];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => input.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io("reading the command's stdin", e)),
                }
            }
        }
        let reply = self.run_with_timeout(command, &input, timeout).await?;
        stdout
            .write_all(&reply.stdout)
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::io("writing the command's stdout", e))?;
        Ok(StreamOutput {
            status: reply.status,
            stderr: reply.stderr,
            bytes_sent: input.len() as u64,
            bytes_received: reply.stdout.len() as u64,
        })
    }

    async fn host_key(&self) -> Result<HostKeyInfo> {
        if !self.state().reachable {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "memory host is not reachable",
            ));
        }
        Ok(HostKeyInfo {
            fingerprint: "SHA256:memory".into(),
            key_type: "none".into(),
            trust: HostKeyTrust::NotApplicable,
            warning: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportExt;

    #[tokio::test]
    async fn handlers_builtins_and_ext_helpers() {
        let t = MemoryTransport::new();
        t.on("docker inspect", Reply::ok("4.0.0\n"));
        t.on("false", Reply::exit(1, "nope"));
        let out = t
            .exec(
                &RemoteCommand::fixed("docker inspect coolify"),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(out.stdout_text(), "4.0.0");
        let err = t
            .exec_checked(&RemoteCommand::fixed("false"), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        let missing = t
            .exec(
                &RemoteCommand::fixed("frobnicate --now"),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(missing.status, 127);

        let data = b"it's data".to_vec();
        let sent = t
            .upload(
                Box::new(std::io::Cursor::new(data.clone())),
                "/tmp/it's",
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(sent, data.len() as u64);
        assert_eq!(t.file("/tmp/it's").unwrap(), data);

        let before = t.boot_id().await.unwrap();
        t.reboot();
        assert_ne!(before, t.boot_id().await.unwrap());
        assert!(t.commands().iter().any(|c| c.starts_with("docker inspect")));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_commands_time_out_and_unreachable_hosts_fail() {
        let t = MemoryTransport::new();
        t.on("sleep", Reply::ok("").after(Duration::from_secs(60)));
        let err = t
            .exec(&RemoteCommand::fixed("sleep 60"), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        t.set_reachable(false);
        let err = t
            .exec(&RemoteCommand::fixed("true"), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(!err.may_have_taken_effect());
    }
}
