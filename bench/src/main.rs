//! `kastell-bench`: measures kastell against baselines taken in the same
//! run and writes the report (BENCHMARKS.md). See `--help`.
//!
//! The benchmarks: MCP start (against the cheapest stdio process) and its
//! peak memory at `initialize` and `tools/list` (quiet, with every core
//! busy, and over HTTP with concurrent sessions; against the target), backup
//! and restore throughput of a raw dump and of a Coolify-shaped host over a
//! real sshd (against the OpenSSH client moving the same bytes), the same
//! host behind a shaped link at 100 Mbit/s and 1 Gbit/s (against the bare
//! and the server-gzip streams), adaptive compression on the wire
//! (against the bare and server-side zstd streams and the computed floor),
//! recovery of a Coolify-shaped host with app data onto a new server behind
//! that link (against the backup's bytes over it plus the simulated
//! server-creation wait), fleet operations over 100 simulated servers (against one server),
//! on-server backups of that fleet into a SeaweedFS cluster (against the
//! same servers backed up through this machine), a
//! rollout over them with injected health failures (against one server and
//! all at once without a rollout), API requests
//! per operation (against the minimum each API allows), reboot detection
//! latency (against the polling interval), the backup repository (local
//! and S3, against the local store's compression of the same dump; over
//! SFTP behind a shaped link, against that compression plus `scp`) and the
//! restore drill (against a plain `pg_restore` of the same dump).

// A reporting tool: its output is the point.
#![allow(clippy::print_stdout)]

mod adapt;
mod drill;
mod economy;
mod fleet;
mod mcp_memory;
mod mcp_start;
mod measure;
mod netns;
mod onserver_fleet;
mod paas;
mod parallel;
mod reboot;
mod recovery;
mod repo_shaped;
mod report;
mod repository;
mod rollout;
mod shaped;
mod textdump;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kastell_core::{Error, Result};

use crate::paas::Rows;
use crate::report::Section;

/// Benchmarks of kastell, each against a baseline measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "kastell-bench", version)]
struct Args {
    /// Which benchmarks to run (comma-separated): mcp, mcp-memory, raw, paas, shaped,
    /// adapt, parallel, recovery, fleet, onserver-fleet, rollout, api, reboot, repo,
    /// repo-shaped, drill (`shaped`, `adapt`, `parallel`, `recovery` and `repo-shaped`
    /// need root: network namespaces, tc; `repo` and `onserver-fleet` need SeaweedFS,
    /// restic and curl from `.ci/setup`; the data on each server of `onserver-fleet` is
    /// --onserver-mib; the dump of `repo` and `repo-shaped` is --dump-mib, the database
    /// of `drill` --db-mib, the data of `adapt` --adapt-mib, the app data of `recovery`
    /// --recovery-mib).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mcp,mcp-memory,raw,paas,shaped,adapt,parallel,recovery,fleet,onserver-fleet,rollout,api,reboot,repo,repo-shaped,drill"
    )]
    only: Vec<String>,
    /// Size of the raw dump in MiB.
    #[arg(long, default_value_t = 1024)]
    dump_mib: u64,
    /// Approximate size of the Coolify-shaped database in MiB.
    #[arg(long, default_value_t = 1024)]
    db_mib: u64,
    /// What the generated database rows hold (paas, shaped, parallel,
    /// drill): `hex` (md5 text, a worst case for compression) or `app`
    /// (words and counters, as an application's tables compress).
    #[arg(long, value_enum, default_value_t = Rows::Hex)]
    rows: Rows,
    /// Size of each data set of the adaptive-compression benchmark in MiB.
    #[arg(long, default_value_t = 256)]
    adapt_mib: u64,
    /// App data of the recovered host in MiB (before compression).
    #[arg(long, default_value_t = 256)]
    recovery_mib: u64,
    /// Servers in the fleet benchmarks (fleet, onserver-fleet, rollout).
    #[arg(long, default_value_t = 100)]
    fleet: usize,
    /// MiB of application-like text on each server of `onserver-fleet`.
    #[arg(long, default_value_t = 2)]
    onserver_mib: u64,
    /// Repetitions of each timed measurement.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Small sizes and single runs: checks that every benchmark works.
    #[arg(long)]
    quick: bool,
    /// Where to write the report (not written when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory holding the `kastell` and `kastell-mcp` binaries to
    /// measure (default: next to this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

impl Args {
    fn wants(&self, name: &str) -> bool {
        self.only.iter().any(|o| o == name)
    }

