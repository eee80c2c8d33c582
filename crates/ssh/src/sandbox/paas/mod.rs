//! The fake Docker of the sandbox's Coolify and Dokploy hosts, and the
//! shell the test shims share with it.
//!
//! The scripts here are the one model of a PaaS host kastell has: the
//! testkit's `PaasShim` (one host per shim directory, over a test's
//! PostgreSQL cluster) and the sandbox's fake hosts (many hosts behind one
//! sshd, told apart by the address a session reached) both run them.
//!
//! On the sandbox ([`super::hosts::FakeHosts::enable_paas`]) a host has no
//! Docker until the platform's installer ran on it (fetched by the fake
//! `curl` from the platform's URL, as kastell's `Platform::install` does):
//! the installer starts the host's own PostgreSQL cluster (a copy of one
//! made by `initdb` on first use, on a unix socket only), creates the
//! platform's role and database and writes its files. The platform then
//! deploys a resource its tables record only when asked: the seeder's demo
//! apps at once, any other through the platform's API on the host's
//! 127.0.0.1 (the `curl` shim, with a token the platform's own table must
//! hold: a Sanctum personal access token for Coolify, a better-auth API key
//! for Dokploy). A deploy gives the resource its container (a PostgreSQL
//! its role and database in the host's cluster, a MySQL the fake tools of
//! [`APPTOOL`], an application its Docker volumes under the host's root),
//! its data empty; so a host recovered from a backup has no app containers
//! after its platform's database is back, as a real fresh host has none
//! until the platform deploys them. Everything read back from the tables
//! is checked to be a plain name before it names a file or a database.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kastell_core::env::scrubbed_command;
use kastell_core::{Error, Result};

use super::files::{mkdir, write};
use super::hosts::{FakeHosts, PRELUDE};

/// Functions every shim sources: logging, failure injection, the state
/// file (`state_get`, `state_set`), `shim_bump`.
pub const LIB: &str = include_str!("lib.sh");
/// The `docker` subset the platforms use (body of a shim; its header sets
/// `FLAVOUR`, `PG_*`, `APP_*`, `DB_*`, `SHIM_APPTOOLS`).
pub const DOCKER: &str = include_str!("docker.sh");
/// The users' app containers of the fake `docker` (sourced before
/// [`DOCKER`]).
pub const DOCKER_APPS: &str = include_str!("docker_apps.sh");
/// The fake database tools of app containers (MySQL's, MariaDB's,
/// MongoDB's and `redis-cli`), chosen by the name they are run as.
pub const APPTOOL: &str = include_str!("apptool.sh");
/// The fake database tools [`APPTOOL`] answers to.
pub const APPTOOLS: &[&str] = &[
    "mysqldump",
    "mysql",
    "mysqladmin",
    "mariadb-dump",
    "mariadb",
    "mariadb-admin",
    "mongodump",
    "mongorestore",
    "mongosh",
    "redis-cli",
];
/// `curl`: the platforms' installer URLs answered with a fake installer
/// from `$SHIM_STATE`, every other URL a 404.
pub const CURL: &str = include_str!("curl.sh");
/// The platform's HTTP API on a sandbox host's 127.0.0.1, as kastell
/// calls it with `curl` on the server: the token checked against the
/// platform's own table, a deploy creating the resource's container
/// (sourced by the sandbox's `curl` shim).
pub(crate) const API: &str = include_str!("api.sh");
/// The sandbox's fake PaaS host: its installer, deployment from the
/// platform's records and the demo apps (sourced by the sandbox's shims).
pub(crate) const HOST: &str = include_str!("host.sh");

/// The PostgreSQL database (and role) of the demo apps' `blog db`, with
/// tables `posts` (3 rows) and `tags` (250 rows).
pub const DEMO_DATABASE: &str = "blog";
/// The key of the demo apps' MySQL (`shop db`), whose data is the file
/// `mysql.sql` ([`FakeHosts::app_data_file`]).
pub const DEMO_MYSQL_APP: &str = "myshop0k2m9x";
/// The Docker volume of the demo apps' application (`site`): an
/// `index.html`, a 64 KiB `img/2026/photo.jpg` and an empty `img/empty`.
pub const DEMO_VOLUME: &str = "apsite0k2m9x-uploads";

