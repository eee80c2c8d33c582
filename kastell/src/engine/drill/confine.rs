//! Confinement for the validators a drill runs on a server's configuration
//! (`sshd -t`, `nginx -t`): `bwrap` (bubblewrap) with no network, private
//! mount, pid, ipc, uts and cgroup namespaces, only the system directories
//! the validator needs (`/usr` and its links) and the unpacked tree
//! visible, read-only, a synthetic `/etc/passwd`, an environment of `PATH`
//! and `LANG=C` only (and the `PWD=/` bwrap sets), `--die-with-parent` and
//! `--new-session`.
//!
//! The validator never runs as root. When kastell is root, bwrap builds the
//! sandbox and `setpriv` drops to uid and gid 65534 (`nobody` on this
//! machine, not only inside a namespace) with no capability left but,
//! for `nginx -t`, the one to bind the ports it listens on (nginx binds
//! them while testing, inside the empty network namespace). Otherwise bwrap
//! also creates a user namespace in which the validator is uid 65534.
//!
//! When bwrap (or, as root, setpriv) is missing or cannot build the
//! sandbox here, [`Sandbox::probe`] says why and the validator is reported
//! as skipped: it is never run unconfined.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kastell_core::env::allowlisted_command;
use kastell_core::{Error, Result};

/// The unprivileged user and group a validator runs as.
pub(super) const NOBODY: u32 = 65534;

/// The `PATH` inside the sandbox.
const SANDBOX_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a validator may run.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// A user database for the sandbox: root (owner of the system files),
/// sshd's privilege-separation user and nobody.
const PASSWD: &str = "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n\
    sshd:x:65533:65534:sshd:/run/sshd:/usr/sbin/nologin\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// Where a program is installed, from the usual system directories.
pub(super) fn installed(program: &str) -> Option<PathBuf> {
    [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ]
    .iter()
    .map(|dir| Path::new(dir).join(program))
    .find(|p| p.is_file())
}

/// A working confinement: bwrap, and as root setpriv.
#[derive(Debug)]
pub(super) struct Sandbox {
    bwrap: PathBuf,
    /// `Some` when kastell is root: the validator drops to nobody with it.
    setpriv: Option<PathBuf>,
    /// The synthetic `/etc/passwd` and `/etc/group`.
    passwd: PathBuf,
    group: PathBuf,
}

/// What one confined run shows and runs.
#[derive(Debug, Default)]
pub(super) struct Spec {
    /// `(directory or file here, where the validator sees it)`, read-only.
    pub binds: Vec<(PathBuf, String)>,
    /// Empty directories the validator may write into.
    pub writable: Vec<String>,
    /// Whether it may bind ports below 1024 (in its empty network).
    pub bind_ports: bool,
    /// The program (an absolute path visible inside) and its arguments.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// How a confined run ended.
#[derive(Debug)]
pub(super) struct Ran {
    /// Whether it exited 0.
    pub passed: bool,
    /// What it printed (stderr, then stdout).
    pub text: String,
}

impl Sandbox {
    /// A sandbox that works here, proven by running `true` in it; `Err`
    /// says why not (what to install, or what bwrap said). `scratch` holds
    /// the synthetic user database.
    pub(super) fn probe(scratch: &Path) -> std::result::Result<Self, String> {
        let Some(bwrap) = installed("bwrap") else {
            return Err(
                "no confinement here: bwrap is not installed (apt-get install bubblewrap); \
                 a validator is never run unconfined"
                    .into(),
            );
        };
        let setpriv = if kastell_pg::is_root() {
            let Some(setpriv) = installed("setpriv") else {
                return Err(
                    "no confinement here: setpriv (util-linux) is not installed, and a \
                     validator is never run as root"
                        .into(),
                );
            };
            Some(setpriv)
        } else {
            None
        };
        let passwd = scratch.join("passwd");
        let group = scratch.join("group");
        std::fs::write(&passwd, PASSWD)
            .and_then(|()| std::fs::write(&group, GROUP))
            .map_err(|e| {
                format!("no confinement here: writing the sandbox's user database: {e}")
            })?;
        let sandbox = Self {
            bwrap,
            setpriv,
            passwd,
            group,
        };
        let probe = Spec {
            program: PathBuf::from("/usr/bin/true"),
            ..Spec::default()
        };
        match sandbox.run(&probe) {
            Ok(ran) if ran.passed => Ok(sandbox),
            Ok(ran) => Err(format!(
                "no confinement here: bwrap cannot build the sandbox ({}); a validator is never \
                 run unconfined",
                super::plain(ran.text.trim())
            )),
            Err(e) => Err(format!("no confinement here: {e}")),
        }
    }

