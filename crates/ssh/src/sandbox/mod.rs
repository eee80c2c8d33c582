//! A private OpenSSH server on loopback, for the sandbox and for tests.
//!
//! [`LocalSshd::start`] generates fresh host and client keys in a temporary
//! directory, writes a locked-down `sshd_config` listening on `127.0.0.1`
//! on a free port, starts `/usr/sbin/sshd -D -e` and waits until it answers.
//! The daemon is stopped and the directory removed when the value is dropped.
//!
//! The daemon cannot outlive this process, however it ends: sshd runs under
//! a guardian process ([`guardian`]) that stops it and removes its
//! directory when this process disappears, even on `SIGKILL`. The
//! directory records its owner ([`owner`]), and [`sweep_stale`] removes the
//! sandbox directories (and stops the daemons) of owners that are gone.
//!
//! As root it logs in a dedicated user, `kastell-sandbox`, whose shell is
//! `/bin/sh` (created on first use), so root's shell start-up files cannot
//! slow or break commands. As any other user it logs in that same user.
//!
//! Whatever the umask, nothing it makes is writable by another user: its
//! files and directories get explicit modes ([`files`]): keys, config, log
//! and owner file 0600, the directory, public keys and `authorized_keys`
//! 0755/0644 (the login user reads them), and sshd (with its sessions)
//! runs under `umask 022`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kastell_core::env::scrubbed_command;
use kastell_core::{Error, ErrorKind, Result};

use crate::config::SshConfig;

pub mod files;
mod guardian;
pub mod hosts;
pub mod owner;
pub mod paas;
mod process;

use guardian::Guardian;
use process::{children_of, freeze, kill};

/// The login user the sandbox creates when running as root.
pub const SANDBOX_USER: &str = "kastell-sandbox";
const SSHD: &str = "/usr/sbin/sshd";

/// The name of every sandbox sshd directory starts with this.
pub const SSHD_DIR_PREFIX: &str = "kastell-sshd-";

/// Serialises user creation between threads of one process.
static USER_SETUP: Mutex<()> = Mutex::new(());

/// How to start a [`LocalSshd`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxOptions {
    /// Directories put first on the `PATH` of every session (where test
    /// shims for `docker`, `systemctl` or `apt-get` live).
    pub path_prefix: Vec<PathBuf>,
    /// Loopback addresses sshd listens on as well as `127.0.0.1` (on the
    /// same port), so one daemon can stand for several hosts: a session
    /// tells which address it reached from `$SSH_CONNECTION`. Only
    /// addresses in `127.0.0.0/8` are accepted, at most
    /// [`MAX_EXTRA_ADDRESSES`].
    pub extra_addresses: Vec<Ipv4Addr>,
}

/// A running private sshd. Dropping it stops the daemon.
#[derive(Debug)]
pub struct LocalSshd {
    dir: tempfile::TempDir,
    guardian: Option<Guardian>,
    port: u16,
    user: String,
    home: PathBuf,
    host_key_fingerprint: String,
}

fn setup_error(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("sandbox sshd: {what}"))
        .with_provider("sandbox")
        .with_hint("Install OpenSSH's server: apt-get install -y openssh-server")
}

