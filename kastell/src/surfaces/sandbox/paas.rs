//! Coolify and Dokploy on the sandbox: the fake hosts' Docker
//! ([`kastell_ssh::sandbox::paas`]) switched on, the platform installed on
//! every server by its own installer through the real platform code, a
//! few apps seeded, and a health endpoint per host standing for the
//! platform's web UI.
//!
//! The health endpoint is one HTTP listener on `127.0.0.1` (a port of its
//! own): `GET /<address>` answers 200 while the platform's application
//! runs on that host, 503 otherwise. A server's record names its own
//! address there (the `health_url` platform option); a recovered server's
//! record names the new address ([`crate::ops::recover`]'s fresh record
//! rewrites it in the sandbox).

use std::net::Ipv4Addr;
use std::sync::Weak;
use std::time::Duration;

use kastell_core::{Error, RemoteCommand, Result};
use kastell_ssh::sandbox::hosts::FakeHosts;
use kastell_ssh::sandbox::paas::FLAVOURS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::env::Env;
use crate::ops::{Context, PLATFORM_OPTIONS_KEY};
use crate::policy::Surface;
use crate::state::store::ServerRecord;

use super::Sandbox;

/// The platform option naming the URL a PaaS health check asks.
const HEALTH_URL_OPTION: &str = "health_url";

/// How long seeding one host's apps may take.
const SEED_WITHIN: Duration = Duration::from_secs(120);

/// Whether the fake hosts' Docker can run the platform `id`.
pub(crate) fn runs_on_fake_docker(id: &str) -> bool {
    FLAVOURS.iter().any(|(flavour, _)| *flavour == id)
}

/// Switches the fake hosts' Docker on, over the newest PostgreSQL server
/// installed. Refuses (with the hint to install it) when there is none.
pub(crate) fn enable(hosts: &FakeHosts) -> Result<()> {
    let pg = kastell_pg::pick(None).map_err(|e| {
        e.with_hint(
            "The sandbox's Coolify and Dokploy hosts run their databases on this machine's \
             PostgreSQL: apt-get install -y postgresql (or leave out --platform)",
        )
    })?;
    hosts.enable_paas(&pg.bin_dir)
}

/// The per-host health endpoint; dropping it stops the listener.
#[derive(Debug)]
pub(crate) struct HealthEndpoint {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl HealthEndpoint {
    /// Listens on a free loopback port, answering for `hosts` (while they
    /// exist: it does not keep them). Fails when no port can be bound.
    pub(crate) async fn start(hosts: Weak<FakeHosts>) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("binding the sandbox health endpoint", e))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::io("reading the sandbox health endpoint's address", e))?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, hosts.clone()));
            }
        });
        Ok(Self {
            base: format!("http://{address}"),
            task,
        })
    }

    /// The URL that answers for the host at `address`.
    pub(crate) fn url(&self, address: Ipv4Addr) -> String {
        format!("{}/{address}", self.base)
    }
}

impl Drop for HealthEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers one request: 200 when the platform runs on the host the path
/// names, 503 when not, 404 for a path that names no address.
async fn answer(mut stream: tokio::net::TcpStream, hosts: Weak<FakeHosts>) {
    let mut buf = [0u8; 1024];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await
    else {
        return;
    };
    let request = String::from_utf8_lossy(&buf[..n]);
    let address = request
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.trim_start_matches('/').parse::<Ipv4Addr>().ok());
    let status = match address {
        Some(ip) if hosts.upgrade().is_some_and(|h| h.platform_running(ip)) => "200 OK",
        Some(_) => "503 Service Unavailable",
        None => "404 Not Found",
    };
    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(reply.as_bytes()).await;
}

/// Points `record`'s platform health check at `url`.
pub(crate) fn set_health_url(record: &mut ServerRecord, url: &str) {
    let mut options = match record.extra.remove(PLATFORM_OPTIONS_KEY) {
        Some(serde_json::Value::Object(options)) => options,
        _ => serde_json::Map::new(),
    };
    options.insert(HEALTH_URL_OPTION.to_owned(), url.into());
    record
        .extra
        .insert(PLATFORM_OPTIONS_KEY.to_owned(), options.into());
}

impl Sandbox {
    /// Installs the platform on every server with its own installer (the
    /// real `Platform::install` over SSH), then seeds each with its demo
    /// apps, all servers at once. Fails with the first server's error.
    pub(crate) async fn install_platform(&self) -> Result<()> {
        let no_vars: [(&str, &str); 0] = [];
        let ctx = self.context(&Env::from_pairs(no_vars), Surface::Cli);
        let seed = self.hosts().seed_apps_script().display().to_string();
        let mut work = tokio::task::JoinSet::new();
        for server in self.servers() {
            let record = self.store().find(&server.name)?.ok_or_else(|| {
                Error::unexpected(format!(
                    "sandbox server {} is not in its store",
                    server.name
                ))
            })?;
            let ctx = ctx.clone();
            let seed = seed.clone();
            work.spawn(async move { install_one(&ctx, &record, &seed).await });
        }
        while let Some(done) = work.join_next().await {
            done.map_err(|e| Error::unexpected(format!("a sandbox install task failed: {e}")))??;
        }
        Ok(())
    }
}

/// Installs the platform on the server of `record` and runs `seed` there.
async fn install_one(ctx: &Context, record: &ServerRecord, seed: &str) -> Result<()> {
    let transport = ctx.transport_for(record);
    let platform = ctx.platform_for(record, transport.clone())?;
    platform.install(ctx.timing.update).await?;
    let out = transport
        .exec(&RemoteCommand::template("sh {}", &[seed])?, SEED_WITHIN)
        .await?;
    if !out.success() {
        return Err(Error::unexpected(format!(
            "seeding the apps of sandbox server {} failed: {}",
            record.name,
            out.stderr_text().trim()
        )));
    }
    Ok(())
}
