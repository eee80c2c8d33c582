//! Appending to the chain: lock, find the last line, rotate if needed,
//! write one line, fsync, move the anchor.

use std::fs::DirBuilder;
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};
use serde::Deserialize;

use super::AuditLog;
use super::anchor::{AuditHead, ChainStart, read_anchor, write_anchor};
use super::entry::{AuditEntry, GENESIS_PREV};
use super::files::{Lines, hash_line, last_line, rotated_files};
use super::lock::AuditLock;
use crate::state::store::sync_dir;

/// The fields of the last line that appending needs.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
    #[serde(default)]
    ts: String,
}

/// The end of the chain as appending finds it.
struct End {
    seq: u64,
    hash: String,
    ts: String,
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
    /// The anchor also carries where the kept chain starts
    /// ([`super::ChainStart`]): as the previous anchor recorded it (or,
    /// from an anchor that predates it, the oldest line kept), moved only
    /// when a rotation deletes the oldest file.
    ///
    /// Refuses on any I/O failure, and with `Corrupt` when the last line
    /// of the log is cut mid-way or is not an entry (the seq to continue
    /// from is unknown; `kastell audit verify` says more). The message
    /// says which part failed: "the audit entry was not written" (nothing
    /// was added; a line cut short by a full disk is cut back off), or
    /// "the audit entry was written ... but the anchor ... was not
    /// updated". Blocks: call it from a blocking thread, or use
    /// [`AuditLog::append_async`].
    pub fn append(&self, entry: AuditEntry) -> Result<AuditHead> {
        let dir_failed = |e| {
            let e = Error::io(format!("creating {}", self.dir.display()), e);
            self.entry_not_written(e)
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(dir_failed)?;
        let _lock =
            AuditLock::acquire(&self.lock_path(), true).map_err(|e| self.entry_not_written(e))?;
        let (head, first) = self
            .write_entry(entry)
            .map_err(|e| self.entry_not_written(e))?;
        let head = AuditHead {
            first: Some(first),
            ..head
        };
        write_anchor(&self.anchor, &head).map_err(|e| self.anchor_not_written(&head, e))?;
        Ok(head)
    }

    /// Under the lock: chains, rotates if needed and writes `entry`;
    /// returns the new head (without `first`) and where the kept chain
    /// starts now.
    fn write_entry(&self, entry: AuditEntry) -> Result<(AuditHead, ChainStart)> {
        let current = self.path();
        let end = self.chain_end()?;
        let seq = end.seq.checked_add(1).ok_or_else(|| {
            Error::invalid_state(format!(
                "the audit log in {} has no seq after {}",
                self.dir.display(),
                end.seq
            ))
        })?;
        let mut entry = entry;
        entry.seq = seq;
        entry.prev = end.hash.clone();
        entry.ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut line = serde_json::to_vec(&entry)
            .map_err(|e| Error::unexpected(format!("encoding the audit entry: {e}")))?;
        let hash = hash_line(&line);
        line.push(b'\n');

        // Where the kept chain starts: as the anchor records it, else
        // (an anchor from before kastell recorded it, or none) the oldest
        // line kept, else this new line.
        let recorded = read_anchor(&self.anchor)
            .ok()
            .flatten()
            .and_then(|a| a.first);
        let mut first = match recorded {
            Some(first) => first,
            None => self.oldest_kept(None)?.unwrap_or(ChainStart {
                seq,
                hash: hash.clone(),
            }),
        };

        let size = match std::fs::metadata(&current) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == IoKind::NotFound => 0,
            Err(e) => return Err(Error::io(format!("inspecting {}", current.display()), e)),
        };
        let rotate = size > 0 && size.saturating_add(line.len() as u64) > self.max_bytes;
        if rotate {
            first = self.rotate(&current, first, &end)?;
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
            first: None,
        };
        Ok((head, first))
    }

    /// The error of an append whose entry was not written (what went
    /// wrong is kept, the message says what it means for the log).
    fn entry_not_written(&self, e: Error) -> Error {
        let message = format!(
            "the audit entry was not written to {}: {}",
            self.path().display(),
            e.message()
        );
        e.with_message(message).or_hint(format!(
            "Free space in {} (df -h), check its permissions, then run `kastell audit verify`",
            self.dir.display()
        ))
    }

