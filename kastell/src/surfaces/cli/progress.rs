//! Progress on stderr: one spinner per running operation (the waits for
//! snapshots, reboots, transfers), only when stderr is a terminal and
//! `--json` was not given. The spinner shows the step the operation is on
//! and, while a backup or restore moves an artifact, the bytes moved and
//! the rate (through [`Task::hook`]). Stdout is never touched.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ops::{self, Step, human_bytes};

/// One question on the terminal at a time, whichever server asks.
static ASKING: Mutex<()> = Mutex::new(());

/// The least time over which a transfer rate is shown.
const RATE_AFTER: Duration = Duration::from_millis(50);

/// Where spinners are drawn, or nothing when progress is off.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Progress for this run: on only when stderr is a terminal and `json`
    /// is false.
    pub(crate) fn for_run(json: bool) -> Self {
        Self::new(!json && std::io::stderr().is_terminal())
    }

    /// Progress drawn on stderr (`enabled`) or not at all.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            multi: enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// Whether anything is drawn.
    #[cfg(test)]
    pub(crate) fn enabled(&self) -> bool {
        self.multi.is_some()
    }

    /// Starts a spinner showing `message` and the elapsed time.
    pub(crate) fn task(&self, message: impl Into<String>) -> Task {
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
pub(crate) struct Task {
    bar: Option<ProgressBar>,
}

impl Task {
    /// Replaces the spinner's message.
    #[cfg(test)]
    pub(crate) fn set_message(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }
}

impl Task {
    /// An [`ops::Progress`] hook that shows `label` followed by the
    /// operation's current step (or message, or transfer: bytes moved, of
    /// how many, and the rate) on this spinner.
    pub(crate) fn hook(&self, label: impl Into<String>) -> Arc<dyn ops::Progress> {
        Arc::new(SpinnerHook {
            bar: self.bar.clone(),
            label: label.into(),
            transfer: Mutex::new(None),
        })
    }
}

/// Shows step events on a spinner.
struct SpinnerHook {
    bar: Option<ProgressBar>,
    label: String,
    transfer: Mutex<Option<Transfer>>,
}

/// The transfer shown: since when, and from how many bytes, its rate is
/// measured.
struct Transfer {
    what: String,
    since: Instant,
    from: u64,
}

impl SpinnerHook {
    /// Bytes per second of `what` since it was first reported, once that
    /// was long enough ago; a new transfer starts being measured.
    fn rate(&self, what: &str, done: u64) -> Option<u64> {
        let mut transfer = self.transfer.lock().unwrap_or_else(|p| p.into_inner());
        match &*transfer {
            Some(t) if t.what == what && done >= t.from => {
                let secs = t.since.elapsed();
                (secs >= RATE_AFTER && done > t.from)
                    .then(|| ((done - t.from) as f64 / secs.as_secs_f64()) as u64)
            }
            _ => {
                *transfer = Some(Transfer {
                    what: what.to_owned(),
                    since: Instant::now(),
                    from: done,
                });
                None
            }
        }
    }
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

    /// Asks on the terminal (stdin and stderr), the spinner suspended and
    /// one question at a time across a fleet run; `None` off a terminal.
    fn ask(&self, question: &str) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let prompt = || {
            let _one = ASKING.lock().unwrap_or_else(|p| p.into_inner());
            let asked = || {
                super::confirm::ask(
                    &super::output::escape_controls(question, true),
                    &mut std::io::stdin().lock(),
                    &mut std::io::stderr().lock(),
                )
            };
            let answer = match &self.bar {
                Some(bar) => bar.suspend(asked),
                None => asked(),
            };
            answer
                .ok()
                .map(|a| a == super::confirm::Confirmation::Proceed)
        };
        // A person takes seconds: tell the runtime this worker blocks.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(prompt),
            _ => prompt(),
        }
    }

    fn bytes(&self, what: &str, done: u64, total: Option<u64>) {
        if self.bar.is_none() {
            return;
        }
        let mut text = format!("{what}: {}", human_bytes(done));
        if let Some(total) = total {
            text.push_str(&format!(" of {}", human_bytes(total)));
            if let Some(percent) = done.min(total).saturating_mul(100).checked_div(total) {
                text.push_str(&format!(" ({percent}%)"));
            }
        }
        if let Some(rate) = self.rate(what, done) {
            text.push_str(&format!(", {}/s", human_bytes(rate)));
        }
        self.show(text);
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
    fn an_enabled_spinner_shows_bytes_moved_and_then_the_rate() {
        let progress = Progress {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
        };
        let task = progress.task("backup restore on web-1");
        let hook = task.hook("backup restore on web-1");
        let bar = task.bar.as_ref().unwrap();
        hook.bytes("sending db.dump", 3 << 20, Some(12 << 20));
        assert_eq!(
            bar.message(),
            "backup restore on web-1: sending db.dump: 3.0 MiB of 12.0 MiB (25%)"
        );
        std::thread::sleep(RATE_AFTER);
        hook.bytes("sending db.dump", 6 << 20, Some(12 << 20));
        let shown = bar.message();
        assert!(
            shown.starts_with(
                "backup restore on web-1: sending db.dump: 6.0 MiB of 12.0 MiB (50%), "
            ) && shown.ends_with("/s"),
            "{shown}"
        );
        hook.bytes("receiving config.tar", 700, None);
        assert_eq!(
            bar.message(),
            "backup restore on web-1: receiving config.tar: 700 B"
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
        hook.bytes("receiving db.dump", 1 << 20, None);
    }
}
