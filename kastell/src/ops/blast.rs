//! The blast radius of a destructive operation: what it overwrites or
//! deletes on which server, the newest backup to fall back on and its age,
//! what a snapshot first would cost, and a fingerprint of all of it.
//!
//! A person confirming a restore reads this; a plan token is bound to its
//! fingerprint, so a token made before the state changed (another backup
//! taken, the server re-addressed, the snapshot gone) is refused.

#[allow(unused_imports)]
use super::Operation as _;
use super::{BackupRestoreOp, SnapshotDeleteOp, SnapshotRestoreOp};
use chrono::{DateTime, Utc};
use kastell_core::Registry;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backup::{given_id, newest_restorable};
use super::snapshot::parse_snapshot_id;
use super::{Context, OpError, OpResult, backup_list_in, snapshot_list};
use crate::policy::OpId;
use crate::state::store::ServerRecord;

/// What a destructive operation would destroy, shown before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadius {
    /// The action (`backup-restore`, `snapshot-delete`, `snapshot-restore`).
    pub action: String,
    /// The server's name.
    pub server: String,
    /// The server's IP.
    pub ip: String,
    /// Its platform (`coolify`, `dokploy`, `bare`).
    pub platform: String,
    /// Its provider, for cloud servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// What is overwritten or deleted, in words.
    pub overwrites: String,
    /// The backup or snapshot the action uses, as listed (one that is not
    /// listed is refused before anything is asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<serde_json::Value>,
    /// The newest local (or repository) backup of the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_backup: Option<NewestBackup>,
    /// What a provider snapshot of the server would cost per month, for
    /// cloud servers whose provider estimates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_cost: Option<String>,
    /// Hex SHA-256 of the state above: the server record, the target and
    /// the newest backup.
    pub fingerprint: String,
}

/// The newest backup and how old it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewestBackup {
    /// Its id.
    pub backup_id: String,
    /// When it was taken, as its manifest says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Its age in words (`3 hours`), when the timestamp reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<String>,
}

/// An age in the largest whole unit: `45 seconds`, `3 hours`, `2 days`.
pub fn age_in_words(seconds: i64) -> String {
    let s = seconds.max(0);
    let (n, unit) = match s {
        0..60 => (s, "second"),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The age of a backup taken at `timestamp`: RFC 3339, or the manifests'
/// own `2026-12-03_14-07-26-913` (UTC).
fn age_of(timestamp: &str, now: DateTime<Utc>) -> Option<String> {
    let taken = DateTime::parse_from_rfc3339(timestamp)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%d_%H-%M-%S-%3f")
                .map(|t| t.and_utc())
        })
        .ok()?;
    Some(age_in_words((now - taken).num_seconds()))
}

/// What a backup of the platform `id` holds and its restore replaces, as
/// its registry entry declares ([`kastell_core::types::BackupStyle`]); for a
/// platform this build does not register (whose restore fails saying so),
/// the platform's backed-up data.
pub fn backup_holds(id: &str) -> &'static str {
    Registry::global()
        .platform(id)
        .map_or("the platform's backed-up data", |entry| entry.backup.holds)
}

