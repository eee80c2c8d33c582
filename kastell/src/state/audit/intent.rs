//! The audit log fails closed: disruptive and destructive work (by its
//! [`crate::policy::Category`]) runs only after an [`Outcome::Started`]
//! entry for it is in the log, on the CLI and over MCP alike. When that
//! entry cannot be appended (a full disk, a log that cannot be chained
//! to) the work is refused and nothing runs.
//!
//! Work the policy refuses anyway, or whose server does not resolve,
//! writes no `started` entry: it ends before it runs and its refusal is
//! recorded as usual.
//!
//! [`Outcome::Started`]: super::Outcome::Started

use std::path::Path;

use kastell_core::{Error, ErrorKind, Result};

use super::{AuditLog, CallRecord};
use crate::env::Env;
use crate::ops::Context;
use crate::policy::OpId;

/// Appends `call`'s `started` entry to the audit log of `ctx` when `op`
/// is disruptive or destructive and would run now (its server resolves
/// and the policy, asked quietly, admits it); does nothing otherwise.
///
/// Refuses (`Unavailable`, never applied) when the entry cannot be
/// appended, or is appended but its anchor cannot be moved: the message
/// says which, and that nothing ran; the hint says to free space and run
/// `kastell audit verify`. Blocks briefly (file I/O under the log's
/// lock, as every append).
pub fn record_start(ctx: &Context, op: OpId, call: &CallRecord<'_>) -> Result<()> {
    if !op.rule().asks_first() || !would_run(ctx, op, call.server.as_deref()) {
        return Ok(());
    }
    append_start(ctx.store.dir(), &ctx.env, op, call)
}

/// Appends `call`'s `started` entry to the audit log in `dir` (settings
/// from `env`), for a caller that has already applied the policy to `op`
/// and is about to run it. Refuses as [`record_start`] does.
pub fn append_start(dir: &Path, env: &Env, op: OpId, call: &CallRecord<'_>) -> Result<()> {
    let appended = AuditLog::for_env(dir, env).and_then(|log| log.append(call.started_entry()));
    appended.map(|_| ()).map_err(|e| {
        let on = call
            .server
            .as_deref()
            .map(|s| format!(" on {s}"))
            .unwrap_or_default();
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "{}{on} was not run: it is {} work and runs only once the audit log records it, \
                 and {}",
                call.op,
                op.rule().category.as_str(),
                e.message()
            ),
        )
        .with_hint(format!(
            "Free space for the audit log in {} and its anchor (df -h), then run `kastell audit \
             verify` and try again",
            dir.display()
        ))
        .never_applied()
    })
}

/// Whether `op` on `server` would get past the policy now (asked
/// quietly: nothing is logged). A server that does not resolve, or a
/// refusal, means the work ends before it runs.
fn would_run(ctx: &Context, op: OpId, server: Option<&str>) -> bool {
    let Ok(record) = ctx.store.resolve(server) else {
        return false;
    };
    ctx.policy
        .quiet()
        .check(op, ctx.surface, Some(&record), |p| ctx.token_present(p))
        .is_ok()
}
