//! What repositories are logged in with, from the environment: the
//! agent-facing credential every backup, listing and restore uses, and the
//! operator's credential for destructive work (`repo prune`, `repo init`).
//!
//! | storage | agent-facing (append-only on the server) | operator (prune) |
//! |---|---|---|
//! | SFTP | `KASTELL_SFTP_IDENTITY` | `KASTELL_SFTP_PRUNE_IDENTITY` |
//! | S3 | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` | `KASTELL_PRUNE_AWS_ACCESS_KEY_ID`, `KASTELL_PRUNE_AWS_SECRET_ACCESS_KEY` |
//!
//! Only the CLI's `repo prune` and `repo init` call
//! [`operator_credentials`]; nothing on the MCP surface reads the
//! operator's variables. The server enforces the difference: the agent's
//! login cannot delete or overwrite (see `kastell_repo::append_only`).

use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};
use kastell_repo::RepoLocation;
use kastell_repo::backend::{BackendCredentials, S3Credentials, SftpCredentials};

use crate::env::Env;

/// The variable naming the private key file SFTP repositories are logged
/// in with (the agent-facing key: backups, listings, restores).
pub(crate) const SFTP_IDENTITY_VAR: &str = "KASTELL_SFTP_IDENTITY";

/// The variable naming the known_hosts file that pins the host keys of
/// SFTP repositories' servers.
pub(crate) const SFTP_KNOWN_HOSTS_VAR: &str = "KASTELL_SFTP_KNOWN_HOSTS";

/// The variable naming the operator's private key file for SFTP
/// repositories: the login that may remove files (`repo prune`).
pub(crate) const SFTP_PRUNE_IDENTITY_VAR: &str = "KASTELL_SFTP_PRUNE_IDENTITY";

/// The operator's S3 access key id (`repo prune`).
pub(crate) const PRUNE_AWS_ACCESS_KEY_ID_VAR: &str = "KASTELL_PRUNE_AWS_ACCESS_KEY_ID";

/// The operator's S3 secret (`repo prune`).
pub(crate) const PRUNE_AWS_SECRET_ACCESS_KEY_VAR: &str = "KASTELL_PRUNE_AWS_SECRET_ACCESS_KEY";

