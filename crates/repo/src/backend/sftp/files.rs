//! Directories and whole files on the SFTP server: a file is written under
//! a temporary name in its directory, synced where the server can, and
//! renamed into place, so a reader sees all of it or none.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustic_core::BytesList;
use ssh2::{ErrorCode, OpenFlags, OpenType, Sftp};

use super::failure::{FX_NO_SUCH_FILE, FX_NO_SUCH_PATH, FX_OP_UNSUPPORTED, Failure};

/// Creates the directory `path` unless it exists.
pub(super) fn make_dir(sftp: &Sftp, path: &Path) -> std::result::Result<(), Failure> {
    match sftp.mkdir(path, 0o700) {
        Ok(()) => Ok(()),
        // SFTP version 3 reports an existing directory as a plain failure.
        Err(e) => match sftp.stat(path) {
            Ok(stat) if stat.is_dir() => Ok(()),
            _ => Err(e.into()),
        },
    }
}

/// Creates the directory `path` and its missing parents.
pub(super) fn make_dirs(sftp: &Sftp, path: &Path) -> std::result::Result<(), Failure> {
    if let Ok(stat) = sftp.stat(path) {
        if stat.is_dir() {
            return Ok(());
        }
    }
    if let Some(parent) = path.parent() {
        if parent != path && !parent.as_os_str().is_empty() {
            make_dirs(sftp, parent)?;
        }
    }
    make_dir(sftp, path)
}

/// A temporary name in `dir` for the file `hex`, unique across
/// processes and machines for all practical purposes.
pub(super) fn temporary_name(dir: &Path, hex: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        ".{hex}.tmp-{}-{nanos:09}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The mode of every file kastell writes: read-only, so a login without
/// `setstat` (an append-only one) cannot open it for writing again.
pub(super) const FILE_MODE: i32 = 0o400;

/// Writes `content` to `path` under a temporary name in `dir` and renames
/// it into place; an existing `path` is kept unless `replace`. An existing
/// file is looked for first, so a login that may not remove files (an
/// append-only one) leaves no temporary beside a file that was there.
pub(super) fn write_whole(
    sftp: &Sftp,
    dir: &Path,
    path: &Path,
    hex: &str,
    replace: bool,
    content: &BytesList,
) -> std::result::Result<(), Failure> {
    if !replace && sftp.lstat(path).is_ok() {
        // Named by its content's hash: the file there holds these bytes.
        return Ok(());
    }
    let temporary = temporary_name(dir, hex);
    let create = |sftp: &Sftp| {
        sftp.open_mode(
            &temporary,
            OpenFlags::WRITE | OpenFlags::EXCLUSIVE,
            FILE_MODE,
            OpenType::File,
        )
    };
    let mut file = match create(sftp) {
        Err(e) if matches!(e.code(), ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH)) => {
            make_dirs(sftp, dir)?;
            create(sftp)?
        }
        opened => opened?,
    };
    let written = (|| -> std::result::Result<(), Failure> {
        for part in content.slice() {
            file.write_all(part)?;
        }
        match file.fsync() {
            Err(e) if e.code() == ErrorCode::SFTP(FX_OP_UNSUPPORTED) => {}
            synced => synced?,
        }
        Ok(())
    })();
    drop(file);
    let renamed = written.and_then(|()| match sftp.rename(&temporary, path, None) {
        Ok(()) => Ok(()),
        Err(refused) => match sftp.stat(path) {
            // Named by its content's hash: the file there holds these bytes.
            Ok(_) if !replace => {
                let _ = sftp.unlink(&temporary);
                Ok(())
            }
            Ok(_) => {
                sftp.unlink(path)?;
                sftp.rename(&temporary, path, None).map_err(Failure::from)
            }
            Err(_) => Err(refused.into()),
        },
    });
    if renamed.is_err() {
        let _ = sftp.unlink(&temporary);
    }
    renamed
}
