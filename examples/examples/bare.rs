//! The bare example: against a fake bare host on this machine (a private
//! sshd over a fake filesystem root), config files are backed up, changed
//! and restored, and a backup holding a broken sshd_config is refused with
//! the host's config left as it was.
//!
//! `cargo run -p kastell-examples --example bare`

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kastell_examples::report(
        kastell_examples::platforms::bare_tour(kastell_bare::build, &mut std::io::stdout()).await,
    )
}
