//! Shim programs for the sandbox sshd: fake `docker`, `curl`, `systemctl`,
//! `apt-get`... put first on the session `PATH`
//! ([`crate::sshd::SandboxOptions::path_prefix`]).
//!
//! [`ShimDir`] is the generic part: a directory of executable POSIX-sh
//! scripts (`add_script`), a log of every invocation (`commands`), one-shot
//! failure injection (`fail_next`) and a fake filesystem root (`root`), all
//! writable by the sandbox login user. [`PaasShim`] builds on it to fake
//! Coolify or Dokploy on top of a real [`crate::pg::PgCluster`], Dokploy's
//! Swarm secrets and service environment included.
//!
//! Layout (one temporary directory per value, removed on drop):
//! `bin/` (the shims, 0755), `state/` (log, state file, failure flags and,
//! for a [`PaasShim`], `swarm/`; writable by the sandbox user) and `root/`
//! (the fake filesystem root).

mod apps;
mod paas;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use kastell_core::env::scrubbed_command;
use kastell_core::{Error, ErrorKind, Result};

pub use apps::{AppContainer, AppKind, MONGO_ROOT_PASSWORD, MYSQL_ROOT_PASSWORD, REDIS_PASSWORD};
pub use paas::{DOKPLOY_SECRET, PaasFlavour, PaasShim, ShimState};

use crate::pg::is_root;
use crate::sshd::{SANDBOX_USER, SandboxOptions};

/// Functions every shim sources (logging, failure injection, state file).
const SHIM_LIB: &str = kastell_ssh::sandbox::paas::LIB;

/// Orders injected failures: the oldest matching one is consumed first.
static FAIL_SEQ: AtomicU64 = AtomicU64::new(0);

/// A directory of shim scripts with their log, state and fake root.
/// Dropping it removes everything.
#[derive(Debug)]
pub struct ShimDir {
    base: tempfile::TempDir,
}

fn shim_error(what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unavailable, format!("test shim: {what}"))
        .with_provider("shim")
        .with_hint("The shims need a writable temporary directory, chown, useradd and flock")
}

/// Quotes `text` for a POSIX shell (single quotes).
pub(crate) fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Writes `path` with `text` and sets `mode`.
pub(crate) fn write_mode(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))
}

/// Creates `path` (and parents) with mode `mode`.
pub(crate) fn mkdir_mode(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), e))
}

