//! Turning operation results into tool results: success is structured
//! content plus the same JSON as text; failure is `isError` with
//! `{error, hint, kind, steps?, suggested_actions}`.

use kastell_core::Error;
use rmcp::model::CallToolResult;
use serde::Serialize;

use crate::ops::{Action, Candidate, Context, OpError, OpResult, suggest};

/// A success: `value` as structured content and as text.
pub(super) fn success<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => CallToolResult::structured(v),
        Err(e) => failure(OpError::from(Error::unexpected(format!(
            "could not serialise the result: {e}"
        )))),
    }
}

/// A failure: `isError` with the error as structured content and text.
pub(super) fn failure(err: OpError) -> CallToolResult {
    let value = serde_json::to_value(&err).unwrap_or_else(
        |_| serde_json::json!({"error": err.error, "hint": err.hint, "suggested_actions": []}),
    );
    CallToolResult::structured_error(value)
}

/// `result` wrapped by `wrap` on success, or the failure.
pub(super) fn finish<T, O: Serialize>(
    result: OpResult<T>,
    wrap: impl FnOnce(T) -> O,
) -> CallToolResult {
    match result {
        Ok(value) => success(&wrap(value)),
        Err(err) => failure(err),
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
            Action::InfoList,
            "See the servers and their names",
        )],
    );
    failure(OpError::from(err).with_suggestions(suggestions))
}
