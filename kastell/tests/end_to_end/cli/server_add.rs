//! `server add` finds out what it can before it stores a server, through
//! the real binary: the provider's id by IP at every provider's simulator
//! (found, found nowhere, the API refusing), the platform over the real
//! sandbox sshd (and, under each fake host's root, each platform's
//! marker), `--no-detect`, and an unreachable server.
#![cfg(feature = "sandbox")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;

use kastell::ops::{Context, ROOT_OPTION, Timing, platform_options};
use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell::{Env, FleetStore, Surface};
use kastell_core::Registry;
use kastell_core::detect::{detect_platform, detectors};
use kastell_core::types::{PlatformRoot, ServerId};
use kastell_sim::{SimOptions, Simulator, simulators};
use serde_json::Value;

use crate::support::kastell;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every simulator linked into this build, each seeding three servers.
async fn start_simulators() -> Vec<Box<dyn Simulator>> {
    let mut sims = Vec::new();
    for entry in simulators().unwrap() {
        if Registry::global().provider(entry.provider_id).is_ok() {
            let options = SimOptions {
                servers: 3,
                scale: 200.0,
            };
            sims.push((entry.start)(options).await.unwrap());
        }
    }
    assert_eq!(sims.len(), 4, "all four providers' simulators");
    sims
}

/// The variables that point `provider` at `sim` with `token`.
fn provider_env(sim: &dyn Simulator, token: &str) -> Vec<(String, String)> {
    let id = sim.provider_id();
    let entry = Registry::global().provider(id).unwrap();
    vec![
        (entry.token_env.to_owned(), token.to_owned()),
        (
            format!("KASTELL_{}_ENDPOINT", id.to_ascii_uppercase()),
            sim.endpoint(),
        ),
    ]
}

/// The public IP the simulator gives its seeded server `id`, read through
/// the provider crate.
async fn ip_of(sim: &dyn Simulator, id: &str) -> Ipv4Addr {
    let env = Env::from_pairs(provider_env(sim, &sim.read_write_token()));
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::new(env, FleetStore::open(dir.path()).unwrap(), Surface::Cli)
        .with_timing(Timing::fast());
    let provider = ctx.provider_by_id(sim.provider_id(), None).unwrap();
    let server = provider
        .get_server(&ServerId::new(id).unwrap())
        .await
        .unwrap();
    server.public_ipv4.unwrap()
}

/// `kastell args` in `dir` with `vars` (and private addresses allowed: the
/// simulators' are in 198.18/15), off the async runtime.
async fn add(dir: &Path, args: &[&str], vars: &[(String, String)]) -> Output {
    let mut cmd = kastell(dir, args);
    cmd.env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        .envs(vars.iter().cloned());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn servers(dir: &Path) -> Vec<Value> {
    let path = dir.join("state/servers.json");
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone(),
        Err(_) => Vec::new(),
    }
}

