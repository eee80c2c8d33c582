//! Writing, reading and removing an on-server backup's files over SSH, as
//! root (through `sudo -n` where the server's privilege says so). Files are
//! written with umask 077 to a temporary name and renamed into place; a
//! file kastell did not write (no [`MARKER`](super::files::MARKER) in its
//! first two lines) is never replaced or removed.

use std::io::Cursor;
use std::time::Duration;

use kastell_core::transport::{BoxRead, BoxWrite, StreamOutput, check_status};
use kastell_core::types::Privilege;
use kastell_core::{Error, ErrorKind, RemoteCommand, Result, Transport};
use serde::Serialize;

use super::files::{Layout, ServerFile, Starter, UNIT_STEM};
use crate::engine::schedule::unit::MARKER as UNIT_MARKER;

/// How long writing, reading or removing the files may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// How long `schedule run --on-server` waits for the installed script: a
/// whole backup of the server, which takes as long as its data needs (the
/// timer's unit sets no limit); this only ends a session that hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// How commands reach root on one server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Root<'a> {
    /// The server.
    pub transport: &'a dyn Transport,
    /// Whether its login goes through `sudo -n`.
    pub privilege: Privilege,
}

impl Root<'_> {
    /// `script` as root: `sh -c` or `sudo -n sh -c`.
    fn command(&self, script: &str) -> Result<RemoteCommand> {
        if self.privilege.uses_sudo(&self.transport.target().user) {
            RemoteCommand::template("sudo -n sh -c {}", &[script])
        } else {
            RemoteCommand::template("sh -c {}", &[script])
        }
    }

    /// Runs `script` as root and returns its stdout; a non-zero exit is
    /// `CommandFailed` with its stderr. Stopped after a minute.
    pub(crate) async fn run(&self, script: &str, stdin: Option<String>) -> Result<String> {
        self.run_within(script, stdin, TIMEOUT).await
    }

    /// [`Self::run`], stopped after `timeout`.
    async fn run_within(
        &self,
        script: &str,
        stdin: Option<String>,
        timeout: Duration,
    ) -> Result<String> {
        let command = self.command(script)?;
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader: Option<BoxRead> =
            stdin.map(|text| Box::new(Cursor::new(text.into_bytes())) as BoxRead);
        let result = self
            .transport
            .exec_streaming(&command, reader, Box::new(Shared(out.clone())), timeout)
            .await?;
        check_status(&command, result.status, &result.stderr)?;
        let bytes = out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl Root<'_> {
    /// Runs `script` as root with `stdin` and `stdout` streamed as they
    /// come (a conversation through the server: see
    /// [`super::rest`]), and returns how it ended without judging it.
    pub(crate) async fn stream(
        &self,
        script: &str,
        stdin: BoxRead,
        stdout: BoxWrite,
    ) -> Result<StreamOutput> {
        let command = self.command(script)?;
        self.transport
            .exec_streaming(&command, Some(stdin), stdout, TIMEOUT)
            .await
    }
}

/// A writer into a shared buffer.
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A shell test that `$f` is absent or a regular file kastell wrote
/// (one of its first two lines starts with the marker).
fn ours_test() -> String {
    format!(
        "{{ [ ! -e \"$f\" ] && [ ! -L \"$f\" ]; }} || {{ [ -f \"$f\" ] && [ ! -L \"$f\" ] && head -n 2 \"$f\" | grep -q {}; }}",
        kastell_core::quote(&format!("^{UNIT_MARKER}"))
    )
}

/// Whether the server runs systemd (`/run/systemd/system` and
/// `systemctl`): its timer then starts the script, else cron does.
pub(crate) async fn starter(root: Root<'_>) -> Result<Starter> {
    let out = root
        .run(
            "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo systemd; else echo cron; fi",
            None,
        )
        .await?;
    Ok(if out.trim() == "systemd" {
        Starter::Systemd
    } else {
        Starter::Cron
    })
}

/// The shell test that `$f`, one of `layout`'s files, is absent or
/// kastell's: the password file (which cannot carry a marker: restic reads
/// all of it) when kastell's marked environment file beside it names it,
/// any other file by its marker.
fn owned_test(layout: &Layout, path: &str) -> String {
    if path != layout.password_file() {
        return ours_test();
    }
    let env = kastell_core::quote(&layout.env_file());
    let names = format!(
        "RESTIC_PASSWORD_FILE={}",
        kastell_core::quote(&layout.password_file())
    );
    format!(
        "{{ [ ! -e \"$f\" ] && [ ! -L \"$f\" ]; }} || {{ [ -f \"$f\" ] && [ ! -L \"$f\" ] && [ -f {env} ] && [ ! -L {env} ] && head -n 2 {env} | grep -q {marker} && grep -qxF {names} {env}; }}",
        marker = kastell_core::quote(&format!("^{UNIT_MARKER}")),
        names = kastell_core::quote(&names),
    )
}

