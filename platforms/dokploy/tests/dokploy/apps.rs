//! The users' apps of a Dokploy host (PostgreSQL, MySQL and Redis services
//! and an application's volume) backed up and restored
//! through the sandbox sshd and the Dokploy shim.

use kastell_testkit::platform::{
    PaasRoundTrip, apps_in_place, apps_none, apps_round_trip, apps_selection,
};
use kastell_testkit::shim::PaasFlavour;

const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_dokploy::build,
    flavour: PaasFlavour::Dokploy,
    database: "dokploy",
    config_file: "etc/dokploy/dokploy.yml",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_apps_data_comes_back_on_a_fresh_host() {
    apps_round_trip(CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_are_selected_by_name_or_key() {
    apps_selection(CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_app_is_restored_in_place() {
    apps_in_place(CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_apps_backs_up_as_before() {
    apps_none(CASE).await;
}
