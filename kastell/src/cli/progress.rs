//! Progress on stderr: one spinner per running operation (the waits for
//! snapshots, reboots, transfers), only when stderr is a terminal and
//! `--json` was not given. The spinner shows the step the operation is on
//! (through [`Task::hook`]). Stdout is never touched.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::{self, Step};

/// Where spinners are drawn, or nothing when progress is off.
#[derive(Debug, Clone)]
pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Progress for this run: on only when stderr is a terminal and `json`
    /// is false.
    pub fn for_run(json: bool) -> Self {
        Self::new(!json && std::io::stderr().is_terminal())
    }

    /// Progress drawn on stderr (`enabled`) or not at all.
    pub fn new(enabled: bool) -> Self {
        Self {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Whether anything is drawn.
    pub fn enabled(&self) -> bool {
        self.multi.is_some()
    }

    /// Starts a spinner showing `message` and the elapsed time.
    pub fn task(&self, message: impl Into<String>) -> Task {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(message.into());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Task { bar }
    }
}

/// One running operation's spinner; cleared when finished or dropped.
#[derive(Debug)]
pub struct Task {
    bar: Option<ProgressBar>,
}

impl Task {
    /// Replaces the spinner's message.
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }
}

impl Task {
    /// An [`ops::Progress`] hook that shows `label` followed by the
    /// operation's current step (or message) on this spinner.
    pub fn hook(&self, label: impl Into<String>) -> Arc<dyn ops::Progress> {
        Arc::new(SpinnerHook {
            bar: self.bar.clone(),
            label: label.into(),
        })
    }
}

/// Shows step events on a spinner.
struct SpinnerHook {
    bar: Option<ProgressBar>,
    label: String,
}

impl SpinnerHook {
    fn show(&self, text: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}: {text}", self.label));
        }
    }
}

impl ops::Progress for SpinnerHook {
    fn step_started(&self, index: usize, total: usize, name: &str) {
        self.show(format!("{name} ({index}/{total})"));
    }

    fn step_finished(&self, _index: usize, _total: usize, _step: &Step) {}

    fn message(&self, text: &str) {
        self.show(text.to_owned());
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enabled_spinner_shows_the_current_step() {
        let progress = Progress {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
        };
        let task = progress.task("maintain on web-1");
        let hook = task.hook("maintain on web-1");
        hook.step_started(2, 5, "Coolify Update");
        let bar = task.bar.as_ref().unwrap();
        assert_eq!(bar.message(), "maintain on web-1: Coolify Update (2/5)");
        hook.message("Waiting for the server to boot again");
        assert_eq!(
            bar.message(),
            "maintain on web-1: Waiting for the server to boot again"
        );
    }

    #[test]
    fn disabled_progress_draws_nothing() {
        let progress = Progress::new(false);
        assert!(!progress.enabled());
        let task = progress.task("waiting");
        task.set_message("still waiting");
        assert!(task.bar.is_none());
        let hook = task.hook("maintain on web-1");
        hook.step_started(1, 5, "Status Check");
        hook.message("waiting");
    }
}
