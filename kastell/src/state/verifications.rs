//! The record of proof that backups are good: every successful `backup
//! verify` (checksums) and `backup drill` (a real restore into a
//! throwaway target), with when it happened and how long it took, kept in
//! `verifications.json` in the kastell directory (written atomically,
//! mode 0600). `backup list` and `status` show the newest proof, and
//! `status` warns when a server's newest is older than the policy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kastell_core::{Error, ErrorKind, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::state::store::write_atomic;

/// The file, in the kastell directory, holding the records.
pub(crate) const VERIFICATIONS_FILE: &str = "verifications.json";

/// How many records are kept (the oldest go first).
const KEEP: usize = 2000;

/// The variable setting how old a server's newest proof may be before
/// `status` warns, like `36h` or `7d` (default [`DEFAULT_MAX_AGE`]).
pub(crate) const MAX_AGE_VAR: &str = "KASTELL_VERIFY_MAX_AGE";

/// The default of [`MAX_AGE_VAR`]: eight days, so a weekly drill is on
/// time.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(8 * 24 * 3600);

/// What proved a backup good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    /// Every checksum recomputed and matched.
    Checksums,
    /// Restored into a throwaway target, and the result checked.
    Drill,
    /// Recovered onto a throwaway server kastell created (`drill
    /// --scratch`), healthy there, and the server deleted: its
    /// [`Verification::phases`] are the measured recovery time.
    Scratch,
}

/// One timed phase of a recovery (`Create server at hetzner`, 41230 ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTime {
    /// The phase.
    pub name: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// One proof that a backup is good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The server the backup is of.
    pub server: String,
    /// The backup.
    pub backup_id: String,
    /// The repository the copy checked was read from (absent: the local
    /// store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// What proved it.
    pub proof: Proof,
    /// When (RFC 3339, UTC).
    pub verified_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// Checks of a drill this machine could not run (absent: none): the
    /// proof is partial. A drill is recorded only when at least one check
    /// ran and none failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks_skipped: u32,
    /// A scratch drill's recovery, phase by phase (absent for other
    /// proofs); they add up to its recovery time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
    /// A scratch drill's checks of each app on the recovered server
    /// (absent: none, or another proof).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppProof>,
}

/// One app's data checked on a server a scratch drill recovered, before
/// the server was deleted: a database's container running (and a
/// PostgreSQL's rows per table equal to its dump's), a volume's files and
/// checksums equal to the backup's and a container using it running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppProof {
    /// The app's key on its platform.
    pub app: String,
    /// The name the platform shows for it (made safe to show).
    pub name: String,
    /// What was checked: `postgres`, `mysql`, ..., `volume`.
    pub kind: String,
    /// The Docker volume, for a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Whether every check passed.
    pub passed: bool,
    /// What was checked and found (`running; 253 rows in 2 tables, as in
    /// the dump`).
    pub detail: String,
    /// Each difference: the table or file, what the backup holds and what
    /// the server had (absent when it passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Verification {
    /// When it happened; `None` if the record's time does not parse.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.verified_at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    verifications: Vec<Verification>,
}

/// The records of one kastell directory.
#[derive(Debug)]
pub struct Verifications {
    path: PathBuf,
    records: Vec<Verification>,
}

impl Verifications {
    /// Reads the records in `kastell_dir` (none when there is no file).
    /// A file that does not parse is `Corrupt`, naming it; one that is
    /// not a regular file (a FIFO) is refused without waiting on it.
    pub fn load(kastell_dir: &Path) -> Result<Self> {
        let path = kastell_dir.join(VERIFICATIONS_FILE);
        let records = match crate::state::store::read_regular(&path)? {
            Some(bytes) => {
                serde_json::from_slice::<File>(&bytes)
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Corrupt,
                            format!("{} is not a valid verification record: {e}", path.display()),
                        )
                        .with_hint("Remove the file; the next verify or drill starts it again")
                    })?
                    .verifications
            }
            None => Vec::new(),
        };
        Ok(Self { path, records })
    }

    /// Appends `record` and writes the file.
    pub fn record(&mut self, record: Verification) -> Result<()> {
        self.records.push(record);
        if self.records.len() > KEEP {
            let extra = self.records.len() - KEEP;
            self.records.drain(..extra);
        }
        let bytes = serde_json::to_vec_pretty(&File {
            verifications: self.records.clone(),
        })
        .map_err(|e| Error::unexpected(format!("encoding the verification record: {e}")))?;
        write_atomic(&self.path, &bytes)
    }

    /// The newest proof of backup `backup_id` of `server` held where
    /// `repository` says (`None`: the local store), preferring the newest
    /// record.
    pub fn latest(
        &self,
        server: &str,
        backup_id: &str,
        repository: Option<&str>,
    ) -> Option<&Verification> {
        self.records.iter().rev().find(|r| {
            r.server == server && r.backup_id == backup_id && r.repository.as_deref() == repository
        })
    }

    /// The newest scratch drill of `server` (a measured recovery).
    pub fn last_recovery(&self, server: &str) -> Option<&Verification> {
        self.records
            .iter()
            .filter(|r| r.server == server && r.proof == Proof::Scratch)
            .max_by_key(|r| r.at())
    }

    /// The newest proof of any backup of `server`, wherever it is held.
    pub fn newest_for(&self, server: &str) -> Option<&Verification> {
        self.records
            .iter()
            .filter(|r| r.server == server)
            .max_by_key(|r| r.at())
    }
}