    /// The error of an append whose entry was written but whose anchor
    /// was not moved.
    fn anchor_not_written(&self, head: &AuditHead, e: Error) -> Error {
        let message = format!(
            "the audit entry was written to {} (seq {}), but the anchor {} was not updated: {}",
            self.path().display(),
            head.seq,
            self.anchor.display(),
            e.message()
        );
        e.with_message(message).or_hint(format!(
            "Free space where the anchor is (df -h {}), then run `kastell audit verify` (it \
             finds the anchor one entry behind until the next append)",
            self.anchor.parent().unwrap_or(&self.anchor).display()
        ))
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
    fn chain_end(&self) -> Result<End> {
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
            return Ok(End {
                seq: parsed.seq,
                hash: hash_line(&line),
                ts: parsed.ts,
            });
        }
        Ok(End {
            seq: 0,
            hash: GENESIS_PREV.to_owned(),
            ts: String::new(),
        })
    }

    /// The first line of the oldest file kept among `current` and the
    /// rotated files numbered below `below` (all when `None`): `None` when
    /// there is none.
    fn oldest_kept(&self, below: Option<usize>) -> Result<Option<ChainStart>> {
        let current = self.path();
        let mut paths: Vec<_> = rotated_files(&current)?
            .into_iter()
            .filter(|(n, _)| below.is_none_or(|b| *n < b))
            .map(|(_, path)| path)
            .collect();
        paths.push(current);
        for path in paths {
            let Some(mut lines) = Lines::open(&path)? else {
                continue;
            };
            let Some((_, bytes, _)) = lines.next_line()? else {
                continue;
            };
            let seq = serde_json::from_slice::<SeqOnly>(&bytes)
                .map(|s| s.seq)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "the first line of the audit log {} is not an audit entry ({e})",
                            path.display()
                        ),
                    )
                    .with_hint("Run `kastell audit verify` and keep the file for investigation")
                })?;
            return Ok(Some(ChainStart {
                seq,
                hash: hash_line(&bytes),
            }));
        }
        Ok(None)
    }

    /// Renames `current` to `.1`, shifting the rotated files up by one
    /// and deleting those beyond the number kept; returns where the kept
    /// chain starts afterwards. Before it deletes a file it records the
    /// new start in the anchor (with the head still at `end`), so the log
    /// is never shorter at its head than the anchor says: a crash in
    /// between leaves older lines than the anchor needs, which verify
    /// accepts.
    fn rotate(&self, current: &Path, first: ChainStart, end: &End) -> Result<ChainStart> {
        let doomed: Vec<PathBuf> = rotated_files(current)?
            .into_iter()
            .filter(|(n, _)| *n >= self.keep)
            .map(|(_, path)| path)
            .collect();
        let mut first = first;
        if !doomed.is_empty()
            && let Some(start) = self.oldest_kept(Some(self.keep))?
        {
            first = start;
            let head = AuditHead {
                seq: end.seq,
                hash: end.hash.clone(),
                ts: end.ts.clone(),
                first: Some(first.clone()),
            };
            write_anchor(&self.anchor, &head)?;
        }
        for path in doomed {
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
        let newest = self.rotated_path(1);
        std::fs::rename(current, &newest).map_err(|e| {
            Error::io(
                format!("rotating {} to {}", current.display(), newest.display()),
                e,
            )
        })?;
        sync_dir(&self.dir)?;
        Ok(first)
    }
}

/// Appends `line` (newline included) to `path` with one write, creating
/// it 0600, and flushes it to disk. When the write fails part way (a disk
/// that fills up mid-line) the file is cut back to where it ended, so a
/// failed append leaves no partial line that would stop every later one
/// (the caller holds the append lock: no other line is in flight).
fn write_line(path: &Path, line: &[u8]) -> Result<()> {
    let before = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let written = crate::state::store::append_private(path, line, true);
    if written.is_err()
        && let Ok(Some(file)) =
            crate::state::store::open_with(std::fs::OpenOptions::new().write(true), path)
        && file.metadata().is_ok_and(|m| m.len() > before)
        && let Err(e) = file.set_len(before)
    {
        tracing::warn!(
            "could not cut the partial audit line off {}: {e}",
            path.display()
        );
    }
    written
}
