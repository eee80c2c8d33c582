//! The shared cloud conformance trials against the Vultr simulator.

use kastell_sim::SimOptions;
use kastell_testkit::cloud::{Account, CloudOp};
use kastell_testkit::sim_cloud::SimCloudFixture;
use kastell_vultr::sim::SIMULATOR;

/// Each operation's method and a path fragment only its requests contain.
fn route(op: CloudOp, account: &Account) -> (&'static str, String) {
    let a = &account.server_a;
    match op {
        CloudOp::GetServer => ("GET", format!("/v2/instances/{a}")),
        CloudOp::Reboot => ("POST", format!("/v2/instances/{a}/reboot")),
        CloudOp::CreateSnapshot => ("POST", "/v2/snapshots".to_owned()),
        CloudOp::DeleteSnapshot => ("DELETE", "/v2/snapshots/".to_owned()),
        CloudOp::RestoreSnapshot => ("POST", "/restore".to_owned()),
        CloudOp::CreateServer => ("POST", "/v2/instances".to_owned()),
        CloudOp::DeleteServer => ("DELETE", "/v2/instances/".to_owned()),
        CloudOp::DeleteSshKey => ("DELETE", "/v2/ssh-keys/".to_owned()),
    }
}

async fn fixture() -> SimCloudFixture {
    SimCloudFixture::start(&SIMULATOR, SimOptions::default(), route).await
}

kastell_testkit::all_cloud_trials!(kastell_vultr::ID, fixture);
