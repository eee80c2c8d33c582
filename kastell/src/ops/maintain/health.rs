//! Health as a maintenance proves it: the platform's own check, then the
//! checks the operator declared in `checks.json` for the server or its tags
//! (an HTTP URL and the status it must answer, asked from this machine; a
//! command run on the server that must exit 0), polled until all pass or
//! the wait ends.

use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::StepTimer;
use kastell_core::{Error, ErrorKind, Look, RemoteCommand, Result, Transport};

use crate::ops::context::Context;
use crate::ops::flow::{Ran, Target};
use crate::state::checks::{Declared, HttpCheck};

/// How long one HTTP check or command may take.
const ONE_CHECK: Duration = Duration::from_secs(15);
/// The most of what a failed command printed that a result shows.
const EXCERPT: usize = 200;

/// The step `name`: the platform healthy (waiting as the timing says),
/// then every declared check passing (polled until `declared`'s wait or
/// the health timing ends). `ok`/`failed` are the platform's phrases; the
/// detail adds how many declared checks passed, or which one failed and
/// how.
pub(crate) async fn health_step(
    ctx: &Context,
    target: &Target,
    declared: &Declared,
    name: &str,
    ok: &str,
    failed: &str,
) -> Ran<()> {
    let timer = StepTimer::start(name);
    let platform = target.health_step(ctx, name, ok, failed).await;
    if platform.outcome.is_err() || declared.is_empty() {
        return platform;
    }
    let wait = declared
        .wait_secs
        .map_or(ctx.timing.health, Duration::from_secs);
    match declared_pass(ctx, &target.transport, declared, wait).await {
        Ok(passed) => Ran {
            step: timer.success(format!(
                "{ok}; {passed} declared check{} pass",
                if passed == 1 { "" } else { "s" }
            )),
            outcome: Ok(()),
        },
        Err(e) => {
            let mut step = timer.failure(&e);
            step.detail = Some(format!("{ok}, but a declared check failed"));
            Ran {
                step,
                outcome: Err(e),
            }
        }
    }
}

/// Polls every declared check until all pass (returning how many there
/// are) or `wait` ends (failing with the last check that did not pass).
async fn declared_pass(
    ctx: &Context,
    transport: &Arc<dyn Transport>,
    declared: &Declared,
    wait: Duration,
) -> Result<usize> {
    let client = http_client()?;
    let look = || async {
        match run_once(&client, transport, declared).await {
            Ok(n) => Look::Done(n),
            Err(e) => Look::Pending(e),
        }
    };
    let expired = |last: Error| {
        let message = format!(
            "declared check failed for {}s: {}",
            wait.as_secs(),
            last.message()
        );
        last.with_message(message).with_hint(
            "Look at the service the check names; the checks are in checks.json \
             (`kastell server checks show`)",
        )
    };
    ctx.timing.poll.poll_until(wait, look, expired).await
}

/// Runs every check once, in order; the first failure is the error.
async fn run_once(
    client: &reqwest::Client,
    transport: &Arc<dyn Transport>,
    declared: &Declared,
) -> Result<usize> {
    for check in &declared.http {
        http_check(client, check).await?;
    }
    for command in &declared.commands {
        command_check(transport, command).await?;
    }
    Ok(declared.http.len() + declared.commands.len())
}

fn http_client() -> Result<reqwest::Client> {
    // One process-wide TLS provider; a second install is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(ONE_CHECK)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kastell/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::unexpected(format!("cannot build the HTTP client: {e}")))
}

/// Asks `check`'s URL once; its status must be the declared one. The
/// body is never read (a server's answer is not shown).
async fn http_check(client: &reqwest::Client, check: &HttpCheck) -> Result<()> {
    let shown = check.shown();
    let answer = client.get(&check.url).send().await.map_err(|e| {
        let why = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "the request failed"
        };
        Error::new(ErrorKind::Unavailable, format!("GET {shown}: {why}"))
    })?;
    let status = answer.status().as_u16();
    if status == check.status {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::CommandFailed,
            format!("GET {shown} answered {status}, not {}", check.status),
        ))
    }
}

/// Runs `command` on the server with `sh -c` (quoted as one word); it
/// must exit 0. What it printed on stderr is shown cut and without
/// control characters.
async fn command_check(transport: &Arc<dyn Transport>, command: &str) -> Result<()> {
    let line = RemoteCommand::template("sh -c {}", &[command])?;
    let shown = crate::state::store::display_safe(command);
    let out = transport.exec(&line, ONE_CHECK).await?;
    if out.success() {
        return Ok(());
    }
    let said: String = out
        .stderr_text()
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT)
        .collect();
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    Err(Error::new(
        ErrorKind::CommandFailed,
        format!("`{shown}` exited with status {}{said}", out.status),
    ))
}
