//! Fake hosts behind one sandbox sshd: shim programs put first on the
//! session `PATH` so the real kastell code can back up, update, reboot and
//! check servers that are really one unprivileged login on loopback.
//!
//! Each fake host is one loopback address the daemon listens on
//! ([`super::SandboxOptions::extra_addresses`]); a session finds out which
//! host it is from the address it reached (`$SSH_CONNECTION`). Per host
//! there is a fake filesystem root and a boot id:
//!
//! - `cat /proc/sys/kernel/random/boot_id` answers the host's boot id
//!   (every other `cat` is the real one);
//! - `reboot` and `systemctl reboot` give the host a new boot id and clear
//!   its `var/run/reboot-required`, as a real reboot would;
//! - `apt-get` simulates an upgrade of two packages and sets the reboot
//!   flag; `systemctl`, `journalctl`, `nginx` and `sudo` answer what the
//!   bare platform and the logs operation ask.
//!
//! A provider simulator's reboot is mirrored with [`FakeHosts::reboot`].
//! Every shim call is appended to a log ([`FakeHosts::log`]).
//!
//! Layout (one temporary directory, [`HOSTS_DIR_PREFIX`]`*`, removed on
//! drop, swept by [`super::sweep_stale`] once its owner is gone): `bin/`
//! (the shims), `state/` (log, boot ids, flags; writable by the login
//! user) and `roots/<address>/` (the fake roots, owned by the login user).

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use kastell_core::env::scrubbed_command;
use kastell_core::{Error, Result};

use super::files::{mkdir, write};

/// The name of every fake hosts directory starts with this.
pub const HOSTS_DIR_PREFIX: &str = "kastell-hosts-";

/// Functions every shim starts with: where the state is and which host the
/// session reached.
pub(crate) const PRELUDE: &str = r#"#!/bin/sh
STATE='@STATE@'
ROOTS='@ROOTS@'
host_ip() { set -- $SSH_CONNECTION; echo "${3:-127.0.0.1}"; }
"#;

/// `cat`: the host's boot id for the kernel's boot id file, else the real
/// `cat`.
const CAT: &str = r#"if [ $# -eq 1 ] && [ "$1" = /proc/sys/kernel/random/boot_id ]; then
  f="$STATE/boot/$(host_ip)"
  if [ -r "$f" ]; then exec '@CAT@' "$f"; fi
fi
exec '@CAT@' "$@"
"#;

/// `reboot`: a new boot id for this host and no pending reboot flag.
const REBOOT: &str = r#"echo "reboot $*" >> "$STATE/log"
ip=$(host_ip)
tmp="$STATE/boot/.$ip.$$"
'@CAT@' /proc/sys/kernel/random/uuid > "$tmp" && mv -f "$tmp" "$STATE/boot/$ip"
rm -f "$ROOTS/$ip/var/run/reboot-required"
"#;

/// `systemctl`: the system state comes from the host's own
/// `run/kastell-system-state` under its root, else `state/system-state`
/// (default `running`), failed units from `state/failed-units`; a reload
/// of unit U fails when `state/fail-U` exists; `reboot` reboots.
const SYSTEMCTL: &str = r#"echo "systemctl $*" >> "$STATE/log"
case "$1" in
  is-system-running)
    s=$('@CAT@' "$ROOTS/$(host_ip)/run/kastell-system-state" 2>/dev/null || '@CAT@' "$STATE/system-state" 2>/dev/null || echo running)
    echo "$s"; [ "$s" = running ] ;;
  --failed) '@CAT@' "$STATE/failed-units" 2>/dev/null; exit 0 ;;
  try-reload-or-restart)
    if [ -e "$STATE/fail-$2" ]; then echo "Job for $2 failed." >&2; exit 1; fi ;;
  reboot) exec reboot ;;
esac
exit 0
"#;

