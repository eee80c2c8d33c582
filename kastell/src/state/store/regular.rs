//! Opening the files kastell keeps in its directory without ever waiting
//! on one that is not a file: a FIFO, a device or a socket put in place
//! of `servers.json`, `safety.json`, the audit log or a lock file would
//! otherwise block the open (or the read) forever, and with it every
//! command and every MCP call.
//!
//! Each file is opened with `O_NONBLOCK` (a FIFO then opens at once, or
//! fails at once when opened for writing with no reader) and checked with
//! `fstat` on the descriptor itself, so there is no gap between the check
//! and the use for another process to swap the file.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind as IoKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};

/// What a non-regular file is, in words.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// The refusal for `path`, which is `what`.
fn not_regular(path: &Path, what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidState,
        format!("{} is {what}, not a regular file", path.display()),
    )
    .with_hint(format!(
        "kastell reads and writes only regular files in its directory; move {} aside and \
         restore the file (or remove it to start without it)",
        path.display()
    ))
}

/// Checks that the open `file` at `path` is a regular file.
pub(crate) fn ensure_regular(file: File, path: &Path) -> Result<File> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("inspecting {}", path.display()), e))?;
    if meta.file_type().is_file() {
        Ok(file)
    } else {
        Err(not_regular(path, kind_of(meta.file_type())))
    }
}

/// Opens `options` at `path` without blocking on a FIFO and refuses
/// anything that is not a regular file. `Ok(None)` when the file does
/// not exist; a FIFO opened for writing with no reader (`ENXIO`) is
/// refused as a FIFO.
pub(crate) fn open_with(options: &mut OpenOptions, path: &Path) -> Result<Option<File>> {
    match options
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(file) => ensure_regular(file, path).map(Some),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            Err(not_regular(path, "a FIFO (named pipe)"))
        }
        Err(e) => Err(Error::io(format!("opening {}", path.display()), e)),
    }
}

/// Opens `path` for reading: `Ok(None)` when it does not exist; refuses
/// (`InvalidState`, naming the path and what it is) a FIFO, directory,
/// socket or device, without blocking on it.
pub fn open_regular(path: &Path) -> Result<Option<File>> {
    open_with(OpenOptions::new().read(true), path)
}

/// Reads the whole of `path`: `Ok(None)` when it does not exist; refuses
/// what [`open_regular`] refuses, and any I/O failure, naming the path.
pub fn read_regular(path: &Path) -> Result<Option<Vec<u8>>> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    #[test]
    fn a_fifo_is_refused_at_once_for_reading_and_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("servers.json");
        fifo(&path);
        let err = read_regular(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidState);
        assert!(
            err.message()
                .contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        assert!(err.message().contains(&path.display().to_string()), "{err}");
        let err = open_with(OpenOptions::new().append(true).create(true), &path).unwrap_err();
        assert!(err.message().contains("FIFO"), "{err}");
        let err = read_regular(tmp.path()).unwrap_err();
        assert!(err.message().contains("is a directory"), "{err}");
    }

    #[test]
    fn a_regular_file_is_read_and_a_missing_one_is_none() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("safety.json");
        assert!(read_regular(&path).unwrap().is_none());
        std::fs::write(&path, b"{}").unwrap();
        assert_eq!(read_regular(&path).unwrap().unwrap(), b"{}");
        let link = tmp.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_regular(&link).unwrap().unwrap(), b"{}");
    }
}
