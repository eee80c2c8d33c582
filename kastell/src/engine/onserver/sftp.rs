//! The SFTP kind of on-server target. Stock restic cannot write through
//! an append-only `sftp-server` login (it sets each new file's mode on the
//! open handle), so a server reaches its directory on the storage host
//! through restic's `rclone:` backend over SSH instead: restic runs `ssh`
//! with the server's own key as its rclone program, and the storage's
//! `authorized_keys` forces that key into `rclone serve restic --stdio
//! --append-only <its directory>` with `restrict`
//! ([`kastell_repo::append_only::rclone_authorized_keys_line`]), whatever
//! command the client asks for. The storage refuses the key deletes
//! (except of locks) and overwrites, and serves it no other directory.
//!
//! The key is made on the server by `ssh-keygen` and its private half
//! never leaves it; kastell reads back only the public half. The storage
//! host's key is pinned on the server (a known_hosts file of kastell's,
//! from the operator's own pinned line): the server's `ssh` refuses any
//! other. The operator's machine keeps reading, checking and pruning the
//! same directory over its own SFTP login.

use std::fmt::Write as _;
use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::RepoLocation;
use kastell_repo::append_only::rclone_authorized_keys_line;

use super::files::{Layout, MARKER};
use super::remote::Root;
use crate::engine::schedule::unit::name_piece;

/// What restic on the server names its repository: restic hands it to the
/// rclone program as an argument, which the forced command ignores.
pub(crate) const RCLONE_REPOSITORY: &str = "rclone:kastell:";

/// The status the canary asks the storage to exit with: only a login that
/// runs the client's own command (no forced command) exits with it.
pub(crate) const NOT_FORCED_STATUS: i32 = 97;

/// A server's directory on an SSH storage host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SftpTarget {
    user: String,
    host: String,
    port: u16,
    dir: String,
}

impl SftpTarget {
    /// The target of the per-server repository `location`; `None` for one
    /// not on SFTP.
    pub(crate) fn of(location: &RepoLocation) -> Option<Self> {
        let RepoLocation::Sftp {
            user,
            host,
            port,
            path,
        } = location
        else {
            return None;
        };
        Some(Self {
            user: user.clone(),
            host: host.clone(),
            port: *port,
            dir: path.display().to_string(),
        })
    }

    /// The repository location it stands for.
    pub(crate) fn location(&self) -> RepoLocation {
        RepoLocation::Sftp {
            user: self.user.clone(),
            host: self.host.clone(),
            port: self.port,
            path: self.dir.clone().into(),
        }
    }

    /// The `ssh` command line (words without quotes, joined by spaces)
    /// that logs in to the storage with the key file `key`, trusting only
    /// the host key in `known_hosts`, reading no ssh configuration and
    /// never asking anything. The words are plain by construction: the
    /// user and host were checked when the location was parsed, and the
    /// callers check the paths ([`Self::program`]).
    fn ssh_line(&self, key: &str, known_hosts: &str) -> String {
        format!(
            "ssh -F none -i {key} -o IdentitiesOnly=yes -o BatchMode=yes \
             -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} \
             -o GlobalKnownHostsFile=/dev/null -o ServerAliveInterval=30 -p {port} -l {user} {host}",
            port = self.port,
            user = self.user,
            host = self.host
        )
    }

    /// The program restic's `rclone:` backend runs on the server (its
    /// `-o rclone.program=`): `ssh` with the server's key and pinned
    /// storage host key under `layout`. Refuses a layout whose paths hold
    /// anything restic's word splitting or a shell would read differently.
    pub(crate) fn program(&self, layout: &Layout) -> Result<String> {
        let key = layout.ssh_key();
        let known_hosts = layout.known_hosts();
        for path in [&key, &known_hosts] {
            if !plain_path(path) {
                return Err(Error::invalid_input(format!(
                    "the path {path:?} on the server cannot be given to restic's rclone program"
                ))
                .with_hint("Use a platform root without spaces, quotes or backslashes"));
            }
        }
        Ok(self.ssh_line(&key, &known_hosts))
    }

