//! Files and directories of a sandbox, made with explicit modes whatever
//! the process's umask: under `umask 000` nothing the sandbox makes may
//! be writable by another user (who could then, say, name a dead owner in
//! [`super::owner::OWNER_FILE`] and have the next start sweep a live
//! sandbox). A file is created with its mode (never wider, the umask can
//! only narrow it) and then set to exactly that mode, so what another user
//! must read (the sandbox login user, when kastell runs as root) stays
//! readable under a strict umask too.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use kastell_core::{Error, Result};

/// Creates `path` and every missing parent, each with `mode`, then sets
/// `path` itself to exactly `mode` (an existing parent is left as it is).
pub fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    set_mode(path, mode)
}

/// Writes `text` to `path` (created with `mode`, or truncated), then sets
/// it to exactly `mode`.
pub fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    let mut file = create(path, mode)?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Creates (or truncates) `path` with `mode`, set exactly, and returns it
/// open for writing.
pub fn create(path: &Path, mode: u32) -> Result<fs::File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))?;
    Ok(file)
}

/// Sets `path` to exactly `mode`.
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn modes_are_exact_for_new_parents_files_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        mkdir(&deep, 0o755).unwrap();
        for p in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(dir.path().join(p)).unwrap().mode() & 0o7777;
            assert_eq!(mode & 0o022, 0, "{p}: {mode:o}");
        }
        assert_eq!(fs::metadata(&deep).unwrap().mode() & 0o7777, 0o755);
        let file = deep.join("f");
        fs::write(&file, "old").unwrap();
        set_mode(&file, 0o666).unwrap();
        write(&file, "new", 0o600).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
    }
}
