//! Every response of a representative set of calls through the real
//! `kastell-mcp` against its contract: a success's structured content
//! validates (jsonschema, draft 2020-12) against the tool's `outputSchema`
//! from tools/list, also with undeclared properties forbidden; a failure
//! is `isError` with non-empty `error`, `hint` and `kind` strings. The
//! fleet is a manual bare server on a real sshd (the testkit's fake bare
//! host) and a Hetzner server of the API simulator.
#![cfg(all(feature = "hetzner", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use kastell::{FleetStore, ServerRecord};
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator, public_ip};
use kastell_testkit::platform::BareHost;
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{Mcp, full_schema, output_schemas, strict, violations};

/// Adds the manual bare server `sandbox` (the fake host, its fake root in
/// `platformOptions`) and the Hetzner server `cloud` (simulator server 1).
fn write_fleet(dir: &Path, host: &BareHost, sim: &HetznerSim) {
    let sshd = &host.fixture.sshd;
    let out = Command::new(env!("CARGO_BIN_EXE_kastell"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        .args(["server", "add", "--name", "sandbox", "--ip", "127.0.0.1"])
        .args(["--platform", "bare", "--user", sshd.user()])
        .args(["--port", &sshd.port().to_string()])
        .arg("--identity-file")
        .arg(sshd.ed25519_key())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = FleetStore::open(dir.join("state")).unwrap();
    let mut cloud = ServerRecord::new(
        sim.server_ids()[1].clone(),
        "cloud",
        public_ip(1).to_string(),
    );
    cloud.provider = Some("hetzner".into());
    store.add(cloud).unwrap();
    let path = dir.join("state/servers.json");
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let records = match &mut value {
        Value::Array(a) => a,
        Value::Object(o) => o.get_mut("servers").unwrap().as_array_mut().unwrap(),
        _ => panic!("unexpected servers.json"),
    };
    for r in records.iter_mut().filter(|r| r["name"] == "sandbox") {
        r["platformOptions"] = json!({"root": host.root().to_string_lossy(), "sudo": "never"});
    }
    std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// Runs the calls and checks every response; returns the problems found.
async fn check(mcp: &Mcp, label: &str, calls: &[(&str, Value, bool)]) -> Vec<String> {
    let schemas = output_schemas(mcp).await;
    let mut problems = Vec::new();
    for (tool, args, want_success) in calls {
        let result = mcp.call(tool, args.clone()).await;
        mcp_common::assert_text_matches(&result);
        let value = mcp_common::content(&result);
        eprintln!("[{label}] {tool} {args} -> {value}");
        let what = format!("[{label}] {tool} {args}");
        if mcp_common::is_error(&result) {
            if *want_success {
                problems.push(format!("{what}: expected success, got {value}"));
            }
            for key in ["error", "hint", "kind"] {
                if value[key].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{what}: failure without `{key}`: {value}"));
                }
            }
            if !value["suggested_actions"].is_array() {
                problems.push(format!(
                    "{what}: failure without suggested_actions: {value}"
                ));
            }
        } else {
            if !*want_success {
                problems.push(format!("{what}: expected a failure, got {value}"));
            }
            if value["action"] != args["action"] {
                problems.push(format!("{what}: action {} in {value}", value["action"]));
            }
            let schema = &schemas[*tool];
            for (kind, s) in [
                ("schema", schema.clone()),
                ("strict complete schema", strict(&full_schema(tool))),
            ] {
                for v in violations(&s, value) {
                    problems.push(format!(
                        "{what}: {kind} violation: {v}\n  instance: {value}"
                    ));
                }
            }
        }
    }
    problems
}

fn backup(action: &str, server: &str, extra: Value) -> Value {
    let mut v = json!({"action": action, "server": server});
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_matches_the_tool_contract() {
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    host.write("etc/crontab", "0 3 * * * root /usr/local/bin/nightly\n");
    host.hand_over();
    let sim = HetznerSim::start(SimOptions {
        servers: 3,
        scale: 200.0,
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_fleet(tmp.path(), &host, &sim);
    let endpoint = sim.endpoint();
    let token = sim.context().tokens.read_write.clone();
    let mut problems = Vec::new();

    // SAFE_MODE on (the MCP default).
    let on = mcp_common::start(
        tmp.path(),
        &[
            ("HETZNER_TOKEN", token.as_str()),
            ("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()),
        ],
    )
    .await;
    let calls = [
        ("server_info", json!({"action": "list"}), true),
        (
            "server_info",
            json!({"action": "status", "server": "sandbox"}),
            true,
        ),
        (
            "server_logs",
            json!({"action": "monitor", "server": "sandbox"}),
            true,
        ),
        (
            "server_backup",
            backup("backup-list", "sandbox", json!({})),
            true,
        ),
        (
            "server_backup",
            backup("backup-create", "sandbox", json!({})),
            true,
        ),
        (
            "server_backup",
            backup("backup-list", "sandbox", json!({})),
            true,
        ),
        (
            "server_backup",
            backup("snapshot-list", "cloud", json!({})),
            true,
        ),
        (
            "server_backup",
            backup("snapshot-create", "cloud", json!({})),
            false,
        ),
        (
            "server_backup",
            backup("snapshot-list", "sandbox", json!({})),
            false,
        ),
        (
            "server_backup",
            backup("backup-list", "nope", json!({})),
            false,
        ),
        (
            "server_info",
            json!({"action": "status", "server": "nope"}),
            false,
        ),
        (
            "server_maintain",
            json!({"action": "restart", "server": "cloud"}),
            false,
        ),
        ("server_backup", json!({"action": "backup-destroy"}), false),
        ("server_backup", json!({"action": "backup-list"}), false),
    ];
    problems.extend(check(&on, "safe", &calls).await);
    on.stop().await;

    // SAFE_MODE off: the snapshot life cycle.
    let off = mcp_common::start(
        tmp.path(),
        &[
            ("HETZNER_TOKEN", token.as_str()),
            ("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()),
            ("KASTELL_SAFE_MODE", "false"),
        ],
    )
    .await;
    let created = off
        .call(
            "server_backup",
            backup("snapshot-create", "cloud", json!({})),
        )
        .await;
    let snap = mcp_common::content(&created)["snapshot"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("snapshot-create: {:?}", created.structured_content))
        .to_owned();
    let id = json!({"snapshotId": snap});
    let calls = [
        (
            "server_backup",
            backup("snapshot-create", "cloud", json!({})),
            true,
        ),
        (
            "server_backup",
            backup("snapshot-list", "cloud", json!({})),
            true,
        ),
        (
            "server_backup",
            backup("snapshot-restore", "cloud", id.clone()),
            true,
        ),
        (
            "server_backup",
            backup("snapshot-delete", "cloud", id.clone()),
            true,
        ),
        (
            "server_backup",
            backup("snapshot-delete", "cloud", id),
            false,
        ),
        (
            "server_backup",
            backup("snapshot-delete", "cloud", json!({"snapshotId": "a/../b"})),
            false,
        ),
        (
            "server_backup",
            backup(
                "snapshot-delete",
                "cloud",
                json!({"snapshotId": sim.foreign_snapshot_id()}),
            ),
            false,
        ),
        (
            "server_logs",
            json!({"action": "logs", "server": "sandbox", "lines": 5}),
            true,
        ),
    ];
    problems.extend(check(&off, "unsafe", &calls).await);
    // The schema also holds for the first create, checked above by hand.
    problems.extend(
        violations(
            &output_schemas(&off).await["server_backup"],
            mcp_common::content(&created),
        )
        .into_iter()
        .map(|v| format!("first snapshot-create: {v}")),
    );
    off.stop().await;

    // A wrong token.
    let bad = mcp_common::start(
        tmp.path(),
        &[
            ("HETZNER_TOKEN", "wrong-token"),
            ("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()),
        ],
    )
    .await;
    let calls = [(
        "server_backup",
        backup("snapshot-list", "cloud", json!({})),
        false,
    )];
    problems.extend(check(&bad, "wrong token", &calls).await);
    bad.stop().await;

    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The checks are not vacuous: with the golden (lean) server_backup
/// schema, a missing required field and a wrong type are violations; with
/// the complete one made strict, an undeclared field (top level and
/// nested) is; a well-formed list passes both.
#[test]
fn the_schema_checks_catch_violations() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/tools_list.json");
    let tools: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schema = tools
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "server_backup")
        .unwrap()["outputSchema"]
        .clone();
    let full = strict(&full_schema("server_backup"));
    let good = json!({
        "action": "snapshot-list", "success": true, "server": "cloud", "ip": "198.18.0.1",
        "snapshotCount": 1, "suggested_actions": [],
        "snapshots": [{"id": "7", "name": "n", "status": "available"}],
    });
    assert_eq!(violations(&schema, &good), Vec::<String>::new());
    assert_eq!(violations(&full, &good), Vec::<String>::new());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("ip");
    assert!(!violations(&schema, &missing).is_empty());
    let mut untagged = good.clone();
    untagged
        .as_object_mut()
        .unwrap()
        .remove("suggested_actions");
    assert!(!violations(&schema, &untagged).is_empty());
    let mut wrong = good.clone();
    wrong["snapshotCount"] = json!("1");
    assert!(!violations(&schema, &wrong).is_empty());
    let mut extra = good.clone();
    extra["token"] = json!("x");
    assert!(violations(&schema, &extra).is_empty());
    assert!(!violations(&full, &extra).is_empty());
    let mut nested = good;
    nested["snapshots"][0]["secret"] = json!(1);
    assert!(!violations(&full, &nested).is_empty());
}
