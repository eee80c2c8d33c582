//! Content an earlier snapshot already holds, taken without reading it.
//!
//! A caller that knows what an entry holds without reading it (for a
//! stored backup, the SHA-256 of the compressed file it is read from)
//! gives it a content key. Every snapshot kastell writes records, in its
//! description, each entry's name, size, modification time and key. A new
//! snapshot whose entry has the name, size and key of one an earlier
//! snapshot of the same host recorded gets that entry's modification time
//! and names that snapshot as a parent: rustic_core then takes the
//! entry's content (its chunk list) from the parent's tree and never opens
//! its reader. Every other entry gets a modification time no chosen parent
//! recorded for its name, so it is always read.
//!
//! Stock restic ignores the description's JSON and sees ordinary files
//! with ordinary times.

use std::collections::BTreeSet;

use kastell_core::{Error, Result};
use rustic_core::repofile::SnapshotFile;
use serde::{Deserialize, Serialize};

/// What a kastell snapshot's description holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Recorded {
    kastell_entries: Vec<RecordedEntry>,
}

/// One entry of a snapshot as its description records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordedEntry {
    /// The file name in the snapshot.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, in seconds since the epoch.
    pub mtime: i64,
    /// Its content key, when the caller gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The longest content key accepted.
const MAX_KEY: usize = 160;

/// Refuses a content key that is empty, too long or holds anything but
/// ASCII letters, digits and `:_-`.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let plain = !key.is_empty()
        && key.len() <= MAX_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b));
    if plain {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "{key:?} is not a content key (up to {MAX_KEY} letters, digits and :_-)"
        )))
    }
}

/// The entries `file`'s description records, or `None` when it records
/// none (a snapshot restic or an older kastell wrote).
fn recorded(file: &SnapshotFile) -> Option<Vec<RecordedEntry>> {
    let text = file.description.as_deref()?;
    serde_json::from_str::<Recorded>(text)
        .ok()
        .map(|r| r.kastell_entries)
}

/// The snapshots of `host` whose descriptions record their entries,
/// newest first, each with what it records.
fn candidates<'a>(
    snapshots: &'a [SnapshotFile],
    host: &str,
) -> Vec<(&'a SnapshotFile, Vec<RecordedEntry>)> {
    let mut candidates: Vec<(&SnapshotFile, Vec<RecordedEntry>)> = snapshots
        .iter()
        .filter(|s| s.hostname == host)
        .filter_map(|s| recorded(s).map(|r| (s, r)))
        .collect();
    candidates.sort_by(|a, b| b.0.time.cmp(&a.0.time));
    candidates
}

/// Whether `recorded` is `entry`: the same name and key, and the same
/// size when `size` is known.
fn same(recorded: &RecordedEntry, name: &str, key: &str, size: Option<u64>) -> bool {
    recorded.name == name
        && recorded.key.as_deref() == Some(key)
        && size.is_none_or(|size| recorded.size == size)
}

/// The newest snapshot of `host` that recorded an entry `name` with
/// content key `key` (and size `size`, when known), with that entry.
pub(crate) fn find<'a>(
    snapshots: &'a [SnapshotFile],
    host: &str,
    name: &str,
    key: &str,
    size: Option<u64>,
) -> Option<(&'a SnapshotFile, RecordedEntry)> {
    candidates(snapshots, host)
        .into_iter()
        .find_map(|(snapshot, rec)| {
            rec.into_iter()
                .find(|r| same(r, name, key, size))
                .map(|r| (snapshot, r))
        })
}

/// An entry of the snapshot being written, as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    /// The file name.
    pub name: String,
    /// Its size.
    pub size: u64,
    /// Its content key, if any.
    pub key: Option<String>,
}

/// How a new snapshot is written: its parents, each entry's modification
/// time and the description that records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The snapshots (full ids) whose content may be taken.
    pub parents: Vec<String>,
    /// Each entry's modification time (seconds), in the entries' order.
    pub mtimes: Vec<i64>,
    /// Whether each entry's content comes from a parent (it is not read).
    pub reused: Vec<bool>,
    /// The new snapshot's description.
    pub description: String,
}

