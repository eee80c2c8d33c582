//! Progress notifications for long work, sent only when the request
//! carried a progress token: one when the work starts, one at every step
//! boundary the operation reports through [`ops::Progress`] (with the step
//! count as `total` and the step's name as message), byte counts while a
//! backup or restore moves an artifact (`backup-create: receiving
//! fs-config.tar: 12.0 MiB`, at most one every [`BYTES_EVERY`]), one every
//! few seconds while it runs (with the elapsed time), and one when it ends.
//!
//! The same hook tells operations when the client cancelled the request
//! (with or without a progress token): they stop at their next safe point.
//! Step events also go to the client's log ([`ClientLog`]) when it asked
//! for operation logs.
//!
//! All notifications of a request go out from one loop, so their
//! `progress` values strictly increase: a finished step `i` is worth `i`,
//! and everything between two step boundaries (a step starting, a message,
//! a heartbeat, bytes moved) a fraction below the next whole number.
//!
//! Every notification carries a `total` (1 until the operation names its
//! step count), never below a value already sent; no value reaches the
//! total before the work ends (after the last step, what follows stays a
//! fraction below it), and the last notification is exactly the total.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use tokio::sync::mpsc;

use super::logging::{ClientLog, Severity};
use crate::ops::{self, Context, Step, StepOutcome, human_bytes};

/// How often a running operation reports that it is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// The least time between two byte-count notifications of one request (at
/// most four a second). A count that arrives sooner waits, replaced by any
/// newer one, until this much time has passed or another event is sent.
const BYTES_EVERY: Duration = Duration::from_millis(250);

/// How many bytes of a transfer of unknown size advance the value as much
/// as one other event between two steps does.
const BYTES_PER_EVENT: f64 = 1024.0 * 1024.0;

/// Where progress goes for one request.
#[derive(Debug, Clone)]
pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    cancel: CancelProbe,
    log: ClientLog,
}

/// A step event from the operation.
#[derive(Debug)]
enum Event {
    Started {
        index: usize,
        total: usize,
        name: String,
    },
    Finished {
        index: usize,
        total: usize,
        text: String,
        failed: bool,
    },
    Message(String),
    Bytes {
        what: String,
        done: u64,
        total: Option<u64>,
    },
}

/// Whether the request was cancelled (the client's `notifications/cancelled`,
/// or its disconnecting).
#[derive(Clone)]
struct CancelProbe(Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for CancelProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelProbe").field(&(self.0)()).finish()
    }
}

/// The [`ops::Progress`] hook: forwards events to the request's loop (when
/// the client asked for progress) and answers whether the request was
/// cancelled.
struct Hook {
    events: Option<mpsc::UnboundedSender<Event>>,
    cancel: CancelProbe,
}

