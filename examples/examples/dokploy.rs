//! The Dokploy example: against a fake Dokploy host on this machine (a
//! private sshd, PostgreSQL behind a `docker` shim), rows are backed up
//! through kastell's engine, damaged, and restored with every step shown.
//!
//! `cargo run -p kastell-examples --example dokploy`

use kastell_testkit::platform::PaasRoundTrip;
use kastell_testkit::shim::PaasFlavour;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let case = PaasRoundTrip {
        build: kastell_dokploy::build,
        flavour: PaasFlavour::Dokploy,
        database: "dokploy",
        config_file: "etc/dokploy/dokploy.yml",
    };
    kastell_examples::report(
        kastell_examples::platforms::paas_tour(case, &mut std::io::stdout()).await,
    )
}
