//! The cloud conformance trials against the Hetzner simulator.

use kastell_core::types::ServerId;
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, private_ip, public_ip};
use kastell_testkit::cloud::{Account, CloudOp};
use kastell_testkit::sim_cloud::SimCloudFixture;

/// Where each operation goes at Hetzner. Snapshot and restore trials act on
/// server B too, so their fragments name no server.
fn route(op: CloudOp, account: &Account) -> (&'static str, String) {
    match op {
        CloudOp::GetServer => ("GET", format!("/v1/servers/{}", account.server_a)),
        CloudOp::Reboot => (
            "POST",
            format!("/servers/{}/actions/reboot", account.server_a),
        ),
        CloudOp::CreateSnapshot => ("POST", "/actions/create_image".to_owned()),
        CloudOp::DeleteSnapshot => ("DELETE", "/v1/images/".to_owned()),
        CloudOp::RestoreSnapshot => ("POST", "/actions/rebuild".to_owned()),
    }
}

async fn fixture() -> SimCloudFixture {
    let options = SimOptions::default();
    let sim = HetznerSim::start(options)
        .await
        .unwrap_or_else(|e| panic!("starting the Hetzner simulator: {e}"));
    let ids = sim.server_ids();
    let id = |s: &str| ServerId::new(s).unwrap_or_else(|e| panic!("server id {s}: {e}"));
    let account = Account {
        server_a: id(&ids[0]),
        server_b: id(&ids[1]),
        missing_server: id(&sim.missing_server_id()),
        public_ip_a: public_ip(0),
        private_ip_a: Some(private_ip(0)),
        last_ip: public_ip(ids.len() - 1),
        server_count: ids.len(),
    };
    assert_eq!(ids.len(), options.servers);
    let sim = std::sync::Arc::new(sim);
    let for_boots = sim.clone();
    SimCloudFixture {
        id: kastell_hetzner::ID,
        endpoint: sim.endpoint(),
        context: sim.context().clone(),
        account,
        build: kastell_hetzner::build,
        boots: Box::new(move |server| for_boots.boots(server.as_str())),
        route,
        keep_alive: Box::new(sim),
    }
}

kastell_testkit::all_cloud_trials!(fixture);
