//! One operation as the CLI runs it: its title, what it asks before it
//! runs, its plan and its audited run. The operation itself (policy, plan,
//! question, run) is its [`crate::ops::Operation`]; nothing here decides
//! policy: [`crate::ops`] applies it on every run.

// `OpError` is the ops failure payload, returned once per operation (see
// `crate::ops`): boxing it would only make every caller noisier.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use serde_json::Value;

use crate::ops::{self, Done, Invocation, OpError};
use crate::policy::Surface;
use crate::state::store::ServerRecord;

/// One CLI call of an operation, its arguments parsed.
#[derive(Debug, Clone)]
pub struct Op(pub Arc<dyn Invocation>);

impl Op {
    /// The command as typed (`backup create`, `maintain`, ...).
    pub fn title(&self) -> String {
        self.0.spec().title()
    }

    /// Whether it interrupts service or loses data, so it asks first (or
    /// needs `--force`) even on one server (the operation's
    /// [`Rule::asks_first`](crate::policy::Rule::asks_first)).
    pub fn destructive(&self) -> bool {
        self.0.spec().rule.asks_first()
    }

    /// Whether, named without a server on a fleet of several, it lists
    /// every server's (`backup list`, as the original's did) instead of
    /// asking which.
    pub fn lists_every_server(&self) -> bool {
        self.0.id() == <crate::ops::BackupListOp as crate::ops::Operation>::ID
    }

    /// The y/N question for `server`.
    pub fn question(&self, server: &ServerRecord) -> String {
        self.0.question(server)
    }

    /// This call with what the question names decided for `server` (the
    /// newest backup a restore picks).
    pub fn pinned(&self, ctx: &ops::Context, server: &ServerRecord) -> Self {
        Self(self.0.pinned(ctx, server))
    }

    /// Its arguments as the audit log records them.
    fn audit_args(&self, server: Option<&str>) -> Value {
        let mut args = serde_json::json!({"action": self.0.id().as_str(), "server": server});
        if let (Value::Object(a), Value::Object(own)) = (&mut args, self.0.args()) {
            a.extend(own);
        }
        args
    }

    /// Runs it through [`crate::ops`] and returns its payload as JSON;
    /// every run, refused or not, is appended to the audit log. Disruptive
    /// and destructive work is first recorded as started, and refused
    /// (nothing runs) when that record cannot be written
    /// ([`crate::state::audit::record_start`]).
    pub async fn run(&self, ctx: &ops::Context, server: Option<&str>) -> Result<Done, OpError> {
        let started = std::time::Instant::now();
        let id = self.0.id();
        let record = |result, failed| crate::state::audit::CallRecord {
            surface: crate::state::audit::AuditSurface::Cli,
            client: None,
            op: id.as_str(),
            server: server.map(str::to_owned),
            args: self.audit_args(server),
            confirmed: None,
            result,
            failed,
            duration: started.elapsed(),
        };
        let result = match crate::state::audit::record_start(ctx, id, &record(&Value::Null, false))
        {
            Ok(()) => self.0.run(ctx, server).await,
            Err(e) => Err(OpError::from(e)),
        };
        let (value, failed) = match &result {
            Ok(done) => (done.body.clone(), false),
            Err(e) => (serde_json::to_value(e).unwrap_or(Value::Null), true),
        };
        record(&value, failed).append_to(ctx.store.dir(), &ctx.env);
        result
    }

    /// Why the policy would refuse it on `server` now (nothing is logged:
    /// a dry run is a question, not a request).
    pub fn refusal(&self, ctx: &ops::Context, server: &ServerRecord) -> Option<String> {
        ctx.policy
            .quiet()
            .check(self.0.id(), Surface::Cli, Some(server), |p| {
                ctx.token_present(p)
            })
            .err()
            .map(|e| match e.hint() {
                Some(hint) => format!("{e} (hint: {hint})"),
                None => e.to_string(),
            })
    }

    /// The steps it would take on `server`, with the commands and API calls.
    pub fn plan(&self, ctx: &ops::Context, server: &ServerRecord) -> Vec<String> {
        self.0.plan(ctx, server)
    }
}
