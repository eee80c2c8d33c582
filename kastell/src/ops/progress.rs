//! A hook through which operations report their steps while they run, so a
//! surface can show them (MCP progress notifications, the CLI's spinner).
//!
//! Operations call it at every step boundary: [`Progress::step_started`]
//! before a step runs, [`Progress::step_finished`] with its report (also
//! for steps that were skipped, which are never started), and
//! [`Progress::message`] for what happens inside a step (a reboot
//! requested, a wait for the new boot). The default hook does nothing.

use std::sync::Arc;

use kastell_core::types::StepReport;

use super::result::Step;

/// Receives an operation's step events. Indexes count from 1 and `total`
/// is the number of steps the operation will report. Implementations must
/// be quick and must not block: they are called inline by the operation.
pub trait Progress: Send + Sync {
    /// Step `index` of `total`, called `name`, is starting.
    fn step_started(&self, index: usize, total: usize, name: &str);
    /// Step `index` of `total` ended (or was skipped) as `step` says.
    fn step_finished(&self, index: usize, total: usize, step: &Step);
    /// Something worth telling about the work in progress.
    fn message(&self, _text: &str) {}
}

/// The hook that ignores everything (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn step_started(&self, _index: usize, _total: usize, _name: &str) {}
    fn step_finished(&self, _index: usize, _total: usize, _step: &Step) {}
}

/// The default hook, shared.
pub(super) fn none() -> Arc<dyn Progress> {
    Arc::new(NoProgress)
}

/// Numbers steps for one operation and forwards them to a [`Progress`].
pub(super) struct Stepper<'a> {
    progress: &'a dyn Progress,
    total: usize,
    done: usize,
}

impl<'a> Stepper<'a> {
    /// A counter over `total` steps.
    pub(super) fn new(progress: &'a dyn Progress, total: usize) -> Self {
        Self {
            progress,
            total,
            done: 0,
        }
    }

    /// The next step, called `name`, starts.
    pub(super) fn start(&self, name: &str) {
        self.progress
            .step_started(self.done + 1, self.total.max(self.done + 1), name);
    }

    /// The next step ended as `report` says.
    pub(super) fn finish(&mut self, report: &StepReport) {
        self.done += 1;
        let step = to_step(self.done, report);
        self.progress
            .step_finished(self.done, self.total.max(self.done), &step);
    }

    /// Reports every step of `reports` as finished, in order.
    pub(super) fn finish_all(&mut self, reports: &[StepReport]) {
        for report in reports {
            self.finish(report);
        }
    }
}

/// `report` as step `index`.
fn to_step(index: usize, report: &StepReport) -> Step {
    Step {
        step: index,
        name: report.name.clone(),
        status: report.status.into(),
        detail: report.detail.clone(),
        error: report.error.clone(),
        hint: report.hint.clone(),
        duration_ms: report.duration_ms,
    }
}