    /// The bwrap command line for `spec`.
    fn command(&self, spec: &Spec) -> Command {
        let mut c = allowlisted_command(&self.bwrap);
        c.args(["--die-with-parent", "--new-session", "--clearenv"])
            .args(["--setenv", "PATH", SANDBOX_PATH, "--setenv", "LANG", "C"])
            .args([
                "--unshare-ipc",
                "--unshare-pid",
                "--unshare-net",
                "--unshare-uts",
            ])
            .arg("--unshare-cgroup-try");
        if self.setpriv.is_some() {
            c.args(["--cap-drop", "ALL"]);
            for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"] {
                c.args(["--cap-add", cap]);
            }
            if spec.bind_ports {
                c.args(["--cap-add", "CAP_NET_BIND_SERVICE"]);
            }
        } else {
            let id = NOBODY.to_string();
            c.args(["--unshare-user", "--uid", &id, "--gid", &id]);
        }
        c.args(["--ro-bind", "/usr", "/usr"]);
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(top) {
                Ok(target) => {
                    c.arg("--symlink").arg(target).arg(top);
                }
                Err(_) if Path::new(top).is_dir() => {
                    c.args(["--ro-bind", top, top]);
                }
                Err(_) => {}
            }
        }
        c.args(["--proc", "/proc", "--dev", "/dev"])
            .args(["--perms", "1777", "--tmpfs", "/tmp"])
            .args(["--dir", "/etc", "--dir", "/kastell"])
            .arg("--ro-bind")
            .arg(&self.passwd)
            .arg("/etc/passwd")
            .arg("--ro-bind")
            .arg(&self.group)
            .arg("/etc/group");
        for (dir, writable) in scratch_dirs(&spec.writable) {
            c.args([
                "--perms",
                if writable { "1777" } else { "0755" },
                "--dir",
                &dir,
            ]);
        }
        for (here, there) in &spec.binds {
            c.arg("--ro-bind").arg(here).arg(there);
        }
        c.args(["--chdir", "/", "--"]);
        if let Some(setpriv) = &self.setpriv {
            let caps = if spec.bind_ports {
                "-all,+net_bind_service"
            } else {
                "-all"
            };
            let id = NOBODY.to_string();
            c.arg(setpriv)
                .args(["--reuid", &id, "--regid", &id, "--clear-groups"])
                .args(["--inh-caps", caps, "--bounding-set", caps]);
            if spec.bind_ports {
                c.args(["--ambient-caps", caps]);
            }
            c.arg("--");
        }
        c.arg(&spec.program).args(&spec.args);
        c
    }

    /// Runs `spec` confined, for at most a minute (then it is killed and
    /// fails). `Err` only when bwrap could not be started.
    pub(super) fn run(&self, spec: &Spec) -> Result<Ran> {
        let mut child = self
            .command(spec)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("starting bwrap", e))?;
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < TIME_LIMIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let mut text = err.join().unwrap_or_default();
        let stdout = out.join().unwrap_or_default();
        if !stdout.trim().is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&stdout);
        }
        if status.is_none() {
            text.push_str(&format!("\nkilled after {} s", TIME_LIMIT.as_secs()));
        }
        Ok(Ran {
            passed: status.is_some_and(|s| s.success()),
            text,
        })
    }
}

