//! How to reach one server over SSH.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kastell_core::{HostKeyInfo, Result};

/// Called once when a host key is trusted on first use, to persist the pin
/// (the engine writes it into the server record). An error aborts the
/// connection: a key that cannot be pinned is not trusted.
pub type HostKeyPinner = Arc<dyn Fn(&HostKeyInfo) -> Result<()> + Send + Sync>;

/// Connection settings for one server.
#[derive(Clone)]
pub struct SshConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port (22 by default).
    pub port: u16,
    /// Login user (`root` by default, as the original tool).
    pub user: String,
    /// Private key files to try, in order (ed25519 or RSA, no passphrase).
    pub identity_files: Vec<PathBuf>,
    /// The pinned `SHA256:...` fingerprint, if any.
    pub pinned_host_key: Option<String>,
    /// Refuse hosts whose key is not pinned (`KASTELL_STRICT_HOST_KEY=true`).
    pub strict_host_key: bool,
    /// Time allowed for TCP connect, handshake and authentication.
    pub connect_timeout: Duration,
    /// Sessions kept open for reuse.
    pub max_idle_sessions: usize,
    /// Persists a key trusted on first use.
    pub pin_host_key: Option<HostKeyPinner>,
}

impl SshConfig {
    /// Settings for `user@host:port` with the default identity files
    /// (`~/.ssh/id_ed25519`, then `~/.ssh/id_rsa`) and default timeouts.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            identity_files: default_identity_files(),
            pinned_host_key: None,
            strict_host_key: false,
            connect_timeout: Duration::from_secs(10),
            max_idle_sessions: 4,
            pin_host_key: None,
        }
    }

    /// Uses exactly this private key file.
    pub fn with_identity(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_files = vec![path.into()];
        self
    }

    /// Pins the host key fingerprint.
    pub fn with_pinned_host_key(mut self, fingerprint: impl Into<String>) -> Self {
        self.pinned_host_key = Some(fingerprint.into());
        self
    }
}

impl fmt::Debug for SshConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("identity_files", &self.identity_files)
            .field("pinned_host_key", &self.pinned_host_key)
            .field("strict_host_key", &self.strict_host_key)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

fn default_identity_files() -> Vec<PathBuf> {
    match std::env::var_os("HOME") {
        Some(home) => {
            let ssh = PathBuf::from(home).join(".ssh");
            vec![ssh.join("id_ed25519"), ssh.join("id_rsa")]
        }
        None => Vec::new(),
    }
}
