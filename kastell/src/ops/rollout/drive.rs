//! Driving a rollout from its journal: stage after stage (the canary one
//! server at a time, then each batch with bounded concurrency and never
//! two operations on one host), every change journaled before and after
//! each server, stopping at the first canary failure or when failures
//! reach the budget. A stop, a cancel and an abort all take effect between
//! servers: a server that started always finishes.
//!
//! On resume, a server the journal shows in flight is re-checked first:
//! healthy with a new boot id means its work finished before the crash
//! (done, not repeated); healthy with the same boot id means it never got
//! to its reboot (run again); anything else is a failure left for a person
//! to look at, never touched again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kastell_core::{Error, Result};
use tokio::sync::Semaphore;

use super::plan::stage_name;
use crate::state::rollouts::{self, Journal, RolloutLock, RolloutState, ServerState};
use crate::state::store::ServerRecord;

/// How one server's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRun {
    /// Whether it succeeded.
    pub ok: bool,
    /// One line: the message, or the error.
    pub detail: String,
}

/// What a look at a server found, without changing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// Its boot id, when SSH answered.
    pub boot_id: Option<String>,
    /// Whether its platform said it is healthy (`None`: could not ask).
    pub healthy: Option<bool>,
    /// What was found, in words.
    pub detail: String,
}

/// What a rollout does to servers and tells its surface: the surface's
/// side of [`drive`].
#[async_trait::async_trait]
pub trait Driven: Send + Sync {
    /// Runs the rollout's operation on `server`.
    async fn run(&self, server: &ServerRecord) -> ServerRun;
    /// Looks at `server` (boot id, health) without changing it.
    async fn probe(&self, server: &ServerRecord) -> Probe;
    /// Why `server` may not be worked on now (its maintenance window is
    /// closed), if so.
    fn held_back(&self, server: &ServerRecord) -> Option<String>;
    /// Says a stage started (`canary: web-1`).
    fn stage(&self, name: &str, servers: &[String]);
    /// Says a server's state changed.
    fn server(&self, name: &str, state: ServerState, detail: &str);
    /// Whether the rollout was asked to stop at its next safe point.
    fn cancelled(&self) -> bool;
}

/// The journal shared by the servers of a stage, written after each
/// change.
struct Shared {
    dir: PathBuf,
    journal: Mutex<Journal>,
    stop: Mutex<Option<String>>,
}

impl Shared {
    /// Changes the journal with `change` and writes it; a write that fails
    /// is logged (the rollout goes on, its next write tries again).
    fn update(&self, change: impl FnOnce(&mut Journal)) {
        let Ok(mut journal) = self.journal.lock() else {
            return;
        };
        change(&mut journal);
        if let Err(e) = journal.save(&self.dir) {
            tracing::error!("writing the rollout journal: {e}");
        }
    }

    fn status(&self, name: &str) -> Option<(ServerState, Option<String>)> {
        let journal = self.journal.lock().ok()?;
        journal
            .servers
            .iter()
            .find(|s| s.name == name)
            .map(|s| (s.status, s.boot_id_before.clone()))
    }

    fn stopped(&self) -> bool {
        self.stop.lock().map(|s| s.is_some()).unwrap_or(true)
    }

    fn stop(&self, why: String) {
        if let Ok(mut stop) = self.stop.lock() {
            stop.get_or_insert(why);
        }
    }

    /// Records how `name` ended and stops the rollout when a canary failed
    /// or the failures reached the budget.
    fn finish(&self, name: &str, state: ServerState, detail: String, canary: bool) {
        let mut failures = 0;
        let mut budget = usize::MAX;
        self.update(|j| {
            if let Some(entry) = j.entry_mut(name) {
                entry.status = state;
                entry.finished_at = Some(rollouts::now());
                entry.detail = Some(detail);
            }
            failures = j.count(ServerState::Failed);
            budget = j.budget;
        });
        if state != ServerState::Failed {
            return;
        }
        if canary {
            self.stop(format!(
                "the canary {name} failed, so no other server was touched"
            ));
        } else if failures >= budget {
            self.stop(format!(
                "{failures} failure(s) reached the failure budget of {budget}"
            ));
        }
    }
}