/// The platforms the sandbox's fake Docker can run, as their registry ids
/// and the names their installers greet with.
pub const FLAVOURS: [(&str, &str); 2] = [("coolify", "Coolify"), ("dokploy", "Dokploy")];

/// How long stopping one host's database may take.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// The lines after [`PRELUDE`] that put a shim in the state of the host
/// its session reached.
const HOST_STATE: &str = "PAAS=\"$STATE/paas\"\nSHIM_STATE=\"$PAAS/hosts/$(host_ip)\"\n";

/// Where the sandbox's PaaS model keeps its state: `state/paas`.
fn paas_dir(hosts: &FakeHosts) -> PathBuf {
    hosts.state_dir().join("paas")
}

/// The state of the host at `address` (present once its platform is
/// installed).
fn host_dir(hosts: &FakeHosts, address: Ipv4Addr) -> PathBuf {
    paas_dir(hosts).join("hosts").join(address.to_string())
}

impl FakeHosts {
    /// Gives the fake hosts Docker as Coolify and Dokploy use it (see the
    /// module docs): the `docker` and `curl` shims, the platforms' fake
    /// installers and the app containers' database tools, over the
    /// PostgreSQL server binaries in `pg_bin` (`initdb`, `pg_ctl`,
    /// `psql`, `pg_dump`, ...). No host has the platform yet: run its
    /// installer there ([`FakeHosts::seed_apps_script`] then gives it
    /// apps). Fails when a file cannot be written.
    pub fn enable_paas(&self, pg_bin: &Path) -> Result<()> {
        let dir = paas_dir(self);
        for sub in ["hosts", "common/fail", "apptools"] {
            mkdir(&dir.join(sub), 0o755)?;
        }
        write(&dir.join("lib.sh"), LIB, 0o644)?;
        write(&dir.join("host.sh"), HOST, 0o644)?;
        write(&dir.join("pg-bin"), &pg_bin.to_string_lossy(), 0o644)?;
        write(&dir.join("common/commands.log"), "", 0o644)?;
        let shim = |name: &str, body: &str| {
            format!("{PRELUDE}{HOST_STATE}. \"$PAAS/lib.sh\"\nshim_begin {name} \"$@\"\n{body}")
        };
        let docker = format!(
            "{PRELUDE}{HOST_STATE}if [ ! -f \"$SHIM_STATE/vars\" ]; then echo 'sh: 1: docker: not found' >&2; exit 127; fi\n\
             . \"$SHIM_STATE/vars\"\n. \"$PAAS/lib.sh\"\nshim_begin docker \"$@\"\n{DOCKER_APPS}\n. \"$PAAS/host.sh\"\n{DOCKER}"
        );
        write(
            &self.bin_dir().join("docker"),
            &self.render(&docker)?,
            0o755,
        )?;
        write(&dir.join("api.sh"), API, 0o644)?;
        // A request to 127.0.0.1 is the host's own platform API (api.sh);
        // every other URL is the shared installer fetcher.
        let curl = format!(
            "{PRELUDE}PAAS=\"$STATE/paas\"\n\
             case \" $* \" in *' http://127.0.0.1:'*)\n\
             SHIM_STATE=\"$PAAS/hosts/$(host_ip)\"\n\
             if [ ! -f \"$SHIM_STATE/vars\" ]; then echo 'curl: (7) Failed to connect to 127.0.0.1: Connection refused' >&2; exit 7; fi\n\
             . \"$SHIM_STATE/vars\"\n. \"$PAAS/lib.sh\"\nshim_log curl \"$@\"\n{DOCKER_APPS}\n. \"$PAAS/host.sh\"\n. \"$PAAS/api.sh\"\npaas_api \"$@\" ;;\n\
             esac\n\
             SHIM_STATE=\"$PAAS/common\"\n. \"$PAAS/lib.sh\"\nshim_begin curl \"$@\"\n{CURL}"
        );
        write(&self.bin_dir().join("curl"), &self.render(&curl)?, 0o755)?;
        for tool in APPTOOLS {
            let text = self.render(&shim("\"${0##*/}\"", APPTOOL))?;
            write(&dir.join("apptools").join(tool), &text, 0o755)?;
        }
        for (id, product) in FLAVOURS {
            let installer = format!(
                "{}PAAS=\"$STATE/paas\"\nFLAVOUR={id}\nPRODUCT={product}\n. \"$PAAS/host.sh\"\npaas_install \"$@\"\n",
                PRELUDE.replacen("#!/bin/sh", "#!/bin/bash", 1)
            );
            let path = dir.join("common").join(format!("{id}-install.sh"));
            write(&path, &self.render(&installer)?, 0o644)?;
        }
        let seed = format!(
            "{PRELUDE}{HOST_STATE}if [ ! -f \"$SHIM_STATE/vars\" ]; then echo \"the platform is not installed on $(host_ip)\" >&2; exit 1; fi\n\
             . \"$SHIM_STATE/vars\"\n. \"$PAAS/lib.sh\"\n{DOCKER_APPS}\n. \"$PAAS/host.sh\"\npaas_seed\n"
        );
        write(&dir.join("seed-apps"), &self.render(&seed)?, 0o755)?;
        self.hand_over()
    }

