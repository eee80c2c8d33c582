//! The MCP task journal: one file per task a kastell-mcp process ran,
//! `tasks/<id>.json` in the kastell directory, holding the task's status,
//! its last status message, the rollout it drives (if any) and, once it
//! ended, its result; rewritten atomically at every change worth keeping
//! (a crash leaves the last state whole). `tasks/<id>.lock` is held
//! (`flock`) by the process running the task, so another process can tell
//! a task still running elsewhere from one whose process died mid-run.
//!
//! A later kastell-mcp answers `tasks/get` for a task of an earlier one
//! from here. Journals older than [`KEPT_DAYS`] are swept when a task
//! starts.
//! Ids come from clients, so only ids kastell could have made (hex digits
//! and `-`) ever become file names.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use kastell_core::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::lockfile::{Tried, try_lock};
use crate::state::store::{read_regular, write_atomic};

/// The directory of the task journals, in the kastell directory.
pub(crate) const TASKS_DIR: &str = "tasks";

/// The journal format this build writes and reads.
const VERSION: u32 = 1;

/// How many days a task's journal is kept after it was last written:
/// twice the day a task is kept in memory, as rmcp keeps a finished task
/// one more TTL.
pub(crate) const KEPT_DAYS: i64 = 2;

/// Where a journaled task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskState {
    /// Running (or its process died while it ran: the lock tells which).
    Working,
    /// Ended with a tool result (which may itself be an error).
    Completed,
    /// Stopped at a safe point because it was asked to.
    Cancelled,
    /// Its process died before it ended: what was in flight is unknown.
    Interrupted,
}

/// One task's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskRecord {
    /// The journal format.
    pub(crate) version: u32,
    /// The task id rmcp gave it.
    pub(crate) task_id: String,
    /// What it runs (`rollout`, `maintain`).
    pub(crate) label: String,
    /// Where it is.
    pub(crate) state: TaskState,
    /// Its last status message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) status_message: Option<String>,
    /// When it was created (RFC 3339, as the task says).
    pub(crate) created_at: String,
    /// When it was last written.
    pub(crate) last_updated_at: String,
    /// Its time to live, as the task said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ttl_ms: Option<u64>,
    /// The polling interval it suggested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) poll_interval_ms: Option<u64>,
    /// The process that ran it.
    pub(crate) pid: u32,
    /// The journaled rollout it drives, to resume after an interruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rollout_id: Option<String>,
    /// The tool result, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<Value>,
}

/// Whether `id` could be a task id kastell-mcp handed out (rmcp's are
/// UUIDs): 1 to 64 hex digits and `-`.
pub(crate) fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// Now, as the journal writes times.
pub(crate) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn tasks_dir(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(TASKS_DIR);
    super::paths::ensure_private_dir(&path)?;
    Ok(path)
}

fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(TASKS_DIR).join(format!("{id}.json"))
}

fn lock_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(TASKS_DIR).join(format!("{id}.lock"))
}

fn refuse_id(id: &str) -> Error {
    Error::invalid_input(format!(
        "{:?} is not a task id",
        crate::state::store::display_safe(id)
    ))
}

/// The lock of the process running a task; released when dropped (or
/// when the process dies).
#[derive(Debug)]
pub(crate) struct TaskLock {
    _file: File,
}

impl TaskRecord {
    /// Takes the lock of task `id` in `dir` for this process: held for as
    /// long as the task runs here.
    pub(crate) fn lock(dir: &Path, id: &str) -> Result<TaskLock> {
        if !plausible_id(id) {
            return Err(refuse_id(id));
        }
        let path = tasks_dir(dir)?.join(format!("{id}.lock"));
        match try_lock(&path, "kastell-mcp task")? {
            Tried::Taken(file) => Ok(TaskLock { _file: file }),
            Tried::Busy(holder) => Err(Error::invalid_state(format!(
                "task {id} is already run by {}",
                holder.unwrap_or_else(|| "another process".to_owned())
            ))),
        }
    }

