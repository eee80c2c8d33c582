//! `kastell recover` of a Coolify or Dokploy server through the real binary
//! on the sandbox's fake Docker: a Hetzner server running the platform with
//! three apps (a PostgreSQL database with rows, a MySQL with data, an
//! application with files in a volume) is backed up, destroyed (its
//! platform, database cluster and files gone) and recovered onto a new
//! DigitalOcean server. There, as on a real fresh host, no app has a
//! container until the platform deploys it through its API: kastell
//! installs the platform, restores its secret, database and configuration,
//! starts it, writes a short-lived API credential into its database, has it
//! deploy each database (then restores its dump) and each application
//! (then swaps its volume's files in), checks each app's containers and
//! deletes the credential. Every app's data comes back equal, the credential
//! row is gone and never reached a command line; a deploy the platform
//! refuses fails the recovery naming the app, the credential deleted all
//! the same.
#![cfg(all(
    feature = "sandbox",
    feature = "hetzner",
    feature = "digitalocean",
    feature = "coolify"
))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::Output;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_ssh::sandbox::paas::{DEMO_DATABASE, DEMO_MYSQL_APP, DEMO_VOLUME};
use serde_json::Value;

use crate::support;

/// Everything a recovery must bring back: the blog's rows, the shop's
/// database and the site's files (path -> SHA-256).
#[derive(Debug, PartialEq, Eq)]
struct AppsState {
    posts: String,
    tags: String,
    shop: Vec<u8>,
    site: BTreeMap<String, String>,
}

fn apps_state(sandbox: &Sandbox, ip: Ipv4Addr) -> AppsState {
    let hosts = sandbox.hosts();
    let volume = hosts
        .root(ip)
        .unwrap()
        .join(format!("var/lib/docker/volumes/{DEMO_VOLUME}/_data"));
    AppsState {
        posts: hosts
            .psql(
                ip,
                DEMO_DATABASE,
                "SELECT string_agg(id || ':' || title, ',' ORDER BY id) FROM posts",
            )
            .unwrap(),
        tags: hosts
            .psql(ip, DEMO_DATABASE, "SELECT count(*) FROM tags")
            .unwrap(),
        shop: std::fs::read(
            hosts
                .app_data_file(ip, DEMO_MYSQL_APP, "mysql.sql")
                .unwrap(),
        )
        .unwrap(),
        site: kastell_testkit::platform::tree(&volume),
    }
}

/// The table a platform keeps its API credentials in.
fn credential_table(platform: &str) -> &'static str {
    if platform == "coolify" {
        "personal_access_tokens"
    } else {
        "apikey"
    }
}

