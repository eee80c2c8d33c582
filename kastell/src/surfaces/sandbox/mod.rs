//! The sandbox fleet: kastell's real code against servers that exist only
//! on this machine, with no account, no root needed and no network.
//!
//! [`Sandbox::start`] brings up
//! - the API simulator of every cloud provider linked in that has one
//!   (first-party ones with the feature `sandbox`; see [`clouds`]), each a
//!   small seeded account on a loopback port;
//! - private OpenSSH servers listening on several loopback addresses (one
//!   daemon per 15 hosts), each address one fake host ([`FakeHosts`]): a fake filesystem root, a
//!   boot id that changes when the host reboots, and `apt-get`,
//!   `systemctl`, `reboot` and `journalctl` that behave like a Debian
//!   server's;
//! - a fleet store holding one server per provider (its simulator's first
//!   server, reached over SSH at its fake host) and one manually added
//!   server, all bare (or the platform the plan names), with the
//!   sandbox's host key pinned.
//!
//! A reboot through a simulator's API is mirrored onto the fake host (a
//! new boot id, the pending-reboot flag cleared) by a background task, so
//! restart and maintain prove reboots exactly as they do on real servers.
//! [`Sandbox::context`] gives the operations context that points every
//! provider at its simulator with the simulator's token, whatever the
//! process environment holds: the sandbox never reaches a real API.
//!
//! Dropping the sandbox stops everything and removes what it wrote except
//! the store directory, which belongs to the caller. The binaries drop it
//! on `SIGINT` and `SIGTERM` too ([`crate::shutdown`]); what a process
//! killed outright leaves is swept by the next start ([`sweep_stale`]).

pub mod clouds;
mod paas;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{PlatformRoot, Privilege};
use kastell_core::{Error, Registry, Result};
use kastell_ssh::sandbox::hosts::FakeHosts;
use kastell_ssh::sandbox::owner;
use kastell_ssh::sandbox::{LocalSshd, MAX_EXTRA_ADDRESSES, SandboxOptions, login_user_name};
use sha2::{Digest, Sha256};

use crate::env::Env;
use crate::ops::{Context, Timing, confine_platform};
use crate::policy::Surface;
use crate::state::store::{FleetStore, PLATFORM_BARE, ServerRecord, SshSettings};

pub use clouds::Simulator;

/// The name of the sandbox's manually added server.
pub const MANUAL_SERVER: &str = "manual-web";

/// The name of the temporary store `kastell-mcp --sandbox` serves starts
/// with this.
pub const STORE_DIR_PREFIX: &str = "kastell-mcp-sandbox-";

/// The name of the temporary directory of `kastell demo` starts with this.
pub const DEMO_DIR_PREFIX: &str = "kastell-demo-";

/// The name of the temporary store `kastell sandbox` serves starts with
/// this.
pub const CLI_DIR_PREFIX: &str = "kastell-cli-sandbox-";

/// The first loopback address given to a fake host (`127.0.0.1` stays the
/// daemon's own address).
const FIRST_HOST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Spare hosts per simulated provider when the plan says nothing else.
pub const DEFAULT_SPARE_HOSTS: usize = 2;

/// The most hosts one sandbox holds (one sshd listens on all of them).
pub const MAX_HOSTS: usize = 500;

/// How often the simulators' boot counters are compared with the hosts',
/// for a fleet of up to [`BOOT_SYNC_BATCH`] cloud servers; bigger fleets
/// are compared less often (each look advances a simulator's state), up
/// to [`BOOT_SYNC_SLOWEST`].
const BOOT_SYNC_INTERVAL: Duration = Duration::from_millis(20);
const BOOT_SYNC_BATCH: usize = 5;
const BOOT_SYNC_SLOWEST: Duration = Duration::from_millis(250);

