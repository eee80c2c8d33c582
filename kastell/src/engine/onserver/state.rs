//! What the operator's machine keeps about on-server backups:
//! `onserver.json` in the kastell directory (which server writes into
//! which per-server repository, on what calendar), each server's
//! repository password in `onserver/<server>.password` (0600, generated
//! once), and each per-server repository registered in
//! `repositories.json` as `<repo>-<server>` so `repo snapshots`, `repo
//! check` and `repo prune` work on it like on any other.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::RepoLocation;
use kastell_repo::backend::S3Credentials;
use serde::{Deserialize, Serialize};

use super::files::Starter;
use crate::engine::repos::{RepoConfig, RepoRegistry};
use crate::engine::schedule::unit::name_piece;
use crate::state::store::write_atomic;

/// The file, in the kastell directory, listing the on-server backups.
pub(crate) const ONSERVER_FILE: &str = "onserver.json";

/// The directory, in the kastell directory, of the per-server passwords.
pub(crate) const PASSWORD_DIR: &str = "onserver";

/// One server's on-server backup, as installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct OnServer {
    /// The shared repository it was installed from.
    pub repo: String,
    /// The per-server repository's name in `repositories.json`.
    pub repository: String,
    /// When it runs (systemd calendar).
    pub calendar: String,
    /// How the server starts it.
    pub starter: Starter,
    /// Whether a ping URL was configured (never the URL).
    pub ping: bool,
    /// When it was installed (RFC 3339).
    pub installed_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    servers: BTreeMap<String, OnServer>,
}

/// The on-server backups of one kastell directory.
#[derive(Debug)]
pub(crate) struct OnServerList {
    path: PathBuf,
    servers: BTreeMap<String, OnServer>,
}

impl OnServerList {
    /// Reads the list in `kastell_dir` (empty when there is none); refuses
    /// a file that is not valid, saying where.
    pub(crate) fn load(kastell_dir: &Path) -> Result<Self> {
        let path = kastell_dir.join(ONSERVER_FILE);
        let file = match crate::state::store::read_regular(&path)? {
            Some(bytes) => serde_json::from_slice::<File>(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!("{} is not a valid on-server list: {e}", path.display()),
                )
                .with_hint("Fix or remove the file, then install the on-server backups again")
            })?,
            None => File::default(),
        };
        Ok(Self {
            path,
            servers: file.servers,
        })
    }

    /// Every server with an on-server backup, by name.
    pub(crate) fn all(&self) -> &BTreeMap<String, OnServer> {
        &self.servers
    }

    /// Records (or replaces) `server`'s entry and writes the list.
    pub(crate) fn set(&mut self, server: &str, entry: OnServer) -> Result<()> {
        self.servers.insert(server.to_owned(), entry);
        self.save()
    }

    /// Forgets `server` and writes the list.
    pub(crate) fn forget(&mut self, server: &str) -> Result<()> {
        self.servers.remove(server);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&File {
            servers: self.servers.clone(),
        })
        .map_err(|e| Error::unexpected(format!("encoding the on-server list: {e}")))?;
        write_atomic(&self.path, &bytes)
    }
}

/// `shared`'s location with `servers/<server>` added to its S3 prefix or
/// SFTP directory: the per-server repository. Refuses a local directory,
/// which has no server to refuse a delete.
pub(crate) fn server_location(shared: &RepoConfig, server: &str) -> Result<RepoLocation> {
    let piece = name_piece(server)?;
    match &shared.location {
        RepoLocation::S3 {
            endpoint,
            bucket,
            prefix,
        } => {
            let prefix = if prefix.is_empty() {
                format!("servers/{piece}")
            } else {
                format!("{prefix}/servers/{piece}")
            };
            Ok(RepoLocation::S3 {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                prefix,
            })
        }
        RepoLocation::Sftp {
            user,
            host,
            port,
            path,
        } => Ok(RepoLocation::Sftp {
            user: user.clone(),
            host: host.clone(),
            port: *port,
            path: path.join("servers").join(piece),
        }),
        RepoLocation::Local(_) => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "repository {} is a local directory: on-server backups write into S3 or SFTP \
                 storage",
                shared.name
            ),
        )
        .with_hint(
            "Add an S3 repository (`kastell repo init NAME s3:https://host/bucket/prefix`) whose \
             storage gives each server a login limited to its own prefix, or an SFTP one \
             (`sftp:user@host:/srv/kastell/fleet`) whose host has rclone (README, \"On-server \
             backups\")",
        )),
    }
}

/// The per-server repository's name in `repositories.json`.
pub(crate) fn repository_name(shared: &str, server: &str) -> Result<String> {
    Ok(format!("{shared}-{}", name_piece(server)?))
}

/// `server`'s repository password file, created with a new random password
/// (32 bytes, hex) when missing. Refuses one that other users can read.
pub(crate) fn password_file(kastell_dir: &Path, server: &str) -> Result<PathBuf> {
    let dir = kastell_dir.join(PASSWORD_DIR);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(format!("securing {}", dir.display()), e))?;
    let path = dir.join(format!("{}.password", name_piece(server)?));
    if !path.exists() {
        let bytes = crate::state::approval::random_bytes(32)?;
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_atomic(&path, format!("{password}\n").as_bytes())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(format!("securing {}", path.display()), e))?;
    }
    Ok(path)
}