    /// The canary's `ssh` command: as [`Self::program`], with the pinned
    /// host key in the file `$kh` the canary script makes, and asking for
    /// `exit 97`, which only a login without a forced command runs.
    pub(crate) fn canary_line(&self, layout: &Layout) -> Result<String> {
        self.program(layout)?;
        Ok(format!(
            "{} exit {NOT_FORCED_STATUS}",
            self.ssh_line(&layout.ssh_key(), "\"$kh\"")
        ))
    }

    /// The storage-side `authorized_keys` line for `server`'s public key
    /// (the text the server's `ssh-keygen -y` printed: checked to be one
    /// public key line, as everything a server sends is untrusted).
    pub(crate) fn authorized_line(&self, public_key: &str, server: &str) -> Result<String> {
        let comment = format!("kastell-onserver-{}", name_piece(server)?);
        rclone_authorized_keys_line(public_key, &self.dir, &comment)
    }

    /// The host pattern known_hosts files use for the storage host.
    fn host_pattern(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// The storage host's pinned keys, from the operator's known_hosts
    /// file `operator_file` (the one the operator's own SFTP login checks
    /// the host against), rewritten to name only this host. Refuses when
    /// the file pins no key for it by name (a hashed entry cannot be read
    /// back), saying how to pin one.
    pub(crate) fn pinned_keys(&self, operator_file: &Path) -> Result<Vec<String>> {
        let pattern = self.host_pattern();
        let hint = format!(
            "Pin the storage host's key under its plain name in {} (for example `ssh-keyscan -p \
             {} {} >> {}`, after checking the fingerprint)",
            operator_file.display(),
            self.port,
            self.host,
            operator_file.display()
        );
        let text = std::fs::read_to_string(operator_file).map_err(|e| {
            Error::io(format!("reading {}", operator_file.display()), e).with_hint(hint.clone())
        })?;
        let keys: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_ascii_whitespace();
                let (hosts, kind, key) = (words.next()?, words.next()?, words.next()?);
                let named = hosts.split(',').any(|h| {
                    h == pattern || (self.port == 22 && h == format!("[{}]:22", self.host))
                });
                let plain = |w: &str| {
                    w.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'+' | b'/' | b'=' | b'-' | b'.' | b'@')
                    })
                };
                (named && plain(kind) && plain(key) && !hosts.starts_with('@'))
                    .then(|| format!("{pattern} {kind} {key}"))
            })
            .collect();
        if keys.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} pins no host key for {pattern}: the server could not check the storage host",
                    operator_file.display()
                ),
            )
            .with_hint(hint));
        }
        Ok(keys)
    }
}

/// The known_hosts file kastell writes on the server: its marker, then
/// the pinned keys.
pub(crate) fn known_hosts_file(server: &str, keys: &[String]) -> String {
    let mut out = format!("{MARKER}: the storage host's pinned key for the backup of {server}.\n");
    for key in keys {
        let _ = writeln!(out, "{key}");
    }
    out
}

/// Whether `path` is absolute and holds only letters, digits and `/._-+`.
fn plain_path(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
}

/// The server's own key under `layout` (made with `ssh-keygen` when it is
/// not there yet; its private half never leaves the server), and returns
/// its public half as `ssh-keygen -y` prints it. Fails, naming the
/// package, when the server has no OpenSSH client.
pub(crate) async fn server_key(root: Root<'_>, layout: &Layout, server: &str) -> Result<String> {
    let key = layout.ssh_key();
    let dir = key.rsplit_once('/').map_or("/", |(d, _)| d);
    let comment = format!("kastell-onserver-{}", name_piece(server)?);
    let script = format!(
        "set -u\numask 077\n\
         for tool in ssh ssh-keygen; do command -v \"$tool\" >/dev/null 2>&1 || {{ echo \"$tool is not installed on the server: the backup logs in to the storage with it (apt-get install -y openssh-client)\" >&2; exit 91; }}; done\n\
         k={key}\n\
         mkdir -p {dir} || exit 92\n\
         if [ ! -e \"$k\" ] && [ ! -L \"$k\" ]; then ssh-keygen -q -t ed25519 -N '' -C {comment} -f \"$k\" >/dev/null || exit 93; fi\n\
         [ -f \"$k\" ] && [ ! -L \"$k\" ] || {{ echo \"$k is not a key file\" >&2; exit 94; }}\n\
         ssh-keygen -y -f \"$k\"\n",
        key = kastell_core::quote(&key),
        dir = kastell_core::quote(dir),
        comment = kastell_core::quote(&comment),
    );
    root.run(&script, None).await.map_err(|e| {
        let message = format!(
            "{server}: making the server's own SSH key failed: {}",
            e.message()
        );
        e.with_message(message)
    })
}

