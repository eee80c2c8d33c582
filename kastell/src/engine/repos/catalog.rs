//! The kastell backups in a repository: the snapshots kastell pushed
//! (tagged `backup:<id>`, and `safety-for:<id>` for a restore's safety
//! backup), per server, newest first.

use kastell_core::types::BackupId;
use kastell_core::{Error, Result};
use kastell_repo::RepoSnapshot;
use schemars::JsonSchema;
use serde::Serialize;

/// A kastell backup held in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepoBackup {
    /// The kastell backup id it was pushed from.
    pub backup_id: String,
    /// The repository snapshot holding it (64 hex digits).
    pub snapshot_id: String,
    /// When it was pushed (RFC 3339).
    pub time: String,
    /// The platform it was taken from (`coolify`, `dokploy`, `bare`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Bytes of the files it holds, decompressed.
    pub total_bytes: u64,
    /// For a restore's safety backup, the backup that restore put back
    /// (the snapshot's `safety-for:` tag): never picked as the newest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_for: Option<String>,
}

/// The tag naming, on a safety backup's snapshot, the backup whose
/// restore it was taken before.
pub(crate) const SAFETY_FOR_TAG: &str = "safety-for";

impl RepoBackup {
    fn of(snapshot: &RepoSnapshot) -> Option<Self> {
        Some(Self {
            backup_id: snapshot.tag_value("backup")?.to_owned(),
            snapshot_id: snapshot.id.clone(),
            time: snapshot.time.to_rfc3339(),
            platform: snapshot.tag_value("platform").map(str::to_owned),
            total_bytes: snapshot.total_bytes,
            safety_for: snapshot.tag_value(SAFETY_FOR_TAG).map(str::to_owned),
        })
    }
}

/// The backups of `server` among `snapshots`, newest first. Snapshots not
/// written by kastell (no `backup:` tag) are left out.
pub(crate) fn backups_of(snapshots: &[RepoSnapshot], server: &str) -> Vec<RepoBackup> {
    let mut found: Vec<(&RepoSnapshot, RepoBackup)> = snapshots
        .iter()
        .filter(|s| s.host == server)
        .filter_map(|s| RepoBackup::of(s).map(|b| (s, b)))
        .collect();
    found.sort_by_key(|(s, _)| std::cmp::Reverse(s.time));
    found.into_iter().map(|(_, b)| b).collect()
}

/// The backup `id` of `server` (default: the newest that is not a
/// restore's safety backup). When one backup was pushed twice the newer
/// snapshot wins. `NotFound` says what is there.
pub(crate) fn find_backup(
    snapshots: &[RepoSnapshot],
    server: &str,
    id: Option<&BackupId>,
    repo: &str,
) -> Result<RepoBackup> {
    let backups = backups_of(snapshots, server);
    let found = match id {
        Some(id) => backups.iter().find(|b| b.backup_id == id.as_str()),
        None => newest_of(&backups),
    };
    found.cloned().ok_or_else(|| {
        let what = match (id, backups.is_empty()) {
            (Some(id), _) => format!("no backup {id}"),
            (None, true) => "no backups".to_owned(),
            (None, false) => "only safety backups (never picked as the newest)".to_owned(),
        };
        Error::not_found(format!("repository {repo} holds {what} of server {server}"))
            .with_hint(match newest_of(&backups).or(backups.first()) {
                Some(newest) => format!(
                    "Its newest backup of {server} is {}; see `kastell backup list {server} --repo {repo}` and pass --backup ID",
                    newest.backup_id
                ),
                None => format!(
                    "Store one with `kastell backup create {server} --repo {repo}`"
                ),
            })
    })
}

/// The newest of `backups` (newest first) that is not a safety backup.
fn newest_of(backups: &[RepoBackup]) -> Option<&RepoBackup> {
    backups.iter().find(|b| b.safety_for.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(id: &str, host: &str, time: &str, tags: &[&str]) -> RepoSnapshot {
        RepoSnapshot {
            id: id.to_owned(),
            time: chrono::DateTime::parse_from_rfc3339(time).unwrap(),
            host: host.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            total_bytes: 10,
            added_bytes: 1,
            unchanged_files: 0,
        }
    }

    #[test]
    fn backups_are_per_server_newest_first_and_only_kastells() {
        let snaps = vec![
            snapshot(
                "a1",
                "web",
                "2026-12-01T03:00:00Z",
                &["kastell", "backup:B1", "platform:coolify"],
            ),
            snapshot(
                "b2",
                "web",
                "2026-12-02T03:00:00Z",
                &["kastell", "backup:B2"],
            ),
            snapshot(
                "c3",
                "db",
                "2026-12-03T03:00:00Z",
                &["kastell", "backup:C3"],
            ),
            snapshot("d4", "web", "2026-12-04T03:00:00Z", &["by-hand"]),
        ];
        let web = backups_of(&snaps, "web");
        let ids: Vec<&str> = web.iter().map(|b| b.backup_id.as_str()).collect();
        assert_eq!(ids, ["B2", "B1"]);
        assert_eq!(web[1].platform.as_deref(), Some("coolify"));

        let newest = find_backup(&snaps, "web", None, "off").unwrap();
        assert_eq!(newest.snapshot_id, "b2");
        let b1 = BackupId::new("B1".to_owned()).unwrap();
        assert_eq!(
            find_backup(&snaps, "web", Some(&b1), "off")
                .unwrap()
                .snapshot_id,
            "a1"
        );

        let missing = BackupId::new("C3".to_owned()).unwrap();
        let err = find_backup(&snaps, "web", Some(&missing), "off").unwrap_err();
        assert!(
            err.message().contains("no backup C3 of server web"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("B2"), "{err:?}");
        // A safety backup pushed later is listed, marked, and never the
        // newest; by its id it is found as any backup.
        let mut with_safety = snaps.clone();
        with_safety.push(snapshot(
            "e5",
            "web",
            "2026-12-05T03:00:00Z",
            &["kastell", "backup:S5", "safety-for:B2"],
        ));
        let web = backups_of(&with_safety, "web");
        assert_eq!(web[0].backup_id, "S5");
        assert_eq!(web[0].safety_for.as_deref(), Some("B2"));
        assert_eq!(web[1].safety_for, None);
        let newest = find_backup(&with_safety, "web", None, "off").unwrap();
        assert_eq!(newest.backup_id, "B2");
        let s5 = BackupId::new("S5".to_owned()).unwrap();
        assert_eq!(
            find_backup(&with_safety, "web", Some(&s5), "off")
                .unwrap()
                .snapshot_id,
            "e5"
        );
        let only = [with_safety[4].clone()];
        let err = find_backup(&only, "web", None, "off").unwrap_err();
        assert!(err.message().contains("only safety backups"), "{err}");
        assert!(err.hint().unwrap().contains("S5"), "{err:?}");

        let err = find_backup(&snaps, "cache", None, "off").unwrap_err();
        assert!(
            err.hint()
                .unwrap()
                .contains("backup create cache --repo off")
        );
    }
}
