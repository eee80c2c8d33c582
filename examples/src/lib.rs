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

use std::any::Any;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub mod platforms;

use kastell_core::types::ServerId;
use kastell_core::{
    CloudProvider, CloudProviderExt, Error, PollSchedule, ProviderConfig, Result, Secret,
};

/// A provider's simulator, started for an example.
pub struct SimTarget {
    /// The simulator's base URL.
    pub endpoint: String,
    /// A read-write token the simulator accepts.
    pub token: String,
    /// Keeps the simulator running.
    pub keep_alive: Box<dyn Any + Send>,
}

/// How long the tour waits for a snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(60 * 60);

fn say(out: &mut dyn Write, text: impl AsRef<str>) -> Result<()> {
    writeln!(out, "{}", text.as_ref()).map_err(|e| Error::io("writing the example output", e))
}

/// Runs the example for one provider: against the real API when
/// `token_env` is set, else against the simulator `start_sim` starts.
pub async fn run<F>(
    id: &str,
    token_env: &str,
    build: fn(ProviderConfig) -> Result<Arc<dyn CloudProvider>>,
    start_sim: F,
    out: &mut dyn Write,
) -> Result<()>
where
    F: Future<Output = std::io::Result<SimTarget>>,
{
    let (provider, _sim) = match Secret::from_env(token_env) {
        Some(token) => {
            say(out, format!("{token_env} is set: using the real {id} API"))?;
            let config = ProviderConfig {
                token,
                ..ProviderConfig::default()
            };
            (build(config)?, None)
        }
        None => {
            let sim = start_sim
                .await
                .map_err(|e| Error::io(format!("starting the {id} simulator"), e))?;
            say(
                out,
                format!(
                    "{token_env} is not set: using the {id} simulator at {}",
                    sim.endpoint
                ),
            )?;
            let config = ProviderConfig {
                token: Secret::new(sim.token.clone()),
                endpoint: Some(sim.endpoint.clone()),
                poll: Some(PollSchedule::new(
                    Duration::from_millis(20),
                    Duration::from_millis(200),
                )),
                ..ProviderConfig::default()
            };
            (build(config)?, Some(sim.keep_alive))
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

/// Runs [`run`] on stdout and turns its result into an exit code, printing
/// a failure and its hint on stderr.
pub async fn main_with<F>(
    id: &str,
    token_env: &str,
    build: fn(ProviderConfig) -> Result<Arc<dyn CloudProvider>>,
    start_sim: F,
) -> ExitCode
where
    F: Future<Output = std::io::Result<SimTarget>>,
{
    report(run(id, token_env, build, start_sim, &mut std::io::stdout()).await)
}

/// Re-exports the provider example macro needs.
#[doc(hidden)]
pub mod __private {
    pub use kastell_sim::SimOptions;
}

/// The `main` of a provider example: `provider_example!(kastell_hetzner, HetznerSim);`
/// runs [`main_with`] with that crate's id, token variable, constructor and
/// simulator.
#[macro_export]
macro_rules! provider_example {
    ($krate:ident, $sim:ident) => {
        #[tokio::main]
        async fn main() -> std::process::ExitCode {
            $crate::main_with($krate::ID, $krate::TOKEN_ENV, $krate::build, async {
                let sim =
                    $krate::sim::$sim::start($crate::__private::SimOptions::default()).await?;
                Ok($crate::SimTarget {
                    endpoint: sim.endpoint(),
                    token: sim.context().tokens.read_write.clone(),
                    keep_alive: Box::new(sim),
                })
            })
            .await
        }
    };
}