/// The boot sync interval for `servers` cloud servers.
fn boot_sync_interval(servers: usize) -> Duration {
    let rounds = u32::try_from(servers.div_ceil(BOOT_SYNC_BATCH).max(1)).unwrap_or(u32::MAX);
    BOOT_SYNC_INTERVAL
        .saturating_mul(rounds)
        .min(BOOT_SYNC_SLOWEST)
}

/// Files every fake host starts with under its root (a subset of the bare
/// platform's default backup paths; the others are reported as missing).
const SEED_FILES: &[(&str, &str)] = &[
    (
        "etc/crontab",
        "SHELL=/bin/sh\n0 3 * * * root /usr/local/bin/nightly-report\n",
    ),
    ("etc/ufw/ufw.conf", "ENABLED=yes\nLOGLEVEL=low\n"),
    (
        "etc/nginx/nginx.conf",
        "events {}\nhttp {\n    server {\n        listen 80;\n        location / { return 200 'ok'; }\n    }\n}\n",
    ),
];

/// The file written into a platform's marker directory on a sandbox host
/// (a directory is created by writing a file in it).
const MARKER_NOTE: &str = "KASTELL-SANDBOX-MARKER";

/// What a sandbox holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPlan {
    /// The providers to simulate (registry ids); `None` for every one
    /// compiled in. Ids not compiled in are ignored.
    pub providers: Option<Vec<String>>,
    /// Servers registered per simulated provider (each its own fake host),
    /// named `<provider>-web` when there is one, `<provider>-web-<n>`
    /// (from 1) when there are more.
    pub servers_per_provider: usize,
    /// Whether to add [`MANUAL_SERVER`], a server without a provider.
    pub manual_server: bool,
    /// The platform every server runs (a registry id); `None` for bare.
    /// Coolify and Dokploy run on the fake hosts' Docker (installed by
    /// their own installers at start, each server with a few apps: a
    /// PostgreSQL database, a MySQL, an application with a volume).
    /// The sandbox confines each platform to its fake host's filesystem
    /// root ([`kastell_core::PlatformContext::root`]) with the login user's
    /// own rights ([`Privilege::LoginUser`]): a platform that resolves its
    /// paths under the root runs on the sandbox.
    pub platform: Option<String>,
    /// Spare fake hosts per simulated provider: empty hosts (a fresh
    /// server's root, a first boot) whose addresses the provider's
    /// simulator hands to the servers it creates, so a server `recover` or
    /// `drill --scratch` creates is reachable over SSH with the sandbox
    /// key. Past them a simulator hands out addresses nothing answers on.
    pub spare_hosts_per_provider: usize,
}

impl Default for SandboxPlan {
    /// Every provider compiled in, one server each, and the manual server.
    fn default() -> Self {
        Self {
            providers: None,
            servers_per_provider: 1,
            manual_server: true,
            platform: None,
            spare_hosts_per_provider: DEFAULT_SPARE_HOSTS,
        }
    }
}

/// One server of the sandbox fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxServer {
    /// Its name in the store.
    pub name: String,
    /// The loopback address of its fake host (its IP in the store).
    pub address: Ipv4Addr,
    /// The provider whose simulator holds it; `None` for the manual one.
    pub provider: Option<&'static str>,
    /// Its id at the provider (or the store's generated id).
    pub server_id: String,
}

/// A running sandbox. Dropping it stops the simulators and the daemon.
pub struct Sandbox {
    // Dropped in this order: the daemons first, then what their sessions use.
    sshds: Vec<LocalSshd>,
    hosts: Arc<FakeHosts>,
    clouds: Arc<Vec<Box<dyn Simulator>>>,
    store: FleetStore,
    servers: Vec<SandboxServer>,
    spares: Vec<Ipv4Addr>,
    platform: &'static str,
    boot_sync: tokio::task::JoinHandle<()>,
    health: Option<paas::HealthEndpoint>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("store", &self.store.path())
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts the sandbox and registers its fleet in a store at `dir`,
    /// which must not hold servers with the same names or addresses yet.
    /// Must run inside a multi-threaded tokio runtime. Refuses (with a
    /// hint) when OpenSSH's server is missing or a port cannot be bound.
    pub async fn start(dir: &Path) -> Result<Self> {
        Self::start_with(dir, &SandboxPlan::default()).await
    }

