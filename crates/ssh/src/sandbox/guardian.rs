//! The guardian: a tiny shell process between kastell and the sandbox
//! sshd, so the daemon cannot outlive kastell however kastell ends.
//!
//! kastell's own teardown ([`super::LocalSshd`]'s `Drop`) runs on a normal
//! end, an error, a panic that unwinds, and on `SIGINT`/`SIGTERM` (the
//! binaries catch them). It cannot run on `SIGKILL`, an abort or the OOM
//! killer. `PR_SET_PDEATHSIG` would cover those, but it has to be set in
//! the child between `fork` and `exec` (`CommandExt::pre_exec`), which is
//! `unsafe` and forbidden in this workspace. So sshd is started by
//! `/bin/sh` running [`SCRIPT`], which
//!
//! 1. starts sshd in the background (stdin from `/dev/null`) and prints
//!    its pid on stdout, the one line kastell reads;
//! 2. reads its stdin, a pipe whose only writer is kastell, until it gets
//!    `stop` (kastell stopping the daemon) or end of file (kastell is gone:
//!    the kernel closes the pipe of a process however it dies);
//! 3. ends the daemon's sessions (each connection's process, then its
//!    monitor, until none is left, for at most about 2 s), then the daemon,
//!    and reaps it;
//! 4. on end of file only, removes the daemon's directory (keys, config,
//!    log): its owner can no longer do it.
//!
//! The guardian sets `umask 022` first, so what the daemon and its
//! sessions create (its pid file, the shims' state) is never writable by
//! another user, whatever umask kastell was started with.
//!
//! The guardian ignores `SIGINT` and `SIGHUP`, so Ctrl-C in a terminal
//! (sent to the whole foreground process group) or a closed terminal
//! leaves it to tear down after kastell. The daemon is its child and is
//! reaped only in step 3, so its pid cannot be reused while the guardian
//! runs: kastell may signal it and its sessions by pid safely.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use kastell_core::env::scrubbed_command;
use kastell_core::{Error, ErrorKind, Result};

use super::process;

/// The guardian's program (see the module notes). Arguments: the
/// directory to remove if kastell disappears, then the daemon's command.
const SCRIPT: &str = r#"trap '' INT HUP
umask 022
dir=$1
shift
"$@" </dev/null >/dev/null &
daemon=$!
echo "$daemon"
exec >/dev/null
line=
while IFS= read -r line; do [ "$line" = stop ] && break; done
i=0
while [ "$i" -lt 200 ] && pgrep -P "$daemon" >/dev/null; do
  for monitor in $(pgrep -P "$daemon"); do
    pkill -KILL -P "$monitor"
    kill -KILL "$monitor"
  done 2>/dev/null
  sleep 0.01
  i=$((i + 1))
done
kill -KILL "$daemon" 2>/dev/null
wait "$daemon"
if [ "$line" != stop ]; then
  case $dir in */kastell-sshd-*) rm -rf -- "$dir" ;; esac
fi
exit 0
"#;

/// The name the guardian runs under (its `$0`, shown by `ps`).
const NAME: &str = "kastell-sshd-guardian";

/// How long [`Guardian::stop`] waits for the guardian to finish its
/// teardown before killing it and the daemon outright.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// A running guardian and the daemon it started. Dropping it stops both.
#[derive(Debug)]
pub(super) struct Guardian {
    child: Child,
    /// kastell's end of the pipe; `None` once the guardian was told to stop.
    pipe: Option<ChildStdin>,
    daemon: u32,
}

fn spawn_error(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("sandbox sshd guardian: {what}"),
    )
    .with_provider("sandbox")
}

impl Guardian {
    /// Starts `program` with `args` under a guardian that removes `dir`
    /// if this process disappears; the daemon's stderr goes to `log`.
    pub(super) fn spawn(dir: &Path, program: &str, args: &[&str], log: File) -> Result<Self> {
        let mut child = scrubbed_command("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg(NAME)
            .arg(dir)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| spawn_error(format!("cannot start /bin/sh: {e}")))?;
        let pipe = child.stdin.take();
        let daemon = child
            .stdout
            .take()
            .ok_or_else(|| spawn_error("no stdout"))
            .and_then(|out| {
                let mut line = String::new();
                BufReader::new(out)
                    .read_line(&mut line)
                    .map_err(|e| spawn_error(format!("cannot read the daemon's pid: {e}")))?;
                line.trim()
                    .parse::<u32>()
                    .map_err(|_| spawn_error(format!("printed {line:?} instead of a pid")))
            });
        match daemon {
            Ok(daemon) => Ok(Self {
                child,
                pipe,
                daemon,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The daemon's pid (valid until [`Guardian::stop`]: the guardian
    /// reaps it only then).
    pub(super) fn daemon(&self) -> u32 {
        self.daemon
    }

    /// Whether the daemon has exited (on its own, or stopped).
    pub(super) fn daemon_exited(&self) -> bool {
        process::has_ended(self.daemon)
    }

    /// Tells the guardian to end the daemon's sessions and the daemon,
    /// keeping the directory, and waits for it (killing both outright after
    /// [`STOP_DEADLINE`]). Idempotent.
    pub(super) fn stop(&mut self) {
        let Some(mut pipe) = self.pipe.take() else {
            return;
        };
        // A guardian already gone cannot read it: nothing else to tell.
        let _ = pipe.write_all(b"stop\n");
        drop(pipe);
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::warn!(
            daemon = self.daemon,
            "the sandbox sshd guardian did not finish; killing it and the daemon"
        );
        process::kill(self.daemon);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        self.stop();
    }
}
