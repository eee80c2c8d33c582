//! The operations layer end to end against the Hetzner API simulator:
//! snapshot create (awaited), list and delete through the registry's
//! provider with an endpoint override, exactly as the CLI and MCP run them.
#![cfg(feature = "hetzner")]

use kastell::ops::{self, Context, Timing};
use kastell::{Env, FleetStore, ServerRecord, Surface};
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator, public_ip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_create_list_delete_against_the_hetzner_simulator() {
    let sim = HetznerSim::start(SimOptions::default())
        .await
        .unwrap_or_else(|e| panic!("starting the Hetzner simulator: {e}"));
    let ids = sim.server_ids();
    let dir = tempfile::tempdir().unwrap();
    let store = FleetStore::open(dir.path()).unwrap();
    let mut record = ServerRecord::new(ids[1].clone(), "web-1", public_ip(1).to_string());
    record.provider = Some("hetzner".into());
    store.add(record).unwrap();
    let env = Env::from_pairs([
        ("HETZNER_TOKEN", "hetzner-rw-sim-token"),
        // The simulator's addresses are in 198.18/15.
        ("KASTELL_ALLOW_PRIVATE_IPS", "true"),
    ]);
    let ctx = Context::new(env, store, Surface::Cli)
        .with_timing(Timing::fast())
        .with_endpoint("hetzner", sim.endpoint());

    let before = ops::snapshot_list(&ctx, Some("web-1")).await.unwrap();
    assert!(before.success);
    assert_eq!(before.ip, public_ip(1).to_string());

    let created = ops::snapshot_create(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(created.snapshot.status, "available");
    assert!(created.snapshot.name.starts_with("kastell-"));
    assert!(
        created.cost_estimate.ends_with("/mo"),
        "{}",
        created.cost_estimate
    );
    assert_eq!(created.snapshot.server_id.as_deref(), Some(ids[1].as_str()));

    let listed = ops::snapshot_list(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(listed.snapshot_count, before.snapshot_count + 1);
    assert!(listed.snapshots.iter().any(|s| s.id == created.snapshot.id));

    // Another project's snapshot is refused through this server.
    let err = ops::snapshot_delete(&ctx, Some("web-1"), &sim.foreign_snapshot_id())
        .await
        .unwrap_err();
    assert_eq!(err.kind, "not_found", "{err}");

    let deleted = ops::snapshot_delete(&ctx, Some("web-1"), &created.snapshot.id)
        .await
        .unwrap();
    assert_eq!(deleted.message, "Snapshot deleted");
    let after = ops::snapshot_list(&ctx, Some("web-1")).await.unwrap();
    assert_eq!(after.snapshot_count, before.snapshot_count);

    // A wrong token is refused by the API, surfaced as an OpError.
    let bad = Context::new(
        Env::from_pairs([
            ("HETZNER_TOKEN", "wrong"),
            ("KASTELL_ALLOW_PRIVATE_IPS", "true"),
        ]),
        FleetStore::open(dir.path()).unwrap(),
        Surface::Cli,
    )
    .with_timing(Timing::fast())
    .with_endpoint("hetzner", sim.endpoint());
    let err = ops::snapshot_list(&bad, Some("web-1")).await.unwrap_err();
    assert_eq!(err.kind, "unauthenticated", "{err}");
}
