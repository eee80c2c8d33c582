//! [`SshTransport`]: the [`Transport`] implementation over libssh2.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use kastell_core::{
    BoxRead, BoxWrite, Error, HostKeyInfo, HostKeyTrust, HostTarget, Output, RemoteCommand, Result,
    StreamOutput, Transport,
};

use crate::config::SshConfig;
use crate::connect::{Connection, connect};
use crate::pool::Pool;
use crate::run::{RunResult, run, wrap_with_remote_timeout};

/// Captured stdout of [`Transport::exec`] is limited to this; larger output
/// belongs in [`Transport::exec_streaming`].
const CAPTURE_LIMIT: usize = 64 * 1024 * 1024;

struct Inner {
    config: SshConfig,
    target: HostTarget,
    pool: Pool,
    /// The pinned fingerprint: from the config, or learned on first use.
    pinned: Mutex<Option<String>>,
    /// The first trust decision made, with its warning.
    observed: Mutex<Option<HostKeyInfo>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// A session from the pool, or a new one whose host key is checked
    /// against the pin (and pinned on first use).
    fn checkout(&self) -> Result<Connection> {
        if let Some(conn) = self.pool.take() {
            return Ok(conn);
        }
        let pinned = lock(&self.pinned).clone();
        let (conn, info) = connect(&self.config, pinned.as_deref())?;
        if info.trust == HostKeyTrust::TrustedOnFirstUse {
            self.pin_on_first_use(&info)?;
        }
        let mut observed = lock(&self.observed);
        if observed.is_none() {
            *observed = Some(info);
        }
        Ok(conn)
    }

    /// Pins a key trusted on first use, unless a concurrent job pinned a
    /// different one meanwhile (then this key is a mismatch).
    fn pin_on_first_use(&self, info: &HostKeyInfo) -> Result<()> {
        let mut pinned = lock(&self.pinned);
        match pinned.as_deref() {
            Some(existing) if existing == info.fingerprint => Ok(()),
            Some(existing) => Err(Error::new(
                kastell_core::ErrorKind::HostKeyMismatch,
                format!(
                    "host key of {} changed while connecting: pinned {existing}, presented {}",
                    self.target, info.fingerprint
                ),
            )
            .with_provider("ssh")),
            None => {
                if let Some(pin) = &self.config.pin_host_key {
                    pin(info)?;
                }
                // The warning travels in the result (HostKeyInfo) too; at
                // warn it reaches stderr at the default log level, which
                // README promises.
                tracing::warn!("{}", info.warning.as_deref().unwrap_or("host key pinned"));
                *pinned = Some(info.fingerprint.clone());
                Ok(())
            }
        }
    }

    /// Runs one command on a pooled session; the session goes back to the
    /// pool only when the command ended cleanly.
    fn run_blocking(
        &self,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        stdout: &mut dyn Write,
        timeout: Duration,
    ) -> Result<RunResult> {
        let conn = self.checkout()?;
        let wrapped = wrap_with_remote_timeout(command.as_str(), timeout);
        let result = run(&conn, &wrapped, stdin, stdout, timeout);
        match result {
            Ok(result) => {
                self.pool.put(conn);
                Ok(result)
            }
            Err(e) => {
                discard(conn);
                Err(e.with_context("host", &self.target))
            }
        }
    }
}

/// Drops a session after a failure without waiting on the server: in
/// blocking mode libssh2 would wait up to the session timeout for the
/// channel and session to close. The server's `timeout` wrapper ends any
/// command still running there.
fn discard(conn: Connection) {
    conn.session.set_blocking(false);
    let _ = conn.socket.shutdown(std::net::Shutdown::Both);
    drop(conn);
}

/// Runs commands on one server over SSH. Cheap to clone; clones share the
/// session pool and the host-key pin.
#[derive(Clone)]
pub struct SshTransport {
    inner: Arc<Inner>,
}

impl fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshTransport")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl SshTransport {
    /// A transport for `config`. Connects lazily, on the first command.
    pub fn new(config: SshConfig) -> Self {
        let target = HostTarget {
            host: config.host.clone(),
            port: config.port,
            user: config.user.clone(),
        };
        Self {
            inner: Arc::new(Inner {
                pool: Pool::new(config.max_idle_sessions),
                pinned: Mutex::new(config.pinned_host_key.clone()),
                observed: Mutex::new(None),
                config,
                target,
            }),
        }
    }

    /// The settings this transport uses.
    pub fn config(&self) -> &SshConfig {
        &self.inner.config
    }

    /// The host key decision of the first connection, once connected.
    pub fn observed_host_key(&self) -> Option<HostKeyInfo> {
        lock(&self.inner.observed).clone()
    }

    /// Closes idle sessions; the next command connects again.
    pub fn disconnect(&self) {
        self.inner.pool.clear();
    }

    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || job(&inner))
            .await
            .map_err(|e| Error::unexpected(format!("SSH worker failed: {e}")))?
    }
}

/// A `Vec` writer that refuses to grow past [`CAPTURE_LIMIT`].
struct Capture(Vec<u8>);

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + data.len() > CAPTURE_LIMIT {
            return Err(std::io::Error::other(
                "command output exceeds 64 MiB; stream it instead",
            ));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn target(&self) -> &HostTarget {
        &self.inner.target
    }

    async fn exec(&self, command: &RemoteCommand, timeout: Duration) -> Result<Output> {
        let command = command.clone();
        self.blocking(move |inner| {
            let mut capture = Capture(Vec::new());
            let result = inner.run_blocking(&command, None, &mut capture, timeout)?;
            Ok(Output {
                status: result.status,
                stdout: capture.0,
                stderr: result.stderr,
            })
        })
        .await
    }

    async fn exec_streaming(
        &self,
        command: &RemoteCommand,
        stdin: Option<BoxRead>,
        mut stdout: BoxWrite,
        timeout: Duration,
    ) -> Result<StreamOutput> {
        let command = command.clone();
        self.blocking(move |inner| {
            let result = inner.run_blocking(&command, stdin, &mut stdout, timeout)?;
            Ok(StreamOutput {
                status: result.status,
                stderr: result.stderr,
                bytes_sent: result.sent,
                bytes_received: result.received,
            })
        })
        .await
    }

    async fn host_key(&self) -> Result<HostKeyInfo> {
        if let Some(info) = self.observed_host_key() {
            return Ok(info);
        }
        self.blocking(|inner| {
            let conn = inner.checkout()?;
            inner.pool.put(conn);
            lock(&inner.observed)
                .clone()
                .ok_or_else(|| Error::unexpected("connected without a host key decision"))
        })
        .await
    }
}