/// Reads a child's pipe to the end on a thread (at most 64 KiB kept).
fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(64 << 10).read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The directories to create for `writable` (each made writable by all,
/// as `/tmp` is) and their parents (searchable), parents first.
fn scratch_dirs(writable: &[String]) -> Vec<(String, bool)> {
    let mut all = std::collections::BTreeMap::new();
    for dir in writable {
        let mut path = PathBuf::new();
        for part in Path::new(dir).components() {
            path.push(part);
            if path != Path::new("/") && path != Path::new("/tmp") {
                all.entry(path.display().to_string()).or_insert(false);
            }
        }
        if dir != "/tmp" {
            all.insert(dir.clone(), true);
        }
    }
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sandbox: &Sandbox, program: &str, args: &[&str]) -> Ran {
        let spec = Spec {
            program: PathBuf::from(program),
            args: args.iter().map(Into::into).collect(),
            ..Spec::default()
        };
        sandbox.run(&spec).unwrap()
    }

    #[test]
    fn a_validator_runs_as_nobody_with_no_network_no_secret_and_none_of_this_machine() {
        let scratch = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::probe(scratch.path()).expect("bwrap works here (.ci/setup)");
        let local = tempfile::tempdir().unwrap();
        let secret = local.path().join("secret");
        std::fs::write(&secret, "kastell-local-secret").unwrap();

        let status = run(&sandbox, "/usr/bin/cat", &["/proc/self/status"]);
        assert!(status.passed, "{status:?}");
        let field = |name: &str| -> Vec<String> {
            let line = status.text.lines().find(|l| l.starts_with(name)).unwrap();
            line.split_whitespace().skip(1).map(str::to_owned).collect()
        };
        // Real, effective, saved and filesystem ids: nobody, no capability.
        assert_eq!(field("Uid:"), ["65534"; 4]);
        assert_eq!(field("Gid:"), ["65534"; 4]);
        assert_eq!(field("CapEff:"), ["0000000000000000"]);
        assert_eq!(field("NoNewPrivs:"), ["1"]);

        // Only what the sandbox binds is there: not this file, not /root,
        // /home or the kastell store.
        for path in [
            secret.to_str().unwrap(),
            "/root",
            "/home",
            "/work",
            "/var/lib",
        ] {
            let seen = run(&sandbox, "/usr/bin/ls", &["-d", path]);
            assert!(!seen.passed, "{path} is visible: {seen:?}");
        }
        let cat = run(&sandbox, "/usr/bin/cat", &[secret.to_str().unwrap()]);
        assert!(
            !cat.passed && !cat.text.contains("kastell-local-secret"),
            "{cat:?}"
        );
        assert!(!run(&sandbox, "/usr/bin/touch", &["/usr/kastell-drill"]).passed);

        // No network: the loopback interface only, and it is down.
        let net = run(&sandbox, "/usr/bin/cat", &["/proc/net/dev"]);
        let interfaces: Vec<&str> = net
            .text
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(str::trim)
            .collect();
        assert_eq!(interfaces, ["lo"], "{net:?}");

        // Nothing of this process's environment, even what bwrap itself
        // would inherit: PATH and LANG, and the PWD bwrap sets.
        let mut command = sandbox.command(&Spec {
            program: PathBuf::from("/usr/bin/env"),
            ..Spec::default()
        });
        command
            .env("KASTELL_ALERT_WEBHOOK", "https://hooks.example/leak")
            .env("HETZNER_TOKEN", "leak");
        let out = command.output().unwrap();
        let mut env: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        env.sort();
        assert_eq!(
            env,
            [
                "LANG=C".to_owned(),
                format!("PATH={SANDBOX_PATH}"),
                "PWD=/".to_owned()
            ]
        );
    }

    #[test]
    fn scratch_dirs_come_with_their_parents_first() {
        let dirs = scratch_dirs(&["/var/log/nginx".into(), "/run".into(), "/var/log".into()]);
        assert_eq!(
            dirs,
            [
                ("/run".to_owned(), true),
                ("/var".to_owned(), false),
                ("/var/log".to_owned(), true),
                ("/var/log/nginx".to_owned(), true),
            ]
        );
    }
}
