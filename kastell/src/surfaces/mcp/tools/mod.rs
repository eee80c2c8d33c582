//! The tool definitions `tools/list` returns, derived from the operations
//! that name each tool ([`crate::ops::catalog`]): the `action` enum and its
//! description, the input schema (the surface's own arguments plus every
//! operation's), the output schema (one branch per operation's body, tagged
//! by `action`, plus the plan and approval answers of tools whose actions
//! overwrite or delete, plus the failure; served in its lean form,
//! [`schema::lean`], the complete one is [`full_output_schema`]), the
//! strict per-action argument table and the four behaviour annotations,
//! for the most a tool's actions can do (a tool that lists and also
//! deletes is destructive). [`offered`] narrows them to what the safety
//! levels and SAFE_MODE let run.
//!
//! The four tools themselves (name, title, description) are this module's
//! table: an operation joins one by naming it.

use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

use super::approve::ApprovalPending;
use super::confirm::PlanOutput;
use super::params::ConfirmArgs;
use super::schema;
use super::strict::{ActionArgs, ToolArgs};
use crate::ops::{Dyn, OpError, Scope, catalog};
use crate::policy::{Category, Rule, SafetyLevel};

/// `server_backup`.
pub(crate) const BACKUP: &str = "server_backup";
/// `server_maintain`.
pub(crate) const MAINTAIN: &str = "server_maintain";
/// `server_info`.
pub(crate) const INFO: &str = "server_info";
/// `server_logs`.
pub(crate) const LOGS: &str = "server_logs";

/// One of the four tools: what `tools/list` says of it besides what its
/// operations say.
pub(crate) struct ToolSpec {
    /// Its name.
    pub(crate) name: &'static str,
    /// Its title.
    title: &'static str,
    /// Its description.
    description: &'static str,
    /// The description of its `server` argument.
    server_doc: &'static str,
}

const SERVER_DOC: &str = "Server name or IP. Optional when exactly one server exists; an empty\nstring counts as absent.";

/// The four tools, in the order `tools/list` returns them.
static TOOLS: [ToolSpec; 4] = [
    ToolSpec {
        name: BACKUP,
        title: "Server backups and snapshots",
        description: "Back up and restore a server, and manage its cloud provider snapshots (the \
action argument says when to use each action). Backups go over SSH into the local store with \
SHA-256 checksums, and with repo also into a backup repository. Snapshot actions need a cloud \
server (not manually added) and its provider's API token (HETZNER_TOKEN, DIGITALOCEAN_TOKEN, \
VULTR_TOKEN, LINODE_TOKEN). Actions that take dryRun need a person's yes: the user is asked \
(elicitation), or, for clients that cannot ask, the call waits until the operator approves the \
request it names (kastell approve ID) and runs when called again with the same arguments. Only \
where safety.json sets confirm: plan-token does the planToken of a dryRun confirm instead. The \
user's no is final.",
        server_doc: SERVER_DOC,
    },
    ToolSpec {
        name: MAINTAIN,
        title: "Server updates, reboots and maintenance",
        description: "Update, restart or fully maintain a server (the action argument says when \
to use each action), reporting every step with its duration. Bare servers are maintained too (a \
package upgrade; a reboot only when the upgrade requires it).",
        server_doc: SERVER_DOC,
    },
    ToolSpec {
        name: INFO,
        title: "Server information",
        description: "Read-only server information (the action argument says when to use each \
action). Never changes anything; allowed in SAFE_MODE.",
        server_doc: "Server name or IP (status, health). Optional when exactly one server\nexists; an empty string counts as absent.",
    },
    ToolSpec {
        name: LOGS,
        title: "Server logs and monitoring",
        description: "Read-only diagnostics over SSH (the action argument says when to use each \
action). Never changes anything; allowed in SAFE_MODE.",
        server_doc: SERVER_DOC,
    },
];