/// `apt-get`: a simulation lists two packages; an upgrade sets the host's
/// reboot flag, after `state/upgrade-delay` seconds when that file exists
/// (tests use it to act while an upgrade runs), and fails as dpkg would
/// when the host's root holds `run/kastell-fail-upgrade` (one host's
/// broken upgrade).
const APT_GET: &str = r#"echo "apt-get DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} $*" >> "$STATE/log"
case " $* " in
  *" -s "*)
    echo "NOTE: This is only a simulation!"
    echo "Inst libssl3 [3.0.11-1] (3.0.11-2 Debian:12/stable [amd64])"
    echo "Inst openssl [3.0.11-1] (3.0.11-2 Debian:12/stable [amd64])"
    echo "Conf libssl3 (3.0.11-2 Debian:12/stable [amd64])" ;;
  *" update "*) echo "Hit:1 http://deb.debian.org/debian bookworm InRelease" ;;
  *" upgrade "*)
    if [ -e "$STATE/upgrade-delay" ]; then sleep "$('@CAT@' "$STATE/upgrade-delay")"; fi
    if [ -e "$ROOTS/$(host_ip)/run/kastell-fail-upgrade" ]; then
      echo "E: Sub-process /usr/bin/dpkg returned an error code (1)" >&2; exit 100
    fi
    echo "Setting up libssl3 (3.0.11-2) ..."
    flag="$ROOTS/$(host_ip)/var/run"
    mkdir -p "$flag" && touch "$flag/reboot-required" ;;
esac
"#;

