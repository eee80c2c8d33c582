//! `kastell auth set|list|remove` through the real binary with a private
//! KASTELL_DIR: the token read from stdin, kept in a 0600 file, never in
//! any output; stored tokens used by `server add`'s lookup (environment
//! first), and one account per server against the Hetzner simulator.
#![cfg(feature = "hetzner")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use kastell::ops::{Context, Timing};
use kastell::{Env, FleetStore, Surface};
use kastell_core::types::ServerId;
use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator};
use serde_json::Value;

use crate::support::kastell;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `kastell args` in `dir` with `stdin` piped in and `vars` set.
fn run(dir: &Path, args: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Output {
    let mut cmd = kastell(dir, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
        .envs(vars.iter().copied());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn no_secret(out: &Output, secrets: &[&str]) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for secret in secrets {
        assert!(!all.contains(secret), "a token was printed: {all}");
    }
}

#[test]
fn auth_set_list_remove_keep_the_token_private_and_out_of_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let token = "hcloud-secret-token-value-WXYZ";
    let out = run(dir, &["auth", "set", "hetzner"], &format!("{token}\n"), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_secret(&out, &[token]);
    let file = dir.join("state/tokens.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let work = "hcloud-work-account-token-9876";
    let out = run(
        dir,
        &["auth", "set", "hetzner", "--account", "work"],
        work,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(dir, &["--json", "auth", "list"], "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_secret(&out, &[token, work]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0]["provider"], "hetzner");
    assert_eq!(rows[0]["account"], "default");
    assert_eq!(rows[0]["endsWith"], "WXYZ");
    assert_eq!(rows[0]["source"], file.display().to_string());
    assert_eq!(rows[1]["account"], "work");

    // The variable is listed too and said to override the stored token.
    let env_token = "hcloud-from-the-environment-ABCD";
    let out = run(dir, &["auth", "list"], "", &[("HETZNER_TOKEN", env_token)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_secret(&out, &[token, work, env_token]);
    let listing = text(&out.stdout);
    assert!(listing.contains("env:HETZNER_TOKEN"), "{listing}");
    assert!(listing.contains("overridden by the variable"), "{listing}");

    // Never from argv; an empty pipe and an unknown provider are refused.
    let out = run(dir, &["auth", "set", "hetzner", token], "", &[]);
    assert_eq!(out.status.code(), Some(2), "no token argument");
    let out = run(dir, &["auth", "set", "hetzner"], "", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("No token was given"));
    let out = run(dir, &["auth", "set", "hetzenr"], token, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Unknown provider"));

    let out = run(dir, &["auth", "remove", "hetzner"], "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(dir, &["auth", "remove", "hetzner"], "", &[]);
    assert_eq!(out.status.code(), Some(1));
    let left = std::fs::read_to_string(&file).unwrap();
    assert!(
        !left.contains(token) && left.contains(work),
        "only the default one went"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_uses_its_accounts_stored_token_and_the_environment_comes_first() {
    let sim = HetznerSim::start(SimOptions::default()).await.unwrap();
    let endpoint = sim.endpoint();
    let good = sim.read_write_token();
    let wanted = sim.server_ids()[1].clone();
    let ip = {
        let env = Env::from_pairs([("HETZNER_TOKEN", good.as_str())]);
        let scratch = tempfile::tempdir().unwrap();
        let ctx = Context::new(env, FleetStore::open(scratch.path()).unwrap(), Surface::Cli)
            .with_timing(Timing::fast())
            .with_endpoint("hetzner", endpoint.clone());
        let provider = ctx.provider_by_id("hetzner", None).unwrap();
        let server = provider
            .get_server(&ServerId::new(wanted.as_str()).unwrap())
            .await
            .unwrap();
        server.public_ipv4.unwrap().to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_path_buf();
    let stale = "hetzner-revoked-token-0000";
    let (good2, ip2) = (good.clone(), ip.clone());
    let outs = tokio::task::spawn_blocking(move || {
        let vars = [("KASTELL_HETZNER_ENDPOINT", endpoint.as_str())];
        let d = dir.as_path();
        // The default account's stored token is stale; account ops holds
        // the good one.
        assert!(
            run(d, &["auth", "set", "hetzner"], stale, &[])
                .status
                .success()
        );
        assert!(
            run(
                d,
                &["auth", "set", "hetzner", "--account", "ops"],
                &good2,
                &[]
            )
            .status
            .success()
        );
        let add = |name: &str, extra: &[&str], env: &[(&str, &str)]| {
            let mut args = vec!["--json", "server", "add", "--name", name, "--ip", &ip2];
            args.extend(["--provider", "hetzner", "--platform", "bare"]);
            args.extend(extra);
            run(d, &args, "", env)
        };
        let with_account = add("web-1", &["--account", "ops"], &vars);
        // An operation on that server reaches the API with account ops's
        // token (the default account's would be refused).
        let listed = run(d, &["--json", "snapshot", "list", "web-1"], "", &vars);
        let _ = run(d, &["server", "remove", "web-1", "--force"], "", &[]);
        let default_account = add("web-1", &[], &vars);
        let _ = run(d, &["server", "remove", "web-1", "--force"], "", &[]);
        let mut env_first = vars.to_vec();
        env_first.push(("HETZNER_TOKEN", good2.as_str()));
        let env_wins = add("web-1", &[], &env_first);
        (with_account, listed, default_account, env_wins)
    })
    .await
    .unwrap();
    let (with_account, listed, default_account, env_wins) = outs;
    assert!(
        listed.status.success(),
        "{}{}",
        text(&listed.stdout),
        text(&listed.stderr)
    );
    no_secret(&listed, &[&good, stale]);
    let body: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(body["success"], true, "{body}");

    // Account ops: its stored token finds the server; the record names it.
    assert!(
        with_account.status.success(),
        "{}",
        text(&with_account.stderr)
    );
    no_secret(&with_account, &[&good, stale]);
    let record: Value = serde_json::from_slice(&with_account.stdout).unwrap();
    assert_eq!(record["id"], wanted.as_str(), "{record}");
    assert_eq!(record["account"], "ops");

    // The default account's stale token is refused by the API: a warning,
    // a manual record, neither token shown.
    assert!(default_account.status.success());
    no_secret(&default_account, &[&good, stale]);
    assert!(
        text(&default_account.stderr).contains("warning: Could not search hetzner"),
        "{}",
        text(&default_account.stderr)
    );
    let record: Value = serde_json::from_slice(&default_account.stdout).unwrap();
    assert!(record["id"].as_str().unwrap().starts_with("manual-"));

    // HETZNER_TOKEN set: used before the stale stored one.
    assert!(env_wins.status.success(), "{}", text(&env_wins.stderr));
    let record: Value = serde_json::from_slice(&env_wins.stdout).unwrap();
    assert_eq!(record["id"], wanted.as_str(), "{record}");
    assert_eq!(record["ip"], ip.as_str());
}

/// A private desktop session for one test: its own D-Bus session bus and
/// a GNOME Keyring holding the Secret Service on it, unlocked, with every
/// file under a temporary HOME (the machine's own keyring is never
/// touched). Both daemons are killed when it is dropped.
struct KeyringSession {
    home: tempfile::TempDir,
    bus: std::process::Child,
    keyring: std::process::Child,
    address: String,
}

impl KeyringSession {
    fn start() -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Command;
        let home = tempfile::tempdir().unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        let base = |cmd: &mut Command| {
            cmd.env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("HOME", home.path())
                .env("XDG_RUNTIME_DIR", &runtime);
        };
        let mut bus = Command::new("dbus-daemon");
        base(&mut bus);
        let mut bus = bus
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (.ci/setup installs dbus)");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        let mut keyring = Command::new("gnome-keyring-daemon");
        base(&mut keyring);
        let mut keyring = keyring
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (.ci/setup installs gnome-keyring)");
        // The login keyring's password, then end of input.
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-session-password")
            .unwrap();
        let session = Self {
            home,
            bus,
            keyring,
            address,
        };
        // Ready when the Secret Service answers on the bus.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let probe = session.secret_tool(&["search", "service", "kastell-probe"]);
            if probe.status.code().is_some_and(|c| c <= 1) && text(&probe.stderr).is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the test keyring never answered: {}",
                text(&probe.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        session
    }

    /// What the keyring holds, asked directly (not through kastell).
    fn secret_tool(&self, args: &[&str]) -> Output {
        std::process::Command::new("secret-tool")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .output()
            .expect("secret-tool (.ci/setup installs libsecret-tools)")
    }

    fn vars(&self) -> [(&str, &str); 1] {
        [("DBUS_SESSION_BUS_ADDRESS", self.address.as_str())]
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

#[test]
fn in_a_desktop_session_tokens_go_to_its_keychain_and_the_originals_are_found() {
    let session = KeyringSession::start();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let vars = session.vars();
    let token = "hcloud-keychain-token-value-KLMN";
    let out = run(dir, &["auth", "set", "hetzner"], token, &vars);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_secret(&out, &[token]);
    assert!(
        text(&out.stdout).contains("keychain"),
        "{}",
        text(&out.stdout)
    );
    // In the keychain, under the original tool's keys, and not in a file.
    let held = session.secret_tool(&["lookup", "service", "kastell", "username", "HETZNER_TOKEN"]);
    assert_eq!(text(&held.stdout).trim(), token);
    assert!(!dir.join("state/tokens.json").exists());

    // --store file still puts one in the file; both are listed, by place.
    let filed = "hcloud-file-token-value-OPQR";
    let out = run(
        dir,
        &[
            "auth",
            "set",
            "hetzner",
            "--account",
            "cron",
            "--store",
            "file",
        ],
        filed,
        &vars,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(dir, &["--json", "auth", "list"], "", &vars);
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_secret(&out, &[token, filed]);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let places: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["account"].as_str().unwrap(),
                r["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(places.contains(&("default", "keychain")), "{rows}");
    assert!(
        places
            .iter()
            .any(|(a, s)| *a == "cron" && s.ends_with("tokens.json")),
        "{rows}"
    );

    // A token the original tool stored (the same keys, its own label) is
    // used: server add finds the server's id at the Hetzner simulator with
    // it, though nobody gave kastell a token.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(HetznerSim::start(SimOptions::default()))
        .unwrap();
    let good = sim.read_write_token();
    let wanted = sim.server_ids()[0].clone();
    let ip = rt.block_on(async {
        let env = Env::from_pairs([("HETZNER_TOKEN", good.as_str())]);
        let scratch = tempfile::tempdir().unwrap();
        let ctx = Context::new(env, FleetStore::open(scratch.path()).unwrap(), Surface::Cli)
            .with_timing(Timing::fast())
            .with_endpoint("hetzner", sim.endpoint());
        let provider = ctx.provider_by_id("hetzner", None).unwrap();
        let server = provider
            .get_server(&ServerId::new(wanted.as_str()).unwrap())
            .await
            .unwrap();
        server.public_ipv4.unwrap().to_string()
    });
    let mut original = std::process::Command::new("secret-tool")
        .args([
            "store",
            "--label=kastell",
            "service",
            "kastell",
            "username",
            "HETZNER_TOKEN",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DBUS_SESSION_BUS_ADDRESS", &session.address)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    original
        .stdin
        .take()
        .unwrap()
        .write_all(good.as_bytes())
        .unwrap();
    assert!(original.wait().unwrap().success());
    let endpoint = sim.endpoint();
    let mut with_sim = vars.to_vec();
    with_sim.push(("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()));
    let out = run(
        dir,
        &[
            "--json",
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            &ip,
            "--provider",
            "hetzner",
            "--platform",
            "bare",
        ],
        "",
        &with_sim,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    no_secret(&out, &[&good, token, filed]);
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["id"], wanted.as_str(), "{record}");
    drop(sim);

    // Removed from the keychain itself.
    let out = run(dir, &["auth", "remove", "hetzner"], "", &vars);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let held = session.secret_tool(&["lookup", "service", "kastell", "username", "HETZNER_TOKEN"]);
    assert!(text(&held.stdout).trim().is_empty());

    // Without a session, asking for the keychain is refused before any
    // token is read, saying what it needs.
    let out = run(
        dir,
        &["auth", "set", "hetzner", "--store", "keychain"],
        token,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no keychain"),
        "{}",
        text(&out.stderr)
    );
}
