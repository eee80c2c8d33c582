//! `kastell doctor --fix`: the repairs that are safe to make without
//! asking, each said as it is made. Group and other permissions come off
//! the kastell directory (0700) and the regular files directly in it
//! (0600); a lock directory whose owner is gone (or older than the
//! ceiling) is cleared as the next writer would clear it. Symbolic links
//! are never followed and nothing is deleted but a stale lock. Anything
//! else doctor finds is left to the person, with the command its problem
//! line names.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kastell_core::{Error, Result};

use crate::state::store::{LockOptions, OWNER_FILE, clear_stale};

/// Makes the safe repairs in the kastell directory `dir` and returns what
/// was done, one sentence each (empty when nothing needed it). Refuses
/// when `dir` cannot be listed; a single file that cannot be changed is
/// reported in the list, not an error.
pub(crate) fn fix(dir: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    tighten(dir, 0o700, &mut done);
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        // symlink_metadata: a link is neither followed nor changed.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_file() {
            tighten(&path, 0o600, &mut done);
        } else if meta.file_type().is_dir() && path.join(OWNER_FILE).is_file() {
            if let Some(reason) = clear_stale(&path, &LockOptions::default()) {
                done.push(format!(
                    "removed the stale lock {} ({reason})",
                    path.display()
                ));
            }
        }
    }
    Ok(done)
}

/// Removes group and other permissions from `path` (not a link) when it
/// has any, keeping the owner's, and says so in `done`.
fn tighten(path: &Path, private: u32, done: &mut Vec<String>) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let wanted = (mode & 0o700) | (private & 0o700);
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted)) {
        Ok(()) => done.push(format!("{}: mode {mode:o} -> {wanted:o}", path.display())),
        Err(e) => done.push(format!(
            "{}: could not change mode {mode:o} ({e}); run: chmod {private:o} {}",
            path.display(),
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn modes_are_tightened_and_a_dead_owners_lock_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("servers.json");
        std::fs::write(&file, "[]").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let lock = dir.join("servers.json.lock");
        std::fs::create_dir(&lock).unwrap();
        // A pid that is not running on this host.
        let owner = crate::state::store::LockOwner {
            pid: i32::MAX - 1,
            host: crate::state::store::hostname(),
            since_ms: 1,
        };
        std::fs::write(lock.join(OWNER_FILE), owner.render()).unwrap();

        let done = fix(dir).unwrap();
        assert_eq!(mode(dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert!(!lock.exists());
        assert_eq!(done.len(), 3, "{done:?}");
        assert!(fix(dir).unwrap().is_empty(), "nothing left to do");
    }
}
