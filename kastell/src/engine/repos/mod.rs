//! Backup repositories the operator has configured: their names, where
//! they are and where their password is (never the password itself), and
//! sending a local backup into one.
//!
//! The list is `repositories.json` in the kastell directory, written
//! atomically with mode 0600. A repository is opened with the first line
//! of its password file, which must not be readable by group or others;
//! S3 keys come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, as
//! for restic. An SFTP repository is logged in to with the private key
//! file in `KASTELL_SFTP_IDENTITY` (required) and its server's host key
//! must be pinned in the known_hosts file in `KASTELL_SFTP_KNOWN_HOSTS`
//! (default `~/.ssh/known_hosts`, OpenSSH's): see [`sftp_credentials`].
//! Destructive work (`repo prune`, and `repo init`, which makes the
//! directories an append-only login cannot) logs in with the operator's
//! credential instead when it is set (`KASTELL_SFTP_PRUNE_IDENTITY`,
//! `KASTELL_PRUNE_AWS_*`): see [`operator_credentials`] and
//! [`append_only`].

pub(crate) mod append_only;
mod catalog;
mod credentials;
mod digest;
mod feed;
pub(crate) mod local;
mod pull;
mod push;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::{BackupRepository, KeepPolicy, RepoLocation};
use serde::{Deserialize, Serialize};

use crate::engine::backup::check_component;
use crate::env::Env;
use crate::state::store::write_atomic;

pub(crate) use catalog::{RepoBackup, backups_of, find_backup};
pub(crate) use credentials::{
    PRUNE_AWS_ACCESS_KEY_ID_VAR, PRUNE_AWS_SECRET_ACCESS_KEY_VAR, SFTP_IDENTITY_VAR,
    SFTP_PRUNE_IDENTITY_VAR, operator_credentials,
};
pub(crate) use pull::{pull, verify};
pub use push::{PushReport, finish_stream, push};

/// The file, in the kastell directory, listing the repositories.
pub(crate) const REPOSITORIES_FILE: &str = "repositories.json";

/// One configured repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RepoConfig {
    /// The name commands refer to it by.
    pub name: String,
    /// Where it is (`/path`, `local:/path`, `s3:https://host/bucket/prefix`
    /// or `sftp:user@host:/path`).
    pub location: RepoLocation,
    /// The file whose first line is its password.
    pub password_file: PathBuf,
    /// How many snapshots `kastell repo prune` keeps, per server.
    #[serde(default, skip_serializing_if = "KeepPolicy::is_empty")]
    pub keep: KeepPolicy,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepoFile {
    repositories: Vec<RepoConfig>,
    /// Server name (or `*` for every server) to the repository its
    /// backups also go to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    defaults: BTreeMap<String, String>,
}

/// The key of [`RepoRegistry::set_default`] that applies to every server
/// without a default of its own.
pub(crate) const EVERY_SERVER: &str = "*";

/// The configured repositories of one kastell directory.
#[derive(Debug)]
pub(crate) struct RepoRegistry {
    path: PathBuf,
    repos: Vec<RepoConfig>,
    defaults: BTreeMap<String, String>,
}