    /// [`Sandbox::start`] with the fleet `plan` describes (a fleet of 100
    /// servers at one provider for benchmarks, say). Refuses a plan of
    /// more than [`MAX_HOSTS`] hosts, a platform this build does not
    /// register, and one the fake hosts cannot run (one that finds the
    /// first host unhealthy).
    pub async fn start_with(dir: &Path, plan: &SandboxPlan) -> Result<Self> {
        let sandbox = Self::start_without_platform_check(dir, plan).await?;
        if sandbox.health.is_some() {
            sandbox.install_platform().await?;
        }
        sandbox.check_platform().await?;
        Ok(sandbox)
    }

    /// [`Sandbox::start_with`] without the check that the fake hosts can
    /// run the plan's platform: its servers carry the platform's record
    /// and its files (the marker `server add`'s detection looks for)
    /// whether or not the platform would work there. For what needs only
    /// that, such as testing detection; anything that runs operations
    /// wants [`Sandbox::start_with`].
    pub async fn start_without_platform_check(dir: &Path, plan: &SandboxPlan) -> Result<Self> {
        let platform = match plan.platform.as_deref() {
            Some(id) => Registry::global().platform(id)?.id,
            None => PLATFORM_BARE,
        };
        let swept = blocking(|| Ok(sweep_stale())).await?;
        if !swept.is_empty() {
            tracing::warn!(
                count = swept.len(),
                "removed sandbox directories left by kastell processes that are gone"
            );
        }
        let user = blocking(login_user_name).await?;
        let hosts = Arc::new(blocking(move || FakeHosts::create(&user)).await?);
        let health = if paas::runs_on_fake_docker(platform) {
            let docker = hosts.clone();
            blocking(move || paas::enable(&docker)).await?;
            Some(paas::HealthEndpoint::start(Arc::downgrade(&hosts)).await?)
        } else {
            None
        };
        let wanted = |id: &str| {
            plan.providers
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|p| p == id))
        };
        let seeded = plan.servers_per_provider.max(3);
        let clouds = clouds::start(seeded, wanted).await?;
        let servers = fleet(&clouds, plan)?;
        let spares = spare_addresses(servers.len(), clouds.len(), plan)?;
        let addresses: Vec<Ipv4Addr> = servers
            .iter()
            .map(|s| s.address)
            .chain(spares.iter().copied())
            .collect();
        // One daemon per group of hosts: sshd listens on 16 sockets at most.
        let mut sshds = Vec::new();
        for group in addresses.chunks(MAX_EXTRA_ADDRESSES) {
            let options = SandboxOptions {
                path_prefix: vec![hosts.bin_dir()],
                extra_addresses: group.to_vec(),
            };
            sshds.push(blocking(move || LocalSshd::start_with(&options)).await?);
        }
        let store = FleetStore::open(dir)?;
        let mut servers = servers;
        for (n, server) in servers.iter_mut().enumerate() {
            let sshd = &sshds[n / MAX_EXTRA_ADDRESSES];
            seed_host(&hosts, server.address, platform)?;
            let mut record = record_for(server, platform, sshd, &hosts)?;
            if let Some(health) = &health {
                paas::set_health_url(&mut record, &health.url(server.address));
            }
            let record = store.add(record)?;
            server.server_id = record.id;
        }
        // Spare hosts: an empty root and a first boot each, handed out in
        // turn by one simulator (no two simulators share an address).
        let per = plan.spare_hosts_per_provider;
        for (cloud, addresses) in clouds.iter().zip(spares.chunks(per.max(1))) {
            for address in addresses {
                hosts.root(*address)?;
                hosts.reboot(*address, &boot_id(&address.to_string(), 1))?;
            }
            cloud.addresses().add(addresses.iter().copied());
        }
        let clouds = Arc::new(clouds);
        let boot_sync = tokio::spawn(sync_boots(hosts.clone(), clouds.clone(), servers.clone()));
        let sandbox = Self {
            store,
            hosts,
            clouds,
            servers,
            spares,
            platform,
            sshds,
            boot_sync,
            health,
        };
        Ok(sandbox)
    }

    /// Refuses a platform other than bare that cannot run on the fake
    /// hosts, saying so and what to do, before anything works on them: it
    /// must find the first host healthy. (The fake hosts are one login on
    /// this machine with shims for a Debian server's tools and, for
    /// Coolify and Dokploy, a fake Docker over PostgreSQL; a platform that
    /// needs more would otherwise fail at its first backup with whatever
    /// the missing tool says.)
    async fn check_platform(&self) -> Result<()> {
        let Some(server) = self.servers.first() else {
            return Ok(());
        };
        if self.platform == PLATFORM_BARE {
            return Ok(());
        }
        let no_vars: [(&str, &str); 0] = [];
        let ctx = self.context(&Env::from_pairs(no_vars), Surface::Cli);
        let record = self.store.find(&server.name)?.ok_or_else(|| {
            Error::unexpected(format!(
                "sandbox server {} is not in its store",
                server.name
            ))
        })?;
        let platform = ctx.platform_for(&record, ctx.transport_for(&record))?;
        let why = match platform.health().await {
            Ok(health) if health.healthy => return Ok(()),
            Ok(health) => health.detail,
            Err(e) => e.to_string(),
        };
        Err(Error::unsupported(format!(
            "the {} platform does not run on the sandbox's fake hosts: its health check on {} \
             failed ({why})",
            self.platform, server.name
        ))
        .with_hint(
            "The sandbox's hosts are one login on this machine with a Debian server's tools \
             (and a fake Docker for Coolify and Dokploy), without a platform's other services. \
             Leave out --platform (bare), or give one that keeps to its context's root, like \
             examples/acme's cronhost",
        ))
    }

    /// The fleet store holding the sandbox's servers.
    pub fn store(&self) -> &FleetStore {
        &self.store
    }

    /// The servers, cloud ones first (by provider id), then the manual one.
    pub fn servers(&self) -> &[SandboxServer] {
        &self.servers
    }

    /// The spare hosts' addresses, in the order the simulators were given
    /// them ([`SandboxPlan::spare_hosts_per_provider`] each, in provider
    /// id order).
    pub fn spares(&self) -> &[Ipv4Addr] {
        &self.spares
    }

    /// The platform id every server runs (`bare` unless the plan named one).
    pub fn platform(&self) -> &'static str {
        self.platform
    }

    /// The server a tour of the sandbox works on: Hetzner's when it is
    /// compiled in, else the first cloud server, else the manual one.
    /// (A sandbox always has a server: [`Sandbox::start_with`] refuses a
    /// plan without one.)
    pub fn showcase(&self) -> Result<&SandboxServer> {
        let servers = &self.servers;
        servers
            .iter()
            .find(|s| s.provider == Some("hetzner"))
            .or_else(|| servers.iter().find(|s| s.provider.is_some()))
            .or_else(|| servers.first())
            .ok_or_else(|| Error::unexpected("the sandbox has no server"))
    }

    /// The sandbox server named `name`.
    pub fn server(&self, name: &str) -> Option<&SandboxServer> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The simulator of `provider`, when one runs (tests arm its faults,
    /// read what it created and count requests in its log).
    pub fn simulator(&self, provider: &str) -> Option<&dyn Simulator> {
        self.clouds
            .iter()
            .find(|c| c.provider_id() == provider)
            .map(|c| c.as_ref())
    }

    /// The providers whose simulators run, with their API base URLs.
    pub fn endpoints(&self) -> Vec<(&'static str, String)> {
        self.clouds
            .iter()
            .map(|c| (c.provider_id(), c.endpoint()))
            .collect()
    }

    /// The private sshd standing for the first hosts (the only one in a
    /// sandbox of up to [`MAX_EXTRA_ADDRESSES`] servers). A sandbox always
    /// has one: [`Sandbox::start_with`] refuses a plan without servers.
    pub fn sshd(&self) -> &LocalSshd {
        &self.sshds[0]
    }

    /// Every sshd of the sandbox, each standing for up to
    /// [`MAX_EXTRA_ADDRESSES`] hosts, in server order.
    pub fn sshds(&self) -> &[LocalSshd] {
        &self.sshds
    }

    /// The fake hosts (roots, boot ids, shim log).
    pub fn hosts(&self) -> &FakeHosts {
        &self.hosts
    }

    /// How many times the simulator of `server` booted it (`None` for the
    /// manual server).
    pub fn boots(&self, server: &SandboxServer) -> Option<u64> {
        let provider = server.provider?;
        self.clouds
            .iter()
            .find(|c| c.provider_id() == provider)
            .map(|c| c.boots(&server.server_id))
    }

    /// The variables the sandbox sets on top of any environment: each
    /// provider's token variable and endpoint override pointing at its
    /// simulator, and the switch that lets kastell reach loopback
    /// addresses. The values are sandbox tokens, not anyone's secrets.
    pub fn env_overlay(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        vars.insert("KASTELL_ALLOW_PRIVATE_IPS".to_owned(), "true".to_owned());
        vars.insert(
            crate::engine::recover::SANDBOX_ROOTS_VAR.to_owned(),
            self.hosts.roots_dir().display().to_string(),
        );
        for cloud in self.clouds.iter() {
            let id = cloud.provider_id();
            if let Ok(entry) = Registry::global().provider(id) {
                vars.insert(entry.token_env.to_owned(), cloud.read_write_token());
            }
            vars.insert(
                format!("KASTELL_{}_ENDPOINT", id.to_ascii_uppercase()),
                cloud.endpoint(),
            );
        }
        vars
    }

    /// What another `kastell` process needs to work on this sandbox: the
    /// kastell directory holding its store (`KASTELL_DIR`) and
    /// [`Sandbox::env_overlay`] (the simulators' endpoints and tokens,
    /// loopback addresses allowed). `kastell sandbox` prints these as
    /// `export` lines and runs `--shell` with them.
    pub fn cli_environment(&self) -> BTreeMap<String, String> {
        let mut vars = self.env_overlay();
        vars.insert(
            crate::state::paths::KASTELL_DIR_VAR.to_owned(),
            self.store.dir().display().to_string(),
        );
        vars
    }

    /// The operations context over the sandbox fleet for `surface`: `base`
    /// (SAFE_MODE and the rest) with [`Sandbox::env_overlay`] on top, and
    /// timings sized for simulators running at 200×.
    pub fn context(&self, base: &Env, surface: Surface) -> Context {
        let env = base.overlaid(self.env_overlay());
        let mut ctx = Context::new(env, self.store.clone(), surface).with_timing(Timing::sandbox());
        for (id, endpoint) in self.endpoints() {
            ctx = ctx.with_endpoint(id, endpoint);
        }
        ctx
    }
}

