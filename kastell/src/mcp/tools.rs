//! The tool definitions `tools/list` returns: name, title, description,
//! input and output schema (see [`super::schema`]) and the four behaviour
//! annotations, derived from the operations table for the most a tool's
//! actions can do (a tool that lists and also deletes is destructive).

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};

use super::output::{BackupOutput, InfoOutput, LogsOutput, MaintainOutput};
use super::params::{BackupArgs, InfoArgs, LogsArgs, MaintainArgs};
use super::schema::{input, output_or_failure};
use crate::ops::{Action, OpError};
use crate::policy::{Rule, SafetyLevel};
use serde_json::Value;

/// `server_backup`.
pub(crate) const BACKUP: &str = "server_backup";
/// `server_maintain`.
pub(crate) const MAINTAIN: &str = "server_maintain";
/// `server_info`.
pub(crate) const INFO: &str = "server_info";
/// `server_logs`.
pub(crate) const LOGS: &str = "server_logs";

/// The operations-table rows of `tool`'s actions.
fn rules_of(tool: &str) -> impl Iterator<Item = &'static Rule> + '_ {
    Action::ALL
        .into_iter()
        .filter(move |a| a.parts().0 == tool)
        .map(|a| a.parts().2.rule())
}

/// MCP's hints for `tool`: read-only when every action only reads,
/// destructive when any asks first (interrupts service or loses data),
/// idempotent when every action is; open-world always (every tool reaches
/// servers and provider APIs outside kastell).
pub(crate) fn annotations(tool: &str, title: &str) -> ToolAnnotations {
    let rules: Vec<&Rule> = rules_of(tool).collect();
    hints(title, &rules)
}

/// The hints of a tool titled `title` whose actions have `rules`.
fn hints(title: &str, rules: &[&Rule]) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(rules.iter().all(|r| r.reads_only()))
        .destructive(rules.iter().any(|r| r.asks_first()))
        .idempotent(rules.iter().all(|r| r.idempotent))
        .open_world(true)
}

fn tool(
    name: &'static str,
    title: &str,
    description: &'static str,
    schemas: (Arc<rmcp::model::JsonObject>, Arc<rmcp::model::JsonObject>),
) -> Tool {
    let (input_schema, output_schema) = schemas;
    let annotations = annotations(name, title);
    Tool::new(name, description, input_schema)
        .with_title(title)
        .with_raw_output_schema(output_schema)
        .with_annotations(annotations)
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
            let kept: Vec<&'static Rule> = rules_of(&tool.name)
                .filter(|r| highest.admits(r.category))
                .collect();
            if kept.is_empty() {
                return None;
            }
            let names: Vec<&str> = Action::ALL
                .into_iter()
                .filter(|a| a.parts().0 == tool.name && highest.admits(a.parts().2.rule().category))
                .map(|a| a.parts().1)
                .collect();
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
            let annotations = hints(tool.title.as_deref().unwrap_or_default(), &kept);
            let mut offered = tool.clone();
            offered.input_schema = Arc::new(schema);
            offered.annotations = Some(annotations);
            Some(offered)
        })
        .collect()
}

/// Every tool, built once per process and shared by every session (over
/// HTTP a session, or a stateless request, gets its own server: the
/// schemas are not generated again for each).
pub(crate) fn shared() -> Arc<Vec<Tool>> {
    static TOOLS: std::sync::LazyLock<Arc<Vec<Tool>>> =
        std::sync::LazyLock::new(|| Arc::new(all()));
    TOOLS.clone()
}

