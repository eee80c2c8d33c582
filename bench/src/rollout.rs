//! Benchmark 4b: `maintain --all` as a rollout through the release
//! `kastell` binary over a sandbox fleet of `n` servers (the Hetzner
//! simulator, each server its own fake host behind real sshd daemons)
//! with a declared health check failing on 5% of them: the default
//! rollout (stops at the first failure), one whose budget (10%) holds the
//! 5%, and a fleet-wide failure the canary catches; against one server's
//! maintenance and against the `n` maintenances started at once as
//! separate processes, without a rollout.

use std::path::Path;
use std::time::{Duration, Instant};

use kastell::state::checks::{CheckEntry, ChecksFile, Scope};
use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_core::{Error, Result};
use serde_json::Value;

use crate::fleet::command;
use crate::measure::{ChildRun, run_child, secs};
use crate::report::Section;

/// One server in this many fails its declared health check.
const FAIL_EVERY: usize = 20;

/// A declared check that always fails, waited for one second.
fn failing() -> CheckEntry {
    CheckEntry {
        rollback: None,
        http: Vec::new(),
        commands: vec!["exit 1".to_owned()],
        wait: Some(1),
        ..CheckEntry::default()
    }
}

/// Declares the failing check on every `FAIL_EVERY`th server (from the
/// middle of the first batch on, never the canary) or, with `fleet`, on
/// every server; returns how many fail.
fn inject(sandbox: &Sandbox, dir: &Path, fleet: bool) -> Result<usize> {
    let mut file = ChecksFile::default();
    if fleet {
        file.set(&Scope::Fleet, failing());
        file.save(dir)?;
        return Ok(sandbox.servers().len());
    }
    let mut failing_servers = 0;
    for (i, server) in sandbox.servers().iter().enumerate() {
        if i % FAIL_EVERY == FAIL_EVERY / 2 {
            file.set(&Scope::Server(server.name.clone()), failing());
            failing_servers += 1;
        }
    }
    file.save(dir)?;
    Ok(failing_servers)
}

/// What a rollout's JSON says: servers done, failed and never touched,
/// and its state.
fn outcome(run: &ChildRun) -> Result<(usize, usize, usize, String)> {
    let report: Value = serde_json::from_slice(&run.stdout).map_err(|e| {
        Error::unexpected(format!(
            "the rollout printed no report ({e}): {}",
            String::from_utf8_lossy(&run.stderr)
        ))
    })?;
    let rollout = &report["rollout"];
    let count = |status: &str| {
        rollout["servers"]
            .as_array()
            .map(|s| s.iter().filter(|s| s["status"] == status).count())
            .unwrap_or(0)
    };
    Ok((
        count("done"),
        count("failed"),
        count("untouched"),
        rollout["state"].as_str().unwrap_or("?").to_owned(),
    ))
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64().max(1e-9))
}

/// Starts `kastell maintain NAME` for every server at once, each its own
/// process; the wall time until the last ended, how many failed and the
/// largest peak memory of one.
fn all_at_once(bin: &Path, sandbox: &Sandbox, dir: &Path) -> Result<(Duration, usize, u64)> {
    let started = Instant::now();
    let runs: Vec<Result<ChildRun>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sandbox
            .servers()
            .iter()
            .map(|s| {
                let cmd = command(
                    bin,
                    sandbox,
                    dir,
                    &["maintain", &s.name, "--force", "--json"],
                );
                scope.spawn(move || run_child(cmd))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::unexpected("a runner panicked")))
            })
            .collect()
    });
    let wall = started.elapsed();
    let mut failed = 0;
    let mut peak = 0;
    for run in runs {
        let run = run?;
        failed += usize::from(!run.status.success());
        peak = peak.max(run.peak_rss_kib);
    }
    Ok((wall, failed, peak))
}

