//! # kastell-pg: a throwaway local PostgreSQL cluster
//!
//! [`Cluster::start`] runs `initdb` into a fresh temporary directory,
//! starts the server listening **only** on a unix socket in a directory
//! every user can reach, and waits until `pg_isready` answers.
//! Authentication is `trust` for the `postgres` superuser; nothing listens
//! on TCP. Dropping the value stops the server (`pg_ctl stop -m fast`) and
//! removes the directory.
//!
//! The server binaries come from the distribution's layout,
//! `/usr/lib/postgresql/<major>/bin`: [`installed`] lists them and
//! [`pick`] chooses one for a dump of a given major version (the same
//! major, else the nearest newer one: a newer server restores an older
//! dump, never the reverse).
//!
//! Every program it runs gets only `PATH`, `LANG=C` and what it needs
//! (`LC_ALL=C`, `PGHOST`...), never this process's environment.
//!
//! As root, `initdb`, the server and `pg_ctl` run as the `postgres` OS user
//! (through `runuser`); as any other user they run directly. The server is a
//! child of this process (not daemonised by `pg_ctl start`), so stopping it
//! reaps every process it started: nothing is left behind, not even a zombie.
//!
//! kastell's restore drills restore dumps into one; its tests run the
//! platforms' databases on one.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kastell_core::env::allowlisted_command;
use kastell_core::{Error, ErrorKind, Result};

const PG_ROOT: &str = "/usr/lib/postgresql";
const INSTALL_HINT: &str = "Install PostgreSQL's server: apt-get install -y postgresql";
const READY_WITHIN: Duration = Duration::from_secs(30);
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// A running private PostgreSQL cluster. Dropping it stops the server.
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    server_bin: Installed,
    port: u16,
    server: Option<Child>,
}

/// One installed PostgreSQL server version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Its major version (`15`).
    pub major: u32,
    /// Its bin directory (`/usr/lib/postgresql/15/bin`).
    pub bin_dir: PathBuf,
}

fn setup_error(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("local PostgreSQL: {what}"))
        .with_provider("pg-cluster")
        .with_hint(INSTALL_HINT)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Every `/usr/lib/postgresql/<major>/bin` that holds a server, oldest
/// first. Fails (`Unavailable`, with how to install one) when there is
/// none.
pub fn installed() -> Result<Vec<Installed>> {
    let entries = fs::read_dir(PG_ROOT)
        .map_err(|e| setup_error(format!("{PG_ROOT} is not readable ({e})")))?;
    let mut found: Vec<Installed> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let major = name.split('.').next()?.parse::<u32>().ok()?;
            let bin_dir = entry.path().join("bin");
            bin_dir
                .join("postgres")
                .is_file()
                .then_some(Installed { major, bin_dir })
        })
        .collect();
    found.sort_by_key(|i| i.major);
    if found.is_empty() {
        return Err(setup_error(format!(
            "no PostgreSQL server under {PG_ROOT}/<version>/bin"
        )));
    }
    Ok(found)
}

/// The server to restore a dump of major version `major` into: that
/// version, else the nearest newer one; `None`: the newest. Refuses
/// (`Unavailable`) when only older servers are installed, naming the
/// package to install.
pub fn pick(major: Option<u32>) -> Result<Installed> {
    let all = installed()?;
    let chosen = match major {
        None => all.last().cloned(),
        Some(want) => all.iter().find(|i| i.major >= want).cloned(),
    };
    chosen.ok_or_else(|| {
        let have: Vec<String> = all.iter().map(|i| i.major.to_string()).collect();
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "the dump is from PostgreSQL {}, newer than every server installed here ({})",
                major.unwrap_or_default(),
                have.join(", ")
            ),
        )
        .with_provider("pg-cluster")
        .with_hint(format!(
            "Install PostgreSQL {0}'s server (apt-get install -y postgresql-{0})",
            major.unwrap_or_default()
        ))
    })
}

fn free_port() -> Result<u16> {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| setup_error(format!("cannot pick a free port: {e}")))
}

