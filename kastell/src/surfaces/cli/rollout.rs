//! Fleet rollouts on the command line: `maintain --all`, `update --all`
//! and `restart --all` run as a rollout ([`crate::ops::rollout`]): the
//! canary, then batches, under a failure budget, each server's state
//! journaled; and `kastell rollout status|resume|abort` for a rollout
//! that a crash, Ctrl-C or a budget stopped.
//!
//! Ctrl-C stops a rollout between servers (the servers in flight finish)
//! and leaves it resumable; a second Ctrl-C ends the process at once, as
//! a crash would, and `rollout resume` re-checks what was in flight.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::{Args, Subcommand};
use kastell_core::{Error, ErrorKind, Result};
use serde_json::{Value, json};

use super::Context;
use super::confirm::{Confirmation, confirm};
use super::fleet::{fleet_entry, ops_context, run_one};
use super::op::Op;
use super::progress::Progress;
use super::report::{self, Outcome};
use crate::ops::rollout::{self, Canary, Driven, Probe, ServerRun, Shape, Size, stage_name};
use crate::ops::{self, catalog};
use crate::policy::Surface;
use crate::state::rollouts::{self, Journal, RolloutLock, RolloutState, ServerState};
use crate::state::store::ServerRecord;

/// How a fleet run of a disruptive operation rolls out (`maintain`,
/// `update` and `restart` with `--all`).
#[derive(Debug, Clone, Args)]
pub struct RolloutArgs {
    /// With --all: how many servers go first, one at a time, before any
    /// other (a canary failure touches no other server).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "canary_tag")]
    pub canary: u16,
    /// With --all: the servers with this tag are the canary instead.
    #[arg(long, value_name = "TAG")]
    pub canary_tag: Option<String>,
    /// With --all: after the canary, how many servers per batch: a count
    /// (5) or a share of the rest (25%).
    #[arg(long, default_value = "25%", value_parser = Size::parse, value_name = "N|PCT%")]
    pub batch: Size,
    /// With --all: the failure budget: this many failures (a count, or a
    /// share of the fleet like 10%) stop the rollout, leaving the rest
    /// untouched.
    #[arg(long, default_value = "1", value_parser = Size::parse, value_name = "N|PCT%")]
    pub max_failures: Size,
    /// With --all: seconds to wait between two batches.
    #[arg(long, default_value_t = 0, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub pause: u64,
}

impl RolloutArgs {
    /// The rollout's shape, with `concurrency` servers of a batch at once.
    pub(crate) fn shape(&self, concurrency: usize) -> Shape {
        Shape {
            canary: match &self.canary_tag {
                Some(tag) => Canary::Tag(tag.clone()),
                None => Canary::Count(usize::from(self.canary)),
            },
            batch: self.batch,
            max_failures: self.max_failures,
            pause_secs: self.pause,
            concurrency,
        }
    }
}

/// `kastell rollout`: the rollouts journaled in the kastell directory.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show one rollout (each server's state) or, without an id, every
    /// rollout, newest first.
    Status {
        /// The rollout id.
        id: Option<String>,
    },
    /// Go on with a rollout that was interrupted or cancelled: servers
    /// that finished are not run again; one that was in flight is
    /// re-checked (boot id, health) before anything is done to it.
    Resume {
        /// The rollout id.
        id: String,
        /// Do not ask for confirmation (required when not in a terminal).
        #[arg(long)]
        force: bool,
    },
    /// Stop a rollout: every server not yet run is marked untouched. A
    /// rollout being driven stops between servers.
    Abort {
        /// The rollout id.
        id: String,
    },
}

/// Runs `kastell rollout ...`.
pub(crate) async fn run(command: RolloutCommand, ctx: &Context) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    match command {
        RolloutCommand::Status { id: Some(id) } => {
            let journal = Journal::load(&dir, &id)?;
            print_journal(ctx, &journal, &[])?;
            Ok(ExitCode::SUCCESS)
        }
        RolloutCommand::Status { id: None } => list(ctx, &Journal::list(&dir)?),
        RolloutCommand::Resume { id, force } => resume(ctx, &id, force).await,
        RolloutCommand::Abort { id } => abort(ctx, &id),
    }
}

/// Whether a journal's rollout is driven now, interrupted, or ended.
fn shown_state(dir: &std::path::Path, journal: &Journal) -> String {
    match (journal.state, RolloutLock::holder(dir, &journal.id)) {
        (RolloutState::Running, Some(holder)) => format!("running ({holder})"),
        (RolloutState::Running, None) => "interrupted (resumable)".to_owned(),
        (RolloutState::Cancelled, _) => "cancelled (resumable)".to_owned(),
        (state, _) => state.as_str().to_owned(),
    }
}