/// S3 keys from the environment (both or neither).
pub(crate) fn s3_credentials(env: &Env) -> Option<S3Credentials> {
    s3_pair(env, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
}

fn s3_pair(env: &Env, id: &str, secret: &str) -> Option<S3Credentials> {
    Some(S3Credentials {
        access_key_id: env.get_nonempty(id)?,
        secret_access_key: env.get_nonempty(secret)?,
    })
}

/// The SSH login for SFTP repositories from the environment: the private
/// key file in `KASTELL_SFTP_IDENTITY` (ed25519, ECDSA or RSA, without a
/// passphrase) and the known_hosts file in `KASTELL_SFTP_KNOWN_HOSTS`,
/// by default `~/.ssh/known_hosts` (OpenSSH's, which `ssh` and restic
/// use; kastell's server records pin fingerprints, not a known_hosts
/// file). Refuses when `KASTELL_SFTP_IDENTITY` is unset (no key is
/// guessed, `~/.ssh/id_ed25519` included), and when the known_hosts
/// default is needed but `HOME` is not set.
pub(crate) fn sftp_credentials(env: &Env) -> Result<SftpCredentials> {
    let identity = env.get_nonempty(SFTP_IDENTITY_VAR).ok_or_else(|| {
        Error::config_invalid(format!(
            "{SFTP_IDENTITY_VAR} is not set: an SFTP repository needs the SSH key to log in with"
        ))
        .with_hint(format!(
            "Set {SFTP_IDENTITY_VAR} to the private key file whose public half is in the \
             repository server's authorized_keys (kastell does not pick a key for you)"
        ))
    })?;
    sftp_login(env, &identity)
}

/// The login with the key file `identity` and the known_hosts file of
/// [`sftp_credentials`].
fn sftp_login(env: &Env, identity: &str) -> Result<SftpCredentials> {
    let known_hosts = match env.get_nonempty(SFTP_KNOWN_HOSTS_VAR) {
        Some(path) => PathBuf::from(path),
        None => match env.get_nonempty("HOME") {
            Some(home) => Path::new(&home).join(".ssh").join("known_hosts"),
            None => {
                return Err(Error::config_invalid(format!(
                    "{SFTP_KNOWN_HOSTS_VAR} is not set and neither is HOME (for ~/.ssh/known_hosts)"
                ))
                .with_hint(format!(
                    "Set {SFTP_KNOWN_HOSTS_VAR} to the known_hosts file that pins the server's host key"
                )));
            }
        },
    };
    let absolute = |path: PathBuf| {
        std::path::absolute(&path)
            .map_err(|e| Error::io(format!("resolving {}", path.display()), e))
    };
    Ok(SftpCredentials {
        identity_file: absolute(PathBuf::from(identity))?,
        known_hosts: absolute(known_hosts)?,
    })
}

/// What the storage at `location` is logged in with for everything but
/// destructive work, from the environment: S3 keys when set, and the SFTP
/// login (required) for an SFTP location only.
pub(super) fn backend_credentials(
    location: &RepoLocation,
    env: &Env,
) -> Result<BackendCredentials> {
    Ok(BackendCredentials {
        s3: s3_credentials(env),
        sftp: match location {
            RepoLocation::Sftp { .. } => Some(sftp_credentials(env)?),
            _ => None,
        },
    })
}

/// The operator's credential for destructive work on `location`
/// (`repo prune`, `repo init`), and a note when there is none and the
/// agent-facing credential stands in (an append-only login then refuses
/// the removals; the note says which variable to set). A local directory
/// needs none. Refuses half an S3 pair.
pub(crate) fn operator_credentials(
    location: &RepoLocation,
    env: &Env,
) -> Result<(BackendCredentials, Option<String>)> {
    let fallback = |missing: &str, agent: &str| {
        Ok((
            backend_credentials(location, env)?,
            Some(format!(
                "{missing} is not set: using the agent-facing {agent} instead (a server that \
                 makes that login append-only refuses removals and new directories)"
            )),
        ))
    };
    match location {
        RepoLocation::Local(_) => Ok((BackendCredentials::default(), None)),
        RepoLocation::Sftp { .. } => match env.get_nonempty(SFTP_PRUNE_IDENTITY_VAR) {
            Some(identity) => Ok((
                BackendCredentials {
                    s3: None,
                    sftp: Some(sftp_login(env, &identity)?),
                },
                None,
            )),
            None => fallback(SFTP_PRUNE_IDENTITY_VAR, SFTP_IDENTITY_VAR),
        },
        RepoLocation::S3 { .. } => {
            let id = env.get_nonempty(PRUNE_AWS_ACCESS_KEY_ID_VAR);
            let secret = env.get_nonempty(PRUNE_AWS_SECRET_ACCESS_KEY_VAR);
            match (id, secret) {
                (Some(access_key_id), Some(secret_access_key)) => Ok((
                    BackendCredentials::s3(Some(&S3Credentials {
                        access_key_id,
                        secret_access_key,
                    })),
                    None,
                )),
                (None, None) => fallback(PRUNE_AWS_ACCESS_KEY_ID_VAR, "AWS_ACCESS_KEY_ID"),
                _ => Err(Error::config_invalid(format!(
                    "only one of {PRUNE_AWS_ACCESS_KEY_ID_VAR} and \
                     {PRUNE_AWS_SECRET_ACCESS_KEY_VAR} is set"
                ))
                .with_hint("Set both to the operator's S3 key, or neither")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sftp() -> RepoLocation {
        RepoLocation::parse("sftp:backup@198.51.100.7:/srv/repo").unwrap()
    }

    #[test]
    fn the_operator_key_is_used_when_set_and_the_fallback_is_said() {
        let env = Env::from_pairs([
            (SFTP_IDENTITY_VAR, "/keys/agent"),
            (SFTP_PRUNE_IDENTITY_VAR, "/keys/operator"),
            (SFTP_KNOWN_HOSTS_VAR, "/keys/known_hosts"),
        ]);
        let (credentials, note) = operator_credentials(&sftp(), &env).unwrap();
        assert_eq!(
            credentials.sftp.unwrap().identity_file,
            PathBuf::from("/keys/operator")
        );
        assert_eq!(note, None);
        let agent = backend_credentials(&sftp(), &env).unwrap();
        assert_eq!(
            agent.sftp.unwrap().identity_file,
            PathBuf::from("/keys/agent")
        );

        let env = Env::from_pairs([
            (SFTP_IDENTITY_VAR, "/keys/agent"),
            (SFTP_KNOWN_HOSTS_VAR, "/keys/known_hosts"),
        ]);
        let (credentials, note) = operator_credentials(&sftp(), &env).unwrap();
        assert_eq!(
            credentials.sftp.unwrap().identity_file,
            PathBuf::from("/keys/agent")
        );
        assert!(note.unwrap().contains(SFTP_PRUNE_IDENTITY_VAR));
    }

    #[test]
    fn s3_operator_keys_come_in_pairs() {
        let s3 = RepoLocation::parse("s3:https://s3.example.com/bucket/kastell").unwrap();
        let env = Env::from_pairs([
            ("AWS_ACCESS_KEY_ID", "agent"),
            ("AWS_SECRET_ACCESS_KEY", "agent-secret"),
            (PRUNE_AWS_ACCESS_KEY_ID_VAR, "operator"),
            (PRUNE_AWS_SECRET_ACCESS_KEY_VAR, "operator-secret"),
        ]);
        let (credentials, note) = operator_credentials(&s3, &env).unwrap();
        assert_eq!(credentials.s3.unwrap().access_key_id, "operator");
        assert_eq!(note, None);
        let half = Env::from_pairs([(PRUNE_AWS_ACCESS_KEY_ID_VAR, "operator")]);
        let error = operator_credentials(&s3, &half).unwrap_err();
        assert!(error.message().contains("only one"), "{error}");
        assert!(!error.to_string().contains("operator-secret"));
    }
}