impl Hook {
    fn send(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

impl ops::Progress for Hook {
    fn step_started(&self, index: usize, total: usize, name: &str) {
        let name = name.to_owned();
        self.send(Event::Started { index, total, name });
    }

    fn cancelled(&self) -> bool {
        (self.cancel.0)()
    }

    fn step_finished(&self, index: usize, total: usize, step: &Step) {
        let outcome = serde_json::to_value(step.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let text = format!("{} ({outcome})", step.name);
        let failed = matches!(step.status, StepOutcome::Failure);
        self.send(Event::Finished {
            index,
            total,
            text,
            failed,
        });
    }

    fn message(&self, text: &str) {
        self.send(Event::Message(text.to_owned()));
    }

    fn bytes(&self, what: &str, done: u64, total: Option<u64>) {
        let what = what.to_owned();
        self.send(Event::Bytes { what, done, total });
    }

    /// A client without tasks learns the rollout's id from the progress
    /// (a cancelled request gets no result), to resume it later.
    fn rollout(&self, id: &str) {
        self.send(Event::Message(format!(
            "id {id}; a cancel stops it between servers; call rollout with rolloutId {id} to go on"
        )));
    }
}

/// The numbers sent so far for one request.
///
/// Between two step boundaries the value is `steps_done + 1 - 1/(work + 1)`:
/// `work` only grows (by one for a step starting, a message or a
/// heartbeat, and with the bytes of a transfer), so values rise towards the
/// next whole number without reaching it, however many events come.
/// `steps_done` stays below the total: the last step's end (and anything
/// after it) is a fraction below the total, which only the end reaches
/// ([`Counter::end`]).
#[derive(Debug, Default)]
struct Counter {
    last: f64,
    steps_done: f64,
    work: f64,
    transfer: Option<Transfer>,
    total: Option<f64>,
    current: Option<String>,
}

/// The transfer whose bytes were reported last.
#[derive(Debug)]
struct Transfer {
    what: String,
    done: u64,
}

impl Counter {
    /// A value after `last`, below the next whole step.
    fn between(&mut self) -> f64 {
        self.advance(self.work + 1.0)
    }

    /// `done` bytes of `what` (of `total`) moved. With a known total, a
    /// whole transfer closes 90% of the distance to the next whole number,
    /// each count in proportion to the share it adds (so without other
    /// events the value is linear in the bytes); without one, every
    /// [`BYTES_PER_EVENT`] count as one event.
    fn bytes(&mut self, what: &str, done: u64, total: Option<u64>) -> f64 {
        let before = match &self.transfer {
            Some(t) if t.what == what && done >= t.done => t.done,
            _ => 0,
        };
        self.transfer = Some(Transfer {
            what: what.to_owned(),
            done,
        });
        let work = match total {
            Some(total) if total > 0 => {
                let share = |n: u64| (n as f64 / total as f64).min(1.0);
                let (from, to) = (share(before), share(done));
                let closed = 0.9 * (to - from) / (1.0 - 0.9 * from);
                let gap = (1.0 - closed) / (self.work + 1.0);
                1.0 / gap - 1.0
            }
            _ => self.work + (done - before) as f64 / BYTES_PER_EVENT,
        };
        self.advance(work)
    }

    /// The step count named so far (`total` of `index`): it only grows,
    /// and stays above every value sent.
    fn learn_total(&mut self, total: usize) {
        let named = total.max(1) as f64;
        let floor = self.last.floor() + 1.0;
        self.total = Some(self.total.unwrap_or(0.0).max(named).max(floor));
    }

    /// The total a notification carries: the step count named so far
    /// (at least 1).
    fn total(&self) -> f64 {
        self.total.unwrap_or(1.0)
    }

    /// Step `index` finished. The last one (or any numbered at or past the
    /// total) moves the value on below the total, which only
    /// [`Counter::end`] reaches.
    fn finished(&mut self, index: usize) -> f64 {
        let whole = index as f64;
        if whole >= self.total() {
            return self.between();
        }
        self.steps_done = self.steps_done.max(whole);
        self.work = 0.0;
        self.transfer = None;
        self.bump(self.steps_done)
    }

    /// The work ended: exactly the total.
    fn end(&mut self) -> f64 {
        let total = self.total().max(self.last);
        self.total = Some(total);
        self.last = total;
        total
    }

    /// Moves the work done between steps to `work` (or a little further,
    /// when that is not ahead).
    fn advance(&mut self, work: f64) -> f64 {
        self.work = if work > self.work {
            work
        } else {
            self.work + 0.01
        };
        let value = self.steps_done + 1.0 - 1.0 / (self.work + 1.0);
        self.bump(value)
    }

    fn bump(&mut self, value: f64) -> f64 {
        let value = if value > self.last {
            value
        } else {
            self.last + 1e-3
        };
        self.last = value;
        value
    }
}

/// Holds byte counts back so that at most one goes out per [`BYTES_EVERY`].
#[derive(Debug, Default)]
struct BytesGate {
    sent_at: Option<tokio::time::Instant>,
    pending: Option<Event>,
}

impl BytesGate {
    /// Whether a byte count may go out now.
    fn open(&self) -> bool {
        self.sent_at.is_none_or(|at| at.elapsed() >= BYTES_EVERY)
    }

    /// When the count held back may go out.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.pending.as_ref()?;
        Some(
            self.sent_at
                .map_or_else(tokio::time::Instant::now, |at| at + BYTES_EVERY),
        )
    }
}

impl Progress {
    /// Progress for the request behind `rc` (no notifications without a
    /// token), logging its steps to `log`; the work is cancelled when the
    /// client cancels the request or `stopping` says kastell-mcp stops.
    pub(crate) fn new(
        rc: &RequestContext<RoleServer>,
        log: ClientLog,
        stopping: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        let ct = rc.ct.clone();
        Self {
            peer: rc.peer.clone(),
            token: rc.meta.get_progress_token(),
            cancel: CancelProbe(Arc::new(move || ct.is_cancelled() || stopping())),
            log,
        }
    }

    /// Sends one notification; a failure to send is logged, not fatal.
    pub async fn notify(&self, done: f64, total: Option<f64>, message: String) {
        let Some(token) = &self.token else { return };
        let mut param = ProgressNotificationParam::new(token.clone(), done).with_message(message);
        if let Some(total) = total {
            param = param.with_total(total);
        }
        if let Err(e) = self.peer.notify_progress(param).await {
            tracing::debug!("progress notification not sent: {e}");
        }
    }

    async fn event(&self, label: &str, counter: &mut Counter, event: Event) {
        let (value, message) = match event {
            Event::Started { index, total, name } => {
                counter.learn_total(total);
                let message = format!("{label}: {name} ({index}/{total})");
                counter.current = Some(name);
                self.log.send(Severity::Info, &message).await;
                (counter.between(), message)
            }
            Event::Finished {
                index,
                total,
                text,
                failed,
            } => {
                counter.learn_total(total);
                counter.current = None;
                let message = format!("{label}: {text} ({index}/{total})");
                let severity = if failed {
                    Severity::Warning
                } else {
                    Severity::Info
                };
                self.log.send(severity, &message).await;
                (counter.finished(index), message)
            }
            Event::Message(text) => {
                let message = format!("{label}: {text}");
                self.log.send(Severity::Info, &message).await;
                (counter.between(), message)
            }
            Event::Bytes { what, done, total } => {
                let amount = match total {
                    Some(total) => format!("{} of {}", human_bytes(done), human_bytes(total)),
                    None => human_bytes(done),
                };
                let message = format!("{label}: {what}: {amount}");
                (counter.bytes(&what, done, total), message)
            }
        };
        self.notify(value, Some(counter.total()), message).await;
    }

    /// Sends `event`, or holds a byte count back while the gate is shut.
    /// Any other event first sends the count held back, so counts never
    /// arrive after what followed them.
    async fn dispatch(
        &self,
        label: &str,
        counter: &mut Counter,
        gate: &mut BytesGate,
        event: Event,
    ) {
        if matches!(event, Event::Bytes { .. }) {
            if gate.open() {
                gate.pending = None;
                gate.sent_at = Some(tokio::time::Instant::now());
                self.event(label, counter, event).await;
            } else {
                gate.pending = Some(event);
            }
            return;
        }
        self.flush(label, counter, gate).await;
        self.event(label, counter, event).await;
    }

    /// Sends the byte count held back, if any.
    async fn flush(&self, label: &str, counter: &mut Counter, gate: &mut BytesGate) {
        if let Some(pending) = gate.pending.take() {
            gate.sent_at = Some(tokio::time::Instant::now());
            self.event(label, counter, pending).await;
        }
    }

    /// Runs `work` (named `label`) on a copy of `ctx` whose progress hook
    /// reports the operation's steps, and reports its start, every step
    /// event, a heartbeat every [`HEARTBEAT`], and its end. Without a
    /// progress token, `work` runs on `ctx` as it is.
    pub async fn around<W, F>(&self, label: &str, ctx: &Context, work: W) -> F::Output
    where
        W: FnOnce(Context) -> F,
        F: Future,
    {
        let cancel = self.cancel.clone();
        if self.token.is_none() && !self.log.is_on() {
            let hook = Hook {
                events: None,
                cancel,
            };
            return work(ctx.clone().with_progress(Arc::new(hook))).await;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let hook = Hook {
            events: Some(tx),
            cancel,
        };
        let work = work(ctx.clone().with_progress(Arc::new(hook)));
        let started = Instant::now();
        let mut counter = Counter::default();
        let mut gate = BytesGate::default();
        let first = counter.between();
        let total = counter.total();
        self.notify(first, Some(total), format!("{label}: started"))
            .await;
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        tokio::pin!(work);
        loop {
            let due = gate.due();
            let flush_at = due.unwrap_or_else(tokio::time::Instant::now);
            tokio::select! {
                biased;
                Some(event) = rx.recv() => self.dispatch(label, &mut counter, &mut gate, event).await,
                out = &mut work => {
                    while let Ok(event) = rx.try_recv() {
                        self.dispatch(label, &mut counter, &mut gate, event).await;
                    }
                    self.flush(label, &mut counter, &mut gate).await;
                    let secs = started.elapsed().as_secs();
                    let message = format!("{label}: finished after {secs} s");
                    let done = counter.end();
                    self.notify(done, Some(done), message).await;
                    return out;
                }
                _ = ticker.tick() => {
                    let secs = started.elapsed().as_secs();
                    let message = match &counter.current {
                        Some(step) => format!("{label}: {step} running for {secs} s"),
                        None => format!("{label}: running for {secs} s"),
                    };
                    let value = counter.between();
                    self.notify(value, Some(counter.total()), message).await;
                }
                _ = tokio::time::sleep_until(flush_at), if due.is_some() => {
                    self.flush(label, &mut counter, &mut gate).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_step_and_what_follows_stay_below_the_total_until_the_end() {
        let mut c = Counter::default();
        // Before any step is named: a total of 1, not reached.
        let mut seen = vec![c.between()];
        assert_eq!(c.total(), 1.0);
        c.learn_total(8);
        for i in 1..=8 {
            seen.push(c.between());
            seen.push(c.finished(i));
        }
        let last_step = seen.last().copied().unwrap();
        assert!(
            last_step > 7.0 && last_step < 8.0,
            "step 8 of 8 is no end: {seen:?}"
        );
        // A message and heartbeats after the last step.
        for _ in 0..100 {
            seen.push(c.between());
        }
        assert!(seen.iter().all(|v| *v < 8.0), "{seen:?}");
        // A smaller total named late never lowers it.
        c.learn_total(3);
        assert_eq!(c.total(), 8.0);
        seen.push(c.end());
        assert_eq!(seen.last().copied(), Some(8.0));
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    #[test]
    fn values_strictly_increase_and_steps_are_whole() {
        let mut c = Counter::default();
        c.learn_total(10);
        let mut seen = vec![c.between(), c.between()];
        seen.push(c.finished(1));
        assert_eq!(seen[2], 1.0);
        for _ in 0..1000 {
            seen.push(c.between());
        }
        assert!(seen.last().copied().unwrap() < 2.0);
        seen.push(c.finished(2));
        seen.push(c.finished(2));
        seen.push(c.finished(3));
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    #[test]
    fn bytes_fill_the_gap_below_the_next_step_in_order() {
        const MIB: u64 = 1 << 20;
        let mut c = Counter::default();
        c.learn_total(10);
        let mut seen = vec![c.between(), c.finished(1), c.between()];
        // A transfer of known size: linear in its share, ending below 2.
        let start = *seen.last().unwrap();
        let quarter = c.bytes("sending a", 12 * MIB, Some(48 * MIB));
        let half = c.bytes("sending a", 24 * MIB, Some(48 * MIB));
        assert!(((half - start) - 2.0 * (quarter - start)).abs() < 1e-9);
        seen.extend([quarter, half]);
        seen.push(c.between());
        seen.push(c.bytes("sending a", 48 * MIB, Some(48 * MIB)));
        seen.push(c.bytes("sending a", 48 * MIB, Some(48 * MIB)));
        // Another one, then a transfer of unknown size, a gigabyte of it.
        seen.push(c.bytes("sending b", 0, Some(0)));
        for i in 0..=4096 {
            seen.push(c.bytes("receiving c", i * 256 * 1024, None));
        }
        for _ in 0..1000 {
            seen.push(c.between());
        }
        assert!(seen.last().copied().unwrap() < 2.0, "{:?}", seen.last());
        seen.push(c.finished(2));
        assert_eq!(seen.last().copied(), Some(2.0));
        seen.push(c.bytes("receiving c", 5, None));
        assert!(seen.last().copied().unwrap() < 3.0);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }
}