    /// The script that gives the host a session reached its demo apps (a
    /// PostgreSQL database with rows, a MySQL with data and an application
    /// with files in a volume, recorded in the platform's tables): run it
    /// there over SSH once the platform is installed.
    pub fn seed_apps_script(&self) -> PathBuf {
        paas_dir(self).join("seed-apps")
    }

    /// Arms a failure of the next call of the hosts' shared fake tools
    /// (`curl`, which fetches a platform's installer) whose logged line
    /// holds `key` as whole words: it prints `stderr` and exits with
    /// `code` instead of running. Consumed by the first call it matches.
    /// Refuses a code of 0 or a key with a line break.
    pub fn fail_shared(&self, key: &str, code: u8, stderr: &str) -> Result<()> {
        if code == 0 || key.contains('\n') || key.trim().is_empty() {
            return Err(Error::invalid_input(
                "an injected failure needs a one-line key and an exit code of 1 to 255",
            ));
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = paas_dir(self).join("common/fail");
        let tmp = dir.join(format!(".{nanos:024}"));
        write(&tmp, &format!("{key}\n{code}\n{stderr}\n"), 0o666)?;
        fs::rename(&tmp, dir.join(format!("{nanos:024}.flag")))
            .map_err(|e| Error::io("arming an injected failure", e))
    }

    /// Arms a fault of every host's fake Docker: an app container started
    /// again (as a restore starts it after swapping its volume in) appends
    /// a line to `file` (a path inside the volume) in each of its volumes,
    /// as an app that rewrites its data when it starts would. Refuses a
    /// path that is absolute or climbs out.
    pub fn drift_on_start(&self, file: &str) -> Result<()> {
        let plain = !file.is_empty()
            && !file.starts_with('/')
            && file
                .split('/')
                .all(|p| !p.is_empty() && p != ".." && p != "." && !p.contains('\n'));
        if !plain {
            return Err(Error::invalid_input(format!(
                "{file:?} is not a path inside a volume"
            )));
        }
        write(&paas_dir(self).join("common/drift"), file, 0o644)
    }

    /// Arms a fault of every host's platform API: a deploy of the app or
    /// database resource `key` answers HTTP 500 (its message carrying a
    /// terminal escape, as a hostile server's might) and creates nothing.
    /// Refuses a key that is not a plain name.
    pub fn fail_deploy(&self, key: &str) -> Result<()> {
        if !kastell_core::types::is_app_key(key) {
            return Err(Error::invalid_input(format!("{key:?} is not an app key")));
        }
        let path = paas_dir(self).join("common/deploy-fail");
        let mut keys = fs::read_to_string(&path).unwrap_or_default();
        keys.push_str(key);
        keys.push('\n');
        write(&path, &keys, 0o644)
    }

    /// Gives every host's app containers of app `key` (its Swarm or
    /// compose service) a Docker health check whose status is `health`,
    /// from the first time one is inspected: `healthy`, `unhealthy`,
    /// `starting` (for ever) or `starting N VERDICT` (starting for N
    /// looks, then `healthy` or `unhealthy`). `None` gives containers
    /// made from then on none; one already inspected keeps its own.
    /// Refuses a key that is not a plain name and any other status.
    pub fn set_app_health(&self, key: &str, health: Option<&str>) -> Result<()> {
        let plain = kastell_core::types::is_app_key(key);
        let verdict = |w: &str| matches!(w, "healthy" | "unhealthy");
        let words: Vec<&str> = health.unwrap_or_default().split(' ').collect();
        let known = match words.as_slice() {
            [""] => health.is_none(),
            [w] => verdict(w) || *w == "starting",
            ["starting", n, v] => n.parse::<u32>().is_ok() && verdict(v),
            _ => false,
        };
        if !plain || !known {
            return Err(Error::invalid_input(format!(
                "{key:?} with health {health:?} is not an app key and a status of healthy, \
                 unhealthy, starting or `starting N healthy|unhealthy`"
            )));
        }
        let path = paas_dir(self).join("common/health");
        let mut lines: Vec<String> = fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').next() != Some(key))
            .map(str::to_owned)
            .collect();
        if let Some(health) = health {
            lines.push(format!("{key} {health}"));
        }
        let tmp = path.with_extension("new");
        write(&tmp, &(lines.join("\n") + "\n"), 0o644)?;
        fs::rename(&tmp, &path).map_err(|e| Error::io("arming a health status", e))
    }

    /// Whether the platform's application runs on the host at `address`
    /// (false where it is not installed).
    pub fn platform_running(&self, address: Ipv4Addr) -> bool {
        fs::read_to_string(host_dir(self, address).join("state"))
            .is_ok_and(|state| state.lines().any(|l| l == "app=running"))
    }

    /// Runs `sql` on database `database` of the host's own cluster as its
    /// superuser and returns what `psql -At` printed. Refuses a host
    /// without the platform and fails with `psql`'s error.
    pub fn psql(&self, address: Ipv4Addr, database: &str, sql: &str) -> Result<String> {
        let dir = host_dir(self, address);
        let bin = fs::read_to_string(paas_dir(self).join("pg-bin"))
            .map_err(|e| Error::io("reading the sandbox's PostgreSQL location", e))?;
        if !dir.join("vars").is_file() {
            return Err(Error::invalid_state(format!(
                "sandbox host {address} runs no platform"
            )));
        }
        let out = scrubbed_command(Path::new(bin.trim()).join("psql"))
            .arg("-h")
            .arg(dir.join("pg/run"))
            .args(["-p", "5432", "-U", "postgres", "-d", database, "-qAt"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| Error::io("running psql", e))?;
        if !out.status.success() {
            return Err(Error::unexpected(format!(
                "psql on sandbox host {address}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The file `file` of the data of app `key`'s container on the host at
    /// `address` (`mysql.sql` of a MySQL), `None` when it has no such
    /// container.
    pub fn app_data_file(&self, address: Ipv4Addr, key: &str, file: &str) -> Option<PathBuf> {
        let apps = fs::read_dir(host_dir(self, address).join("apps")).ok()?;
        apps.flatten()
            .map(|e| e.path())
            .find(|dir| fs::read_to_string(dir.join("service")).is_ok_and(|s| s.trim() == key))
            .map(|dir| dir.join("data").join(file))
    }

    /// Destroys the host at `address`: its platform's database stopped,
    /// its platform state and every file under its root removed (the root
    /// itself stays, empty), as a server deleted at its provider.
    pub fn destroy(&self, address: Ipv4Addr) -> Result<()> {
        let dir = host_dir(self, address);
        stop_database(&dir.join("pg/data"));
        for path in [dir, self.root(address)?] {
            match fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
            }
        }
        self.root(address).map(drop)
    }
}

/// Stops every host's database cluster under the fake hosts' `state`
/// directory (best effort: what cannot be stopped stops by itself once
/// its directory is gone).
pub(crate) fn stop_databases(state: &Path) {
    let Ok(hosts) = fs::read_dir(state.join("paas/hosts")) else {
        return;
    };
    for host in hosts.flatten() {
        stop_database(&host.path().join("pg/data"));
    }
}

/// Stops the cluster whose data directory is `data` (immediate shutdown,
/// as a server losing power), waiting up to [`STOP_WITHIN`].
fn stop_database(data: &Path) {
    let Some(pid) = fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if rustix::process::kill_process(pid, rustix::process::Signal::QUIT).is_err() {
        return;
    }
    let started = Instant::now();
    while started.elapsed() < STOP_WITHIN
        && rustix::process::test_kill_process(pid).is_ok()
        && data.join("postmaster.pid").exists()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}
