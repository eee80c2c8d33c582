//! Every cloud conformance trial against the DigitalOcean simulator, and a
//! few checks of the simulator's own DigitalOcean shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail loudly.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use kastell_core::types::{RebootMode, ServerId, SnapshotId};
use kastell_core::{CloudProvider, CloudProviderExt, ErrorKind, Idempotency, RetryPolicy, Secret};
use kastell_digitalocean::sim::DigitalOceanSim;
use kastell_http::{ApiClient, ApiRequest, ClientConfig};
use kastell_sim::{SimOptions, Simulator, private_ip, public_ip};
use kastell_testkit::cloud::{Account, CloudOp};
use kastell_testkit::sim_cloud::SimCloudFixture;
use serde_json::{Value, json};

/// More droplets than two pages of 200, so single-page bugs show.
const SERVERS: usize = 450;

fn server_id(text: &str) -> ServerId {
    ServerId::new(text).expect("simulator ids are valid")
}

/// Where each operation goes. DigitalOcean sends reboot, snapshot and rebuild
/// to the same path (`POST /v2/droplets/{id}/actions`, the type is in the
/// body) and faults match on method and path only, so the operations are told
/// apart by droplet: the trials reboot A and snapshot/restore B.
fn route(op: CloudOp, account: &Account) -> (&'static str, String) {
    match op {
        CloudOp::GetServer => ("GET", format!("/v2/droplets/{}", account.server_a)),
        CloudOp::Reboot => ("POST", format!("/v2/droplets/{}/actions", account.server_a)),
        CloudOp::CreateSnapshot | CloudOp::RestoreSnapshot => {
            ("POST", format!("/v2/droplets/{}/actions", account.server_b))
        }
        CloudOp::DeleteSnapshot => ("DELETE", "/v2/snapshots/".to_owned()),
        CloudOp::CreateServer => ("POST", "/v2/droplets".to_owned()),
        CloudOp::DeleteServer => ("DELETE", "/v2/droplets/".to_owned()),
        CloudOp::DeleteSshKey => ("DELETE", "/v2/account/keys/".to_owned()),
    }
}

async fn fixture() -> SimCloudFixture {
    let options = SimOptions {
        servers: SERVERS,
        ..SimOptions::default()
    };
    SimCloudFixture::start(&kastell_digitalocean::sim::SIMULATOR, options, route).await
}

kastell_testkit::all_cloud_trials!(kastell_digitalocean::ID, fixture);

/// A raw client for the simulator, to look at its JSON directly.
fn raw(sim: &DigitalOceanSim) -> ApiClient {
    ApiClient::new(
        ClientConfig {
            provider: "digitalocean-raw",
            base_url: sim.endpoint(),
            token: Secret::new(sim.context().tokens.read_write.clone()),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy::none(),
        },
        |f| kastell_http::status::default_error(f.provider, f.status, &f.body_text()),
    )
    .expect("client")
}

fn provider(sim: &DigitalOceanSim) -> Arc<dyn CloudProvider> {
    kastell_digitalocean::build(kastell_core::ProviderConfig {
        token: Secret::new(sim.context().tokens.read_write.clone()),
        endpoint: Some(sim.endpoint()),
        poll: Some(kastell_core::PollSchedule::new(
            Duration::from_millis(5),
            Duration::from_millis(40),
        )),
        ..Default::default()
    })
    .expect("provider")
}

async fn start(servers: usize) -> DigitalOceanSim {
    DigitalOceanSim::start(SimOptions {
        servers,
        ..SimOptions::default()
    })
    .await
    .expect("simulator starts")
}

