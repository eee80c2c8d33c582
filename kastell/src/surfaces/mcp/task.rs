//! Long work as MCP tasks (the `io.modelcontextprotocol/tasks` extension)
//! for clients that declare it.
//!
//! The call returns a task at once; `tasks/get` shows `working` with the
//! steps so far in the status message (`maintain: 2/5 done (Status Check:
//! success, Update: success); running Health Check`), then the tool's
//! result exactly as a direct call would have returned it. `tasks/cancel`
//! asks the operation to stop at its next safe point, the same points a
//! cancelled request stops at: before the update, before the reboot,
//! before a restore stops the platform, and between two chunks of a backup
//! (whose staging directory is then removed, so nothing half-written is
//! listed). A step that started always finishes, and a restore always
//! starts the platform again. The task then ends `cancelled`, its status
//! message naming the steps that ran.
//!
//! Tasks live in the memory of this kastell-mcp process, shared by all its
//! sessions, and in a journal in the kastell directory
//! ([`super::journal`]), from which a later kastell-mcp answers `tasks/get`
//! for them (an interrupted one as `failed`, naming the rollout to
//! resume). When kastell-mcp stops, [`Tasks::shutdown`] asks every running
//! task, and every long call answered directly (each holds an
//! [`InFlight`] guard), to stop at its next safe point and waits for them
//! to get there (see README: what happens to a task when kastell-mcp
//! stops).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolResult, Task, TaskStatus};
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};

use super::audit::Audit;
use super::call::Call;
use super::journal::TaskJournal;
use super::logging::{ClientLog, Severity};
use crate::ops::{self, Context, Step, StepOutcome, human_bytes};

/// How long a task (running or finished) is kept: a day. rmcp fails a task
/// still running when this runs out; kastell's operations end long before.
const TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// How often a client is asked to poll.
const POLL_MS: u64 = 1000;

/// The long work of one kastell-mcp process: its MCP tasks, and the long
/// calls answered directly that are still running. Cheap to clone; clones
/// share everything.
#[derive(Clone, Default)]
pub struct Tasks {
    manager: TaskManager,
    running: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
}

/// A long call answered directly, counted while it runs.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("running", &self.manager.running_task_count())
            .finish()
    }
}

impl Tasks {
    /// rmcp's task store, for `tasks/get`, `tasks/update` and `tasks/cancel`.
    pub(crate) fn manager(&self) -> &TaskManager {
        &self.manager
    }

