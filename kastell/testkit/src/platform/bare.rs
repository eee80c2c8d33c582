//! A fake bare host for real-SSH tests and examples of the bare platform.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use kastell_core::{PlatformContext, PlatformTarget, Transport};

use crate::sshd::{SandboxOptions, SshdFixture};

/// `systemctl`: the system state comes from `state/system-state` (default
/// `running`), failed units from `state/failed-units`; a reload of unit U
/// fails when `state/fail-U` exists.
const SYSTEMCTL: &str = r#"#!/bin/sh
echo "systemctl $*" >> "@STATE@/log"
case "$1" in
  is-system-running)
    s=$(cat "@STATE@/system-state" 2>/dev/null || echo running)
    echo "$s"; [ "$s" = running ] ;;
  --failed) cat "@STATE@/failed-units" 2>/dev/null; exit 0 ;;
  try-reload-or-restart)
    if [ -e "@STATE@/fail-$2" ]; then echo "Job for $2 failed." >&2; exit 1; fi ;;
esac
exit 0
"#;

/// `apt-get`: a simulation lists two packages; an upgrade creates the
/// reboot flag under the fake root.
const APT_GET: &str = r#"#!/bin/sh
echo "apt-get DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} $*" >> "@STATE@/log"
case " $* " in
  *" -s "*)
    echo "NOTE: This is only a simulation!"
    echo "Inst libssl3 [3.0.11-1] (3.0.11-2 Debian:12/stable [amd64])"
    echo "Inst openssl [3.0.11-1] (3.0.11-2 Debian:12/stable [amd64])"
    echo "Conf libssl3 (3.0.11-2 Debian:12/stable [amd64])" ;;
  *" update "*) echo "Hit:1 http://deb.debian.org/debian bookworm InRelease" ;;
  *" upgrade "*)
    echo "Setting up libssl3 (3.0.11-2) ..."
    mkdir -p "@ROOT@/var/run" && touch "@ROOT@/var/run/reboot-required" ;;
esac
"#;

/// `nginx -t -q -c FILE`: refuses a candidate that still points at
/// `/etc/nginx/`, whose includes or symlinks do not resolve inside it, or
/// that contains the word BROKEN.
const NGINX: &str = r#"#!/bin/sh
echo "nginx $*" >> "@STATE@/log"
conf=""
while [ $# -gt 0 ]; do
  if [ "$1" = -c ]; then conf=$2; shift; fi
  shift
done
[ -n "$conf" ] || { echo "nginx shim: no -c" >&2; exit 2; }
dir=$(dirname "$conf")
if grep -rq "/etc/nginx/" "$dir"; then echo "nginx: candidate still points at /etc/nginx/" >&2; exit 1; fi
for inc in $(sed -n 's/.*include[[:space:]][[:space:]]*\([^;]*\);.*/\1/p' "$conf"); do
  ls $inc >/dev/null 2>&1 || { echo "nginx: include $inc matches nothing" >&2; exit 1; }
done
for l in $(find "$dir" -type l); do
  t=$(readlink "$l")
  case $t in "$dir"/*) ;; *) echo "nginx: $l -> $t leaves the candidate" >&2; exit 1 ;; esac
  [ -e "$l" ] || { echo "nginx: $l dangles" >&2; exit 1; }
done
if grep -rq BROKEN "$dir"; then
  echo "nginx: [emerg] unknown directive \"BROKEN\" in $conf" >&2
  echo "nginx: configuration file $conf test failed" >&2
  exit 1
fi
exit 0
"#;

/// `sudo -n CMD...`: logs the call and runs the command as the same user.
const SUDO: &str = r#"#!/bin/sh
echo "sudo $1 $2 $3" >> "@STATE@/log"
[ "$1" = -n ] && shift
exec "$@"
"#;

/// A fake bare host: a private sshd whose sessions find `systemctl`,
/// `apt-get`, `nginx` and `sudo` shims first on their PATH, and a fake
/// filesystem root writable by the sandbox login user.
pub struct BareHost {
    /// The sandbox sshd whose sessions see the shims.
    pub fixture: SshdFixture,
    base: tempfile::TempDir,
}

fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

impl BareHost {
    /// Starts the sshd with the shims first on its PATH.
    pub fn start() -> Self {
        let base = tempfile::Builder::new()
            .prefix("kastell-bare-")
            .tempdir()
            .unwrap();
        mkdir(base.path(), 0o755);
        let bin = base.path().join("bin");
        mkdir(&bin, 0o755);
        mkdir(&base.path().join("state"), 0o777);
        mkdir(&base.path().join("root"), 0o777);
        fs::write(base.path().join("state/log"), "").unwrap();
        let state = base.path().join("state");
        let root = base.path().join("root");
        for (name, body) in [
            ("systemctl", SYSTEMCTL),
            ("apt-get", APT_GET),
            ("nginx", NGINX),
            ("sudo", SUDO),
        ] {
            let text = body
                .replace("@STATE@", &state.to_string_lossy())
                .replace("@ROOT@", &root.to_string_lossy());
            let path = bin.join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let fixture = SshdFixture::start_with(&SandboxOptions {
            path_prefix: vec![bin],
        });
        let host = Self { fixture, base };
        host.hand_over();
        host
    }

    /// The fake filesystem root.
    pub fn root(&self) -> PathBuf {
        self.base.path().join("root")
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
        let user = self.fixture.sshd.user().to_owned();
        for dir in [self.root(), self.base.path().join("state")] {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{user}:"))
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown {}", dir.display());
        }
    }

    /// Marks a state flag for the shims (`system-state`, `fail-nginx.service`).
    pub fn set_state(&self, name: &str, text: &str) {
        let path = self.base.path().join("state").join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    }

    /// Every shim call so far.
    pub fn log(&self) -> Vec<String> {
        fs::read_to_string(self.base.path().join("state/log"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets the shim calls so far.
    pub fn clear_log(&self) {
        fs::write(self.base.path().join("state/log"), "").unwrap();
    }

    /// The transport to the host.
    pub fn transport(&self) -> Arc<dyn Transport> {
        self.fixture.ssh()
    }

    /// The context to build a bare platform on this host over the fake
    /// root, with the `sudo` option and the backup paths given (empty: the
    /// platform's default list).
    pub fn context(&self, sudo: &str, backup_paths: &[&str]) -> PlatformContext {
        let mut options = BTreeMap::new();
        options.insert(
            "root".to_owned(),
            self.root().to_string_lossy().into_owned(),
        );
        options.insert("sudo".to_owned(), sudo.to_owned());
        PlatformContext {
            transport: self.transport(),
            target: PlatformTarget {
                name: "fake".into(),
                ip: "127.0.0.1".into(),
                domain: None,
                backup_paths: backup_paths.iter().map(|p| (*p).to_owned()).collect(),
            },
            options,
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
