//! An in-memory artifact store that is both sink and source.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::types::{
    AppData, AppSelection, ArtifactRecord, ArtifactSink, ArtifactSource, ArtifactSpec, Compression,
};

type Buffers = Arc<Mutex<BTreeMap<String, (ArtifactSpec, Vec<u8>)>>>;

/// Artifacts held in memory: write them as a sink, read them back as a
/// source. Checksums are computed when an artifact is sealed and checked
/// again when it is opened for reading.
#[derive(Debug, Clone, Default)]
pub struct MemoryArtifacts {
    buffers: Buffers,
    sealed: Arc<Mutex<BTreeMap<String, ArtifactRecord>>>,
    apps: AppSelection,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryArtifacts {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same store (shared), as a sink that backs up only the apps
    /// `apps` selects.
    pub fn with_apps(mut self, apps: AppSelection) -> Self {
        self.apps = apps;
        self
    }

    /// The bytes of artifact `name`, sealed or not.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.buffers).get(name).map(|(_, b)| b.clone())
    }

    /// Replaces the bytes of a sealed artifact without updating its record,
    /// to simulate corruption.
    pub fn corrupt(&self, name: &str) {
        if let Some((_, bytes)) = lock(&self.buffers).get_mut(name) {
            bytes.push(0xFF);
        }
    }
}

struct BufferWriter {
    buffers: Buffers,
    name: String,
}

impl Write for BufferWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buffers = lock(&self.buffers);
        let entry = buffers
            .get_mut(&self.name)
            .ok_or_else(|| std::io::Error::other("artifact vanished"))?;
        entry.1.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl ArtifactSink for MemoryArtifacts {
    fn open(&mut self, spec: &ArtifactSpec) -> Result<Box<dyn Write + Send>> {
        if !valid_name(&spec.name) {
            return Err(Error::invalid_input(format!(
                "artifact name {:?} is not a plain file name",
                spec.name
            )));
        }
        let mut buffers = lock(&self.buffers);
        if buffers.contains_key(&spec.name) {
            return Err(Error::new(
                crate::ErrorKind::AlreadyExists,
                format!("artifact {} was already opened", spec.name),
            ));
        }
        buffers.insert(spec.name.clone(), (spec.clone(), Vec::new()));
        Ok(Box::new(BufferWriter {
            buffers: self.buffers.clone(),
            name: spec.name.clone(),
        }))
    }

    fn seal(&mut self, name: &str) -> Result<ArtifactRecord> {
        let buffers = lock(&self.buffers);
        let (spec, bytes) = buffers
            .get(name)
            .ok_or_else(|| Error::not_found(format!("artifact {name} was never opened")))?;
        let record = ArtifactRecord {
            name: name.to_owned(),
            format: spec.format,
            compression: Compression::None,
            size: bytes.len() as u64,
            sha256: hex_sha256(bytes),
            app: None,
        };
        lock(&self.sealed).insert(name.to_owned(), record.clone());
        Ok(record)
    }

    fn apps(&self) -> &AppSelection {
        &self.apps
    }

    fn assign_app(&mut self, name: &str, app: &AppData) -> Result<ArtifactRecord> {
        let mut sealed = lock(&self.sealed);
        let record = sealed
            .get_mut(name)
            .ok_or_else(|| Error::not_found(format!("artifact {name} was never sealed")))?;
        record.app = Some(app.clone());
        Ok(record.clone())
    }
}

impl ArtifactSource for MemoryArtifacts {
    fn records(&self) -> Vec<ArtifactRecord> {
        lock(&self.sealed).values().cloned().collect()
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let record = lock(&self.sealed)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no sealed artifact named {name}")))?;
        let bytes = self
            .bytes(name)
            .ok_or_else(|| Error::not_found(format!("artifact {name} has no data")))?;
        if hex_sha256(&bytes) != record.sha256 {
            return Err(Error::new(
                crate::ErrorKind::Corrupt,
                format!("artifact {name} does not match its checksum"),
            ));
        }
        Ok(Box::new(Cursor::new(bytes)))
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ArtifactFormat;

    #[test]
    fn write_seal_read_and_detect_corruption() {
        let mut store = MemoryArtifacts::new();
        let spec = ArtifactSpec {
            name: "db.dump".into(),
            format: ArtifactFormat::PgCustom,
        };
        let mut w = ArtifactSink::open(&mut store, &spec).unwrap();
        w.write_all(b"hello").unwrap();
        drop(w);
        let record = store.seal("db.dump").unwrap();
        assert_eq!(record.size, 5);
        assert_eq!(
            record.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let mut back = String::new();
        ArtifactSource::open(&store, "db.dump")
            .unwrap()
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back, "hello");
        assert!(ArtifactSink::open(&mut store, &spec).is_err());
        let bad = ArtifactSpec {
            name: "../x".into(),
            format: ArtifactFormat::Raw,
        };
        assert!(ArtifactSink::open(&mut store, &bad).is_err());
        store.corrupt("db.dump");
        let err = ArtifactSource::open(&store, "db.dump").err().unwrap();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
    }
}
