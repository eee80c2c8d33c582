//! Where a repository's files are kept: the restic layout (`config`,
//! `keys/`, `snapshots/`, `index/`, `data/<2 hex>/`) on a directory, an
//! S3 bucket or a directory on an SSH server (SFTP). Every file is written
//! once under its content's id and never changed; each backend makes a
//! file appear whole or not at all.

mod local;
mod s3;
mod sftp;

use std::sync::Arc;

use kastell_core::Result;
use rustic_core::{FileType, Id, WriteBackend};

pub use local::LocalBackend;
pub use s3::{S3Backend, S3Credentials};
pub use sftp::{SftpBackend, SftpCredentials};

use crate::RepoLocation;

/// The directories restic creates at `init`, besides `data/`'s 256.
pub(crate) const DIRECTORIES: [&str; 4] = ["keys", "snapshots", "index", "locks"];

/// The path of a repository file relative to the repository's root, as
/// restic lays it out.
pub(crate) fn object_path(tpe: FileType, id: &Id) -> String {
    let hex = id.to_hex();
    match tpe {
        FileType::Config => "config".to_owned(),
        FileType::Pack => format!("data/{}/{}", &hex[..2], &*hex),
        _ => format!("{}/{}", tpe.dirname(), &*hex),
    }
}

/// What the backends log in with, one field per kind of storage: the
/// backend of a location takes its own and ignores the others. A local
/// directory needs none. Its `Debug` never shows a secret.
#[derive(Debug, Clone, Default)]
pub struct BackendCredentials {
    /// The access key of an S3 repository.
    pub s3: Option<S3Credentials>,
    /// The key file and known_hosts file of an SFTP repository.
    pub sftp: Option<SftpCredentials>,
}

impl BackendCredentials {
    /// Credentials for S3 only (none for SFTP), as the S3 and local
    /// shorthands of [`crate::BackupRepository`] take them.
    pub fn s3(credentials: Option<&S3Credentials>) -> Self {
        Self {
            s3: credentials.cloned(),
            sftp: None,
        }
    }
}

/// The backend for `location`, logged in with its part of `credentials`.
/// An S3 backend needs a tokio runtime (it is built from within one); an
/// SFTP backend connects, checks the server's host key and logs in here,
/// so a server that cannot be reached or trusted is refused at once.
/// Refuses an S3 or SFTP location whose credentials are missing.
pub fn open(
    location: &RepoLocation,
    credentials: &BackendCredentials,
) -> Result<Arc<dyn WriteBackend>> {
    Ok(match location {
        RepoLocation::Local(path) => Arc::new(LocalBackend::new(path.clone())),
        RepoLocation::S3 {
            endpoint,
            bucket,
            prefix,
        } => Arc::new(S3Backend::new(
            endpoint,
            bucket,
            prefix,
            credentials.s3.as_ref(),
        )?),
        RepoLocation::Sftp {
            user,
            host,
            port,
            path,
        } => Arc::new(SftpBackend::new(
            user,
            host,
            *port,
            path,
            credentials.sftp.as_ref(),
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_restics_layout() {
        let id: Id = "0b1d2f0000000000000000000000000000000000000000000000000000000000"
            .parse()
            .unwrap();
        assert_eq!(object_path(FileType::Config, &id), "config");
        assert_eq!(
            object_path(FileType::Pack, &id),
            format!("data/0b/{}", id.to_hex().as_str())
        );
        assert_eq!(
            object_path(FileType::Snapshot, &id),
            format!("snapshots/{}", id.to_hex().as_str())
        );
    }
}
