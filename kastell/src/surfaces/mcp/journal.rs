//! Tasks that outlive their process: every task's state is journaled in
//! the kastell directory ([`crate::state::tasks`]) as it runs, and a later
//! kastell-mcp answers `tasks/get` for a task it does not hold in memory
//! from that journal: its result once it ended, its last status while
//! another live kastell-mcp still runs it, and, when the process that ran
//! it died mid-run, `failed` with why and (for a rollout) the rollout id to
//! resume; never `working` forever.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, DetailedTask, JsonObject, Task, TaskPayload, TaskStatus};
use serde_json::{Value, json};

use crate::state::tasks::{self, TaskLock, TaskRecord, TaskState};

/// The journal of one task this process runs; holds the task's lock until
/// dropped (when the task ended, or with the process).
#[derive(Debug)]
pub(crate) struct TaskJournal {
    dir: PathBuf,
    record: Mutex<TaskRecord>,
    last_write: Mutex<std::time::Instant>,
    _lock: TaskLock,
}

/// How often a byte count alone rewrites the journal; step changes and
/// messages always do.
const BYTES_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

impl TaskJournal {
    /// Starts the journal of task `task` (`label`: what it runs) in the
    /// kastell directory `dir`: takes its lock, writes it as working and
    /// sweeps journals past [`tasks::KEPT_DAYS`].
    pub(crate) fn open(dir: &Path, task: &Task, label: &str) -> kastell_core::Result<Self> {
        let lock = TaskRecord::lock(dir, &task.task_id)?;
        let mut record = TaskRecord {
            version: 1,
            task_id: task.task_id.clone(),
            label: label.to_owned(),
            state: TaskState::Working,
            status_message: task.status_message.clone(),
            created_at: task.created_at.clone(),
            last_updated_at: tasks::now(),
            ttl_ms: task.ttl_ms,
            poll_interval_ms: task.poll_interval_ms,
            pid: std::process::id(),
            rollout_id: None,
            result: None,
        };
        record.save(dir)?;
        tasks::sweep(dir);
        Ok(Self {
            dir: dir.to_path_buf(),
            record: Mutex::new(record),
            last_write: Mutex::new(std::time::Instant::now()),
            _lock: lock,
        })
    }

    /// Changes the record with `change` and writes it: always when
    /// `always`, else (a byte count) at most every [`BYTES_EVERY`]. A
    /// failed write is logged: the task goes on.
    fn write(&self, always: bool, change: impl FnOnce(&mut TaskRecord)) {
        let Ok(mut record) = self.record.lock() else {
            return;
        };
        change(&mut record);
        let Ok(mut last) = self.last_write.lock() else {
            return;
        };
        if !always && last.elapsed() < BYTES_EVERY {
            return;
        }
        *last = std::time::Instant::now();
        if let Err(e) = record.save(&self.dir) {
            tracing::warn!("task {}: journal not written: {e}", record.task_id);
        }
    }

    /// The task's status message is now `message` (`bytes`: only a byte
    /// count changed).
    pub(crate) fn status(&self, message: &str, bytes: bool) {
        self.write(!bytes, |r| r.status_message = Some(message.to_owned()));
    }

    /// The task drives the journaled rollout `id`.
    pub(crate) fn rollout(&self, id: &str) {
        self.write(true, |r| r.rollout_id = Some(id.to_owned()));
    }

    /// The task ended with `result` (`cancelled`: stopped as asked).
    pub(crate) fn finish(&self, result: &CallToolResult, cancelled: bool) {
        let value = serde_json::to_value(result).ok();
        self.write(true, |r| {
            if cancelled {
                r.state = TaskState::Cancelled;
            } else {
                r.state = TaskState::Completed;
                r.result = value;
            }
        });
    }
}