/// Neither output holds any of `tokens`.
fn no_token_in(out: &Output, tokens: &[String]) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for token in tokens {
        assert!(!all.contains(token.as_str()), "a token was printed: {all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_add_finds_the_id_by_ip_at_each_provider_or_warns() {
    let sims = start_simulators().await;
    for sim in &sims {
        let id = sim.provider_id();
        let token = sim.read_write_token();
        let vars = provider_env(sim.as_ref(), &token);
        let wanted = sim.server_ids()[1].clone();
        let ip = ip_of(sim.as_ref(), &wanted).await.to_string();
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();

        // Found by IP: the provider's id, region and size are stored.
        let args = [
            "--json",
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            &ip,
            "--provider",
            id,
            "--platform",
            "bare",
        ];
        let out = add(dir, &args, &vars).await;
        assert!(out.status.success(), "{id}: {}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("warning"),
            "{id}: {}",
            text(&out.stderr)
        );
        no_token_in(&out, std::slice::from_ref(&token));
        let record: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(record["id"], wanted.as_str(), "{id}: {record}");
        assert_eq!(record["provider"], id);
        assert_ne!(record["region"], "unknown", "{id}: {record}");
        assert_ne!(record["size"], "unknown", "{id}: {record}");

        // An --id the provider lists under another IP is refused, unstored.
        let other = sim.server_ids()[2].clone();
        let args = [
            "server",
            "add",
            "--name",
            "web-2",
            "--ip",
            &ip,
            "--provider",
            id,
            "--platform",
            "bare",
            "--id",
            &other,
        ];
        let before = servers(dir).len();
        let out = add(dir, &args, &vars).await;
        assert_eq!(out.status.code(), Some(1), "{id}");
        assert!(
            text(&out.stderr).contains("does not match"),
            "{id}: {}",
            text(&out.stderr)
        );
        assert_eq!(servers(dir).len(), before, "{id}: nothing stored");

        // Found nowhere: a warning saying what was searched and what the
        // record loses, and a manual record.
        let args = [
            "--json",
            "server",
            "add",
            "--name",
            "web-3",
            "--ip",
            "198.19.250.250",
            "--provider",
            id,
            "--platform",
            "bare",
        ];
        let out = add(dir, &args, &vars).await;
        assert!(out.status.success(), "{id}: {}", text(&out.stderr));
        let warning = text(&out.stderr);
        assert!(
            warning.contains(&format!(
                "warning: No server with IP 198.19.250.250 at {id}"
            )) && warning.contains("no snapshots")
                && warning.contains("--id"),
            "{id}: {warning}"
        );
        let record: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            record["id"].as_str().unwrap().starts_with("manual-"),
            "{record}"
        );

        // The API refusing the token: a warning, a manual record, no token
        // in any output.
        let bad = format!("{id}-not-the-right-token-0123456789");
        let bad_vars = provider_env(sim.as_ref(), &bad);
        let args = [
            "--json",
            "server",
            "add",
            "--name",
            "web-4",
            "--ip",
            "198.19.250.251",
            "--provider",
            id,
            "--platform",
            "bare",
        ];
        let out = add(dir, &args, &bad_vars).await;
        assert!(out.status.success(), "{id}: {}", text(&out.stderr));
        let warning = text(&out.stderr);
        assert!(
            warning.contains(&format!(
                "warning: Could not search {id} for 198.19.250.251"
            )) && warning.contains("manual server"),
            "{id}: {warning}"
        );
        no_token_in(&out, &[bad]);
        let record: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            record["id"].as_str().unwrap().starts_with("manual-"),
            "{record}"
        );
    }

    // Without --provider, every provider with a token is searched: with
    // only the last one's token its server is found there and the
    // provider recorded; the others, without a token, are not asked.
    let last = sims.last().unwrap();
    let wanted = last.server_ids()[0].clone();
    let ip = ip_of(last.as_ref(), &wanted).await.to_string();
    let mut vars: Vec<(String, String)> = sims
        .iter()
        .flat_map(|s| provider_env(s.as_ref(), "unused"))
        .filter(|(k, _)| k.starts_with("KASTELL_"))
        .collect();
    vars.extend(provider_env(last.as_ref(), &last.read_write_token()));
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--json",
        "server",
        "add",
        "--name",
        "web-1",
        "--ip",
        &ip,
        "--platform",
        "bare",
    ];
    let before: Vec<usize> = sims
        .iter()
        .map(|s| s.context().recorder.all().len())
        .collect();
    let out = add(dir.path(), &args, &vars).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["provider"], last.provider_id(), "{record}");
    assert_eq!(record["id"], wanted.as_str(), "{record}");
    for (sim, before) in sims.iter().zip(before).take(sims.len() - 1) {
        let after = sim.context().recorder.all().len();
        assert_eq!(
            after,
            before,
            "{} has no token and is not asked",
            sim.provider_id()
        );
    }

    // With every token set, the simulators (which seed the same addresses)
    // all list it: refused, naming each, nothing stored.
    let vars: Vec<(String, String)> = sims
        .iter()
        .flat_map(|s| provider_env(s.as_ref(), &s.read_write_token()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = add(dir.path(), &args, &vars).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("is listed by more than one provider"),
        "{err}"
    );
    for sim in &sims {
        assert!(
            message.contains(&format!(" at {}", sim.provider_id())),
            "{err}"
        );
    }
    assert!(
        err["hint"].as_str().unwrap().contains("--provider"),
        "{err}"
    );
    assert!(servers(dir.path()).is_empty());
}

