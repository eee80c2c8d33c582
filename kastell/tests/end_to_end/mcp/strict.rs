//! Strict arguments through the real `kastell-mcp`, with SAFE_MODE off so
//! that every call below would otherwise have done something: for every
//! tool, a misspelt argument, an argument no tool has and an argument of
//! another action are refused with `isError` naming the argument (and the
//! nearest known one, or the actions it belongs to), and nothing ran: the
//! Hetzner simulator received no request, the bare host's shims logged
//! nothing, no backup was made and the server did not reboot.
#![cfg(feature = "hetzner")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kastell::{FleetStore, ServerRecord};
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator, public_ip};
use kastell_testkit::platform::BareHost;
use serde_json::{Value, json};

use crate::mcp::common as mcp_common;
use mcp_common::{content, is_error};

/// (tool, arguments, what the refusal must say).
fn refusals() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "server_backup",
            json!({"action": "snapshot-delete", "server": "web-0", "snapshot_id": "1"}),
            "unknown argument snapshot_id: did you mean snapshotId?",
        ),
        (
            "server_backup",
            json!({"action": "backup-restore", "server": "bare-1", "backup_id": "x"}),
            "unknown argument backup_id: did you mean backupId?",
        ),
        (
            "server_backup",
            json!({"action": "backup-create", "server": "bare-1", "force": true}),
            "unknown argument force",
        ),
        (
            "server_backup",
            json!({"action": "snapshot-create", "server": "web-0", "backupId": "x"}),
            "argument backupId does not apply to snapshot-create: it is for backup-restore",
        ),
        (
            "server_maintain",
            json!({"action": "maintain", "server": "bare-1", "skip_reboot": true}),
            "unknown argument skip_reboot: did you mean skipReboot?",
        ),
        (
            "server_maintain",
            json!({"action": "restart", "server": "web-0", "hard": true}),
            "unknown argument hard",
        ),
        (
            "server_maintain",
            json!({"action": "restart", "server": "web-0", "skipReboot": true}),
            "argument skipReboot does not apply to restart: it is for maintain",
        ),
        (
            "server_maintain",
            json!({"action": "update", "server": "bare-1", "snapshot": false}),
            "argument snapshot does not apply to update: it is for maintain",
        ),
        (
            "server_info",
            json!({"action": "status", "servr": "web-0"}),
            "unknown argument servr: did you mean server?",
        ),
        (
            "server_info",
            json!({"action": "health", "server": "bare-1", "verbose": true}),
            "unknown argument verbose",
        ),
        (
            "server_info",
            json!({"action": "list", "server": "web-0"}),
            "argument server does not apply to list: it is for status, health",
        ),
        (
            "server_logs",
            json!({"action": "logs", "server": "bare-1", "line": 5}),
            "unknown argument line: did you mean lines?",
        ),
        (
            "server_logs",
            json!({"action": "monitor", "server": "bare-1", "follow": true}),
            "unknown argument follow",
        ),
        (
            "server_logs",
            json!({"action": "monitor", "server": "bare-1", "source": "platform"}),
            "argument source does not apply to monitor: it is for logs",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misspelt_unknown_and_misplaced_arguments_run_nothing() {
    let sim = HetznerSim::start(SimOptions {
        servers: 1,
        scale: 200.0,
    })
    .await
    .unwrap();
    let host = tokio::task::spawn_blocking(BareHost::start).await.unwrap();
    host.hand_over();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let store = FleetStore::open(dir.join("state")).unwrap();
        let mut record = ServerRecord::new(
            sim.server_ids()[0].clone(),
            "web-0",
            public_ip(0).to_string(),
        );
        record.provider = Some("hetzner".into());
        store.add(record).unwrap();
    }
    mcp_common::add_manual_server(
        dir,
        "bare-1",
        None,
        &host.fixture.sshd,
        json!({"root": host.root().to_string_lossy(), "sudo": "never"}),
    );
    let boots = sim.boots(&sim.server_ids()[0]);
    let endpoint = sim.endpoint();
    let token = sim.context().tokens.read_write.clone();
    let mcp = mcp_common::start(
        dir,
        &[
            ("KASTELL_SAFE_MODE", "false"),
            ("HETZNER_TOKEN", token.as_str()),
            ("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()),
        ],
    )
    .await;
    host.clear_log();
    sim.context().recorder.clear();

    let cases = refusals();
    for (tool, arguments, says) in &cases {
        let result = mcp.call(tool, arguments.clone()).await;
        assert!(is_error(&result), "{tool} {arguments} was accepted");
        let value = content(&result);
        assert_eq!(
            value["kind"], "invalid_input",
            "{tool} {arguments}: {value}"
        );
        let error = value["error"].as_str().unwrap();
        assert!(error.contains(says), "{tool} {arguments}: {error}");
        let hint = value["hint"].as_str().unwrap();
        assert!(hint.starts_with("Nothing was run."), "{hint}");
    }
    // The refused backup-create made no backup. `null` counts as absent,
    // for the surface's arguments (dryRun, planToken) as for the action's.
    let made = mcp
        .call(
            "server_backup",
            json!({"action": "backup-list", "server": "bare-1", "repo": null,
                "dryRun": null, "planToken": null}),
        )
        .await;
    assert!(!is_error(&made), "{made:?}");
    assert_eq!(
        content(&made)["backupCount"],
        0,
        "a refused call made a backup"
    );
    mcp.stop().await;

    assert_eq!(
        sim.context().recorder.all().len(),
        0,
        "a refused call reached the provider API: {:?}",
        sim.context().recorder.all()
    );
    assert_eq!(
        host.log(),
        Vec::<String>::new(),
        "a refused call ran commands on the host"
    );
    assert_eq!(
        sim.boots(&sim.server_ids()[0]),
        boots,
        "the server rebooted"
    );
    assert!(cases.len() >= 12);
}
