//! The [`Transport`] trait: running commands on a server (SSH in production,
//! [`crate::memory::MemoryTransport`] in tests).

use std::fmt;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::poll::{Look, PollSchedule};
use crate::shell::RemoteCommand;

/// A boxed reader that can move to a blocking thread.
pub type BoxRead = Box<dyn Read + Send>;
/// A boxed writer that can move to a blocking thread.
pub type BoxWrite = Box<dyn Write + Send>;

/// A stdin that sends nothing and never ends: the command's stdin stays
/// open for as long as the connection does, so a remote watchdog reading
/// it sees end of file exactly when kastell goes away (the connection
/// broke, kastell was killed). Each read says [`std::io::ErrorKind::WouldBlock`];
/// transports treat that as "nothing to send yet" and never send EOF.
pub fn held_open_stdin() -> BoxRead {
    Box::new(HeldOpen)
}

struct HeldOpen;

impl Read for HeldOpen {
    fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}

/// Where a transport connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostTarget {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
}

impl fmt::Display for HostTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// The result of a finished remote command. A non-zero `status` is data,
/// not an error; [`TransportExt::exec_checked`] turns it into one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit status (`-1` when the command was killed by a signal).
    pub status: i32,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Standard output as text (lossy), trimmed.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_owned()
    }

    /// Standard error as text (lossy), trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_owned()
    }
}

/// The result of a streamed command: stdout went to the caller's writer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamOutput {
    /// Exit status (`-1` when the command was killed by a signal).
    pub status: i32,
    /// Captured standard error (bounded).
    pub stderr: Vec<u8>,
    /// Bytes read from the caller's stdin reader and sent.
    pub bytes_sent: u64,
    /// Bytes received and written to the caller's writer.
    pub bytes_received: u64,
}

impl StreamOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// How a host key came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostKeyTrust {
    /// It matched the fingerprint pinned in the server record.
    Pinned,
    /// No fingerprint was pinned: it was accepted and is now pinned.
    TrustedOnFirstUse,
    /// The transport has no host keys (memory transport).
    NotApplicable,
}

/// The key a host presented and why it was trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostKeyInfo {
    /// `SHA256:<base64>` as OpenSSH prints it.
    pub fingerprint: String,
    /// Key algorithm (`ssh-ed25519`, `rsa-sha2-512`, ...).
    pub key_type: String,
    /// Why it was trusted.
    pub trust: HostKeyTrust,
    /// A warning for the user (set on first use).
    pub warning: Option<String>,
}

/// Runs commands on one server.
///
/// # Behaviour every implementation keeps
/// - A non-zero exit status is returned in [`Output`], never as `Err`.
/// - A command that outlives `timeout` fails with [`ErrorKind::Timeout`] and
///   leaves no process running on the server.
/// - Refused credentials are [`ErrorKind::Unauthenticated`] (not retryable);
///   a changed host key is [`ErrorKind::HostKeyMismatch`] (never retried);
///   an unreachable host is [`ErrorKind::Unavailable`] (retryable).
/// - Implementations are safe to call concurrently.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Where this transport connects.
    fn target(&self) -> &HostTarget;

    /// Runs `command` and captures its output.
    async fn exec(&self, command: &RemoteCommand, timeout: Duration) -> Result<Output>;

    /// Runs `command` with `stdin` fed from a reader (when given) and its
    /// stdout streamed into `stdout`, for dumps and restores of any size
    /// without temporary files. Stdin and stdout flow at the same time.
    /// A reader that says [`std::io::ErrorKind::WouldBlock`] has nothing
    /// to send yet; one that always does ([`held_open_stdin`]) keeps the
    /// command's stdin open until it exits.
    async fn exec_streaming(
        &self,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        stdout: BoxWrite,
        timeout: Duration,
    ) -> Result<StreamOutput>;

    /// Connects if needed and reports the host's key and its trust.
    async fn host_key(&self) -> Result<HostKeyInfo>;
}

/// How much of a failed command's stderr is kept in the error.
const STDERR_IN_ERROR: usize = 2000;

