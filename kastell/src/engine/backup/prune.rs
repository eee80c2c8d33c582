//! Retention for the local store: which of a server's backups a
//! [`KeepPolicy`] keeps (restic's rules, as for repositories), and removing
//! the others without ever leaving a half-removed backup listed.
//!
//! Candidates are the server's complete and legacy backups, timed by the
//! manifest's `createdAt` (else the id, which is the UTC time it was
//! taken). The newest proven backup (verified or drilled, see
//! [`crate::state::verifications`]) is never removed; while none is proven, the
//! newest complete one stands in for it. A corrupt backup is never
//! removed by a policy: it is left for inspection and said so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use kastell_core::types::BackupId;
use kastell_core::{Error, Result};
use kastell_repo::retention::Candidate;
use kastell_repo::{KeepPolicy, PruneDecision};

use super::layout::STAGING_PREFIX;
use super::stored::{BackupStatus, StoredBackup};
use super::{BackupEngine, BackupLayout, HostLock};
use crate::state::store::write_atomic;
use crate::state::verifications::Verifications;

/// The file, in the kastell directory, holding the local retention
/// policies.
pub const RETENTION_FILE: &str = "retention.json";

/// The key of [`Policies::set`] for every server without a policy of its
/// own.
pub const EVERY_SERVER: &str = "*";

/// The local store's retention policies, per server (or for every
/// server), as `backup prune --save` recorded them.
#[derive(Debug)]
pub struct Policies {
    path: PathBuf,
    servers: BTreeMap<String, KeepPolicy>,
}

impl Policies {
    /// Reads the policies in `kastell_dir` (none when there is no file).
    /// A file that does not parse is `Corrupt`, naming it; one that is
    /// not a regular file (a FIFO) is refused without waiting on it.
    pub fn load(kastell_dir: &Path) -> Result<Self> {
        let path = kastell_dir.join(RETENTION_FILE);
        let servers = match crate::state::store::read_regular(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    kastell_core::ErrorKind::Corrupt,
                    format!("{} is not a valid retention file: {e}", path.display()),
                )
                .with_hint(
                    "Fix or remove it, then save the policies again with backup prune --save",
                )
            })?,
            None => BTreeMap::new(),
        };
        Ok(Self { path, servers })
    }

    /// The policy of `server`: its own, else the one for every server.
    pub fn get(&self, server: &str) -> Option<KeepPolicy> {
        self.servers
            .get(server)
            .or_else(|| self.servers.get(EVERY_SERVER))
            .copied()
    }

    /// Records `policy` for `server` (or [`EVERY_SERVER`]) and writes the
    /// file. Refuses an invalid policy.
    pub fn set(&mut self, server: &str, policy: KeepPolicy) -> Result<()> {
        policy.validate()?;
        self.servers.insert(server.to_owned(), policy);
        let bytes = serde_json::to_vec_pretty(&self.servers)
            .map_err(|e| Error::unexpected(format!("encoding the retention policies: {e}")))?;
        write_atomic(&self.path, &bytes)
    }
}

/// The reason a corrupt backup stays.
pub const CORRUPT_KEPT: &str = "corrupt: left for inspection";

/// When `backup` was taken: the manifest's `createdAt`, else its id read
/// as a UTC time (`2026-03-15_12-30-45-123`).
fn taken_at(backup: &StoredBackup) -> Option<DateTime<FixedOffset>> {
    if let Some(at) = backup
        .manifest
        .as_ref()
        .and_then(|m| m.created_at.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        return Some(at);
    }
    NaiveDateTime::parse_from_str(backup.id.as_str(), "%Y-%m-%d_%H-%M-%S-%3f")
        .ok()
        .map(|t| t.and_utc().fixed_offset())
}

/// What `policy` does with each of `server`'s local backups, newest first.
pub fn plan(
    engine: &BackupEngine,
    proofs: &Verifications,
    server: &str,
    policy: &KeepPolicy,
) -> Result<Vec<PruneDecision>> {
    let backups = engine.list(server)?;
    let proven = |b: &StoredBackup| proofs.latest(server, b.id.as_str(), None).is_some();
    let any_proven = backups.iter().any(proven);
    let mut candidates = Vec::new();
    let mut kept = Vec::new();
    for backup in &backups {
        let time = taken_at(backup);
        match (backup.status, time) {
            (BackupStatus::Corrupt, _) | (_, None) => kept.push(PruneDecision {
                id: backup.id.to_string(),
                time: time.unwrap_or_default(),
                keep: true,
                reasons: vec![CORRUPT_KEPT.to_owned()],
            }),
            (status, Some(time)) => candidates.push(Candidate {
                id: backup.id.to_string(),
                time,
                verified: proven(backup) || (!any_proven && status == BackupStatus::Complete),
            }),
        }
    }
    let mut decisions = policy.plan(&candidates);
    decisions.extend(kept);
    decisions.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    Ok(decisions)
}

