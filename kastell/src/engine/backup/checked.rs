//! A stored artifact read decompressed and checked in the same read: the
//! stored file is hashed as the decompressor takes it in, and the read
//! that ends the decompressed stream fails unless the whole stored file
//! hashed to the SHA-256 its manifest records (as does a read that fails
//! to decompress it, when the file is not the one recorded). What a push
//! sends is read
//! once instead of verified first and read again; a consumer must treat
//! everything it took as unproven until that last read succeeded (the
//! repository's streaming writer does: a failed entry writes no
//! snapshot).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex, PoisonError};

use kastell_core::types::ArtifactRecord;
use kastell_core::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

use super::manifest::stored_file;
use super::nofollow::BackupDir;
use super::stored::{StoredBackup, decoded};

/// The stored file and the hash of what has been read of it.
struct Stored {
    file: File,
    hasher: Sha256,
}

/// The stored file as the decompressor reads it: every byte read is
/// hashed.
struct Hashing(Arc<Mutex<Stored>>);

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut stored = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = stored.file.read(buf)?;
        stored.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An artifact's decompressed bytes whose last read checks the stored
/// file (see the module).
pub(crate) struct CheckedArtifact {
    decoded: Box<dyn Read + Send>,
    stored: Arc<Mutex<Stored>>,
    expected: String,
    what: String,
    ended: bool,
}

impl StoredBackup {
    /// Artifact `record` of this backup, read decompressed and checked
    /// as it is read (see [`CheckedArtifact`]). Refuses (`Corrupt`) a
    /// stored file that is a link or not a regular file; a missing one is
    /// `NotFound`.
    pub(crate) fn open_checked(&self, record: &ArtifactRecord) -> Result<CheckedArtifact> {
        let name = stored_file(record);
        let file = BackupDir::open(&self.dir)?.open_file(&name)?;
        let stored = Arc::new(Mutex::new(Stored {
            file,
            hasher: Sha256::new(),
        }));
        let raw = BufReader::with_capacity(1 << 20, Hashing(Arc::clone(&stored)));
        let decoded = decoded(record.compression, raw, &self.dir.join(&name))?;
        Ok(CheckedArtifact {
            decoded,
            stored,
            expected: record.sha256.clone(),
            what: format!("{name} in backup {}", self.id),
            ended: false,
        })
    }
}

impl CheckedArtifact {
    /// Reads what the decompressor left of the stored file and compares
    /// the whole file's hash with the manifest's.
    fn check(&mut self) -> io::Result<()> {
        io::copy(&mut Hashing(Arc::clone(&self.stored)), &mut io::sink())?;
        let mut stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
        let actual: String = stored
            .hasher
            .finalize_reset()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if actual == self.expected {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} does not match its checksum", self.what),
            ))
        }
    }
}

impl Read for CheckedArtifact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        match self.decoded.read(buf) {
            Ok(0) => {
                self.ended = true;
                self.check()?;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            // A damaged file usually fails to decompress before it ends:
            // say that it is not the file the backup stored, when so.
            Err(e) => {
                self.ended = true;
                self.check()?;
                Err(e)
            }
        }
    }
}

/// `error` from reading a [`CheckedArtifact`] as kastell's error: a
/// stored file that did not match its checksum is `Corrupt`, with what to
/// do.
pub(crate) fn read_error(what: &str, error: io::Error) -> Error {
    if error.kind() == io::ErrorKind::InvalidData {
        return Error::new(ErrorKind::Corrupt, format!("{what}: {error}"))
            .with_hint("The file changed or was damaged after the backup; push another backup");
    }
    Error::io(what, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kastell_core::types::{ArtifactFormat, ArtifactSink, ArtifactSpec, BackupId, Compression};
    use std::io::Write;

    fn staged(dir: &std::path::Path, data: &[u8]) -> (StoredBackup, ArtifactRecord) {
        let id = BackupId::at(std::time::SystemTime::now());
        let mut staging = super::super::Staging::create(dir, &id, Compression::Zstd).unwrap();
        let mut writer = staging
            .open(&ArtifactSpec {
                name: "db.dump".to_owned(),
                format: ArtifactFormat::Raw,
            })
            .unwrap();
        writer.write_all(data).unwrap();
        writer.flush().unwrap();
        drop(writer);
        let record = staging.seal("db.dump").unwrap();
        let manifest = super::super::Manifest::from_json(
            format!(r#"{{"serverName":"web","timestamp":"{id}","formatVersion":2}}"#).as_bytes(),
            "a test manifest",
        )
        .unwrap();
        let published = staging.publish(manifest).unwrap();
        (StoredBackup::load(id, published), record)
    }

    #[test]
    fn a_stored_file_is_checked_by_the_read_that_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = b"row 1\nrow 2\n".repeat(50_000);
        let (backup, record) = staged(dir.path(), &data);
        let mut back = Vec::new();
        backup
            .open_checked(&record)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);

        // A manifest that records another file: every decompressed byte
        // comes through, and the read that ends the stream fails.
        let mut other = record.clone();
        other.sha256 = "0".repeat(64);
        let mut reader = backup.open_checked(&other).unwrap();
        let mut taken = vec![0u8; data.len()];
        reader.read_exact(&mut taken).unwrap();
        assert!(taken == data);
        let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
        let error = read_error("pushing db.dump", error);
        assert_eq!(error.kind(), ErrorKind::Corrupt, "{error}");
        assert!(error.to_string().contains("does not match"), "{error}");
    }
}
