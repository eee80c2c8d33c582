//! Sending a verified local backup into a repository as one snapshot.
//!
//! Each artifact is stored decompressed, so the repository deduplicates
//! it against earlier backups (an unchanged database adds almost nothing)
//! and stock `restic dump` yields the plain dump or archive. Its size and
//! content checksum come from the manifest, recorded as the backup
//! streamed in (an older backup is read once more for them); it is
//! decompressed on a thread of its own while the repository chunks it,
//! and not at all when an earlier snapshot of the server holds the same
//! stored file (keyed by the file's checksum: see `kastell_repo`'s
//! `StoredEntry::key`), so pushing an unchanged backup again costs its
//! verification and little else. The backup's
//! `manifest.json` goes with it. Host is the server's name; tags are
//! `kastell`, `backup:<id>` and `platform:<id>`. Beside them,
//! `checksums.sha256` holds the SHA-256 of each decompressed artifact in
//! `sha256sum`'s format, so a copy restored by stock restic can be checked
//! with `sha256sum -c`, and kastell checks every pull against it.

use kastell_core::types::{ArtifactSource, BackupId};
use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::{BackupRepository, RepoSnapshot, StoredEntry, StreamWriter};
use serde::Serialize;

use super::catalog::SAFETY_FOR_TAG;
use super::digest::{Digesting, checksum_lines};
use super::feed::ArtifactFeed;
use super::pull::CHECKSUMS_FILE;
use crate::engine::backup::{MANIFEST_FILE, Manifest, StoredBackup, VerifiedSource};

/// What a push stored.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// The backup that was sent.
    pub backup_id: String,
    /// The snapshot it became.
    pub snapshot: RepoSnapshot,
}

/// Stores `backup` in `repo`, after verifying its checksums. Refuses a
/// backup that fails verification and one of the original tool's format
/// (no checksums: nothing proves it is whole). Blocking.
pub fn push(repo: &BackupRepository, backup: &StoredBackup) -> Result<PushReport> {
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
        let (size, sha256) = match manifest.content.iter().find(|c| c.name == record.name) {
            // Recorded as the backup streamed in: nothing to read yet.
            Some(content) => (content.size, content.sha256.clone()),
            None => content_of(&source, &record.name, &backup.id)?,
        };
        let feed = ArtifactFeed::new(source.clone(), &record.name, &sha256);
        sums.push((record.name.clone(), sha256));
        // The stored file's checksum, verified above: the same file is the
        // same content, which an earlier snapshot may already hold.
        entries.push(
            StoredEntry::new(record.name.clone(), size, Box::new(feed))
                .keyed(format!("sha256:{}", record.sha256)),
        );
    }
    for (name, bytes) in side_files(backup, &sums)? {
        entries.push(in_memory(name, bytes));
    }
    let snapshot = repo.store(&manifest.server_name, &tags_of(backup, manifest), entries)?;
    Ok(PushReport {
        backup_id: backup.id.to_string(),
        snapshot,
    })
}

/// Ends `writer`, which took `backup`'s artifacts as they streamed in (the
/// one-pass backup): adds the files a push adds beside them and writes the
/// snapshot with a push's tags, so it reads back and is reused exactly as
/// a pushed one. Refuses (writing no snapshot) when the writer did not
/// take every artifact the backup's manifest records, and nothing else.
pub fn finish_stream(writer: StreamWriter, backup: &StoredBackup) -> Result<PushReport> {
    let manifest = backup.manifest.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("backup {} has no readable manifest", backup.id),
        )
    })?;
    let mut taken = writer.entries();
    taken.sort();
    let mut recorded: Vec<String> = manifest.content.iter().map(|c| c.name.clone()).collect();
    recorded.sort();
    let artifacts = manifest.artifacts.len();
    if taken != recorded || recorded.len() != artifacts {
        return Err(Error::unexpected(format!(
            "the one-pass copy of backup {} took {} of its {artifacts} artifacts",
            backup.id,
            taken.len()
        )));
    }
    let sums: Vec<(String, String)> = manifest
        .content
        .iter()
        .map(|c| (c.name.clone(), c.sha256.clone()))
        .collect();
    for (name, bytes) in side_files(backup, &sums)? {
        let key = format!("sha256:{}", digest_of(&bytes).1);
        writer.add(name, &mut bytes.as_slice(), Some(&key))?;
    }
    let snapshot = writer.finish(&tags_of(backup, manifest))?;
    Ok(PushReport {
        backup_id: backup.id.to_string(),
        snapshot,
    })
}

/// The files stored beside a backup's artifacts: `checksums.sha256`
/// (from `sums`, each artifact's name and content SHA-256) and the
/// backup's `manifest.json`.
fn side_files(
    backup: &StoredBackup,
    sums: &[(String, String)],
) -> Result<[(&'static str, Vec<u8>); 2]> {
    let checksums = checksum_lines(sums.iter().map(|(n, h)| (n.as_str(), h.as_str())));
    // Read as the verify above read it: never through a link or a FIFO.
    let manifest_bytes =
        crate::engine::backup::BackupDir::open(&backup.dir)?.read(MANIFEST_FILE)?;
    Ok([
        (CHECKSUMS_FILE, checksums.into_bytes()),
        (MANIFEST_FILE, manifest_bytes),
    ])
}

/// A backup's tags in the repository: `backup:<id>`, `platform:<id>` and,
/// for a safety backup, what it was taken before.
fn tags_of(backup: &StoredBackup, manifest: &Manifest) -> Vec<String> {
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
    tags
}

/// The decompressed size and SHA-256 of artifact `name`, read once for
/// them: a backup older than the content digests in its manifest.
fn content_of(source: &VerifiedSource, name: &str, id: &BackupId) -> Result<(u64, String)> {
    let mut digest = Digesting::new(std::io::sink());
    std::io::copy(&mut source.open(name)?, &mut digest)
        .map_err(|e| Error::io(format!("reading {name} of backup {id}"), e))?;
    let (_, size, sha256) = digest.finish();
    Ok((size, sha256))
}

/// The size and SHA-256 of `bytes`.
fn digest_of(bytes: &[u8]) -> (u64, String) {
    let mut digest = Digesting::new(std::io::sink());
    // Writing into a sink cannot fail.
    let _ = std::io::Write::write_all(&mut digest, bytes);
    let (_, size, sha256) = digest.finish();
    (size, sha256)
}

/// A small file held in memory, keyed by its own SHA-256.
fn in_memory(name: &str, bytes: Vec<u8>) -> StoredEntry {
    let (size, sha256) = digest_of(&bytes);
    StoredEntry::new(name, size, Box::new(std::io::Cursor::new(bytes)))
        .keyed(format!("sha256:{sha256}"))
}
