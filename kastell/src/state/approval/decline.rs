//! A person's "no", remembered: a decline (or cancel, or no answer) through
//! the client, or an operator's `kastell approve ID --deny`, is kept for
//! [`DECLINE_KEPT`] against the call's arguments digest and the state's
//! fingerprint, in this process and in `KASTELL_DIR/declines.json` (so a
//! restarted kastell-mcp, or another one on the same directory, still
//! knows). While it is kept, a dry run or a plan token for that call in
//! that state is refused: a model cannot confirm for itself what a person
//! refused. A new backup, another address or another target changes the
//! fingerprint and ends it.

use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use kastell_core::Result;
use serde::{Deserialize, Serialize};

use super::ledger::Ledger;

/// The file the declines are kept in, in `KASTELL_DIR`.
pub(crate) const DECLINES_FILE: &str = "declines.json";

/// How long a decline stands while the state does not change.
pub(crate) const DECLINE_KEPT: Duration = Duration::from_secs(24 * 3600);

/// One remembered "no".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Decline {
    /// The action (`backup-restore`).
    pub action: String,
    /// The server's name.
    pub server: String,
    /// The digest of the call's arguments (without dryRun and planToken).
    pub digest: String,
    /// The blast radius's fingerprint when it was refused.
    pub fingerprint: String,
    /// Who said no and how (`the user declined`, `the operator denied
    /// request K7QX2M4P`).
    pub how: String,
    /// When (Unix seconds).
    pub at: i64,
}

impl Decline {
    fn matches(&self, digest: &str, fingerprint: &str, now: i64) -> bool {
        self.digest == digest && self.fingerprint == fingerprint && !self.expired(now)
    }

    fn expired(&self, now: i64) -> bool {
        now.saturating_sub(self.at) >= DECLINE_KEPT.as_secs() as i64
    }
}

/// Declines of this process, by the file they belong to: what is still
/// known when the file cannot be written.
static MEMORY: LazyLock<Mutex<Vec<(PathBuf, Decline)>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// The declines of one kastell directory.
#[derive(Debug, Clone)]
pub(crate) struct Declines {
    ledger: Ledger,
}

impl Declines {
    /// The declines kept in `dir`.
    pub(crate) fn in_dir(dir: &Path) -> Self {
        Self {
            ledger: Ledger::new(dir, DECLINES_FILE),
        }
    }

    /// Remembers `decline` in this process, then in the file. The error
    /// (the file could not be written) leaves the memory in place.
    pub(crate) fn record(&self, decline: Decline) -> Result<()> {
        let now = decline.at;
        if let Ok(mut memory) = MEMORY.lock() {
            memory.retain(|(_, d)| !d.expired(now));
            memory.push((self.ledger.path().to_path_buf(), decline.clone()));
        }
        self.ledger.update(|list: &mut Vec<Decline>| {
            list.retain(|d| !d.expired(now));
            list.push(decline);
            ((), true)
        })
    }

    /// The standing decline of the call with arguments `digest` in the
    /// state `fingerprint`, if any. Refuses when the file cannot be read
    /// (the caller then refuses what it guards: failing closed).
    pub(crate) fn find(
        &self,
        digest: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<Option<Decline>> {
        let here = self.ledger.path();
        let remembered = MEMORY.lock().ok().and_then(|memory| {
            memory
                .iter()
                .find(|(path, d)| path == here && d.matches(digest, fingerprint, now))
                .map(|(_, d)| d.clone())
        });
        if remembered.is_some() {
            return Ok(remembered);
        }
        let list: Vec<Decline> = self.ledger.entries()?;
        Ok(list
            .into_iter()
            .rev()
            .find(|d| d.matches(digest, fingerprint, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(digest: &str, fingerprint: &str, at: i64) -> Decline {
        Decline {
            action: "backup-restore".into(),
            server: "web-1".into(),
            digest: digest.into(),
            fingerprint: fingerprint.into(),
            how: "the user declined".into(),
            at,
        }
    }

    #[test]
    fn a_decline_stands_for_its_call_and_state_until_it_ages_out() {
        let dir = tempfile::tempdir().unwrap();
        let declines = Declines::in_dir(dir.path());
        declines.record(no("args", "state-1", 1000)).unwrap();
        assert!(declines.find("args", "state-1", 1001).unwrap().is_some());
        assert!(declines.find("args", "state-2", 1001).unwrap().is_none());
        assert!(declines.find("other", "state-1", 1001).unwrap().is_none());
        let later = 1000 + DECLINE_KEPT.as_secs() as i64;
        assert!(declines.find("args", "state-1", later).unwrap().is_none());
    }

    #[test]
    fn the_file_carries_a_decline_to_another_process_and_the_memory_outlives_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        Declines::in_dir(dir.path())
            .record(no("args", "state-1", 50))
            .unwrap();
        // What another process reads: the file alone.
        let list: Vec<Decline> = Ledger::new(dir.path(), DECLINES_FILE).entries().unwrap();
        assert_eq!(list, vec![no("args", "state-1", 50)]);

        let gone = tempfile::tempdir().unwrap();
        let declines = Declines::in_dir(&gone.path().join("missing"));
        assert!(declines.record(no("a2", "s2", 60)).is_err());
        assert_eq!(
            declines.find("a2", "s2", 61).unwrap(),
            Some(no("a2", "s2", 60))
        );
    }
}
