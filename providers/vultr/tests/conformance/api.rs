//! Vultr-specific behaviour against the simulator: cursor pages, synthetic
//! actions, description-scoped snapshots, foreign resources, raw answers.
// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{ActionState, RebootMode, ServerId, ServerStatus, SnapshotId};
use kastell_core::{
    CloudProvider, CloudProviderExt, ErrorKind, PollSchedule, ProviderConfig, RetryPolicy, Secret,
};
use kastell_http::{ApiClient, ApiRequest, ClientConfig, status};
use kastell_sim::{SimOptions, Simulator, public_ip};
use kastell_vultr::sim::VultrSim;

const WAIT: Duration = Duration::from_secs(30);

/// A simulator; tests that look at a transient state use a slower clock
/// (scale 20: a reboot's "stopped" phase lasts 150 ms) so a busy machine
/// cannot miss it.
async fn sim_at(servers: usize, scale: f64) -> VultrSim {
    VultrSim::start(SimOptions { servers, scale })
        .await
        .unwrap()
}

async fn sim(servers: usize) -> VultrSim {
    sim_at(servers, 200.0).await
}

fn provider(sim: &VultrSim, read_only: bool) -> Arc<dyn CloudProvider> {
    let tokens = &sim.context().tokens;
    let token = if read_only {
        &tokens.read_only
    } else {
        &tokens.read_write
    };
    kastell_vultr::build(ProviderConfig {
        token: Secret::new(token.clone()),
        endpoint: Some(sim.endpoint()),
        timeout: Some(Duration::from_secs(2)),
        retry: Some(RetryPolicy::none()),
        poll: Some(PollSchedule::new(
            Duration::from_millis(5),
            Duration::from_millis(40),
        )),
        options: Default::default(),
    })
    .unwrap()
}

fn id(text: &str) -> ServerId {
    ServerId::new(text).unwrap()
}

#[tokio::test]
async fn lists_follow_cursors_at_the_largest_page_size() {
    let sim = sim(1_101).await;
    let p = provider(&sim, false);
    let servers = p.list_servers().await.unwrap();
    assert_eq!(servers.len(), 1_101);
    let pages = sim.context().recorder.matching("GET", "/v2/instances");
    assert_eq!(pages.len(), 3, "500 + 500 + 101");
    assert!(pages.iter().all(|r| r.query.contains("per_page=500")));
    assert!(pages[1].query.contains("cursor="));

    sim.context().recorder.clear();
    let last = p
        .find_server_by_ip(public_ip(1_100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.name, "web-1100");
    let asked = sim.context().recorder.all();
    assert_eq!(asked.len(), 1, "one server-side lookup, no listing");
    assert!(asked[0].query.contains("main_ip=198.18.4.76"));
}

#[tokio::test]
async fn reboot_succeeds_only_after_the_instance_was_seen_down() {
    let sim = sim_at(3, 20.0).await;
    let p = provider(&sim, false);
    let a = id(&sim.server_ids()[0]);
    let before = sim.boots(a.as_str());
    let action = p.reboot(&a, RebootMode::Soft).await.unwrap();
    assert!(action.id.starts_with("reboot-"));
    let first = p.action_status(&action).await.unwrap();
    assert_eq!(
        first.state,
        ActionState::Running,
        "stopped right after the 204"
    );
    let server = p.get_server(&a).await.unwrap();
    assert_eq!(server.status, ServerStatus::Rebooting);
    assert_eq!(server.raw_status, "active/stopped/installingbooting");
    p.wait_for_action(&action, WAIT).await.unwrap();
    assert_eq!(sim.boots(a.as_str()), before + 1);

    let err = p.reboot(&a, RebootMode::Hard).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(sim.context().recorder.count("POST", "/reboot"), 1);
}

#[tokio::test]
async fn a_locked_instance_refuses_writes_but_answers_reads() {
    let sim = sim_at(3, 20.0).await;
    let p = provider(&sim, false);
    let a = id(&sim.server_ids()[0]);
    p.reboot(&a, RebootMode::Soft).await.unwrap();
    let err = p.reboot(&a, RebootMode::Soft).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.is_retryable() && !err.may_have_taken_effect());
    let err = p.create_snapshot(&a, "during-reboot").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(p.get_server(&a).await.is_ok());
}

