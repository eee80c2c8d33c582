//! One parsed tool call: which operation, on which server, with which
//! confirmation arguments and the operation's own arguments parsed; how it
//! runs and renders.

use std::sync::Arc;

use kastell_core::Error;
use rmcp::model::{CallToolResult, JsonObject};
use serde_json::Value;

use super::params::{self, SURFACE_ARGS, SurfaceArgs};
use super::render::{failure, tagged, tagged_as};
use super::tools;
use crate::ops::{Context, Dyn, Invocation};
use crate::policy::OpId;

/// The `action` of a fleet-wide status ([`crate::ops::FleetStatus`]).
pub(crate) const FLEET_STATUS: &str = "fleet-status";

/// A tool call whose arguments parsed.
#[derive(Clone)]
pub(crate) struct Call {
    /// The tool called.
    pub(crate) tool: &'static str,
    /// The operation its action names.
    pub(crate) op: &'static dyn Dyn,
    /// The call with the operation's arguments.
    pub(crate) invocation: Arc<dyn Invocation>,
    /// The surface's own arguments.
    surface: SurfaceArgs,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("tool", &self.tool)
            .field("invocation", &self.invocation)
            .field("server", &self.surface.server)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Parses a call of tool `name`: `None` for a tool kastell does not
    /// have, else the call or what was wrong with its arguments.
    pub(crate) fn parse(name: &str, arguments: JsonObject) -> Option<Result<Self, Error>> {
        let served = tools::find(name)?;
        Some(Self::parse_in(served, arguments))
    }

    fn parse_in(served: &'static tools::ServedTool, arguments: JsonObject) -> Result<Self, Error> {
        let tool = served.args.tool;
        params::screen(&served.args, &arguments)?;
        let (surface, own): (JsonObject, JsonObject) =
            params::given(arguments).partition(|(key, _)| SURFACE_ARGS.contains(&key.as_str()));
        let surface: SurfaceArgs = params::parse(tool, Value::Object(surface))?;
        let Some(op) = served.op(&surface.action) else {
            let listed: Vec<String> = served.actions().iter().map(|a| format!("`{a}`")).collect();
            return Err(params::invalid_for(
                tool,
                &format!(
                    "unknown variant `{}`, expected one of {}",
                    surface.action,
                    listed.join(", ")
                ),
            ));
        };
        let invocation = op
            .call_from_json(own)
            .map_err(|text| params::invalid_for(tool, &text))?;
        Ok(Self {
            tool,
            op,
            invocation,
            surface,
        })
    }

    /// The operation's identity.
    pub(crate) fn id(&self) -> OpId {
        self.op.id()
    }

    /// The action's name (`backup-create`, `maintain`, ...).
    pub(crate) fn label(&self) -> &'static str {
        self.op
            .spec()
            .mcp
            .map_or(self.op.spec().rule.id, |m| m.action)
    }

    /// Whether this is long work, as the operation's row says
    /// ([`crate::policy::Rule::long_running`]): backups and restores,
    /// snapshot creation and restore, updates, reboots and maintenance.
    /// Long work reports progress, may be cancelled at its safe points, and
    /// runs as a task for clients that support tasks.
    pub(crate) fn is_long(&self) -> bool {
        self.op.spec().rule.long_running
    }

    /// The server it names (empty counts as absent).
    pub(crate) fn server(&self) -> Option<&str> {
        params::server(&self.surface.server)
    }

    /// Whether this is `status` without a server on a fleet of more than
    /// one, answered with every server's status
    /// ([`crate::ops::fleet_status`]) instead of asking which.
    fn is_fleet_status(&self, ctx: &Context) -> bool {
        self.server().is_none()
            && self.id() == <crate::ops::StatusOp as crate::ops::Operation>::ID
            && ctx.store.servers().is_ok_and(|s| s.len() > 1)
    }

    /// Whether it asks for the plan only.
    pub(crate) fn dry_run(&self) -> bool {
        self.surface.confirm.dry_run
    }

    /// The plan token it carries.
    pub(crate) fn plan_token(&self) -> Option<&str> {
        self.surface.confirm.plan_token.as_deref()
    }

    /// Runs the call in `ctx` (whose progress hook receives the
    /// operation's steps) and renders its result, tagged with its action.
    pub(crate) async fn run(self, ctx: &Context) -> CallToolResult {
        if self.is_fleet_status(ctx) {
            return match crate::ops::fleet_status(ctx).await {
                Ok(body) => tagged_as(FLEET_STATUS, &body),
                Err(err) => failure(err),
            };
        }
        match self.invocation.run(ctx, self.server()).await {
            Ok(done) => tagged(self.label(), done.body),
            Err(err) => failure(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Every argument of every action of every tool, `null`: as if none
    /// was given (README: `null` counts as absent).
    #[test]
    fn a_null_argument_counts_as_absent_for_every_action() {
        for served in tools::served() {
            for action in &served.args.actions {
                let mut arguments = JsonObject::new();
                arguments.insert("action".into(), json!(action.action));
                // Every name the tool knows (an unknown one is refused
                // whatever its value).
                for name in served.args.known() {
                    if name != "action" {
                        arguments.insert(name.to_owned(), Value::Null);
                    }
                }
                let parsed = Call::parse(served.args.tool, arguments.clone())
                    .expect("a served tool")
                    .unwrap_or_else(|e| panic!("{} {}: {e}", served.args.tool, action.action));
                assert!(!parsed.dry_run(), "{}", action.action);
                assert_eq!(parsed.plan_token(), None);
                assert_eq!(parsed.server(), None);
                assert_eq!(parsed.label(), action.action);
                let without = JsonObject::from_iter([("action".to_owned(), json!(action.action))]);
                let plain = Call::parse(served.args.tool, without)
                    .expect("a served tool")
                    .unwrap();
                assert_eq!(
                    parsed.invocation.args(),
                    plain.invocation.args(),
                    "{} {}",
                    served.args.tool,
                    action.action
                );
            }
        }
    }
}