/// Runs `command` to completion; fails with its stderr when it exits non-zero.
fn run(mut command: Command, what: &str) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| setup_error(format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(setup_error(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Cluster {
    /// Initialises and starts a private cluster on the newest server
    /// installed.
    ///
    /// Fails ([`ErrorKind::Unavailable`], with the hint
    /// `apt-get install -y postgresql`) when PostgreSQL is not installed,
    /// when `initdb` fails or when the server does not become ready within
    /// 30 s (the message carries the server log).
    pub fn start() -> Result<Self> {
        Self::start_on(pick(None)?)
    }

    /// [`Cluster::start`] on the server `server_bin`.
    pub fn start_on(server_bin: Installed) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kastell-pg-")
            .tempdir()
            .map_err(|e| Error::io("creating the cluster directory", e))?;
        let base = dir.path();
        fs::create_dir(base.join("run"))
            .map_err(|e| Error::io("creating the socket directory", e))?;
        for path in [base.to_path_buf(), base.join("run")] {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io("opening the cluster directory", e))?;
        }
        if is_root() {
            let mut chown = allowlisted_command("chown");
            chown.args(["-R", "postgres:"]).arg(base);
            run(chown, "chown to the postgres user")?;
        }
        let mut cluster = Self {
            dir,
            server_bin,
            port: 0,
            server: None,
        };
        let mut initdb = cluster.as_postgres("initdb");
        initdb
            .arg("-D")
            .arg(cluster.data_dir())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"]);
        run(initdb, "initdb")?;

        let mut last = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| setup_error("the server did not start")))
    }

    /// The server's major version.
    pub fn major(&self) -> u32 {
        self.server_bin.major
    }

    /// A command for the client program `program` (`psql`, `pg_restore`)
    /// of the cluster's version, with `PGHOST`, `PGPORT` and `PGUSER` set
    /// to reach the cluster as its superuser, in an environment of `PATH`
    /// and `LANG=C` only (nothing of this process's, no secret).
    pub fn client(&self, program: &str) -> Command {
        let mut command = allowlisted_command(self.server_bin.bin_dir.join(program));
        command
            .env("PGHOST", self.socket_dir())
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("LC_ALL", "C");
        command
    }

    /// Starts the server as a child and waits for `pg_isready`.
    fn launch(&mut self) -> Result<()> {
        let log = fs::File::create(self.log_path())
            .map_err(|e| Error::io("creating the server log", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("opening the server log", e))?;
        let mut server = self.as_postgres("postgres");
        server
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.socket_dir())
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "unix_socket_permissions=0777",
            ])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=16MB"])
            .args(["-c", "max_connections=40"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut child = server
            .spawn()
            .map_err(|e| setup_error(format!("cannot start the server: {e}")))?;
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(setup_error(format!(
                    "the server exited with {status}: {}",
                    self.log().trim()
                )));
            }
            if self.is_ready() {
                self.server = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.server = Some(child);
        self.stop_quietly();
        Err(setup_error(format!(
            "the server was not ready within {}s: {}",
            READY_WITHIN.as_secs(),
            self.log().trim()
        )))
    }

    /// A command for `program` from the cluster's bin dir, run as the
    /// `postgres` OS user when this process is root.
    fn as_postgres(&self, program: &str) -> Command {
        let binary = self.server_bin.bin_dir.join(program);
        let mut command = if is_root() {
            let mut c = allowlisted_command("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            allowlisted_command(binary)
        };
        command.current_dir(self.dir.path());
        command.env("LC_ALL", "C");
        command
    }

    /// Whether `pg_isready` reports the server accepting connections.
    pub fn is_ready(&self) -> bool {
        allowlisted_command(self.server_bin.bin_dir.join("pg_isready"))
            .arg("-q")
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The directory holding the server's unix socket (`-h` for clients,
    /// `PGHOST`); reachable by every OS user.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The port number in the socket's name (`-p` for clients, `PGPORT`).
    /// Nothing listens on TCP.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PostgreSQL bin directory used (`/usr/lib/postgresql/<ver>/bin`).
    pub fn bin_dir(&self) -> &Path {
        &self.server_bin.bin_dir
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// What the server has logged so far (for diagnosing failures).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The postmaster's process id while the server runs (from
    /// `postmaster.pid`), `None` once stopped.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref()?;
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Runs `sql` (any number of statements, fed on stdin) in database `db`
    /// as the `postgres` superuser with `psql -X -A -t -q -v ON_ERROR_STOP=1`
    /// and returns its stdout without trailing white space.
    ///
    /// Fails with [`ErrorKind::CommandFailed`] (psql's stderr in the message)
    /// when any statement fails, and with [`ErrorKind::InvalidState`] when
    /// the cluster was stopped.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        self.psql_as("postgres", db, sql)
    }

    /// Runs `sql` like [`Cluster::psql`], connected as the role `user`
    /// (which must exist and may log in): SQL that must not run as the
    /// superuser, such as queries naming what a dump created.
    pub fn psql_as(&self, user: &str, db: &str, sql: &str) -> Result<String> {
        if self.server.is_none() {
            return Err(Error::invalid_state(
                "local PostgreSQL: the cluster is stopped",
            ));
        }
        let mut child = allowlisted_command(self.server_bin.bin_dir.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| setup_error(format!("cannot run psql: {e}")))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::unexpected("psql has no stdin"))?;
        let script = sql.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io("waiting for psql", e))?;
        let written = writer.join();
        if !out.status.success() {
            return Err(Error::new(
                ErrorKind::CommandFailed,
                format!(
                    "psql on {db} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            )
            .with_hint("Check the SQL; every statement must succeed (ON_ERROR_STOP=1)"));
        }
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::io("feeding psql", e)),
            Err(_) => return Err(Error::unexpected("the psql feeder thread panicked")),
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
    }

    /// Runs `sql` like [`Cluster::psql`] and discards its output.
    pub fn execute(&self, db: &str, sql: &str) -> Result<()> {
        self.psql(db, sql).map(drop)
    }

    /// Stops the server (`pg_ctl stop -m fast`) and reaps it. Idempotent.
    ///
    /// Fails ([`ErrorKind::Unavailable`]) when `pg_ctl` fails or the server
    /// outlives 15 s; the server is then killed, so no process is left.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.server.take() else {
            return Ok(());
        };
        let mut pg_ctl = self.as_postgres("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "10", "stop"]);
        let stopped = run(pg_ctl, "pg_ctl stop").map(drop);
        if wait_exit(&mut child, STOP_WITHIN) {
            return stopped;
        }
        // Still running: shut down without a checkpoint, then kill.
        let mut immediate = self.as_postgres("pg_ctl");
        immediate
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "5", "stop"]);
        let _ = run(immediate, "pg_ctl stop -m immediate");
        if wait_exit(&mut child, Duration::from_secs(5)) {
            return stopped;
        }
        let _ = child.kill();
        let _ = child.wait();
        stopped.and(Err(setup_error(format!(
            "the server did not stop within {}s and was killed",
            STOP_WITHIN.as_secs()
        ))))
    }

    fn stop_quietly(&mut self) {
        let _ = self.stop();
    }
}

/// Waits up to `limit` for `child` to exit (and reaps it).
fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => return false,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_quietly();
    }
}
