//! What a recovery onto a fresh server needs besides the backup engine:
//! where it goes ([`Target`], `PROVIDER[:SIZE][@REGION]`), the SSH key the
//! new server lets in ([`public_key`]), what to change to cut over
//! ([`dns_pointing_at`]) and what interrupted runs left at a provider ([`leftovers`]).
//!
//! The flow itself (create, wait, install, restore) is the operations'
//! (`ops::recover`), which own the context, the policy and the store.

pub(crate) mod leftovers;

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use kastell_core::{Error, ErrorKind, Result};

use crate::env::Env;
use crate::state::store::ServerRecord;

/// Where a recovered server goes: a provider id and, optionally, its size
/// and region slugs (the provider's defaults otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The provider id (`hetzner`).
    pub provider: String,
    /// The size slug, when given (`cx22`).
    pub size: Option<String>,
    /// The region slug, when given (`fsn1`).
    pub region: Option<String>,
}

/// The longest slug a target accepts.
const MAX_SLUG: usize = 64;

impl Target {
    /// Parses `PROVIDER[:SIZE][@REGION]` (`digitalocean:s-2vcpu-4gb@fra1`).
    /// Refuses an empty part and any character outside lower-case letters,
    /// digits, `.`, `_` and `-`, saying which part was wrong.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let (rest, region) = match text.split_once('@') {
            Some((rest, region)) => (rest, Some(region)),
            None => (text, None),
        };
        let (provider, size) = match rest.split_once(':') {
            Some((provider, size)) => (provider, Some(size)),
            None => (rest, None),
        };
        let slug = |part: &str, what: &str| -> Result<String> {
            let ok = !part.is_empty()
                && part.len() <= MAX_SLUG
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                });
            if ok {
                Ok(part.to_owned())
            } else {
                Err(Error::invalid_input(format!(
                    "the {what} in --to {text:?} is not a slug (lower-case letters, digits, '.', '_', '-'; at most {MAX_SLUG})"
                ))
                .with_hint("Write --to PROVIDER[:SIZE][@REGION], e.g. --to hetzner, --to digitalocean:s-2vcpu-4gb@fra1"))
            }
        };
        Ok(Self {
            provider: slug(provider, "provider")?,
            size: size.map(|s| slug(s, "size")).transpose()?,
            region: region.map(|r| slug(r, "region")).transpose()?,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.provider)?;
        if let Some(size) = &self.size {
            write!(f, ":{size}")?;
        }
        if let Some(region) = &self.region {
            write!(f, "@{region}")?;
        }
        Ok(())
    }
}

/// The private key files kastell logs in with for `record`: its identity
/// file, else `~/.ssh/id_ed25519` then `~/.ssh/id_rsa` (as
/// [`crate::engine::remote`] connects).
fn identity_files(record: &ServerRecord, env: &Env) -> Vec<PathBuf> {
    if let Some(file) = record.ssh.as_ref().and_then(|s| s.identity_file.clone()) {
        return vec![PathBuf::from(file)];
    }
    match env.get_nonempty("HOME") {
        Some(home) => {
            let ssh = PathBuf::from(home).join(".ssh");
            vec![ssh.join("id_ed25519"), ssh.join("id_rsa")]
        }
        None => Vec::new(),
    }
}

/// The OpenSSH public key line of the key kastell reaches `record` with
/// (its identity file's `.pub`, else the default key's): what a new server
/// lets root log in with, so kastell reaches it as it reached the old one.
/// Refuses when there is none, or when the file is not one public key line.
pub(crate) fn public_key(record: &ServerRecord, env: &Env) -> Result<String> {
    let candidates = identity_files(record, env);
    for private in &candidates {
        let mut name = private.clone().into_os_string();
        name.push(".pub");
        let path = PathBuf::from(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        return check_public_key(&text).map_err(|e| {
            let message = format!("{}: {}", path.display(), e.message());
            e.with_message(message)
        });
    }
    let tried: Vec<String> = candidates
        .iter()
        .map(|p| format!("{}.pub", p.display()))
        .collect();
    Err(Error::new(
        ErrorKind::ConfigInvalid,
        format!(
            "no public key to give the new server: none of {} exists",
            if tried.is_empty() {
                "the default keys (HOME is not set)".to_owned()
            } else {
                tried.join(", ")
            }
        ),
    )
    .with_hint("Put the public half of the key kastell logs in with beside it (ssh-keygen -y -f KEY > KEY.pub)"))
}

/// The one line of a public key file (its format is checked with the
/// rest of the new server's spec, [`kastell_core::types::ServerSpec::validate`]).
fn check_public_key(text: &str) -> Result<String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match (lines.next(), lines.next()) {
        (Some(line), None) => Ok(line.to_owned()),
        _ => Err(Error::config_invalid(
            "a public key file must hold exactly one key line",
        )),
    }
}

