//! Where a directory repository may be created: `repo init` on a
//! mistyped path must not quietly make a new directory tree (the
//! "off-site" backups would land on the local disk), and a directory on
//! the disk that holds the local backups is no off-site copy at all.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use kastell_core::{Error, Result};

/// Makes ready the directory `path` a new repository is created in:
/// refuses when its parent directory does not exist (a mistyped path),
/// unless `create_parents`, in which case the parents are created. Refuses
/// a parent that exists but is not a directory.
pub(crate) fn prepare(path: &Path, create_parents: bool) -> Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::invalid_input(format!(
            "Cannot create repository directory {}: {} is not a directory",
            path.display(),
            parent.display()
        ))
        .with_hint("Check the path for a typing mistake")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create_parents => {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::not_found(format!(
            "Cannot create repository directory {}: its parent {} does not exist",
            path.display(),
            parent.display()
        ))
        .with_hint(
            "Check the path for a typing mistake (is the backup disk mounted?), or pass \
             --create-parents to create the missing directories",
        )),
        Err(e) => Err(Error::io(format!("reading {}", parent.display()), e)),
    }
}

/// A warning when the directory `path` is on the same filesystem as the
/// kastell directory `kastell_dir` (where the local backups are): such a
/// repository is not off-site, one lost disk loses both. `None` when they
/// are on different filesystems or either cannot be examined.
pub(crate) fn same_disk_warning(path: &Path, kastell_dir: &Path) -> Option<String> {
    let repo = device_of(path)?;
    let local = device_of(kastell_dir)?;
    (repo == local).then(|| {
        format!(
            "warning: {} is on the same filesystem as the kastell directory {} (the local \
             backups): it is not an off-site copy, and one failed disk loses both. Use a \
             directory on another disk, or an s3: or sftp: repository.",
            path.display(),
            kastell_dir.display()
        )
    })
}

/// The device of `path`, or of its nearest existing ancestor.
fn device_of(path: &Path) -> Option<u64> {
    path.ancestors()
        .find_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_parent_is_refused_and_nothing_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mnt/backpus/repo");
        let err = prepare(&path, false).unwrap_err();
        assert!(err.message().contains("does not exist"), "{err}");
        assert!(err.hint().unwrap_or_default().contains("--create-parents"));
        assert!(!tmp.path().join("mnt").exists());
        prepare(&path, true).unwrap();
        assert!(tmp.path().join("mnt/backpus").is_dir());
        prepare(&tmp.path().join("repo"), false).unwrap();
    }

    #[test]
    fn a_parent_that_is_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        assert!(prepare(&tmp.path().join("file/repo"), true).is_err());
    }

    #[test]
    fn the_same_filesystem_as_the_kastell_directory_is_warned_about() {
        let tmp = tempfile::tempdir().unwrap();
        let warning = same_disk_warning(&tmp.path().join("a/repo"), &tmp.path().join("state"));
        assert!(
            warning.is_some_and(|w| w.contains("not an off-site copy")),
            "same tmp directory, same filesystem"
        );
        // /proc is its own filesystem everywhere Linux runs.
        assert_eq!(same_disk_warning(Path::new("/proc/x"), tmp.path()), None);
    }
}
