//! Running one command on an open session: stdin, stdout and stderr flow at
//! the same time through a non-blocking loop, bounded by a deadline.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::time::{Duration, Instant};

use kastell_core::{BoxRead, Error, ErrorKind, Result, quote};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use ssh2::{BlockDirections, Channel, ErrorCode};

use crate::connect::Connection;

/// Read and write in chunks of this size (libssh2 is slow with small ones).
const CHUNK: usize = 256 * 1024;
/// Stderr kept per command; beyond this only the first part is kept.
const STDERR_LIMIT: usize = 1024 * 1024;
/// libssh2's "would block" code.
const EAGAIN: i32 = -37;
/// Time the remote `timeout` gets to kill the command before we give up on it.
const LOCAL_GRACE: Duration = Duration::from_secs(5);
/// Seconds between the remote TERM and KILL.
const KILL_AFTER_SECS: u64 = 2;

/// How a command ended.
#[derive(Debug, Default)]
pub(crate) struct RunResult {
    pub(crate) status: i32,
    pub(crate) stderr: Vec<u8>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

/// Wraps `command` so the server itself ends it after `timeout`: TERM, then
/// KILL two seconds later, to the whole process group.
pub(crate) fn wrap_with_remote_timeout(command: &str, timeout: Duration) -> String {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    format!(
        "timeout -k {KILL_AFTER_SECS} {} sh -c {}",
        secs.max(1),
        quote(command)
    )
}

fn would_block(err: &ssh2::Error) -> bool {
    matches!(err.code(), ErrorCode::Session(EAGAIN))
}

/// What to do when the connection broke under a command: the message
/// (`Failed waiting for channel success`, `Broken pipe`) is libssh2's and
/// says nothing a user can act on.
const CONNECTION_LOST_HINT: &str = "The SSH connection to the server broke during the command: \
     check that the server is up and reachable, then try again";

fn channel_error(what: &str, err: &ssh2::Error) -> Error {
    Error::unavailable(format!("SSH channel {what} failed: {}", err.message()))
        .with_provider("ssh")
        .with_operation("exec")
        .with_hint(CONNECTION_LOST_HINT)
}

/// Repeats a non-blocking libssh2 call until it stops saying "would block"
/// or the deadline passes.
fn until_done<T>(
    conn: &Connection,
    deadline: Instant,
    mut call: impl FnMut() -> std::result::Result<T, ssh2::Error>,
) -> std::result::Result<Option<T>, ssh2::Error> {
    loop {
        match call() {
            Ok(v) => return Ok(Some(v)),
            Err(e) if would_block(&e) => {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                wait_for_socket(conn, deadline);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until the socket is ready in the direction libssh2 is blocked on,
/// for at most 100 ms or until the deadline.
fn wait_for_socket(conn: &Connection, deadline: Instant) {
    let flags = match conn.session.block_directions() {
        BlockDirections::Inbound => PollFlags::IN,
        BlockDirections::Outbound => PollFlags::OUT,
        BlockDirections::Both => PollFlags::IN | PollFlags::OUT,
        BlockDirections::None => PollFlags::IN,
    };
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_millis(100));
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(wait.subsec_nanos()),
    };
    let mut fds = [PollFd::new(&conn.socket, flags)];
    // An interrupted or failed poll only means we look again sooner.
    let _ = poll(&mut fds, Some(&timeout));
}

/// Pulls what is available from one stream of the channel into `sink`.
/// Returns (made progress, reached end of stream).
fn drain(
    stream: &mut dyn Read,
    buf: &mut [u8],
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<(bool, bool)> {
    let mut progress = false;
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok((progress, true)),
            Ok(n) => {
                sink(&buf[..n])?;
                progress = true;
            }
            Err(e) if e.kind() == IoKind::WouldBlock => return Ok((progress, false)),
            Err(e) => {
                return Err(Error::unavailable(format!(
                    "reading from the SSH channel failed: {e}"
                ))
                .with_provider("ssh")
                .with_operation("exec")
                .with_hint(CONNECTION_LOST_HINT));
            }
        }
    }
}

/// State of the stdin side of a command.
struct Feeder {
    reader: Option<BoxRead>,
    pending: Vec<u8>,
    offset: usize,
    eof_sent: bool,
    sent: u64,
}

impl Feeder {
    fn new(reader: Option<BoxRead>) -> Self {
        Self {
            reader,
            pending: Vec::new(),
            offset: 0,
            eof_sent: false,
            sent: 0,
        }
    }

    /// Moves stdin forward. Returns whether anything happened.
    fn pump(&mut self, channel: &mut Channel) -> Result<bool> {
        if self.eof_sent {
            return Ok(false);
        }
        let mut progress = false;
        if self.offset == self.pending.len() {
            if let Some(reader) = self.reader.as_mut() {
                self.pending.resize(CHUNK, 0);
                let n = match reader.read(&mut self.pending) {
                    Ok(n) => n,
                    // Nothing to send yet (a held-open stdin): keep the
                    // channel's stdin open and look again next round.
                    Err(e) if e.kind() == IoKind::WouldBlock => {
                        self.pending.clear();
                        self.offset = 0;
                        return Ok(false);
                    }
                    Err(e) => return Err(Error::io("reading the data to send", e)),
                };
                self.pending.truncate(n);
                self.offset = 0;
                if n == 0 {
                    self.reader = None;
                } else {
                    progress = true;
                }
            }
        }
        if self.offset < self.pending.len() {
            match channel.write(&self.pending[self.offset..]) {
                Ok(n) => {
                    self.offset += n;
                    self.sent += n as u64;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == IoKind::WouldBlock => {}
                Err(_) => {
                    // The command stopped reading (it exited or closed
                    // stdin); its exit status will say why.
                    self.reader = None;
                    self.pending.clear();
                    self.offset = 0;
                }
            }
        }
        if self.reader.is_none() && self.offset == self.pending.len() {
            match channel.send_eof() {
                Ok(()) => {
                    self.eof_sent = true;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => self.eof_sent = true,
            }
        }
        Ok(progress)
    }
}

/// Runs `command` (already wrapped for the remote timeout) on `conn`.
///
/// Leaves the session in blocking mode on success. On `Err` the session
/// must not be reused.
pub(crate) fn run(
    conn: &Connection,
    command: &str,
    stdin: Option<BoxRead>,
    stdout: &mut dyn Write,
    timeout: Duration,
) -> Result<RunResult> {
    let started = Instant::now();
    let deadline = started + timeout + LOCAL_GRACE;
    conn.session.set_blocking(true);
    let mut channel = conn
        .session
        .channel_session()
        .map_err(|e| channel_error("open", &e).never_applied())?;
    channel
        .exec(command)
        .map_err(|e| channel_error("exec", &e).never_applied())?;
    conn.session.set_blocking(false);
    let outcome = pump_channel(conn, &mut channel, stdin, stdout, deadline);
    let result = outcome.and_then(|mut result| {
        let closed = until_done(conn, deadline, || channel.wait_close())
            .map_err(|e| channel_error("close", &e))?;
        if closed.is_none() {
            return Err(local_timeout(timeout));
        }
        result.status = channel.exit_status().unwrap_or(-1);
        if let Ok(signal) = channel.exit_signal() {
            if signal.exit_signal.is_some() {
                result.status = -1;
            }
        }
        Ok(result)
    });
    let result = result?;
    conn.session.set_blocking(true);
    let remote_timeout = matches!(result.status, 124 | 137);
    if remote_timeout && started.elapsed() >= timeout {
        return Err(local_timeout(timeout));
    }
    Ok(result)
}

fn local_timeout(timeout: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "remote command did not finish within {}s and was stopped",
            timeout.as_secs_f64()
        ),
    )
    .with_provider("ssh")
    .with_operation("exec")
    .with_hint("Give the operation a longer timeout if the work is expected to take this long")
}

fn pump_channel(
    conn: &Connection,
    channel: &mut Channel,
    stdin: Option<BoxRead>,
    stdout: &mut dyn Write,
    deadline: Instant,
) -> Result<RunResult> {
    let mut feeder = Feeder::new(stdin);
    let mut buf = vec![0u8; CHUNK];
    let mut stderr: Vec<u8> = Vec::new();
    let mut received: u64 = 0;
    loop {
        let mut progress = feeder.pump(channel)?;
        let (out_progress, out_end) = drain(channel, &mut buf, &mut |data: &[u8]| {
            received += data.len() as u64;
            stdout
                .write_all(data)
                .map_err(|e| Error::io("writing the command's output", e))
        })?;
        let mut err_stream = channel.stderr();
        let (err_progress, err_end) = drain(&mut err_stream, &mut buf, &mut |data: &[u8]| {
            let room = STDERR_LIMIT.saturating_sub(stderr.len());
            stderr.extend_from_slice(&data[..data.len().min(room)]);
            Ok(())
        })?;
        progress |= out_progress || err_progress;
        if out_end && err_end && channel.eof() {
            stdout
                .flush()
                .map_err(|e| Error::io("flushing the command's output", e))?;
            return Ok(RunResult {
                status: 0,
                stderr,
                sent: feeder.sent,
                received,
            });
        }
        if Instant::now() >= deadline {
            let _ = channel.close();
            return Err(Error::timeout("remote command did not finish in time")
                .with_provider("ssh")
                .with_operation("exec"));
        }
        if !progress {
            wait_for_socket(conn, deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_timeout_wrapper_quotes_and_rounds_up() {
        let wrapped = wrap_with_remote_timeout("echo 'hi'; exit 3", Duration::from_millis(1500));
        assert_eq!(wrapped, "timeout -k 2 2 sh -c 'echo '\\''hi'\\''; exit 3'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&wrapped)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"hi\n");
        assert!(wrap_with_remote_timeout("true", Duration::ZERO).contains("timeout -k 2 1 "));
    }
}
