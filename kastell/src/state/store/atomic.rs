//! Crash-safe file replacement.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kastell_core::{Error, Result};

/// Prefix of the temporary files [`write_atomic`] creates; a leftover with
/// this prefix is debris from a crash and safe to delete.
pub const TEMP_PREFIX: &str = ".kastell-tmp-";

/// Appends `line` to `path` with one `write` call (so concurrent appends
/// under `O_APPEND` stay whole), creating the file with mode 0600 and
/// putting an existing file back to 0600; with `durable`, flushes the data
/// to disk before returning. Refuses (returns an error naming the file) on
/// any I/O failure, and without blocking when `path` is not a regular
/// file (a FIFO, a directory).
pub fn append_private(path: &Path, line: &[u8], durable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let opened = super::open_with(
        OpenOptions::new().append(true).create(true).mode(0o600),
        path,
    )?;
    let Some(mut file) = opened else {
        return Err(Error::not_found(format!(
            "{} disappeared while it was being opened",
            path.display()
        )));
    };
    let mode = file
        .metadata()
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    if mode != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(format!("securing {}", path.display()), e))?;
    }
    file.write_all(line)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    if durable {
        file.sync_data()
            .map_err(|e| Error::io(format!("flushing {}", path.display()), e))?;
    }
    Ok(())
}

/// Replaces `path` with `bytes` so that readers see either the old or the
/// new content, never a mix, even across a crash or power loss.
///
/// The content goes to a uniquely named temporary file in the same
/// directory (created with mode 0600, never following an existing file),
/// is flushed to disk, renamed over `path`, and then the directory itself
/// is flushed so the rename is durable. The temporary file is removed on
/// any failure. Refuses (returns an error) when `path` has no parent or
/// file name, or on any I/O failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name),
        _ => {
            return Err(Error::invalid_input(format!(
                "cannot write {}: not a file path",
                path.display()
            )));
        }
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let temp = temp_path(dir, &name.to_string_lossy());
    let result = write_and_rename(&temp, path, dir, bytes);
    if result.is_err() {
        // Best effort: the temp file may not exist if creating it failed.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_and_rename(temp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| Error::io(format!("creating {}", temp.display()), e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io(format!("writing {}", temp.display()), e))?;
    file.sync_all()
        .map_err(|e| Error::io(format!("flushing {}", temp.display()), e))?;
    drop(file);
    std::fs::rename(temp, path).map_err(|e| {
        Error::io(
            format!("renaming {} to {}", temp.display(), path.display()),
            e,
        )
    })?;
    sync_dir(dir)
}

/// Removes the temporary files [`write_atomic`] left next to `path` when
/// the process writing them died mid-write (a killed `kastell`): their
/// names carry the writer's pid, and those of a process still running on
/// this host are kept. Best effort; call it holding the lock that
/// serialises writers of `path`, so no live writer's file is in flight.
pub(crate) fn sweep_debris(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{TEMP_PREFIX}{}-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let writer = rest
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<i32>().ok());
        if !writer.is_some_and(is_running) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` runs on this host (even as another user).
fn is_running(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid).is_some_and(|pid| {
        matches!(
            rustix::process::test_kill_process(pid),
            Ok(()) | Err(rustix::io::Errno::PERM)
        )
    })
}

/// Flushes a directory's entries (a completed rename or mkdir) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("flushing directory {}", dir.display()), e))
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{TEMP_PREFIX}{name}-{}-{nanos}-{seq}",
        std::process::id()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_content_with_0600_and_leaves_no_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("servers.json");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        write_atomic(&path, b"newer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(entries(tmp.path()), vec!["servers.json".to_owned()]);
    }

    #[test]
    fn failure_leaves_target_untouched_and_no_debris() {
        let tmp = tempfile::tempdir().unwrap();
        // The target is a non-empty directory: the rename must fail.
        let path = tmp.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        assert!(write_atomic(&path, b"data").is_err());
        assert_eq!(entries(tmp.path()), vec!["target".to_owned()]);
        assert!(path.join("keep").exists());
    }

    #[test]
    fn debris_of_dead_writers_is_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("servers.json");
        write_atomic(&path, b"[]").unwrap();
        // pid 2^30 is above any pid_max: no such process.
        let dead = format!("{TEMP_PREFIX}servers.json-1073741824-5-0");
        let live = temp_path(tmp.path(), "servers.json");
        let other = format!("{TEMP_PREFIX}other.json-1073741824-5-0");
        for name in [dead.as_str(), other.as_str()] {
            std::fs::write(tmp.path().join(name), b"[{\"half").unwrap();
        }
        std::fs::write(&live, b"[").unwrap();
        sweep_debris(&path);
        let live_name = live.file_name().unwrap().to_string_lossy().into_owned();
        let mut expected = vec![other, live_name, "servers.json".to_owned()];
        expected.sort();
        assert_eq!(entries(tmp.path()), expected);
    }

    #[test]
    fn temp_names_are_unique() {
        let dir = Path::new("/x");
        assert_ne!(temp_path(dir, "a"), temp_path(dir, "a"));
    }
}
