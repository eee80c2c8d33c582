//! Progress notifications for long work, sent only when the request
//! carried a progress token: one when the work starts, one every few
//! seconds while it runs (with the elapsed time), and one when it ends.

use std::future::Future;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};

/// How often a running operation reports that it is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Where progress goes for one request.
#[derive(Debug, Clone)]
pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
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

    /// Runs `work` (named `label`), reporting its start, a heartbeat every
    /// [`HEARTBEAT`], and its end.
    pub async fn around<F: Future>(&self, label: &str, work: F) -> F::Output {
        if self.token.is_none() {
            return work.await;
        }
        let started = Instant::now();
        let mut done = 0.0;
        self.notify(done, None, format!("{label}: started")).await;
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => {
                    done += 1.0;
                    let secs = started.elapsed().as_secs();
                    self.notify(done, Some(done), format!("{label}: finished after {secs} s")).await;
                    return out;
                }
                _ = ticker.tick() => {
                    done += 1.0;
                    let secs = started.elapsed().as_secs();
                    self.notify(done, None, format!("{label}: running for {secs} s")).await;
                }
            }
        }
    }
}
