//! Storing files of known size as one snapshot, through the streaming
//! writer (`stream`): the one way kastell writes a snapshot.

use std::io::Read;

use kastell_core::{Error, ErrorKind, Result};

use crate::repository::{BackupRepository, RepoSnapshot, check_name, snapshot_tags};
use crate::reuse;
use crate::stream::StreamWriter;

/// One file to store: its name inside the snapshot, its size, a reader
/// that yields exactly that many bytes and, when the caller knows what it
/// holds without reading it, a content key.
pub struct StoredEntry {
    /// A plain file name (no `/`).
    pub name: String,
    /// The number of bytes `reader` yields.
    pub size: u64,
    /// The content, read once while storing (never, when an earlier
    /// snapshot already holds it: see `key`).
    pub reader: Box<dyn Read + Send>,
    /// What the content is, as the caller names it (equal keys mean equal
    /// bytes: for a stored backup, `sha256:` and the SHA-256 of the file it
    /// is read from). An entry whose name, size and key an earlier
    /// snapshot of the same host recorded is taken from that snapshot
    /// without reading `reader`. Up to 160 ASCII letters, digits and `:_-`.
    pub key: Option<String>,
}

impl StoredEntry {
    /// An entry without a content key: always read.
    pub fn new(name: impl Into<String>, size: u64, reader: Box<dyn Read + Send>) -> Self {
        Self {
            name: name.into(),
            size,
            reader,
            key: None,
        }
    }

    /// This entry with content key `key` (see [`StoredEntry::key`]).
    pub fn keyed(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl std::fmt::Debug for StoredEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredEntry")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl BackupRepository {
    /// Stores `entries` as one snapshot of `host` tagged `kastell` and
    /// `tags`, through the streaming writer ([`Self::stream`]). Every
    /// entry is read to its end, except one whose content key an earlier
    /// snapshot of `host` recorded with the same name and size (see
    /// [`StoredEntry::key`]): its content is taken from there unread. What
    /// is read is chunked, deduplicated against the whole repository,
    /// compressed and encrypted. The snapshot, and so the backup, appears
    /// only after all of its data and index are written. Refuses (before
    /// writing anything) entry names that are not plain file names,
    /// duplicates, malformed keys and tags restic cannot hold; and
    /// (`Corrupt`, writing no snapshot) an entry whose reader yields a
    /// different number of bytes than its `size`.
    pub fn store(
        &self,
        host: &str,
        tags: &[String],
        entries: Vec<StoredEntry>,
    ) -> Result<RepoSnapshot> {
        check_entries(&entries)?;
        snapshot_tags(tags)?;
        let writer = self.stream(host)?;
        for entry in entries {
            let taken = match &entry.key {
                Some(key) => writer.reuse(&entry.name, key, Some(entry.size))?.is_some(),
                None => false,
            };
            if !taken {
                copy_exactly(&writer, entry)?;
            }
        }
        writer.finish(tags)
    }
}

/// Writes `entry` into `writer`, refusing (`Corrupt`) a reader that ends
/// before or runs past the entry's size.
fn copy_exactly(writer: &StreamWriter, entry: StoredEntry) -> Result<()> {
    let StoredEntry {
        name,
        size,
        reader,
        key,
    } = entry;
    let mut out = writer.entry(&name)?;
    // One byte more than announced is enough to tell it runs past.
    let mut limited = reader.take(size.saturating_add(1));
    let copied = std::io::copy(&mut limited, &mut out).map_err(|e| {
        writer
            .failure()
            .unwrap_or_else(|| Error::io(format!("storing {name}"), e))
    })?;
    if copied < size {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("{name} ended after {copied} of its {size} bytes"),
        ));
    }
    if copied > size {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("{name} is longer than its {size} bytes"),
        ));
    }
    out.finish(key.as_deref())?;
    Ok(())
}

/// Refuses names that are not plain file names, a name given twice and a
/// malformed key.
fn check_entries(entries: &[StoredEntry]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for entry in entries {
        check_name(&entry.name)?;
        if !seen.insert(entry.name.as_str()) {
            return Err(Error::invalid_input(format!(
                "{:?} is stored twice in one snapshot",
                entry.name
            )));
        }
        if let Some(key) = &entry.key {
            reuse::check_key(key)?;
        }
    }
    Ok(())
}