/// The blast radius of `op` (a destructive operation) on the server
/// `query` names, with `target` the backup or snapshot id it uses and
/// `repo` the repository a restore reads from.
///
/// Reads only: the fleet store, the backup list and, for cloud servers,
/// the provider's snapshot list and cost estimate (each best effort: a
/// provider that fails leaves its part out). Refuses what the policy
/// refuses for `op` (the refusal is the operation's own, not logged twice
/// later), an unknown server, a malformed `target` (`InvalidInput`) and
/// one the server's backup or snapshot list does not hold (`NotFound`,
/// saying how to list the valid ids), as well as a list that cannot be
/// read: nobody is asked to confirm what cannot be shown to exist.
pub async fn blast_radius(
    ctx: &Context,
    op: OpId,
    query: Option<&str>,
    target: Option<&str>,
    repo: Option<&str>,
) -> OpResult<BlastRadius> {
    let admitted = ctx.admit(op, query)?;
    let server = admitted.server;
    let name = server.name.as_str();
    let platform = server.platform_id().to_owned();
    let target_id = target.unwrap_or("").trim().to_owned();
    let fail = |e: kastell_core::Error| OpError::from(e).on(&server);
    // A restore never falls back on a safety backup unless named: its
    // newest is the one it would pick.
    let backups = if op == BackupRestoreOp::ID {
        // The id is checked before the listing is read, and a listing that
        // cannot be read refuses: nobody is asked about a backup that
        // cannot be shown to exist.
        given_id(Some(&target_id)).map_err(fail)?;
        Some(backup_list_in(ctx, Some(name), repo).await?)
    } else {
        backup_list_in(ctx, Some(name), repo).await.ok()
    };
    let newest = backups
        .as_ref()
        .and_then(|b| {
            if op == BackupRestoreOp::ID {
                newest_restorable(&b.body.backups)
            } else {
                b.body.backups.first()
            }
        })
        .map(|b| NewestBackup {
            backup_id: b.backup_id.clone(),
            timestamp: b.timestamp.clone(),
            age: b.timestamp.as_deref().and_then(|t| age_of(t, Utc::now())),
        });
    let (overwrites, target) = if op == BackupRestoreOp::ID {
        let listed = backups.as_ref().map(|b| b.body.backups.as_slice());
        let found = listed
            .unwrap_or_default()
            .iter()
            .find(|e| e.backup_id == target_id)
            .ok_or_else(|| fail(missing_backup(&target_id, name, repo)))?;
        let what = backup_holds(&platform);
        (
            format!(
                "{what} on {name}, replaced by backup {target_id}; a safety backup is taken first and the platform is stopped while it restores"
            ),
            serde_json::to_value(found).ok(),
        )
    } else if op == SnapshotRestoreOp::ID || op == SnapshotDeleteOp::ID {
        parse_snapshot_id(&target_id).map_err(fail)?;
        let listed = snapshot_list(ctx, Some(name)).await?;
        let found = listed
            .body
            .snapshots
            .iter()
            .find(|s| s.id == target_id)
            .ok_or_else(|| fail(missing_snapshot(&target_id, name)))?;
        let words = if op == SnapshotRestoreOp::ID {
            format!(
                "the whole disk of {name}, rebuilt from snapshot {target_id}: everything written since the snapshot is lost"
            )
        } else {
            format!(
                "snapshot {target_id} of {name}, deleted at the provider for good (it cannot be undone)"
            )
        };
        (words, serde_json::to_value(found).ok())
    } else {
        (format!("{op} on {name}"), None::<serde_json::Value>)
    };
    let snapshot_cost = snapshot_cost(ctx, &server).await;
    let fingerprint = fingerprint(&server, target.as_ref(), newest.as_ref());
    Ok(BlastRadius {
        action: op.as_str().to_owned(),
        server: server.name.clone(),
        ip: server.ip.clone(),
        platform,
        provider: server.provider_id().map(str::to_owned),
        overwrites,
        target,
        newest_backup: newest,
        snapshot_cost,
        fingerprint,
    })
}

/// The refusal of a restore naming backup `id`, which `server` does not
/// have (in repository `repo`, when one is named).
fn missing_backup(id: &str, server: &str, repo: Option<&str>) -> kastell_core::Error {
    let (place, listing) = match repo {
        Some(repo) => (
            format!(" in repository {repo}"),
            format!("server_backup action backup-list with server {server} and repo {repo}"),
        ),
        None => (
            String::new(),
            format!("server_backup action backup-list with server {server}"),
        ),
    };
    kastell_core::Error::not_found(format!(
        "backup {id} of server {server} not found{place}; nothing was asked or changed"
    ))
    .with_hint(format!(
        "List the backup ids that exist with {listing}, then call again with one of them"
    ))
}

/// The refusal of a snapshot restore or delete naming snapshot `id`, which
/// `server` does not have.
fn missing_snapshot(id: &str, server: &str) -> kastell_core::Error {
    kastell_core::Error::not_found(format!(
        "snapshot {id} of server {server} not found; nothing was asked or changed"
    ))
    .with_hint(format!(
        "List the snapshot ids that exist with server_backup action snapshot-list with server {server}, then call again with one of them"
    ))
}