/// How long dropping a sandbox waits for its boot sync task to end.
const BOOT_SYNC_STOP: Duration = Duration::from_secs(2);

impl Drop for Sandbox {
    /// Stops the boot sync task and waits (briefly) until it has let go of
    /// the fake hosts, so they are removed before this returns, not
    /// whenever the runtime drops the task (a process that exits right
    /// after, as on a signal, might never get there). Then the fields go:
    /// the sshd daemons, the fake hosts, the simulators.
    fn drop(&mut self) {
        self.boot_sync.abort();
        let deadline = std::time::Instant::now() + BOOT_SYNC_STOP;
        while !self.boot_sync.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Removes what sandboxes of processes that are gone left in the system
/// temporary directory: their sshd and fake hosts directories (stopping a
/// daemon still running from one), their temporary stores
/// ([`STORE_DIR_PREFIX`], [`CLI_DIR_PREFIX`]) and demo directories
/// ([`DEMO_DIR_PREFIX`]).
/// Returns the directories removed. [`Sandbox::start_with`] runs it first.
pub fn sweep_stale() -> Vec<PathBuf> {
    let mut removed = kastell_ssh::sandbox::sweep_stale();
    removed.extend(owner::sweep(
        &[STORE_DIR_PREFIX, DEMO_DIR_PREFIX, CLI_DIR_PREFIX],
        |_| {},
    ));
    removed
}

/// Runs blocking setup work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::unexpected(format!("sandbox setup task failed: {e}")))?
}

/// The servers `plan` asks for: the first seeded servers of each
/// simulator, then the manual one, each with its own loopback address
/// (consecutive from 127.0.0.11).
fn fleet(clouds: &[Box<dyn Simulator>], plan: &SandboxPlan) -> Result<Vec<SandboxServer>> {
    let per_provider = plan.servers_per_provider;
    let total = clouds.len() * per_provider + usize::from(plan.manual_server);
    if total == 0 {
        return Err(Error::invalid_input(
            "this sandbox plan has no server: no provider simulated and no manual server",
        )
        .with_hint("Ask for the manual server or a provider compiled into this build"));
    }
    if total > MAX_HOSTS {
        return Err(Error::invalid_input(format!(
            "a sandbox of {total} hosts is too big; at most {MAX_HOSTS}"
        )));
    }
    let mut servers = Vec::with_capacity(total);
    for cloud in clouds {
        let ids = cloud.server_ids();
        if ids.len() < per_provider {
            return Err(Error::unexpected(format!(
                "the {} simulator seeded {} servers, fewer than {per_provider}",
                cloud.provider_id(),
                ids.len()
            )));
        }
        for (n, id) in ids.into_iter().take(per_provider).enumerate() {
            let name = if per_provider == 1 {
                format!("{}-web", cloud.provider_id())
            } else {
                format!("{}-web-{}", cloud.provider_id(), n + 1)
            };
            servers.push(SandboxServer {
                name,
                address: host_address(servers.len()),
                provider: Some(cloud.provider_id()),
                server_id: id,
            });
        }
    }
    if plan.manual_server {
        servers.push(SandboxServer {
            name: MANUAL_SERVER.to_owned(),
            address: host_address(servers.len()),
            provider: None,
            server_id: format!("manual-{}", std::process::id()),
        });
    }
    Ok(servers)
}

/// The addresses of the spare hosts: `plan.spare_hosts_per_provider` for
/// each of `providers` simulators, after the `fleet` hosts. Refuses a
/// sandbox of more than [`MAX_HOSTS`] hosts in all.
fn spare_addresses(fleet: usize, providers: usize, plan: &SandboxPlan) -> Result<Vec<Ipv4Addr>> {
    let spares = providers.saturating_mul(plan.spare_hosts_per_provider);
    if fleet.saturating_add(spares) > MAX_HOSTS {
        return Err(Error::invalid_input(format!(
            "a sandbox of {fleet} hosts and {spares} spare ones is too big; at most {MAX_HOSTS} in all"
        )));
    }
    Ok((fleet..fleet + spares).map(host_address).collect())
}

/// The loopback address of host number `index` (below [`MAX_HOSTS`]).
fn host_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(FIRST_HOST) + index as u32)
}

