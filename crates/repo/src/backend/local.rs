//! A repository in a directory on this machine (a mounted disk, a NAS).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kastell_core::Error;
use rustic_core::{BytesList, FileType, Id, ReadBackend, RusticResult, WriteBackend};

use super::{DIRECTORIES, object_path};
use crate::error::to_rustic;

/// Files in a local directory, created 0700 (files 0600). A file is
/// written under a temporary name, synced and renamed, so a crash leaves
/// no partial file under a repository name.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    /// The repository at `root` (created by [`WriteBackend::create`]).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, tpe: FileType, id: &Id) -> PathBuf {
        self.root.join(object_path(tpe, id))
    }
}

fn io(what: &str, path: &Path, err: std::io::Error) -> Box<rustic_core::RusticError> {
    to_rustic(Error::io(format!("{what} {}", path.display()), err))
}

fn make_dir(path: &Path) -> RusticResult<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io("creating", path, e))
}

impl ReadBackend for LocalBackend {
    fn location(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let path = self.root.join("config");
            return match fs::metadata(&path) {
                Ok(meta) => Ok(vec![(Id::default(), size_u32(meta.len()))]),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(io("reading", &path, e)),
            };
        }
        let mut found = Vec::new();
        let mut pending = vec![self.root.join(tpe.dirname())];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("listing", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io("listing", &dir, e))?;
                let meta = entry
                    .metadata()
                    .map_err(|e| io("reading", &entry.path(), e))?;
                if meta.is_dir() {
                    pending.push(entry.path());
                } else if let Ok(id) = entry.file_name().to_string_lossy().parse::<Id>() {
                    found.push((id, size_u32(meta.len())));
                }
            }
        }
        Ok(found)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        fs::read(&path)
            .map(Bytes::from)
            .map_err(|e| io("reading", &path, e))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        let mut file = File::open(&path).map_err(|e| io("opening", &path, e))?;
        file.seek(SeekFrom::Start(offset.into()))
            .map_err(|e| io("reading", &path, e))?;
        let mut data = vec![0; length as usize];
        file.read_exact(&mut data)
            .map_err(|e| io("reading", &path, e))?;
        Ok(data.into())
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).display().to_string()
    }
}

impl WriteBackend for LocalBackend {
    fn create(&self) -> RusticResult<()> {
        for dir in DIRECTORIES {
            make_dir(&self.root.join(dir))?;
        }
        for byte in 0..=255u8 {
            make_dir(&self.root.join("data").join(format!("{byte:02x}")))?;
        }
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let dir = path.parent().unwrap_or(&self.root);
        make_dir(dir)?;
        let temporary = dir.join(format!(
            ".{}.tmp-{}",
            id.to_hex().as_str(),
            std::process::id()
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?;
            for part in content.slice() {
                file.write_all(part)?;
            }
            file.sync_all()?;
            fs::rename(&temporary, &path)?;
            File::open(dir)?.sync_all()
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temporary);
            io("writing", &path, e)
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        fs::remove_file(&path).map_err(|e| io("removing", &path, e))
    }
}

/// A file size as the backend trait wants it (restic's files stay far
/// below 4 GiB; a bigger one is reported as the maximum and fails to read).
fn size_u32(len: u64) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
