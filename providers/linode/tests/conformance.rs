//! The shared cloud conformance trials against the Linode simulator, plus
//! Linode-specific checks (pagination, encoded image ids, event search,
//! scoping to our account, maintenance).

// Fixture helpers are not `#[test]` functions; a failed setup should panic.
#![allow(clippy::expect_used)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{ServerId, SnapshotId};
use kastell_core::{CloudProvider, CloudProviderExt, ErrorKind, ProviderConfig, Secret};
use kastell_linode::sim::LinodeSim;
use kastell_sim::{SimOptions, Simulator, public_ip};
use kastell_testkit::cloud::{Account, CloudOp};
use kastell_testkit::sim_cloud::SimCloudFixture;

const SERVERS: usize = 130;

/// Where each operation goes at Linode. `get_server` reads the instance and
/// then its `/ips`; the `/ips` path is the one unique to it (the instance's
/// own path is a prefix of every sub-resource), so faults land there.
fn route(op: CloudOp, account: &Account) -> (&'static str, String) {
    let a = account.server_a.as_str();
    match op {
        CloudOp::GetServer => ("GET", format!("/v4/linode/instances/{a}/ips")),
        CloudOp::Reboot => ("POST", format!("/v4/linode/instances/{a}/reboot")),
        CloudOp::CreateSnapshot => ("POST", "/v4/images".to_owned()),
        CloudOp::DeleteSnapshot => ("DELETE", "/v4/images/".to_owned()),
        CloudOp::RestoreSnapshot => ("POST", "/rebuild".to_owned()),
        CloudOp::CreateServer => ("POST", "/v4/linode/instances".to_owned()),
        CloudOp::DeleteServer => ("DELETE", "/v4/linode/instances/".to_owned()),
        CloudOp::DeleteSshKey => ("DELETE", "/v4/profile/sshkeys/".to_owned()),
    }
}