/// Writes the seed files under the host's root, with the marker directory
/// by which `server add` detects `platform` when it has one, and gives it
/// a first boot.
fn seed_host(hosts: &FakeHosts, address: Ipv4Addr, platform: &str) -> Result<()> {
    for (path, text) in SEED_FILES {
        hosts.write(address, path, text)?;
    }
    if let Some(detection) = Registry::global().platform(platform)?.detect {
        let marker = format!(
            "{}/{MARKER_NOTE}",
            detection.marker_dir.trim_start_matches('/')
        );
        hosts.write(
            address,
            &marker,
            &format!("This sandbox host runs {platform}: this directory is how it is detected.\n"),
        )?;
    }
    hosts.reboot(address, &boot_id(&address.to_string(), 1))
}

/// The store record of `server`: running `platform` (a registry id),
/// reached at its fake host as the sandbox login with the sandbox key, the
/// sandbox host key pinned, the platform confined to the host's fake root
/// without sudo.
fn record_for(
    server: &SandboxServer,
    platform: &'static str,
    sshd: &LocalSshd,
    hosts: &FakeHosts,
) -> Result<ServerRecord> {
    let mut record = ServerRecord::new(
        server.server_id.clone(),
        server.name.clone(),
        server.address.to_string(),
    );
    record.set_platform(platform);
    record.provider = server.provider.map(str::to_owned);
    record.ssh = Some(SshSettings {
        user: Some(sshd.user().to_owned()),
        port: Some(sshd.port()),
        identity_file: Some(sshd.ed25519_key().display().to_string()),
        host_key: Some(sshd.host_key_fingerprint().to_owned()),
    });
    let root = PlatformRoot::new(&hosts.root(server.address)?.display().to_string())?;
    confine_platform(&mut record, &root, Privilege::LoginUser);
    Ok(record)
}

