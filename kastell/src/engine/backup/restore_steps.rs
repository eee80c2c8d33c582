//! The part of a restore that runs once the server is about to change:
//! stop, restore, start (always, once stopped), and how the health check
//! afterwards waits ([`RestoreHealth`]).

use std::sync::Arc;
use std::time::Instant;

use kastell_core::types::{
    ArtifactSource as _, HealthWait, ScopedSource, StepReport, StepStatus, StepTimer,
};
use kastell_core::{Error, ErrorKind, Platform, Result};

use super::stored::VerifiedSource;

/// How a restore checks the platform once it is started again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RestoreHealth {
    /// Wait the request's `health_deadline`, ending early after
    /// [`HealthWait::DEFAULT_REFUSED_GRACE`] of refused connections.
    #[default]
    Default,
    /// Wait as this says (a server's `checks.json` settings).
    Wait(HealthWait),
    /// Skip the check (a server without a web UI), saying why.
    Skip(String),
}

/// Stops the platform, restores, and starts it again whatever happened
/// after the stop was attempted. Returns the steps and the first error.
/// Restoring only some apps' data in place stops nothing: the platform
/// stops and starts just those apps' containers.
pub(super) async fn stop_restore_start(
    platform: Arc<dyn Platform>,
    source: ScopedSource<VerifiedSource>,
) -> (Vec<StepReport>, Result<()>) {
    let name = platform.info().display_name;
    let stops = platform.capability().stop_start && !source.apps().is_only();
    let mut steps = Vec::new();
    let mut first_error: Option<Error> = None;
    if stops {
        let step = StepTimer::start(format!("Stop {name}"));
        match platform.stop().await {
            Ok(()) => steps.push(step.success("stopped")),
            Err(e) => {
                steps.push(step.failure(&e));
                first_error = Some(e);
            }
        }
    }
    if first_error.is_none() {
        let started = Instant::now();
        let mut report = platform.restore(&source).await;
        // What the platform's own steps do not account for (a restore run
        // as one remote script reports its parts untimed): sending the
        // backup and running the restore, a step of its own so that the
        // steps add up to the run.
        let untimed = elapsed_ms(started)
            .saturating_sub(report.steps.iter().map(|s| s.duration_ms).sum::<u64>());
        if untimed >= UNTIMED_SHOWN_MS {
            report.steps.insert(0, StepReport {
                name: "Send and restore".to_owned(),
                status: StepStatus::Success,
                detail: Some(format!(
                    "the backup streamed to the server and restored by {name} (the steps below are the parts it reported)"
                )),
                error: None,
                hint: None,
                duration_ms: untimed,
            });
        }
        let failed_step = report
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failure)
            .map(|s| (s.name.clone(), s.error.clone()));
        steps.extend(report.steps);
        first_error = match (report.error, failed_step) {
            (Some(e), Some(_)) => Some(e),
            (Some(e), None) => {
                // Refused before any step: the engine names it.
                steps.push(StepTimer::start("Restore").failure(&e));
                Some(e)
            }
            // A platform that reported a failed step without an error.
            (None, Some((name, detail))) => Some(Error::new(
                ErrorKind::CommandFailed,
                format!(
                    "{name} failed: {}",
                    detail.as_deref().unwrap_or("no detail")
                ),
            )),
            (None, None) => None,
        };
    }
    if stops {
        // Always: a stopped platform is never left behind.
        let step = StepTimer::start(format!("Start {name}"));
        match platform.start().await {
            Ok(()) => steps.push(step.success("started")),
            Err(e) => {
                let e = e.with_hint(format!(
                    "{name} may be down: start it by hand and check its health"
                ));
                steps.push(step.failure(&e));
                first_error.get_or_insert(e);
            }
        }
    }
    (steps, first_error.map_or(Ok(()), Err))
}

/// The least time a platform's restore spends outside the steps it
/// reports that is shown as a step of its own.
const UNTIMED_SHOWN_MS: u64 = 10;

/// Whole milliseconds since `started`.
fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A failed safety step (backup or snapshot), with a hint that starts by saying nothing was
/// changed on the server (before the platform's own advice, which does not
/// know a restore was refused).
pub(crate) fn nothing_changed(err: Error) -> Error {
    const NOTHING: &str =
        "Nothing was changed on the server: its current state could not be saved first";
    let hint = match err.hint() {
        Some(advice) => format!("{NOTHING}. {advice}"),
        None => NOTHING.to_owned(),
    };
    err.with_hint(hint)
}