#[tokio::test]
async fn pages_link_back_to_the_simulator_and_clamp_per_page() {
    let sim = start(45).await;
    let api = raw(&sim);
    let first: Value = api
        .get_json("list", ApiRequest::get("droplets").query("per_page", "20"))
        .await
        .unwrap();
    assert_eq!(first["droplets"].as_array().unwrap().len(), 20);
    assert_eq!(first["meta"]["total"], 45);
    let pages = &first["links"]["pages"];
    assert!(pages.get("prev").is_none() && pages.get("first").is_none());
    let next = pages["next"].as_str().unwrap();
    assert_eq!(
        next,
        format!("{}/droplets?page=2&per_page=20", sim.endpoint())
    );
    let last: Value = api
        .get_json("list", ApiRequest::get(pages["last"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(last["droplets"].as_array().unwrap().len(), 5);
    assert!(last["links"]["pages"].get("next").is_none());
    assert!(last["links"]["pages"]["prev"].is_string());

    let clamped: Value = api
        .get_json(
            "list",
            ApiRequest::get("droplets").query("per_page", "5000"),
        )
        .await
        .unwrap();
    assert_eq!(clamped["droplets"].as_array().unwrap().len(), 45);
    assert_eq!(
        clamped["links"],
        json!({}),
        "no links.pages on a single page"
    );
}

#[tokio::test]
async fn droplets_list_the_private_address_first() {
    let sim = start(3).await;
    let d: Value = raw(&sim)
        .get_json(
            "get",
            ApiRequest::get(format!("droplets/{}", sim.server_id(2))),
        )
        .await
        .unwrap();
    let v4 = d["droplet"]["networks"]["v4"].as_array().unwrap();
    assert_eq!(v4[0]["type"], "private");
    assert_eq!(v4[0]["ip_address"], private_ip(2).to_string());
    assert_eq!(v4[1]["type"], "public");
    assert_eq!(d["droplet"]["status"], "active");
    let server = provider(&sim)
        .get_server(&server_id(&sim.server_id(2)))
        .await
        .unwrap();
    assert_eq!(server.public_ipv4, Some(public_ip(2)));
    assert_eq!(server.disk_gb, Some(80.0));
}

#[tokio::test]
async fn droplets_stay_active_but_locked_and_refuse_a_second_action() {
    let sim = start(2).await;
    let api = raw(&sim);
    let a = sim.server_id(0);
    let actions = format!("droplets/{a}/actions");
    let post = |body: Value| ApiRequest::post(actions.clone(), body, Idempotency::NonIdempotent);
    let started: Value = api
        .send("snap", post(json!({"type": "snapshot", "name": "s1"})))
        .await
        .unwrap()
        .json("digitalocean", "snap")
        .unwrap();
    assert_eq!(started["action"]["status"], "in-progress");
    assert!(started["action"].get("image_id").is_none());
    let d: Value = api
        .get_json("get", ApiRequest::get(format!("droplets/{a}")))
        .await
        .unwrap();
    assert_eq!(
        (
            d["droplet"]["status"].as_str(),
            d["droplet"]["locked"].as_bool()
        ),
        (Some("active"), Some(true))
    );
    let snaps: Value = api
        .get_json("list", ApiRequest::get(format!("droplets/{a}/snapshots")))
        .await
        .unwrap();
    assert_eq!(snaps["snapshots"], json!([]), "listed only once complete");
    let busy = api
        .send("reboot", post(json!({"type": "reboot"})))
        .await
        .unwrap_err();
    assert!(busy.message().contains("pending event"), "{busy}");
    let bad = api
        .send("restore", post(json!({"type": "restore", "image": 1})))
        .await
        .unwrap_err();
    assert!(bad.message().contains("422"), "{bad}");
}

#[tokio::test]
async fn the_other_account_is_invisible() {
    let sim = start(2).await;
    let api = raw(&sim);
    let foreign = sim.foreign_server_id();
    for path in [
        format!("droplets/{foreign}"),
        format!("droplets/{foreign}/snapshots"),
    ] {
        let err = api.send("get", ApiRequest::get(path)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
    let snap = sim.foreign_snapshot_id();
    let err = api
        .send("delete", ApiRequest::delete(format!("snapshots/{snap}")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let all: Value = api
        .get_json("all", ApiRequest::get("snapshots"))
        .await
        .unwrap();
    assert_eq!(all["snapshots"], json!([]));
    let p = provider(&sim);
    let err = p
        .restore_snapshot(
            &server_id(&sim.server_id(0)),
            &SnapshotId::new(snap).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.hint().is_some());
    let found = p
        .find_server_by_ip(Ipv4Addr::new(198, 19, 255, 1))
        .await
        .unwrap();
    assert!(found.is_none());
}

#[tokio::test]
async fn snapshots_report_their_real_id_and_cost() {
    let sim = start(3).await;
    let p = provider(&sim);
    let b = server_id(&sim.server_id(1));
    let cost = p.snapshot_cost_estimate(&b).await.unwrap();
    assert_eq!((cost.size_gb, cost.currency.as_str()), (50.0, "$"));
    assert!((cost.monthly - 3.0).abs() < 1e-9);
    assert_eq!(cost.to_string(), "$3.00/mo");

    let snap = p
        .snapshot_and_wait(&b, "kastell-cost", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(snap.server_id.as_ref(), Some(&b));
    assert!(snap.size_gb.unwrap() > 0.0);
    let listed: Value = raw(&sim)
        .get_json(
            "all",
            ApiRequest::get("snapshots").query("resource_type", "droplet"),
        )
        .await
        .unwrap();
    assert_eq!(
        listed["snapshots"][0]["id"],
        json!(snap.id.as_str()),
        "string ids there"
    );
    assert_eq!(listed["snapshots"][0]["resource_id"], json!(b.as_str()));

    let hard = p
        .reboot_and_wait(&b, RebootMode::Hard, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(hard.server.id, b);
    assert_eq!(sim.boots(b.as_str()), 2);
    let posts = sim
        .context()
        .recorder
        .count("POST", &format!("/droplets/{b}/actions"));
    assert_eq!(posts, 2, "one snapshot and one power cycle");
}

/// Every snapshot kastell takes carries its tag `kastell-managed` (the tag
/// created on the first one, which the account did not have), shown in
/// `/v2/snapshots` and read back as `managed`; a snapshot taken without
/// kastell (same kind of name, no tag) is listed as not kastell's. The
/// tagging endpoint refuses what DigitalOcean refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kastells_snapshots_carry_its_tag_and_others_do_not() {
    use kastell_testkit::raw::call;
    let sim = start(3).await;
    let p = provider(&sim);
    let b = server_id(&sim.server_id(1));
    let first = p
        .snapshot_and_wait(&b, "kastell-1700000000000", Duration::from_secs(30))
        .await
        .unwrap();
    let second = p
        .snapshot_and_wait(&b, "kastell-1700000001000", Duration::from_secs(30))
        .await
        .unwrap();
    let recorder = &sim.context().recorder;
    // Tagging the first found no tag (404), created it and tagged again;
    // the second was tagged at once.
    let tagging = recorder.count("POST", "/tags/kastell-managed/resources");
    assert_eq!(tagging, 3);
    assert_eq!(
        recorder.count("POST", "/tags") - tagging,
        1,
        "the tag is created once"
    );

    // Another tool's snapshot, named as kastell names its own.
    let made = call(
        &sim,
        "POST",
        &format!("/droplets/{b}/actions"),
        Some(json!({"type": "snapshot", "name": "kastell-1700000002000"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = p.list_snapshots(&b).await.unwrap();
        if listed.len() == 3 {
            break listed;
        }
        assert!(std::time::Instant::now() < deadline, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for snapshot in &listed {
        let ours = snapshot.id == first.id || snapshot.id == second.id;
        assert_eq!(snapshot.managed, Some(ours), "{snapshot:?}");
    }
    let all: Value = raw(&sim)
        .get_json(
            "all",
            ApiRequest::get("snapshots").query("resource_type", "droplet"),
        )
        .await
        .unwrap();
    let tags_of = |id: &SnapshotId| {
        all["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == json!(id.as_str()))
            .map(|s| s["tags"].clone())
    };
    assert_eq!(tags_of(&first.id), Some(json!(["kastell-managed"])));
    // A droplet's own snapshot list shows no tags.
    let own: Value = raw(&sim)
        .get_json("own", ApiRequest::get(format!("droplets/{b}/snapshots")))
        .await
        .unwrap();
    assert!(own["snapshots"][0].get("tags").is_none(), "{own}");

    // What the tagging endpoint refuses.
    let simulator = &sim;
    let tag = |tag: &str, resource: Value| {
        let path = format!("/tags/{tag}/resources");
        let body = json!({ "resources": [resource] });
        async move { call(simulator, "POST", &path, Some(body)).await.status }
    };
    let image = |id: String| json!({"resource_id": id, "resource_type": "image"});
    assert_eq!(tag("no-such-tag", image(first.id.to_string())).await, 404);
    assert_eq!(
        tag("kastell-managed", image(sim.foreign_snapshot_id())).await,
        404
    );
    let number = json!({"resource_id": 1, "resource_type": "image"});
    assert_eq!(tag("kastell-managed", number).await, 422);
    let kind = json!({"resource_id": first.id.as_str(), "resource_type": "server"});
    assert_eq!(tag("kastell-managed", kind).await, 422);
}

/// `POST /v2/droplets` is checked as DigitalOcean documents it, refusals in
/// its `{"id", "message"}` envelope; a created droplet is `new` without
/// addresses, answers 202 with its create action, carries its tags and is
/// listed by `tag_name`; sizes carry their prices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn droplet_creation_is_checked_field_by_field() {
    use kastell_testkit::raw::call;
    let sim = DigitalOceanSim::start(SimOptions {
        servers: 3,
        ..SimOptions::default()
    })
    .await
    .expect("simulator");
    let key = call(
        &sim,
        "POST",
        "/account/keys",
        Some(json!({"name": "k", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 t"})),
    )
    .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let key_id = key.body["ssh_key"]["id"].clone();
    let one = call(&sim, "GET", &format!("/account/keys/{key_id}"), None).await;
    assert_eq!(one.status, 200, "{}", one.body);
    for field in ["id", "fingerprint", "public_key", "name"] {
        assert!(
            !one.body["ssh_key"][field].is_null(),
            "{field}: {}",
            one.body
        );
    }
    let none = call(&sim, "GET", "/account/keys/999", None).await;
    assert_eq!(none.status, 404);
    assert_eq!(none.body["id"], "not_found", "{}", none.body);
    let good = json!({"name": "new-one", "region": "fra1", "size": "s-1vcpu-2gb",
        "image": "ubuntu-24-04-x64", "ssh_keys": [key_id], "tags": ["kastell-managed", "kastell-drill"]});
    for (what, change) in [
        ("name", json!({"name": ""})),
        ("size", json!({"size": "s-99vcpu"})),
        ("region", json!({"region": "mars1"})),
        ("image", json!({"image": "plan9"})),
        ("tags", json!({"tags": ["not a tag!"]})),
        ("ssh key", json!({"ssh_keys": [999]})),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().expect("object") {
            body[k] = v.clone();
        }
        let refused = call(&sim, "POST", "/droplets", Some(body)).await;
        assert_eq!(refused.status, 422, "{what}: {}", refused.body);
        assert_eq!(refused.body["id"], "unprocessable_entity", "{what}");
        assert!(refused.body["message"].is_string());
    }
    assert!(sim.created_servers().is_empty());
    let created = call(&sim, "POST", "/droplets", Some(good)).await;
    assert_eq!(created.status, 202, "{}", created.body);
    assert_eq!(created.body["droplet"]["status"], "new");
    assert_eq!(created.body["droplet"]["networks"]["v4"], json!([]));
    assert_eq!(created.body["links"]["actions"][0]["rel"], "create");
    let tagged = call(&sim, "GET", "/droplets?tag_name=kastell-drill", None).await;
    assert_eq!(tagged.body["droplets"].as_array().map(Vec::len), Some(1));
    assert_eq!(tagged.body["droplets"][0]["tags"][1], "kastell-drill");
    let sizes = call(&sim, "GET", "/sizes", None).await;
    for size in sizes.body["sizes"].as_array().expect("sizes") {
        for field in [
            "slug",
            "memory",
            "vcpus",
            "disk",
            "transfer",
            "price_monthly",
            "price_hourly",
            "regions",
            "available",
            "description",
        ] {
            assert!(size.get(field).is_some(), "size lacks {field}: {size}");
        }
    }
}
