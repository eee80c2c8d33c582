//! The linode example: with `LINODE_TOKEN` set it uses the real API (and
//! `KASTELL_EXAMPLE_SERVER` or the first server); without it, it starts the
//! linode simulator. It shows a server, creates a snapshot, waits for it, lists
//! and deletes it, and prints what happened.
//!
//! `cargo run -p kastell-examples --example linode`

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kastell_examples::main_with(&kastell_linode::sim::SIMULATOR).await
}
