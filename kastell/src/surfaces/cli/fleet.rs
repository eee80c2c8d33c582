//! Running an [`Op`]: on one server or, with `--all`, across the fleet
//! (bounded concurrency, one operation per host at a time); `--dry-run`
//! plans; what interrupts service or loses data is confirmed first, on
//! one server as across the fleet (a backup of every server is not). Every run ends in a report
//! (human or `--json`) and exit code 1 when anything failed.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use kastell_core::{Error, Result};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use super::Context;
use super::confirm::{Confirmation, confirm};
use super::op::Op;
use super::pick::{self, Picked};
use super::progress::Progress;
use super::report::{self, Outcome};
use super::rollout::RolloutArgs;
use crate::ops;
use crate::policy::Surface;
use crate::state::store::ServerRecord;

/// The default number of servers worked on at once with `--all`. Most of a
/// fleet operation is waiting (reboots, package managers, provider
/// actions), so 32 at once keeps 100 servers within a few rounds (see
/// BENCHMARKS.md) while staying well inside the providers' API rate limits;
/// `--concurrency 1` gives a rolling maintenance.
pub(crate) const DEFAULT_CONCURRENCY: usize = 32;

/// Arguments of commands that can run across the fleet.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// The server (name or IP); optional when there is only one.
    pub server: Option<String>,
    /// Run on every server of the fleet, concurrently.
    #[arg(long, conflicts_with = "server")]
    pub all: bool,
    /// How many servers to work on at once with --all (1 for a rolling
    /// maintenance, one server after the other).
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = concurrency)]
    pub concurrency: usize,
    /// Print the exact plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when not in a terminal).
    #[arg(long)]
    pub force: bool,
    /// The operation writes to stdout while it runs (`logs -f`): no
    /// spinner is drawn over its lines.
    #[arg(skip)]
    pub streams: bool,
    /// How `--all` rolls out, for the operations that run as a rollout
    /// (`maintain`, `update`, `restart`; see [`RolloutFleetArgs`]).
    #[arg(skip)]
    pub rollout: Option<RolloutArgs>,
}

/// The arguments of disruptive fleet commands (`maintain`, `update`,
/// `restart`): [`FleetArgs`] and, for `--all`, how the rollout goes.
#[derive(Debug, Clone, Args)]
pub(crate) struct RolloutFleetArgs {
    /// Which servers, and whether to plan or confirm.
    #[command(flatten)]
    pub(crate) fleet: FleetArgs,
    /// The canary, batches, failure budget and pause of `--all`.
    #[command(flatten)]
    pub(crate) rollout: RolloutArgs,
}

impl From<RolloutFleetArgs> for FleetArgs {
    fn from(a: RolloutFleetArgs) -> Self {
        Self {
            rollout: Some(a.rollout),
            ..a.fleet
        }
    }
}

/// Arguments of read-only commands that can run across the fleet: one
/// server or `--all`, with `--concurrency`; nothing to plan or confirm, so
/// no `--dry-run` or `--force`.
#[derive(Debug, Clone, Args)]
pub struct ReadFleetArgs {
    /// The server (name or IP); optional when there is only one.
    pub server: Option<String>,
    /// Run on every server of the fleet, concurrently.
    #[arg(long, conflicts_with = "server")]
    pub all: bool,
    /// How many servers to work on at once with --all.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = concurrency)]
    pub concurrency: usize,
}

impl From<ReadFleetArgs> for FleetArgs {
    fn from(a: ReadFleetArgs) -> Self {
        Self {
            server: a.server,
            all: a.all,
            concurrency: a.concurrency,
            dry_run: false,
            force: false,
            streams: false,
            rollout: None,
        }
    }
}

/// Arguments of commands that work on one server.
#[derive(Debug, Clone, Args)]
pub struct OneArgs {
    /// The server (name or IP); optional when there is only one.
    pub server: Option<String>,
    /// Print the exact plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when not in a terminal).
    #[arg(long)]
    pub force: bool,
}

