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
        for (name, property) in super::super::schema::properties_of(op.args_schema(&mut generator))
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
    let tags_of = |schema: &Value| -> Vec<String> {
        schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b.pointer("/properties/action/const")?.as_str())
            .map(str::to_owned)
            .collect()
    };
    let tags = tags_of(&schema);
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
    assert_eq!(tags_of(&schema), expected);
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
    assert_eq!(enums(&disruptive, MAINTAIN).unwrap().len(), 4);
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
/// 67 KB), and each tool's output schema is a small share of it.
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
                assert!(
                    super::super::schema::declared(&lean, field).is_some(),
                    "{}: {field}",
                    served.tool.name
                );
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
                 backup-restore, snapshot-create, snapshot-delete, snapshot-restore, \
                 snapshot-rotate, recover; server_maintain update, restart, maintain, rollout. They exist with \
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
