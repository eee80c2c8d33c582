//! The cloud conformance trials against the Hetzner simulator.

use kastell_hetzner::sim::SIMULATOR;
use kastell_sim::SimOptions;
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
        // Reboots also POST under /v1/servers/; the trials count creates
        // only where nothing else is sent.
        CloudOp::CreateServer => ("POST", "/v1/servers".to_owned()),
        CloudOp::DeleteServer => ("DELETE", "/v1/servers/".to_owned()),
        CloudOp::DeleteSshKey => ("DELETE", "/v1/ssh_keys/".to_owned()),
    }
}

async fn fixture() -> SimCloudFixture {
    SimCloudFixture::start(&SIMULATOR, SimOptions::default(), route).await
}

kastell_testkit::all_cloud_trials!(kastell_hetzner::ID, fixture);

/// The live mode's fixture and read-only trials, pointed at the simulator
/// as if it were the real API: the account is discovered, not assumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_fixture_discovers_the_account_and_passes_the_read_only_trials() {
    use kastell_testkit::cloud::CloudFixture;
    use kastell_testkit::live::{LiveFixture, read_only_trials};

    let sim = (SIMULATOR.start)(SimOptions::default())
        .await
        .unwrap_or_else(|e| panic!("starting the simulator: {e}"));
    let entry = kastell_core::Registry::global()
        .provider(kastell_hetzner::ID)
        .unwrap_or_else(|e| panic!("registered: {e}"));
    let token = kastell_core::Secret::new(sim.read_write_token());
    let live = LiveFixture::connect(entry, token, Some(sim.endpoint())).await;
    let account = live.account();
    assert_eq!(account.server_count, SimOptions::default().servers);
    assert_eq!(account.server_a.as_str(), sim.server_ids()[0]);
    assert_eq!(account.public_ip_a, kastell_sim::public_ip(0));
    assert!(!live.inject(CloudOp::Reboot, kastell_sim::Fault::Busy, 1, false));
    sim.context().recorder.clear();
    read_only_trials(&live).await;
    assert_eq!(
        sim.context().recorder.writes(),
        0,
        "the live trials only read"
    );
}
