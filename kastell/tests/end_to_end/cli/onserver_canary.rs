//! The append-only canary of `schedule install --on-server`, through the
//! `kastell` binary on a sandbox server writing into a SeaweedFS cluster:
//! the server itself, with its own key, tries to overwrite and delete an
//! object in its repository before anything is written there. A key the
//! storage lets delete is refused with what it allowed and how to
//! restrict it, and nothing lands on the server; the append-only key
//! (deletes denied, the bucket versioned) passes and the install goes on.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_testkit::s3::S3Keys;
use kastell_testkit::s3_cluster::SeaweedCluster;
use serde_json::Value;

use super::onserver::{kastell, s3, text};

/// Writes `server`'s key file in `dir` holding `keys` (0600).
fn key_file(dir: &Path, server: &str, keys: &S3Keys) {
    let file = dir.join(format!("{server}.env"));
    std::fs::write(
        &file,
        format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            keys.access_key_id, keys.secret_access_key
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_install_canary_refuses_a_key_the_storage_lets_delete() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 1,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let server = sandbox.servers()[0].clone();
    let name = server.name.clone();
    let prefix = format!("fleet/servers/{name}");
    let cluster = tokio::task::spawn_blocking({
        let prefix = prefix.clone();
        // Two logins on the server's prefix: the append-only one, and one
        // the bucket policy lets delete.
        move || {
            SeaweedCluster::start_with(
                1,
                &[("srva", prefix.as_str())],
                &[("full", prefix.as_str())],
            )
        }
    })
    .await
    .unwrap();
    let password_file = dir.path().join("fleet.pw");
    std::fs::write(&password_file, "the shared passphrase\n").unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir(&keys_dir).unwrap();
    let shared = format!("s3:{}/kastell/fleet", cluster.endpoint);
    let init = kastell(
        &sandbox,
        home.path(),
        &cluster,
        &[],
        &[
            "repo",
            "init",
            "fleet",
            &shared,
            "--password-file",
            password_file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(init.status.success(), "{}", text(&init));
    let keys_arg = keys_dir.to_str().unwrap().to_owned();
    let install_args = [
        "--json",
        "schedule",
        "install",
        "--on-server",
        "--server",
        &name,
        "--repo",
        "fleet",
        "--keys-dir",
        &keys_arg,
    ];
    let install = || kastell(&sandbox, home.path(), &cluster, &[], &install_args);
    let root = sandbox.hosts().root(server.address).unwrap();
    let script = root.join("usr/local/lib/kastell/onserver-backup");
    let env = root.join("etc/kastell/onserver/env");
    let canary_url = format!("{}/kastell/{prefix}/kastell-canary", cluster.endpoint);

    // The over-privileged key: the server's own canary deletes, so the
    // install stops before writing anything on the server.
    let full = cluster.login("full").keys.clone();
    key_file(&keys_dir, &name, &full);
    let refused = install().await;
    let said = text(&refused);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("let this server's own login delete"),
        "names what the storage allowed: {said}"
    );
    assert!(said.contains("nothing was installed"), "{said}");
    assert!(
        said.contains("s3:DeleteObject") && said.contains("versioning"),
        "says how to restrict it: {said}"
    );
    assert!(!said.contains("full-secret-not-logged"), "{said}");
    assert!(
        !script.exists() && !env.exists(),
        "written despite the canary"
    );
    // The canary ran on the storage, with that key: it deleted the object
    // (a delete marker now hides it), which only a delete could do.
    assert_eq!(s3(&cluster.admin, "GET", &canary_url), 404, "{said}");

    // The append-only key: the delete is refused and the overwrite kept
    // the earlier version; the install goes on.
    let srva = cluster.login("srva").keys.clone();
    key_file(&keys_dir, &name, &srva);
    let passed = install().await;
    let said = text(&passed);
    assert!(passed.status.success(), "{said}");
    let report: Value = serde_json::from_slice(&passed.stdout).unwrap();
    let canary = &report["servers"][0]["canary"];
    assert_eq!(canary["delete"], "refused", "{report}");
    assert_eq!(canary["overwrite"], "kept", "{report}");
    assert_eq!(canary["canary"], canary_url.as_str(), "{report}");
    assert!(script.exists() && env.exists(), "{said}");
    assert!(!said.contains("srva-secret-not-logged"), "{said}");
    assert_eq!(
        s3(&cluster.admin, "GET", &canary_url),
        200,
        "the canary stays"
    );
}
