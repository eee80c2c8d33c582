//! A published backup on disk: listing status, checksum verification, and
//! an [`ArtifactSource`] that hands out decompressed streams only after
//! every checksum matched.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use kastell_core::types::{AppSelection, ArtifactRecord, ArtifactSource, BackupId, Compression};
use kastell_core::{Error, ErrorKind, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::manifest::{Manifest, stored_file};
use super::nofollow::BackupDir;
use super::transfer::{Counted, TransferProgress};

/// What a listed backup looks like from the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    /// kastell's format, every file present with the recorded size.
    Complete,
    /// The original tool's format: no checksums to verify against.
    UnverifiedLegacy,
    /// Manifest unreadable, or a file missing or of the wrong size.
    Corrupt,
}

/// A backup on disk.
#[derive(Debug, Clone)]
pub struct StoredBackup {
    /// Its id.
    pub id: BackupId,
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest (`None` when unreadable).
    pub manifest: Option<Manifest>,
    /// Its status from the listing checks (sizes, not checksums).
    pub status: BackupStatus,
    /// Why it is corrupt, when it is.
    pub problem: Option<String>,
}

impl StoredBackup {
    /// Reads the backup in `dir` and checks its files' presence, kind and
    /// sizes. A backup directory, manifest or artifact that is a symbolic
    /// link or not a directory / regular file makes it `Corrupt` (never
    /// followed, see [`super::nofollow`]).
    pub fn load(id: BackupId, dir: PathBuf) -> Self {
        let corrupt = |id, dir, problem: String| Self {
            id,
            dir,
            manifest: None,
            status: BackupStatus::Corrupt,
            problem: Some(problem),
        };
        let opened = BackupDir::open(&dir).and_then(|d| {
            let manifest = Manifest::read_in(&d)?;
            Ok((d, manifest))
        });
        let (backup_dir, manifest) = match opened {
            Ok(opened) => opened,
            Err(e) => return corrupt(id, dir, e.message().to_owned()),
        };
        let problem = manifest.records(&dir).iter().find_map(|r| {
            let name = stored_file(r);
            match backup_dir.file_meta(&name) {
                Err(e) if e.kind() == ErrorKind::Corrupt => Some(e.message().to_owned()),
                Err(_) => Some(format!("missing file {name}")),
                Ok(m) if manifest.has_checksums() && m.len() != r.size => Some(format!(
                    "{name} is {} bytes, the manifest says {}",
                    m.len(),
                    r.size
                )),
                Ok(_) => None,
            }
        });
        let status = match (&problem, manifest.has_checksums()) {
            (Some(_), _) => BackupStatus::Corrupt,
            (None, true) => BackupStatus::Complete,
            (None, false) => BackupStatus::UnverifiedLegacy,
        };
        Self {
            id,
            dir,
            manifest: Some(manifest),
            status,
            problem,
        }
    }

    /// The backup whose restore this one is the safety backup of (the
    /// state that restore replaced), or `None` for an ordinary backup or
    /// an unreadable manifest.
    pub fn safety_for(&self) -> Option<&str> {
        self.manifest.as_ref().and_then(Manifest::safety_for)
    }

    /// Recomputes every file's SHA-256 and compares it with the manifest.
    /// Refuses (`Corrupt`) a backup whose manifest is unreadable, whose file
    /// is missing, or whose checksum differs. A legacy backup has nothing to
    /// compare against: it passes with a warning in the returned list.
    pub fn verify(&self) -> Result<Vec<String>> {
        let manifest = self.manifest.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupt,
                match &self.problem {
                    Some(problem) => {
                        format!("backup {} has no readable manifest: {problem}", self.id)
                    }
                    None => format!("backup {} has no readable manifest", self.id),
                },
            )
            .with_hint("Do not restore this backup; take a new one")
        })?;
        if !manifest.has_checksums() {
            let dir = BackupDir::open(&self.dir)?;
            for record in manifest.records(&self.dir) {
                dir.file_meta(&stored_file(&record))?;
            }
            return Ok(vec![format!(
                "backup {} was made by the original tool and has no checksums: it cannot be verified",
                self.id
            )]);
        }
        let dir = BackupDir::open(&self.dir)?;
        for record in &manifest.artifacts {
            let actual = sha256_of(&dir, &stored_file(record))?;
            if actual != record.sha256 {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{} in backup {} does not match its checksum",
                        stored_file(record),
                        self.id
                    ),
                )
                .with_hint(
                    "The file changed or was damaged after the backup; restore another backup",
                ));
            }
        }
        Ok(Vec::new())
    }

    /// An [`ArtifactSource`] over this backup, after [`StoredBackup::verify`]
    /// passed. Returns the source and verification warnings.
    pub fn source(&self) -> Result<(VerifiedSource, Vec<String>)> {
        let warnings = self.verify()?;
        let manifest = self
            .manifest
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "no manifest"))?;
        Ok((
            VerifiedSource {
                dir: self.dir.clone(),
                records: manifest.records(&self.dir),
                transfer: TransferProgress::none(),
                server_unzstd: false,
            },
            warnings,
        ))
    }
}

