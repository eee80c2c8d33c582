//! Appending to the chain: lock, find the last line, rotate if needed,
//! write one line, fsync, move the anchor.

use std::fs::DirBuilder;
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};
use serde::Deserialize;

use super::AuditLog;
use super::anchor::{AuditHead, write_anchor};
use super::entry::{AuditEntry, GENESIS_PREV};
use super::files::{hash_line, last_line, rotated_files};
use super::lock::AuditLock;
use crate::store::sync_dir;

/// The one field of the last line that appending needs.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

impl AuditLog {
    /// Appends `entry` as the next line of the chain and returns the new
    /// head. `seq`, `ts` (now) and `prev` are filled in here.
    ///
    /// Holds `audit.lock` exclusively throughout, so appends from any
    /// number of processes and threads form one unbroken chain: it reads
    /// the last line (from the end of the file, not the whole file),
    /// rotates the file first if the line would take it past the size
    /// limit, appends the line and its newline with one write, fsyncs the
    /// file, then replaces the anchor atomically. A crash between the
    /// fsync and the anchor leaves the anchor one line behind, which
    /// [`AuditLog::verify`] accepts with a warning.
    ///
    /// Refuses on any I/O failure, and with `Corrupt` when the last line
    /// of the log is cut mid-way or is not an entry (the seq to continue
    /// from is unknown; `kastell audit verify` says more). Blocks: call it
    /// from a blocking thread, or use [`AuditLog::append_async`].
    pub fn append(&self, entry: AuditEntry) -> Result<AuditHead> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let _lock = AuditLock::acquire(&self.lock_path(), true)?;
        let current = self.path();
        let (last_seq, prev) = self.chain_end()?;
        let seq = last_seq.checked_add(1).ok_or_else(|| {
            Error::invalid_state(format!(
                "the audit log in {} has no seq after {last_seq}",
                self.dir.display()
            ))
        })?;
        let mut entry = entry;
        entry.seq = seq;
        entry.prev = prev;
        entry.ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut line = serde_json::to_vec(&entry)
            .map_err(|e| Error::unexpected(format!("encoding the audit entry: {e}")))?;
        let hash = hash_line(&line);
        line.push(b'\n');

        let size = match std::fs::metadata(&current) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == IoKind::NotFound => 0,
            Err(e) => return Err(Error::io(format!("inspecting {}", current.display()), e)),
        };
        let rotate = size > 0 && size.saturating_add(line.len() as u64) > self.max_bytes;
        if rotate {
            self.rotate(&current)?;
        }
        write_line(&current, &line)?;
        if rotate || size == 0 {
            // The file is new: make its name durable too.
            sync_dir(&self.dir)?;
        }
        let head = AuditHead {
            seq,
            hash,
            ts: entry.ts,
        };
        write_anchor(&self.anchor, &head)?;
        Ok(head)
    }

    /// [`AuditLog::append`] on a blocking thread, for async callers.
    pub async fn append_async(&self, entry: AuditEntry) -> Result<AuditHead> {
        let log = self.clone();
        tokio::task::spawn_blocking(move || log.append(entry))
            .await
            .map_err(|e| Error::unexpected(format!("audit append task failed: {e}")))?
    }

    /// The seq and hash of the newest line in the current file, or in the
    /// newest rotated file when the current one is empty or missing (a
    /// crash right after a rotation); `(0, GENESIS_PREV)` when the log is
    /// empty.
    fn chain_end(&self) -> Result<(u64, String)> {
        let current = self.path();
        let mut candidates = vec![current];
        candidates.extend(
            rotated_files(&self.path())?
                .into_iter()
                .rev()
                .map(|(_, path)| path),
        );
        for path in candidates {
            let Some((line, terminated)) = last_line(&path)? else {
                continue;
            };
            let damaged = |what: &str| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "the last line of the audit log {} {what}; the next entry cannot be \
                         chained to it",
                        path.display()
                    ),
                )
                .with_hint(
                    "Run `kastell audit verify` and keep the file for investigation; to start a \
                     new chain, move audit.jsonl* and the anchor aside",
                )
            };
            if !terminated {
                return Err(damaged("was cut mid-way (a crash during a write?)"));
            }
            let parsed: SeqOnly = serde_json::from_slice(&line)
                .map_err(|e| damaged(&format!("is not an audit entry ({e})")))?;
            return Ok((parsed.seq, hash_line(&line)));
        }
        Ok((0, GENESIS_PREV.to_owned()))
    }

    /// Renames `current` to `.1`, shifting the rotated files up by one
    /// and deleting those beyond the number kept.
    fn rotate(&self, current: &Path) -> Result<()> {
        for (n, path) in rotated_files(current)? {
            if n >= self.keep {
                std::fs::remove_file(&path)
                    .or_else(|e| {
                        if e.kind() == IoKind::NotFound {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            }
        }
        for n in (1..self.keep).rev() {
            let from = self.rotated_path(n);
            let to = self.rotated_path(n + 1);
            match std::fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == IoKind::NotFound => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("rotating {} to {}", from.display(), to.display()),
                        e,
                    ));
                }
            }
        }
        let first = self.rotated_path(1);
        std::fs::rename(current, &first).map_err(|e| {
            Error::io(
                format!("rotating {} to {}", current.display(), first.display()),
                e,
            )
        })?;
        sync_dir(&self.dir)
    }
}

/// Appends `line` (newline included) to `path` with one write, creating
/// it 0600, and flushes it to disk.
fn write_line(path: &Path, line: &[u8]) -> Result<()> {
    crate::store::append_private(path, line, true)
}
