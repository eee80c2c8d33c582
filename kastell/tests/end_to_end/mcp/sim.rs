//! Provider snapshots through the real `kastell-mcp` against the Hetzner
//! API simulator: create (a real id and a cost estimate), list, restore
//! (waits until running), delete, the empty list; another server's
//! snapshot and traversal ids refused with hints; SAFE_MODE refusing
//! before any API request; a wrong token refused as `unauthenticated`
//! without ever being echoed.
#![cfg(feature = "hetzner")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use kastell::{FleetStore, ServerRecord};
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator, public_ip};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{Mcp, assert_error_with_hint, assert_suggestions_valid, content};

/// Writes Hetzner records `web-<i>` for the simulator's servers `indices`.
fn add_cloud(dir: &Path, sim: &HetznerSim, indices: &[usize]) {
    let ids = sim.server_ids();
    let store = FleetStore::open(dir.join("state")).unwrap();
    for &i in indices {
        let mut record =
            ServerRecord::new(ids[i].clone(), format!("web-{i}"), public_ip(i).to_string());
        record.provider = Some("hetzner".into());
        store.add(record).unwrap();
    }
}

async fn start(dir: &Path, sim: &HetznerSim, token: &str, safe_mode: Option<&str>) -> Mcp {
    let endpoint = sim.endpoint();
    let mut env = vec![
        ("HETZNER_TOKEN", token),
        ("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()),
    ];
    if let Some(v) = safe_mode {
        env.push(("KASTELL_SAFE_MODE", v));
    }
    mcp_common::start(dir, &env).await
}

/// Calls server_backup and checks what every response must satisfy.
async fn backup(mcp: &Mcp, args: Value, safe: bool) -> CallToolResult {
    let result = mcp.call("server_backup", args.clone()).await;
    mcp_common::assert_text_matches(&result);
    if mcp_common::is_error(&result) {
        assert_error_with_hint(&result);
    } else {
        mcp_common::assert_matches_output_schema("server_backup", content(&result));
    }
    assert_suggestions_valid(content(&result), safe);
    eprintln!("server_backup {args} -> {}", content(&result));
    result
}

fn ok(result: &CallToolResult) -> &Value {
    assert_eq!(
        result.is_error,
        Some(false),
        "{:?}",
        result.structured_content
    );
    let value = content(result);
    assert_eq!(value["success"], true);
    value
}

fn kind(result: &CallToolResult) -> &str {
    assert!(
        mcp_common::is_error(result),
        "expected an error: {result:?}"
    );
    content(result)["kind"].as_str().unwrap_or("")
}

fn ids_of(list: &Value) -> Vec<String> {
    list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_lifecycle_through_mcp_against_the_hetzner_simulator() {
    let sim = HetznerSim::start(SimOptions {
        servers: 3,
        scale: 200.0,
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // web-1 has no seeded snapshot; web-0 has one.
    add_cloud(tmp.path(), &sim, &[1, 0]);
    let token = sim.context().tokens.read_write.clone();
    let recorder = sim.context().recorder.clone();
    let mcp = start(tmp.path(), &sim, &token, Some("false")).await;
    let web1 = |action: &str, extra: Value| {
        let mut v = json!({"action": action, "server": "web-1"});
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        v
    };

    let before = backup(&mcp, web1("snapshot-list", json!({})), false).await;
    let before = ok(&before).clone();
    assert_eq!(before["snapshotCount"], 0, "{before}");
    assert_eq!(before["ip"], public_ip(1).to_string());
    assert_eq!(before["message"], "No snapshots found");

    // Create: a real id and a cost estimate.
    let created = backup(&mcp, web1("snapshot-create", json!({})), false).await;
    let created = ok(&created).clone();
    let snap = &created["snapshot"];
    let snap_id = snap["id"].as_str().unwrap().to_owned();
    assert!(snap_id.parse::<i64>().is_ok(), "not a real id: {snap_id}");
    assert_eq!(snap["status"], "available");
    assert_eq!(snap["serverId"], sim.server_ids()[1]);
    let cost = created["costEstimate"].as_str().unwrap();
    assert!(cost.ends_with("/mo"), "cost estimate {cost}");
    assert!(recorder.count("POST", "/create_image") >= 1);

    // List: contains it.
    let listed = backup(&mcp, web1("snapshot-list", json!({})), false).await;
    let listed = ok(&listed).clone();
    assert_eq!(listed["snapshotCount"], 1);
    assert_eq!(listed["ip"], public_ip(1).to_string());
    assert_eq!(ids_of(&listed), std::slice::from_ref(&snap_id));

    // Restore: rebuilds and waits until running.
    let boots = sim.boots(&sim.server_ids()[1]);
    let restored = backup(
        &mcp,
        web1("snapshot-restore", json!({"snapshotId": snap_id})),
        false,
    )
    .await;
    let restored = ok(&restored).clone();
    assert_eq!(restored["snapshotId"], snap_id);
    assert_eq!(
        restored["message"],
        "Snapshot restored; the server is running"
    );
    assert_eq!(recorder.count("POST", "/actions/rebuild"), 1);
    assert_eq!(sim.boots(&sim.server_ids()[1]), boots + 1);

    // Delete, then the empty list again.
    let deleted = backup(
        &mcp,
        web1("snapshot-delete", json!({"snapshotId": snap_id})),
        false,
    )
    .await;
    assert_eq!(ok(&deleted)["message"], "Snapshot deleted");
    assert_eq!(recorder.count("DELETE", &format!("/images/{snap_id}")), 1);
    let after = backup(&mcp, web1("snapshot-list", json!({})), false).await;
    let after = ok(&after).clone();
    assert_eq!(after["snapshotCount"], 0);
    assert_eq!(after["snapshots"], json!([]));
    assert_eq!(after["ip"], public_ip(1).to_string());

    // Another server's snapshot (web-0's seeded one) and another
    // project's: not found through web-1, and nothing is deleted.
    let other = backup(
        &mcp,
        json!({"action": "snapshot-list", "server": "web-0"}),
        false,
    )
    .await;
    let other_ids = ids_of(ok(&other));
    assert_eq!(other_ids.len(), 1, "{}", content(&other));
    for foreign in [other_ids[0].clone(), sim.foreign_snapshot_id()] {
        let r = backup(
            &mcp,
            web1("snapshot-delete", json!({"snapshotId": foreign})),
            false,
        )
        .await;
        assert_eq!(kind(&r), "not_found", "{}", content(&r));
        assert_eq!(recorder.count("DELETE", &format!("/images/{foreign}")), 0);
    }
    let other = backup(
        &mcp,
        json!({"action": "snapshot-list", "server": "web-0"}),
        false,
    )
    .await;
    assert_eq!(ids_of(ok(&other)), other_ids, "web-0's snapshot survives");

    // Traversal ids: invalid input with a hint, no API request, and the
    // server keeps answering.
    for bad in ["a/../b", "..", "../42000001", "a//b"] {
        for action in ["snapshot-delete", "snapshot-restore"] {
            let sent = recorder.all().len();
            let r = backup(&mcp, web1(action, json!({"snapshotId": bad})), false).await;
            assert_eq!(kind(&r), "invalid_input", "{action} {bad}: {}", content(&r));
            assert_eq!(recorder.all().len(), sent, "{action} {bad} reached the API");
            let list = mcp.call("server_info", json!({"action": "list"})).await;
            assert_eq!(ok(&list)["serverCount"], 2);
        }
    }
    let stderr = mcp.stop().await;
    assert!(!stderr.contains(&token), "the token is in stderr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_mode_refuses_snapshot_writes_before_any_api_request() {
    let sim = HetznerSim::start(SimOptions {
        servers: 3,
        scale: 200.0,
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    add_cloud(tmp.path(), &sim, &[1]);
    let token = sim.context().tokens.read_write.clone();
    let recorder = sim.context().recorder.clone();
    let mcp = start(tmp.path(), &sim, &token, None).await;
    for (action, extra) in [
        ("snapshot-create", json!({})),
        ("snapshot-delete", json!({"snapshotId": "42"})),
        ("snapshot-restore", json!({"snapshotId": "42"})),
    ] {
        let mut args = json!({"action": action, "server": "web-1"});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = backup(&mcp, args, true).await;
        let value = assert_error_with_hint(&r);
        assert!(
            value["hint"]
                .as_str()
                .unwrap()
                .contains("KASTELL_SAFE_MODE"),
            "{action}: {value}"
        );
        assert!(
            recorder.all().is_empty(),
            "{action}: a refused call sent requests"
        );
    }
    // Listing is allowed in SAFE_MODE.
    let r = backup(
        &mcp,
        json!({"action": "snapshot-list", "server": "web-1"}),
        true,
    )
    .await;
    assert_eq!(ok(&r)["snapshotCount"], 0);
    assert_eq!(recorder.writes(), 0);
    mcp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_unauthenticated_with_a_hint_and_never_echoed() {
    let sim = HetznerSim::start(SimOptions {
        servers: 3,
        scale: 200.0,
    })
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    add_cloud(tmp.path(), &sim, &[1]);
    let wrong = "wrong-token-5f3a9c1e7b2d4e6f8a0b";
    let recorder = sim.context().recorder.clone();
    let mcp = start(tmp.path(), &sim, wrong, Some("false")).await;
    let mut outputs = Vec::new();
    for (action, extra) in [
        ("snapshot-list", json!({})),
        ("snapshot-create", json!({})),
        ("snapshot-delete", json!({"snapshotId": "42"})),
        ("snapshot-restore", json!({"snapshotId": "42"})),
    ] {
        let mut args = json!({"action": action, "server": "web-1"});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = backup(&mcp, args, false).await;
        assert_eq!(kind(&r), "unauthenticated", "{action}: {}", content(&r));
        outputs.push(serde_json::to_string(&r).unwrap());
    }
    assert!(!recorder.all().is_empty(), "the API was asked");
    let stderr = mcp.stop().await;
    outputs.push(stderr);
    for out in &outputs {
        assert!(!out.contains(wrong), "the token leaked: {out}");
    }
}