/// The SHA-256 of `name` in `dir`. A file that is missing, a link or not
/// a regular file is refused (`Corrupt`).
fn sha256_of(dir: &BackupDir, name: &str) -> Result<String> {
    let file = dir.open_file(name).map_err(|e| {
        if e.kind() == ErrorKind::Corrupt {
            e
        } else {
            Error::new(ErrorKind::Corrupt, format!("cannot read {name}: {e}"))
        }
    })?;
    let path = Path::new(name);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Artifacts of a verified backup, read decompressed.
#[derive(Debug, Clone)]
pub struct VerifiedSource {
    dir: PathBuf,
    records: Vec<ArtifactRecord>,
    transfer: TransferProgress,
    server_unzstd: bool,
}

impl VerifiedSource {
    /// Reports to `transfer` how much of each artifact has been read, as
    /// `sending <name>`: the bytes of the stored (compressed) file consumed
    /// so far, out of its stored size from the manifest, so the count ends
    /// at the artifact's recorded size.
    pub fn with_transfer(mut self, transfer: TransferProgress) -> Self {
        self.transfer = transfer;
        self
    }

    /// Tells the platform the host can decompress zstd (the engine asked
    /// it), so stored zstd artifacts are sent as they are (default: no,
    /// sent decompressed).
    pub fn with_server_unzstd(mut self, unzstd: bool) -> Self {
        self.server_unzstd = unzstd;
        self
    }
}

impl VerifiedSource {
    /// The record, path and counted reader of the stored file of `name`.
    fn stored(&self, name: &str) -> Result<(&ArtifactRecord, PathBuf, Counted<BufReader<File>>)> {
        let record = self
            .records
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::not_found(format!("the backup has no artifact {name}")))?;
        let path = self.dir.join(stored_file(record));
        let file = BackupDir::open(&self.dir)?.open_file(&stored_file(record))?;
        let reader = self.transfer.reader(
            format!("sending {name}"),
            Some(record.size),
            BufReader::with_capacity(1 << 20, file),
        );
        Ok((record, path, reader))
    }
}

#[deny(clippy::missing_trait_methods)]
impl ArtifactSource for VerifiedSource {
    fn server_unzstd(&self) -> bool {
        self.server_unzstd
    }

    /// Every app: the engine scopes a restore with a `ScopedSource` around
    /// this one.
    fn apps(&self) -> &AppSelection {
        AppSelection::every()
    }

    fn open_stored(&self, name: &str) -> Result<(Box<dyn Read + Send>, Compression)> {
        let (record, _, reader) = self.stored(name)?;
        Ok((Box::new(reader), record.compression))
    }

    fn records(&self) -> Vec<ArtifactRecord> {
        self.records.clone()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let (record, path, reader) = self.stored(name)?;
        decoded(record.compression, reader, &path)
    }
}

/// `reader`, the stored file at `path`, decompressed as `compression`
/// says.
pub(super) fn decoded<R: BufRead + Send + 'static>(
    compression: Compression,
    reader: R,
    path: &Path,
) -> Result<Box<dyn Read + Send>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader)
                .map_err(|e| Error::io(format!("decompressing {}", path.display()), e))?,
        ),
    })
}
