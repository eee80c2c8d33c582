//! A lock file held by one process for as long as it works on something
//! (a rollout it drives, a task it runs): an exclusive `flock` on a
//! regular file, taken without waiting, whose first line names the holder
//! (`kastell-mcp rollout (pid 42) since <time>`) for the message that
//! refuses a second one. The kernel drops the lock when the process dies,
//! so a lock that can be taken means no live process holds it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chrono::{SecondsFormat, Utc};
use kastell_core::{Error, Result};
use rustix::fs::{FlockOperation, OFlags, flock};
use rustix::io::Errno;

use crate::state::store::{display_safe, open_with};

/// What trying the lock found.
#[derive(Debug)]
pub(crate) enum Tried {
    /// Taken: held until the file is dropped.
    Taken(File),
    /// Another process (or another open file of this one) holds it; who,
    /// as it wrote (made safe to show), when readable.
    Busy(Option<String>),
}

/// Tries to take the lock at `path` (created 0600, never through a link,
/// refused when not a regular file) without waiting, recording `activity`
/// and this process as its holder when taken.
pub(crate) fn try_lock(path: &Path, activity: &str) -> Result<Tried> {
    let file = open_with(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32),
        path,
    )?
    .ok_or_else(|| Error::not_found(format!("{} disappeared", path.display())))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            let since = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
            let text = format!("{activity} (pid {}) since {since}\n", std::process::id());
            let mut writer = &file;
            if let Err(e) = file
                .set_len(0)
                .and_then(|()| writer.write_all(text.as_bytes()))
            {
                tracing::debug!("could not record the holder of {}: {e}", path.display());
            }
            Ok(Tried::Taken(file))
        }
        Err(e) if e == Errno::WOULDBLOCK => Ok(Tried::Busy(holder_of(&file))),
        Err(e) => Err(Error::unexpected(format!(
            "locking {}: {e}",
            path.display()
        ))),
    }
}

/// The holder line written in a lock file, made safe to show.
fn holder_of(file: &File) -> Option<String> {
    let mut text = String::new();
    let mut reader = file;
    reader.read_to_string(&mut text).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| display_safe(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_busy_naming_its_holder_and_free_once_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.lock");
        let Tried::Taken(first) = try_lock(&path, "first").unwrap() else {
            panic!("a fresh lock is free")
        };
        match try_lock(&path, "second").unwrap() {
            Tried::Busy(Some(holder)) => assert!(
                holder.starts_with(&format!("first (pid {})", std::process::id())),
                "{holder}"
            ),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(matches!(try_lock(&path, "third").unwrap(), Tried::Taken(_)));
    }
}
