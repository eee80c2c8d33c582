//! The audit log: a tamper-evident, hash-chained record of what kastell
//! was asked to do and how it ended.
//!
//! # Files
//!
//! - `audit.jsonl` in the kastell directory: one [`AuditEntry`] as compact
//!   JSON per line (mode 0600). Each line's `prev` is the hex SHA-256 of
//!   the exact bytes of the line before it (without the newline), the
//!   first line's is [`GENESIS_PREV`] (64 zeros); `seq` counts from 1.
//!   Editing, inserting or deleting a line breaks the chain at that line.
//! - `audit.jsonl.1` … `audit.jsonl.<KASTELL_AUDIT_KEEP>`: rotated files,
//!   `.1` the newest. When a line would take `audit.jsonl` past
//!   `KASTELL_AUDIT_MAX_BYTES` it is renamed to `.1` first (the others
//!   shift up, the oldest beyond the limit is deleted); the chain goes on
//!   across files, so the new file's first `prev` is the hash of the
//!   rotated file's last line, and `seq` continues.
//! - the anchor ([`AuditHead`], `{seq, hash, ts}` of the newest line and
//!   `first`, the [`ChainStart`] of the oldest line kept):
//!   `KASTELL_AUDIT_ANCHOR` when set, else `audit.head`. A log cut back at
//!   its tail or its head, or whose last line was rewritten, no longer
//!   matches it. Only kastell's own rotation moves `first`, before it
//!   deletes the oldest file, so a rotated log verifies and a hand-cut
//!   one is "truncated".
//!   Keep it where whoever could edit the log cannot (another disk,
//!   another owner), or the anchor only detects accidents.
//! - `audit.lock`: the `flock` that serialises appends.
//!
//! [`AuditLog::append`] adds an entry; [`AuditLog::verify`] checks the
//! whole chain and the anchor; [`AuditLog::entries`] reads entries newest
//! first. Disruptive and destructive work is recorded as `started` before
//! it runs and refused when that fails ([`record_start`]).

mod anchor;
mod chain;
mod entry;
mod files;
mod intent;
mod lock;
mod read;
mod record;
mod redact;
mod verify;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};

use crate::env::Env;

pub use anchor::{AuditHead, ChainStart};
pub use entry::{
    AuditEntry, AuditError, AuditSurface, GENESIS_PREV, Outcome, plan_token_fingerprint,
};
pub use intent::{append_start, record_start};
pub use read::{AuditFilter, AuditPage};
pub use record::{CallRecord, error_json, record_cli, start_cli};
pub use redact::{MAX_STRING_CHARS, REDACTED, cut, is_sensitive_key, redact_args};
pub use verify::{ProblemKind, VerifyProblem, VerifyReport};

/// The log file's name in the kastell directory.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// The lock file's name in the kastell directory.
pub const LOCK_FILE: &str = "audit.lock";
/// The anchor's name in the kastell directory when
/// [`ANCHOR_VAR`] is not set.
pub const HEAD_FILE: &str = "audit.head";
/// The variable naming the anchor file (a path, best outside the kastell
/// directory).
pub const ANCHOR_VAR: &str = "KASTELL_AUDIT_ANCHOR";
/// The variable setting the size at which `audit.jsonl` is rotated, in
/// bytes (default [`DEFAULT_MAX_BYTES`]).
pub const MAX_BYTES_VAR: &str = "KASTELL_AUDIT_MAX_BYTES";
/// The variable setting how many rotated files are kept (default
/// [`DEFAULT_KEEP`]).
pub const KEEP_VAR: &str = "KASTELL_AUDIT_KEEP";
/// The default of [`MAX_BYTES_VAR`]: 8 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The default of [`KEEP_VAR`].
pub const DEFAULT_KEEP: usize = 5;

/// The audit log of one kastell directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    dir: PathBuf,
    anchor: PathBuf,
    max_bytes: u64,
    keep: usize,
}

impl AuditLog {
    /// The log in the kastell directory `dir`, with the defaults: the
    /// anchor `dir/audit.head`, rotation at [`DEFAULT_MAX_BYTES`], keeping
    /// [`DEFAULT_KEEP`] rotated files. Nothing is created until the first
    /// append.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            anchor: dir.join(HEAD_FILE),
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
        }
    }

    /// The log in `dir` configured by `env`: [`ANCHOR_VAR`],
    /// [`MAX_BYTES_VAR`] and [`KEEP_VAR`]. Refuses (`ConfigInvalid`) when
    /// a size or count is not a positive whole number, or the anchor path
    /// cannot be made absolute.
    pub fn for_env(dir: &Path, env: &Env) -> Result<Self> {
        let mut log = Self::in_dir(dir);
        if let Some(anchor) = env.get_nonempty(ANCHOR_VAR) {
            let anchor = std::path::absolute(&anchor)
                .map_err(|e| Error::io(format!("resolving {ANCHOR_VAR}={anchor}"), e))?;
            log = log.with_anchor(anchor);
        }
        if let Some(max) = positive(env, MAX_BYTES_VAR)? {
            log = log.with_max_bytes(max);
        }
        if let Some(keep) = positive(env, KEEP_VAR)? {
            log = log.with_keep(usize::try_from(keep).unwrap_or(usize::MAX));
        }
        Ok(log)
    }

    /// Keeps the anchor at `path` instead.
    pub fn with_anchor(mut self, path: impl Into<PathBuf>) -> Self {
        self.anchor = path.into();
        self
    }

    /// Rotates when a line would take the file past `max_bytes` (at least
    /// one line always goes into a file, however long).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Keeps `keep` rotated files (at least one: the chain's link across
    /// a rotation is checked against it).
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    /// The kastell directory the log is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current log file, `audit.jsonl`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(AUDIT_FILE)
    }

    /// The anchor file.
    pub fn anchor_path(&self) -> &Path {
        &self.anchor
    }

    /// The rotated file number `n` (`audit.jsonl.n`, 1 the newest).
    pub fn rotated_path(&self, n: usize) -> PathBuf {
        files::numbered(&self.path(), n)
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }
}

/// The positive whole number in `var`, if set.
fn positive(env: &Env, var: &str) -> Result<Option<u64>> {
    let Some(text) = env.get_nonempty(var) else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(
            Error::config_invalid(format!("{var}={text:?} is not a positive whole number"))
                .with_hint(format!("Set {var} to a number like 1000, or unset it")),
        ),
    }
}
