//! The official MCP client SDKs against the real `kastell-mcp --sandbox`,
//! over stdio and over Streamable HTTP, each client of [`Sdk::ALL`]: the
//! TypeScript SDK v1 (Claude Desktop, Claude Code, Cursor, VS Code), its v2
//! client package negotiating 2026-07-28, and the Python SDK both on the
//! initialize handshake and letting it negotiate 2026-07-28.
//!
//! Each ends up on the protocol version it should, lists the tools (an
//! SDK that rejects a definition fails here), calls every read action,
//! backs a server up with progress, meets a SAFE_MODE refusal and a
//! strict-argument refusal, reads the fleet resource and lists the
//! prompts; with SAFE_MODE and confirmation off, it runs every action that
//! changes a server, and a dry run only plans.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};

use crate::sdk;
use sdk::{HttpServer, Sdk};

const TOKEN: &str = "conformance-test-token-0123456789";

/// The calls of every plan: (tool, arguments, progress wanted).
fn calls() -> Value {
    json!([
        {"name": "server_info", "arguments": {"action": "list"}},
        {"name": "server_info", "arguments": {"action": "status", "server": "manual-web"}},
        {"name": "server_info", "arguments": {"action": "health", "server": "manual-web"}},
        {"name": "server_logs", "arguments": {"action": "logs", "server": "manual-web", "lines": 5}},
        {"name": "server_logs", "arguments": {"action": "monitor", "server": "manual-web"}},
        {"name": "server_backup", "arguments": {"action": "backup-list", "server": "manual-web"}},
        {"name": "server_backup", "arguments": {"action": "snapshot-list", "server": "hetzner-web"}},
        {"name": "server_backup", "arguments": {"action": "backup-create", "server": "manual-web"}, "progress": true},
        {"name": "server_backup", "arguments": {"action": "snapshot-delete", "server": "hetzner-web", "snapshotId": "1"}},
        {"name": "server_maintain", "arguments": {"action": "maintain", "server": "manual-web", "skip_reboot": true}},
        {"name": "server_info", "arguments": {"action": "status"}}
    ])
}

/// What the call at `index` of a report returned (the SDK raised nothing).
fn result(report: &Value, index: usize) -> &Value {
    let call = &report["calls"][index];
    assert!(
        call.get("error").is_none(),
        "call {index} raised in the SDK: {call}"
    );
    &call["result"]
}

fn is_error(result: &Value) -> bool {
    result["isError"].as_bool().unwrap_or(false)
}

/// The protocol version `sdk` must have negotiated with kastell-mcp
/// (`None`: its report does not say, as TypeScript v1's does not).
fn negotiated(sdk: Sdk) -> Option<&'static str> {
    match sdk {
        Sdk::TypeScript => None,
        Sdk::TypeScriptV2 | Sdk::Python("auto") => Some("2026-07-28"),
        Sdk::Python(_) => Some("2025-11-25"),
    }
}

