//! `--all`, `--dry-run` and confirmation through the real binary against
//! the Hetzner simulator with a fleet of 20 servers: `snapshot list --all
//! --json` gives 20 results (each the ops payload), dry runs of `restart
//! --all` and `maintain --all` print the plan and send no request at all,
//! and a disruptive or destructive command off a terminal without
//! `--force` exits 1 having touched nothing.
#![cfg(feature = "hetzner")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use kastell::ops::{self, Context};
use kastell::{Env, FleetStore, ServerRecord, Surface};
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator, public_ip};
use serde_json::Value;

use crate::support;

const FLEET: usize = 20;

struct Fleet {
    sim: HetznerSim,
    dir: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Self {
        let sim = HetznerSim::start(SimOptions {
            servers: FLEET,
            ..SimOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FleetStore::open(dir.path().join("state")).unwrap();
        for (i, id) in sim.server_ids().iter().enumerate() {
            let mut record =
                ServerRecord::new(id.clone(), format!("web-{i}"), public_ip(i).to_string());
            record.provider = Some("hetzner".into());
            store.add(record).unwrap();
        }
        Self { sim, dir }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KASTELL_HETZNER_ENDPOINT", self.sim.endpoint()),
            (
                "HETZNER_TOKEN",
                self.sim.context().tokens.read_write.clone(),
            ),
            ("KASTELL_ALLOW_PRIVATE_IPS", "true".to_owned()),
        ]
    }

    /// Runs the binary off the async runtime's threads.
    async fn kastell(&self, args: &[&str]) -> Output {
        let mut cmd = support::kastell(self.dir.path(), args);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_list_all_gives_one_ops_payload_per_server() {
    let fleet = Fleet::start().await;
    let out = fleet
        .kastell(&["--json", "snapshot", "list", "--all", "--concurrency", "6"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = json_of(&out);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), FLEET);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["success"], true, "{r}");
        assert_eq!(r["server"], format!("web-{i}"), "fleet order");
        assert!(r["snapshotCount"].is_u64());
    }
    // Each entry is exactly what ops returns.
    let store = FleetStore::open(fleet.dir.path().join("state")).unwrap();
    let env = Env::from_pairs(fleet.env());
    let ctx = Context::new(env, store, Surface::Cli);
    let direct = ops::snapshot_list(&ctx, Some("web-3")).await.unwrap();
    assert_eq!(results[3], serde_json::to_value(&direct).unwrap());
    assert_eq!(fleet.sim.context().recorder.writes(), 0);

    // Human output ends with the per-server summary.
    let out = fleet.kastell(&["snapshot", "list", "--all"]).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SERVER"), "{text}");
    assert!(
        text.contains(&format!("snapshot list: {FLEET} succeeded, 0 failed")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_send_no_request_and_destructive_runs_need_force() {
    let fleet = Fleet::start().await;
    let recorder = &fleet.sim.context().recorder;

    let out = fleet
        .kastell(&["restart", "--all", "--force", "--dry-run"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Dry run of restart on 20 server(s)"),
        "{text}"
    );
    assert!(text.contains("Reboot via the hetzner API"), "{text}");

    let out = fleet
        .kastell(&["--json", "maintain", "--all", "--dry-run", "--snapshot"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = json_of(&out);
    assert_eq!(plan["dryRun"], true);
    let servers = plan["servers"].as_array().unwrap();
    assert_eq!(servers.len(), FLEET);
    let steps = servers[0]["steps"].as_array().unwrap();
    assert!(
        steps[0].as_str().unwrap().starts_with("Backup: "),
        "{steps:?}"
    );
    assert!(
        steps[1]
            .as_str()
            .unwrap()
            .starts_with("Snapshot (required)"),
        "{plan}"
    );
    assert_eq!(
        steps.len(),
        8,
        "the steps, then the rollback policy: {plan}"
    );

    // Destructive, not a terminal, no --force: exit 1, nothing sent.
    for args in [
        &["restart", "web-1"][..],
        &["maintain", "--all"][..],
        &["update", "--all"][..],
        &["snapshot", "delete", "web-1", "--snapshot", "123"][..],
    ] {
        let out = fleet.kastell(args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--force"), "{args:?}: {stderr}");
    }

    assert_eq!(recorder.writes(), 0);
    assert!(recorder.all().iter().all(|r| r.method != "POST"));
    assert!(recorder.all().is_empty(), "{:?}", recorder.all());

    // SAFE_MODE refuses on the CLI too, with exit 1 and the ops payload.
    let mut cmd = support::kastell(fleet.dir.path(), &["--json", "snapshot", "create", "web-1"]);
    for (k, v) in fleet.env() {
        cmd.env(k, v);
    }
    let out =
        tokio::task::spawn_blocking(move || cmd.env("KASTELL_SAFE_MODE", "1").output().unwrap())
            .await
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        json_of(&out)["error"]
            .as_str()
            .unwrap()
            .contains("SAFE_MODE")
    );
    assert_eq!(recorder.writes(), 0);
}