    /// Counts a long call answered directly until the guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.in_flight.clone())
    }

    /// Whether kastell-mcp is stopping: long work stops at its next safe
    /// point.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Starts `call` in `ctx` as a task and returns its seed state. The
    /// task's state is journaled in the kastell directory as it runs
    /// ([`super::journal`]), so a later kastell-mcp can answer for it; a
    /// journal that cannot be written is logged and the task runs anyway.
    pub(crate) fn spawn(&self, ctx: Context, call: Call, log: ClientLog, audit: Audit) -> Task {
        let label = call.label();
        let started = format!("{label}: started");
        let options = TaskOptions::new()
            .with_ttl_ms(TTL_MS)
            .with_poll_interval_ms(POLL_MS)
            .with_status_message(started.clone());
        let running = self.running.clone();
        let stopping = self.stopping.clone();
        let task = self.manager.spawn(options, move |task| {
            let journal = open_journal(&ctx, task.task_id(), label, started);
            Box::pin(async move {
                let hook = Arc::new(TaskProgress::new(
                    task.clone(),
                    label,
                    log,
                    stopping,
                    journal,
                ));
                let result = call.run(&ctx.clone().with_progress(hook.clone())).await;
                hook.settle(&result);
                audit.finish(&ctx, &result);
                if let Ok(mut ids) = running.lock() {
                    ids.retain(|id| id != task.task_id());
                }
                if is_cancelled(&result) {
                    Err(TaskExit::Cancelled)
                } else {
                    Ok(result)
                }
            })
        });
        if let Ok(mut ids) = self.running.lock() {
            ids.push(task.task_id.clone());
        }
        task
    }

    /// Asks every running task to stop at its next safe point and waits up
    /// to `patience` for them to end; returns how many were still running
    /// then.
    pub(crate) async fn shutdown(&self, patience: Duration) -> usize {
        let ids = self
            .running
            .lock()
            .map(|ids| ids.clone())
            .unwrap_or_default();
        for id in &ids {
            let _ = self.manager.cancel_task(id);
        }
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let left = self.manager.running_task_count();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The journal of the task `id` that runs `label`, as working with the
/// status message `started`; `None` (logged) when it cannot be written.
fn open_journal(ctx: &Context, id: &str, label: &str, started: String) -> Option<TaskJournal> {
    let now = crate::state::tasks::now();
    let mut seed = Task::new(id.to_owned(), TaskStatus::Working, now.clone(), now);
    seed.ttl_ms = Some(TTL_MS);
    seed.poll_interval_ms = Some(POLL_MS);
    seed.status_message = Some(started);
    match TaskJournal::open(ctx.store.dir(), &seed, label) {
        Ok(journal) => Some(journal),
        Err(e) => {
            tracing::warn!(
                "task {id}: not journaled, so no later kastell-mcp can answer for it: {e}"
            );
            None
        }
    }
}

/// Whether `result` is an operation that stopped because it was asked to.
fn is_cancelled(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
        && result
            .structured_content
            .as_ref()
            .and_then(|c| c.get("kind"))
            .and_then(|k| k.as_str())
            == Some(kastell_core::ErrorKind::Cancelled.as_str())
}

/// What a task has done so far, for its status message.
#[derive(Debug, Default)]
struct Sofar {
    done: Vec<String>,
    total: usize,
    running: Option<String>,
    moved: Option<String>,
}

/// The [`ops::Progress`] hook of a task: the steps so far become the
/// task's status message, `tasks/cancel` is the cancellation.
struct TaskProgress {
    task: TaskContext,
    label: &'static str,
    log: ClientLog,
    sofar: Mutex<Sofar>,
    stopping: Arc<AtomicBool>,
    journal: Option<TaskJournal>,
}

impl TaskProgress {
    fn new(
        task: TaskContext,
        label: &'static str,
        log: ClientLog,
        stopping: Arc<AtomicBool>,
        journal: Option<TaskJournal>,
    ) -> Self {
        Self {
            task,
            label,
            log,
            sofar: Mutex::new(Sofar::default()),
            stopping,
            journal,
        }
    }

    /// Changes what was done so far with `change` and shows it (and
    /// journals it: at once, unless only a byte count moved).
    fn update(&self, change: impl FnOnce(&mut Sofar)) {
        self.update_as(false, change);
    }

    fn update_as(&self, bytes: bool, change: impl FnOnce(&mut Sofar)) {
        let Ok(mut sofar) = self.sofar.lock() else {
            return;
        };
        change(&mut sofar);
        let mut parts = Vec::new();
        if sofar.total > 0 {
            let mut steps = format!("{}/{} steps done", sofar.done.len(), sofar.total);
            if !sofar.done.is_empty() {
                steps.push_str(&format!(" ({})", sofar.done.join(", ")));
            }
            parts.push(steps);
        }
        if let Some(now) = &sofar.running {
            parts.push(format!("now: {now}"));
        }
        if let Some(moved) = &sofar.moved {
            parts.push(moved.clone());
        }
        let message = format!("{}: {}", self.label, parts.join("; "));
        if let Some(journal) = &self.journal {
            journal.status(&message, bytes);
        }
        self.task.set_status_message(message);
    }

    /// Sends `text` to the client's log without blocking the operation.
    fn log(&self, severity: Severity, text: String) {
        if self.log.is_on() {
            let log = self.log.clone();
            tokio::spawn(async move { log.send(severity, &text).await });
        }
    }

    /// The final status message, once the operation returned `result`.
    fn settle(&self, result: &CallToolResult) {
        let outcome = if result.is_error == Some(true) {
            "failed"
        } else {
            "finished"
        };
        let stopped = is_cancelled(result);
        self.update(|sofar| {
            sofar.running = None;
            sofar.moved = None;
            sofar.running = Some(if stopped {
                "stopped at a safe point, as asked".into()
            } else {
                outcome.into()
            });
        });
        self.log(Severity::Info, format!("{}: {outcome}", self.label));
        if let Some(journal) = &self.journal {
            journal.finish(result, stopped);
        }
    }
}

impl ops::Progress for TaskProgress {
    fn step_started(&self, index: usize, total: usize, name: &str) {
        self.update(|sofar| {
            sofar.total = total;
            sofar.running = Some(name.to_owned());
            sofar.moved = None;
        });
        let label = self.label;
        self.log(Severity::Info, format!("{label}: {name} ({index}/{total})"));
    }

    fn step_finished(&self, index: usize, total: usize, step: &Step) {
        let outcome = match step.status {
            StepOutcome::Success => "success",
            StepOutcome::Failure => "failure",
            StepOutcome::Skipped => "skipped",
        };
        self.update(|sofar| {
            sofar.total = total;
            sofar.done.push(format!("{}: {outcome}", step.name));
            sofar.running = None;
            sofar.moved = None;
        });
        let severity = if matches!(step.status, StepOutcome::Failure) {
            Severity::Warning
        } else {
            Severity::Info
        };
        let label = self.label;
        let name = &step.name;
        self.log(
            severity,
            format!("{label}: {name} ({outcome}) ({index}/{total})"),
        );
    }

    fn message(&self, text: &str) {
        self.update(|sofar| sofar.running = Some(text.to_owned()));
        self.log(Severity::Info, format!("{}: {text}", self.label));
    }

    fn cancelled(&self) -> bool {
        self.task.is_cancel_requested() || self.stopping.load(Ordering::SeqCst)
    }

    fn bytes(&self, what: &str, done: u64, total: Option<u64>) {
        let amount = match total {
            Some(total) => format!("{} of {}", human_bytes(done), human_bytes(total)),
            None => human_bytes(done),
        };
        self.update_as(true, |sofar| {
            sofar.moved = Some(format!("{what}: {amount}"))
        });
    }

    fn rollout(&self, id: &str) {
        if let Some(journal) = &self.journal {
            journal.rollout(id);
        }
    }
}