/// A sandbox of one Hetzner server running `platform`.
async fn sandbox(dir: &Path, platform: Option<&str>) -> Sandbox {
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 1,
        manual_server: false,
        platform: platform.map(str::to_owned),
        spare_hosts_per_provider: 0,
    };
    // Only the hosts' files matter here, not whether the platform runs.
    Sandbox::start_without_platform_check(&dir.join("state"), &plan)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_platforms_fake_host_is_detected_by_its_marker_over_ssh() {
    for platform in ["coolify", "dokploy", "bare"] {
        let dir = tempfile::tempdir().unwrap();
        let plan_platform = (platform != "bare").then_some(platform);
        let sandbox = sandbox(dir.path(), plan_platform).await;
        let record = sandbox.store().servers().unwrap().remove(0);
        let root = platform_options(&record).unwrap()[ROOT_OPTION].clone();
        let ctx = sandbox.context(&Env::from_pairs::<&str, &str>([]), Surface::Cli);
        let transport = ctx.transport_for(&record);
        let found = detect_platform(
            transport.as_ref(),
            &PlatformRoot::new(&root).unwrap(),
            &detectors(Registry::global()),
        )
        .await
        .unwrap();
        assert_eq!(
            found.platform.map_or("bare", |p| p.id),
            platform,
            "searched {:?}",
            found.searched
        );
        if platform == "bare" {
            assert_eq!(
                found.searched,
                [
                    format!("{root}/etc/dokploy"),
                    format!("{root}/data/coolify/source")
                ],
                "dokploy is tried first"
            );
        }
    }
}

/// The platform the real machine behind the sandbox sshd runs, by the
/// same markers (bare on any machine that runs neither PaaS).
fn this_machines_platform() -> &'static str {
    if Path::new("/etc/dokploy").is_dir() {
        "dokploy"
    } else if Path::new("/data/coolify/source").is_dir() {
        "coolify"
    } else {
        "bare"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_add_detects_over_ssh_pins_the_key_and_refuses_what_it_cannot_reach() {
    let sandbox_dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox(sandbox_dir.path(), None).await;
    let sshd = sandbox.sshd();
    let address = sandbox.servers()[0].address.to_string();
    let port = sshd.port().to_string();
    let key = sshd.ed25519_key().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let login = [
        "--ip",
        &address,
        "--user",
        sshd.user(),
        "--port",
        &port,
        "--identity-file",
        &key,
    ];

    // Detected over the real sshd, said how, the host key pinned.
    let mut args = vec!["server", "add", "--name", "web-1"];
    args.extend(login);
    let out = add(dir, &args, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = this_machines_platform();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("Platform {expected}: detected (")),
        "{stdout}"
    );
    let record = servers(dir).remove(0);
    assert_eq!(
        record["mode"],
        if expected == "bare" {
            "bare"
        } else {
            "coolify"
        }
    );
    assert_eq!(
        record["ssh"]["hostKey"],
        sshd.host_key_fingerprint(),
        "{record}"
    );
    assert!(
        record["id"].as_str().unwrap().starts_with("manual-"),
        "no token, no lookup"
    );

    // --platform skips the SSH login.
    let closed = closed_port();
    let mut args = vec!["server", "add", "--name", "web-2", "--platform", "dokploy"];
    args.extend(["--ip", "127.0.0.2", "--port", &closed]);
    let out = add(dir, &args, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Platform dokploy: given with --platform"));

    // Unreachable: a clear error with the way out, and no record.
    let args = [
        "server",
        "add",
        "--name",
        "web-3",
        "--ip",
        "127.0.0.3",
        "--port",
        &closed,
    ];
    let out = add(dir, &args, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: Could not detect the platform of web-3 over SSH (root@127.0.0.3:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.contains("--no-detect --platform"),
        "{stderr}"
    );
    assert_eq!(servers(dir).len(), 2);

    // --no-detect: refused without --platform (no guess), stored with it.
    let args = [
        "server",
        "add",
        "--name",
        "web-3",
        "--ip",
        "127.0.0.3",
        "--no-detect",
    ];
    let out = add(dir, &args, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--no-detect needs --platform"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(servers(dir).len(), 2);
    let args = [
        "server",
        "add",
        "--name",
        "web-3",
        "--ip",
        "127.0.0.3",
        "--no-detect",
        "--platform",
        "coolify",
        "--provider",
        "hetzner",
    ];
    let out = add(dir, &args, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: With --no-detect the id at hetzner was not looked up"),
        "{}",
        text(&out.stderr)
    );
    let record = servers(dir).remove(2);
    assert_eq!(record["platform"], "coolify");
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port.to_string()
}