impl RepoRegistry {
    /// Reads the list in `kastell_dir` (empty when there is none). Refuses
    /// a file that is not valid, saying where.
    pub(crate) fn load(kastell_dir: &Path) -> Result<Self> {
        let path = kastell_dir.join(REPOSITORIES_FILE);
        let file = match crate::state::store::read_regular(&path)? {
            Some(bytes) => serde_json::from_slice::<RepoFile>(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("{} is not a valid repository list: {e}", path.display()),
                )
                .with_hint("Fix or remove the file, then add the repositories again")
            })?,
            None => RepoFile::default(),
        };
        Ok(Self {
            path,
            repos: file.repositories,
            defaults: file.defaults,
        })
    }

    /// The repository `server`'s backups also go to: its own default, else
    /// the default for every server, else none. A default naming a
    /// repository no longer configured is `NotFound`, saying how to fix it.
    pub(crate) fn default_for(&self, server: &str) -> Result<Option<&RepoConfig>> {
        let Some(name) = self
            .defaults
            .get(server)
            .or_else(|| self.defaults.get(EVERY_SERVER))
        else {
            return Ok(None);
        };
        self.get(name).map(Some).map_err(|e| {
            e.with_hint(format!(
                "The default repository of {server} is gone; set another with \
                 `kastell repo default NAME --server {server}` or clear it with \
                 `kastell repo default --clear --server {server}`"
            ))
        })
    }

    /// The defaults: server name (or [`EVERY_SERVER`]) to repository name.
    pub(crate) fn defaults(&self) -> &BTreeMap<String, String> {
        &self.defaults
    }

    /// Makes `repo` the default of `server` (or of every server, with
    /// [`EVERY_SERVER`]), or clears it with `None`, and writes the list.
    /// Refuses a repository that is not configured.
    pub(crate) fn set_default(&mut self, server: &str, repo: Option<&str>) -> Result<()> {
        match repo {
            Some(name) => {
                self.get(name)?;
                self.defaults.insert(server.to_owned(), name.to_owned());
            }
            None => {
                self.defaults.remove(server);
            }
        }
        self.save()
    }

    /// Every configured repository, in the order added.
    pub(crate) fn all(&self) -> &[RepoConfig] {
        &self.repos
    }

    /// The repository called `name`; `NotFound` naming the configured ones.
    pub(crate) fn get(&self, name: &str) -> Result<&RepoConfig> {
        self.repos.iter().find(|r| r.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.repos.iter().map(|r| r.name.as_str()).collect();
            Error::not_found(format!("no repository called {name:?}")).with_hint(
                if known.is_empty() {
                    "Create one with `kastell repo init NAME LOCATION --password-file FILE`"
                        .to_owned()
                } else {
                    format!("Configured: {}", known.join(", "))
                },
            )
        })
    }

    /// Adds `config` and writes the list. Refuses a name in use or that is
    /// not a plain name.
    pub(crate) fn add(&mut self, config: RepoConfig) -> Result<()> {
        check_component("repository name", &config.name)?;
        if self.repos.iter().any(|r| r.name == config.name) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "a repository called {:?} is already configured",
                    config.name
                ),
            ));
        }
        config.keep.validate()?;
        self.repos.push(config);
        self.save()
    }

    /// Refuses `name` when it is not a plain name or is already
    /// configured (`AlreadyExists`).
    pub(crate) fn check_free(&self, name: &str) -> Result<()> {
        check_component("repository name", name)?;
        if self.repos.iter().any(|r| r.name == name) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a repository called {name:?} is already configured"),
            ));
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let file = RepoFile {
            repositories: self.repos.clone(),
            defaults: self.defaults.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::unexpected(format!("encoding the repository list: {e}")))?;
        write_atomic(&self.path, &bytes)
    }
}

/// Reads the password from the first line of `path`. Refuses a missing or
/// empty file and one readable by group or others.
pub(crate) fn read_password(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::io(format!("reading the password file {}", path.display()), e)
            .with_hint("Write the repository password on the first line of that file (mode 0600)")
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the password file {} can be read by other users",
                path.display()
            ),
        )
        .with_hint(format!("Run `chmod 600 {}`", path.display())));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the password file {}", path.display()), e))?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        return Err(
            Error::invalid_input(format!("the password file {} is empty", path.display()))
                .with_hint("Write the repository password on its first line"),
        );
    }
    Ok(password)
}

/// Opens the repository `config` describes with the agent-facing
/// credential. Blocking: call it from a blocking thread.
pub(crate) fn open(config: &RepoConfig, env: &Env) -> Result<BackupRepository> {
    let password = read_password(&config.password_file)?;
    let credentials = credentials::backend_credentials(&config.location, env)?;
    BackupRepository::open_with(&config.location, &password, &credentials)
}

/// Opens the repository `config` describes with the operator's
/// credential for destructive work ([`operator_credentials`]), and a note
/// when the agent-facing one stands in for it. Blocking.
pub(crate) fn open_as_operator(
    config: &RepoConfig,
    env: &Env,
) -> Result<(BackupRepository, Option<String>)> {
    let password = read_password(&config.password_file)?;
    let (credentials, note) = operator_credentials(&config.location, env)?;
    let repo = BackupRepository::open_with(&config.location, &password, &credentials)?;
    Ok((repo, note))
}

/// Creates the repository `config` describes, with the operator's
/// credential when it is set (its directories must be made by a login
/// that may make them: an append-only one may not). Blocking.
pub(crate) fn init(config: &RepoConfig, env: &Env) -> Result<BackupRepository> {
    let password = read_password(&config.password_file)?;
    let (credentials, _) = operator_credentials(&config.location, env)?;
    BackupRepository::init_with(&config.location, &password, &credentials)
}

/// Opens the repository `config` describes on a blocking thread and runs
/// `work` with it there (the repository's API blocks).
pub(crate) async fn with_open<T: Send + 'static>(
    config: &RepoConfig,
    env: &Env,
    work: impl FnOnce(BackupRepository) -> Result<T> + Send + 'static,
) -> Result<T> {
    let env = env.clone();
    let config = config.clone();
    let name = config.name.clone();
    off_runtime(move || work(open(&config, &env)?))
        .await
        .map_err(|e| naming_repository(e, &name))
}

/// `error` with the repository's name in a hint that says `repo check
/// NAME` (the repository crate does not know its name).
fn naming_repository(error: Error, name: &str) -> Error {
    match error.hint() {
        Some(hint) if hint.contains("repo check NAME") => {
            let hint = hint.replace("repo check NAME", &format!("repo check {name}"));
            error.with_hint(hint)
        }
        _ => error,
    }
}

/// Runs `work` on a blocking thread.
pub(crate) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::unexpected(format!("the repository task failed: {e}")))?
}
