//! Benchmark 4: `backup create --all` and `maintain --all` through the
//! release `kastell` binary over a sandbox fleet of `n` servers (the
//! Hetzner simulator, each server its own fake host behind one real sshd),
//! against the same command on one server of that fleet, with the CLI's
//! peak memory.

use std::path::Path;
use std::process::Command;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_core::{Error, Result};

use crate::measure::{ChildRun, check, run_child, secs};
use crate::report::Section;

/// `kastell args` against the sandbox's store (in `dir`) with its
/// variables and nothing else from this environment.
pub(crate) fn command(bin: &Path, sandbox: &Sandbox, dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(bin);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir)
        .envs(sandbox.env_overlay());
    command
}

/// Runs `kastell args` against the sandbox's store; fails unless it
/// succeeded.
fn kastell(bin: &Path, sandbox: &Sandbox, dir: &Path, args: &[&str]) -> Result<ChildRun> {
    let run = run_child(command(bin, sandbox, dir, args))?;
    check(&run, &format!("kastell {}", args.join(" ")))?;
    Ok(run)
}

/// One row: what ran, its time, the ratio to one server, peak memory.
fn row(what: String, run: &ChildRun, one: &ChildRun) -> Vec<String> {
    vec![
        what,
        secs(run.wall),
        format!(
            "{:.2}×",
            run.wall.as_secs_f64() / one.wall.as_secs_f64().max(1e-9)
        ),
        format!("{:.1} MB", run.peak_rss_kib as f64 / 1024.0),
    ]
}

/// Runs the fleet benchmark with `n` servers, using the `kastell` binary
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
    let sandbox = Sandbox::start_with(dir.path(), &plan).await?;
    let first = sandbox
        .servers()
        .first()
        .map(|s| s.name.clone())
        .ok_or_else(|| Error::unexpected("empty fleet"))?;
    let bin = bin.to_path_buf();
    let path = dir.path().to_path_buf();
    let sandbox = std::sync::Arc::new(sandbox);
    let shared = sandbox.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<String>>> {
        let run = |args: &[&str]| kastell(&bin, &shared, &path, args);
        let mut rows = Vec::new();
        for (what, command) in [
            ("backup create", &["backup", "create"][..]),
            ("maintain", &["maintain"][..]),
        ] {
            if what == "backup create" {
                // A server's first backup measures the link and zstd on the
                // host; later ones of a small server do not (wire::plan).
                let first_one = run(&[command, &[first.as_str(), "--force", "--json"]].concat())?;
                rows.push(row(
                    format!("{what}, 1 server, its first backup"),
                    &first_one,
                    &first_one,
                ));
                let all = [command, &["--all", "--force", "--json"]].concat();
                rows.push(row(
                    format!("{what} --all, {n} servers, first backups (default concurrency)"),
                    &run(&all)?,
                    &first_one,
                ));
            }
            let one = run(&[command, &[first.as_str(), "--force", "--json"]].concat())?;
            rows.push(row(format!("{what}, 1 server"), &one, &one));
            let widths = [None, Some("8".to_owned()), Some("64".to_owned())];
            for width in widths {
                let mut args = [command, &["--all", "--force", "--json"]].concat();
                let label = match &width {
                    None => format!("{what} --all, {n} servers (default concurrency)"),
                    Some(w) => format!("{what} --all --concurrency {w}, {n} servers"),
                };
                if let Some(w) = &width {
                    args.extend(["--concurrency", w.as_str()]);
                }
                rows.push(row(label, &run(&args)?, &one));
            }
        }
        Ok(rows)
    })
    .await
    .map_err(|e| Error::unexpected(format!("fleet runs: {e}")))??;
    let mut section = Section::new(format!("4. Fleet operations over {n} servers"));
    section.para(format!(
        "The release `kastell` binary over a sandbox fleet of {n} Hetzner servers (the API \
         simulator at 200× real time; each server its own fake Debian host on a loopback address \
         behind real sshd daemons, one per 15 hosts), with production timings (polls from 2 s). Each maintain upgrades \
         packages, reboots through the API because the upgrade asks for it, proves the reboot by \
         the boot id and checks health again. A server's first backup measures the link and zstd \
         on the host (its own rows, with their ratio to the first backup of one server); the \
         later rows back up servers whose last backup is known to be small, which skip both. \
         Ratios are to the same command on one server; \
         memory is the CLI's peak RSS. Every fake host, simulator and sshd session runs on this \
         machine's cores too, so the fleet's own work competes with kastell here; on a real \
         fleet it runs on the servers."
    ));
    section.table(&["command", "wall time", "× one server", "peak RSS"], rows);
    drop(sandbox);
    Ok(section)
}
