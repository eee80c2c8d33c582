//! `audit.lock`: an `flock` on a file beside the log. Appends hold it
//! exclusively (one writer at a time across processes and threads: each
//! holder opens the file itself, and `flock` locks belong to the open
//! file); verification and reading hold it shared, so they see no
//! half-finished append or rotation.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use kastell_core::{Error, Result};
use rustix::fs::{FlockOperation, flock};

/// A held lock; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct AuditLock {
    _file: File,
}

impl AuditLock {
    /// Waits for the lock at `path` (created 0600 if missing), exclusive
    /// or shared. Blocks while another process holds it; refuses at once
    /// a lock path that is not a regular file (a FIFO).
    pub(crate) fn acquire(path: &Path, exclusive: bool) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true).mode(0o600);
        let file = crate::state::store::open_with(&mut options, path)?.ok_or_else(|| {
            Error::not_found(format!(
                "{} disappeared while it was being opened",
                path.display()
            ))
        })?;
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        flock(&file, op)
            .map_err(|e| Error::unexpected(format!("locking {}: {e}", path.display())))?;
        Ok(Self { _file: file })
    }

    /// Like [`AuditLock::acquire`] shared, but `None` (reading goes on
    /// unlocked) when the lock file cannot be opened, for example in a
    /// read-only copy of the log kept for investigation.
    pub(crate) fn shared_if_possible(path: &Path) -> Option<Self> {
        match Self::acquire(path, false) {
            Ok(lock) => Some(lock),
            Err(e) => {
                tracing::debug!("reading the audit log without its lock: {e}");
                None
            }
        }
    }
}
