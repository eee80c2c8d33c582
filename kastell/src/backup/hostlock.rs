//! One operation per server at a time: an exclusive `flock` on
//! `backups/<server>/.lock`, held for the whole backup or restore, so two
//! kastell processes (or two tasks) never work on the same host at once.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use kastell_core::{Error, Result};
use rustix::fs::{FlockOperation, flock};

use super::layout::LOCK_FILE;

/// A held host lock; released when dropped.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

impl HostLock {
    /// Waits for and takes the lock of the server whose backups live in
    /// `server_dir` (created 0700 if missing). Blocks: call it from a
    /// blocking thread.
    pub fn acquire(server_dir: &Path) -> Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(server_dir)
            .map_err(|e| Error::io(format!("creating {}", server_dir.display()), e))?;
        let path = server_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::unexpected(format!("locking {}: {e}", path.display())))?;
        Ok(Self { _file: file })
    }

    /// Like [`HostLock::acquire`], from async code.
    pub async fn acquire_async(server_dir: &Path) -> Result<Self> {
        let dir = server_dir.to_path_buf();
        tokio::task::spawn_blocking(move || Self::acquire(&dir))
            .await
            .map_err(|e| Error::unexpected(format!("host lock task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("web-1");
        let first = HostLock::acquire(&dir).unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let (d, g) = (dir.clone(), got.clone());
        let waiter = std::thread::spawn(move || {
            let _second = HostLock::acquire(&d).unwrap();
            g.store(true, Ordering::SeqCst);
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !got.load(Ordering::SeqCst),
            "must wait while the first holds it"
        );
        drop(first);
        waiter.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
    }
}
