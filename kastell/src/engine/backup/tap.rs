//! An artifact's decoded bytes copied into a repository as they stream
//! in (the one-pass backup): the same bytes the backup hashes as its
//! content go into an entry of a [`kastell_repo::StreamWriter`], whatever
//! is stored locally.
//!
//! The copy never fails the local backup: a copy that cannot keep up
//! with a failure (the repository unreachable, a full disk there) is given
//! up, its entry is left unfinished, and the writer then refuses to write
//! a snapshot (the caller falls back to pushing the stored backup). An
//! entry is finished only once the stored artifact is whole, keyed by
//! the stored file's SHA-256 as a push keys it, so a later push of the
//! same backup finds it unchanged.

use std::io::{self, Write};

use kastell_repo::EntryWriter;

/// Where an artifact's decoded bytes are copied, if anywhere.
#[derive(Debug, Default)]
pub(super) struct Tap {
    entry: Option<EntryWriter>,
}

impl Tap {
    /// Copies into `entry`.
    pub(super) fn into_entry(entry: EntryWriter) -> Self {
        Self { entry: Some(entry) }
    }

    /// Copies `data`; on a failure gives the copy up (the entry stays
    /// unfinished).
    fn copy(&mut self, data: &[u8]) {
        if let Some(entry) = self.entry.as_mut() {
            if let Err(e) = entry.write_all(data) {
                tracing::warn!("the one-pass repository copy stopped: {e}");
                self.entry = None;
            }
        }
    }

    /// Ends the entry once the artifact is stored whole: keyed by the
    /// stored file's SHA-256 (`stored_sha256`, lower-case hex).
    pub(super) fn finish(self, stored_sha256: &str) {
        if let Some(entry) = self.entry {
            if let Err(e) = entry.finish(Some(&format!("sha256:{stored_sha256}"))) {
                tracing::warn!("the one-pass repository copy did not end: {e}");
            }
        }
    }
}

/// Writes into `inner` and copies what it took into the tap.
pub(super) struct Tapped<W> {
    pub(super) inner: W,
    pub(super) tap: Tap,
}

impl<W: Write> Write for Tapped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tap.copy(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