/// Writes `files`: each refused first when something kastell did not
/// write is in its place, then written atomically with its mode. Starts
/// the timer when the server's own systemd runs it (`layout` at the
/// server's `/`); returns what was run to start it, if anything.
pub(crate) async fn write(
    root: Root<'_>,
    layout: &Layout,
    files: &[ServerFile],
    starter: Starter,
) -> Result<Option<String>> {
    for file in files {
        let script = format!(
            "f={path}; {test} || {{ echo \"$f is not a file kastell wrote: left alone\" >&2; exit 3; }}",
            path = kastell_core::quote(&file.path),
            test = owned_test(layout, &file.path)
        );
        root.run(&script, None)
            .await
            .map_err(|e| e.with_hint("Move that file away, or remove it, and install again"))?;
    }
    for file in files {
        let dir = file
            .path
            .rsplit_once('/')
            .map(|(d, _)| d)
            .filter(|d| !d.is_empty())
            .unwrap_or("/");
        let script = format!(
            "umask 077 && mkdir -p {dir} && t={path}.kastell-tmp && rm -f \"$t\" && cat > \"$t\" && chmod {mode:o} \"$t\" && mv -f \"$t\" {path}",
            dir = kastell_core::quote(dir),
            path = kastell_core::quote(&file.path),
            mode = file.mode
        );
        root.run(&script, Some(file.content.clone()))
            .await
            .map_err(|e| {
                let message = format!("writing {} failed: {}", file.path, e.message());
                e.with_message(message)
            })?;
    }
    if starter == Starter::Systemd && layout.root().is_server_root() {
        let start = format!("systemctl daemon-reload && systemctl enable --now {UNIT_STEM}.timer");
        root.run(&start, None).await?;
        return Ok(Some(start));
    }
    Ok(None)
}

/// What `schedule list --on-server` found on one server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Installed {
    /// Whether the script is there.
    pub installed: bool,
    /// How it is started (`systemd`, `cron`), when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starter: Option<Starter>,
    /// The last run: time, `ok` or `failed`, run id (from the server's
    /// record; the repository is the proof, see `backup freshness`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
}

/// Reads what is installed on the server. The last-run line is checked
/// to be plain text before it is shown.
pub(crate) async fn show(root: Root<'_>, layout: &Layout) -> Result<Installed> {
    let script = format!(
        "if [ -f {script} ]; then echo installed; fi; if [ -f {timer} ]; then echo systemd; elif [ -f {cron} ]; then echo cron; fi; head -c 200 {last} 2>/dev/null | head -n 1 | sed 's/^/last /'; true",
        script = kastell_core::quote(&layout.script()),
        timer = kastell_core::quote(&layout.timer()),
        cron = kastell_core::quote(&layout.cron()),
        last = kastell_core::quote(&layout.last_run()),
    );
    let out = root.run(&script, None).await?;
    let mut found = Installed {
        installed: false,
        starter: None,
        last_run: None,
    };
    for line in out.lines() {
        match line {
            "installed" => found.installed = true,
            "systemd" => found.starter = Some(Starter::Systemd),
            "cron" => found.starter = Some(Starter::Cron),
            other => {
                if let Some(last) = other.strip_prefix("last ") {
                    let plain = last.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, ' ' | ':' | '-' | 'T' | 'Z')
                    });
                    if plain && last.len() <= 80 {
                        found.last_run = Some(last.to_owned());
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Stops the timer (when systemd runs it) and removes every file an
/// installation writes that kastell wrote; a file without the marker is
/// left and named. Returns the files removed and those left alone.
pub(crate) async fn remove(root: Root<'_>, layout: &Layout) -> Result<(Vec<String>, Vec<String>)> {
    if layout.root().is_server_root() {
        let stop = format!(
            "if [ -f {timer} ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable --now {UNIT_STEM}.timer >/dev/null 2>&1; systemctl daemon-reload; fi; true",
            timer = kastell_core::quote(&layout.timer())
        );
        root.run(&stop, None).await?;
    }
    let mut removed = Vec::new();
    let mut left = Vec::new();
    for path in layout.every_file() {
        let script = format!(
            "f={path}; if [ ! -e \"$f\" ] && [ ! -L \"$f\" ]; then echo absent; elif {test}; then rm -f \"$f\" && echo removed; else echo left; fi",
            path = kastell_core::quote(&path),
            test = if path == layout.last_run() {
                "[ -f \"$f\" ]".to_owned()
            } else {
                owned_test(layout, &path)
            }
        );
        match root.run(&script, None).await?.trim() {
            "removed" => removed.push(path),
            "left" => left.push(path),
            _ => {}
        }
    }
    Ok((removed, left))
}

/// Runs the installed script now, as its timer would, and returns its
/// stderr on failure as the error (for `schedule run --on-server` and
/// tests). Waits as long as a backup takes, up to [`RUN_TIMEOUT`].
pub(crate) async fn run_now(root: Root<'_>, layout: &Layout) -> Result<()> {
    let script = format!("/bin/sh {}", kastell_core::quote(&layout.script()));
    root.run_within(&script, None, RUN_TIMEOUT)
        .await
        .map(|_| ())
        .map_err(|e| {
            if e.kind() == ErrorKind::CommandFailed {
                e
            } else {
                Error::new(ErrorKind::CommandFailed, e.message().to_owned())
            }
        })
}
