//! The append-only canary over SFTP (see [`crate::append_only`]): written
//! once at the repository's root, then overwritten and deleted if the
//! server lets this login.

use std::io::Write;
use std::path::Path;

use kastell_core::Result;
use rustic_core::BytesList;
use ssh2::{FileStat, OpenFlags, OpenType, Sftp};

use super::SftpBackend;
use super::failure::Failure;
use super::files::{FILE_MODE, write_whole};
use crate::append_only::{Attempt, CANARY_CONTENT, CANARY_NAME, CanaryReport};
use crate::error::from_rustic;

impl SftpBackend {
    /// Writes the canary unless it is there, then tries to overwrite it
    /// (opening it for writing, and when that is refused, making it
    /// writable first) and to delete it. Fails when the login cannot
    /// write the canary or the server does not answer.
    pub(crate) fn probe_canary(&self) -> Result<CanaryReport> {
        let path = self.root.join(CANARY_NAME);
        let content = BytesList::from(CANARY_CONTENT.to_vec());
        let (overwrite, delete) = self
            .with_sftp("testing the canary", &path, |sftp, _| {
                write_whole(sftp, &self.root, &path, CANARY_NAME, false, &content)?;
                let overwrite = try_overwrite(sftp, &path)?;
                let delete = attempt(sftp.unlink(&path).map_err(Failure::from))?;
                Ok((overwrite, delete))
            })
            .map_err(|e| from_rustic("testing whether the login is append-only", &e))?;
        Ok(CanaryReport {
            location: self.location.clone(),
            canary: path.display().to_string(),
            overwrite,
            delete,
        })
    }
}

/// What the server did: a refusal is "permission denied"; any other
/// failure proves nothing and is returned.
fn attempt(result: std::result::Result<(), Failure>) -> std::result::Result<Attempt, Failure> {
    match result {
        Ok(()) => Ok(Attempt::Allowed),
        Err(failure) if failure.is_permission_denied() => Ok(Attempt::Refused),
        Err(failure) => Err(failure),
    }
}

/// Opens the (read-only) canary for writing and writes it again; when
/// that is refused, tries to make it writable (as a client that wants to
/// overwrite would) and writes it then, making it read-only again.
fn try_overwrite(sftp: &Sftp, path: &Path) -> std::result::Result<Attempt, Failure> {
    let rewrite = || -> std::result::Result<(), Failure> {
        let mut file = sftp.open_mode(
            path,
            OpenFlags::WRITE | OpenFlags::TRUNCATE,
            FILE_MODE,
            OpenType::File,
        )?;
        file.write_all(CANARY_CONTENT)?;
        Ok(())
    };
    if attempt(rewrite())? == Attempt::Allowed {
        return Ok(Attempt::Allowed);
    }
    let mode = |perm: i32| FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: u32::try_from(perm).ok(),
        atime: None,
        mtime: None,
    };
    if attempt(sftp.setstat(path, mode(0o600)).map_err(Failure::from))? == Attempt::Refused {
        return Ok(Attempt::Refused);
    }
    let rewritten = attempt(rewrite());
    let _ = sftp.setstat(path, mode(FILE_MODE));
    rewritten
}
