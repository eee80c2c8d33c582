//! Orphaned backup directories: what `kastell backup cleanup` finds and
//! removes.
//!
//! Two kinds, both under `<KASTELL_DIR>/backups`:
//!
//! - a server directory whose server is no longer in the fleet (removed
//!   with `server remove`, renamed, or left by the original tool);
//! - inside a known server's directory, what a crash left half-written: a
//!   staging directory whose process no longer runs, or a directory
//!   without a `manifest.json` (a published backup always has one).
//!
//! Never an orphan: a backup of a known server with a manifest (complete,
//! legacy or corrupt: those are listed and pruned as backups), a live
//! process's staging directory, the lock file, or anything that is not a
//! directory. Nothing is followed through a symbolic link, sizes included.

use std::fs;
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};
use serde::Serialize;

use super::layout::{BackupLayout, STAGING_PREFIX};
use super::manifest::MANIFEST_FILE;
use super::staging::is_abandoned;

/// Why a directory is an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanKind {
    /// The backups of a server the fleet no longer has.
    UnknownServer,
    /// A backup a crash (or a killed process) left half-written.
    HalfWritten,
}

/// One orphaned directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    /// The directory.
    pub path: PathBuf,
    /// The server directory it is in (or is).
    pub server: String,
    /// Why it is an orphan.
    pub kind: OrphanKind,
    /// The bytes of the regular files under it.
    pub bytes: u64,
}

/// The orphans under `layout`'s root, given the names of the fleet's
/// servers, sorted by path. Nothing under the root: none. Refuses only when
/// the root exists but cannot be read.
pub fn find(layout: &BackupLayout, known: &[String]) -> Result<Vec<Orphan>> {
    let root = layout.root();
    let mut orphans = Vec::new();
    for server_dir in subdirectories(root)? {
        let Some(server) = file_name(&server_dir) else {
            continue;
        };
        if server.starts_with('.') {
            continue;
        }
        if !known.contains(&server) {
            orphans.push(orphan(server_dir, server, OrphanKind::UnknownServer));
            continue;
        }
        for entry in subdirectories(&server_dir)? {
            let Some(name) = file_name(&entry) else {
                continue;
            };
            let half_written = if name.starts_with(STAGING_PREFIX) {
                is_abandoned(&name)
            } else {
                !name.starts_with('.') && fs::symlink_metadata(entry.join(MANIFEST_FILE)).is_err()
            };
            if half_written {
                orphans.push(orphan(entry, server.clone(), OrphanKind::HalfWritten));
            }
        }
    }
    orphans.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(orphans)
}

/// Removes every orphan's directory. Refuses at the first that cannot be
/// removed, naming it (those before it are gone).
pub fn remove(orphans: &[Orphan]) -> Result<()> {
    for orphan in orphans {
        match fs::remove_dir_all(&orphan.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(format!("removing {}", orphan.path.display()), e));
            }
        }
    }
    Ok(())
}

fn orphan(path: PathBuf, server: String, kind: OrphanKind) -> Orphan {
    let bytes = size_of(&path);
    Orphan {
        path,
        server,
        kind,
        bytes,
    }
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The real directories (not links) directly in `dir`; none when `dir`
/// does not exist.
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// The bytes of the regular files under `path`, links not followed;
/// what cannot be read counts as nothing.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, vec![b'x'; bytes]).unwrap();
    }

    #[test]
    fn only_unknown_servers_and_half_written_backups_are_orphans() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = BackupLayout::new(tmp.path());
        let root = layout.root();
        // A known server: a complete backup, a half-written one, a dead
        // process's staging directory, a live one's, and its lock.
        write(
            &root.join("web-1/2026-01-01_00-00-00-000/manifest.json"),
            10,
        );
        write(
            &root.join("web-1/2026-01-01_00-00-00-000/db.dump.zst"),
            1000,
        );
        write(&root.join("web-1/2026-01-02_00-00-00-000/db.dump.zst"), 300);
        write(
            &root.join(format!("web-1/{STAGING_PREFIX}2026-01-03-999999999/db")),
            20,
        );
        let live = format!("{STAGING_PREFIX}2026-01-04-{}", std::process::id());
        write(&root.join("web-1").join(&live).join("db"), 20);
        write(&root.join("web-1/.lock"), 0);
        // A server no longer in the fleet.
        write(&root.join("old-2/2025-12-01_00-00-00-000/manifest.json"), 5);
        write(
            &root.join("old-2/2025-12-01_00-00-00-000/db.dump.zst"),
            4000,
        );
        // A link to elsewhere is not followed or counted.
        let outside = tempfile::tempdir().unwrap();
        write(&outside.path().join("big"), 100_000);
        std::os::unix::fs::symlink(outside.path(), root.join("old-2/link")).unwrap();

        let found = find(&layout, &["web-1".to_owned()]).unwrap();
        let summary: Vec<(String, OrphanKind, u64)> = found
            .iter()
            .map(|o| {
                let rel = o.path.strip_prefix(root).unwrap().display().to_string();
                (rel, o.kind, o.bytes)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("old-2".to_owned(), OrphanKind::UnknownServer, 4005),
                (
                    "web-1/.staging-2026-01-03-999999999".to_owned(),
                    OrphanKind::HalfWritten,
                    20
                ),
                (
                    "web-1/2026-01-02_00-00-00-000".to_owned(),
                    OrphanKind::HalfWritten,
                    300
                ),
            ]
        );
        remove(&found).unwrap();
        assert!(
            root.join("web-1/2026-01-01_00-00-00-000/db.dump.zst")
                .exists()
        );
        assert!(root.join("web-1").join(&live).exists());
        assert!(root.join("web-1/.lock").exists());
        assert!(!root.join("old-2").exists());
        assert!(
            outside.path().join("big").exists(),
            "the link's target stays"
        );
        assert!(find(&layout, &["web-1".to_owned()]).unwrap().is_empty());
    }

    #[test]
    fn no_backups_directory_is_no_orphans() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            find(&BackupLayout::new(tmp.path()), &[])
                .unwrap()
                .is_empty()
        );
    }
}
