//! A small JSON list in the kastell directory, changed under an `flock`
//! and replaced atomically (mode 0600): what the approval requests and the
//! remembered declines are kept in, shared by every kastell and
//! kastell-mcp process of the directory.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kastell_core::{Error, Result};
use rustix::fs::{FlockOperation, flock};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The most entries a ledger keeps (the oldest go first), so that a model
/// calling in a loop cannot grow it without bound.
pub(crate) const MAX_ENTRIES: usize = 500;

/// The largest ledger file read (bytes); a larger one is refused as
/// damaged.
const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// One ledger file (`<dir>/<name>`) and its lock (`<dir>/<name>.lock`).
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    path: PathBuf,
    lock: PathBuf,
}

impl Ledger {
    /// The ledger `name` in `dir`.
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        Self {
            path: dir.join(name),
            lock: dir.join(format!("{name}.lock")),
        }
    }

    /// Where the list is kept.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn hold(&self) -> Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(|e| Error::io(format!("opening {}", self.lock.display()), e))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::unexpected(format!("locking {}: {e}", self.lock.display())))?;
        Ok(file)
    }

    /// The entries, oldest first (none when the file does not exist).
    /// Refuses a file that is not a regular file (a FIFO would hang), too
    /// large, or not a JSON list of entries.
    fn read<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        // Opened without blocking and checked on the descriptor: a FIFO,
        // device or directory is refused by name.
        let Some(file) = crate::state::store::open_regular(&self.path)? else {
            return Ok(Vec::new());
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_BYTES + 1), &mut bytes)
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        let damaged = |why: String| {
            Error::new(
                kastell_core::ErrorKind::Corrupt,
                format!("{} is damaged: {why}", self.path.display()),
            )
            .with_hint(
                "Move the file away; pending approvals and remembered declines in it are lost",
            )
        };
        if bytes.len() as u64 > MAX_BYTES {
            return Err(damaged(format!("larger than {MAX_BYTES} bytes")));
        }
        serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))
    }

    /// The entries now (under the lock, so never a half-changed list).
    pub(crate) fn entries<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let _held = self.hold()?;
        self.read()
    }

    /// Runs `change` on the entries under the lock and writes them back
    /// (the newest [`MAX_ENTRIES`]) when it returns `true` in its second
    /// part; returns its first part.
    pub(crate) fn update<T, R>(&self, change: impl FnOnce(&mut Vec<T>) -> (R, bool)) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        let _held = self.hold()?;
        let mut entries: Vec<T> = self.read()?;
        let (result, changed) = change(&mut entries);
        if changed {
            let excess = entries.len().saturating_sub(MAX_ENTRIES);
            entries.drain(..excess);
            let bytes = serde_json::to_vec_pretty(&entries)
                .map_err(|e| Error::unexpected(format!("encoding {}: {e}", self.path.display())))?;
            crate::state::store::write_atomic(&self.path, &bytes)?;
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn changes_persist_privately_and_a_fifo_or_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path(), "list.json");
        assert!(ledger.entries::<u32>().unwrap().is_empty());
        let seen = ledger
            .update(|v: &mut Vec<u32>| {
                v.push(7);
                (v.len(), true)
            })
            .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(ledger.entries::<u32>().unwrap(), vec![7]);
        let mode = std::fs::metadata(ledger.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let many = ledger
            .update(|v: &mut Vec<u32>| {
                v.extend(0..(MAX_ENTRIES as u32 + 10));
                ((), true)
            })
            .and_then(|()| ledger.entries::<u32>())
            .unwrap();
        assert_eq!(many.len(), MAX_ENTRIES);
        assert_eq!(many.last(), Some(&(MAX_ENTRIES as u32 + 9)));

        std::fs::write(ledger.path(), "{not json").unwrap();
        let err = ledger.entries::<u32>().unwrap_err();
        assert_eq!(err.kind(), kastell_core::ErrorKind::Corrupt);
        std::fs::remove_file(ledger.path()).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(ledger.path())
            .status()
            .unwrap();
        assert!(made.success());
        let err = ledger.entries::<u32>().unwrap_err();
        assert!(err.message().contains("not a regular file"), "{err}");
    }
}