/// A tool as served: its definition, its operations and its argument
/// table.
pub(crate) struct ServedTool {
    /// What `tools/list` returns for it.
    pub(crate) tool: Tool,
    /// Its operations, in the `action` enum's order.
    pub(crate) ops: Vec<&'static dyn Dyn>,
    /// The arguments each action reads.
    pub(crate) args: ToolArgs,
}

impl ServedTool {
    /// The operation behind `action`.
    pub(crate) fn op(&self, action: &str) -> Option<&'static dyn Dyn> {
        self.ops
            .iter()
            .copied()
            .find(|op| op.spec().mcp.is_some_and(|m| m.action == action))
    }

    /// The names of its actions, in order.
    pub(crate) fn actions(&self) -> Vec<&'static str> {
        self.ops
            .iter()
            .filter_map(|op| op.spec().mcp.map(|m| m.action))
            .collect()
    }
}

/// Every tool, built once per process and shared by every session (over
/// HTTP a session, or a stateless request, gets its own server: the
/// schemas are not generated again for each).
pub(crate) fn served() -> &'static [ServedTool] {
    static SERVED: LazyLock<Vec<ServedTool>> =
        LazyLock::new(|| TOOLS.iter().filter_map(build).collect());
    SERVED.as_slice()
}

/// The served tool named `name`.
pub(crate) fn find(name: &str) -> Option<&'static ServedTool> {
    served().iter().find(|t| t.tool.name == name)
}

/// Every tool's definition, shared.
pub(crate) fn shared() -> Arc<Vec<Tool>> {
    static TOOLS: LazyLock<Arc<Vec<Tool>>> =
        LazyLock::new(|| Arc::new(served().iter().map(|t| t.tool.clone()).collect()));
    TOOLS.clone()
}

/// Every tool's definition, in the order `tools/list` returns them.
#[cfg(test)]
pub(crate) fn all() -> Vec<Tool> {
    shared().as_ref().clone()
}

/// Whether an operation's calls take the confirmation arguments: what
/// overwrites or deletes.
fn confirmable(op: &dyn Dyn) -> bool {
    op.spec().rule.category == Category::Destructive
}

/// The tool `spec` over its operations; none when no operation names it.
fn build(spec: &'static ToolSpec) -> Option<ServedTool> {
    let ops: Vec<&'static dyn Dyn> = catalog::of_tool(spec.name).collect();
    if ops.is_empty() {
        return None;
    }
    let (input, args) = input_schema(spec, &ops);
    let output = schema::lean(&output_schema(&ops));
    let rules: Vec<&Rule> = ops.iter().map(|op| &op.spec().rule).collect();
    let tool = Tool::new(spec.name, spec.description, Arc::new(input))
        .with_title(spec.title)
        .with_raw_output_schema(Arc::new(output))
        .with_annotations(hints(&rules));
    Some(ServedTool { tool, ops, args })
}