/// Removes the backups `ids` of `server`, holding the server's lock (a
/// backup or restore running on it makes this fail, retryable, before
/// anything is removed). Each backup is first renamed to a hidden staging
/// name, so it leaves the listing at once and a crash midway leaves only
/// debris the next backup sweeps away. Returns how many were removed.
pub fn remove(kastell_dir: &Path, server: &str, ids: &[String]) -> Result<usize> {
    let layout = BackupLayout::new(kastell_dir);
    let server_dir = layout.server_dir(server)?;
    let _lock = HostLock::try_acquire(&server_dir, server, "backup prune")?;
    let mut removed = 0;
    for id in ids {
        let id = BackupId::new(id.clone())?;
        let dir = layout.backup_dir(server, &id)?;
        let doomed = server_dir.join(format!(
            "{STAGING_PREFIX}{id}-pruned-{}",
            std::process::id()
        ));
        std::fs::rename(&dir, &doomed)
            .map_err(|e| Error::io(format!("removing backup {id} ({})", dir.display()), e))?;
        std::fs::remove_dir_all(&doomed)
            .map_err(|e| Error::io(format!("removing {}", doomed.display()), e))?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::verifications::{Proof, Verification};

    fn backup(dir: &Path, id: &str, corrupt: bool) {
        let path = dir.join("backups/web").join(id);
        std::fs::create_dir_all(&path).unwrap();
        let manifest = serde_json::json!({
            "serverName": "web", "timestamp": id, "formatVersion": 2,
            "files": ["a.tar"],
            "artifacts": [{"name": "a.tar", "format": "tar", "compression": "none",
                "size": 3, "sha256": "x"}],
        });
        std::fs::write(path.join("manifest.json"), manifest.to_string()).unwrap();
        std::fs::write(path.join("a.tar"), if corrupt { "ab" } else { "abc" }).unwrap();
    }

    #[test]
    fn the_newest_proven_backup_and_corrupt_ones_stay_and_removal_is_whole() {
        let tmp = tempfile::tempdir().unwrap();
        for (id, corrupt) in [
            ("2026-12-01_03-00-00-000", false),
            ("2026-12-02_03-00-00-000", false),
            ("2026-12-03_03-00-00-000", true),
            ("2026-12-04_03-00-00-000", false),
        ] {
            backup(tmp.path(), id, corrupt);
        }
        let engine = BackupEngine::new(tmp.path());
        let keep_last_1 = KeepPolicy {
            keep_last: Some(1),
            ..KeepPolicy::default()
        };

        // Nothing proven: the newest complete backup is kept by the last
        // rule anyway; the corrupt one stays for inspection.
        let proofs = Verifications::load(tmp.path()).unwrap();
        let d = plan(&engine, &proofs, "web", &keep_last_1).unwrap();
        let kept: Vec<&str> = d.iter().filter(|d| d.keep).map(|d| d.id.as_str()).collect();
        assert_eq!(
            kept,
            ["2026-12-04_03-00-00-000", "2026-12-03_03-00-00-000"],
            "{d:?}"
        );
        assert_eq!(d[1].reasons, [CORRUPT_KEPT]);

        // The oldest was drilled: it stays as the newest proven backup.
        let mut proofs = Verifications::load(tmp.path()).unwrap();
        proofs
            .record(Verification {
                server: "web".into(),
                backup_id: "2026-12-01_03-00-00-000".into(),
                repository: None,
                proof: Proof::Drill,
                verified_at: "2026-12-05T00:00:00Z".into(),
                duration_ms: 1,
                checks_skipped: 0,
                phases: Vec::new(),
                apps: Vec::new(),
            })
            .unwrap();
        let d = plan(&engine, &proofs, "web", &keep_last_1).unwrap();
        let oldest = d
            .iter()
            .find(|d| d.id == "2026-12-01_03-00-00-000")
            .unwrap();
        assert!(
            oldest.keep && oldest.reasons.iter().any(|r| r.contains("verified")),
            "{d:?}"
        );
        let doomed: Vec<String> = d.iter().filter(|d| !d.keep).map(|d| d.id.clone()).collect();
        assert_eq!(doomed, ["2026-12-02_03-00-00-000"]);

        assert_eq!(remove(tmp.path(), "web", &doomed).unwrap(), 1);
        let left: Vec<String> = engine
            .list("web")
            .unwrap()
            .iter()
            .map(|b| b.id.to_string())
            .collect();
        assert_eq!(left.len(), 3);
        assert!(!left.contains(&doomed[0]));
        let debris = std::fs::read_dir(tmp.path().join("backups/web"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
            .count();
        assert_eq!(debris, 0);
    }
}
