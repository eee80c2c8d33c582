//! Turning operation results into tool results: success is structured
//! content plus the same JSON as text; failure is `isError` with
//! `{error, hint, kind, steps?, suggested_actions}`.

#[allow(unused_imports)]
use crate::ops::Operation as _;
use crate::ops::ServerListOp;
use kastell_core::Error;
use rmcp::model::CallToolResult;
use serde::Serialize;

use crate::ops::{Candidate, Context, OpError, suggest};

/// A failure: `isError` with the error as structured content and text.
pub(super) fn failure(err: OpError) -> CallToolResult {
    let value = serde_json::to_value(&err).unwrap_or_else(
        |_| serde_json::json!({"error": err.error, "hint": err.hint, "suggested_actions": []}),
    );
    CallToolResult::structured_error(value)
}

/// A success: `body` (an object) tagged with `"action": action`, the way
/// each tool's output schema lists its branches.
pub(super) fn tagged(action: &str, body: serde_json::Value) -> CallToolResult {
    match body {
        serde_json::Value::Object(mut object) => {
            object.insert("action".into(), serde_json::Value::String(action.into()));
            CallToolResult::structured(serde_json::Value::Object(object))
        }
        _ => failure(OpError::from(Error::unexpected(format!(
            "the result of {action} is not an object"
        )))),
    }
}

/// [`tagged`] of a serialisable `body`.
pub(super) fn tagged_as<T: Serialize>(action: &str, body: &T) -> CallToolResult {
    match serde_json::to_value(body) {
        Ok(value) => tagged(action, value),
        Err(e) => failure(OpError::from(Error::unexpected(format!(
            "could not serialise the result: {e}"
        )))),
    }
}

/// Bad arguments: the error with a hint, suggesting the fleet list (always
/// allowed) so the agent can find a valid server.
pub(super) fn bad_input(ctx: &Context, err: Error) -> CallToolResult {
    let suggestions = suggest(
        &ctx.policy,
        ctx.surface,
        None,
        |p| ctx.token_present(p),
        vec![Candidate::new(
            ServerListOp::ID,
            "See the servers and their names",
        )],
    );
    failure(OpError::from(err).with_suggestions(suggestions))
}
