//! Each tool call's entry in the audit log ([`crate::audit`]): who asked
//! (the client's name and version), what (the action and its arguments,
//! redacted), how a destructive call was confirmed, and how it ended.

use std::time::Instant;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use serde_json::Value;

use crate::audit::{AuditSurface, CallRecord};
use crate::ops::Context;

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

    /// Appends the call's outcome, `result`, to the log of `ctx`'s store.
    pub(crate) fn finish(&self, ctx: &Context, result: &CallToolResult) {
        let value = result.structured_content.clone().unwrap_or(Value::Null);
        CallRecord {
            surface: AuditSurface::Mcp,
            client: self.client.clone(),
            op: &self.op,
            server: self.server.clone(),
            args: self.args.clone(),
            confirmed: self.confirmed.clone(),
            result: &value,
            failed: result.is_error == Some(true),
            duration: self.started.elapsed(),
        }
        .append_to(ctx.store.dir(), &ctx.env);
    }
}