/// Drives the rollout `journal` (in kastell directory `dir`, whose lock
/// `lock` this process holds) over `fleet` (the servers by name) to its
/// end, and returns the final journal. Refuses only when the journal
/// cannot be written at the start.
pub async fn drive(
    dir: &Path,
    mut journal: Journal,
    lock: RolloutLock,
    fleet: &[ServerRecord],
    driven: Arc<dyn Driven>,
) -> Result<Journal> {
    journal.state = RolloutState::Running;
    journal.stop_reason = None;
    journal.save(dir)?;
    let stages = journal.stages;
    let pause = Duration::from_secs(journal.settings.pause_secs);
    let concurrency = journal.settings.concurrency.max(1);
    let by_name: HashMap<&str, &ServerRecord> =
        fleet.iter().map(|s| (s.name.as_str(), s)).collect();
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        journal: Mutex::new(journal),
        stop: Mutex::new(None),
    });
    let asked_to_stop = |shared: &Shared| {
        driven.cancelled() || rollouts::abort_requested(&shared.dir, &id_of(shared))
    };
    let mut ran_before = false;
    for stage in 0..stages {
        if shared.stopped() || asked_to_stop(&shared) {
            break;
        }
        let open: Vec<String> = {
            let journal = shared
                .journal
                .lock()
                .map_err(|_| Error::unexpected("the rollout journal lock was poisoned"))?;
            journal
                .servers
                .iter()
                .filter(|s| s.stage == stage && s.status.open())
                .map(|s| s.name.clone())
                .collect()
        };
        if !open.is_empty() {
            if ran_before && !pause.is_zero() {
                driven.stage(&format!("pause of {}s", pause.as_secs()), &[]);
                if !wait(pause, || asked_to_stop(&shared)).await {
                    break;
                }
            }
            driven.stage(&stage_name(stage, stages), &open);
            let limit = if stage == 0 { 1 } else { concurrency };
            run_stage(&shared, &by_name, &open, stage == 0, limit, &driven).await;
            ran_before = true;
        }
        if stage == 0 && !shared.stopped() {
            let canary_done = shared.journal.lock().is_ok_and(|j| {
                j.servers
                    .iter()
                    .any(|s| s.stage == 0 && s.status == ServerState::Done)
            });
            let canary_open = shared
                .journal
                .lock()
                .is_ok_and(|j| j.servers.iter().any(|s| s.stage == 0 && s.status.open()));
            if !canary_done && !canary_open {
                shared.stop(
                    "no canary server ran (each was skipped), so no other server was touched"
                        .to_owned(),
                );
            }
        }
    }
    let stop = shared.stop.lock().ok().and_then(|s| s.clone());
    let id = id_of(&shared);
    let aborted = rollouts::abort_requested(dir, &id);
    let cancelled = driven.cancelled();
    shared.update(|j| match stop {
        Some(reason) => j.close(RolloutState::Stopped, Some(reason)),
        None if aborted => j.close(
            RolloutState::Aborted,
            Some("aborted by `kastell rollout abort`".to_owned()),
        ),
        None if cancelled && j.servers.iter().any(|s| s.status.open()) => {
            j.state = RolloutState::Cancelled;
            j.stop_reason = Some(format!(
                "stopped at a safe point as asked; `kastell rollout resume {}` goes on",
                j.id
            ));
        }
        None => j.close(RolloutState::Finished, None),
    });
    if aborted {
        rollouts::clear_abort(dir, &id);
    }
    drop(lock);
    let journal = shared
        .journal
        .lock()
        .map_err(|_| Error::unexpected("the rollout journal lock was poisoned"))?
        .clone();
    Ok(journal)
}

fn id_of(shared: &Shared) -> String {
    shared
        .journal
        .lock()
        .map(|j| j.id.clone())
        .unwrap_or_default()
}

