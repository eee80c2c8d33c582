//! The tools' own arguments (`action`, `server`, `dryRun`, `planToken`)
//! and the checks every call passes before an operation parses the rest.
//! Arguments arrive as a raw JSON object, so a malformed call (unknown
//! action, wrong type, an oversized string) becomes an `isError` result
//! with a hint instead of a protocol error.

use kastell_core::{Error, ErrorKind};
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::strict::{self, ToolArgs};

/// The longest string any argument may hold.
pub(crate) const MAX_ARG_LEN: usize = 256;

/// The longest `planToken` accepted (a sealed token is about 350 bytes).
pub(crate) const MAX_TOKEN_LEN: usize = 1024;

/// The confirmation arguments of the tools whose actions overwrite or
/// delete: the surface's own, never an operation's.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfirmArgs {
    /// Actions that ask first: change nothing; return the plan (what would
    /// be overwritten, the newest backup, what a snapshot first would cost)
    /// and who confirms the real call (only with confirm: plan-token and a
    /// client that cannot ask its user, also a planToken for exactly these
    /// arguments, valid for a few minutes).
    #[serde(default)]
    pub(crate) dry_run: bool,
    /// The planToken a dryRun returned, to carry out that plan: once, for
    /// the same arguments and server state, before it expires; never
    /// instead of asking a user who can be asked.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub(crate) plan_token: Option<String>,
}

/// The arguments every tool reads itself, before its action's: which
/// action, on which server, and how it is confirmed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SurfaceArgs {
    /// The action.
    pub(crate) action: String,
    /// Server name or IP.
    #[serde(default)]
    pub(crate) server: Option<String>,
    /// The confirmation arguments.
    #[serde(flatten)]
    pub(crate) confirm: ConfirmArgs,
}

/// The names of [`SurfaceArgs`]' fields on the wire.
pub(crate) const SURFACE_ARGS: &[&str] = &["action", "server", "dryRun", "planToken"];

/// A bad-arguments error with a hint.
fn invalid(message: impl Into<String>, hint: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_hint(hint.to_owned())
}

fn check_lengths(map: &serde_json::Map<String, serde_json::Value>) -> Result<(), Error> {
    for (key, v) in map {
        if key.len() > MAX_ARG_LEN {
            return Err(invalid(
                "An argument name is too long",
                "Use the tool's schema",
            ));
        }
        let limit = if key == "planToken" {
            MAX_TOKEN_LEN
        } else {
            MAX_ARG_LEN
        };
        if let serde_json::Value::String(s) = v
            && s.len() > limit
        {
            return Err(invalid(
                format!("Argument {key} is too long ({} bytes)", s.len()),
                "Arguments are at most 256 characters; pass a server name or IP",
            ));
        }
    }
    Ok(())
}

/// Refuses strings over [`MAX_ARG_LEN`], arguments `tool` does not know
/// and arguments their action does not use ([`strict::check`]), naming
/// what was wrong (never echoing the whole value).
pub(super) fn screen(
    tool: &ToolArgs,
    arguments: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Error> {
    check_lengths(arguments)?;
    strict::check(tool, arguments)
}

/// `arguments` without those whose value is `null`: an optional argument
/// set to `null` counts as absent (clients fill optional fields with it),
/// before the surface's and the operation's own are parsed.
pub(super) fn given(arguments: JsonObject) -> impl Iterator<Item = (String, serde_json::Value)> {
    arguments.into_iter().filter(|(_, value)| !value.is_null())
}

/// `value` parsed as `T`, or an error naming `tool` and what was wrong.
pub(super) fn parse<T: DeserializeOwned>(tool: &str, value: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| invalid_for(tool, &e.to_string()))
}

/// The error for arguments of `tool` that did not parse (`text`: what
/// serde said, cut at 300 bytes).
pub(super) fn invalid_for(tool: &str, text: &str) -> Error {
    let mut text = text.to_owned();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    invalid(
        format!("Invalid arguments for {tool}: {text}"),
        "Check the tool's input schema: action must be one of its listed values",
    )
}

/// `server`: empty or blank counts as absent.
pub(super) fn server(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.trim().is_empty())
}