fn list(ctx: &Context, journals: &[Journal]) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    if ctx.out.is_json() {
        let all: Vec<Value> = journals.iter().map(|j| summary_json(&dir, j)).collect();
        ctx.out.json(&all)?;
        return Ok(ExitCode::SUCCESS);
    }
    if journals.is_empty() {
        ctx.out.line("No rollouts yet.")?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = journals
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.operation.clone(),
                shown_state(&dir, j),
                format!(
                    "{}/{} done, {} failed, {} skipped, {} untouched",
                    j.count(ServerState::Done),
                    j.servers.len(),
                    j.count(ServerState::Failed),
                    j.count(ServerState::Skipped),
                    j.count(ServerState::Untouched)
                ),
                j.created_at.clone(),
            ]
        })
        .collect();
    ctx.out.table(
        &["ROLLOUT", "OPERATION", "STATE", "SERVERS", "STARTED"],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn summary_json(dir: &std::path::Path, j: &Journal) -> Value {
    let mut value = serde_json::to_value(j).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("shownState".into(), Value::String(shown_state(dir, j)));
        map.insert("untouched".into(), json!(j.names(ServerState::Untouched)));
    }
    value
}

/// Runs `op` over `targets` as a rollout shaped by `rollout` (a fleet
/// run with `--all`): journal, then the canary and the batches; the
/// caller asked and planned already.
pub(crate) async fn start(
    ctx: &Context,
    octx: &ops::Context,
    op: Op,
    targets: &[ServerRecord],
    shape: &Shape,
) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let journal = rollout::new_journal(op.0.id(), op.0.args(), Surface::Cli, targets, shape)?;
    let lock = RolloutLock::try_acquire(&dir, &journal.id, &format!("{} --all", op.title()))?;
    if !ctx.out.is_json() {
        eprintln!(
            "Rollout {} of {} on {} server(s): canary {}, batches of {}, stops at {} failure(s); \
             `kastell rollout status {}` shows it.",
            journal.id,
            op.title(),
            targets.len(),
            shape.canary,
            shape.batch,
            journal.budget,
            journal.id
        );
    }
    drive_and_report(ctx, octx, op, journal, lock, targets.to_vec()).await
}

/// The stage lines a dry run prints before the per-server plans.
pub(crate) fn dry_run_stages(targets: &[ServerRecord], shape: &Shape) -> Result<Value> {
    let stages = shape.stages(targets)?;
    let count = stages.len();
    let listed: Vec<Value> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "stage": stage_name(i, count),
                "servers": s.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "canary": shape.canary.to_string(),
        "batch": shape.batch.to_string(),
        "maxFailures": shape.budget(targets.len()),
        "pauseSecs": shape.pause_secs,
        "stages": listed,
    }))
}

async fn resume(ctx: &Context, id: &str, force: bool) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let journal = Journal::load(&dir, id)?;
    if !journal.state.resumable() {
        return Err(Error::invalid_state(format!(
            "Rollout {id} is {}: there is nothing to resume",
            journal.state.as_str()
        ))
        .with_hint("Start a new rollout (the command with --all) once the cause is fixed"));
    }
    let lock = RolloutLock::try_acquire(&dir, id, "rollout resume")?;
    let Some(dyn_op) = catalog::all()
        .iter()
        .copied()
        .find(|o| o.id().as_str() == journal.operation)
    else {
        return Err(Error::invalid_state(format!(
            "Rollout {id} runs {}, which this build does not have",
            crate::state::store::display_safe(&journal.operation)
        ))
        .with_hint("Resume it with the kastell build that started it"));
    };
    let args = match &journal.args {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let invocation = dyn_op.call_from_json(args).map_err(|e| {
        Error::new(
            ErrorKind::ConfigInvalid,
            format!("Rollout {id}'s arguments no longer parse: {e}"),
        )
        .with_hint("Start a new rollout instead")
    })?;
    let op = Op(invocation);
    let octx = ops_context(ctx)?;
    let fleet = octx.store.servers()?;
    let open: Vec<&str> = journal
        .servers
        .iter()
        .filter(|s| s.status.open())
        .map(|s| s.name.as_str())
        .collect();
    let question = format!(
        "Resume rollout {id} ({}) on the {} server(s) not finished: {}?",
        op.title(),
        open.len(),
        open.join(", ")
    );
    if confirm(&question, force)? == Confirmation::Declined {
        eprintln!("Cancelled: nothing was changed.");
        return Ok(ExitCode::SUCCESS);
    }
    drive_and_report(ctx, &octx, op, journal, lock, fleet).await
}