/// Everything a plan's report must show, whichever SDK and transport.
fn check(sdk: Sdk, transport: &str, report: &Value, stderr: &str) {
    let label = format!("{sdk:?} over {transport}");
    for key in [
        "connectError",
        "toolsError",
        "resourcesError",
        "promptsError",
    ] {
        assert!(report.get(key).is_none(), "{label}: {key}: {}", report[key]);
    }
    if let Some(version) = negotiated(sdk) {
        assert_eq!(report["protocolVersion"], version, "{label}: {report}");
    }
    let mut names: Vec<&str> = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: no tools in {report}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    // SAFE_MODE (on: the default) blocks every server_maintain action, so
    // the tool is not offered; the others say it exists with it off.
    assert_eq!(
        names,
        ["server_backup", "server_info", "server_logs"],
        "{label}"
    );
    for tool in report["tools"].as_array().unwrap() {
        let text = tool["description"].as_str().unwrap_or_default();
        assert!(
            text.contains("server_maintain update, restart, maintain"),
            "{label}: {text}"
        );
    }
    assert!(
        !stderr.contains("unknown format"),
        "{label}: the SDK warned about a schema format:\n{stderr}"
    );

    let reads = [
        (0, "list"),
        (1, "status"),
        (2, "health"),
        (3, "logs"),
        (4, "monitor"),
        (5, "backup-list"),
        (6, "snapshot-list"),
    ];
    for (index, action) in reads {
        let r = result(report, index);
        assert!(!is_error(r), "{label}: {action} failed: {r}");
        assert_eq!(r["structuredContent"]["action"], action, "{label}: {r}");
    }

    let created = result(report, 7);
    assert!(
        !is_error(created),
        "{label}: backup-create failed: {created}"
    );
    let progress = report["calls"][7]["progress"].as_array().unwrap();
    assert!(progress.len() >= 2, "{label}: progress {progress:?}");
    let values: Vec<f64> = progress
        .iter()
        .map(|p| p["progress"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "{label}: {values:?}"
    );

    let refused = result(report, 8);
    assert!(
        is_error(refused),
        "{label}: SAFE_MODE let snapshot-delete through: {refused}"
    );
    assert_eq!(
        refused["structuredContent"]["kind"], "permission_denied",
        "{label}"
    );
    assert!(
        refused["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("SAFE_MODE"),
        "{label}: {refused}"
    );

    let strict = result(report, 9);
    assert!(
        is_error(strict),
        "{label}: a misspelt argument was accepted: {strict}"
    );
    assert!(
        strict["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("unknown argument skip_reboot: did you mean skipReboot?"),
        "{label}: {strict}"
    );

    // Status without a server on the five-server sandbox: every server's,
    // validated by each SDK against the output schema.
    let fleet = result(report, 10);
    assert!(!is_error(fleet), "{label}: fleet status failed: {fleet}");
    assert_eq!(
        fleet["structuredContent"]["action"], "fleet-status",
        "{label}: {fleet}"
    );
    assert_eq!(fleet["structuredContent"]["serverCount"], 5, "{label}");

    let resources = report["resources"].as_array().unwrap();
    assert_eq!(resources[0]["uri"], "kastell://fleet", "{label}");
    let text = report["resourceReads"][0]["contents"][0]["text"]
        .as_str()
        .unwrap();
    let fleet: Value = serde_json::from_str(text).unwrap();
    assert_eq!(fleet["serverCount"], 5, "{label}: {fleet}");
    // The audit log, read through the SDK: an intact chain of entries.
    assert_eq!(resources[1]["uri"], "kastell://audit/recent", "{label}");
    let text = report["resourceReads"][1]["contents"][0]["text"]
        .as_str()
        .unwrap();
    let audit: Value = serde_json::from_str(text).unwrap();
    assert_eq!(audit["verify"]["ok"], true, "{label}: {audit}");
    assert!(audit["entries"].is_array(), "{label}: {audit}");
    let prompts: Vec<&str> = report["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["safe-maintenance", "backup-audit"], "{label}");
}

fn with_calls(mut plan: Value) -> Value {
    plan["calls"] = calls();
    plan["resources"] = json!(true);
    plan["prompts"] = json!(true);
    plan
}

#[test]
fn the_official_sdks_use_every_tool_over_stdio() {
    for sdk in Sdk::ALL {
        let home = tempfile::tempdir().unwrap();
        let plan = with_calls(sdk::stdio_plan(home.path(), &["--sandbox"], &[]));
        let (report, stderr) = sdk::run(sdk, &plan);
        check(sdk, "stdio", &report, &stderr);
    }
}

#[test]
fn the_official_sdks_use_every_tool_over_http() {
    let server = HttpServer::start(&["--sandbox"], &[("KASTELL_MCP_TOKEN", TOKEN)]);
    for sdk in Sdk::ALL {
        let plan = with_calls(server.plan(TOKEN));
        let (report, stderr) = sdk::run(sdk, &plan);
        check(sdk, "HTTP", &report, &stderr);
    }
    let log = server.stop();
    assert!(
        !log.contains(TOKEN),
        "the token reached the server's log:\n{log}"
    );
}

/// The calls of the plan that writes: every action that changes a server,
/// each id taken from the call that made it, and a dry run between.
fn writes() -> Value {
    let snapshot = json!({"$from": 0, "pointer": "/snapshot/id"});
    let backup = json!({"$from": 4, "field": "backupId"});
    json!([
        {"name": "server_backup", "arguments": {"action": "snapshot-create", "server": "hetzner-web"}, "progress": true},
        {"name": "server_backup", "arguments": {"action": "snapshot-list", "server": "hetzner-web"}},
        {"name": "server_backup", "arguments": {"action": "snapshot-restore", "server": "hetzner-web", "snapshotId": snapshot}},
        {"name": "server_backup", "arguments": {"action": "snapshot-delete", "server": "hetzner-web", "snapshotId": snapshot}},
        {"name": "server_backup", "arguments": {"action": "backup-create", "server": "manual-web"}},
        {"name": "server_backup", "arguments": {"action": "backup-restore", "server": "manual-web", "backupId": backup, "dryRun": true}},
        {"name": "server_backup", "arguments": {"action": "backup-list", "server": "manual-web"}},
        {"name": "server_backup", "arguments": {"action": "backup-restore", "server": "manual-web", "backupId": backup, "safety": "local"}},
        {"name": "server_maintain", "arguments": {"action": "update", "server": "manual-web"}},
        {"name": "server_maintain", "arguments": {"action": "restart", "server": "hetzner-web"}},
        {"name": "server_maintain", "arguments": {"action": "maintain", "server": "manual-web", "skipReboot": true, "noBackup": true}},
        {"name": "server_backup", "arguments": {"action": "backup-list", "server": "manual-web"}}
    ])
}

/// With SAFE_MODE and confirmation off, every client runs every action
/// that changes a server and takes its result (each SDK checks it against
/// the tool's output schema); a dry run among them, even with nobody to
/// confirm, only plans. The restore names its safety step (`safety`) and
/// maintain skips its backup (`noBackup`).
#[test]
fn the_official_sdks_run_every_write_action() {
    for sdk in Sdk::ALL {
        let label = format!("{sdk:?}");
        let home = tempfile::tempdir().unwrap();
        let env = [("KASTELL_SAFE_MODE", "false"), ("KASTELL_CONFIRM", "off")];
        let mut plan = sdk::stdio_plan(home.path(), &["--sandbox"], &env);
        plan["calls"] = writes();
        let (report, _) = sdk::run(sdk, &plan);
        if let Some(version) = negotiated(sdk) {
            assert_eq!(report["protocolVersion"], version, "{label}: {report}");
        }
        let actions = [
            (0, "snapshot-create"),
            (1, "snapshot-list"),
            (2, "snapshot-restore"),
            (3, "snapshot-delete"),
            (4, "backup-create"),
            (6, "backup-list"),
            (7, "backup-restore"),
            (8, "update"),
            (9, "restart"),
            (10, "maintain"),
        ];
        for (index, action) in actions {
            let r = result(&report, index);
            assert!(!is_error(r), "{label}: {action} failed: {r}");
            assert_eq!(r["structuredContent"]["action"], action, "{label}: {r}");
        }
        let created = &result(&report, 0)["structuredContent"]["snapshot"]["id"];
        let listed = &result(&report, 1)["structuredContent"]["snapshots"];
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == *created),
            "{label}: {created} not in {listed}"
        );
        assert!(
            !report["calls"][0]["progress"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{label}: snapshot-create reported no progress"
        );

        let dry = &result(&report, 5)["structuredContent"];
        assert_eq!(dry["dryRun"], true, "{label}: the dry run ran: {dry}");
        assert_eq!(dry["confirm"], "off", "{label}: {dry}");
        // Nothing was restored, so no safety backup was taken either.
        let backups = &result(&report, 6)["structuredContent"]["backups"];
        assert_eq!(backups.as_array().unwrap().len(), 1, "{label}: {backups}");
        // The safety step chosen (a full local backup) is taken and named.
        let restored = &result(&report, 7)["structuredContent"];
        assert!(
            restored["safetyBackupId"].is_string(),
            "{label}: {restored}"
        );
        assert_eq!(restored["safety"]["kind"], "local", "{label}: {restored}");
        // maintain with noBackup skips its backup step: the backups are the
        // first one and the restore's safety copy, nothing more.
        let maintained = &result(&report, 10)["structuredContent"];
        assert!(
            maintained.get("backupId").is_none(),
            "{label}: {maintained}"
        );
        assert_eq!(
            maintained["steps"][0]["name"], "Backup",
            "{label}: {maintained}"
        );
        assert_eq!(
            maintained["steps"][0]["status"], "skipped",
            "{label}: {maintained}"
        );
        let backups = &result(&report, 11)["structuredContent"]["backups"];
        assert_eq!(backups.as_array().unwrap().len(), 2, "{label}: {backups}");
    }
}

#[test]
fn operation_logs_reach_a_client_that_asks_for_them() {
    let home = tempfile::tempdir().unwrap();
    let mut plan = sdk::stdio_plan(home.path(), &["--sandbox"], &[]);
    plan["setLogLevel"] = json!("info");
    plan["calls"] = json!([
        {"name": "server_backup", "arguments": {"action": "backup-create", "server": "manual-web"}}
    ]);
    let (report, _) = sdk::run(Sdk::Python("legacy"), &plan);
    assert!(!is_error(result(&report, 0)), "{report}");
    let logs: Vec<&str> = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["logger"] == "kastell")
        .filter_map(|l| l["data"].as_str())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("backup-create: Backup ") && l.ends_with("is complete")),
        "{logs:?}"
    );

    // A 2026-07-28 client that did not opt in gets no log messages.
    let mut quiet = sdk::stdio_plan(home.path(), &["--sandbox"], &[]);
    quiet["calls"] = plan["calls"].clone();
    let (report, _) = sdk::run(Sdk::Python("auto"), &quiet);
    assert!(!is_error(result(&report, 0)), "{report}");
    assert_eq!(report["logs"], json!([]), "{report}");
}
