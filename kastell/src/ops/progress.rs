//! A hook through which operations report their steps while they run, so a
//! surface can show them (MCP progress notifications, the CLI's spinner).
//!
//! Operations call it at every step boundary: [`Progress::step_started`]
//! before a step runs, [`Progress::step_finished`] with its report (also
//! for steps that were skipped, which are never started), and
//! [`Progress::message`] for what happens inside a step (a reboot
//! requested, a wait for the new boot), and [`Progress::bytes`] while a
//! backup or a restore moves an artifact. The default hook does nothing.

use std::sync::Arc;

use kastell_core::types::StepReport;

use super::context::Context;
use super::result::Step;
use crate::engine::backup::TransferProgress;

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
    /// Whether the caller asked the operation to stop (an MCP client's
    /// cancellation). Operations look at it only at safe points, before a
    /// step that changes something, and stop there with what ran so far;
    /// a step that started always finishes (a restore always starts the
    /// platform again). The default: never.
    fn cancelled(&self) -> bool {
        false
    }

    /// A transfer is under way: `done` bytes of `what` (a short phrase
    /// such as `receiving coolify-db.dump` or `sending config.tar`) have
    /// moved, out of `total` when known.
    ///
    /// Backups report the bytes received from the server as they reach
    /// the staging directory (total unknown); restores report the bytes of
    /// the stored artifact streamed to the server, out of its stored size
    /// from the manifest. Calls are throttled at the source (at most one
    /// per [`REPORT_EVERY`](crate::engine::backup::REPORT_EVERY) bytes of one
    /// transfer, see [`TransferProgress`]); `done` grows from call to call
    /// of one transfer, and the last call of a transfer carries its final
    /// count. The default ignores it.
    fn bytes(&self, _what: &str, _done: u64, _total: Option<u64>) {}

    /// Asks the person watching `question` (a yes/no about work that loses
    /// data, such as rolling a server back to its snapshot): `Some(true)`
    /// for yes, `Some(false)` for no, `None` when no one can be asked here
    /// (the default: MCP calls are confirmed through their own path, and a
    /// CLI off a terminal asks no one). Unlike the other methods it blocks
    /// until answered; an operation never takes `None` for yes.
    fn ask(&self, _question: &str) -> Option<bool> {
        None
    }

    /// The work is the journaled rollout `id` (see
    /// [`crate::state::rollouts`]): a surface that keeps long work's state
    /// across restarts records it, so that a run its process never finished
    /// names the rollout to resume. The default ignores it.
    fn rollout(&self, _id: &str) {}
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

/// A [`TransferProgress`] that forwards byte counts to `ctx`'s hook.
pub(super) fn transfer(ctx: &Context) -> TransferProgress {
    let progress = ctx.progress_shared();
    let stop = ctx.progress_shared();
    TransferProgress::new(move |what, done, total| progress.bytes(what, done, total))
        .stopping_when(move || stop.cancelled())
}

pub use crate::engine::human_bytes;

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

    /// Whether the caller asked to stop (see [`Progress::cancelled`]).
    pub(super) fn cancelled(&self) -> bool {
        self.progress.cancelled()
    }

    /// The next step, called `name`, starts.
    pub(super) fn start(&self, name: &str) {
        self.progress
            .step_started(self.done + 1, self.total.max(self.done + 1), name);
    }

    /// The next step ended as `report` says.
    pub(super) fn finish(&mut self, report: &StepReport) {
        self.done += 1;
        let step = Step::numbered(self.done, report);
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

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(12 * 1024 * 1024 + 50_000), "12.0 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }
}
