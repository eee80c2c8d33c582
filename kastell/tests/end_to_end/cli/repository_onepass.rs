//! The one-pass repository backup through the `kastell` binary on a
//! sandbox server: `backup create --repo` copies each artifact's bytes
//! into the repository as they stream in (the log says so, and no push
//! follows), the stored backup is as before, stock restic restores the
//! snapshot to exactly the stored artifacts' bytes, and a later push of
//! the same backup finds every file unchanged.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::path::Path;
use std::process::{Command, Output};

use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

const PASSWORD: &str = "a passphrase for the one-pass test";

fn restic(repo: &Path, args: &[&str]) -> Output {
    let out = Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .expect("restic is installed (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `kastell args` with its log at info.
async fn kastell_logged(sandbox: &Sandbox, home: &Path, args: &[&str]) -> Output {
    let mut cmd = support::kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .env("KASTELL_LOG", "kastell=info");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_into_the_repository_streams_in_one_pass_and_restic_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();
    let repo_dir = dir.path().join("offsite");
    support::init_repo(&sandbox, home.path(), "offsite", &repo_dir, PASSWORD).await;

    let out = kastell_logged(
        &sandbox,
        home.path(),
        &[
            "--json", "backup", "create", &server, "--force", "--repo", "offsite",
        ],
    )
    .await;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let created = support::ok_json(&out);
    let backup_id = created["backupId"].as_str().unwrap().to_owned();
    assert!(
        log.contains(&format!(
            "backup {backup_id} went into repository offsite in one pass"
        )),
        "{log}"
    );
    assert!(!log.contains("pushing the stored backup"), "{log}");
    let snapshot = created["repository"]["snapshotId"]
        .as_str()
        .unwrap()
        .to_owned();

    let backup_dir = sandbox
        .store()
        .dir()
        .join("backups")
        .join(&server)
        .join(&backup_id);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("manifest.json")).unwrap()).unwrap();
    let artifacts = manifest["artifacts"].as_array().unwrap().clone();
    assert!(!artifacts.is_empty());

    restic(&repo_dir, &["check", "--read-data"]);
    let target = dir.path().join("restored");
    restic(
        &repo_dir,
        &["restore", &snapshot, "--target", target.to_str().unwrap()],
    );
    let sums = Command::new("sha256sum")
        .args(["-c", "--strict", "checksums.sha256"])
        .current_dir(&target)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    // Each restored artifact is the stored one, decompressed.
    for artifact in &artifacts {
        let name = artifact["name"].as_str().unwrap();
        let stored = backup_dir.join(format!("{name}.zst"));
        let plain = if stored.exists() {
            zstd::stream::decode_all(std::fs::File::open(&stored).unwrap()).unwrap()
        } else {
            std::fs::read(backup_dir.join(name)).unwrap()
        };
        assert!(
            std::fs::read(target.join(name)).unwrap() == plain,
            "{name} restored by restic differs from the stored artifact"
        );
    }
    assert!(
        std::fs::read(target.join("manifest.json")).unwrap()
            == std::fs::read(backup_dir.join("manifest.json")).unwrap()
    );

    // A push of the same stored backup finds every file unchanged: the
    // one-pass snapshot is laid out as a pushed one.
    let again = support::ok_json(
        &support::kastell_in(
            &sandbox,
            home.path(),
            &[
                "--json", "repo", "push", "offsite", &server, "--backup", &backup_id,
            ],
        )
        .await,
    );
    assert_eq!(
        again["snapshot"]["unchanged_files"].as_u64(),
        Some(artifacts.len() as u64 + 2),
        "{again}"
    );
    let added = again["snapshot"]["added_bytes"].as_u64().unwrap();
    assert!(added < 4096, "an unchanged push added {added} bytes");
}