impl From<OneArgs> for FleetArgs {
    fn from(a: OneArgs) -> Self {
        Self {
            server: a.server,
            all: false,
            concurrency: DEFAULT_CONCURRENCY,
            dry_run: a.dry_run,
            force: a.force,
            streams: false,
            rollout: None,
        }
    }
}

fn concurrency(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err("must be a number from 1 to 64".to_owned()),
    }
}

/// The operations context for a CLI run.
pub(crate) fn ops_context(ctx: &Context) -> Result<ops::Context> {
    Ok(ops::Context::new(
        ctx.env.clone(),
        ctx.store()?,
        Surface::Cli,
    ))
}

/// Runs `op` as `args` say: plan, confirm, run, report.
pub(crate) async fn execute(ctx: &Context, mut op: Op, mut args: FleetArgs) -> Result<ExitCode> {
    let octx = ops_context(ctx)?;
    if !args.all && args.server.is_none() {
        if op.lists_every_server() && octx.store.servers()?.len() > 1 {
            return list_every_server(ctx, &octx, &op, args.concurrency).await;
        }
        match pick::server(&octx.store, None)? {
            Picked::NotAsked => {}
            Picked::Server(name) => args.server = Some(name),
            Picked::Cancelled => {
                eprintln!("Cancelled: nothing was changed.");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    let targets: Vec<ServerRecord> = if args.all {
        let servers = octx.store.servers()?;
        if servers.is_empty() {
            return Err(Error::not_found("No servers in the fleet")
                .with_hint("Add one with `kastell server add`"));
        }
        servers
    } else {
        // Resolution for the plan and the question only; the operation
        // resolves again (and reports a failure in its own payload).
        octx.store
            .resolve(args.server.as_deref())
            .map(|r| vec![r])
            .unwrap_or_default()
    };
    if let [server] = targets.as_slice() {
        // What the question and the plan name (the newest backup a restore
        // picks) is what runs, not re-picked after the question.
        op = op.pinned(&octx, server);
    }
    // `--all` of a disruptive operation is a rollout: the canary, then
    // batches, under a failure budget.
    let shape = match (&args.rollout, args.all) {
        (Some(rollout), true) => Some(rollout.shape(args.concurrency)),
        _ => None,
    };
    if args.dry_run {
        if targets.is_empty() {
            // Let the store say why nothing resolved.
            octx.store.resolve(args.server.as_deref())?;
        }
        let stages = match &shape {
            Some(shape) => Some(super::rollout::dry_run_stages(&targets, shape)?),
            None => None,
        };
        return super::plan::print(ctx, &octx, &op, &targets, stages);
    }
    // One rule for one server and for the fleet: what interrupts service
    // or loses data asks first (or takes --force); what only reads or
    // adds (a backup) does not, however many servers it runs on.
    if op.destructive() {
        let asked: Vec<&ServerRecord> = targets
            .iter()
            .filter(|s| op.refusal(&octx, s).is_none())
            .collect();
        if let Some(question) = question(&op, &asked, args.all, shape.as_ref()) {
            if confirm(&question, args.force)? == Confirmation::Declined {
                eprintln!("Cancelled: nothing was changed.");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    if let Some(shape) = &shape {
        return super::rollout::start(ctx, &octx, op, &targets, shape).await;
    }
    let progress = Progress::for_run(ctx.json || args.streams);
    if !args.all {
        let outcome = run_one(&octx, &op, args.server.clone(), &progress).await;
        drop(progress);
        report::print(&ctx.out, &op.title(), &outcome)?;
        return Ok(exit(outcome.ok()));
    }
    let outcomes = run_all(&octx, &op, &targets, args.concurrency, &progress).await;
    drop(progress);
    print_fleet(ctx, &op, &outcomes)?;
    Ok(exit(outcomes.iter().all(Outcome::ok)))
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The question for the servers the policy allows (none: nothing will be
/// changed, so nothing is asked and the operation reports the refusal);
/// a rollout's names its shape.
fn question(
    op: &Op,
    servers: &[&ServerRecord],
    all: bool,
    shape: Option<&crate::ops::rollout::Shape>,
) -> Option<String> {
    match servers {
        [] => None,
        [one] if !all => Some(op.question(one)),
        many => {
            let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
            let how = shape.map_or_else(String::new, |s| {
                format!(
                    " as a rollout (canary {}, then batches of {}, stopping at {} failure(s))",
                    s.canary,
                    s.batch,
                    s.budget(many.len())
                )
            });
            Some(format!(
                "Run {} on {} server(s){how}: {}?",
                op.title(),
                many.len(),
                names.join(", ")
            ))
        }
    }
}

pub(crate) async fn run_one(
    octx: &ops::Context,
    op: &Op,
    server: Option<String>,
    progress: &Progress,
) -> Outcome {
    let label = server
        .clone()
        .unwrap_or_else(|| "the only server".to_owned());
    let title = format!("{} on {label}", op.title());
    let task = progress.task(title.clone());
    let octx = octx.clone().with_progress(task.hook(title));
    let start = Instant::now();
    let (result, detail) = match op.run(&octx, server.as_deref()).await {
        Ok(done) => (Ok(done.body), done.lines),
        Err(e) => (Err(e), Vec::new()),
    };
    Outcome {
        server,
        result,
        elapsed: start.elapsed(),
        detail,
    }
}

/// Runs `op` on every server, at most `limit` at once and never two on the
/// same host (IP) at the same time; outcomes in the fleet's order.
async fn run_all(
    octx: &ops::Context,
    op: &Op,
    servers: &[ServerRecord],
    limit: usize,
    progress: &Progress,
) -> Vec<Outcome> {
    let (octx, op, progress) = (octx.clone(), op.clone(), progress.clone());
    bounded(servers, limit, move |server| {
        let (octx, op, progress) = (octx.clone(), op.clone(), progress.clone());
        async move { run_one(&octx, &op, Some(server.name), &progress).await }
    })
    .await
}

/// Calls `work` for every server, at most `limit` at once and one at a
/// time per host (IP); results in the servers' order.
pub(crate) async fn bounded<F, Fut>(servers: &[ServerRecord], limit: usize, work: F) -> Vec<Outcome>
where
    F: Fn(ServerRecord) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut hosts: HashMap<String, Arc<Mutex<()>>> = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    for (index, server) in servers.iter().enumerate() {
        let host = hosts.entry(server.ip.clone()).or_default().clone();
        let permits = permits.clone();
        let job = work(server.clone());
        set.spawn(async move {
            // The host first, so a queued host holds no permit.
            let _host = host.lock().await;
            let _permit = permits.acquire_owned().await;
            (index, job.await)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; servers.len()];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((index, outcome)) => {
                if let Some(slot) = outcomes.get_mut(index) {
                    *slot = Some(outcome);
                }
            }
            Err(e) => tracing::error!("a fleet task ended abnormally: {e}"),
        }
    }
    outcomes
        .into_iter()
        .zip(servers)
        .map(|(o, s)| {
            o.unwrap_or_else(|| Outcome {
                server: Some(s.name.clone()),
                result: Err(ops::OpError::from(Error::unexpected(
                    "the operation ended abnormally",
                ))),
                elapsed: std::time::Duration::ZERO,
                detail: Vec::new(),
            })
        })
        .collect()
}

/// A listing named without a server on a fleet of several: every
/// server's, at most `limit` at once, each printed under its server by
/// the operation's own rendering ([`report::print`]); with `--json`, one
/// entry per server. Exit code 1 when any server's listing failed.
async fn list_every_server(
    ctx: &Context,
    octx: &ops::Context,
    op: &Op,
    limit: usize,
) -> Result<ExitCode> {
    let servers = octx.store.servers()?;
    let progress = Progress::for_run(ctx.json);
    let outcomes = run_all(octx, op, &servers, limit, &progress).await;
    drop(progress);
    if ctx.out.is_json() {
        let entries: Vec<Value> = outcomes.iter().map(fleet_entry).collect();
        ctx.out.json(&entries)?;
    } else {
        for outcome in &outcomes {
            report::print(&ctx.out, &op.title(), outcome)?;
        }
    }
    Ok(exit(outcomes.iter().all(Outcome::ok)))
}

/// One server's entry in the `--json` array: the ops payload, with
/// `server` and `success: false` added to a failure that lacks them.
pub(crate) fn fleet_entry(outcome: &Outcome) -> Value {
    let mut payload = outcome.payload();
    if let (Err(_), Value::Object(map)) = (&outcome.result, &mut payload) {
        map.entry("server")
            .or_insert_with(|| Value::String(outcome.server_name()));
        map.entry("success").or_insert(Value::Bool(false));
    }
    payload
}

/// Each server's report (a failure's error once, in its report), then one
/// row per server (a failure's row names the error's kind) and the counts.
fn print_fleet(ctx: &Context, op: &Op, outcomes: &[Outcome]) -> Result<()> {
    let out = &ctx.out;
    if out.is_json() {
        let entries: Vec<Value> = outcomes.iter().map(fleet_entry).collect();
        return out.json(&entries);
    }
    for outcome in outcomes {
        report::print(out, &op.title(), outcome)?;
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let detail = match &o.result {
                // The message, else the operation's own first line
                // (`status`: reachable over SSH, provider: running).
                Ok(v) => v
                    .get("message")
                    .and_then(Value::as_str)
                    .or_else(|| o.detail.first().map(|l| l.trim()))
                    .unwrap_or("done")
                    .to_owned(),
                // The error itself is in the server's report above.
                Err(e) => e.kind.replace('_', " "),
            };
            vec![
                o.server_name(),
                if o.ok() { "ok" } else { "FAILED" }.to_owned(),
                format!("{} ms", o.elapsed.as_millis()),
                detail,
            ]
        })
        .collect();
    out.line("")?;
    out.table(&["SERVER", "RESULT", "TIME", "DETAIL"], &rows)?;
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    out.line(format_args!(
        "{}: {} succeeded, {failed} failed",
        op.title(),
        outcomes.len() - failed
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_limit_at_once_and_one_per_host() {
        // 12 servers on 6 hosts (two records per IP).
        let servers: Vec<ServerRecord> = (0..12)
            .map(|i| {
                ServerRecord::new(
                    format!("id-{i}"),
                    format!("s-{i}"),
                    format!("203.0.113.{}", i % 6),
                )
            })
            .collect();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let per_host: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
        let clash = Arc::new(AtomicUsize::new(0));
        let outcomes = bounded(&servers, 3, |s| {
            let (running, peak, per_host, clash) = (
                running.clone(),
                peak.clone(),
                per_host.clone(),
                clash.clone(),
            );
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                {
                    let mut hosts = per_host.lock().unwrap();
                    let n = hosts.entry(s.ip.clone()).or_default();
                    *n += 1;
                    if *n > 1 {
                        clash.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                *per_host.lock().unwrap().entry(s.ip.clone()).or_default() -= 1;
                running.fetch_sub(1, Ordering::SeqCst);
                Outcome {
                    server: Some(s.name.clone()),
                    result: Ok(serde_json::json!({"server": s.name})),
                    elapsed: Duration::ZERO,
                    detail: Vec::new(),
                }
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert_eq!(clash.load(Ordering::SeqCst), 0);
        let names: Vec<String> = outcomes.iter().map(Outcome::server_name).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("s-{i}")).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_failure_entry_names_its_server() {
        let outcome = Outcome {
            server: Some("web-1".into()),
            result: Err(ops::OpError::from(Error::invalid_state("SAFE_MODE"))),
            elapsed: std::time::Duration::ZERO,
            detail: Vec::new(),
        };
        let entry = fleet_entry(&outcome);
        assert_eq!(entry["server"], "web-1");
        assert_eq!(entry["success"], false);
        assert_eq!(entry["error"], "SAFE_MODE");
    }
}
