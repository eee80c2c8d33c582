//! The users' apps of a Coolify host (standalone PostgreSQL, MySQL, MariaDB,
//! MongoDB and Redis databases and an application's volume) backed up and restored
//! through the sandbox sshd and the Coolify shim: the app trials every PaaS
//! platform runs (`kastell_testkit::paas_app_trials!`).

use kastell_testkit::platform::PaasRoundTrip;
use kastell_testkit::shim::PaasFlavour;

const CASE: PaasRoundTrip = PaasRoundTrip {
    build: kastell_coolify::build,
    flavour: PaasFlavour::Coolify,
    database: "coolify",
    config_file: "data/coolify/source/.env",
};

kastell_testkit::paas_app_trials!(CASE);
