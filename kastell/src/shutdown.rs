//! Stopping on `SIGINT` and `SIGTERM`: what Ctrl-C sends `kastell demo`, and
//! what an MCP client sends `kastell-mcp` when it closes a server.
//!
//! [`run_until_signal`] runs a piece of work until it finishes or one of
//! these signals arrives. On a signal the work's future is dropped before
//! it returns, so everything the work owns is torn down by its `Drop`
//! (a [`crate::surfaces::sandbox::Sandbox`] stops its simulators, its sshd daemons
//! and removes its fake hosts and directories) and the caller can say on
//! stderr what it stopped ([`report`]) and exit with the conventional
//! status: 128 + the signal number, 130 for `SIGINT` and 143 for `SIGTERM`.
//!
//! What no handler can catch (`SIGKILL`, an abort) is covered elsewhere:
//! the sandbox sshd runs under a guardian that stops it when kastell
//! disappears, and the next sandbox start sweeps the directories of
//! owners that are gone (`kastell_ssh::sandbox::sweep_stale`).

use std::future::Future;
use std::process::ExitCode;

use kastell_core::{Error, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// What dropping a sandbox tears down, for the line the binaries print
/// when a signal stops them.
pub(crate) const SANDBOX_TORN_DOWN: &str =
    "the sandbox (API simulators, sshd, fake hosts) and removed its temporary directories";

/// A signal asking kastell to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopSignal {
    /// `SIGINT` (Ctrl-C in a terminal).
    Interrupt,
    /// `SIGTERM` (`kill`, a service manager, an MCP client closing).
    Terminate,
}

impl StopSignal {
    /// The signal's name, `SIGINT` or `SIGTERM`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// The conventional exit status of a process it stopped: 130 or 143.
    pub(crate) fn exit_status(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }
}

/// How a piece of work run by [`run_until_signal`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended<T> {
    /// It finished with this value.
    Finished(T),
    /// A signal stopped it; its future was dropped.
    Stopped(StopSignal),
}

/// Runs `work` until it finishes or `SIGINT` or `SIGTERM` arrives. The
/// handlers are installed before `work` first runs (and stay for the life
/// of the process: a second Ctrl-C during teardown does not cut it short).
/// On a signal `work` is dropped before this returns. Must run inside a
/// tokio runtime; refuses when a handler cannot be installed.
pub(crate) async fn run_until_signal<T>(work: impl Future<Output = T>) -> Result<Ended<T>> {
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    // A signal that arrived wins over work that ended at the same time
    // (a client sends SIGTERM and closes stdin at once).
    tokio::select! {
        biased;
        _ = interrupt.recv() => Ok(Ended::Stopped(StopSignal::Interrupt)),
        _ = terminate.recv() => Ok(Ended::Stopped(StopSignal::Terminate)),
        value = work => Ok(Ended::Finished(value)),
    }
}

/// Runs `work` until it finishes or `SIGTERM` arrives, as
/// [`run_until_signal`] does, but lets `SIGINT` pass: it is received and
/// ignored, so Ctrl-C reaches only the program `work` runs in the
/// foreground of the same terminal (`kastell sandbox --shell`'s shell,
/// which must not lose its sandbox to a Ctrl-C meant for one of its
/// commands). On `SIGTERM` `work` is dropped before this returns. Must
/// run inside a tokio runtime; refuses when a handler cannot be installed.
#[cfg(feature = "sandbox")]
pub(crate) async fn run_until_terminated<T>(work: impl Future<Output = T>) -> Result<Ended<T>> {
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            biased;
            _ = terminate.recv() => return Ok(Ended::Stopped(StopSignal::Terminate)),
            _ = interrupt.recv() => {}
            value = &mut work => return Ok(Ended::Finished(value)),
        }
    }
}

/// Installs the handler of `kind` (named `name`) for the life of the
/// process.
fn listen(kind: SignalKind, name: &str) -> Result<Signal> {
    signal(kind).map_err(|e| Error::io(format!("listening for {name}"), e))
}

/// Says on stderr that `program` stopped on `signal` and what it tore
/// down (`<program>: <SIGNAL> received: stopped <what>`), and returns the
/// exit code for it.
pub(crate) fn report(program: &str, signal: StopSignal, what: &str) -> ExitCode {
    eprintln!("{program}: {} received: stopped {what}", signal.name());
    ExitCode::from(signal.exit_status())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn statuses_are_128_plus_the_signal_number() {
        assert_eq!(
            StopSignal::Interrupt.exit_status(),
            128 + rustix::process::Signal::INT.as_raw() as u8
        );
        assert_eq!(
            StopSignal::Terminate.exit_status(),
            128 + rustix::process::Signal::TERM.as_raw() as u8
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_that_finishes_is_not_stopped() {
        let ended = run_until_signal(async { 7 }).await.unwrap();
        assert_eq!(ended, Ended::Finished(7));
    }
}
