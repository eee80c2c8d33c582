//! The anchor: the chain's head (`{seq, hash, ts}` of the newest line)
//! and where the kept chain starts (`first`: `{seq, hash}` of the oldest
//! line kastell keeps), kept outside the log, so a log cut back at its
//! tail or at its head, or whose last line was rewritten, no longer
//! matches it. `first` is seq 1 until kastell's own rotation deletes the
//! oldest file; it then moves, in the anchor, before the file goes.
//!
//! It is `KASTELL_AUDIT_ANCHOR` when set (best on another disk, or in a
//! directory another user owns and kastell may only write), else
//! `audit.head` in the kastell directory. It is replaced atomically
//! (temporary file, fsync, rename) after every append.

use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use crate::state::store::write_atomic;

/// The head of the chain: the newest line's position, hash and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The newest line's `seq`.
    pub seq: u64,
    /// Hex SHA-256 of the newest line's exact bytes (without its newline).
    pub hash: String,
    /// The newest line's `ts`.
    pub ts: String,
    /// Where the kept chain starts. Absent only in anchors written before
    /// kastell recorded it (the start of such a log cannot be proven).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<ChainStart>,
}

/// The oldest line kastell keeps: the chain must start there (or, after
/// a rotation interrupted before it deleted a file, earlier and pass
/// through it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStart {
    /// Its `seq`.
    pub seq: u64,
    /// Hex SHA-256 of its exact bytes (without its newline).
    pub hash: String,
}

/// Writes `head` to the anchor file at `path`, atomically, first removing
/// what a writer killed mid-write left beside it (the caller holds the
/// append lock, so no live writer's file is in flight).
pub(crate) fn write_anchor(path: &Path, head: &AuditHead) -> Result<()> {
    crate::state::store::sweep_debris(path);
    let mut bytes = serde_json::to_vec(head)
        .map_err(|e| Error::unexpected(format!("encoding the audit anchor: {e}")))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads the anchor at `path`: `None` when there is none, an error of kind
/// `Corrupt` when it is not an anchor (or not a regular file).
pub(crate) fn read_anchor(path: &Path) -> Result<Option<AuditHead>> {
    let bytes = match crate::state::store::read_regular(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidState => {
            return Err(Error::new(ErrorKind::Corrupt, e.message().to_owned()));
        }
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(
            ErrorKind::Corrupt,
            format!("the audit anchor {} is not readable: {e}", path.display()),
        )
    })
}
