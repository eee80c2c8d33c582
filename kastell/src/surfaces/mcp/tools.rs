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
action argument says when to use each action). Backups are taken over SSH (Coolify/Dokploy \
database and configuration, or the configured paths of a bare server) into the local store with \
SHA-256 checksums; with repo (a configured backup repository: encrypted, deduplicated, off this \
machine) they are also stored, listed and restored there. Snapshot actions need a cloud server (not \
manually added) and its provider's API token (HETZNER_TOKEN, DIGITALOCEAN_TOKEN, VULTR_TOKEN, \
LINODE_TOKEN). backup-restore, snapshot-delete and snapshot-restore need a person's yes: the user \
is asked (elicitation), or, for clients that cannot ask, the call waits until the operator \
approves the request it names (kastell approve ID) and runs when called again with the same \
arguments. Only where safety.json sets confirm: plan-token does the planToken of a dryRun confirm \
instead. The user's no is final.",
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
        description: "Read-only server information. list shows every server in the local fleet \
store (name, IP, provider, platform). status checks SSH reachability and the boot id, and the \
provider's status when the server is a cloud server with a token. health runs the platform's \
health check (Coolify/Dokploy HTTP check; SSH on bare servers). Never changes anything; allowed \
in SAFE_MODE.",
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
        .with_annotations(hints(spec.title, &rules));
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
            offered.annotations = Some(hints(tool.title.as_deref().unwrap_or_default(), &rules));
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
        let failure = branches.last().unwrap();
        assert_eq!(failure.get("properties"), None, "the failure has no tag");
        assert_eq!(failure["required"], serde_json::json!(["error", "kind"]));
        assert_eq!(schema["required"], serde_json::json!(["suggested_actions"]));
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
        let read = offered(&tools, Some(SafetyLevel::ReadOnly), false);
        assert_eq!(
            enums(&read, BACKUP).unwrap(),
            ["backup-list", "snapshot-list"]
        );
        assert_eq!(enums(&read, MAINTAIN), None);
        let backup = read.iter().find(|t| t.name == BACKUP).unwrap();
        let hints = backup.annotations.clone().unwrap();
        assert_eq!(hints.read_only_hint, Some(true));
        assert_eq!(hints.destructive_hint, Some(false));
        let disruptive = offered(&tools, Some(SafetyLevel::Disruptive), false);
        assert_eq!(enums(&disruptive, MAINTAIN).unwrap().len(), 3);
        assert!(
            !enums(&disruptive, BACKUP)
                .unwrap()
                .contains(&"backup-restore".to_owned())
        );
        let everything = offered(&tools, Some(SafetyLevel::Destructive), false);
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

    /// What `tools/list` weighs, as a client receives it (compact JSON):
    /// every tool with every action (SAFE_MODE off, no levels).
    fn listing_bytes(tools: &[Tool]) -> usize {
        serde_json::to_vec(&serde_json::json!({"tools": tools}))
            .map(|b| b.len())
            .unwrap_or(usize::MAX)
    }

    /// tools/list stays under 16 KB (it was 49 KB; the original's is
    /// 67 KB), with room left under that for new fields, and each tool's
    /// output schema is a small share of it.
    #[test]
    fn the_whole_listing_is_under_16_kb() {
        let tools = all();
        let bytes = listing_bytes(&tools);
        assert!(bytes < 16 * 1024, "tools/list is {bytes} bytes");
        for tool in &tools {
            let output = serde_json::to_vec(&tool.output_schema).unwrap().len();
            assert!(
                output < 4 * 1024,
                "{}: output schema of {output} bytes",
                tool.name
            );
        }
    }

    /// The lean output schemas still describe every result: each field of
    /// every result type is declared at the root, and each action's branch
    /// requires what its result always has.
    #[test]
    fn the_lean_output_schema_keeps_every_field_and_what_each_action_requires() {
        for served in served() {
            let lean = Value::Object(served.tool.output_schema.clone().unwrap().as_ref().clone());
            let full = full_output_schema(&served.tool.name).unwrap();
            assert!(lean.get("$defs").is_none(), "{}", served.tool.name);
            assert!(
                !serde_json::to_string(&lean)
                    .unwrap()
                    .contains("description")
            );
            let root = lean["properties"].as_object().unwrap();
            // No field common to every result (server_info's fleet
            // status shares none) leaves no root `required`.
            let required_everywhere: Vec<&Value> = lean
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().collect())
                .unwrap_or_default();
            for (full_branch, lean_branch) in full["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .zip(lean["oneOf"].as_array().unwrap())
            {
                let name = full_branch["$ref"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap();
                let def = &full["$defs"][name];
                for field in def["properties"].as_object().unwrap().keys() {
                    assert!(root.contains_key(field), "{}: {field}", served.tool.name);
                }
                let required = lean_branch["required"].as_array().unwrap();
                for field in def["required"].as_array().unwrap() {
                    assert!(
                        required.contains(field) || required_everywhere.contains(&field),
                        "{} {name}: {field} not required",
                        served.tool.name
                    );
                }
                assert_eq!(
                    lean_branch.pointer("/properties/action/const"),
                    full_branch.pointer("/properties/action/const")
                );
            }
        }
    }

    /// In SAFE_MODE, tools/list offers only what SAFE_MODE lets run: no
    /// server_maintain (all three actions blocked), server_backup without
    /// restore and snapshot changes; and each description says which
    /// actions exist with SAFE_MODE off. Off, everything is offered as
    /// built.
    #[test]
    fn safe_mode_offers_only_what_it_lets_run_and_says_what_else_exists() {
        let tools = all();
        let on = offered(&tools, None, true);
        let names: Vec<&str> = on.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, [BACKUP, INFO, LOGS]);
        let backup = on.iter().find(|t| t.name == BACKUP).unwrap();
        let actions = &backup.input_schema["properties"]["action"];
        assert_eq!(
            actions["enum"],
            serde_json::json!(["backup-create", "backup-list", "snapshot-list"])
        );
        let described = actions["description"].as_str().unwrap();
        assert!(!described.contains("backup-restore"), "{described}");
        for op in catalog::all() {
            let Some(mcp) = op.spec().mcp else { continue };
            let offered = on.iter().find(|t| t.name == mcp.tool).is_some_and(|t| {
                t.input_schema["properties"]["action"]["enum"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::String(mcp.action.into()))
            });
            assert_eq!(
                offered,
                op.spec().rule.safe_mode.is_none(),
                "{}",
                mcp.action
            );
        }
        for tool in &on {
            let text = tool.description.as_deref().unwrap();
            assert!(
                text.ends_with(
                    "SAFE_MODE is on, so these actions are not offered: server_backup \
                     backup-restore, snapshot-create, snapshot-delete, snapshot-restore; \
                     server_maintain update, restart, maintain. They exist with \
                     KASTELL_SAFE_MODE=false; tell the user when one is needed."
                ),
                "{text}"
            );
        }
        let hints = backup.annotations.clone().unwrap();
        assert_eq!(hints.destructive_hint, Some(false));
        let off = offered(&tools, None, false);
        assert_eq!(off, tools);
    }
}
