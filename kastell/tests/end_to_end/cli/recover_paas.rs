//! `kastell recover` of a Coolify server through the real binary on the
//! sandbox's fake Docker: a Hetzner server running Coolify with three
//! apps (a PostgreSQL database with rows, a MySQL with data, an
//! application with files in a volume) is backed up, destroyed (its
//! platform, database cluster and files gone) and recovered onto a new
//! DigitalOcean server, where Coolify is installed by its installer and
//! every app's data comes back equal, the platform running and healthy.
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

async fn json(sandbox: &Sandbox, home: &std::path::Path, args: &[&str]) -> Value {
    let out: Output = support::kastell_in(sandbox, home, args).await;
    assert!(
        out.status.success(),
        "{args:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coolify_server_comes_back_at_digitalocean_with_every_apps_data() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into(), "digitalocean".into()]),
        servers_per_provider: 1,
        manual_server: false,
        platform: Some("coolify".into()),
        spare_hosts_per_provider: 1,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let web = sandbox.server("hetzner-web").unwrap().clone();
    let before = apps_state(&sandbox, web.address);
    assert_eq!(before.posts, "1:hello,2:it's,3:world");
    assert_eq!(before.tags, "250");
    assert!(before.shop.len() > 10_000, "{}", before.shop.len());
    assert_eq!(before.site.len(), 5, "{:?}", before.site);

    let backup = json(
        &sandbox,
        home.path(),
        &["--json", "backup", "create", "hetzner-web"],
    )
    .await;
    assert_eq!(backup["success"], true, "{backup}");
    let apps: Vec<&str> = backup["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app"].as_str().unwrap())
        .collect();
    assert_eq!(
        apps,
        ["apsite0k2m9x", "myshop0k2m9x", "pgblog0k2m9x"],
        "{backup}"
    );

    // The server is destroyed: its platform, its apps and their data.
    sandbox.hosts().destroy(web.address).unwrap();
    assert!(!sandbox.hosts().platform_running(web.address));
    assert!(
        sandbox
            .hosts()
            .psql(web.address, DEMO_DATABASE, "SELECT 1")
            .is_err()
    );

    let done = json(
        &sandbox,
        home.path(),
        &[
            "--json",
            "recover",
            "hetzner-web",
            "--to",
            "digitalocean",
            "--force",
        ],
    )
    .await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(done["backupId"], backup["backupId"]);
    let new_ip: Ipv4Addr = done["newIp"].as_str().unwrap().parse().unwrap();
    assert!(
        sandbox.spares().contains(&new_ip),
        "{new_ip} is a spare host"
    );
    assert!(sandbox.hosts().platform_running(new_ip));
    assert_eq!(
        apps_state(&sandbox, new_ip),
        before,
        "every app's rows, data and files are back, on the new host"
    );
    let steps: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for phase in [
        "Create server at digitalocean",
        "Wait for SSH",
        "Install Coolify",
        "Restore app blog db (pgblog0k2m9x)",
        "Restore app shop db (myshop0k2m9x)",
        "Restore app site (apsite0k2m9x)",
        "Health check",
        "Join the fleet",
    ] {
        assert!(steps.contains(&phase), "{phase}: {steps:?}");
    }
    assert!(done["recoveryMs"].as_u64().unwrap() > 0, "{done}");

    let health = json(
        &sandbox,
        home.path(),
        &["--json", "health", "hetzner-web-recovered"],
    )
    .await;
    assert_eq!(health["healthy"], true, "{health}");
    // The old server's health now fails: its platform is gone.
    let old =
        support::kastell_in(&sandbox, home.path(), &["--json", "health", "hetzner-web"]).await;
    let old: Value = serde_json::from_slice(&old.stdout).unwrap();
    assert_ne!(old["healthy"], true, "{old}");
}