/// Records `record` in `kastell_dir`. A failure to record is logged, not
/// returned: the check itself passed.
pub(crate) fn remember(kastell_dir: &Path, record: Verification) {
    if let Err(e) = Verifications::load(kastell_dir).and_then(|mut v| v.record(record)) {
        tracing::warn!("could not record the verification: {e}");
    }
}

/// The current time as a record wants it.
pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The policy's maximum age of a server's newest proof, from
/// [`MAX_AGE_VAR`] (`90m`, `36h`, `7d`; a bare number is hours). Refuses a
/// value that is not one of those forms, saying how to write it.
pub(crate) fn max_age(env: &Env) -> Result<Duration> {
    let Some(text) = env.get_nonempty(MAX_AGE_VAR) else {
        return Ok(DEFAULT_MAX_AGE);
    };
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "h"),
    };
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && seconds > 0 => Ok(Duration::from_secs(n.saturating_mul(seconds))),
        _ => Err(
            Error::config_invalid(format!("{MAX_AGE_VAR}={text:?} is not a duration"))
                .with_hint("Write it as minutes, hours or days: 90m, 36h, 7d"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(server: &str, id: &str, repo: Option<&str>, at: &str) -> Verification {
        Verification {
            server: server.into(),
            backup_id: id.into(),
            repository: repo.map(str::to_owned),
            proof: Proof::Drill,
            verified_at: at.into(),
            duration_ms: 5,
            checks_skipped: 0,
            phases: Vec::new(),
            apps: Vec::new(),
        }
    }

    #[test]
    fn records_survive_a_reload_and_answer_by_backup_and_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = Verifications::load(dir.path()).unwrap();
        v.record(record("web", "B1", None, "2026-12-01T03:00:00Z"))
            .unwrap();
        v.record(record("web", "B1", Some("off"), "2026-12-02T03:00:00Z"))
            .unwrap();
        v.record(record("db", "C1", None, "2026-12-03T03:00:00Z"))
            .unwrap();
        let v = Verifications::load(dir.path()).unwrap();
        assert_eq!(
            v.latest("web", "B1", None).unwrap().verified_at,
            "2026-12-01T03:00:00Z"
        );
        assert_eq!(
            v.latest("web", "B1", Some("off")).unwrap().verified_at,
            "2026-12-02T03:00:00Z"
        );
        assert!(v.latest("web", "B2", None).is_none());
        assert_eq!(
            v.newest_for("web").unwrap().verified_at,
            "2026-12-02T03:00:00Z"
        );
        assert!(v.newest_for("cache").is_none());

        std::fs::write(dir.path().join(VERIFICATIONS_FILE), "{oops").unwrap();
        let err = Verifications::load(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn the_max_age_is_read_in_minutes_hours_or_days() {
        let env = |v: &str| Env::from_pairs([(MAX_AGE_VAR, v)]);
        assert_eq!(
            max_age(&Env::from_pairs::<&str, &str>([])).unwrap(),
            DEFAULT_MAX_AGE
        );
        assert_eq!(max_age(&env("90m")).unwrap(), Duration::from_secs(5400));
        assert_eq!(
            max_age(&env("36h")).unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(max_age(&env("2")).unwrap(), Duration::from_secs(7200));
        assert_eq!(
            max_age(&env("7d")).unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        for bad in ["0", "7w", "-1h", "h", "1.5d"] {
            let err = max_age(&env(bad)).unwrap_err();
            assert!(err.hint().unwrap().contains("36h"), "{bad}");
        }
    }
}
