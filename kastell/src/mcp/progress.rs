//! Progress notifications for long work, sent only when the request
//! carried a progress token: one when the work starts, one at every step
//! boundary the operation reports through [`ops::Progress`] (with the step
//! count as `total` and the step's name as message), one every few seconds
//! while it runs (with the elapsed time), and one when it ends.
//!
//! All notifications of a request go out from one loop, so their
//! `progress` values strictly increase: a finished step `i` is worth `i`,
//! and everything between two step boundaries (a step starting, a message,
//! a heartbeat) a fraction below the next whole number.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use tokio::sync::mpsc;

use crate::ops::{self, Context, Step};

/// How often a running operation reports that it is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Where progress goes for one request.
#[derive(Debug, Clone)]
pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
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
    },
    Message(String),
}

/// The [`ops::Progress`] hook: forwards events to the request's loop.
struct Hook(mpsc::UnboundedSender<Event>);

impl ops::Progress for Hook {
    fn step_started(&self, index: usize, total: usize, name: &str) {
        let name = name.to_owned();
        let _ = self.0.send(Event::Started { index, total, name });
    }

    fn step_finished(&self, index: usize, total: usize, step: &Step) {
        let outcome = serde_json::to_value(step.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let text = format!("{} ({outcome})", step.name);
        let _ = self.0.send(Event::Finished { index, total, text });
    }

    fn message(&self, text: &str) {
        let _ = self.0.send(Event::Message(text.to_owned()));
    }
}

/// The numbers sent so far for one request.
#[derive(Debug, Default)]
struct Counter {
    last: f64,
    steps_done: f64,
    between: u32,
    total: Option<f64>,
    current: Option<String>,
}

impl Counter {
    /// A value after `last`, below the next whole step.
    fn between(&mut self) -> f64 {
        self.between = self.between.saturating_add(1);
        let value = self.steps_done + 1.0 - 1.0 / (f64::from(self.between) + 1.0);
        self.bump(value)
    }

    /// Step `index` finished.
    fn finished(&mut self, index: usize) -> f64 {
        self.steps_done = self.steps_done.max(index as f64);
        self.between = 0;
        self.bump(self.steps_done)
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

impl Progress {
    /// Progress for the request behind `rc` (silent without a token).
    pub fn new(rc: &RequestContext<RoleServer>) -> Self {
        Self {
            peer: rc.peer.clone(),
            token: rc.meta.get_progress_token(),
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
                counter.total = Some(total as f64);
                let message = format!("{label}: {name} ({index}/{total})");
                counter.current = Some(name);
                (counter.between(), message)
            }
            Event::Finished { index, total, text } => {
                counter.total = Some(total as f64);
                counter.current = None;
                let message = format!("{label}: {text} ({index}/{total})");
                (counter.finished(index), message)
            }
            Event::Message(text) => (counter.between(), format!("{label}: {text}")),
        };
        self.notify(value, counter.total, message).await;
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
        if self.token.is_none() {
            return work(ctx.clone()).await;
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let work = work(ctx.clone().with_progress(Arc::new(Hook(tx))));
        let started = Instant::now();
        let mut counter = Counter::default();
        let first = counter.between();
        self.notify(first, None, format!("{label}: started")).await;
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                Some(event) = rx.recv() => self.event(label, &mut counter, event).await,
                out = &mut work => {
                    while let Ok(event) = rx.try_recv() {
                        self.event(label, &mut counter, event).await;
                    }
                    let secs = started.elapsed().as_secs();
                    let message = format!("{label}: finished after {secs} s");
                    match counter.total {
                        Some(total) if counter.last >= total => {}
                        Some(total) => self.notify(counter.bump(total), Some(total), message).await,
                        None => {
                            let done = counter.finished(counter.steps_done as usize + 1);
                            self.notify(done, Some(done), message).await;
                        }
                    }
                    return out;
                }
                _ = ticker.tick() => {
                    let secs = started.elapsed().as_secs();
                    let message = match &counter.current {
                        Some(step) => format!("{label}: {step} running for {secs} s"),
                        None => format!("{label}: running for {secs} s"),
                    };
                    let value = counter.between();
                    self.notify(value, counter.total, message).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_strictly_increase_and_steps_are_whole() {
        let mut c = Counter::default();
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
}