#[cfg(test)]
mod tests {
    use kastell_core::types::PlatformRoot;

    use super::*;

    fn target(text: &str) -> SftpTarget {
        SftpTarget::of(&RepoLocation::parse(text).unwrap()).unwrap()
    }

    #[test]
    fn restic_runs_ssh_with_the_servers_key_and_pinned_host() {
        let layout = Layout::new(PlatformRoot::new("/srv/root").unwrap());
        let t = target("sftp://store@127.0.0.1:2222//srv/fleet/servers/web-1");
        let program = t.program(&layout).unwrap();
        assert_eq!(
            program,
            "ssh -F none -i /srv/root/etc/kastell/onserver/id_ed25519 -o IdentitiesOnly=yes \
             -o BatchMode=yes -o StrictHostKeyChecking=yes \
             -o UserKnownHostsFile=/srv/root/etc/kastell/onserver/known_hosts \
             -o GlobalKnownHostsFile=/dev/null -o ServerAliveInterval=30 -p 2222 -l store 127.0.0.1"
        );
        assert!(
            t.canary_line(&layout)
                .unwrap()
                .ends_with(" 127.0.0.1 exit 97")
        );
        let spaced = Layout::new(PlatformRoot::new("/srv/my root").unwrap());
        assert!(t.program(&spaced).is_err());
        assert!(SftpTarget::of(&RepoLocation::parse("/srv/x").unwrap()).is_none());
    }

    #[test]
    fn only_the_storage_hosts_plain_pins_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            "other.example ssh-ed25519 AAAAother\n\
             [127.0.0.1]:2222,[h]:1 ssh-ed25519 AAAAgood\n\
             @revoked [127.0.0.1]:2222 ssh-ed25519 AAAAbad\n\
             [127.0.0.1]:2222 ssh-ed25519 AAAA$(x)\n\
             |1|abc=|def= ssh-ed25519 AAAAhashed\n",
        )
        .unwrap();
        let t = target("sftp://store@127.0.0.1:2222//srv/fleet");
        assert_eq!(
            t.pinned_keys(&file).unwrap(),
            ["[127.0.0.1]:2222 ssh-ed25519 AAAAgood"]
        );
        let unpinned = target("sftp:store@127.0.0.9:/srv/fleet")
            .pinned_keys(&file)
            .unwrap_err();
        assert_eq!(unpinned.kind(), ErrorKind::NotFound);
        assert!(
            unpinned.hint().unwrap().contains("ssh-keyscan"),
            "{unpinned}"
        );
        let text = known_hosts_file("web-1", &["[h]:1 ssh-ed25519 AAAA".into()]);
        assert!(text.starts_with(MARKER), "{text}");
    }

    #[test]
    fn the_storage_line_confines_the_servers_key_to_its_directory() {
        let t = target("sftp:store@198.51.100.7:/srv/fleet/servers/web-1");
        let line = t
            .authorized_line(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0vq2J7rX0m2oQY2b4o1b1Yb3i9mCkz0O3G8xqf5Y8E x\n",
                "web-1",
            )
            .unwrap();
        assert!(
            line.starts_with(
                "restrict,command=\"rclone serve restic --stdio --append-only /srv/fleet/servers/web-1\" ssh-ed25519 "
            ),
            "{line}"
        );
        assert!(line.ends_with(" kastell-onserver-web-1"), "{line}");
        assert!(t.authorized_line("echo; rm -rf /", "web-1").is_err());
    }
}
