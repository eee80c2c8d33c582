//! A fake bare host for real-SSH tests and examples of the bare platform.

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use kastell_core::types::{PlatformRoot, Privilege};
use kastell_core::{PlatformContext, PlatformTarget, Transport};
use kastell_ssh::sandbox::hosts::FakeHosts;

use crate::sshd::{SandboxOptions, SshdFixture};

/// A fake bare host: a private sshd whose sessions find `systemctl`,
/// `apt-get`, `nginx` and `sudo` shims first on their PATH, and a fake
/// filesystem root writable by the sandbox login user.
pub struct BareHost {
    /// The sandbox sshd whose sessions see the shims.
    pub fixture: SshdFixture,
    hosts: FakeHosts,
}

impl BareHost {
    /// Starts the sshd with the shims first on its PATH.
    pub fn start() -> Self {
        let user = kastell_ssh::sandbox::login_user_name().unwrap();
        let hosts = FakeHosts::create(&user).unwrap();
        hosts.root(Ipv4Addr::LOCALHOST).unwrap();
        let fixture = SshdFixture::start_with(&SandboxOptions {
            path_prefix: vec![hosts.bin_dir()],
            ..SandboxOptions::default()
        });
        Self { fixture, hosts }
    }

    /// The fake hosts behind it (shims, their state, the root).
    pub(crate) fn fake_hosts(&self) -> &FakeHosts {
        &self.hosts
    }

    /// The fake filesystem root.
    pub fn root(&self) -> PathBuf {
        self.hosts.root(Ipv4Addr::LOCALHOST).unwrap()
    }

    /// A file under the fake root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Writes `relative` under the fake root (creating parents).
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Gives the fake root and the state directory to the login user, so
    /// the sessions can write them (call after writing files as root).
    pub fn hand_over(&self) {
        self.hosts.hand_over().unwrap();
    }

    /// Marks a state flag for the shims (`system-state`, `fail-nginx.service`).
    pub fn set_state(&self, name: &str, text: &str) {
        self.hosts.set_state(name, text).unwrap();
    }

    /// Every shim call so far.
    pub fn log(&self) -> Vec<String> {
        self.hosts.log()
    }

    /// Forgets the shim calls so far.
    pub fn clear_log(&self) {
        self.hosts.clear_log().unwrap();
    }

    /// The transport to the host.
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.fixture.ssh()
    }

    /// The context to build a platform on this host confined to the fake
    /// root, with `privilege` and the backup paths given (empty: the
    /// platform's default list).
    pub fn context(&self, privilege: Privilege, backup_paths: &[&str]) -> PlatformContext {
        PlatformContext {
            transport: self.transport(),
            target: PlatformTarget {
                name: "fake".into(),
                ip: "127.0.0.1".into(),
                domain: None,
                backup_paths: backup_paths.iter().map(|p| (*p).to_owned()).collect(),
            },
            root: PlatformRoot::new(&self.root().to_string_lossy()).unwrap(),
            privilege,
            options: BTreeMap::new(),
        }
    }

    /// Generates an ed25519 host key under the fake root and writes a valid
    /// sshd_config that uses it (plus `extra` lines).
    pub fn write_sshd_config(&self, extra: &str) {
        let key = self.path("etc/ssh/ssh_host_ed25519_key");
        fs::create_dir_all(key.parent().unwrap()).unwrap();
        if !key.exists() {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .status()
                .unwrap();
            assert!(status.success());
        }
        self.write(
            "etc/ssh/sshd_config",
            &format!(
                "HostKey {}\nPort 2222\nPasswordAuthentication no\n{extra}",
                key.display()
            ),
        );
    }
}