fn step_names(answer: &Value) -> Vec<String> {
    answer["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A Hetzner server running `platform` with the demo apps, backed up, then
/// destroyed; a spare host for the DigitalOcean server a recovery creates.
struct World {
    sandbox: Sandbox,
    home: tempfile::TempDir,
    platform: &'static str,
    before: AppsState,
    backup: Value,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(platform: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let plan = SandboxPlan {
            providers: Some(vec!["hetzner".into(), "digitalocean".into()]),
            servers_per_provider: 1,
            manual_server: false,
            platform: Some(platform.into()),
            spare_hosts_per_provider: 1,
        };
        let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
            .await
            .unwrap();
        let web = sandbox.server("hetzner-web").unwrap().address;
        let before = apps_state(&sandbox, web);
        assert_eq!(before.posts, "1:hello,2:it's,3:world");
        assert_eq!(before.tags, "250");
        assert!(before.shop.len() > 10_000, "{}", before.shop.len());
        assert_eq!(before.site.len(), 5, "{:?}", before.site);
        let mut w = Self {
            sandbox,
            home,
            platform,
            before,
            backup: Value::Null,
            _dir: dir,
        };
        w.backup = w.json(&["--json", "backup", "create", "hetzner-web"]).await;
        assert_eq!(w.backup["success"], true, "{}", w.backup);
        let apps: Vec<&str> = w.backup["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["app"].as_str().unwrap())
            .collect();
        assert_eq!(
            apps,
            ["apsite0k2m9x", "myshop0k2m9x", "pgblog0k2m9x"],
            "{}",
            w.backup
        );
        // The server is destroyed: its platform, its apps and their data.
        w.sandbox.hosts().destroy(web).unwrap();
        assert!(!w.sandbox.hosts().platform_running(web));
        assert!(
            w.sandbox
                .hosts()
                .psql(web, DEMO_DATABASE, "SELECT 1")
                .is_err()
        );
        w
    }

    async fn kastell(&self, args: &[&str]) -> Output {
        support::kastell_in(&self.sandbox, self.home.path(), args).await
    }

    async fn json(&self, args: &[&str]) -> Value {
        let out = self.kastell(args).await;
        assert!(
            out.status.success(),
            "{args:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `kastell recover hetzner-web --to digitalocean`: its answer, its
    /// output, and the new host.
    async fn recover(&self) -> (Value, Output, Ipv4Addr) {
        let out = self
            .kastell(&[
                "--json",
                "recover",
                "hetzner-web",
                "--to",
                "digitalocean",
                "--force",
            ])
            .await;
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        // The spare host the recovery installed the platform on.
        let new_ip = self
            .sandbox
            .spares()
            .iter()
            .copied()
            .find(|ip| self.sandbox.hosts().platform_running(*ip))
            .unwrap_or_else(|| panic!("no spare host runs the platform: {answer}"));
        (answer, out, new_ip)
    }

    /// The credential rows left in the new host's platform database.
    fn credentials_left(&self, ip: Ipv4Addr) -> String {
        self.sandbox
            .hosts()
            .psql(
                ip,
                self.platform,
                &format!("SELECT count(*) FROM {}", credential_table(self.platform)),
            )
            .unwrap()
    }

    /// Every command the new host ran, as its fake tools logged them.
    fn commands_on(&self, ip: Ipv4Addr) -> String {
        let log = self
            .sandbox
            .hosts()
            .state_dir()
            .join(format!("paas/hosts/{ip}/commands.log"));
        std::fs::read_to_string(log).unwrap()
    }
}

/// A recovery onto the fresh host brings every app back through the
/// platform's API, in order, the credential deleted and never on a command
/// line.
async fn recovers_onto_a_fresh_host(platform: &'static str) {
    let w = World::new(platform).await;
    let (done, out, new_ip) = w.recover().await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(done["backupId"], w.backup["backupId"]);
    assert_eq!(done["newIp"].as_str().unwrap(), new_ip.to_string());
    assert!(w.sandbox.hosts().platform_running(new_ip));
    assert_eq!(
        apps_state(&w.sandbox, new_ip),
        w.before,
        "every app's rows, data and files are back, on the new host"
    );
    let steps = step_names(&done);
    let position = |name: &str| {
        steps
            .iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("{name}: {steps:?}"))
    };
    let order = [
        "Create server at digitalocean".to_owned(),
        "Install ".to_owned()
            + if platform == "coolify" {
                "Coolify"
            } else {
                "Dokploy"
            },
        "Restore database".into(),
        "Restore config".into(),
        "Start platform".into(),
        "Create API credential".into(),
        // The databases first (by key), then the application.
        "Deploy app shop db (myshop0k2m9x)".into(),
        "Restore app shop db (myshop0k2m9x)".into(),
        "Deploy app blog db (pgblog0k2m9x)".into(),
        "Restore app blog db (pgblog0k2m9x)".into(),
        "Deploy app site (apsite0k2m9x)".into(),
        "Restore app site (apsite0k2m9x)".into(),
        "Check app site (apsite0k2m9x)".into(),
        "Check app shop db (myshop0k2m9x)".into(),
        "Check app blog db (pgblog0k2m9x)".into(),
        "Delete API credential".into(),
        "Health check".into(),
        "Join the fleet".into(),
    ];
    let at: Vec<usize> = order.iter().map(|s| position(s)).collect();
    assert!(at.windows(2).all(|p| p[0] < p[1]), "{order:?} in {steps:?}");
    assert_eq!(w.credentials_left(new_ip), "0", "the credential is deleted");

    // The deploys went through the platform's API with the credential on
    // stdin: no command line, output or log holds it.
    let commands = w.commands_on(new_ip);
    let calls: Vec<&str> = commands
        .lines()
        .filter(|l| l.starts_with("curl ") && l.contains("http://127.0.0.1:"))
        .collect();
    assert_eq!(calls.len(), 3, "one deploy per app: {calls:?}");
    for text in [
        commands.as_str(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    ] {
        for secret_marker in ["Bearer", "x-api-key:", "Authorization"] {
            assert!(!text.contains(secret_marker), "{secret_marker} in {text}");
        }
    }

    let health = w.json(&["--json", "health", "hetzner-web-recovered"]).await;
    assert_eq!(health["healthy"], true, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coolify_server_comes_back_at_digitalocean_with_every_apps_data() {
    recovers_onto_a_fresh_host("coolify").await;
}

#[cfg(feature = "dokploy")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dokploy_server_comes_back_at_digitalocean_with_every_apps_data() {
    recovers_onto_a_fresh_host("dokploy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deploy_fails_the_recovery_naming_the_app_and_deletes_the_credential() {
    let w = World::new("coolify").await;
    w.sandbox.hosts().fail_deploy("apsite0k2m9x").unwrap();
    let (done, out, new_ip) = w.recover().await;
    assert!(!out.status.success(), "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "Deploy app site (apsite0k2m9x) failed: Coolify refused to deploy app site \
             (apsite0k2m9x): HTTP 500: Deployment of apsite0k2m9x failed"
        ),
        "the error names the app and the answer: {done}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains('\u{1b}')
            && !String::from_utf8_lossy(&out.stderr).contains('\u{1b}'),
        "the server's escape sequence is not echoed"
    );
    let steps = step_names(&done);
    assert!(
        steps.contains(&"Restore app blog db (pgblog0k2m9x)".to_owned()),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"Delete API credential".to_owned()),
        "{steps:?}"
    );
    assert_eq!(
        w.credentials_left(new_ip),
        "0",
        "the credential is deleted after the failure"
    );
}
