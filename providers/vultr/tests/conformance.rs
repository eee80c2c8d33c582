//! The shared cloud conformance trials against the Vultr simulator.

use kastell_core::types::ServerId;
use kastell_sim::{SimOptions, private_ip, public_ip};
use kastell_testkit::cloud::{Account, CloudOp};
use kastell_testkit::sim_cloud::SimCloudFixture;
use kastell_vultr::sim::VultrSim;

/// Each operation's method and a path fragment only its requests contain.
fn route(op: CloudOp, account: &Account) -> (&'static str, String) {
    let a = &account.server_a;
    match op {
        CloudOp::GetServer => ("GET", format!("/v2/instances/{a}")),
        CloudOp::Reboot => ("POST", format!("/v2/instances/{a}/reboot")),
        CloudOp::CreateSnapshot => ("POST", "/v2/snapshots".to_owned()),
        CloudOp::DeleteSnapshot => ("DELETE", "/v2/snapshots/".to_owned()),
        CloudOp::RestoreSnapshot => ("POST", "/restore".to_owned()),
    }
}

fn server_id(id: &str) -> ServerId {
    ServerId::new(id).unwrap_or_else(|e| panic!("seeded id {id}: {e}"))
}

async fn fixture() -> SimCloudFixture {
    let options = SimOptions::default();
    let sim = VultrSim::start(options)
        .await
        .unwrap_or_else(|e| panic!("starting the simulator: {e}"));
    let ids = sim.server_ids();
    let count = ids.len();
    let account = Account {
        server_a: server_id(&ids[0]),
        server_b: server_id(&ids[1]),
        missing_server: server_id(&sim.missing_server_id()),
        public_ip_a: public_ip(0),
        private_ip_a: Some(private_ip(0)),
        last_ip: public_ip(count - 1),
        server_count: count,
    };
    let sim = std::sync::Arc::new(sim);
    let boots_sim = sim.clone();
    SimCloudFixture {
        id: kastell_vultr::ID,
        endpoint: sim.endpoint(),
        context: sim.context().clone(),
        account,
        build: kastell_vultr::build,
        boots: Box::new(move |id: &ServerId| boots_sim.boots(id.as_str())),
        route,
        keep_alive: Box::new(sim),
    }
}

kastell_testkit::all_cloud_trials!(fixture);