fn run_tool(program: &str, args: &[&str]) -> Result<String> {
    let out = scrubbed_command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| setup_error(format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        return Err(setup_error(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn keygen(path: &Path, kind: &str) -> Result<()> {
    let path_text = path.to_string_lossy();
    let mut args = vec![
        "-q",
        "-t",
        kind,
        "-N",
        "",
        "-C",
        "kastell-sandbox",
        "-f",
        &path_text,
    ];
    if kind == "rsa" {
        args.extend(["-b", "3072"]);
    }
    run_tool("ssh-keygen", &args)?;
    // ssh-keygen writes the public key with the umask's mode.
    files::set_mode(path, 0o600)?;
    files::set_mode(&path.with_extension("pub"), 0o644)
}

/// The `SHA256:...` fingerprint of a public key file, via `ssh-keygen -lf`.
pub fn fingerprint_of(public_key: &Path) -> Result<String> {
    let out = run_tool(
        "ssh-keygen",
        &["-l", "-E", "sha256", "-f", &public_key.to_string_lossy()],
    )?;
    out.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .ok_or_else(|| setup_error(format!("unexpected ssh-keygen output: {out}")))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Makes sure the login user exists and returns (name, home).
/// The user a [`LocalSshd`] logs in: [`SANDBOX_USER`] when running as root
/// (created on first use), else the current user. Lets shims and files be
/// prepared for that user before the daemon starts.
pub fn login_user_name() -> Result<String> {
    login_user().map(|(name, _)| name)
}

fn login_user() -> Result<(String, PathBuf)> {
    if !is_root() {
        let name = run_tool("id", &["-un"])?.trim().to_owned();
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        return Ok((name, home));
    }
    let _guard = USER_SETUP.lock().unwrap_or_else(|p| p.into_inner());
    if run_tool("id", &["-u", SANDBOX_USER]).is_err() {
        // `-p '*'`: no password, but not locked (sshd refuses locked
        // accounts when PAM is off). Another process may create the user at
        // the same moment, so check again on failure.
        let created = run_tool(
            "useradd",
            &[
                "--create-home",
                "--shell",
                "/bin/sh",
                "-p",
                "*",
                SANDBOX_USER,
            ],
        );
        if let Err(e) = created {
            if run_tool("id", &["-u", SANDBOX_USER]).is_err() {
                return Err(e);
            }
        }
    }
    // A user created elsewhere with a locked password ("!") cannot log in.
    let status = run_tool("passwd", &["-S", SANDBOX_USER])?;
    if status.split_whitespace().nth(1) == Some("L") {
        run_tool("usermod", &["-p", "*", SANDBOX_USER])?;
    }
    Ok((
        SANDBOX_USER.to_owned(),
        PathBuf::from(format!("/home/{SANDBOX_USER}")),
    ))
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| setup_error(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| setup_error(format!("cannot read the free port: {e}")))
}

impl LocalSshd {
    /// Starts a private sshd on `127.0.0.1` with default options.
    ///
    /// Fails with a hint when OpenSSH's server is not installed.
    pub fn start() -> Result<Self> {
        Self::start_with(&SandboxOptions::default())
    }

    /// Starts a private sshd on `127.0.0.1` with `options`. Refuses a path
    /// prefix that contains `:` or white space.
    pub fn start_with(options: &SandboxOptions) -> Result<Self> {
        if !Path::new(SSHD).is_file() {
            return Err(setup_error(format!("{SSHD} is not installed")));
        }
        let (user, home) = login_user()?;
        let dir = owner::tempdir(SSHD_DIR_PREFIX)?;
        // The login user (kastell-sandbox, when running as root) reads
        // authorized_keys in it.
        files::set_mode(dir.path(), 0o755)?;
        let p = dir.path();
        keygen(&p.join("host_ed25519"), "ed25519")?;
        keygen(&p.join("client_ed25519"), "ed25519")?;
        keygen(&p.join("client_rsa"), "rsa")?;
        keygen(&p.join("stranger_ed25519"), "ed25519")?;
        let mut authorized = String::new();
        for key in ["client_ed25519.pub", "client_rsa.pub"] {
            authorized.push_str(
                &fs::read_to_string(p.join(key))
                    .map_err(|e| Error::io("reading a sandbox key", e))?,
            );
        }
        files::write(&p.join("authorized_keys"), &authorized, 0o644)?;
        let host_key_fingerprint = fingerprint_of(&p.join("host_ed25519.pub"))?;
        if is_root() {
            files::mkdir(Path::new("/run/sshd"), 0o755)?;
        }

        let listen = listen_addresses(options)?;
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            match Self::launch(p, port, &user, &session_path(options)?, &listen) {
                Ok(guardian) => {
                    return Ok(Self {
                        dir,
                        guardian: Some(guardian),
                        port,
                        user,
                        home,
                        host_key_fingerprint,
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| setup_error("could not start")))
    }

    fn launch(
        dir: &Path,
        port: u16,
        user: &str,
        path: &str,
        listen: &[Ipv4Addr],
    ) -> Result<Guardian> {
        let d = dir.display();
        let listen: String = listen
            .iter()
            .map(|a| format!("ListenAddress {a}:{port}\n"))
            .collect();
        let config = format!(
            "{listen}\
             Port {port}\n\
             HostKey {d}/host_ed25519\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             AllowUsers {user}\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             UsePAM no\n\
             StrictModes no\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             PrintMotd no\n\
             SetEnv PATH={path}\n\
             Subsystem sftp internal-sftp\n"
        );
        let config_path = dir.join("sshd_config");
        files::write(&config_path, &config, 0o600)?;
        let config_text = config_path.to_string_lossy().into_owned();
        run_tool(SSHD, &["-t", "-f", &config_text])?;
        let log = files::create(&dir.join("sshd.log"), 0o600)?;
        // -D: sshd stays in the foreground, the guardian's child.
        let mut guardian = Guardian::spawn(dir, SSHD, &["-D", "-e", "-f", &config_text], log)?;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if guardian.daemon_exited() {
                guardian.stop();
                let log = fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
                return Err(setup_error(format!("sshd exited: {}", log.trim())));
            }
            if banner_ready(port) {
                return Ok(guardian);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        guardian.stop();
        Err(setup_error(format!(
            "sshd did not answer on port {port} within 10s"
        )))
    }

    /// The address to connect to.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The login user's home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The daemon's working directory (keys, config, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An authorised ed25519 private key.
    pub fn ed25519_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// An authorised RSA private key.
    pub fn rsa_key(&self) -> PathBuf {
        self.dir.path().join("client_rsa")
    }

    /// A valid private key that is not authorised.
    pub fn stranger_key(&self) -> PathBuf {
        self.dir.path().join("stranger_ed25519")
    }

    /// The `SHA256:...` fingerprint of the host key sshd presents.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key_fingerprint
    }

    /// Connection settings with the ed25519 key and nothing pinned.
    pub fn ssh_config(&self) -> SshConfig {
        SshConfig::new(self.host(), self.port, self.user.clone()).with_identity(self.ed25519_key())
    }

    /// What sshd has logged so far (for diagnosing failed tests).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        self.guardian.as_ref().is_some_and(|g| !g.daemon_exited())
    }

    /// The daemon's process id, while it has not been stopped (the sshd
    /// itself, not its guardian; also in `sshd.pid` in [`LocalSshd::dir`]).
    pub fn pid(&self) -> Option<u32> {
        self.guardian.as_ref().map(Guardian::daemon)
    }

    /// Ends every open connection at once, as a network failure or a host
    /// going down would, while the daemon keeps listening. Each connection
    /// is two processes under the daemon: its privileged monitor and the
    /// unprivileged process that carries the connection (killing only the
    /// monitor leaves running commands streaming). Both get `SIGKILL`, so
    /// the client sees the connection drop and the commands it started lose
    /// their stdin and stdout (they are not killed, as on a real server).
    /// New connections are accepted as before. Returns how many processes
    /// were ended (0 when no connection was open or the daemon is stopped).
    /// For fault-injection tests.
    pub fn kill_sessions(&self) -> usize {
        self.pid().map_or(0, end_sessions_of)
    }

    /// Stops the daemon and ends its open sessions; the directory stays
    /// until the value is dropped. Idempotent.
    pub fn stop(&mut self) {
        // The daemon is frozen first, so it accepts and forks nothing more
        // (a connection it had already accepted is one of its children by
        // then); its sessions are ended, both of their processes (see
        // kill_sessions); then the daemon is killed, which closes its
        // listening sockets. Killing the daemon before its sessions would
        // orphan them, and ending the sessions before freezing it let a
        // client that reconnected at once (a restore's guard starting the
        // platform again) reach a session the sweep had missed. The
        // guardian then reaps the daemon and cleans up.
        if let Some(daemon) = self.pid() {
            freeze(daemon);
            end_sessions_of(daemon);
            kill(daemon);
        }
        if let Some(mut guardian) = self.guardian.take() {
            guardian.stop();
        }
    }
}

/// Removes the sandbox sshd directories ([`SSHD_DIR_PREFIX`]) and fake
/// hosts directories ([`hosts::HOSTS_DIR_PREFIX`]) of this user whose
/// owner process is gone ([`owner::sweep`]), first stopping a daemon still
/// running from one (its guardian was killed too) and the database
/// clusters of its PaaS hosts ([`paas`]). Returns the directories removed.
pub fn sweep_stale() -> Vec<PathBuf> {
    owner::sweep(&[SSHD_DIR_PREFIX, hosts::HOSTS_DIR_PREFIX], |dir| {
        stop_orphan(dir);
        paas::stop_databases(&dir.join("state"));
    })
}

/// Stops the daemon started from the sandbox directory `dir`, if one
/// still runs: the process in its `sshd.pid` whose command line names the
/// directory's `sshd_config` (so a reused pid is left alone).
fn stop_orphan(dir: &Path) {
    let Some(pid) = fs::read_to_string(dir.join("sshd.pid"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
    else {
        return;
    };
    let config = dir.join("sshd_config");
    if !process::command_line(pid).contains(&*config.to_string_lossy()) {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while end_sessions_of(pid) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(pid);
}

/// Ends the connections of the sshd `daemon`: each connection's process
/// and then its monitor (see [`LocalSshd::kill_sessions`]). Returns how
/// many processes were ended. For a daemon kastell started itself (the
/// benchmark's second sshd in a network namespace, say) before it stops
/// it: its sessions would otherwise outlive it.
pub fn end_sessions_of(daemon: u32) -> usize {
    let mut ended = 0;
    for monitor in children_of(daemon) {
        // Frozen, the monitor cannot fork its connection process after
        // the listing below.
        freeze(monitor);
        for connection in children_of(monitor) {
            ended += usize::from(kill(connection));
        }
        ended += usize::from(kill(monitor));
    }
    ended
}

/// How many addresses one sshd listens on besides `127.0.0.1` (OpenSSH
/// listens on 16 sockets at most).
pub const MAX_EXTRA_ADDRESSES: usize = 15;

/// `127.0.0.1` then the extra addresses of `options`, without repeats.
/// Refuses an address outside `127.0.0.0/8` and more than
/// [`MAX_EXTRA_ADDRESSES`] extra ones.
fn listen_addresses(options: &SandboxOptions) -> Result<Vec<Ipv4Addr>> {
    if options.extra_addresses.len() > MAX_EXTRA_ADDRESSES {
        return Err(Error::invalid_input(format!(
            "sandbox sshd can listen on at most {MAX_EXTRA_ADDRESSES} extra addresses, not {}",
            options.extra_addresses.len()
        ))
        .with_hint("Start one sshd per group of addresses"));
    }
    let mut all = vec![Ipv4Addr::LOCALHOST];
    for address in &options.extra_addresses {
        if !address.is_loopback() {
            return Err(Error::invalid_input(format!(
                "sandbox sshd may only listen on loopback, not {address}"
            ))
            .with_hint("Use an address in 127.0.0.0/8"));
        }
        if !all.contains(address) {
            all.push(*address);
        }
    }
    Ok(all)
}

/// The `PATH` of every session: the prefix, then the usual system paths.
fn session_path(options: &SandboxOptions) -> Result<String> {
    let mut parts = Vec::new();
    for dir in &options.path_prefix {
        let text = dir.to_string_lossy();
        if text.contains(':') || text.chars().any(char::is_whitespace) {
            return Err(Error::invalid_input(format!(
                "sandbox PATH entry {text:?} may not contain ':' or white space"
            )));
        }
        parts.push(text.into_owned());
    }
    parts.extend(
        [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ]
        .map(String::from),
    );
    Ok(parts.join(":"))
}

fn banner_ready(port: u16) -> bool {
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let Ok(stream) = TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("SSH-2.0-")
}

impl Drop for LocalSshd {
    fn drop(&mut self) {
        self.stop();
    }
}