fn abort(ctx: &Context, id: &str) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let mut journal = Journal::load(&dir, id)?;
    if !journal.state.resumable() {
        return Err(Error::invalid_state(format!(
            "Rollout {id} is {} already",
            journal.state.as_str()
        ))
        .with_hint("Only a running, interrupted or cancelled rollout can be aborted"));
    }
    match RolloutLock::try_acquire(&dir, id, "rollout abort") {
        Ok(_lock) => {
            journal.close(
                RolloutState::Aborted,
                Some("aborted by `kastell rollout abort`".to_owned()),
            );
            journal.save(&dir)?;
            print_journal(ctx, &journal, &[])?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == ErrorKind::InvalidState => {
            rollouts::request_abort(&dir, id)?;
            let holder = RolloutLock::holder(&dir, id).unwrap_or_else(|| "a process".into());
            ctx.out.line(format_args!(
                "Asked {holder} to stop rollout {id} between servers: the servers in flight \
                 finish, the rest is marked untouched. `kastell rollout status {id}` shows it."
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

/// The CLI's side of a rollout: each server is one audited call of the
/// operation, with its spinner; its outcome kept for the report.
struct CliDriven {
    octx: ops::Context,
    op: Op,
    progress: Progress,
    outcomes: Mutex<Vec<Outcome>>,
    interrupted: Arc<AtomicBool>,
    talk: bool,
}

#[async_trait::async_trait]
impl Driven for CliDriven {
    async fn run(&self, server: &ServerRecord) -> ServerRun {
        let outcome = run_one(
            &self.octx,
            &self.op,
            Some(server.name.clone()),
            &self.progress,
        )
        .await;
        let ran = ServerRun {
            ok: outcome.ok(),
            detail: match &outcome.result {
                Ok(v) => v
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("done")
                    .to_owned(),
                Err(e) => e.error.clone(),
            },
        };
        if let Ok(mut all) = self.outcomes.lock() {
            all.push(outcome);
        }
        ran
    }

    async fn probe(&self, server: &ServerRecord) -> Probe {
        rollout::probe(&self.octx, server).await
    }

    fn held_back(&self, server: &ServerRecord) -> Option<String> {
        rollout::held_back(
            &self.octx,
            Surface::Cli,
            self.op.0.spec().rule.category,
            server,
        )
    }

    fn stage(&self, name: &str, servers: &[String]) {
        if self.talk {
            if servers.is_empty() {
                eprintln!("{name}");
            } else {
                eprintln!("{name}: {}", servers.join(", "));
            }
        }
    }

    fn server(&self, name: &str, state: ServerState, detail: &str) {
        if self.talk && state != ServerState::InFlight {
            eprintln!(
                "  {name}: {} ({})",
                state.as_str(),
                super::output::printable(detail)
            );
        }
    }

    fn cancelled(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// Stops the rollout between servers on the first Ctrl-C; a second one
/// ends the process.
fn watch_interrupt(flag: Arc<AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!(
                "Stopping the rollout after the servers in flight (Ctrl-C again ends kastell now)"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

async fn drive_and_report(
    ctx: &Context,
    octx: &ops::Context,
    op: Op,
    journal: Journal,
    lock: RolloutLock,
    fleet: Vec<ServerRecord>,
) -> Result<ExitCode> {
    let dir = ctx.kastell_dir()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    watch_interrupt(interrupted.clone());
    let driven = Arc::new(CliDriven {
        octx: octx.clone(),
        op: op.clone(),
        progress: Progress::for_run(ctx.json),
        outcomes: Mutex::new(Vec::new()),
        interrupted,
        talk: !ctx.out.is_json(),
    });
    let journal = rollout::drive(&dir, journal, lock, &fleet, driven.clone()).await?;
    let mut outcomes = driven
        .outcomes
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    drop(driven);
    // In plan order, as a fleet run's results are in the fleet's.
    let place = |o: &Outcome| {
        let name = o.server_name();
        journal.servers.iter().position(|s| s.name == name)
    };
    outcomes.sort_by_key(|o| place(o));
    print_journal(ctx, &journal, &outcomes)?;
    let ok = journal.state == RolloutState::Finished && journal.count(ServerState::Failed) == 0;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A rollout's report: with `--json`, `{rollout, results}` (the journal
/// and each server's payload from this run); else each server's report,
/// then one row per server and what was left untouched.
fn print_journal(ctx: &Context, journal: &Journal, outcomes: &[Outcome]) -> Result<()> {
    let out = &ctx.out;
    let dir = ctx.kastell_dir()?;
    if out.is_json() {
        let results: Vec<Value> = outcomes.iter().map(fleet_entry).collect();
        return out.json(&json!({
            "rollout": summary_json(&dir, journal),
            "results": results,
        }));
    }
    for outcome in outcomes {
        report::print(out, &journal.operation, outcome)?;
    }
    let rows: Vec<Vec<String>> = journal
        .servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                stage_name(s.stage, journal.stages),
                s.status.as_str().to_owned(),
                s.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.line("")?;
    out.table(&["SERVER", "STAGE", "STATUS", "DETAIL"], &rows)?;
    out.line(format_args!(
        "Rollout {} ({}): {}; {} done, {} failed, {} skipped, {} untouched",
        journal.id,
        journal.operation,
        shown_state(&dir, journal),
        journal.count(ServerState::Done),
        journal.count(ServerState::Failed),
        journal.count(ServerState::Skipped),
        journal.count(ServerState::Untouched),
    ))?;
    if let Some(reason) = &journal.stop_reason {
        out.line(format_args!("Stopped: {reason}"))?;
    }
    let untouched = journal.names(ServerState::Untouched);
    if !untouched.is_empty() {
        out.line(format_args!("Not touched: {}", untouched.join(", ")))?;
    }
    let open = journal.servers.iter().filter(|s| s.status.open()).count();
    if open > 0 && journal.state.resumable() {
        out.line(format_args!(
            "{open} server(s) left: `kastell rollout resume {}` goes on",
            journal.id
        ))?;
    }
    Ok(())
}
