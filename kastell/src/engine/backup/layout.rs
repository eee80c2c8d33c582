//! Where backups live: `<KASTELL_DIR>/backups/<server>/<backup-id>/`, joined
//! so that no server name or backup id can escape the store.

use std::path::{Path, PathBuf};

use kastell_core::types::BackupId;
use kastell_core::{Error, Result};

/// The backups directory inside the kastell directory.
pub const BACKUPS_DIR: &str = "backups";

/// Prefix of the hidden directories a backup is staged in before it is
/// published; listing never shows them.
pub const STAGING_PREFIX: &str = ".staging-";

/// The name of the per-server lock file.
pub const LOCK_FILE: &str = ".lock";

/// Checks that `name` is one plain path component: not empty, not `.` or
/// `..`, no `/`, `\` or NUL, no leading dot (hidden entries are the
/// store's own). Refuses anything else with `InvalidInput`.
pub fn check_component(what: &str, name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.len() > 255;
    if bad {
        return Err(Error::invalid_input(format!(
            "invalid {what} {name:?}: it must be a plain name without path separators or '..'"
        ))
        .with_hint("Backups are addressed by server name and backup id, never by path"));
    }
    Ok(())
}

/// Paths of one kastell directory's backup store.
#[derive(Debug, Clone)]
pub struct BackupLayout {
    root: PathBuf,
}

impl BackupLayout {
    /// The layout under `kastell_dir`.
    pub fn new(kastell_dir: &Path) -> Self {
        Self {
            root: kastell_dir.join(BACKUPS_DIR),
        }
    }

    /// `<kastell_dir>/backups`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `backups/<server>`, after checking the name.
    pub fn server_dir(&self, server: &str) -> Result<PathBuf> {
        check_component("server name", server)?;
        Ok(self.root.join(server))
    }

    /// `backups/<server>/<id>`, after checking both.
    pub fn backup_dir(&self, server: &str, id: &BackupId) -> Result<PathBuf> {
        check_component("backup id", id.as_str())?;
        Ok(self.server_dir(server)?.join(id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_attempts_are_refused() {
        let layout = BackupLayout::new(Path::new("/k"));
        for bad in ["", ".", "..", "../etc", "a/b", "a\\b", ".hidden", "x\0y"] {
            assert!(layout.server_dir(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            layout.server_dir("web-1").unwrap(),
            Path::new("/k/backups/web-1")
        );
        let id = BackupId::new("2026-03-15_12-30-45-123").unwrap();
        assert_eq!(
            layout.backup_dir("web-1", &id).unwrap(),
            Path::new("/k/backups/web-1/2026-03-15_12-30-45-123")
        );
        // Backup ids are validated by their type; they cannot carry a separator.
        assert!(BackupId::new("../../etc").is_err());
    }
}