fn run_tool(program: &str, args: &[&str]) -> Result<()> {
    let out = scrubbed_command(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| shim_error(format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        return Err(shim_error(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// As root: makes sure the sandbox login user exists (the same way the
/// sandbox sshd creates it), so files can be handed to it before it starts.
fn ensure_sandbox_user() -> Result<()> {
    if run_tool("id", &["-u", SANDBOX_USER]).is_ok() {
        return Ok(());
    }
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
    match created {
        // Another thread or process may have created it meanwhile.
        Err(e) if run_tool("id", &["-u", SANDBOX_USER]).is_err() => Err(e),
        _ => Ok(()),
    }
}

/// Hands `path` (recursively) to the sandbox login user when running as
/// root; as any other user the files already belong to the login user.
pub(crate) fn give_to_sandbox_user(path: &Path) -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    ensure_sandbox_user()?;
    let owner = format!("{SANDBOX_USER}:");
    run_tool("chown", &["-R", &owner, &path.to_string_lossy()])
}

impl ShimDir {
    /// Creates an empty shim directory, its state directory (with an empty
    /// command log) and an empty fake root, writable by the sandbox user
    /// (created when running as root and missing).
    ///
    /// Fails when the temporary directory cannot be created or handed over.
    pub fn new() -> Result<Self> {
        let base = tempfile::Builder::new()
            .prefix("kastell-shim-")
            .tempdir()
            .map_err(|e| Error::io("creating the shim directory", e))?;
        let shim = Self { base };
        mkdir_mode(shim.base.path(), 0o755)?;
        mkdir_mode(&shim.dir(), 0o755)?;
        mkdir_mode(&shim.state_dir(), 0o777)?;
        mkdir_mode(&shim.state_dir().join("fail"), 0o777)?;
        mkdir_mode(&shim.root(), 0o777)?;
        write_mode(&shim.state_dir().join("lib.sh"), SHIM_LIB, 0o644)?;
        for file in ["commands.log", "state", "state.lock"] {
            write_mode(&shim.state_dir().join(file), "", 0o666)?;
        }
        give_to_sandbox_user(&shim.state_dir())?;
        give_to_sandbox_user(&shim.root())?;
        Ok(shim)
    }

    /// The directory of shim programs: put it first on the session `PATH`.
    pub fn dir(&self) -> PathBuf {
        self.base.path().join("bin")
    }

    /// The state directory (command log, state file, failure flags).
    pub fn state_dir(&self) -> PathBuf {
        self.base.path().join("state")
    }

    /// The fake filesystem root, writable by the sandbox user (pass it as
    /// the platforms' `root` option).
    pub fn root(&self) -> PathBuf {
        self.base.path().join("root")
    }

    /// Options for [`crate::sshd::SshdFixture::start_with`] that put this
    /// shim directory first on the session `PATH`.
    pub fn sandbox_options(&self) -> SandboxOptions {
        SandboxOptions {
            path_prefix: vec![self.dir()],
            ..SandboxOptions::default()
        }
    }

    /// Installs (or replaces) the program `name`: a POSIX `sh` script whose
    /// `body` runs with the call's arguments in `"$@"`, after the call was
    /// logged and any failure injected for it was applied. The body may use
    /// `state_get KEY`, `state_set KEY VALUE` and `$SHIM_STATE`. Returns the
    /// script's path.
    ///
    /// Refuses (`InvalidInput`) an empty name or one containing `/`, white
    /// space or quotes, or starting with `.` or `-`.
    pub fn add_script(&self, name: &str, body: &str) -> Result<PathBuf> {
        let bad = name.is_empty()
            || name.starts_with(['.', '-'])
            || name
                .chars()
                .any(|c| c == '/' || c == '\'' || c == '"' || c.is_whitespace());
        if bad {
            return Err(Error::invalid_input(format!(
                "shim program name {name:?} must be a plain file name"
            )));
        }
        let script = self.script_text(name, "", body);
        let path = self.dir().join(name);
        write_mode(&path, &script, 0o755)?;
        Ok(path)
    }

    /// A complete script: shebang, state path, `vars`, logging, `body`.
    pub(crate) fn script_text(&self, name: &str, vars: &str, body: &str) -> String {
        let state = self.state_dir();
        format!(
            "#!/bin/sh\n# {name}: kastell test shim\nSHIM_STATE={}\n{vars}. \"$SHIM_STATE/lib.sh\"\nshim_begin {} \"$@\"\n{body}\n",
            sh_quote(&state.to_string_lossy()),
            sh_quote(name),
        )
    }

    /// Every shim invocation so far, oldest first: one line per call with
    /// the program name and its arguments joined by single spaces (newlines
    /// inside arguments shown as spaces), e.g.
    /// `docker exec -i coolify-db psql -U coolify -d coolify`.
    ///
    /// # Panics
    /// When the log cannot be read (a broken harness).
    pub fn commands(&self) -> Vec<String> {
        let path = self.state_dir().join("commands.log");
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the shim log {}: {e}", path.display()))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Forgets the logged invocations.
    pub fn clear_commands(&self) -> Result<()> {
        write_mode(&self.state_dir().join("commands.log"), "", 0o666)
    }

    /// Makes the next shim call matching `key` fail: it is logged, prints
    /// `stderr` and exits with `exit_code` without doing anything else. The
    /// failure is consumed by exactly one call.
    ///
    /// `key` is one or more whole words that must appear contiguously in
    /// the logged line (program and arguments): `pg_restore`, `docker`,
    /// `compose`, `up -d postgres`, `dokploy=1`, `install.sh`. A key ending
    /// in ` $` must end the line (`up -d $` matches `... up -d` but not
    /// `... up -d postgres`). Several injected failures are consumed oldest
    /// first.
    ///
    /// Refuses (`InvalidInput`) an empty key, a key with a newline and an
    /// exit code outside 1..=255.
    pub fn fail_next(&self, key: &str, exit_code: i32, stderr: &str) -> Result<()> {
        let key = key.trim_start();
        if key.trim().is_empty() || key.contains('\n') {
            return Err(Error::invalid_input(
                "an injected failure needs a one-line, non-empty key",
            ));
        }
        if !(1..=255).contains(&exit_code) {
            return Err(Error::invalid_input(format!(
                "an injected failure needs an exit code in 1..=255, not {exit_code}"
            )));
        }
        let seq = FAIL_SEQ.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = self.state_dir().join("fail");
        let name = format!("{nanos:024}-{seq:08}");
        let tmp = dir.join(format!(".{name}"));
        write_mode(&tmp, &format!("{key}\n{exit_code}\n{stderr}\n"), 0o666)?;
        fs::rename(&tmp, dir.join(format!("{name}.flag")))
            .map_err(|e| Error::io("arming an injected failure", e))
    }

    /// The injected failures not consumed yet (their keys, oldest first).
    pub fn pending_failures(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.state_dir().join("fail")) else {
            return Vec::new();
        };
        let mut flags: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "flag"))
            .collect();
        flags.sort();
        flags
            .iter()
            .filter_map(|p| fs::read_to_string(p).ok())
            .filter_map(|text| text.lines().next().map(str::to_owned))
            .collect()
    }
}
