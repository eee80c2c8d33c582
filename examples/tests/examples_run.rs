//! Every provider example runs against its simulator when no token is set,
//! and every platform example against its local fake host; the acme
//! example's platform file, linked in, compresses on the server
//! ([`cron_host_wire`]).

// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

mod cron_host_wire;

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The example binary `name`, which `cargo test` builds next to the tests.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

/// The example `name` in a cleared environment (PATH only): no token, so
/// every provider runs on its simulator.
fn clean(name: &str) -> Command {
    let mut command = Command::new(example(name));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    command
}

fn run_without_tokens(name: &str) -> String {
    let out = clean(name)
        .output()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn check_tour(name: &str) {
    let out = run_without_tokens(name);
    assert!(out.contains("simulator at http://127.0.0.1:"), "{out}");
    assert!(out.contains("creating snapshot"), "{out}");
    assert!(out.contains("Available"), "{out}");
    assert!(out.contains("no longer listed"), "{out}");
}

#[test]
fn hetzner() {
    check_tour("hetzner");
}

#[test]
fn digitalocean() {
    check_tour("digitalocean");
}

#[test]
fn vultr() {
    check_tour("vultr");
}

#[test]
fn linode() {
    check_tour("linode");
}

#[test]
fn custom_provider() {
    let out = run_without_tokens("custom_provider");
    assert!(out.contains("providers in this binary: acme-mini"), "{out}");
    assert!(
        out.contains("a token prints as Secret([redacted])"),
        "{out}"
    );
    assert!(out.contains("rebooted web-1"), "{out}");
    assert!(
        out.contains("snapshot refused before any request: acme-mini does not support"),
        "{out}"
    );
}

#[test]
fn coolify() {
    let out = run_without_tokens("coolify");
    assert!(
        out.contains("rows after the restore: 1:blog, 2:shop, 3:wiki"),
        "{out}"
    );
    assert!(
        out.contains("platform running: true, database running: true"),
        "{out}"
    );
}

#[test]
fn dokploy() {
    let out = run_without_tokens("dokploy");
    assert!(
        out.contains("rows after the restore: 1:blog, 2:shop, 3:wiki"),
        "{out}"
    );
}

#[test]
fn bare() {
    let out = run_without_tokens("bare");
    assert!(
        out.contains("crontab after the restore: 0 3 * * * root /usr/local/bin/nightly"),
        "{out}"
    );
    assert!(
        out.contains("sshd_config on the host unchanged: true"),
        "{out}"
    );
}

/// Runs the `acme` example (a kastell build with a third-party provider
/// and platform) with `args`, in a cleared environment whose kastell
/// directory is under `home`.
fn acme(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    clean("acme")
        .args(args)
        .env("HOME", home)
        .env("KASTELL_DIR", home.join("state"))
        .output()
        .unwrap()
}

/// `server add` of an Acme Cloud server (`acme-1`, 203.0.113.10) named
/// `name` running `platform`.
fn add_acme_server(home: &std::path::Path, name: &str, platform: &str) -> std::process::Output {
    let args = [
        "server",
        "add",
        "--name",
        name,
        "--ip",
        "203.0.113.10",
        "--provider",
        "acme",
        "--id",
        "acme-1",
        "--platform",
        platform,
    ];
    acme(home, &args)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Acme Cloud and the Cron host platform, each in one file of the `acme`
/// example and in no first-party list, reach the doctor, `server add`,
/// the sandbox (Acme's simulator) and a full backup, restore and
/// maintenance of the demo.
#[test]
fn a_third_party_provider_and_platform_reach_the_cli_and_the_demo() {
    let home = tempfile::tempdir().unwrap();
    let doctor = acme(home.path(), &["doctor"]);
    assert!(doctor.status.success(), "{}", text(&doctor));
    let listing = text(&doctor);
    assert!(
        listing.contains("acme          Acme Cloud       ACME_TOKEN"),
        "{listing}"
    );
    assert!(
        listing.contains("platforms: bare, coolify, cronhost, dokploy"),
        "{listing}"
    );

    let add = |name: &str, platform: &str| add_acme_server(home.path(), name, platform);
    let added = add("cron-1", "cronhost");
    assert!(added.status.success(), "{}", text(&added));
    let listed = acme(home.path(), &["--json", "server", "list"]);
    let servers: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(servers[0]["platform"], "cronhost", "{servers}");
    assert_eq!(servers[0]["provider"], "acme", "{servers}");
    let misspelt = add("cron-2", "cronhots");
    assert!(!misspelt.status.success());
    assert!(text(&misspelt).contains("cronhost"), "{}", text(&misspelt));

    let demo = acme(home.path(), &["demo", "--platform", "cronhost"]);
    let said = text(&demo);
    assert!(demo.status.success(), "{said}");
    for line in [
        "acme server acme-1",
        "every server cronhost",
        "Restore cron tables    success",
        "crontab after the restore: 0 3 * * * root /usr/local/bin/nightly-report",
        "acme-web           Maintenance completed",
        "Cron host Update       success",
        "Server rebooted via provider API",
        "providers acme, digitalocean, hetzner, linode, vultr; platforms bare, coolify, cronhost, dokploy",
    ] {
        assert!(said.contains(line), "missing {line:?} in:\n{said}");
    }
}

/// The official TypeScript MCP SDK drives the same build's `mcp
/// --sandbox`: Acme's server, running the Cron host platform, is listed,
/// backed up and maintained through the tools.
#[test]
fn the_official_sdk_drives_a_third_party_build_over_mcp() {
    use kastell_testkit::mcp_sdk::{self, Sdk};
    let home = tempfile::tempdir().unwrap();
    let args = ["mcp", "--sandbox", "--sandbox-platform", "cronhost"];
    let mut plan = mcp_sdk::stdio_plan(
        &example("acme"),
        home.path(),
        &args,
        &[("KASTELL_SAFE_MODE", "false")],
    );
    plan["calls"] = serde_json::json!([
        {"name": "server_info", "arguments": {"action": "list"}},
        {"name": "server_backup", "arguments": {"action": "backup-create", "server": "acme-web"}},
        {"name": "server_maintain", "arguments": {"action": "maintain", "server": "acme-web"}},
        {"name": "server_backup", "arguments": {"action": "backup-restore", "server": "acme-web",
            "backupId": {"$from": 1, "field": "backupId"}, "dryRun": true}}
    ]);
    let (report, stderr) = mcp_sdk::run(Sdk::TypeScript, &plan);
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {report}\n{stderr}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"server_backup") && tools.contains(&"server_maintain"),
        "{tools:?}"
    );
    let result = |index: usize| {
        let result = &report["calls"][index]["result"];
        assert_ne!(result["isError"], true, "call {index}: {result}");
        result["structuredContent"].clone()
    };
    let list = result(0);
    let first = &list["servers"][0];
    assert_eq!(first["name"], "acme-web", "{list}");
    assert_eq!(first["provider"], "acme", "{list}");
    assert_eq!(first["platform"], "cronhost", "{list}");
    let created = result(1);
    assert_eq!(
        created["files"],
        serde_json::json!(["cron-tables.tar.zst"]),
        "{created}"
    );
    assert_eq!(
        created["skipped"],
        serde_json::json!(["/etc/cron.d"]),
        "{created}"
    );
    let maintained = result(2);
    assert_eq!(maintained["success"], true, "{maintained}");
    let steps: Vec<&str> = maintained["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "Backup",
            "Snapshot",
            "Status Check",
            "Cron host Update",
            "Health Check",
            "Reboot",
            "Final Check"
        ],
        "{maintained}"
    );
    // The cron host's own backup first, named in the result.
    let backup = maintained["steps"][0]["detail"].as_str().unwrap();
    let backup_id = maintained["backupId"].as_str().unwrap();
    assert!(backup.contains(backup_id), "{backup}");
    // Acme has no snapshots: the step says the update cannot be rolled back.
    let snapshot = maintained["steps"][1]["detail"].as_str().unwrap();
    assert!(snapshot.contains("cannot be rolled back"), "{snapshot}");
    let reboot = maintained["steps"][5]["detail"].as_str().unwrap();
    assert!(reboot.contains("via provider API (boot id"), "{reboot}");
    // The blast radius names what the Cron host's entry says a backup
    // holds, not a PaaS's database.
    let plan = result(3);
    assert_eq!(plan["dryRun"], true, "{plan}");
    let overwrites = plan["plan"]["overwrites"].as_str().unwrap();
    assert!(
        overwrites.starts_with("the cron tables (/etc/crontab and /etc/cron.d) on acme-web"),
        "{overwrites}"
    );
}