#[tokio::test]
async fn snapshots_are_scoped_by_description_and_account() {
    let sim = sim(3).await;
    let p = provider(&sim, false);
    let ids = sim.server_ids();
    let (a, b) = (id(&ids[0]), id(&ids[1]));
    let (foreign_server, foreign_snapshot) = (sim.foreign_server_id(), sim.foreign_snapshot_id());

    // A has only the seeded "manual backup" (not kastell's) and, in another
    // account, a snapshot whose description claims A: neither is listed.
    assert!(p.list_snapshots(&a).await.unwrap().is_empty());
    let of_b = p.list_snapshots(&b).await.unwrap();
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].name, "seeded");
    assert!(of_b[0].size_gb.unwrap() > 1.0);

    let foreign = SnapshotId::new(foreign_snapshot).unwrap();
    let err = p.delete_snapshot(&a, &foreign).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = p.get_server(&id(&foreign_server)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let action = p.create_snapshot(&a, "nightly").await.unwrap();
    let snap = SnapshotId::new(action.resource.clone().unwrap()).unwrap();
    let pending = p.list_snapshots(&a).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].size_gb, None, "size 0 while pending");
    let err = p.restore_snapshot(&a, &snap).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState, "not complete yet");
    assert_eq!(sim.context().recorder.count("POST", "/restore"), 0);

    let done = p.wait_for_action(&action, WAIT).await.unwrap();
    assert_eq!(done.resource.as_deref(), Some(snap.as_str()));
    let err = p.delete_snapshot(&b, &snap).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.hint().is_some());
    assert_eq!(sim.context().recorder.count("DELETE", "/snapshots/"), 0);
    let malformed = SnapshotId::new("12345").unwrap();
    let err = p.restore_snapshot(&a, &malformed).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn restore_walks_locked_and_booting_before_running() {
    let sim = sim_at(2, 50.0).await;
    let p = provider(&sim, false);
    let a = id(&sim.server_ids()[0]);
    let snap = p.snapshot_and_wait(&a, "before", WAIT).await.unwrap();
    let boots = sim.boots(a.as_str());
    let action = p.restore_snapshot(&a, &snap.id).await.unwrap();
    let right_after = p.get_server(&a).await.unwrap();
    assert_eq!(right_after.raw_status, "active/running/locked");
    assert_eq!(right_after.status, ServerStatus::Provisioning);
    p.wait_for_action(&action, WAIT).await.unwrap();
    assert_eq!(
        p.get_server(&a).await.unwrap().status,
        ServerStatus::Running
    );
    assert_eq!(sim.boots(a.as_str()), boots + 1);
}

#[tokio::test]
async fn tokens_acls_and_costs() {
    let sim = sim(1).await;
    let rw = provider(&sim, false).validate_token().await.unwrap();
    assert_eq!(rw.can_write, Some(true));
    assert!(rw.scopes.iter().any(|s| s == "subscriptions"));
    assert!(
        rw.scopes.iter().all(|s| s != "manage_servers"),
        "Vultr documents no manage_servers ACL"
    );
    assert_eq!(rw.account.as_deref(), Some("Kastell Sim"));
    let ro = provider(&sim, true).validate_token().await.unwrap();
    assert_eq!(ro.can_write, Some(false));

    let a = id(&sim.server_ids()[0]);
    let cost = provider(&sim, false)
        .snapshot_cost_estimate(&a)
        .await
        .unwrap();
    assert_eq!(cost.size_gb, 55.0);
    assert_eq!(cost.to_string(), "$2.75/mo");

    let manual = id("manual-1742050000000");
    let err = provider(&sim, false).get_server(&manual).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.hint().unwrap().contains("manually"));
}

