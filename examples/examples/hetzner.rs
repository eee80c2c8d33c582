//! The hetzner example: with `HETZNER_TOKEN` set it uses the real API (and
//! `KASTELL_EXAMPLE_SERVER` or the first server); without it, it starts the
//! hetzner simulator. It shows a server, creates a snapshot, waits for it, lists
//! and deletes it, and prints what happened.
//!
//! `cargo run -p kastell-examples --example hetzner`

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kastell_examples::main_with(&kastell_hetzner::sim::SIMULATOR).await
}
