//! Each tool call's entry in the audit log ([`crate::state::audit`]): who asked
//! (the client's name and version), what (the action and its arguments,
//! redacted), how a destructive call was confirmed, and how it ended;
//! disruptive and destructive calls are also recorded as started before
//! they run, and refused when that fails ([`Audit::begin`]).

use std::time::Instant;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use serde_json::Value;

use super::render::failure;
use crate::ops::{Context, OpError};
use crate::policy::OpId;
use crate::state::audit::{AuditSurface, CallRecord};

/// A call being audited: what is known when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Audit {
    client: Option<String>,
    op: String,
    server: Option<String>,
    args: Value,
    started: Instant,
    confirmed: Option<String>,
}

impl Audit {
    /// Starts the record of a call of `op` with `arguments` from the
    /// client of `rc`.
    pub(crate) fn start(rc: &RequestContext<RoleServer>, op: &str, arguments: &JsonObject) -> Self {
        Self {
            client: rc
                .client_info()
                .map(|i| format!("{} {}", i.name, i.version)),
            op: op.to_owned(),
            server: arguments
                .get("server")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
            args: Value::Object(arguments.clone()),
            started: Instant::now(),
            confirmed: None,
        }
    }

    /// Notes how the call was confirmed.
    pub(crate) fn confirmed(mut self, how: String) -> Self {
        self.confirmed = Some(how);
        self
    }

    /// The call's record with `result`.
    fn record<'a>(&'a self, result: &'a Value, failed: bool) -> CallRecord<'a> {
        CallRecord {
            surface: AuditSurface::Mcp,
            client: self.client.clone(),
            op: &self.op,
            server: self.server.clone(),
            args: self.args.clone(),
            confirmed: self.confirmed.clone(),
            result,
            failed,
            duration: self.started.elapsed(),
        }
    }

    /// Before `op` runs: records it as started when it is disruptive or
    /// destructive ([`crate::state::audit::record_start`]). `Err` holds the
    /// refusal to answer with (and to finish the record with) when that
    /// record cannot be written: nothing may run then.
    pub(crate) fn begin(&self, ctx: &Context, op: OpId) -> Result<(), CallToolResult> {
        crate::state::audit::record_start(ctx, op, &self.record(&Value::Null, false))
            .map_err(|e| failure(OpError::from(e)))
    }

    /// Appends the call's outcome, `result`, to the log of `ctx`'s store.
    pub(crate) fn finish(&self, ctx: &Context, result: &CallToolResult) {
        let value = result.structured_content.clone().unwrap_or(Value::Null);
        self.record(&value, result.is_error == Some(true))
            .append_to(ctx.store.dir(), &ctx.env);
    }
}