/// Task `id` as the journal in `dir` tells it, for a task this process
/// does not hold: `None` when there is no journal of it (or it cannot be
/// read). A task journaled as working whose process is gone is recorded
/// as interrupted (once, under its lock) and answered `failed`.
pub(crate) fn recall(dir: &Path, id: &str) -> Option<DetailedTask> {
    let mut record = match TaskRecord::load(dir, id) {
        Ok(found) => found?,
        Err(e) => {
            tracing::warn!("task {id}: journal unreadable: {e}");
            return None;
        }
    };
    if record.state == TaskState::Working {
        match record.orphaned(dir) {
            None => return Some(detailed(&record, TaskPayload::Working)),
            Some(_lock) => {
                // Read again under the lock: the run may have ended in
                // between.
                if let Ok(Some(now)) = TaskRecord::load(dir, id) {
                    record = now;
                }
                if record.state == TaskState::Working {
                    record.state = TaskState::Interrupted;
                    if let Err(e) = record.save(dir) {
                        tracing::warn!("task {id}: interruption not written: {e}");
                    }
                }
            }
        }
    }
    let payload = match record.state {
        TaskState::Working => TaskPayload::Working,
        TaskState::Cancelled => TaskPayload::Cancelled,
        TaskState::Completed => TaskPayload::Completed {
            result: match &record.result {
                Some(Value::Object(map)) => map.clone(),
                _ => JsonObject::new(),
            },
        },
        TaskState::Interrupted => TaskPayload::Failed {
            error: interrupted(&record),
        },
    };
    Some(detailed(&record, payload))
}

/// Whether `tasks/cancel` of a recalled task is answered: a task that
/// ended (or was interrupted) is acknowledged as rmcp acknowledges a
/// finished one; one still run by another process is refused, naming what
/// stops it there.
pub(crate) fn cancel_recalled(task: &DetailedTask) -> Result<(), ErrorData> {
    if task.status() != TaskStatus::Working {
        return Ok(());
    }
    Err(ErrorData::invalid_params(
        "this task runs in another kastell-mcp process: cancel it through the session that \
         started it, or stop a rollout with `kastell rollout abort ID`"
            .to_owned(),
        None,
    ))
}

fn detailed(record: &TaskRecord, payload: TaskPayload) -> DetailedTask {
    let mut task = Task::new(
        record.task_id.clone(),
        payload.status(),
        record.created_at.clone(),
        record.last_updated_at.clone(),
    );
    task.ttl_ms = record.ttl_ms;
    task.poll_interval_ms = record.poll_interval_ms;
    task.status_message = Some(match (&payload, &record.status_message) {
        (TaskPayload::Working, Some(m)) => {
            format!(
                "{m} (run by kastell-mcp pid {}, last written {})",
                record.pid, record.last_updated_at
            )
        }
        (TaskPayload::Failed { .. }, last) => format!(
            "{}: interrupted: kastell-mcp (pid {}) stopped while it ran; last known: {}",
            record.label,
            record.pid,
            last.as_deref().unwrap_or("nothing reported yet")
        ),
        (_, Some(m)) => m.clone(),
        (_, None) => record.label.clone(),
    });
    DetailedTask::new(task, payload)
}

/// The error of an interrupted task: what happened, what was last known
/// and how to go on (a rollout's id to resume).
fn interrupted(record: &TaskRecord) -> JsonObject {
    let next = match &record.rollout_id {
        Some(id) => format!(
            "Rollout {id} is journaled: call server_maintain {{action: 'rollout', rolloutId: '{id}'}} \
             to resume it (finished servers are not repeated; the one in flight is re-checked first)"
        ),
        None => "What it did is unknown past its last status: check the server (server_info \
                 status, server_backup list) before running it again"
            .to_owned(),
    };
    let message = format!(
        "{} was interrupted: the kastell-mcp process that ran it (pid {}) stopped before it \
         ended. {next}",
        record.label, record.pid
    );
    let data = json!({
        "interrupted": true,
        "pid": record.pid,
        "lastStatus": record.status_message,
        "rolloutId": record.rollout_id,
    });
    match serde_json::to_value(ErrorData::internal_error(message, Some(data))) {
        Ok(Value::Object(map)) => map,
        _ => JsonObject::new(),
    }
}