/// The `action` description: each action's sentence, saying when to use
/// it.
fn action_doc(ops: &[&'static dyn Dyn]) -> String {
    ops.iter()
        .filter_map(|op| op.spec().mcp)
        .map(|m| format!("{}: {}", m.action, m.doc))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The input schema and the per-action argument table of a tool over
/// `ops`. An argument two operations declare must be declared alike (a
/// test holds every tool to it); the first declaration is the tool's.
fn input_schema(spec: &ToolSpec, ops: &[&'static dyn Dyn]) -> (JsonObject, ToolArgs) {
    let mut properties = Map::new();
    let actions: Vec<&str> = ops
        .iter()
        .filter_map(|op| op.spec().mcp.map(|m| m.action))
        .collect();
    properties.insert(
        "action".into(),
        json!({"description": action_doc(ops), "enum": actions, "type": "string"}),
    );
    let confirm = schema::input_properties::<ConfirmArgs>();
    let mut table = Vec::new();
    for op in ops {
        let mut args = Vec::new();
        if op.spec().scope == Scope::Server {
            properties.entry("server").or_insert_with(
                || json!({"description": spec.server_doc, "maxLength": 256, "type": "string"}),
            );
            args.push("server".to_owned());
        }
        let mut generator = schema::input_generator();
        let own = schema::properties_of(op.args_schema(&mut generator));
        for (name, property) in own {
            args.push(name.clone());
            properties.entry(name).or_insert(property);
        }
        if confirmable(*op) {
            for (name, property) in &confirm {
                args.push(name.clone());
                properties
                    .entry(name.clone())
                    .or_insert_with(|| property.clone());
            }
        }
        if let Some(mcp) = op.spec().mcp {
            table.push(ActionArgs {
                action: mcp.action,
                args,
            });
        }
    }
    let mut input = Map::new();
    input.insert("additionalProperties".into(), Value::Bool(false));
    input.insert("properties".into(), Value::Object(properties));
    input.insert("required".into(), json!(["action"]));
    input.insert("type".into(), json!("object"));
    let args = ToolArgs {
        tool: spec.name,
        actions: table,
    };
    (input, args)
}

/// The output schema of a tool over `ops`: a union tagged by `action` of
/// each operation's body, the plan and approval answers when an action
/// asks first, and the failure.
fn output_schema(ops: &[&'static dyn Dyn]) -> JsonObject {
    let mut generator = schema::output_generator();
    let mut branches = Vec::new();
    let mut tags = Vec::new();
    let tagged = |tag: &str, reference: Value, description: String, tags: &mut Vec<Value>| {
        tags.push(json!(tag));
        let mut branch = match reference {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        branch.insert("description".into(), json!(description));
        branch.insert(
            "properties".into(),
            json!({"action": {"const": tag, "type": "string"}}),
        );
        branch.insert("required".into(), json!(["action"]));
        branch.insert("type".into(), json!("object"));
        Value::Object(branch)
    };
    for op in ops {
        let Some(mcp) = op.spec().mcp else { continue };
        let reference = schema::value_of(op.body_schema(&mut generator));
        branches.push(tagged(
            mcp.action,
            reference,
            format!("`{}`.", mcp.action),
            &mut tags,
        ));
    }
    if ops
        .iter()
        .any(|op| op.id() == <crate::ops::StatusOp as crate::ops::Operation>::ID)
    {
        let fleet = schema::value_of(generator.subschema_for::<crate::ops::FleetStatus>());
        branches.push(tagged(
            super::call::FLEET_STATUS,
            fleet,
            "`status` without a server on a fleet of more than one: every\nserver's status and newest backup.".to_owned(),
            &mut tags,
        ));
    }
    let asking: Vec<&str> = ops
        .iter()
        .filter(|op| confirmable(**op))
        .filter_map(|op| op.spec().mcp.map(|m| m.action))
        .collect();
    if !asking.is_empty() {
        let names = or_list(&asking);
        let plan = schema::value_of(generator.subschema_for::<PlanOutput>());
        branches.push(tagged(
            "plan",
            plan,
            format!("A dry run of {names}:\nthe plan (and, with `confirm: plan-token`, its token); nothing was\nchanged."),
            &mut tags,
        ));
        let pending = schema::value_of(generator.subschema_for::<ApprovalPending>());
        branches.push(tagged(
            "approval-pending",
            pending,
            format!("{names} waiting for the\noperator's approval (`kastell approve ID`); nothing was changed."),
            &mut tags,
        ));
    }
    branches.push(schema::value_of(generator.subschema_for::<OpError>()));
    schema::union(generator, branches, tags)
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The hints of a tool whose actions have `rules` (its title is the
/// tool's own `title`, not repeated here).
fn hints(rules: &[&Rule]) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(rules.iter().all(|r| r.reads_only()))
        .destructive(rules.iter().any(|r| r.asks_first()))
        .idempotent(rules.iter().all(|r| r.idempotent))
        .open_world(true)
}

/// Whether an operation can run under `highest` (no level configured:
/// any) with SAFE_MODE `safe_mode`.
fn runs_under(op: &dyn Dyn, highest: Option<SafetyLevel>, safe_mode: bool) -> bool {
    let rule = &op.spec().rule;
    highest.is_none_or(|level| level.admits(rule.category))
        && (!safe_mode || rule.safe_mode.is_none())
}

/// What the descriptions add when SAFE_MODE hides actions the levels
/// would allow: which, and how they become available, so an agent can
/// tell the user. `None` when SAFE_MODE hides nothing.
fn safe_mode_note(tools: &[Tool], highest: Option<SafetyLevel>) -> Option<String> {
    let hidden: Vec<String> = tools
        .iter()
        .filter_map(|tool| {
            let names: Vec<&str> = catalog::of_tool(&tool.name)
                .filter(|op| runs_under(*op, highest, false) && !runs_under(*op, highest, true))
                .filter_map(|op| op.spec().mcp.map(|m| m.action))
                .collect();
            (!names.is_empty()).then(|| format!("{} {}", tool.name, names.join(", ")))
        })
        .collect();
    (!hidden.is_empty()).then(|| {
        format!(
            "SAFE_MODE is on, so these actions are not offered: {}. They exist with \
             KASTELL_SAFE_MODE=false; tell the user when one is needed.",
            hidden.join("; ")
        )
    })
}

/// `tools` as offered when no server may go above `highest` (`None`: no
/// levels configured) and SAFE_MODE is `safe_mode`: each tool's `action`
/// enum keeps only the actions that can run (SAFE_MODE hides what it
/// blocks), and a tool left with none is dropped (an empty enum is not a
/// schema clients accept). The annotations are derived again from what is
/// left, so a `server_backup` offering only lists says it only reads;
/// when SAFE_MODE hid actions, every description says which and how to
/// get them. A hidden action called anyway is refused by the policy,
/// naming SAFE_MODE or the level.
pub(crate) fn offered(tools: &[Tool], highest: Option<SafetyLevel>, safe_mode: bool) -> Vec<Tool> {
    let note = if safe_mode {
        safe_mode_note(tools, highest)
    } else {
        None
    };
    tools
        .iter()
        .filter_map(|tool| {
            let all: Vec<&'static dyn Dyn> = catalog::of_tool(&tool.name).collect();
            let kept: Vec<&'static dyn Dyn> = all
                .iter()
                .copied()
                .filter(|op| runs_under(*op, highest, safe_mode))
                .collect();
            if kept.is_empty() {
                return None;
            }
            let mut offered = tool.clone();
            if let Some(note) = &note {
                offered.description = Some(
                    format!("{} {note}", tool.description.as_deref().unwrap_or_default()).into(),
                );
            }
            if kept.len() == all.len() {
                return Some(offered);
            }
            let names: Vec<&str> = kept
                .iter()
                .filter_map(|op| op.spec().mcp.map(|m| m.action))
                .collect();
            let rules: Vec<&Rule> = kept.iter().map(|op| &op.spec().rule).collect();
            let mut schema = tool.input_schema.as_ref().clone();
            if let Some(Value::Object(action)) = schema
                .get_mut("properties")
                .and_then(|p| p.get_mut("action"))
            {
                action.insert("description".into(), Value::String(action_doc(&kept)));
                action.insert(
                    "enum".into(),
                    Value::Array(names.iter().map(|n| Value::String((*n).into())).collect()),
                );
            }
            offered.input_schema = Arc::new(schema);
            offered.annotations = Some(hints(&rules));
            Some(offered)
        })
        .collect()
}

/// The complete output schema of the tool `name` (every result's fields
/// with their descriptions, nested types and which are required), of
/// which `tools/list` serves the lean form ([`schema::lean`]); `None` for
/// a tool no operation names. For documentation and contract tests.
pub fn full_output_schema(name: &str) -> Option<Value> {
    let ops: Vec<&'static dyn Dyn> = catalog::of_tool(name).collect();
    (!ops.is_empty()).then(|| Value::Object(output_schema(&ops)))
}

#[cfg(test)]
mod tests;
