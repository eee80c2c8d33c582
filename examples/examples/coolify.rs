//! The Coolify example: against a fake Coolify host on this machine (a
//! private sshd, PostgreSQL behind a `docker` shim), rows are backed up
//! through kastell's engine, damaged, and restored with every step shown.
//!
//! `cargo run -p kastell-examples --example coolify` (as root, or as a user
//! that can run sshd and PostgreSQL)

use kastell_testkit::platform::PaasRoundTrip;
use kastell_testkit::shim::PaasFlavour;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let case = PaasRoundTrip {
        build: kastell_coolify::build,
        flavour: PaasFlavour::Coolify,
        database: "coolify",
        config_file: "data/coolify/source/.env",
    };
    kastell_examples::report(
        kastell_examples::platforms::paas_tour(case, &mut std::io::stdout()).await,
    )
}
