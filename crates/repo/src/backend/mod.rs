//! Where a repository's files are kept: the restic layout (`config`,
//! `keys/`, `snapshots/`, `index/`, `data/<2 hex>/`) on a directory or an
//! S3 bucket. Every file is written once under its content's id and never
//! changed; each backend makes a file appear whole or not at all.

mod local;
mod s3;

use std::sync::Arc;

use kastell_core::Result;
use rustic_core::{FileType, Id, WriteBackend};

pub use local::LocalBackend;
pub use s3::{S3Backend, S3Credentials};

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

/// The backend for `location`. S3 credentials come from `credentials`;
/// an S3 backend needs a tokio runtime (it is built from within one).
pub fn open(
    location: &RepoLocation,
    credentials: Option<&S3Credentials>,
) -> Result<Arc<dyn WriteBackend>> {
    Ok(match location {
        RepoLocation::Local(path) => Arc::new(LocalBackend::new(path.clone())),
        RepoLocation::S3 {
            endpoint,
            bucket,
            prefix,
        } => Arc::new(S3Backend::new(endpoint, bucket, prefix, credentials)?),
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