/// A boot id in the kernel's format, derived from who booted and how
/// many times, so each boot of each host gets a different one.
fn boot_id(seed: &str, boots: u64) -> String {
    let digest = Sha256::digest(format!("{seed}#{boots}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Mirrors every finished reboot in a simulator onto its fake host until
/// the sandbox is dropped.
async fn sync_boots(
    hosts: Arc<FakeHosts>,
    clouds: Arc<Vec<Box<dyn Simulator>>>,
    servers: Vec<SandboxServer>,
) {
    let mut seen: BTreeMap<Ipv4Addr, u64> = BTreeMap::new();
    let clouds_servers = servers.iter().filter(|s| s.provider.is_some()).count();
    let mut ticker = tokio::time::interval(boot_sync_interval(clouds_servers));
    loop {
        ticker.tick().await;
        for server in &servers {
            let Some(provider) = server.provider else {
                continue;
            };
            let Some(cloud) = clouds.iter().find(|c| c.provider_id() == provider) else {
                continue;
            };
            let boots = cloud.boots(&server.server_id);
            let last = seen.insert(server.address, boots);
            if last.is_some_and(|last| last != boots) {
                let id = boot_id(&server.address.to_string(), boots);
                if let Err(e) = hosts.reboot(server.address, &id) {
                    tracing::warn!(server = %server.name, error = %e, "sandbox boot not mirrored");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigger_fleets_are_synced_less_often_within_bounds() {
        assert_eq!(boot_sync_interval(0), BOOT_SYNC_INTERVAL);
        assert_eq!(boot_sync_interval(4), BOOT_SYNC_INTERVAL);
        assert_eq!(boot_sync_interval(10), BOOT_SYNC_INTERVAL * 2);
        assert_eq!(boot_sync_interval(100), BOOT_SYNC_SLOWEST);
    }

    #[test]
    fn boot_ids_look_like_the_kernels_and_differ_per_boot() {
        let first = boot_id("127.0.0.11", 1);
        assert_eq!(first.len(), 36);
        assert_eq!(first.matches('-').count(), 4);
        assert_ne!(first, boot_id("127.0.0.11", 2));
        assert_ne!(first, boot_id("127.0.0.12", 1));
        assert_eq!(first, boot_id("127.0.0.11", 1));
    }
}
