//! A private sshd per test, and the fixture the transport trials use.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::Arc;

use kastell_core::Transport;
pub use kastell_ssh::sandbox::{LocalSshd, SANDBOX_USER, SandboxOptions, fingerprint_of};
use kastell_ssh::{SshConfig, SshTransport};

use crate::transport::TransportFixture;

/// A running [`LocalSshd`] with a transport logged in with its ed25519 key.
pub struct SshdFixture {
    /// The daemon.
    pub sshd: LocalSshd,
    transport: Arc<SshTransport>,
}

impl SshdFixture {
    /// Starts a private sshd; panics with the reason (and install hint) when
    /// it cannot.
    pub fn start() -> Self {
        Self::start_with(&SandboxOptions::default())
    }

    /// Starts a private sshd with `options` (e.g. a shim directory first on
    /// the PATH); panics with the reason when it cannot.
    pub fn start_with(options: &SandboxOptions) -> Self {
        let sshd = LocalSshd::start_with(options).unwrap_or_else(|e| {
            panic!(
                "cannot start the test sshd: {e} (hint: {})",
                e.hint().unwrap_or("")
            )
        });
        let transport = Arc::new(SshTransport::new(
            sshd.ssh_config()
                .with_pinned_host_key(sshd.host_key_fingerprint()),
        ));
        Self { sshd, transport }
    }

    /// The shared transport (host key pinned).
    pub fn ssh(&self) -> Arc<SshTransport> {
        self.transport.clone()
    }

    /// Settings for this sshd with nothing pinned.
    pub fn config(&self) -> SshConfig {
        self.sshd.ssh_config()
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

impl TransportFixture for SshdFixture {
    fn transport(&self) -> Arc<dyn Transport> {
        self.transport.clone()
    }

    fn with_wrong_key(&self) -> Option<Arc<dyn Transport>> {
        let config = self
            .config()
            .with_identity(self.sshd.stranger_key())
            .with_pinned_host_key(self.sshd.host_key_fingerprint());
        Some(Arc::new(SshTransport::new(config)))
    }

    fn with_changed_host_key(&self) -> Option<Arc<dyn Transport>> {
        let other = fingerprint_of(&self.sshd.dir().join("stranger_ed25519.pub")).unwrap();
        Some(Arc::new(SshTransport::new(
            self.config().with_pinned_host_key(other),
        )))
    }

    fn with_closed_port(&self) -> Option<Arc<dyn Transport>> {
        let mut config = self.config();
        config.port = closed_port();
        Some(Arc::new(SshTransport::new(config)))
    }
}

/// Makes a new ed25519 key without a passphrase called `name` in `sshd`'s
/// directory and returns its private file (the public half is beside it,
/// `.pub`). The key is not authorized: see [`authorize`]. Panics when
/// `ssh-keygen` fails.
pub fn new_key(sshd: &LocalSshd, name: &str) -> std::path::PathBuf {
    let path = sshd.dir().join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// Appends `line` (an `authorized_keys` line, options such as
/// `restrict,command="..."` included) to `sshd`'s authorized_keys file,
/// which the daemon reads at every login.
pub fn authorize(sshd: &LocalSshd, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(sshd.dir().join("authorized_keys"))
        .unwrap();
    writeln!(file, "{}", line.trim_end()).unwrap();
}