/// Turns a finished command into [`ErrorKind::CommandFailed`] when it exited
/// non-zero, with the status and the tail of stderr in the message.
pub fn check_status(command: &RemoteCommand, status: i32, stderr: &[u8]) -> Result<()> {
    if status == 0 {
        return Ok(());
    }
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let tail = if text.len() > STDERR_IN_ERROR {
        let mut start = text.len() - STDERR_IN_ERROR;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        &text[start..]
    } else {
        text
    };
    let first_word = command.as_str().split_whitespace().next().unwrap_or("");
    let message = if tail.is_empty() {
        format!("remote command `{first_word} ...` exited with status {status}")
    } else {
        format!("remote command `{first_word} ...` exited with status {status}: {tail}")
    };
    Err(Error::new(ErrorKind::CommandFailed, message).with_context("exit_status", status))
}

/// Conveniences built on [`Transport`], available on every transport.
#[async_trait]
pub trait TransportExt: Transport {
    /// Like [`Transport::exec`], but a non-zero exit is
    /// [`ErrorKind::CommandFailed`] with stderr in the message.
    async fn exec_checked(&self, command: &RemoteCommand, timeout: Duration) -> Result<Output> {
        let output = self.exec(command, timeout).await?;
        check_status(command, output.status, &output.stderr)?;
        Ok(output)
    }

    /// Writes everything from `reader` to `remote_path`, created with mode
    /// 0600 (umask 077). Returns the bytes written.
    async fn upload(&self, reader: BoxRead, remote_path: &str, timeout: Duration) -> Result<u64> {
        let command = RemoteCommand::template("umask 077 && cat > {}", &[remote_path])?;
        let out = self
            .exec_streaming(&command, Some(reader), Box::new(std::io::sink()), timeout)
            .await?;
        check_status(&command, out.status, &out.stderr)?;
        Ok(out.bytes_sent)
    }

    /// Streams `remote_path` into `writer`. Returns the bytes received.
    async fn download(
        &self,
        remote_path: &str,
        writer: BoxWrite,
        timeout: Duration,
    ) -> Result<u64> {
        let command = RemoteCommand::template("cat -- {}", &[remote_path])?;
        let out = self.exec_streaming(&command, None, writer, timeout).await?;
        check_status(&command, out.status, &out.stderr)?;
        Ok(out.bytes_received)
    }

    /// The kernel's boot id: it changes on every boot, which proves a reboot.
    async fn boot_id(&self) -> Result<String> {
        let command = RemoteCommand::fixed("cat /proc/sys/kernel/random/boot_id");
        let out = self.exec_checked(&command, Duration::from_secs(30)).await?;
        let id = out.stdout_text();
        if id.is_empty() {
            return Err(Error::unexpected("the server returned an empty boot id"));
        }
        Ok(id)
    }

    /// Waits until a trivial command succeeds, for at most `deadline`.
    /// Returns how long it took. Fails at once on errors that waiting cannot
    /// fix (refused credentials, changed host key).
    async fn wait_reachable(&self, deadline: Duration, schedule: PollSchedule) -> Result<Duration> {
        let started = Instant::now();
        let probe = RemoteCommand::fixed("true");
        let look = || async {
            let remaining = deadline.saturating_sub(started.elapsed());
            let attempt_timeout = remaining
                .min(Duration::from_secs(15))
                .max(Duration::from_millis(100));
            match self.exec_checked(&probe, attempt_timeout).await {
                Ok(_) => Look::Done(started.elapsed()),
                Err(e) if !e.is_retryable() => Look::Failed(e),
                Err(e) => Look::Pending(e),
            }
        };
        let expired = |last: Error| {
            Error::timeout(format!(
                "{} was not reachable within {}s",
                self.target(),
                deadline.as_secs()
            ))
            .with_context("last_error", last)
            .with_hint("The server may still be booting; check that it is reachable over SSH")
            .with_advice(crate::Advice::CheckReachability)
        };
        schedule.poll_until(deadline, look, expired).await
    }
}

impl<T: Transport + ?Sized> TransportExt for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_status_keeps_stderr_tail() {
        let cmd = RemoteCommand::fixed("pg_restore --clean");
        assert!(check_status(&cmd, 0, b"").is_ok());
        let err = check_status(&cmd, 3, b"ERROR: relation exists\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed);
        assert!(err.to_string().contains("status 3"));
        assert!(err.to_string().contains("relation exists"));
        let long = "é".repeat(3000);
        let err = check_status(&cmd, 1, long.as_bytes()).unwrap_err();
        assert!(err.message().len() < 2200);
    }
}