/// Every tool, in the order `tools/list` returns them.
pub(crate) fn all() -> Vec<Tool> {
    vec![
        tool(
            BACKUP,
            "Server backups and snapshots",
            "Back up and restore a server, and manage its cloud provider snapshots. \
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
            (
                input::<BackupArgs>(),
                output_or_failure::<BackupOutput, OpError>(),
            ),
        ),
        tool(
            MAINTAIN,
            "Server updates, reboots and maintenance",
            "Update, restart or fully maintain a server. update runs the platform's \
update (Coolify or Dokploy update script; a package upgrade on bare servers). restart reboots the \
server through its provider (over SSH for manually added servers), proves the reboot by a changed \
boot id, then waits for SSH and platform health. maintain runs status check, update, health check, \
reboot and final check, reporting every step with its duration; a failed health check after the \
update skips the reboot unless rebootEvenIfUnhealthy is set; skipReboot skips it; snapshot takes \
and awaits a provider snapshot first (billable, needs the provider token). Bare servers are \
maintained too (reboot only when the upgrade requires it). SAFE_MODE (on by default) blocks all \
three actions; set KASTELL_SAFE_MODE=false to allow them.",
            (
                input::<MaintainArgs>(),
                output_or_failure::<MaintainOutput, OpError>(),
            ),
        ),
        tool(
            INFO,
            "Server information",
            "Read-only server information. list shows every server in the local fleet \
store (name, IP, provider, platform). status checks SSH reachability and the boot id, and the \
provider's status when the server is a cloud server with a token. health runs the platform's \
health check (Coolify/Dokploy HTTP check; SSH on bare servers). Never changes anything; allowed \
in SAFE_MODE.",
            (
                input::<InfoArgs>(),
                output_or_failure::<InfoOutput, OpError>(),
            ),
        ),
        tool(
            LOGS,
            "Server logs and monitoring",
            "Read-only diagnostics over SSH. logs returns the last lines (default 100, at \
most 2000) of the system journal (journalctl, source system) or of the platform's container \
(docker logs, source platform; not on bare servers). monitor returns load averages \
(/proc/loadavg), memory (free -b) and root-disk use (df -P /). Never changes anything; allowed in \
SAFE_MODE.",
            (
                input::<LogsArgs>(),
                output_or_failure::<LogsOutput, OpError>(),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::params::{BACKUP_TOOL, INFO_TOOL, LOGS_TOOL, MAINTAIN_TOOL};
    use super::*;

    #[test]
    fn the_strict_argument_tables_match_the_input_schemas() {
        let tables = [BACKUP_TOOL, MAINTAIN_TOOL, INFO_TOOL, LOGS_TOOL];
        let tools = all();
        assert_eq!(tools.len(), tables.len());
        for (tool, table) in tools.iter().zip(tables) {
            assert_eq!(tool.name, table.tool);
            let schema = Value::Object(tool.input_schema.as_ref().clone());
            let mut properties: Vec<&str> = schema["properties"]
                .as_object()
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut known = table.known();
            properties.sort_unstable();
            known.sort_unstable();
            assert_eq!(properties, known, "{}", tool.name);
            let actions: Vec<&str> = schema["properties"]["action"]["enum"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let listed: Vec<&str> = table.actions.iter().map(|a| a.action).collect();
            assert_eq!(actions, listed, "{}", tool.name);
            assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
        }
    }

    /// Every surface that restates the operations table agrees with it:
    /// the MCP calls (long work, names), the strict-argument tables, the
    /// annotations, and the CLI's confirmation rules.
    #[test]
    fn every_surface_agrees_with_the_operations_table() {
        use super::super::call::Call;
        use crate::cli::op::Op;
        use crate::ops::MaintainOptions;

        let tables = [BACKUP_TOOL, MAINTAIN_TOOL, INFO_TOOL, LOGS_TOOL];
        for action in Action::ALL {
            let (tool, name, operation) = action.parts();
            let rule = operation.rule();
            let mut args = serde_json::Map::new();
            args.insert("action".into(), Value::String(name.into()));
            let call = Call::parse(tool, args)
                .unwrap_or_else(|| panic!("no tool {tool}"))
                .unwrap_or_else(|e| panic!("{tool} {name}: {e}"));
            assert_eq!(call.action(), action);
            assert_eq!(call.label(), name);
            assert_eq!(call.is_long(), rule.long_running, "{tool} {name}");
            let table = tables.iter().find(|t| t.tool == tool).unwrap();
            assert!(
                table.actions.iter().any(|a| a.action == name),
                "{tool} {name} is not in the strict-argument table"
            );
        }
        for tool in all() {
            let rules: Vec<&Rule> = Action::ALL
                .iter()
                .filter(|a| a.parts().0 == tool.name)
                .map(|a| a.parts().2.rule())
                .collect();
            let hints = tool.annotations.clone().unwrap_or_default();
            let reads = rules.iter().all(|r| r.reads_only());
            assert_eq!(hints.read_only_hint, Some(reads), "{}", tool.name);
            let harms = rules.iter().any(|r| r.asks_first());
            assert_eq!(hints.destructive_hint, Some(harms), "{}", tool.name);
        }
        let cli = [
            Op::BackupCreate(crate::ops::CreateOptions::default()),
            Op::BackupList(None),
            Op::BackupVerify(Default::default()),
            Op::BackupRestore(Default::default()),
            Op::SnapshotCreate,
            Op::SnapshotList,
            Op::SnapshotDelete("1".into()),
            Op::SnapshotRestore("1".into()),
            Op::Update,
            Op::Restart,
            Op::Maintain(MaintainOptions::default()),
        ];
        for op in cli {
            let rule = op.operation().rule();
            assert_eq!(op.destructive(), rule.asks_first(), "{}", op.title());
            assert_eq!(op.read_only(), rule.reads_only(), "{}", op.title());
            assert_eq!(op.title().replace(' ', "-"), rule.action, "{}", op.title());
        }
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