    /// Reads task `id`'s journal from `dir`: `None` when there is none (or
    /// the id is not one kastell makes). Refuses one that is not a regular
    /// file or does not parse.
    pub(crate) fn load(dir: &Path, id: &str) -> Result<Option<Self>> {
        if !plausible_id(id) {
            return Ok(None);
        }
        let path = record_path(dir, id);
        let Some(bytes) = read_regular(&path)? else {
            return Ok(None);
        };
        let record: Self = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("{} does not parse: {e}", path.display()),
            )
        })?;
        if record.version != VERSION || record.task_id != id {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "{} is not a version {VERSION} journal of task {id}",
                    path.display()
                ),
            ));
        }
        Ok(Some(record))
    }

    /// Writes the journal atomically into `dir` (the old content or the
    /// new, never a mix), stamping `last_updated_at`.
    pub(crate) fn save(&mut self, dir: &Path) -> Result<()> {
        if !plausible_id(&self.task_id) {
            return Err(refuse_id(&self.task_id));
        }
        tasks_dir(dir)?;
        self.last_updated_at = now();
        let bytes = serde_json::to_vec(self)
            .map_err(|e| Error::unexpected(format!("serialising task {}: {e}", self.task_id)))?;
        write_atomic(&record_path(dir, &self.task_id), &bytes)
    }

    /// Whether a live process still runs this task: its lock is held.
    /// `Some(lock)` when it is free, taken for the caller (so that what it
    /// writes about the dead run is not raced by a new one).
    pub(crate) fn orphaned(&self, dir: &Path) -> Option<TaskLock> {
        Self::lock(dir, &self.task_id).ok()
    }
}

/// Deletes the journals (and locks) of tasks last written more than
/// [`KEPT_DAYS`] ago that no process runs; best effort.
pub(crate) fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join(TASKS_DIR)) else {
        return;
    };
    let cutoff = Utc::now() - chrono::Duration::days(KEPT_DAYS);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        let Ok(Some(record)) = TaskRecord::load(dir, id) else {
            continue;
        };
        let old = DateTime::parse_from_rfc3339(&record.last_updated_at)
            .map(|t| t.with_timezone(&Utc) < cutoff)
            .unwrap_or(false);
        if !old {
            continue;
        }
        if let Some(_free) = record.orphaned(dir) {
            let _ = std::fs::remove_file(record_path(dir, id));
            let _ = std::fs::remove_file(lock_path(dir, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> TaskRecord {
        TaskRecord {
            version: VERSION,
            task_id: id.to_owned(),
            label: "rollout".into(),
            state: TaskState::Working,
            status_message: Some("rollout: canary: web-1".into()),
            created_at: now(),
            last_updated_at: now(),
            ttl_ms: Some(1000),
            poll_interval_ms: Some(1000),
            pid: std::process::id(),
            rollout_id: Some("r-20261207-061530-1a2b".into()),
            result: None,
        }
    }

    #[test]
    fn a_record_round_trips_privately_and_hostile_ids_touch_no_file() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let id = "0f8e2c1a-1111-4222-8333-444455556666";
        let mut r = record(id);
        r.save(tmp.path()).unwrap();
        let back = TaskRecord::load(tmp.path(), id).unwrap().unwrap();
        assert_eq!(back.rollout_id, r.rollout_id);
        assert_eq!(back.state, TaskState::Working);
        let mode = std::fs::metadata(record_path(tmp.path(), id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        for bad in ["", "../servers", "a/b", "x.json", &"a".repeat(65)] {
            assert!(
                TaskRecord::load(tmp.path(), bad).unwrap().is_none(),
                "{bad}"
            );
            assert!(TaskRecord::lock(tmp.path(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_task_whose_lock_is_held_is_not_orphaned_and_is_once_released() {
        let tmp = tempfile::tempdir().unwrap();
        let r = record("abc-1");
        let held = TaskRecord::lock(tmp.path(), "abc-1").unwrap();
        assert!(r.orphaned(tmp.path()).is_none());
        drop(held);
        assert!(r.orphaned(tmp.path()).is_some());
    }

    #[test]
    fn only_old_unheld_journals_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut fresh = record("aaa-1");
        fresh.save(tmp.path()).unwrap();
        let mut old = record("bbb-2");
        old.save(tmp.path()).unwrap();
        // Rewrite its stamp by hand: `save` stamps now.
        let mut text: Value =
            serde_json::from_slice(&std::fs::read(record_path(tmp.path(), "bbb-2")).unwrap())
                .unwrap();
        text["lastUpdatedAt"] = "2020-01-01T00:00:00.000Z".into();
        std::fs::write(record_path(tmp.path(), "bbb-2"), text.to_string()).unwrap();
        sweep(tmp.path());
        assert!(TaskRecord::load(tmp.path(), "aaa-1").unwrap().is_some());
        assert!(TaskRecord::load(tmp.path(), "bbb-2").unwrap().is_none());
    }
}
