//! The users' apps of a Dokploy host (PostgreSQL, MySQL, MariaDB, MongoDB and
//! Redis services and an application's volume) backed up and restored
//! through the sandbox sshd and the Dokploy shim: the app trials every PaaS
//! platform runs (`kastell_testkit::paas_app_trials!`).

use kastell_testkit::platform::PaasRoundTrip;
use kastell_testkit::shim::PaasFlavour;

const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_dokploy::build,
    flavour: PaasFlavour::Dokploy,
    database: "dokploy",
    config_file: "etc/dokploy/dokploy.yml",
};

kastell_testkit::paas_app_trials!(CASE);
