//! Fleet rollouts: a disruptive operation (`maintain`, `update`,
//! `restart`) run over the fleet as a canary, then batches, under a
//! failure budget, with every server's state journaled in the kastell
//! directory ([`crate::state::rollouts`]) so that a crashed or cancelled
//! rollout can be shown, resumed without repeating a finished server, or
//! aborted.
//!
//! [`plan`] decides the stages, [`drive`] runs them; the surface supplies
//! the work on one server through [`Driven`] (the CLI runs the operation
//! as `--all` always did, one audited call per server). Over MCP the
//! rollout is the operation [`RolloutOp`] (`server_maintain`, action
//! `rollout`), long work that a client speaking tasks gets as one task.

mod drive;
mod op;
mod plan;
#[cfg(test)]
mod tests;

use chrono::Utc;
use kastell_core::{Result, TransportExt as _};
use serde_json::Value;

pub use drive::{Driven, Probe, ServerRun, drive};
pub use op::{RolloutOp, RolloutOpArgs, RolloutReport, RolloutServer, RolloutWork, rollout};
pub use plan::{Canary, Shape, Size, stage_name};

use super::context::Context;
use crate::policy::{Category, OpId, Surface};
use crate::state::rollouts::{self, Journal, RolloutState, ServerEntry, ServerState, Settings};
use crate::state::store::ServerRecord;

/// A new journal for a rollout of `op` (with its own arguments `args`)
/// over `servers` shaped by `shape`, started from `surface`. Refuses what
/// [`Shape::stages`] refuses.
pub fn new_journal(
    op: OpId,
    args: Value,
    surface: Surface,
    servers: &[ServerRecord],
    shape: &Shape,
) -> Result<Journal> {
    let stages = shape.stages(servers)?;
    let entries = stages
        .iter()
        .enumerate()
        .flat_map(|(stage, servers)| {
            servers.iter().map(move |s| ServerEntry {
                name: s.name.clone(),
                stage,
                status: ServerState::Pending,
                started_at: None,
                finished_at: None,
                boot_id_before: None,
                detail: None,
            })
        })
        .collect();
    let now = rollouts::now();
    Ok(Journal {
        version: rollouts::VERSION,
        id: rollouts::new_id(),
        operation: op.as_str().to_owned(),
        args,
        surface: surface.as_str().to_owned(),
        created_at: now.clone(),
        updated_at: now,
        state: RolloutState::Running,
        settings: Settings {
            canary: shape.canary.to_string(),
            batch: shape.batch.to_string(),
            max_failures: shape.max_failures.to_string(),
            pause_secs: shape.pause_secs,
            concurrency: shape.concurrency,
        },
        budget: shape.budget(servers.len()),
        stages: stages.len(),
        servers: entries,
        stop_reason: None,
    })
}

/// Looks at `server` without changing it: its boot id over SSH and its
/// platform's health (one check, no waiting). What cannot be asked is
/// `None`, with why in the detail.
pub async fn probe(ctx: &Context, server: &ServerRecord) -> Probe {
    let transport = ctx.transport_for(server);
    let boot_id = match transport.boot_id().await {
        Ok(id) => Some(id),
        Err(e) => {
            return Probe {
                boot_id: None,
                healthy: None,
                detail: format!("SSH did not answer: {e}"),
            };
        }
    };
    let (healthy, detail) = match ctx.platform_for(server, transport) {
        Ok(platform) => match platform.health().await {
            Ok(health) => (Some(health.healthy), health.detail),
            Err(e) => (None, format!("the health check failed: {e}")),
        },
        Err(e) => (None, format!("the platform could not be opened: {e}")),
    };
    Probe {
        boot_id,
        healthy,
        detail,
    }
}

/// Why work of `category` may not start on `server` now from `surface`:
/// the maintenance windows that apply to it (safety levels) are not all
/// open. `None` when they are, when none apply, or when the safety file
/// cannot be read (then the operation's own policy check refuses, and the
/// server counts as failed).
pub fn held_back(
    ctx: &Context,
    surface: Surface,
    category: Category,
    server: &ServerRecord,
) -> Option<String> {
    if category < Category::Disruptive {
        return None;
    }
    let config = ctx.policy.safety().ok()?;
    if !config.configured() {
        return None;
    }
    let now = Utc::now();
    let closed: Vec<String> = config
        .allowance(surface, Some(server))
        .windows
        .iter()
        .filter(|e| !e.open(now))
        .map(|e| e.describe())
        .collect();
    (!closed.is_empty()).then(|| {
        format!(
            "outside its maintenance window (closed now: {}), so it was skipped",
            closed.join("; ")
        )
    })
}