async fn start() -> LinodeSim {
    LinodeSim::start(SimOptions {
        servers: SERVERS,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts")
}

async fn fixture() -> SimCloudFixture {
    SimCloudFixture::new(Box::new(start().await), route)
}

kastell_testkit::all_cloud_trials!(kastell_linode::ID, fixture);

fn provider(sim: &LinodeSim, options: &[(&str, &str)]) -> Arc<dyn CloudProvider> {
    kastell_linode::build(ProviderConfig {
        token: Secret::new(sim.context().tokens.read_write.clone()),
        endpoint: Some(sim.endpoint()),
        timeout: Some(Duration::from_secs(2)),
        retry: Some(kastell_testkit::sim_cloud::test_retry_policy()),
        poll: Some(kastell_core::PollSchedule::new(
            Duration::from_millis(5),
            Duration::from_millis(40),
        )),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .expect("provider")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pages_are_all_read() {
    let sim = start().await;
    let p = provider(&sim, &[("page_size", "25")]);
    let servers = p.list_servers().await.expect("list");
    assert_eq!(servers.len(), SERVERS);
    assert!(
        servers
            .iter()
            .enumerate()
            .all(|(i, s)| s.public_ipv4 == Some(public_ip(i)))
    );
    let pages = sim
        .context()
        .recorder
        .matching("GET", "/v4/linode/instances");
    assert_eq!(pages.len(), SERVERS.div_ceil(25), "one request per page");
    assert!(pages.iter().all(|r| r.query.contains("page_size=25")));
    let bad = kastell_linode::build(ProviderConfig {
        token: Secret::new("x"),
        options: [("page_size".to_owned(), "1000".to_owned())].into(),
        ..ProviderConfig::default()
    });
    assert_eq!(bad.expect_err("refused").kind(), ErrorKind::ConfigInvalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_addressed_encoded_and_the_other_account_is_invisible() {
    let sim = start().await;
    let p = provider(&sim, &[]);
    let a = ServerId::new(sim.server_ids()[0].clone()).expect("id");
    let snap = p
        .snapshot_and_wait(&a, "nightly", Duration::from_secs(30))
        .await
        .expect("snapshot");
    assert!(snap.id.as_str().starts_with("private/"));
    assert_eq!(snap.name, format!("kastell-{a}-nightly"));
    assert_eq!(snap.size_gb, Some(24.5));
    // The seeded "golden-base" image and the other account's image marked
    // for server A are not A's snapshots.
    let listed = p.list_snapshots(&a).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| &s.id).collect::<Vec<_>>(),
        vec![&snap.id]
    );
    let foreign = SnapshotId::new(sim.foreign_snapshot_id()).expect("id");
    let err = p.delete_snapshot(&a, &foreign).await.expect_err("foreign");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let golden = SnapshotId::new("private/38600001").expect("id");
    let err = p.restore_snapshot(&a, &golden).await.expect_err("not ours");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.hint().unwrap_or("").contains("kastell"));

    p.delete_snapshot(&a, &snap.id).await.expect("delete");
    let encoded = format!("/v4/images/{}", snap.id.as_str().replace('/', "%2F"));
    assert_eq!(sim.context().recorder.count("DELETE", &encoded), 1);

    let other = ServerId::new(sim.foreign_server_id()).expect("id");
    let err = p.get_server(&other).await.expect_err("foreign server");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let hidden = p
        .find_server_by_ip(Ipv4Addr::new(198, 19, 0, 1))
        .await
        .expect("lookup");
    assert!(hidden.is_none());

    // A found address needs the address lookup and the instance, nothing
    // more: the public IP is already known.
    sim.context().recorder.clear();
    let found = p
        .find_server_by_ip(kastell_sim::public_ip(1))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.public_ipv4, Some(kastell_sim::public_ip(1)));
    assert_eq!(sim.context().recorder.all().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_events_are_found_by_filter_and_hard_reboots_refused() {
    let sim = start().await;
    let p = provider(&sim, &[]);
    let a = ServerId::new(sim.server_ids()[0].clone()).expect("id");
    let err = p
        .reboot(&a, kastell_core::types::RebootMode::Hard)
        .await
        .expect_err("hard");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(
        sim.context().recorder.writes(),
        0,
        "refused before any request"
    );
    let action = p
        .reboot(&a, kastell_core::types::RebootMode::Soft)
        .await
        .expect("reboot");
    assert!(action.id.parse::<u64>().is_ok(), "event id {}", action.id);
    // A second reboot while the first runs is refused as busy (retried
    // until the first finishes, then sent).
    let second = p.reboot_and_wait(&a, Default::default(), Duration::from_secs(30));
    let outcome = second.await.expect("second reboot");
    assert_ne!(outcome.action.id, action.id);
    assert_eq!(sim.boots(a.as_str()), 3);
    // An event not yet visible when the reboot was accepted is searched for
    // on each poll.
    let pending = kastell_core::types::ActionRef {
        id: format!("pending:linode_reboot:{a}:2000-01-01T00:00:00"),
        ..outcome.action.clone()
    };
    let status = p.action_status(&pending).await.expect("pending search");
    assert_eq!(status.state, kastell_core::types::ActionState::Succeeded);
    let never = kastell_core::types::ActionRef {
        id: format!("pending:linode_rebuild:{a}:2000-01-01T00:00:00"),
        ..outcome.action.clone()
    };
    let status = p.action_status(&never).await.expect("nothing yet");
    assert_eq!(status.state, kastell_core::types::ActionState::Running);
    let estimate = p.snapshot_cost_estimate(&a).await.expect("cost");
    assert_eq!(estimate.size_gb, 24.5);
    assert!(estimate.basis.contains("unverified"));
    assert_eq!(estimate.to_string(), "$2.45/mo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_maintenance_is_not_retried() {
    let sim = start().await;
    let p = provider(&sim, &[]);
    let a = ServerId::new(sim.server_ids()[0].clone()).expect("id");
    sim.set_maintenance(true);
    let err = p.get_server(&a).await.expect_err("maintenance");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!err.is_retryable());
    assert_eq!(
        sim.context().recorder.count("GET", "/v4/linode/instances/"),
        1
    );
    sim.set_maintenance(false);
    assert!(p.get_server(&a).await.is_ok());
}

/// Linode documents image ids in the path as `private/123`: the literal
/// form and the encoded one name the same image, and an unknown image or
/// path is answered with Linode's error envelope, never an empty 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_paths_are_served_literal_and_encoded_with_linodes_errors() {
    use kastell_testkit::raw::call;
    let sim = start().await;
    let literal = call(&sim, "GET", "/images/private/38600001", None).await;
    assert_eq!(literal.status, 200, "{:?}", literal.body);
    let encoded = call(&sim, "GET", "/images/private%2F38600001", None).await;
    assert_eq!(encoded.status, 200);
    assert_eq!(literal.body["id"], "private/38600001");
    assert_eq!(literal.body, encoded.body);
    for path in [
        "/images/private/77",
        "/images/private%2F77",
        "/no/such/path",
    ] {
        let missing = call(&sim, "GET", path, None).await;
        assert_eq!(missing.status, 404, "{path}");
        assert_eq!(
            missing.body["errors"][0]["reason"], "Not found",
            "{path}: {:?}",
            missing.body
        );
    }
    // Deleting through the literal path works too.
    let p = provider(&sim, &[]);
    let a = ServerId::new(sim.server_ids()[0].clone()).expect("id");
    let snap = p
        .snapshot_and_wait(&a, "literal", Duration::from_secs(30))
        .await
        .expect("snapshot");
    let gone = call(&sim, "DELETE", &format!("/images/{}", snap.id), None).await;
    assert_eq!(gone.status, 200);
    assert!(p.list_snapshots(&a).await.expect("list").is_empty());
}

/// `POST /linode/instances` is checked field by field as Linode documents
/// it, each refusal naming its field in Linode's envelope; a created
/// instance carries its tags and is found by an `X-Filter` on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_creation_is_checked_field_by_field() {
    use kastell_testkit::raw::call;
    use serde_json::json;
    let sim = start().await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 t";
    let good = json!({"region": "eu-central", "type": "g6-standard-1", "image": "linode/ubuntu24.04",
        "root_pass": "aB3$aB3$aB3$aB3$", "authorized_keys": [key], "label": "new-one",
        "tags": ["kastell-managed", "kastell-drill"]});
    for (field, change) in [
        ("region", json!({"region": null})),
        ("type", json!({"type": "g6-giant-99"})),
        ("root_pass", json!({"root_pass": "short"})),
        ("authorized_keys", json!({"authorized_keys": ["not a key"]})),
        ("label", json!({"label": "x"})),
        ("image", json!({"image": "linode/plan9"})),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().expect("object") {
            if v.is_null() {
                body.as_object_mut().expect("object").remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let refused = call(&sim, "POST", "/linode/instances", Some(body)).await;
        assert_eq!(refused.status, 400, "{field}: {:?}", refused.body);
        assert_eq!(
            refused.body["errors"][0]["field"], field,
            "{:?}",
            refused.body
        );
    }
    assert!(sim.created_servers().is_empty());
    let created = call(&sim, "POST", "/linode/instances", Some(good.clone())).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["status"], "provisioning");
    assert_eq!(
        created.body["tags"],
        json!(["kastell-managed", "kastell-drill"])
    );
    let again = call(&sim, "POST", "/linode/instances", Some(good)).await;
    assert_eq!(
        again.body["errors"][0]["field"], "label",
        "labels are unique"
    );
    let p = provider(&sim, &[]);
    let managed = p.list_managed_servers().await.expect("managed");
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].server.id.as_str(), sim.created_servers()[0]);
}