    fn bin(&self, name: &str) -> Result<PathBuf> {
        let dir = match &self.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()
                .map_err(|e| Error::io("finding this program", e))?
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default(),
        };
        let path = dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(
                Error::config_invalid(format!("{} not found", path.display()))
                    .with_hint("Build it first: cargo build --release -p kastell --bins"),
            )
        }
    }
}

fn report(section: Section, sections: &mut Vec<Section>) {
    println!("{}", section.markdown());
    sections.push(section);
}

async fn run(args: &Args) -> Result<Vec<Section>> {
    let mut sections = Vec::new();
    let (dump, db, fleet, runs) = if args.quick {
        (16 << 20, 16, 8, 1)
    } else {
        (
            args.dump_mib << 20,
            args.db_mib,
            args.fleet,
            args.runs.max(1),
        )
    };
    if args.wants("mcp") {
        let mcp = args.bin("kastell-mcp")?;
        let mcp_runs = if args.quick { 3 } else { 30 };
        report(
            tokio::task::spawn_blocking(move || mcp_start::run(&mcp, mcp_runs))
                .await
                .map_err(|e| Error::unexpected(e.to_string()))??,
            &mut sections,
        );
    }
    if args.wants("mcp-memory") {
        let mcp = args.bin("kastell-mcp")?;
        let mcp_runs = if args.quick { 3 } else { 20 };
        report(
            tokio::task::spawn_blocking(move || mcp_memory::run(&mcp, mcp_runs))
                .await
                .map_err(|e| Error::unexpected(e.to_string()))??,
            &mut sections,
        );
    }
    if args.wants("raw") {
        for section in throughput::run(dump, runs).await? {
            report(section, &mut sections);
        }
    }
    if args.wants("paas") {
        report(paas::run(db, runs, args.rows).await?, &mut sections);
    }
    if args.wants("shaped") {
        report(shaped::run(db, runs, args.rows).await?, &mut sections);
    }
    if args.wants("adapt") {
        let mib = if args.quick { 16 } else { args.adapt_mib };
        report(adapt::run(mib, runs).await?, &mut sections);
    }
    if args.wants("parallel") {
        report(parallel::run(db, runs, args.rows).await?, &mut sections);
    }
    if args.wants("recovery") {
        let mib = if args.quick { 16 } else { args.recovery_mib };
        report(
            recovery::run(&args.bin("kastell")?, mib).await?,
            &mut sections,
        );
    }
    if args.wants("fleet") {
        report(
            fleet::run(&args.bin("kastell")?, fleet).await?,
            &mut sections,
        );
    }
    if args.wants("onserver-fleet") {
        let mib = if args.quick { 1 } else { args.onserver_mib };
        report(
            onserver_fleet::run(&args.bin("kastell")?, fleet, mib).await?,
            &mut sections,
        );
    }
    if args.wants("rollout") {
        report(
            rollout::run(&args.bin("kastell")?, fleet).await?,
            &mut sections,
        );
    }
    if args.wants("api") {
        report(
            economy::run(if args.quick { 60 } else { 500 }).await?,
            &mut sections,
        );
    }
    if args.wants("reboot") {
        report(
            reboot::run(if args.quick { 3 } else { 20 }).await?,
            &mut sections,
        );
    }
    if args.wants("repo") {
        let mib = if args.quick { 16 } else { args.dump_mib };
        report(
            tokio::task::spawn_blocking(move || repository::run(mib, runs))
                .await
                .map_err(|e| Error::unexpected(e.to_string()))??,
            &mut sections,
        );
    }
    if args.wants("repo-shaped") {
        let mib = if args.quick { 16 } else { args.dump_mib };
        report(
            tokio::task::spawn_blocking(move || repo_shaped::run(mib, runs))
                .await
                .map_err(|e| Error::unexpected(e.to_string()))??,
            &mut sections,
        );
    }
    if args.wants("drill") {
        let rows = args.rows;
        report(
            tokio::task::spawn_blocking(move || drill::run(db, runs, rows))
                .await
                .map_err(|e| Error::unexpected(e.to_string()))??,
            &mut sections,
        );
    }
    Ok(sections)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))
        .and_then(|rt| rt.block_on(run(&args)));
    match result {
        Ok(sections) => {
            if let Some(out) = &args.out {
                let text = report::document(&sections, "bash .ci/bench");
                if let Err(e) = std::fs::write(out, text) {
                    eprintln!("kastell-bench: writing {}: {e}", out.display());
                    return ExitCode::FAILURE;
                }
                eprintln!("kastell-bench: wrote {}", out.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kastell-bench: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
