//! Sending a local backup into a repository as one snapshot, through the
//! repository's streaming writer (the one way kastell writes a snapshot,
//! as `backup create --repo` does while the backup is taken).
//!
//! Each artifact is stored decompressed, so the repository deduplicates
//! it against earlier backups (an unchanged database adds almost nothing)
//! and stock `restic dump` yields the plain dump or archive. An artifact
//! whose stored file an earlier snapshot of the server already holds
//! (keyed by that file's SHA-256, which the manifest records: see
//! `kastell_repo`'s `StoredEntry::key`) is taken from that snapshot and
//! not read at all: its content there was checked when it was first
//! stored, so pushing an unchanged backup again reads none of its files.
//! Every other artifact is read once, on a thread of its own
//! (`feed`): decompressed and its stored file hashed in the same read,
//! the snapshot written only when every file matched the manifest's
//! checksum. The backup's `manifest.json` goes with it. Host is the
//! server's name; tags are `kastell`, `backup:<id>` and `platform:<id>`.
//! Beside them, `checksums.sha256` holds the SHA-256 of each decompressed
//! artifact in `sha256sum`'s format, so a copy restored by stock restic
//! can be checked with `sha256sum -c`, and kastell checks every pull
//! against it.

use kastell_core::types::BackupId;
use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::{BackupRepository, RepoSnapshot, StreamWriter};
use serde::Serialize;

use super::catalog::SAFETY_FOR_TAG;
use super::digest::{Digesting, checksum_lines};
use super::feed::ArtifactFeed;
use super::pull::CHECKSUMS_FILE;
use crate::engine::backup::{BackupStatus, MANIFEST_FILE, Manifest, StoredBackup, read_error};

/// What a push stored.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// The backup that was sent.
    pub backup_id: String,
    /// The snapshot it became.
    pub snapshot: RepoSnapshot,
}

/// Stores `backup` in `repo` through the streaming writer. Refuses before
/// writing anything a backup without a readable manifest, one of the
/// original tool's format (no checksums: nothing proves it is whole) and
/// one whose files are missing or of the wrong size; and, writing no
/// snapshot, one whose stored file does not match its checksum. Blocking.
pub fn push(repo: &BackupRepository, backup: &StoredBackup) -> Result<PushReport> {
    let manifest = manifest_of(backup)?;
    if !manifest.has_checksums() {
        return Err(Error::invalid_input(format!(
            "backup {} was made by the original tool and has no checksums",
            backup.id
        ))
        .with_hint("Take a new backup with kastell and send that one"));
    }
    if backup.status == BackupStatus::Corrupt {
        let problem = backup.problem.as_deref().unwrap_or("a file is damaged");
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("backup {} is damaged: {problem}", backup.id),
        )
        .with_hint("Push another backup; this one cannot be restored"));
    }
    let writer = repo.stream(&manifest.server_name)?;
    let mut sums = Vec::new();
    for record in &manifest.artifacts {
        let recorded = manifest.content.iter().find(|c| c.name == record.name);
        // The stored file's checksum: the same file is the same content,
        // which an earlier snapshot may already hold.
        let key = format!("sha256:{}", record.sha256);
        if let Some(content) = recorded {
            if writer
                .reuse(&record.name, &key, Some(content.size))?
                .is_some()
            {
                sums.push((record.name.clone(), content.sha256.clone()));
                continue;
            }
        }
        let what = format!("pushing {} of backup {}", record.name, backup.id);
        let mut feed = ArtifactFeed::start(backup.clone(), record.clone(), recorded.is_none())
            .map_err(|e| Error::io(&what, e))?;
        let mut entry = writer.entry(&record.name)?;
        std::io::copy(&mut feed, &mut entry)
            .map_err(|e| writer.failure().unwrap_or_else(|| read_error(&what, e)))?;
        entry.finish(Some(&key))?;
        let sha256 = match (recorded, feed.content()) {
            (Some(content), _) => content.sha256.clone(),
            (None, Some((_, sha256))) => sha256.clone(),
            (None, None) => return Err(Error::unexpected(format!("{what}: no content digest"))),
        };
        sums.push((record.name.clone(), sha256));
    }
    add_side_files(&writer, backup, &sums)?;
    let snapshot = writer.finish(&tags_of(backup, manifest))?;
    Ok(PushReport {
        backup_id: backup.id.to_string(),
        snapshot,
    })
}

/// `backup`'s manifest, or `Corrupt` when it has none.
fn manifest_of(backup: &StoredBackup) -> Result<&Manifest> {
    backup.manifest.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("backup {} has no readable manifest", backup.id),
        )
    })
}

/// Ends `writer`, which took `backup`'s artifacts as they streamed in (the
/// one-pass backup): adds the files a push adds beside them and writes the
/// snapshot with a push's tags, so it reads back and is reused exactly as
/// a pushed one. Refuses (writing no snapshot) when the writer did not
/// take every artifact the backup's manifest records, and nothing else.
pub fn finish_stream(writer: StreamWriter, backup: &StoredBackup) -> Result<PushReport> {
    let manifest = manifest_of(backup)?;
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
    add_side_files(&writer, backup, &sums)?;
    let snapshot = writer.finish(&tags_of(backup, manifest))?;
    Ok(PushReport {
        backup_id: backup.id.to_string(),
        snapshot,
    })
}

/// Adds the files stored beside a backup's artifacts to `writer`:
/// `checksums.sha256` (from `sums`, each artifact's name and content
/// SHA-256) and the backup's `manifest.json`, each keyed by its own
/// SHA-256 (and so taken unread when an earlier snapshot holds it).
fn add_side_files(
    writer: &StreamWriter,
    backup: &StoredBackup,
    sums: &[(String, String)],
) -> Result<()> {
    let checksums = checksum_lines(sums.iter().map(|(n, h)| (n.as_str(), h.as_str())));
    // Read as the backup's files are: never through a link or a FIFO.
    let manifest_bytes =
        crate::engine::backup::BackupDir::open(&backup.dir)?.read(MANIFEST_FILE)?;
    for (name, bytes) in [
        (CHECKSUMS_FILE, checksums.into_bytes()),
        (MANIFEST_FILE, manifest_bytes),
    ] {
        let (size, sha256) = digest_of(&bytes);
        let key = format!("sha256:{sha256}");
        if writer.reuse(name, &key, Some(size))?.is_none() {
            writer.add(name, &mut bytes.as_slice(), Some(&key))?;
        }
    }
    Ok(())
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

/// The size and SHA-256 of `bytes`.
fn digest_of(bytes: &[u8]) -> (u64, String) {
    let mut digest = Digesting::new(std::io::sink());
    // Writing into a sink cannot fail.
    let _ = std::io::Write::write_all(&mut digest, bytes);
    let (_, size, sha256) = digest.finish();
    (size, sha256)
}
