//! On-server backups through the `kastell` binary: two sandbox servers get
//! `schedule install --on-server`, run their installed script over SSH
//! (instead of waiting for the timer) and write straight into a SeaweedFS
//! cluster (one master, three volume servers, filer and S3 gateway) with
//! logins limited to their own prefix and denied deletes. kastell lists
//! and checks both servers' repositories, stock restic reads a backup
//! back, one server's login can neither read nor delete the other's data
//! (nor delete its own history), a server whose newest backup is too
//! old makes `backup freshness` exit 1 and raise the alert, and one that
//! forges a run dated in the future is not believed.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_testkit::s3::S3Keys;
use kastell_testkit::s3_cluster::SeaweedCluster;
use serde_json::Value;

use super::alert::listener;
use crate::support;

const PASSWORD: &str = "the shared repository's passphrase";

/// `kastell args` against the sandbox with the operator's S3 key and
/// `extra` variables.
pub(super) async fn kastell(
    sandbox: &Sandbox,
    home: &Path,
    cluster: &SeaweedCluster,
    extra: &[(&str, String)],
    args: &[&str],
) -> Output {
    let mut cmd = support::kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .env("AWS_ACCESS_KEY_ID", &cluster.admin.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &cluster.admin.secret_access_key);
    for (name, value) in extra {
        cmd.env(name, value);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

pub(super) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stock restic on `repo` with `keys`, the password from `password_file`.
fn restic(repo: &str, keys: &S3Keys, password_file: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .args(["--no-cache", "--repo", repo])
        .args(args)
        .env("RESTIC_PASSWORD_FILE", password_file)
        .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key)
        .output()
        .expect("restic is installed (.ci/setup installs it)")
}

/// One signed S3 request with `keys` (curl's SigV4); returns the status.
pub(super) fn s3(keys: &S3Keys, method: &str, url: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", keys.access_key_id, keys.secret_access_key))
        .args(["-H", "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])
        .args(["-X", method, url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_back_themselves_up_into_a_seaweedfs_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 2,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(&dir.path().join("state"), &plan)
        .await
        .unwrap();
    let servers: Vec<_> = sandbox.servers().to_vec();
    let (a, b) = (servers[0].name.clone(), servers[1].name.clone());
    let prefix = |s: &str| format!("fleet/servers/{s}");
    let cluster = tokio::task::spawn_blocking({
        let (pa, pb) = (prefix(&a), prefix(&b));
        move || SeaweedCluster::start(3, &[("srva", pa.as_str()), ("srvb", pb.as_str())])
    })
    .await
    .unwrap();
    assert_eq!(cluster.volume_servers(), 3, "three volume servers joined");

    // The operator's shared repository, and each server's own key file.
    let password_file = dir.path().join("fleet.pw");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir(&keys_dir).unwrap();
    for (server, login) in [(&a, "srva"), (&b, "srvb")] {
        let keys = &cluster.login(login).keys;
        let file = keys_dir.join(format!("{server}.env"));
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
    let shared = format!("s3:{}/kastell/fleet", cluster.endpoint);
    let run = |args: Vec<String>, extra: Vec<(&'static str, String)>| {
        let (sandbox, home, cluster) = (&sandbox, home.path(), &cluster);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kastell(sandbox, home, cluster, &extra, &args).await
        }
    };
    let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let init = run(
        owned(&[
            "repo",
            "init",
            "fleet",
            &shared,
            "--password-file",
            password_file.to_str().unwrap(),
        ]),
        vec![],
    )
    .await;
    assert!(init.status.success(), "{}", text(&init));

    let (ping_port, pings) = listener(200, "OK");
    let ping_url = format!("http://127.0.0.1:{ping_port}/ping/not-logged-token");
    let install_args = |dry: bool| {
        let mut args = owned(&[
            "--json",
            "schedule",
            "install",
            "--on-server",
            "--all",
            "--repo",
            "fleet",
            "--keys-dir",
            keys_dir.to_str().unwrap(),
            "--ping-url",
            &ping_url,
            "--backup-at",
            "*-*-* 03:00:00",
        ]);
        if dry {
            args.push("--dry-run".into());
        }
        args
    };

    // A dry run shows what would be written, hides the secrets and writes
    // nothing.
    let dry = run(install_args(true), vec![]).await;
    let shown = text(&dry);
    assert!(dry.status.success(), "{shown}");
    let report: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["servers"].as_array().unwrap().len(), 2, "{report}");
    for secret in ["-secret-not-logged", "not-logged-token"] {
        assert!(
            !shown.contains(secret),
            "the dry run shows {secret}: {shown}"
        );
    }
    let root_a = sandbox.hosts().root(servers[0].address).unwrap();
    let script_a = root_a.join("usr/local/lib/kastell/onserver-backup");
    assert!(!script_a.exists(), "a dry run wrote the script");

    // The install writes root-only files; secrets only in the 0600 ones.
    let install = run(install_args(false), vec![]).await;
    let said = text(&install);
    assert!(install.status.success(), "{said}");
    for secret in ["-secret-not-logged", "not-logged-token"] {
        assert!(!said.contains(secret), "the install printed {secret}");
    }
    let env_a = root_a.join("etc/kastell/onserver/env");
    assert_eq!(
        std::fs::metadata(&env_a).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&script_a).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(std::fs::read_to_string(&env_a).unwrap().contains("srvakey"));
    let script = std::fs::read_to_string(&script_a).unwrap();
    assert!(!script.contains("-secret-not-logged") && !script.contains("not-logged-token"));
    let cron = std::fs::read_to_string(root_a.join("etc/cron.d/kastell-onserver-backup")).unwrap();
    assert!(cron.contains("0 3 * * * root /bin/sh"), "{cron}");
    // Installing again replaces kastell's own files, the password file
    // (which carries no marker) included.
    let again = run(install_args(false), vec![]).await;
    assert!(again.status.success(), "{}", text(&again));
    let server_password_a = root_a.join("etc/kastell/onserver/password");
    assert!(server_password_a.exists());

    // Each server runs its backup (as the timer would), over SSH.
    let ran = run(owned(&["schedule", "run", "--on-server", "--all"]), vec![]).await;
    assert!(ran.status.success(), "{}", text(&ran));
    let targets: Vec<String> = (0..4)
        .filter_map(|_| pings.recv_timeout(Duration::from_secs(5)).ok())
        .map(|r| r.target)
        .collect();
    for expected in ["/ping/not-logged-token/start", "/ping/not-logged-token"] {
        assert_eq!(
            targets.iter().filter(|t| *t == expected).count(),
            2,
            "{expected} once per server: {targets:?}"
        );
    }

    // kastell lists and checks both servers' repositories.
    for server in [&a, &b] {
        let repo = format!("fleet-{server}");
        let listed = run(owned(&["--json", "repo", "snapshots", &repo]), vec![]).await;
        let snapshots: Value = support::ok_json(&listed);
        let snapshots = snapshots.as_array().unwrap();
        assert_eq!(
            snapshots.len(),
            2,
            "an artifact and the run's close: {snapshots:?}"
        );
        assert!(snapshots.iter().all(|s| s["host"] == server.as_str()));
        assert!(
            snapshots
                .iter()
                .any(|s| s["tags"].to_string().contains("run-complete"))
        );
        let checked = run(
            owned(&["--json", "repo", "check", &repo, "--read-data"]),
            vec![],
        )
        .await;
        assert!(checked.status.success(), "{}", text(&checked));
    }
    let listed = run(
        owned(&["--json", "schedule", "list", "--on-server"]),
        vec![],
    )
    .await;
    let rows = support::ok_json(&listed);
    for row in rows.as_array().unwrap() {
        assert_eq!(row["onServer"]["installed"], true, "{row}");
        let last = row["onServer"]["lastRun"].as_str().unwrap_or_default();
        assert!(last.contains(" ok "), "{row}");
    }

    // Stock restic reads server a's backup back: a tar of its files.
    let password_a = sandbox
        .store()
        .dir()
        .join("onserver")
        .join(format!("{a}.password"));
    let repo_a = format!("s3:{}/kastell/{}", cluster.endpoint, prefix(&a));
    let repo_b = format!("s3:{}/kastell/{}", cluster.endpoint, prefix(&b));
    let dumped = restic(
        &repo_a,
        &cluster.admin,
        &password_a,
        &[
            "dump",
            "--path",
            "/bare-config.tar",
            "latest",
            "/bare-config.tar",
        ],
    );
    assert!(dumped.status.success(), "{}", text(&dumped));
    assert!(dumped.stdout.len() > 512, "a tar of the server's files");
    assert_eq!(&dumped.stdout[257..262], b"ustar", "a tar archive");

    // Server a's login cannot read server b's repository, nor delete
    // anything but locks (b's data or its own history).
    let srva = &cluster.login("srva").keys;
    let read_b = restic(&repo_b, srva, &password_a, &["cat", "config"]);
    assert!(!read_b.status.success(), "a read b's repository");
    assert!(
        text(&read_b).to_lowercase().contains("denied"),
        "{}",
        text(&read_b)
    );
    let base = format!("{}/kastell", cluster.endpoint);
    assert_eq!(
        s3(srva, "GET", &format!("{base}/{}/config", prefix(&b))),
        403
    );
    assert_eq!(
        s3(srva, "DELETE", &format!("{base}/{}/config", prefix(&b))),
        403
    );
    assert_eq!(
        s3(srva, "DELETE", &format!("{base}/{}/config", prefix(&a))),
        403
    );
    assert_eq!(
        s3(srva, "GET", &format!("{base}/{}/config", prefix(&a))),
        200
    );
    // Nor write there: it cannot forge a fresh-looking run (a snapshot
    // tagged run-complete) for b, nor plant a key or data beside b's.
    for forged in ["snapshots/forged", "keys/forged", "data/00/forged"] {
        assert_eq!(
            s3(srva, "PUT", &format!("{base}/{}/{forged}", prefix(&b))),
            403,
            "a wrote {forged} into b's repository"
        );
    }
    assert_eq!(
        s3(srva, "PUT", &format!("{base}/fleet/servers/{}", "forged")),
        403,
        "a wrote outside its own prefix"
    );
    let still = restic(&repo_b, &cluster.admin, &password_a, &["cat", "config"]);
    assert!(
        !still.status.success(),
        "b's repository has its own password"
    );

    // Freshness from the repository: both fresh now; then b goes stale
    // while a backs up again, and the alert names b only.
    let (hook_port, hooks) = listener(200, "ok");
    let hook = vec![
        (
            "KASTELL_ALERT_WEBHOOK",
            format!("http://127.0.0.1:{hook_port}/hook"),
        ),
        ("KASTELL_ALERT_FORMAT", "json".to_owned()),
    ];
    let fresh = run(
        owned(&["--json", "backup", "freshness", "--max-age", "1h"]),
        hook.clone(),
    )
    .await;
    let report = support::ok_json(&fresh);
    assert!(
        report["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["verdict"] == "fresh"),
        "{report}"
    );
    assert!(
        hooks.try_recv().is_err(),
        "no alert when every server is fresh"
    );
    tokio::time::sleep(Duration::from_secs(12)).await;
    let again = run(
        owned(&["schedule", "run", "--on-server", "--server", &a]),
        vec![],
    )
    .await;
    assert!(again.status.success(), "{}", text(&again));
    let stale = run(
        owned(&["--json", "backup", "freshness", "--max-age", "10s"]),
        hook,
    )
    .await;
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    let report: Value = serde_json::from_slice(&stale.stdout).unwrap();
    let verdict = |server: &str| {
        report["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == server)
            .map(|s| s["verdict"].clone())
            .unwrap()
    };
    assert_eq!(verdict(&a), "fresh", "{report}");
    assert_eq!(verdict(&b), "stale", "{report}");
    assert_eq!(report["alerted"], true, "{report}");
    let alert = hooks.recv_timeout(Duration::from_secs(5)).unwrap();
    let body = alert.body.to_string();
    assert!(
        body.contains(&b) && !body.contains(&format!("{a}:")),
        "{body}"
    );
    assert!(!body.contains("-secret-not-logged"), "{body}");

    // A compromised b forges one closing run dated far ahead with its own
    // login and stock restic (a snapshot's time is the writer's to choose):
    // it does not make b fresh; it is reported and alarms.
    let password_b = sandbox
        .store()
        .dir()
        .join("onserver")
        .join(format!("{b}.password"));
    let forged = restic(
        &repo_b,
        &cluster.login("srvb").keys,
        &password_b,
        &[
            "backup",
            "--host",
            &b,
            "--tag",
            "kastell",
            "--tag",
            "run-complete",
            "--time",
            "2099-01-01 00:00:00",
            password_file.to_str().unwrap(),
        ],
    );
    assert!(
        forged.status.success(),
        "b's own login can append a snapshot: {}",
        String::from_utf8_lossy(&forged.stderr)
    );
    let future = run(
        owned(&["--json", "backup", "freshness", "--max-age", "1h"]),
        vec![],
    )
    .await;
    assert_eq!(future.status.code(), Some(1), "{}", text(&future));
    let report: Value = serde_json::from_slice(&future.stdout).unwrap();
    let b_row = report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == b.as_str())
        .cloned()
        .unwrap();
    assert_eq!(b_row["verdict"], "future", "{report}");
    assert!(
        b_row["newest"].as_str().unwrap().starts_with("2099-01-01"),
        "{report}"
    );

    // Removing takes every file kastell wrote off the server; the backups
    // stay in the repository.
    let removed = run(
        owned(&["schedule", "remove", "--on-server", "--all", "--force"]),
        vec![],
    )
    .await;
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(
        !script_a.exists() && !env_a.exists() && !server_password_a.exists(),
        "{}",
        text(&removed)
    );
    let kept = restic(
        &repo_a,
        &cluster.admin,
        &password_a,
        &["snapshots", "--json"],
    );
    assert!(kept.status.success(), "{}", text(&kept));
}
