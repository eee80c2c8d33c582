//! The run of one maintenance: its steps so far, the first error, and
//! the progress hook each step is reported to.

use kastell_core::Error;
use kastell_core::types::StepReport;

use crate::ops::flow::Ran;
use crate::ops::progress::Stepper;

/// The steps so far and the first error, each step reported to the
/// context's progress hook as it starts and ends.
pub(super) struct Run<'a> {
    pub(super) reports: Vec<StepReport>,
    pub(super) first_error: Option<Error>,
    stepper: Stepper<'a>,
}

impl<'a> Run<'a> {
    pub(super) fn new(stepper: Stepper<'a>) -> Self {
        Self {
            reports: Vec::new(),
            first_error: None,
            stepper,
        }
    }

    /// Reports that the step `name` starts; always `true` (for chaining).
    pub(super) fn start(&self, name: &str) -> bool {
        self.stepper.start(name);
        true
    }

    /// Keeps a finished (or skipped) step and reports it.
    pub(super) fn push(&mut self, report: StepReport) {
        self.stepper.finish(&report);
        self.reports.push(report);
    }

    /// Keeps the step; returns its product, remembering the first error.
    pub(super) fn record<T>(&mut self, ran: Ran<T>) -> Option<T> {
        self.push(ran.step);
        match ran.outcome {
            Ok(value) => Some(value),
            Err(e) => {
                self.first_error.get_or_insert(e);
                None
            }
        }
    }

    pub(super) fn failed(&self) -> bool {
        self.first_error.is_some()
    }

    /// At a safe point: when the caller asked to stop, reports `rest` as
    /// not started, remembers a `Cancelled` error and returns `true`.
    pub(super) fn stop_if_cancelled(&mut self, rest: &[&str]) -> bool {
        if !self.stepper.cancelled() {
            return false;
        }
        let next = rest.first().copied().unwrap_or("the next step");
        for name in rest {
            self.push(StepReport::skipped(
                *name,
                "Not started: the client cancelled the maintenance",
            ));
        }
        self.first_error.get_or_insert(
            Error::new(
                kastell_core::ErrorKind::Cancelled,
                format!("cancelled before {next}; nothing after it was started"),
            )
            .with_hint("The steps before it ran and are listed; run maintain again to finish"),
        );
        true
    }

    pub(super) fn skip_rest(&mut self, names: &[&str]) {
        for name in names {
            self.push(StepReport::skipped(
                *name,
                "Skipped: an earlier step failed",
            ));
        }
    }
}