/// Runs the rollout benchmark over `n` servers with the `kastell` binary
/// at `bin`.
pub(crate) async fn run(bin: &Path, n: usize) -> Result<Section> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("creating a directory", e))?;
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: n,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = std::sync::Arc::new(Sandbox::start_with(dir.path(), &plan).await?);
    let bin = bin.to_path_buf();
    let path = dir.path().to_path_buf();
    let shared = sandbox.clone();
    let (rows, failing) =
        tokio::task::spawn_blocking(move || -> Result<(Vec<Vec<String>>, usize)> {
            let sandbox = &*shared;
            let first = sandbox
                .servers()
                .first()
                .map(|s| s.name.clone())
                .ok_or_else(|| Error::unexpected("empty fleet"))?;
            let rollout = |extra: &[&str]| -> Result<ChildRun> {
                let args = [&["maintain", "--all", "--force", "--json"][..], extra].concat();
                run_child(command(&bin, sandbox, &path, &args))
            };
            let one = run_child(command(
                &bin,
                sandbox,
                &path,
                &["maintain", &first, "--force", "--json"],
            ))?;
            crate::measure::check(&one, "kastell maintain (one server)")?;
            let failing = inject(sandbox, &path, false)?;
            let (at_once, at_once_failed, at_once_rss) = all_at_once(&bin, sandbox, &path)?;
            let mut rows = vec![
                vec![
                    "maintain, 1 server (healthy)".to_owned(),
                    secs(one.wall),
                    "1.00×".to_owned(),
                    ratio(one.wall, at_once),
                    "1 done".to_owned(),
                    format!("{:.1} MB", one.peak_rss_kib as f64 / 1024.0),
                ],
                vec![
                    format!("{n} × `maintain NAME` at once (no rollout)"),
                    secs(at_once),
                    ratio(at_once, one.wall),
                    "1.00×".to_owned(),
                    format!(
                        "{} done, {at_once_failed} failed, 0 untouched",
                        n - at_once_failed
                    ),
                    format!("{:.1} MB each at most", at_once_rss as f64 / 1024.0),
                ],
            ];
            let cases: [(&str, Vec<&str>, bool); 3] = [
                (
                    "rollout, defaults (canary 1, batches of 25%, budget 1)",
                    vec![],
                    false,
                ),
                (
                    "rollout --max-failures 10%",
                    vec!["--max-failures", "10%"],
                    false,
                ),
                ("rollout, defaults, every server failing", vec![], true),
            ];
            for (what, extra, fleet_wide) in cases {
                if fleet_wide {
                    inject(sandbox, &path, true)?;
                }
                let run = rollout(extra.as_slice())?;
                let (done, failed, untouched, state) = outcome(&run)?;
                rows.push(vec![
                    what.to_owned(),
                    secs(run.wall),
                    ratio(run.wall, one.wall),
                    ratio(run.wall, at_once),
                    format!("{done} done, {failed} failed, {untouched} untouched ({state})"),
                    format!("{:.1} MB", run.peak_rss_kib as f64 / 1024.0),
                ]);
            }
            Ok((rows, failing))
        })
        .await
        .map_err(|e| Error::unexpected(format!("rollout runs: {e}")))??;
    let mut section = Section::new(format!("4b. Fleet rollout over {n} servers"));
    section.para(format!(
        "The `kastell` binary over a sandbox fleet of {n} Hetzner servers (as §4: the API \
         simulator at 200× real time, each server its own fake Debian host behind real sshd \
         daemons). Each maintenance backs up, snapshots, upgrades, checks health, reboots and \
         checks again. A health check declared in checks.json fails on {failing} of the {n} \
         servers (every {FAIL_EVERY}th, from the middle of the first batch; never the canary), \
         and on every server in the last row; their rollback policy is the default `ask`, which \
         off a terminal leaves them. The baseline without a rollout starts the {n} \
         maintenances at once as separate processes (no stop rule). Ratios are wall times to \
         the first two rows."
    ));
    section.table(
        &[
            "command",
            "wall time",
            "× one server",
            "× all at once",
            "servers",
            "peak RSS",
        ],
        rows,
    );
    drop(sandbox);
    Ok(section)
}