/// The per-server repository of `server` under `shared`, registered in
/// `registry` when it is not yet (an entry of that name elsewhere is
/// refused).
pub(crate) fn register(
    registry: &mut RepoRegistry,
    shared: &RepoConfig,
    server: &str,
    password_file: PathBuf,
) -> Result<RepoConfig> {
    let config = RepoConfig {
        name: repository_name(&shared.name, server)?,
        location: server_location(shared, server)?,
        password_file,
        keep: shared.keep,
    };
    match registry.get(&config.name) {
        Ok(existing) if existing.location == config.location => Ok(existing.clone()),
        Ok(existing) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "a repository called {} is already configured at {}",
                config.name, existing.location
            ),
        )
        .with_hint("Rename that repository, or use another shared repository")),
        Err(_) => {
            registry.add(config.clone())?;
            Ok(config)
        }
    }
}

/// `server`'s own S3 key from `dir/<server>.env` (`AWS_ACCESS_KEY_ID=` and
/// `AWS_SECRET_ACCESS_KEY=` lines, mode 0600). Refuses a missing or
/// exposed file, a missing value, and a key id equal to one of
/// `operator_keys` (a server never holds the operator's key).
pub(crate) fn server_keys(
    dir: &Path,
    server: &str,
    operator_keys: &[String],
) -> Result<S3Credentials> {
    let path = dir.join(format!("{}.env", name_piece(server)?));
    let hint = format!(
        "Write {} (mode 0600) with AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... of a key \
         the storage limits to this server's prefix, without delete (README, \"On-server backups\")",
        path.display()
    );
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::io(format!("reading the server key file {}", path.display()), e)
            .with_hint(hint.clone())
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the server key file {} can be read by other users",
                path.display()
            ),
        )
        .with_hint(format!("Run `chmod 600 {}`", path.display())));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let value = |name: &str| {
        text.lines()
            .filter_map(|l| l.trim().split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
            .filter(|v| !v.is_empty())
    };
    let (Some(access_key_id), Some(secret_access_key)) =
        (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"))
    else {
        return Err(Error::config_invalid(format!(
            "{} does not set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            path.display()
        ))
        .with_hint(hint));
    };
    if operator_keys.contains(&access_key_id) {
        return Err(Error::invalid_input(format!(
            "{} holds the operator's own S3 key: a server must have a key of its own",
            path.display()
        ))
        .with_hint(hint));
    }
    Ok(S3Credentials {
        access_key_id,
        secret_access_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(location: &str) -> RepoConfig {
        RepoConfig {
            name: "fleet".into(),
            location: RepoLocation::parse(location).unwrap(),
            password_file: PathBuf::from("/x"),
            keep: Default::default(),
        }
    }

    #[test]
    fn each_server_gets_a_prefix_or_directory_of_its_own_on_s3_or_sftp() {
        let at = server_location(&shared("s3:http://127.0.0.1:9/b/backups"), "web-1").unwrap();
        assert_eq!(
            at.to_string(),
            "s3:http://127.0.0.1:9/b/backups/servers/web-1"
        );
        let root = server_location(&shared("s3:http://127.0.0.1:9/b"), "a.b").unwrap();
        assert_eq!(root.to_string(), "s3:http://127.0.0.1:9/b/servers/a_2Eb");
        let local = server_location(&shared("/srv/repo"), "web-1").unwrap_err();
        assert_eq!(local.kind(), ErrorKind::Unsupported);
        let sftp = server_location(&shared("sftp:store@198.51.100.7:/srv/fleet"), "a.b").unwrap();
        assert_eq!(
            sftp.to_string(),
            "sftp:store@198.51.100.7:/srv/fleet/servers/a_2Eb"
        );
    }

    #[test]
    fn a_server_key_file_must_be_private_complete_and_not_the_operators() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web-1.env");
        std::fs::write(
            &path,
            "AWS_ACCESS_KEY_ID=srv\nAWS_SECRET_ACCESS_KEY='s3cret'\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = server_keys(dir.path(), "web-1", &[]).unwrap_err();
        assert_eq!(exposed.kind(), ErrorKind::PermissionDenied);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let keys = server_keys(dir.path(), "web-1", &[]).unwrap();
        assert_eq!(keys.access_key_id, "srv");
        assert_eq!(keys.secret_access_key, "s3cret");
        let operators = server_keys(dir.path(), "web-1", &["srv".into()]).unwrap_err();
        assert!(!operators.to_string().contains("s3cret"), "{operators}");
        std::fs::write(&path, "AWS_ACCESS_KEY_ID=srv\n").unwrap();
        assert!(server_keys(dir.path(), "web-1", &[]).is_err());
        assert!(server_keys(dir.path(), "db", &[]).is_err());
    }

    #[test]
    fn a_password_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = password_file(dir.path(), "web-1").unwrap();
        let text = std::fs::read_to_string(&first).unwrap();
        assert_eq!(text.trim().len(), 64);
        let mode = std::fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = password_file(dir.path(), "web-1").unwrap();
        assert_eq!(std::fs::read_to_string(again).unwrap(), text);
    }
}