/// `journalctl -n N [-f]`: N lines of a quiet journal; with `-f`, then a
/// new line every 200 ms until it is stopped.
const JOURNALCTL: &str = r#"echo "journalctl $*" >> "$STATE/log"
n=10
follow=""
while [ $# -gt 0 ]; do
  if [ "$1" = -n ] && [ $# -ge 2 ]; then n=$2; shift; fi
  if [ "$1" = -f ]; then follow=1; fi
  shift
done
i=1
while [ "$i" -le "$n" ] && [ "$i" -le 50 ]; do
  echo "Nov 21 08:00:$(printf %02d $((i % 60))) $(host_ip) systemd[1]: sandbox journal line $i"
  i=$((i + 1))
done
if [ -n "$follow" ]; then
  i=1
  while :; do
    sleep 0.2
    echo "Nov 21 08:01:$(printf %02d $((i % 60))) $(host_ip) systemd[1]: sandbox journal follow line $i"
    i=$((i + 1))
  done
fi
"#;

/// `nginx -t -q -c FILE`: refuses a candidate that still points at
/// `/etc/nginx/`, whose includes or symlinks do not resolve inside it, or
/// that contains the word BROKEN.
const NGINX: &str = r#"echo "nginx $*" >> "$STATE/log"
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
const SUDO: &str = r#"echo "sudo $1 $2 $3" >> "$STATE/log"
[ "$1" = -n ] && shift
exec "$@"
"#;

/// The shims, by program name.
const SHIMS: [(&str, &str); 7] = [
    ("cat", CAT),
    ("reboot", REBOOT),
    ("systemctl", SYSTEMCTL),
    ("apt-get", APT_GET),
    ("journalctl", JOURNALCTL),
    ("nginx", NGINX),
    ("sudo", SUDO),
];

/// The shim directory, state and fake roots of a set of fake hosts.
/// Dropping it removes them.
#[derive(Debug)]
pub struct FakeHosts {
    base: tempfile::TempDir,
    user: String,
}

impl FakeHosts {
    /// Writes the shims and an empty state for hosts logged in as `user`
    /// (the sandbox sshd's login user). Refuses when no temporary
    /// directory can be written or the real `cat` cannot be found.
    pub fn create(user: &str) -> Result<Self> {
        let base = super::owner::tempdir(HOSTS_DIR_PREFIX)?;
        let hosts = Self {
            base,
            user: user.to_owned(),
        };
        mkdir(hosts.base.path(), 0o755)?;
        mkdir(&hosts.bin_dir(), 0o755)?;
        mkdir(&hosts.state_dir().join("boot"), 0o755)?;
        mkdir(&hosts.base.path().join("roots"), 0o755)?;
        write(&hosts.state_dir().join("log"), "", 0o644)?;
        for (name, body) in SHIMS {
            let text = hosts.render(&format!("{PRELUDE}{body}"))?;
            write(&hosts.bin_dir().join(name), &text, 0o755)?;
        }
        hosts.hand_over()?;
        Ok(hosts)
    }

    /// `script` with the state directory, the roots directory and the real
    /// `cat` put in for its `@STATE@`, `@ROOTS@` and `@CAT@` (as
    /// [`PRELUDE`] uses them). Refuses when the real `cat` cannot be found.
    pub(crate) fn render(&self, script: &str) -> Result<String> {
        let cat = real_cat()?;
        Ok(script
            .replace("@STATE@", &self.state_dir().to_string_lossy())
            .replace("@ROOTS@", &self.roots_dir().to_string_lossy())
            .replace("@CAT@", &cat.to_string_lossy()))
    }

    /// The directory to put first on the session `PATH`
    /// ([`super::SandboxOptions::path_prefix`]).
    pub fn bin_dir(&self) -> PathBuf {
        self.base.path().join("bin")
    }

    /// The shims' own state (boot ids, flags, their call log): the fake
    /// hosts' machinery, outside every fake root.
    pub fn state_dir(&self) -> PathBuf {
        self.base.path().join("state")
    }

    /// The directory holding every fake host's root (`<dir>/<address>`).
    pub fn roots_dir(&self) -> PathBuf {
        self.base.path().join("roots")
    }

    /// The fake filesystem root of the host at `address` (created, owned by
    /// the login user).
    pub fn root(&self, address: Ipv4Addr) -> Result<PathBuf> {
        let root = self.base.path().join("roots").join(address.to_string());
        if !root.is_dir() {
            mkdir(&root, 0o755)?;
            self.hand_over()?;
        }
        Ok(root)
    }

    /// Writes `relative` under the fake root of `address` (creating
    /// parents), owned by the login user.
    pub fn write(&self, address: Ipv4Addr, relative: &str, text: &str) -> Result<()> {
        let path = self.root(address)?.join(relative);
        if let Some(parent) = path.parent() {
            mkdir(parent, 0o755)?;
        }
        write(&path, text, 0o644)?;
        self.hand_over()
    }

    /// The boot id the host at `address` reports; `None` before its first
    /// boot (then `cat` gives this machine's real boot id).
    pub fn boot_id(&self, address: Ipv4Addr) -> Option<String> {
        fs::read_to_string(self.state_dir().join("boot").join(address.to_string()))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// Boots the host at `address`: gives it boot id `boot_id` and clears
    /// its pending reboot flag, as a reboot by the provider would. The id
    /// is replaced atomically.
    pub fn reboot(&self, address: Ipv4Addr, boot_id: &str) -> Result<()> {
        let dir = self.state_dir().join("boot");
        let tmp = dir.join(format!(".{address}.kastell"));
        write(&tmp, &format!("{boot_id}\n"), 0o644)?;
        fs::rename(&tmp, dir.join(address.to_string()))
            .map_err(|e| Error::io("replacing a sandbox boot id", e))?;
        let flag = self.root(address)?.join("var/run/reboot-required");
        match fs::remove_file(&flag) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("removing {}", flag.display()), e)),
        }
    }

    /// Sets a state flag the shims read (`system-state`, `failed-units`,
    /// `fail-<unit>`), readable (not writable) by the login user.
    pub fn set_state(&self, name: &str, text: &str) -> Result<()> {
        write(&self.state_dir().join(name), text, 0o644)
    }

    /// Every shim call so far, oldest first (`cat` is not logged).
    pub fn log(&self) -> Vec<String> {
        fs::read_to_string(self.state_dir().join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets the shim calls so far.
    pub fn clear_log(&self) -> Result<()> {
        write(&self.state_dir().join("log"), "", 0o644)
    }

    /// Gives the state and the fake roots to the login user so sessions
    /// can write them (a no-op unless running as root; call after writing
    /// files as root).
    pub fn hand_over(&self) -> Result<()> {
        if !rustix::process::geteuid().is_root() {
            return Ok(());
        }
        for dir in [self.state_dir(), self.base.path().join("roots")] {
            let status = scrubbed_command("chown")
                .arg("-R")
                .arg(format!("{}:", self.user))
                .arg(&dir)
                .status()
                .map_err(|e| Error::io("running chown", e))?;
            if !status.success() {
                return Err(Error::unexpected(format!(
                    "chown -R {} {} failed",
                    self.user,
                    dir.display()
                )));
            }
        }
        Ok(())
    }
}

impl Drop for FakeHosts {
    /// Stops the database clusters of the hosts' platforms (a sandbox
    /// PaaS host's PostgreSQL), before their directories go.
    fn drop(&mut self) {
        super::paas::stop_databases(&self.state_dir());
    }
}

/// The real `cat`, which the shim falls back to.
fn real_cat() -> Result<PathBuf> {
    ["/usr/bin/cat", "/bin/cat"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| Error::unexpected("no cat in /usr/bin or /bin"))
}
