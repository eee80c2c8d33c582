//! Reading a stored backup without following links: the backup directory
//! and every file in it (manifest, artifacts) must be what they claim, a
//! real directory and regular files, never a symbolic link that points
//! outside the store, a FIFO or a device.
//!
//! Each file is opened relative to a descriptor of its backup directory,
//! both opened with `O_NOFOLLOW`, and checked on the open descriptor, so a
//! link put in place between a check and a read is refused too. The store's
//! root (`KASTELL_DIR/backups`) and the server directories may be links
//! (backups moved to another disk); only what is inside a backup is held
//! to this rule.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};
use rustix::fs::{Mode, OFlags};

/// The refusal of a backup entry that is not what it must be: `Corrupt`,
/// naming the path and what it is.
pub(crate) fn not_plain(path: &Path, what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "{} is {what}; kastell never follows links or reads special files in the backup store",
            path.display()
        ),
    )
    .with_hint("Do not restore this backup: remove the entry (or the backup) and take a new one")
}

/// What `meta` is, when it is not `want` (a directory or a regular file):
/// `Some("a symbolic link")` and so on; `None` when it is.
pub(crate) fn misfit(meta: &std::fs::Metadata, want_dir: bool) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Some("a symbolic link");
    }
    match (want_dir, kind.is_dir(), kind.is_file()) {
        (true, true, _) | (false, _, true) => None,
        (true, false, _) => Some("not a directory"),
        (false, true, _) => Some("a directory, not a file"),
        (false, false, false) => Some("not a regular file"),
    }
}

/// Checks `path` without following it: refuses (`Corrupt`) a link or an
/// entry of the wrong kind; a missing one is an I/O error (`NotFound`).
pub(crate) fn check_entry(path: &Path, want_dir: bool) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    match misfit(&meta, want_dir) {
        Some(what) => Err(not_plain(path, what)),
        None => Ok(()),
    }
}

fn opened(path: &Path, result: rustix::io::Result<OwnedFd>) -> Result<OwnedFd> {
    result.map_err(|errno| {
        if errno == rustix::io::Errno::LOOP {
            not_plain(path, "a symbolic link")
        } else if errno == rustix::io::Errno::NOTDIR {
            not_plain(path, "not a directory")
        } else {
            Error::io(format!("opening {}", path.display()), errno.into())
        }
    })
}

/// A backup directory, opened without following a link.
#[derive(Debug)]
pub(crate) struct BackupDir {
    fd: OwnedFd,
    path: std::path::PathBuf,
}

impl BackupDir {
    /// Opens the backup directory `path`. Refuses (`Corrupt`) a symbolic
    /// link or anything but a directory.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        check_entry(path, true)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = opened(path, rustix::fs::open(path, flags, Mode::empty()))?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// The directory's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `name` (a plain name) in this directory for reading. Refuses
    /// (`Corrupt`) a symbolic link, a FIFO (opened without blocking, so it
    /// cannot hang the read), a device or a directory; a missing file is an
    /// I/O error (`NotFound`).
    pub(crate) fn open_file(&self, name: &str) -> Result<File> {
        let path = self.path.join(name);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = opened(
            &path,
            rustix::fs::openat(&self.fd, name, flags, Mode::empty()),
        )?;
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if let Some(what) = misfit(&meta, false) {
            return Err(not_plain(&path, what));
        }
        Ok(file)
    }

    /// The whole of `name` in this directory, read as [`Self::open_file`]
    /// opens it.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::new();
        self.open_file(name)?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("reading {}", self.path.join(name).display()), e))?;
        Ok(bytes)
    }

    /// The metadata of `name` in this directory, not following a link.
    /// Refuses (`Corrupt`) a link or anything but a regular file.
    pub(crate) fn file_meta(&self, name: &str) -> Result<std::fs::Metadata> {
        let path = self.path.join(name);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        match misfit(&meta, false) {
            Some(what) => Err(not_plain(&path, what)),
            None => Ok(meta),
        }
    }
}
