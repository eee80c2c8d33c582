//! Backup and restore of a real PostgreSQL database through the sandbox
//! sshd and the Coolify shim.

use kastell_testkit::platform::{
    PaasRoundTrip, paas_failed_restore_changes_nothing, paas_round_trip, paas_update,
};
use kastell_testkit::shim::PaasFlavour;

const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_coolify::build,
    flavour: PaasFlavour::Coolify,
    database: "coolify",
    config_file: "data/coolify/source/.env",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_change_restore_brings_the_rows_back() {
    paas_round_trip(CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_changes_nothing() {
    paas_failed_restore_changes_nothing(CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_runs_the_installer() {
    paas_update(CASE).await;
}
