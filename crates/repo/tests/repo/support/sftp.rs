//! A real OpenSSH server for SFTP repositories: the testkit's private sshd
//! on loopback, a directory its login user owns, and a known_hosts file
//! pinning its host key.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use kastell_repo::RepoLocation;
use kastell_repo::backend::{BackendCredentials, SftpCredentials};
use kastell_testkit::sshd::{self, SshdFixture};

/// A private sshd, a directory its login user may write to, and a
/// known_hosts file pinning the daemon's host key.
pub struct Server {
    pub fixture: SshdFixture,
    /// Holds `store/`, the directory handed to the login user.
    pub dir: tempfile::TempDir,
    pub known_hosts: PathBuf,
}

impl Server {
    pub fn start() -> Self {
        let fixture = SshdFixture::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        if running_as_root() {
            let status = Command::new("chown")
                .arg(format!("{}:", fixture.sshd.user()))
                .arg(&store)
                .status()
                .unwrap();
            assert!(status.success(), "chown of the test directory failed");
        }
        let known_hosts = dir.path().join("known_hosts");
        let server = Self {
            fixture,
            dir,
            known_hosts,
        };
        std::fs::write(&server.known_hosts, server.pin_line("host_ed25519.pub")).unwrap();
        server
    }

    pub fn port(&self) -> u16 {
        self.fixture.sshd.port()
    }

    pub fn user(&self) -> &str {
        self.fixture.sshd.user()
    }

    /// A known_hosts line pinning the public key `file` of the daemon's
    /// directory for `[127.0.0.1]:port`.
    pub fn pin_line(&self, file: &str) -> String {
        let key = std::fs::read_to_string(self.fixture.sshd.dir().join(file)).unwrap();
        format!("[127.0.0.1]:{} {}", self.port(), key.trim())
    }

    /// The repository directory `name` (not created) on the server, which
    /// serves this machine's file system.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("store").join(name)
    }

    pub fn location(&self, name: &str) -> RepoLocation {
        RepoLocation::parse(&format!(
            "sftp://{}@127.0.0.1:{}/{}",
            self.user(),
            self.port(),
            self.path(name).display()
        ))
        .unwrap()
    }

    /// A new key whose login is append-only: authorized with the line
    /// `kastell repo init --append-only-key` prints.
    pub fn append_only_key(&self) -> PathBuf {
        let key = sshd::new_key(&self.fixture.sshd, "agent_ed25519");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let line = kastell_repo::append_only::authorized_keys_line(&public).unwrap();
        sshd::authorize(&self.fixture.sshd, &line);
        key
    }

    /// The login with the daemon's unrestricted key (the operator's).
    pub fn credentials(&self) -> BackendCredentials {
        self.credentials_with(self.fixture.sshd.ed25519_key(), self.known_hosts.clone())
    }

    pub fn credentials_with(
        &self,
        identity_file: PathBuf,
        known_hosts: PathBuf,
    ) -> BackendCredentials {
        BackendCredentials {
            s3: None,
            sftp: Some(SftpCredentials {
                identity_file,
                known_hosts,
            }),
        }
    }

    /// Stock restic's arguments for the repository `name` over SFTP,
    /// through OpenSSH's client with the same key and known_hosts file.
    pub fn restic_sftp(&self, name: &str) -> (String, String) {
        let repo = format!(
            "sftp:{}@127.0.0.1:{}",
            self.user(),
            self.path(name).display()
        );
        let command = format!(
            "sftp.command=ssh -F /dev/null -i {} -p {} -o UserKnownHostsFile={} \
             -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes \
             {}@127.0.0.1 -s sftp",
            self.fixture.sshd.ed25519_key().display(),
            self.port(),
            self.known_hosts.display(),
            self.user()
        );
        (repo, command)
    }
}

pub fn running_as_root() -> bool {
    // The tests run as root in CI containers and as a user elsewhere.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}
