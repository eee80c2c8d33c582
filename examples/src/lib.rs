//! Runnable kastell examples. Each file in `examples/` is one program:
//!
//! - `hetzner`, `digitalocean`, `vultr`, `linode`: one per provider. With the
//!   provider's token variable set (`HETZNER_TOKEN`, ...) it talks to the
//!   real API, using the server named by `KASTELL_EXAMPLE_SERVER` (or the
//!   first one listed); without it, it starts that provider's simulator and
//!   runs against it. It shows a server, creates a snapshot, waits for it,
//!   lists and deletes it, and prints what happened.
//! - `coolify`, `dokploy`, `bare`: one per platform, against a local fake
//!   host (a private sshd on 127.0.0.1, a PostgreSQL cluster behind a
//!   `docker` shim for the PaaS ones, a fake filesystem root for bare): a
//!   backup through kastell's engine, a change, a verified restore, and
//!   what each step did.
//! - `custom_provider`: a complete third-party cloud provider in one file.
//!
//! Run one with `cargo run -p kastell-examples --example hetzner`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

pub mod platforms;

use kastell_core::types::ServerId;
use kastell_core::{
    CloudProvider, CloudProviderExt, Error, PollSchedule, ProviderConfig, Registry, Result, Secret,
};
use kastell_sim::{SimOptions, SimulatorEntry};

/// How long the tour waits for a snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60 * 60);

fn say(out: &mut dyn Write, text: impl AsRef<str>) -> Result<()> {
    writeln!(out, "{}", text.as_ref()).map_err(|e| Error::io("writing the example output", e))
}

/// Runs the example for the provider of `simulator`: against the real API
/// when the provider's token variable is set, else against the simulator.
pub async fn run(simulator: &SimulatorEntry, out: &mut dyn Write) -> Result<()> {
    let entry = Registry::global().provider(simulator.provider_id)?;
    let (id, token_env) = (entry.id, entry.token_env);
    let (provider, _sim) = match Secret::from_env(token_env) {
        Some(token) => {
            say(out, format!("{token_env} is set: using the real {id} API"))?;
            let config = ProviderConfig {
                token,
                ..ProviderConfig::default()
            };
            ((entry.build)(config)?, None)
        }
        None => {
            let sim = (simulator.start)(SimOptions::default())
                .await
                .map_err(|e| Error::io(format!("starting the {id} simulator"), e))?;
            say(
                out,
                format!(
                    "{token_env} is not set: using the {id} simulator at {}",
                    sim.endpoint()
                ),
            )?;
            let config = ProviderConfig {
                token: Secret::new(sim.read_write_token()),
                endpoint: Some(sim.endpoint()),
                poll: Some(PollSchedule::new(
                    Duration::from_millis(20),
                    Duration::from_millis(200),
                )),
                ..ProviderConfig::default()
            };
            ((entry.build)(config)?, Some(sim))
        }
    };
    let server = pick_server(provider.as_ref()).await?;
    snapshot_tour(provider.as_ref(), &server, out).await
}

async fn pick_server(provider: &dyn CloudProvider) -> Result<ServerId> {
    if let Some(id) = std::env::var("KASTELL_EXAMPLE_SERVER")
        .ok()
        .filter(|s| !s.is_empty())
    {
        return ServerId::new(id);
    }
    provider
        .list_servers()
        .await?
        .into_iter()
        .next()
        .map(|s| s.id)
        .ok_or_else(|| Error::not_found("the account has no servers").with_hint("Create one first"))
}

/// Shows `server`, takes a snapshot and waits for it, lists the server's
/// snapshots, deletes the new one and confirms it is gone.
pub async fn snapshot_tour(
    provider: &dyn CloudProvider,
    server: &ServerId,
    out: &mut dyn Write,
) -> Result<()> {
    let info = provider.get_server(server).await?;
    let ip = info
        .public_ipv4
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "no public IPv4".to_owned());
    say(
        out,
        format!(
            "server {} ({}): {} [{}], {ip}",
            info.name, info.id, info.status, info.raw_status
        ),
    )?;
    if let Ok(cost) = provider.snapshot_cost_estimate(server).await {
        say(
            out,
            format!("a snapshot would cost about {cost} ({})", cost.basis),
        )?;
    }
    let name = format!("kastell-example-{}", std::process::id());
    say(
        out,
        format!("creating snapshot {name} and waiting for it..."),
    )?;
    let snapshot = provider
        .snapshot_and_wait(server, &name, SNAPSHOT_WAIT)
        .await?;
    let size = snapshot
        .size_gb
        .map(|gb| format!("{gb:.2} GB"))
        .unwrap_or_else(|| "size unknown".to_owned());
    say(
        out,
        format!("snapshot {} is {:?} ({size})", snapshot.id, snapshot.status),
    )?;
    let listed = provider.list_snapshots(server).await?;
    say(out, format!("{} snapshot(s) of this server:", listed.len()))?;
    for s in &listed {
        say(out, format!("  {} {} {:?}", s.id, s.name, s.status))?;
    }
    provider.delete_snapshot(server, &snapshot.id).await?;
    let gone = provider
        .list_snapshots(server)
        .await?
        .iter()
        .all(|s| s.id != snapshot.id);
    say(
        out,
        format!(
            "deleted {}; {}",
            snapshot.id,
            if gone {
                "no longer listed"
            } else {
                "STILL LISTED"
            }
        ),
    )?;
    if gone {
        Ok(())
    } else {
        Err(Error::unexpected("the deleted snapshot is still listed"))
    }
}

/// Turns an example's result into an exit code, printing a failure and its
/// hint on stderr.
pub fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = e.hint().map(|h| format!("\nhint: {h}")).unwrap_or_default();
            let _ = writeln!(std::io::stderr(), "error: {e}{hint}");
            ExitCode::FAILURE
        }
    }
}

/// The `main` of a provider example: runs [`run`] for `simulator`'s
/// provider on stdout and turns its result into an exit code, printing a
/// failure and its hint on stderr.
pub async fn main_with(simulator: &SimulatorEntry) -> ExitCode {
    report(run(simulator, &mut std::io::stdout()).await)
}