/// A third-party operation, one file and one registration line in the
/// `acme` example (`cron-reload`), reaches the CLI (its own subcommand,
/// arguments and `--dry-run` plan), the policy (SAFE_MODE refuses it with
/// the operation's own words, and `security.log` names it) and the MCP
/// schema and dispatch, seen through the official TypeScript SDK.
#[test]
fn a_third_party_operation_reaches_the_cli_the_policy_and_mcp() {
    let home = tempfile::tempdir().unwrap();
    let added = add_acme_server(home.path(), "cron-1", "cronhost");
    assert!(added.status.success(), "{}", text(&added));

    let help = acme(home.path(), &["--help"]);
    assert!(
        text(&help).contains("cron-reload  Make the cron daemon re-read its tables (SIGHUP)"),
        "{}",
        text(&help)
    );
    let plan = acme(
        home.path(),
        &["cron-reload", "--daemon", "crond", "--dry-run", "cron-1"],
    );
    let said = text(&plan);
    assert!(plan.status.success(), "{said}");
    assert!(
        said.contains("Dry run of cron-reload on 1 server(s)")
            && said
                .contains("1. Send SIGHUP to crond on 203.0.113.10 over SSH (pkill -HUP -x crond)"),
        "{said}"
    );

    let refused = clean("acme")
        .args(["cron-reload", "--force", "cron-1"])
        .env("HOME", home.path())
        .env("KASTELL_DIR", home.path().join("state"))
        .env("KASTELL_SAFE_MODE", "true")
        .output()
        .unwrap();
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("Cron reload is disabled in SAFE_MODE"),
        "{said}"
    );
    let log = std::fs::read_to_string(home.path().join("state/security.log")).unwrap();
    assert!(log.contains("\"cron-reload\""), "{log}");

    use kastell_testkit::mcp_sdk::{self, Sdk};
    let args = ["mcp", "--sandbox", "--sandbox-platform", "cronhost"];
    // In SAFE_MODE (the default) the action is not offered, the listing
    // says it exists with SAFE_MODE off, and a call is refused in the
    // operation's own words.
    let mut plan = mcp_sdk::stdio_plan(&example("acme"), home.path(), &args, &[]);
    plan["calls"] = serde_json::json!([
        {"name": "server_maintain", "arguments": {"action": "cron-reload", "server": "acme-web", "daemon": "crond"}}
    ]);
    let (report, stderr) = mcp_sdk::run(Sdk::TypeScript, &plan);
    let tools = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {report}\n{stderr}"));
    assert!(
        tools.iter().all(|t| t["name"] != "server_maintain"),
        "{report}"
    );
    let said = tools[0]["description"].as_str().unwrap_or_default();
    assert!(
        said.contains("server_maintain update, restart, maintain, rollout, cron-reload"),
        "{said}"
    );
    let refused = &report["calls"][0]["result"];
    assert_eq!(refused["isError"], true, "{refused}");
    assert_eq!(
        refused["structuredContent"]["error"], "Cron reload is disabled in SAFE_MODE",
        "{refused}"
    );

    // With SAFE_MODE off it joins server_maintain's schema, and its
    // arguments are checked strictly.
    let off = [("KASTELL_SAFE_MODE", "false")];
    let mut plan = mcp_sdk::stdio_plan(&example("acme"), home.path(), &args, &off);
    plan["calls"] = serde_json::json!([
        {"name": "server_maintain", "arguments": {"action": "cron-reload", "server": "acme-web", "skipReboot": true}}
    ]);
    let (report, stderr) = mcp_sdk::run(Sdk::TypeScript, &plan);
    let maintain = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {report}\n{stderr}"))
        .iter()
        .find(|t| t["name"] == "server_maintain")
        .unwrap_or_else(|| panic!("no server_maintain: {report}"));
    let input = &maintain["inputSchema"]["properties"];
    assert!(
        input["action"]["enum"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("cron-reload")),
        "{input}"
    );
    assert_eq!(input["daemon"]["pattern"], "^[a-z][a-z0-9_-]*$", "{input}");
    // The output schema names each action once, as its branch's `const`.
    let branches = &maintain["outputSchema"]["oneOf"];
    assert!(
        branches
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["properties"]["action"]["const"] == "cron-reload"),
        "{branches}"
    );
    let strict = &report["calls"][0]["result"];
    assert_eq!(strict["isError"], true, "{strict}");
    assert!(
        strict["structuredContent"]["error"]
            .as_str()
            .unwrap()
            .contains("argument skipReboot does not apply to cron-reload: it is for maintain"),
        "{strict}"
    );
}
