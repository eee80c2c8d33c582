//! Reading a kastell backup back out of a repository: verifying it there
//! (every artifact read and hashed against the checksums recorded at
//! push time) or pulling it into the local store, where it is listed,
//! verified and restored like any local backup.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use kastell_core::types::{ArtifactSink, ArtifactSpec, BackupId, Compression};
use kastell_core::{Error, ErrorKind, Result};
use kastell_repo::BackupRepository;

use super::catalog::RepoBackup;
use super::digest::{Digesting, parse_checksums};
use crate::engine::backup::{MANIFEST_FILE, Manifest, Staging};

/// The file, in each snapshot kastell pushes, holding the SHA-256 of every
/// decompressed artifact in `sha256sum`'s format.
pub(crate) const CHECKSUMS_FILE: &str = "checksums.sha256";

/// A snapshot's manifest and recorded content checksums (`None` for a
/// snapshot pushed before kastell recorded them).
struct Contents {
    manifest: Manifest,
    sums: Option<BTreeMap<String, String>>,
}

fn read_small(repo: &BackupRepository, snapshot: &str, name: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    repo.read(snapshot, name, &mut bytes)?;
    Ok(bytes)
}

fn contents(repo: &BackupRepository, backup: &RepoBackup) -> Result<Contents> {
    let origin = format!("the manifest of snapshot {}", short(&backup.snapshot_id));
    let manifest = Manifest::from_json(
        &read_small(repo, &backup.snapshot_id, MANIFEST_FILE)?,
        &origin,
    )?;
    if !manifest.has_checksums() {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("{origin} lists no artifacts"),
        ));
    }
    let sums = match read_small(repo, &backup.snapshot_id, CHECKSUMS_FILE) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let pairs = parse_checksums(&text).ok_or_else(|| {
                Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{CHECKSUMS_FILE} of snapshot {} is not sha256sum output",
                        short(&backup.snapshot_id)
                    ),
                )
            })?;
            Some(pairs.into_iter().collect())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(Contents { manifest, sums })
}

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// Compares what was read of `name` with the recorded checksum.
fn check_sum(contents: &Contents, backup: &RepoBackup, name: &str, actual: &str) -> Result<()> {
    let Some(sums) = &contents.sums else {
        return Ok(());
    };
    match sums.get(name) {
        Some(expected) if expected == actual => Ok(()),
        Some(_) => Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "{name} of backup {} in snapshot {} does not match the checksum recorded when it was stored",
                backup.backup_id,
                short(&backup.snapshot_id)
            ),
        )
        .with_hint("Run `kastell repo check NAME --read-data`, and restore another backup")),
        None => Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "{CHECKSUMS_FILE} of snapshot {} has no line for {name}",
                short(&backup.snapshot_id)
            ),
        )),
    }
}

fn unchecked_warning(backup: &RepoBackup) -> Vec<String> {
    vec![format!(
        "snapshot {} was stored before kastell recorded content checksums: it was checked by the repository's own authentication only",
        short(&backup.snapshot_id)
    )]
}

/// Reads every artifact of `backup` from `repo` and compares its SHA-256
/// with the checksum recorded at push time (the repository itself
/// authenticates every chunk as it is decrypted). Returns warnings; refuses
/// (`Corrupt`) a mismatch or an unreadable manifest. Blocking.
pub(crate) fn verify(repo: &BackupRepository, backup: &RepoBackup) -> Result<Vec<String>> {
    let contents = contents(repo, backup)?;
    for record in &contents.manifest.artifacts {
        let mut digest = Digesting::new(std::io::sink());
        repo.read(&backup.snapshot_id, &record.name, &mut digest)?;
        let (_, _, sha256) = digest.finish();
        check_sum(&contents, backup, &record.name, &sha256)?;
    }
    Ok(match contents.sums {
        Some(_) => Vec::new(),
        None => unchecked_warning(backup),
    })
}

/// Copies `backup` out of repository `repo_name` into `server_dir` of the
/// local store, under its own backup id, compressed with zstd, each
/// artifact checked against its recorded checksum while it streams. The
/// copy is staged and published whole, its manifest naming where it came
/// from; on any failure nothing is left. Refuses an id already in the
/// local store (`AlreadyExists`). Returns the new directory and warnings.
/// Blocking.
pub(crate) fn pull(
    repo: &BackupRepository,
    repo_name: &str,
    backup: &RepoBackup,
    server_dir: &Path,
) -> Result<(PathBuf, Vec<String>)> {
    let contents = contents(repo, backup)?;
    let id = BackupId::new(backup.backup_id.clone())?;
    let mut staging = Staging::create(server_dir, &id, Compression::Zstd)?;
    for record in &contents.manifest.artifacts {
        let spec = ArtifactSpec {
            name: record.name.clone(),
            format: record.format,
        };
        let mut digest = Digesting::new(staging.open(&spec)?);
        repo.read(&backup.snapshot_id, &record.name, &mut digest)?;
        let (mut writer, _, sha256) = digest.finish();
        writer
            .flush()
            .map_err(|e| Error::io(format!("writing {} locally", record.name), e))?;
        drop(writer);
        staging.seal(&record.name)?;
        check_sum(&contents, backup, &record.name, &sha256)?;
    }
    let mut manifest = contents.manifest.clone();
    manifest.pulled_from = Some(format!(
        "{repo_name} snapshot {}",
        short(&backup.snapshot_id)
    ));
    let dir = staging.publish(manifest)?;
    Ok((
        dir,
        match contents.sums {
            Some(_) => Vec::new(),
            None => unchecked_warning(backup),
        },
    ))
}
