//! `kastell-mcp` with no token variable set finds the token `kastell auth
//! set` stored, the one of the server's account: a snapshot list of a
//! server added with `--account ops` reaches the Hetzner simulator with
//! that account's token, while the default account's stored token is
//! one the API refuses.
#![cfg(feature = "hetzner")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use kastell::ops::{Context, Timing};
use kastell::{Env, FleetStore, Surface};
use kastell_core::types::ServerId;
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator};
use serde_json::json;

use super::common::{failed, ok, start};
use crate::support::kastell;

/// `kastell args` in `dir` with `stdin` piped in; whether it succeeded.
fn cli(dir: &Path, args: &[&str], stdin: &str, endpoint: &str) -> bool {
    let mut cmd = kastell(dir, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        .env("KASTELL_HETZNER_ENDPOINT", endpoint);
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kastell_mcp_uses_the_stored_token_of_the_servers_account() {
    let sim = HetznerSim::start(SimOptions::default()).await.unwrap();
    let endpoint = sim.endpoint();
    let good = sim.read_write_token();
    let wanted = sim.server_ids()[1].clone();
    let other = sim.server_ids()[2].clone();
    let ip = {
        let scratch = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("HETZNER_TOKEN", good.as_str())]);
        let ctx = Context::new(env, FleetStore::open(scratch.path()).unwrap(), Surface::Cli)
            .with_timing(Timing::fast())
            .with_endpoint("hetzner", endpoint.clone());
        let provider = ctx.provider_by_id("hetzner", None).unwrap();
        let id = ServerId::new(wanted.as_str()).unwrap();
        provider
            .get_server(&id)
            .await
            .unwrap()
            .public_ipv4
            .unwrap()
            .to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let (endpoint2, good2, ip2) = (endpoint.clone(), good.clone(), ip);
    tokio::task::spawn_blocking(move || {
        let d = home.as_path();
        let e = endpoint2.as_str();
        assert!(cli(
            d,
            &["auth", "set", "hetzner"],
            "hetzner-revoked-token-0000",
            e
        ));
        assert!(cli(
            d,
            &["auth", "set", "hetzner", "--account", "ops"],
            &good2,
            e
        ));
        // web-ops: found by its IP with account ops's token. web-default:
        // another seeded server, its id given (the default account's
        // stale token cannot check it).
        let servers = [
            (
                "web-ops",
                ip2.as_str(),
                wanted.as_str(),
                &["--account", "ops"][..],
            ),
            ("web-default", "198.19.250.1", other.as_str(), &[][..]),
        ];
        for (name, ip, id, extra) in servers {
            let mut args = vec!["server", "add", "--name", name, "--ip", ip, "--id", id];
            args.extend(["--provider", "hetzner", "--platform", "bare"]);
            args.extend(extra);
            assert!(cli(d, &args, "", e), "{name}");
        }
    })
    .await
    .unwrap();

    let mcp = start(
        dir.path(),
        &[("KASTELL_HETZNER_ENDPOINT", endpoint.as_str())],
    )
    .await;
    let listed = mcp
        .call(
            "server_backup",
            json!({"action": "snapshot-list", "server": "web-ops"}),
        )
        .await;
    let value = ok(&listed);
    assert!(!value.to_string().contains(&good), "no token in the answer");
    let refused = mcp
        .call(
            "server_backup",
            json!({"action": "snapshot-list", "server": "web-default"}),
        )
        .await;
    let value = failed(&refused);
    assert!(!value.to_string().contains("hetzner-revoked"), "{value}");
    let stderr = mcp.stop().await;
    assert!(!stderr.contains(&good) && !stderr.contains("hetzner-revoked"));
}