/// Plans a snapshot of `host` holding `entries`, written at `now`
/// (seconds), against the repository's `snapshots`. An entry reuses the
/// newest snapshot of `host` that recorded its name, size and key, unless
/// another chosen parent recorded the same name, size and time for other
/// content; every other entry gets a time at or after `now` that no chosen
/// parent recorded for its name.
pub(crate) fn plan(snapshots: &[SnapshotFile], host: &str, entries: &[Planned], now: i64) -> Plan {
    let candidates = candidates(snapshots, host);

    // First pass: where each keyed entry's content is.
    let mut chosen: Vec<usize> = Vec::new();
    let mut found: Vec<Option<(usize, i64)>> = entries
        .iter()
        .map(|entry| {
            let key = entry.key.as_ref()?;
            candidates.iter().enumerate().find_map(|(at, (_, rec))| {
                rec.iter()
                    .find(|r| same(r, &entry.name, key, Some(entry.size)))
                    .map(|r| (at, r.mtime))
            })
        })
        .collect();
    for (at, _) in found.iter().flatten() {
        if !chosen.contains(at) {
            chosen.push(*at);
        }
    }
    // A match another chosen parent contradicts (same name, size and
    // time, other content) is read instead.
    for (entry, slot) in entries.iter().zip(found.iter_mut()) {
        if let Some((_, mtime)) = *slot {
            let contradicted = chosen.iter().any(|&at| {
                candidates[at].1.iter().any(|r| {
                    r.name == entry.name
                        && r.size == entry.size
                        && r.mtime == mtime
                        && r.key != entry.key
                })
            });
            if contradicted {
                *slot = None;
            }
        }
    }
    let taken: BTreeSet<(&str, i64)> = chosen
        .iter()
        .flat_map(|&at| candidates[at].1.iter().map(|r| (r.name.as_str(), r.mtime)))
        .collect();
    let mtimes: Vec<i64> = entries
        .iter()
        .zip(&found)
        .map(|(entry, slot)| match slot {
            Some((_, mtime)) => *mtime,
            None => {
                let mut mtime = now;
                while taken.contains(&(entry.name.as_str(), mtime)) {
                    mtime += 1;
                }
                mtime
            }
        })
        .collect();
    let record = Recorded {
        kastell_entries: entries
            .iter()
            .zip(&mtimes)
            .map(|(entry, mtime)| RecordedEntry {
                name: entry.name.clone(),
                size: entry.size,
                mtime: *mtime,
                key: entry.key.clone(),
            })
            .collect(),
    };
    Plan {
        parents: chosen
            .iter()
            .map(|&at| candidates[at].0.id.to_hex().to_string())
            .collect(),
        reused: found.iter().map(Option::is_some).collect(),
        mtimes,
        // A struct of strings and numbers always serialises.
        description: serde_json::to_string(&record).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(host: &str, secs: i64, entries: &[(&str, u64, i64, Option<&str>)]) -> SnapshotFile {
        let record = Recorded {
            kastell_entries: entries
                .iter()
                .map(|(name, size, mtime, key)| RecordedEntry {
                    name: (*name).to_owned(),
                    size: *size,
                    mtime: *mtime,
                    key: key.map(str::to_owned),
                })
                .collect(),
        };
        SnapshotFile {
            hostname: host.to_owned(),
            time: jiff::Timestamp::from_second(secs)
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC),
            description: Some(serde_json::to_string(&record).unwrap()),
            ..SnapshotFile::default()
        }
    }

    fn planned(name: &str, size: u64, key: Option<&str>) -> Planned {
        Planned {
            name: name.to_owned(),
            size,
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn unchanged_content_reuses_the_newest_snapshot_that_recorded_it() {
        let old = snapshot("web", 100, &[("db", 10, 90, Some("k1"))]);
        let newer = snapshot("web", 200, &[("db", 10, 190, Some("k1"))]);
        let other_host = snapshot("db", 300, &[("db", 10, 290, Some("k1"))]);
        let snaps = [old, newer.clone(), other_host];
        let plan = plan(
            &snaps,
            "web",
            &[
                planned("db", 10, Some("k1")),
                planned("manifest.json", 5, None),
            ],
            500,
        );
        assert_eq!(plan.parents, [newer.id.to_hex().to_string()]);
        assert_eq!(plan.mtimes, [190, 500]);
        assert_eq!(plan.reused, [true, false]);
        assert!(
            plan.description.contains("\"mtime\":190"),
            "{}",
            plan.description
        );
    }

    #[test]
    fn changed_content_is_read_with_a_time_no_parent_recorded() {
        let parent = snapshot(
            "web",
            100,
            &[("db", 10, 500, Some("k1")), ("conf", 3, 501, Some("c1"))],
        );
        // Same name and size, other key: not reused, and its time avoids
        // the parent's 500 (and 501 is only conf's).
        let plan = plan(
            &[parent],
            "web",
            &[
                planned("db", 10, Some("k2")),
                planned("conf", 3, Some("c1")),
            ],
            500,
        );
        assert_eq!(plan.reused, [false, true]);
        assert_eq!(plan.mtimes, [501, 501]);
        // No snapshot recorded anything: no parents, every entry read.
        let plan = super::plan(&[], "web", &[planned("db", 10, Some("k1"))], 7);
        assert!(plan.parents.is_empty());
        assert_eq!(plan.reused, [false]);
    }

    #[test]
    fn a_match_another_parent_contradicts_is_read() {
        // Two snapshots wrote other content under the same name, size and
        // second: whichever rustic_core found first could be wrong.
        let a = snapshot(
            "web",
            100,
            &[("db", 10, 50, Some("ka")), ("x", 1, 50, Some("kx"))],
        );
        let b = snapshot("web", 200, &[("db", 10, 50, Some("kb"))]);
        let plan = plan(
            &[a, b],
            "web",
            &[planned("db", 10, Some("ka")), planned("x", 1, Some("kx"))],
            900,
        );
        assert_eq!(
            plan.reused,
            [true, true],
            "only a is chosen: no contradiction"
        );
        let a = snapshot("web", 100, &[("x", 1, 50, Some("kx"))]);
        let b = snapshot(
            "web",
            200,
            &[("db", 10, 50, Some("kb")), ("y", 1, 60, Some("ky"))],
        );
        let c = snapshot("web", 50, &[("db", 10, 50, Some("ka"))]);
        let plan = super::plan(
            &[a, b, c],
            "web",
            &[
                planned("db", 10, Some("ka")),
                planned("x", 1, Some("kx")),
                planned("y", 1, Some("ky")),
            ],
            900,
        );
        assert_eq!(plan.reused, [false, true, true]);
        assert_ne!(plan.mtimes[0], 50);
    }

    #[test]
    fn keys_are_plain() {
        assert!(check_key("sha256:ab12").is_ok());
        for bad in ["", "a b", "a\n", &"k".repeat(161), "x/y"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
