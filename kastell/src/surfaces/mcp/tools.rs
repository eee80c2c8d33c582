//! The tool definitions `tools/list` returns, derived from the operations
//! that name each tool ([`crate::ops::catalog`]): the `action` enum and its
//! description, the input schema (the surface's own arguments plus every
//! operation's), the output schema (one branch per operation's body, tagged
//! by `action`, plus the plan and approval answers of tools whose actions
//! overwrite or delete, plus the failure), the strict per-action argument
//! table and the four behaviour annotations, for the most a tool's actions
//! can do (a tool that lists and also deletes is destructive).
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
    /// What the `action` description says after each action's sentence.
    action_note: &'static str,
    /// The description of its `server` argument.
    server_doc: &'static str,
}

const SERVER_DOC: &str = "Server name or IP. Optional when exactly one server exists; an empty\nstring counts as absent.";

/// The four tools, in the order `tools/list` returns them.
static TOOLS: [ToolSpec; 4] = [
    ToolSpec {
        name: BACKUP,
        title: "Server backups and snapshots",
        description: "Back up and restore a server, and manage its cloud provider snapshots. \
backup-create backs the server up over SSH (Coolify/Dokploy database and configuration, or the \
configured paths of a bare server) into the local store with SHA-256 checksums; backup-list lists \
local backups newest first; backup-restore verifies a backup, takes a safety backup, stops the \
platform, restores and starts it again (backupId required, from backup-list). With repo (a \
configured backup repository: encrypted, deduplicated, off this machine) backup-create also stores \
the new backup there, backup-list lists the backups held there and backup-restore restores one from \
there. snapshot-create takes \
a provider snapshot and waits until it is available (billable); snapshot-list lists the server's \
snapshots; snapshot-delete deletes one and snapshot-restore rebuilds the server's disk from one \
(snapshotId required, from snapshot-list). Snapshot actions need a cloud server (not manually \
added) and its provider's API token (HETZNER_TOKEN, DIGITALOCEAN_TOKEN, VULTR_TOKEN, LINODE_TOKEN). \
SAFE_MODE (on by default) blocks backup-restore, snapshot-create, snapshot-delete and \
snapshot-restore; set KASTELL_SAFE_MODE=false to allow them. Even then backup-restore, \
snapshot-delete and snapshot-restore need a person's yes: the user is asked (elicitation), or, for \
clients that cannot ask, the call waits until the operator approves the request it names \
(kastell approve ID) and runs when called again with the same arguments. Only where safety.json \
sets confirm: plan-token does the planToken of a dryRun confirm instead. The user's no is final.",
        action_note: "SAFE_MODE blocks backup-restore, snapshot-create, snapshot-delete and snapshot-restore. Snapshot actions need a cloud server and its provider's API token.",
        server_doc: SERVER_DOC,
    },
    ToolSpec {
        name: MAINTAIN,
        title: "Server updates, reboots and maintenance",
        description: "Update, restart or fully maintain a server. update runs the platform's \
update (Coolify or Dokploy update script; a package upgrade on bare servers). restart reboots the \
server through its provider (over SSH for manually added servers), proves the reboot by a changed \
boot id, then waits for SSH and platform health. maintain runs status check, update, health check, \
reboot and final check, reporting every step with its duration; a failed health check after the \
update skips the reboot unless rebootEvenIfUnhealthy is set; skipReboot skips it; snapshot takes \
and awaits a provider snapshot first (billable, needs the provider token). Bare servers are \
maintained too (reboot only when the upgrade requires it). SAFE_MODE (on by default) blocks all \
three actions; set KASTELL_SAFE_MODE=false to allow them.",
        action_note: "SAFE_MODE blocks all three.",
        server_doc: SERVER_DOC,
    },
    ToolSpec {
        name: INFO,
        title: "Server information",
        description: "Read-only server information. list shows every server in the local fleet \
store (name, IP, provider, platform). status checks SSH reachability and the boot id, and the \
provider's status when the server is a cloud server with a token. health runs the platform's \
health check (Coolify/Dokploy HTTP check; SSH on bare servers). Never changes anything; allowed \
in SAFE_MODE.",
        action_note: "",
        server_doc: "Server name or IP (status, health). Optional when exactly one server\nexists; an empty string counts as absent.",
    },
    ToolSpec {
        name: LOGS,
        title: "Server logs and monitoring",
        description: "Read-only diagnostics over SSH. logs returns the last lines (default 100, at \
most 2000) of the system journal (journalctl, source system) or of the platform's container \
(docker logs, source platform; not on bare servers). monitor returns load averages \
(/proc/loadavg), memory (free -b) and root-disk use (df -P /). Never changes anything; allowed in \
SAFE_MODE.",
        action_note: "",
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
    let output = output_schema(&ops);
    let rules: Vec<&Rule> = ops.iter().map(|op| &op.spec().rule).collect();
    let tool = Tool::new(spec.name, spec.description, Arc::new(input))
        .with_title(spec.title)
        .with_raw_output_schema(Arc::new(output))
        .with_annotations(hints(spec.title, &rules));
    Some(ServedTool { tool, ops, args })
}

/// The `action` description: each action's sentence, then the tool's note.
fn action_doc(spec: &ToolSpec, ops: &[&'static dyn Dyn]) -> String {
    let mut parts: Vec<String> = ops
        .iter()
        .filter_map(|op| op.spec().mcp)
        .map(|m| format!("{}: {}", m.action, m.doc))
        .collect();
    if !spec.action_note.is_empty() {
        parts.push(spec.action_note.to_owned());
    }
    parts.join(" ")
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
        json!({"description": action_doc(spec, ops), "enum": actions, "type": "string"}),
    );
    let confirm = schema::input_properties::<ConfirmArgs>();
    let mut table = Vec::new();
    for op in ops {
        let mut args = Vec::new();
        if op.spec().scope == Scope::Server {
            properties.entry("server").or_insert_with(|| {
                json!({"default": null, "description": spec.server_doc, "maxLength": 256, "type": ["string", "null"]})
            });
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

/// The hints of a tool titled `title` whose actions have `rules`.
fn hints(title: &str, rules: &[&Rule]) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(rules.iter().all(|r| r.reads_only()))
        .destructive(rules.iter().any(|r| r.asks_first()))
        .idempotent(rules.iter().all(|r| r.idempotent))
        .open_world(true)
}

/// `tools` as offered when no server may go above `highest`: each tool's
/// `action` enum keeps only the actions `highest` admits, and a tool left
/// with none is dropped (an empty enum is not a schema clients accept).
/// The annotations are derived again from what is left, so a
/// `server_backup` offering only lists says it only reads. A hidden
/// action called anyway is refused by the policy, naming the level.
pub(crate) fn offered(tools: &[Tool], highest: SafetyLevel) -> Vec<Tool> {
    tools
        .iter()
        .filter_map(|tool| {
            let kept: Vec<&'static dyn Dyn> = catalog::of_tool(&tool.name)
                .filter(|op| highest.admits(op.spec().rule.category))
                .collect();
            if kept.is_empty() {
                return None;
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
                action.insert(
                    "enum".into(),
                    Value::Array(names.iter().map(|n| Value::String((*n).into())).collect()),
                );
            }
            let annotations = hints(tool.title.as_deref().unwrap_or_default(), &rules);
            let mut offered = tool.clone();
            offered.input_schema = Arc::new(schema);
            offered.annotations = Some(annotations);
            Some(offered)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_strict_argument_tables_match_the_input_schemas() {
        for served in served() {
            let schema = Value::Object(served.tool.input_schema.as_ref().clone());
            let mut properties: Vec<&str> = schema["properties"]
                .as_object()
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut known = served.args.known();
            properties.sort_unstable();
            known.sort_unstable();
            assert_eq!(properties, known, "{}", served.tool.name);
            let actions: Vec<&str> = schema["properties"]["action"]["enum"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let listed: Vec<&str> = served.args.actions.iter().map(|a| a.action).collect();
            assert_eq!(actions, listed, "{}", served.tool.name);
            assert_eq!(actions, served.actions(), "{}", served.tool.name);
            assert_eq!(
                schema["additionalProperties"], false,
                "{}",
                served.tool.name
            );
        }
    }

    /// Every operation MCP offers is reachable through its tool, parses
    /// with no arguments of its own, runs as long work exactly when its row
    /// says so, and declares each argument it shares with another action
    /// of its tool exactly as that one does.
    #[test]
    fn every_action_is_its_operation() {
        for op in crate::ops::catalog::all() {
            let Some(mcp) = op.spec().mcp else { continue };
            let mut args = serde_json::Map::new();
            args.insert("action".into(), Value::String(mcp.action.into()));
            let call = super::super::call::Call::parse(mcp.tool, args)
                .unwrap_or_else(|| panic!("no tool {}", mcp.tool))
                .unwrap_or_else(|e| panic!("{} {}: {e}", mcp.tool, mcp.action));
            assert_eq!(call.id(), op.id());
            assert_eq!(call.label(), mcp.action);
            assert_eq!(
                call.is_long(),
                op.spec().rule.long_running,
                "{}",
                mcp.action
            );
            let served = find(mcp.tool).unwrap();
            let schema = Value::Object(served.tool.input_schema.as_ref().clone());
            let mut generator = super::super::schema::input_generator();
            for (name, property) in
                super::super::schema::properties_of(op.args_schema(&mut generator))
            {
                assert_eq!(
                    schema["properties"][&name], property,
                    "{} declares {name} unlike another action of {}",
                    mcp.action, mcp.tool
                );
            }
        }
    }

    #[test]
    fn annotations_follow_the_rows_of_each_tools_operations() {
        for served in served() {
            let hints = served.tool.annotations.clone().unwrap_or_default();
            let rules: Vec<&Rule> = served.ops.iter().map(|op| &op.spec().rule).collect();
            let reads = rules.iter().all(|r| r.reads_only());
            assert_eq!(hints.read_only_hint, Some(reads), "{}", served.tool.name);
            let harms = rules.iter().any(|r| r.asks_first());
            assert_eq!(hints.destructive_hint, Some(harms), "{}", served.tool.name);
        }
    }

    #[test]
    fn a_tools_output_lists_every_action_then_the_answers_then_the_failure() {
        let backup = find(BACKUP).unwrap();
        let schema = Value::Object(backup.tool.output_schema.clone().unwrap().as_ref().clone());
        let tags: Vec<&str> = schema["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut expected = backup.actions();
        expected.extend(["plan", "approval-pending"]);
        assert_eq!(tags, expected);
        let branches = schema["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), expected.len() + 1);
        assert_eq!(branches.last().unwrap()["$ref"], "#/$defs/OpError");
        let info = find(INFO).unwrap();
        let schema = Value::Object(info.tool.output_schema.clone().unwrap().as_ref().clone());
        // server_info also answers `status` without a server for the fleet.
        let mut expected = info.actions();
        expected.push(super::super::call::FLEET_STATUS);
        let tags: Vec<&str> = schema["properties"]["action"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(tags, expected);
        assert_eq!(
            schema["oneOf"].as_array().unwrap().len(),
            expected.len() + 1
        );
    }

    #[test]
    fn a_level_narrows_each_tools_actions_and_hints() {
        let tools = all();
        let enums = |offered: &[Tool], name: &str| -> Option<Vec<String>> {
            offered.iter().find(|t| t.name == name).map(|t| {
                t.input_schema["properties"]["action"]["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            })
        };
        let read = offered(&tools, SafetyLevel::ReadOnly);
        assert_eq!(
            enums(&read, BACKUP).unwrap(),
            ["backup-list", "snapshot-list"]
        );
        assert_eq!(enums(&read, MAINTAIN), None);
        let backup = read.iter().find(|t| t.name == BACKUP).unwrap();
        let hints = backup.annotations.clone().unwrap();
        assert_eq!(hints.read_only_hint, Some(true));
        assert_eq!(hints.destructive_hint, Some(false));
        let disruptive = offered(&tools, SafetyLevel::Disruptive);
        assert_eq!(enums(&disruptive, MAINTAIN).unwrap().len(), 3);
        assert!(
            !enums(&disruptive, BACKUP)
                .unwrap()
                .contains(&"backup-restore".to_owned())
        );
        let everything = offered(&tools, SafetyLevel::Destructive);
        assert_eq!(everything.len(), tools.len());
        for (a, b) in everything.iter().zip(&tools) {
            assert_eq!(a.input_schema, b.input_schema, "{}", a.name);
        }
    }

    #[test]
    fn annotations_say_what_each_tool_can_do_at_most() {
        for tool in all() {
            let hints = tool.annotations.clone().unwrap_or_default();
            let reads_only = tool.name == INFO || tool.name == LOGS;
            assert_eq!(hints.read_only_hint, Some(reads_only), "{}", tool.name);
            assert_eq!(hints.destructive_hint, Some(!reads_only), "{}", tool.name);
            assert_eq!(hints.idempotent_hint, Some(reads_only), "{}", tool.name);
            assert_eq!(hints.open_world_hint, Some(true), "{}", tool.name);
            assert!(tool.title.is_some(), "{}", tool.name);
        }
    }
}
