//! One operation per server at a time: an exclusive `flock` on
//! `backups/<server>/.lock`, held for the whole backup, restore, update,
//! restart or maintenance, so two kastell processes (or two tasks) never
//! work on the same host at once.
//!
//! Backups and restores wait their turn ([`HostLock::acquire`]); updates,
//! restarts and maintenance refuse to start while another operation holds
//! the server ([`HostLock::try_acquire`]), naming it, because running them
//! late would repeat an upgrade or a reboot nobody asked for any more. The
//! holder writes what it is doing into the lock file for that message.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Result};
use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

use crate::engine::backup::LOCK_FILE;

/// What a backup or restore holding the lock says about itself.
const BACKUP_ACTIVITY: &str = "a backup or restore";

/// How long [`HostLock::try_acquire_async`] waits for a lock that looks
/// held before it refuses.
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(750);

/// How often [`HostLock::try_acquire_async`] tries again within the grace.
const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// A held host lock; released when dropped.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
    /// The server directory whose lock this is.
    server_dir: PathBuf,
}

/// Opens (creating 0600, and its directory 0700) the lock file of the
/// server whose backups live in `server_dir`.
fn open_lock_file(server_dir: &Path) -> Result<File> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(server_dir)
        .map_err(|e| Error::io(format!("creating {}", server_dir.display()), e))?;
    let path = server_dir.join(LOCK_FILE);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

/// Records who holds the lock (`maintain (pid 42) since <time>`), best
/// effort: the lock is what matters, the text only explains a refusal.
fn record_holder(file: &File, activity: &str) {
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = format!("{activity} (pid {}) since {since}\n", std::process::id());
    let mut writer = file;
    let written = file
        .set_len(0)
        .and_then(|()| writer.write_all(text.as_bytes()));
    if let Err(e) = written {
        tracing::debug!("could not record the host lock holder: {e}");
    }
}

impl HostLock {
    /// Waits for and takes the lock of the server whose backups live in
    /// `server_dir` (created 0700 if missing). Blocks: call it from a
    /// blocking thread.
    pub fn acquire(server_dir: &Path) -> Result<Self> {
        let file = open_lock_file(server_dir)?;
        flock(&file, FlockOperation::LockExclusive).map_err(|e| {
            Error::unexpected(format!(
                "locking {}: {e}",
                server_dir.join(LOCK_FILE).display()
            ))
        })?;
        record_holder(&file, BACKUP_ACTIVITY);
        Ok(Self {
            _file: file,
            server_dir: server_dir.to_path_buf(),
        })
    }

    /// Takes the lock of server `server` (whose backups live in
    /// `server_dir`) for `activity` (`maintain`, `restart`, ...) without
    /// waiting. Refuses with a retryable `InvalidState` error naming the
    /// operation that holds it when another process or task does. Does not
    /// block.
    pub fn try_acquire(server_dir: &Path, server: &str, activity: &str) -> Result<Self> {
        let file = open_lock_file(server_dir)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                record_holder(&file, activity);
                Ok(Self {
                    _file: file,
                    server_dir: server_dir.to_path_buf(),
                })
            }
            Err(e) if e == Errno::WOULDBLOCK => {
                let holder = std::fs::read_to_string(server_dir.join(LOCK_FILE))
                    .ok()
                    .map(|text| text.trim().to_owned())
                    .filter(|text| !text.is_empty())
                    .unwrap_or_else(|| "another operation".to_owned());
                Err(Error::invalid_state(format!(
                    "Another kastell operation is already running on server {server}: {holder}; \
                     {activity} was not started"
                ))
                .set_retryable(true)
                .never_applied()
                .with_hint(
                    "One operation per server at a time: wait until it finishes (check with \
                     server_info status), then try again",
                ))
            }
            Err(e) => Err(Error::unexpected(format!(
                "locking {}: {e}",
                server_dir.join(LOCK_FILE).display()
            ))),
        }
    }

    /// Like [`HostLock::try_acquire`], from async code, but a lock that is
    /// released within [`BUSY_GRACE`] is taken rather than refused.
    ///
    /// An `flock` belongs to the open file, and a child process forked
    /// anywhere in this process holds a copy of every descriptor until it
    /// execs: an operation that has just finished can look busy for a few
    /// milliseconds after it let go. Refuses as `try_acquire` does when the
    /// holder is still there after the grace.
    pub async fn try_acquire_async(
        server_dir: &Path,
        server: &str,
        activity: &str,
    ) -> Result<Self> {
        let deadline = tokio::time::Instant::now() + BUSY_GRACE;
        loop {
            match Self::try_acquire(server_dir, server, activity) {
                Err(e)
                    if e.kind() == ErrorKind::InvalidState
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(BUSY_POLL).await;
                }
                taken_or_refused => return taken_or_refused,
            }
        }
    }

    /// Whether this is the lock of the server whose backups live in
    /// `server_dir` (so work that needs that server's lock may run under
    /// it instead of waiting for it).
    pub fn guards(&self, server_dir: &Path) -> bool {
        self.server_dir == server_dir
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

    #[test]
    fn try_acquire_refuses_naming_the_holder_and_succeeds_once_released() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("web-1");
        let first = HostLock::try_acquire(&dir, "web-1", "maintain").unwrap();
        let err = HostLock::try_acquire(&dir, "web-1", "restart").unwrap_err();
        assert_eq!(err.kind(), kastell_core::ErrorKind::InvalidState);
        assert!(err.is_retryable() && !err.may_have_taken_effect());
        let pid = std::process::id();
        assert!(
            err.message().starts_with(&format!(
                "Another kastell operation is already running on server web-1: maintain (pid {pid}) since "
            )),
            "{err}"
        );
        assert!(err.message().ends_with("restart was not started"), "{err}");
        assert!(err.hint().unwrap().contains("wait until it finishes"));
        drop(first);
        let backup = HostLock::acquire(&dir).unwrap();
        let err = HostLock::try_acquire(&dir, "web-1", "update").unwrap_err();
        assert!(err.message().contains("a backup or restore (pid"), "{err}");
        drop(backup);
        assert!(HostLock::try_acquire(&dir, "web-1", "update").is_ok());
    }
}
