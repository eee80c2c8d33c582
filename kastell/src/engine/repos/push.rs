//! Sending a verified local backup into a repository as one snapshot.
//!
//! Each artifact is stored decompressed, so the repository deduplicates
//! it against earlier backups (an unchanged database adds almost nothing)
//! and stock `restic dump` yields the plain dump or archive. The backup's
//! `manifest.json` goes with it. Host is the server's name; tags are
//! `kastell`, `backup:<id>` and `platform:<id>`. Beside them,
//! `checksums.sha256` holds the SHA-256 of each decompressed artifact in
//! `sha256sum`'s format, so a copy restored by stock restic can be checked
//! with `sha256sum -c`, and kastell checks every pull against it.

use std::io::Read;

use kastell_core::types::{ArtifactSource, BackupId};
use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::{BackupRepository, RepoSnapshot, StoredEntry};
use serde::Serialize;

use super::catalog::SAFETY_FOR_TAG;
use super::digest::{Digesting, checksum_lines};
use super::pull::CHECKSUMS_FILE;
use crate::engine::backup::{MANIFEST_FILE, StoredBackup};

/// What a push stored.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PushReport {
    /// The backup that was sent.
    pub backup_id: String,
    /// The snapshot it became.
    pub snapshot: RepoSnapshot,
}

/// Stores `backup` in `repo`, after verifying its checksums. Refuses a
/// backup that fails verification and one of the original tool's format
/// (no checksums: nothing proves it is whole). Blocking.
pub(crate) fn push(repo: &BackupRepository, backup: &StoredBackup) -> Result<PushReport> {
    let manifest = backup.manifest.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("backup {} has no readable manifest", backup.id),
        )
    })?;
    if !manifest.has_checksums() {
        return Err(Error::invalid_input(format!(
            "backup {} was made by the original tool and has no checksums",
            backup.id
        ))
        .with_hint("Take a new backup with kastell and send that one"));
    }
    let (source, _) = backup.source()?;
    let mut entries = Vec::new();
    let mut sums = Vec::new();
    for record in source.records() {
        // A first pass counts the decompressed size (the snapshot refuses
        // a stream that differs) and hashes it for checksums.sha256.
        let mut digest = Digesting::new(std::io::sink());
        std::io::copy(&mut source.open(&record.name)?, &mut digest).map_err(|e| {
            Error::io(
                format!("reading {} of backup {}", record.name, backup.id),
                e,
            )
        })?;
        let (_, size, sha256) = digest.finish();
        sums.push((record.name.clone(), sha256));
        entries.push(StoredEntry {
            name: record.name.clone(),
            size,
            reader: source.open(&record.name)?,
        });
    }
    let checksums = checksum_lines(sums.iter().map(|(n, h)| (n.as_str(), h.as_str())));
    entries.push(StoredEntry {
        name: CHECKSUMS_FILE.to_owned(),
        size: checksums.len() as u64,
        reader: Box::new(std::io::Cursor::new(checksums.into_bytes())) as Box<dyn Read + Send>,
    });
    // Read as the verify above read it: never through a link or a FIFO.
    let manifest_bytes =
        crate::engine::backup::BackupDir::open(&backup.dir)?.read(MANIFEST_FILE)?;
    entries.push(StoredEntry {
        name: MANIFEST_FILE.to_owned(),
        size: manifest_bytes.len() as u64,
        reader: Box::new(std::io::Cursor::new(manifest_bytes)) as Box<dyn Read + Send>,
    });
    let mut tags = vec![
        format!("backup:{}", backup.id),
        format!("platform:{}", manifest.platform_id()),
    ];
    // A safety backup stays one in the repository (never its newest); a
    // mark that is no backup id is not carried into a tag.
    tags.extend(
        manifest
            .safety_for()
            .and_then(|restored| BackupId::new(restored.to_owned()).ok())
            .map(|restored| format!("{SAFETY_FOR_TAG}:{restored}")),
    );
    let snapshot = repo.store(&manifest.server_name, &tags, entries)?;
    Ok(PushReport {
        backup_id: backup.id.to_string(),
        snapshot,
    })
}