/// Sleeps `pause`, looking at `stop` every 100 ms; false when asked to
/// stop.
async fn wait(pause: Duration, stop: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + pause;
    while tokio::time::Instant::now() < deadline {
        if stop() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100).min(pause)).await;
    }
    !stop()
}

/// Runs the open servers `names` of one stage in plan order, at most
/// `limit` at once and one at a time per host (IP); none starts once the
/// rollout stopped.
async fn run_stage(
    shared: &Arc<Shared>,
    by_name: &HashMap<&str, &ServerRecord>,
    names: &[String],
    canary: bool,
    limit: usize,
    driven: &Arc<dyn Driven>,
) {
    let permits = Arc::new(Semaphore::new(limit));
    let mut hosts: HashMap<String, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    for name in names {
        let Some(server) = by_name.get(name.as_str()).map(|s| (*s).clone()) else {
            let detail = "no longer in the fleet, so it was not touched".to_owned();
            driven.server(name, ServerState::Skipped, &detail);
            shared.finish(name, ServerState::Skipped, detail, false);
            continue;
        };
        // Servers start in plan order: the next waits for a free place.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if shared.stopped() {
            break;
        }
        let host = hosts.entry(server.ip.clone()).or_default().clone();
        let (shared, driven) = (shared.clone(), driven.clone());
        set.spawn(async move {
            let _permit = permit;
            let _host = host.lock().await;
            one(&shared, &server, canary, driven.as_ref()).await;
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            tracing::error!("a rollout task ended abnormally: {e}");
        }
    }
}

/// One server of a stage, unless the rollout stopped before its turn.
async fn one(shared: &Shared, server: &ServerRecord, canary: bool, driven: &dyn Driven) {
    let name = server.name.as_str();
    if shared.stopped()
        || driven.cancelled()
        || rollouts::abort_requested(&shared.dir, &id_of(shared))
    {
        return;
    }
    let Some((status, boot_before)) = shared.status(name) else {
        return;
    };
    if status == ServerState::InFlight {
        // Interrupted while it ran: look before doing anything to it.
        let probe = driven.probe(server).await;
        let rebooted =
            matches!((&probe.boot_id, &boot_before), (Some(now), Some(before)) if now != before);
        match probe.healthy {
            Some(true) if rebooted => {
                let detail = format!(
                    "finished before the rollout was interrupted (new boot id, healthy): not repeated; {}",
                    probe.detail
                );
                driven.server(name, ServerState::Done, &detail);
                shared.finish(name, ServerState::Done, detail, canary);
                return;
            }
            Some(true) => {
                driven.server(
                    name,
                    ServerState::InFlight,
                    "was in flight when the rollout was interrupted and did not reboot since: run again",
                );
            }
            _ => {
                let detail = format!(
                    "was in flight when the rollout was interrupted and is not healthy now, so it \
                     was not touched again: {}",
                    probe.detail
                );
                driven.server(name, ServerState::Failed, &detail);
                shared.finish(name, ServerState::Failed, detail, canary);
                return;
            }
        }
    }
    if let Some(why) = driven.held_back(server) {
        driven.server(name, ServerState::Skipped, &why);
        shared.finish(name, ServerState::Skipped, why, false);
        return;
    }
    let before = driven.probe(server).await.boot_id;
    shared.update(|j| {
        if let Some(entry) = j.entry_mut(name) {
            entry.status = ServerState::InFlight;
            entry.started_at = Some(rollouts::now());
            entry.finished_at = None;
            entry.boot_id_before = before.or(entry.boot_id_before.take());
            entry.detail = None;
        }
    });
    driven.server(name, ServerState::InFlight, "started");
    let ran = driven.run(server).await;
    let state = if ran.ok {
        ServerState::Done
    } else {
        ServerState::Failed
    };
    driven.server(name, state, &ran.detail);
    shared.finish(name, state, ran.detail, canary);
}