/// The variable the sandbox sets to the directory of its fake hosts' roots
/// (`<dir>/<address>` is a host's `/`): a recovered server's record is
/// confined to the root of its new address there.
pub(crate) const SANDBOX_ROOTS_VAR: &str = "KASTELL_SANDBOX_ROOTS";

/// How long resolving the domains may take in all.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// Which of `domains` resolve (here, now) to `old_ip`: the DNS records to
/// change to cut over. A name that does not resolve, or not in time, is
/// left out. Nothing is changed in DNS.
pub(crate) async fn dns_pointing_at(domains: Vec<String>, old_ip: IpAddr) -> Vec<String> {
    let lookup = tokio::task::spawn_blocking(move || {
        domains
            .into_iter()
            .filter(|domain| {
                (domain.as_str(), 443)
                    .to_socket_addrs()
                    .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == old_ip))
            })
            .collect::<Vec<_>>()
    });
    match tokio::time::timeout(RESOLVE_LIMIT, lookup).await {
        Ok(Ok(found)) => found,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::SshSettings;
    use std::net::Ipv4Addr;

    #[test]
    fn targets_parse_with_and_without_size_and_region() {
        let t = Target::parse("hetzner").unwrap();
        assert_eq!(
            (t.provider.as_str(), &t.size, &t.region),
            ("hetzner", &None, &None)
        );
        let t = Target::parse("digitalocean:s-2vcpu-4gb@fra1").unwrap();
        assert_eq!(t.size.as_deref(), Some("s-2vcpu-4gb"));
        assert_eq!(t.region.as_deref(), Some("fra1"));
        assert_eq!(t.to_string(), "digitalocean:s-2vcpu-4gb@fra1");
        let t = Target::parse("vultr@ams").unwrap();
        assert_eq!((t.size, t.region.as_deref()), (None, Some("ams")));
        for bad in [
            "", ":cx22", "hetzner:", "hetzner@", "Hetzner", "het zner", "a:b:c", "x;rm",
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(
                err.hint().unwrap_or_default().contains("--to PROVIDER"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_public_key_file_holds_one_line() {
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB+x kastell@host";
        assert_eq!(check_public_key(&format!("\n{line}\n")).unwrap(), line);
        for bad in [
            "",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n",
            "a\nb\n",
        ] {
            assert!(check_public_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_public_key_is_the_identity_files_and_a_missing_one_says_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_test");
        std::fs::write(key.with_extension("pub"), "ssh-ed25519 AAAAkey me\n").unwrap();
        let mut record = ServerRecord::new("1", "web", "203.0.113.1");
        record.ssh = Some(SshSettings {
            identity_file: Some(key.display().to_string()),
            ..SshSettings::default()
        });
        let env = Env::from_pairs([("HOME", "/nonexistent")]);
        assert_eq!(public_key(&record, &env).unwrap(), "ssh-ed25519 AAAAkey me");
        record.ssh = None;
        let err = public_key(&record, &env).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        assert!(
            err.message().contains("/nonexistent/.ssh/id_ed25519.pub"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn only_names_resolving_to_the_old_address_are_listed() {
        let found = dns_pointing_at(
            vec!["localhost".into(), "name.invalid".into()],
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )
        .await;
        assert_eq!(found, ["localhost"]);
        let none = dns_pointing_at(vec!["localhost".into()], "203.0.113.9".parse().unwrap()).await;
        assert!(none.is_empty());
    }
}