#[tokio::test]
async fn raw_answers_have_vultr_shapes() {
    let sim = sim(3).await;
    let api = ApiClient::new(
        ClientConfig {
            provider: "vultr-raw",
            base_url: sim.endpoint(),
            token: Secret::new(sim.context().tokens.read_write.clone()),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy::none(),
        },
        |f| status::default_error(f.provider, f.status, &f.body_text()),
    )
    .unwrap();
    let err = api
        .send("t", ApiRequest::get("instances/not-a-uuid"))
        .await
        .unwrap_err();
    assert!(
        err.message()
            .contains(r#""error":"invalid instance ID","status":400"#)
    );
    let err = api
        .send("t", ApiRequest::get("snapshots/5f3d2a1b9c7e0"))
        .await
        .unwrap_err();
    assert!(err.message().contains("Invalid UUID format."));
    let page: serde_json::Value = api
        .get_json("t", ApiRequest::get("instances").query("per_page", "1"))
        .await
        .unwrap();
    assert_eq!(page["instances"].as_array().unwrap().len(), 1);
    assert_eq!(page["meta"]["total"], 3);
    assert_eq!(page["meta"]["links"]["prev"], "");
    let next = page["meta"]["links"]["next"].as_str().unwrap();
    let last: serde_json::Value = api
        .get_json(
            "t",
            ApiRequest::get("instances")
                .query("per_page", "2")
                .query("cursor", next),
        )
        .await
        .unwrap();
    assert_eq!(last["instances"].as_array().unwrap().len(), 2);
    assert_eq!(last["meta"]["links"]["next"], "");
    let big: serde_json::Value = api
        .get_json("t", ApiRequest::get("instances").query("per_page", "9999"))
        .await
        .unwrap();
    assert_eq!(
        big["instances"].as_array().unwrap().len(),
        3,
        "clamped, not refused"
    );
    let a = &sim.server_ids()[0];
    let reboot = api
        .send(
            "t",
            ApiRequest::post(
                format!("instances/{a}/reboot"),
                serde_json::json!({}),
                kastell_core::Idempotency::NonIdempotent,
            ),
        )
        .await
        .unwrap();
    assert_eq!(reboot.status, 204);
    assert!(reboot.body.is_empty());
    assert!(reboot.headers.get("ratelimit-remaining").is_none());
}

/// `POST /instances` is checked as Vultr documents it (400 with Vultr's
/// `{"error", "status"}`); a created instance is `pending` at `0.0.0.0`,
/// carries its tags and is found by the `tag` filter; plans carry prices.
#[tokio::test]
async fn instance_creation_is_checked_as_vultr_does() {
    use kastell_testkit::raw::call;
    use serde_json::json;
    let sim = sim(2).await;
    let key = call(
        &sim,
        "POST",
        "/ssh-keys",
        Some(json!({"name": "k", "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 t"})),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let key_id = key.body["ssh_key"]["id"].as_str().unwrap().to_owned();
    let one = call(&sim, "GET", &format!("/ssh-keys/{key_id}"), None).await;
    assert_eq!(one.status, 200, "{}", one.body);
    for field in ["id", "date_created", "name", "ssh_key"] {
        assert!(
            !one.body["ssh_key"][field].is_null(),
            "{field}: {}",
            one.body
        );
    }
    let none = call(
        &sim,
        "GET",
        "/ssh-keys/00000000-0000-4000-8000-000000000000",
        None,
    )
    .await;
    assert_eq!(none.status, 404, "{}", none.body);
    assert!(none.body["error"].is_string(), "{}", none.body);
    let good = json!({"region": "fra", "plan": "vc2-1c-2gb", "os_id": 2284, "label": "new-one",
        "sshkey_id": [key.body["ssh_key"]["id"]], "tags": ["kastell-managed", "kastell-drill"]});
    for (what, drop, change) in [
        ("region", Some("region"), json!({})),
        ("plan", None, json!({"plan": "vc2-99c"})),
        ("image", Some("os_id"), json!({})),
        ("os_id", None, json!({"os_id": 1})),
        ("ssh key", None, json!({"sshkey_id": ["nope"]})),
        ("tags", None, json!({"tags": "kastell-managed"})),
    ] {
        let mut body = good.clone();
        if let Some(drop) = drop {
            body.as_object_mut().map(|b| b.remove(drop));
        }
        for (k, v) in change.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let refused = call(&sim, "POST", "/instances", Some(body)).await;
        assert_eq!(refused.status, 400, "{what}: {}", refused.body);
        assert_eq!(refused.body["status"], 400, "{what}");
        assert!(refused.body["error"].is_string(), "{what}");
    }
    assert!(sim.created_servers().is_empty());
    let created = call(&sim, "POST", "/instances", Some(good)).await;
    assert_eq!(created.status, 202, "{}", created.body);
    assert_eq!(created.body["instance"]["status"], "pending");
    assert_eq!(created.body["instance"]["main_ip"], "0.0.0.0");
    let tagged = call(&sim, "GET", "/instances?tag=kastell-drill", None).await;
    assert_eq!(tagged.body["instances"].as_array().map(Vec::len), Some(1));
    let plans = call(&sim, "GET", "/plans", None).await;
    for plan in plans.body["plans"].as_array().expect("plans") {
        for field in [
            "id",
            "vcpu_count",
            "ram",
            "disk",
            "bandwidth",
            "monthly_cost",
            "type",
            "locations",
        ] {
            assert!(plan.get(field).is_some(), "plan lacks {field}: {plan}");
        }
    }
}
