//! The SFTP backend's host key pins: a known_hosts file (OpenSSH's
//! format) read into libssh2's known-hosts sets, one per key type, with
//! its `@revoked` keys apart, and the `ssh-keyscan` hint that pins a
//! server. Nothing here trusts a key on first use.

use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};
use ssh2::{CheckResult, KnownHostFileKind, KnownHosts, Session};

use crate::location::DEFAULT_SFTP_PORT;

/// The `ssh-keyscan` command that pins `host:port` as ssh names it.
pub(super) fn keyscan_command(host: &str, port: u16) -> String {
    if port == DEFAULT_SFTP_PORT {
        format!("ssh-keyscan {host}")
    } else {
        format!("ssh-keyscan -p {port} {host}")
    }
}

/// The part of `/etc/ssh/ssh_host_<part>_key.pub` for a key type.
pub(super) fn host_key_file_type(key_type: &str) -> &'static str {
    match key_type {
        "ssh-rsa" => "rsa",
        "ssh-dss" => "dsa",
        t if t.starts_with("ecdsa-") => "ecdsa",
        _ => "ed25519",
    }
}

/// The host key algorithms that present a key of the known_hosts types
/// `types`, strongest first as libssh2 and OpenSSH order them.
pub(super) fn host_key_methods(types: &[String]) -> String {
    let order: [(&str, &[&str]); 5] = [
        ("ssh-ed25519", &["ssh-ed25519"]),
        ("ecdsa-sha2-nistp256", &["ecdsa-sha2-nistp256"]),
        ("ecdsa-sha2-nistp384", &["ecdsa-sha2-nistp384"]),
        ("ecdsa-sha2-nistp521", &["ecdsa-sha2-nistp521"]),
        ("ssh-rsa", &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
    ];
    order
        .iter()
        .filter(|(name, _)| types.iter().any(|t| t == name))
        .flat_map(|(_, methods)| methods.iter().copied())
        .collect::<Vec<_>>()
        .join(",")
}

/// The lines of a known_hosts file, sorted by what they are for.
#[derive(Debug)]
pub(super) struct Pins {
    /// `(key type, line without marker)` of every plain entry.
    entries: Vec<(String, String)>,
    /// `(key type, key)` of every `@revoked` entry.
    revoked: Vec<(String, String)>,
}

impl Pins {
    /// Reads `path`, whose hint says to pin the server with `keyscan`.
    /// Refuses a file that is missing or unreadable; skips
    /// `@cert-authority` lines (certificates are not supported, so a host
    /// only they vouch for is unknown).
    pub(super) fn read(path: &Path, keyscan: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("cannot read the known_hosts file {}: {e}", path.display()),
            )
            .with_source(e)
            .with_provider("sftp")
            .with_hint(format!(
                "Pin the server's host key in that file first: {keyscan} >> {}, after checking \
                 the fingerprint on the server's console",
                path.display()
            ))
        })?;
        let mut pins = Self {
            entries: Vec::new(),
            revoked: Vec::new(),
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (marker, entry) = match line.strip_prefix('@') {
                Some(marked) => match marked.split_once(char::is_whitespace) {
                    Some((marker, entry)) => (Some(marker), entry.trim_start()),
                    None => continue,
                },
                None => (None, line),
            };
            let mut fields = entry.split_whitespace();
            let (Some(_hosts), Some(key_type), Some(key)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            match marker {
                None => pins.entries.push((key_type.to_owned(), entry.to_owned())),
                Some("revoked") => pins.revoked.push((key_type.to_owned(), key.to_owned())),
                Some(other) => {
                    tracing::debug!("{}: skipping an @{other} line", path.display());
                }
            }
        }
        Ok(pins)
    }

    /// The entries in libssh2's known-hosts sets on `session`, one per key
    /// type so a key is only compared with keys of its own type. Every
    /// revoked key is revoked for `name`, whatever host its line names.
    /// Lines libssh2 cannot read (key types it does not know) are skipped.
    pub(super) fn load(&self, session: &Session, name: &str) -> Result<LoadedPins> {
        let new_set = || {
            session
                .known_hosts()
                .map_err(|e| Error::unexpected(format!("cannot read known hosts: {}", e.message())))
        };
        let mut by_type: Vec<(String, KnownHosts)> = Vec::new();
        for (key_type, line) in &self.entries {
            let index = match by_type.iter().position(|(t, _)| t == key_type) {
                Some(index) => index,
                None => {
                    by_type.push((key_type.clone(), new_set()?));
                    by_type.len() - 1
                }
            };
            if let Some((_, hosts)) = by_type.get_mut(index) {
                if hosts.read_str(line, KnownHostFileKind::OpenSSH).is_err() {
                    tracing::debug!("skipping a known_hosts line of key type {key_type}");
                }
            }
        }
        let mut revoked = new_set()?;
        for (key_type, key) in &self.revoked {
            let line = format!("{name} {key_type} {key}");
            if revoked.read_str(&line, KnownHostFileKind::OpenSSH).is_err() {
                tracing::debug!("skipping a revoked known_hosts key of type {key_type}");
            }
        }
        Ok(LoadedPins { by_type, revoked })
    }
}

/// A known_hosts file loaded into libssh2.
pub(super) struct LoadedPins {
    pub(super) by_type: Vec<(String, KnownHosts)>,
    pub(super) revoked: KnownHosts,
}

impl LoadedPins {
    /// The key types pinned for `name`. libssh2 answers "mismatch" for a
    /// host it has an entry for whenever the key differs, so checking a
    /// key no host has tells whether the host is in a set.
    pub(super) fn pinned_types(&self, name: &str) -> Vec<String> {
        self.by_type
            .iter()
            .filter(|(_, hosts)| matches!(hosts.check(name, b"\0"), CheckResult::Mismatch))
            .map(|(key_type, _)| key_type.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_methods_follow_the_pinned_types_strongest_first() {
        let types = vec!["ssh-rsa".to_owned(), "ssh-ed25519".to_owned()];
        assert_eq!(
            host_key_methods(&types),
            "ssh-ed25519,rsa-sha2-512,rsa-sha2-256,ssh-rsa"
        );
        assert_eq!(host_key_methods(&[]), "");
    }

    #[test]
    fn known_hosts_lines_are_sorted_by_marker() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(
            &file,
            "# a comment\n\n\
             [h]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA key\n\
             @revoked * ssh-rsa AAAAB3Nza\n\
             @cert-authority *.example.com ssh-ed25519 AAAAC3Nz\n\
             broken-line\n",
        )
        .unwrap();
        let pins = Pins::read(&file, "ssh-keyscan h").unwrap();
        assert_eq!(pins.entries.len(), 1);
        assert_eq!(pins.entries[0].0, "ssh-ed25519");
        assert_eq!(
            pins.revoked,
            vec![("ssh-rsa".to_owned(), "AAAAB3Nza".to_owned())]
        );
        let missing = Pins::read(&dir.path().join("absent"), "ssh-keyscan h").unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::ConfigInvalid, "{missing}");
        assert!(missing.hint().unwrap().contains("ssh-keyscan h >> "));
    }

    #[test]
    fn keyscan_names_the_port_only_when_it_is_not_22() {
        assert_eq!(keyscan_command("nas", 22), "ssh-keyscan nas");
        assert_eq!(keyscan_command("nas", 2222), "ssh-keyscan -p 2222 nas");
    }
}