async fn snapshot_cost(ctx: &Context, server: &ServerRecord) -> Option<String> {
    if server.is_manual()
        || !server
            .provider_id()
            .is_some_and(|p| ctx.token_present_for(server, p))
    {
        return None;
    }
    let provider = ctx.provider_for(server).ok()?;
    let id = super::server_id(server).ok()?;
    match provider.snapshot_cost_estimate(&id).await {
        Ok(cost) => Some(cost.to_string()),
        Err(e) => {
            tracing::debug!("snapshot cost estimate failed: {e}");
            None
        }
    }
}

/// Hex SHA-256 over the server record, the target as listed and the
/// newest backup's id.
fn fingerprint(
    server: &ServerRecord,
    target: Option<&serde_json::Value>,
    newest: Option<&NewestBackup>,
) -> String {
    let mut hash = Sha256::new();
    for part in [
        serde_json::to_vec(server).unwrap_or_default(),
        serde_json::to_vec(&target).unwrap_or_default(),
        newest
            .map(|n| n.backup_id.as_bytes().to_vec())
            .unwrap_or_default(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(&part);
    }
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl BlastRadius {
    /// The question put to a person: the action, the server, what goes,
    /// the newest backup and its age, and the snapshot alternative.
    pub fn question(&self) -> String {
        let mut lines = vec![
            format!(
                "Allow {} on {} ({}, {})?",
                self.action, self.server, self.ip, self.platform
            ),
            format!("It overwrites: {}.", self.overwrites),
        ];
        lines.push(match &self.newest_backup {
            Some(b) => format!(
                "Newest backup: {}{}.",
                b.backup_id,
                b.age
                    .as_deref()
                    .map(|a| format!(" ({a} old)"))
                    .unwrap_or_default()
            ),
            None => "There is no backup of this server.".to_owned(),
        });
        if let Some(cost) = &self.snapshot_cost {
            lines.push(format!(
                "A provider snapshot first (snapshot-create) would cost about {cost}."
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_backup_holds_comes_from_the_platform_entry() {
        assert_eq!(backup_holds("bare"), "the backed-up files and directories");
        for paas in ["coolify", "dokploy"] {
            assert_eq!(
                backup_holds(paas),
                "the platform's database and configuration and each app's databases and volumes"
            );
        }
        assert_eq!(backup_holds("nosuch"), "the platform's backed-up data");
    }

    #[test]
    fn ages_read_both_timestamp_forms() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T14:07:26Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            age_of("2026-12-03_12-07-26-913", now).as_deref(),
            Some("1 hour")
        );
        assert_eq!(
            age_of("2026-12-01T14:07:26Z", now).as_deref(),
            Some("2 days")
        );
        assert_eq!(age_of("yesterday", now), None);
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(age_in_words(-5), "0 seconds");
        assert_eq!(age_in_words(1), "1 second");
        assert_eq!(age_in_words(59), "59 seconds");
        assert_eq!(age_in_words(60), "1 minute");
        assert_eq!(age_in_words(7200), "2 hours");
        assert_eq!(age_in_words(86_400 * 3 + 5), "3 days");
    }

    #[test]
    fn the_fingerprint_changes_with_the_server_the_target_and_the_newest_backup() {
        let server = ServerRecord::new("manual-1", "web-1", "203.0.113.10");
        let newest = NewestBackup {
            backup_id: "b1".into(),
            timestamp: None,
            age: None,
        };
        let base = fingerprint(&server, None, Some(&newest));
        assert_eq!(base, fingerprint(&server, None, Some(&newest)));
        let moved = ServerRecord::new("manual-1", "web-1", "203.0.113.11");
        assert_ne!(base, fingerprint(&moved, None, Some(&newest)));
        let target = serde_json::json!({"backupId": "b0"});
        assert_ne!(base, fingerprint(&server, Some(&target), Some(&newest)));
        let newer = NewestBackup {
            backup_id: "b2".into(),
            ..newest.clone()
        };
        assert_ne!(base, fingerprint(&server, None, Some(&newer)));
        assert_ne!(base, fingerprint(&server, None, None));
    }
}
