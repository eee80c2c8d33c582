//! Pushing a backup reads each stored artifact once, and an unchanged one
//! not at all, through the `kastell` binary on a sandbox server: the
//! backup's manifest records each artifact's size and SHA-256 before
//! compression as it streamed in, `backup create --repo` pushes from
//! those, stock restic restores the snapshot to files of exactly those
//! sizes and checksums (`sha256sum -c` agrees), and pushing the same
//! backup again takes every file from the first snapshot unread and adds
//! (almost) nothing. A backup taken without a repository and pushed later
//! goes through the same streaming writer and restores the same way; while
//! its stored file is damaged it is refused as it is read, writing no
//! snapshot.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::path::Path;
use std::process::{Command, Output};

use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

const PASSWORD: &str = "a passphrase for the reuse test";

async fn kastell(sandbox: &Sandbox, home: &Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_backup_restores_with_stock_restic_and_an_unchanged_push_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();
    let repo_dir = dir.path().join("offsite");
    support::init_repo(&sandbox, home.path(), "offsite", &repo_dir, PASSWORD).await;

    let created = support::ok_json(
        &kastell(
            &sandbox,
            home.path(),
            &[
                "--json", "backup", "create", &server, "--force", "--repo", "offsite",
            ],
        )
        .await,
    );
    let backup_id = created["backupId"].as_str().unwrap().to_owned();
    let snapshot = created["repository"]["snapshotId"]
        .as_str()
        .unwrap()
        .to_owned();

    // The manifest holds each artifact's bytes before compression.
    let manifest_path = sandbox
        .store()
        .dir()
        .join("backups")
        .join(&server)
        .join(&backup_id)
        .join("manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest_path).unwrap()).unwrap();
    let content = manifest["content"].as_array().unwrap().clone();
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(content.len(), artifacts.len(), "{manifest}");
    assert!(!content.is_empty());

    // Stock restic restores files of those sizes and checksums, and
    // sha256sum -c accepts the checksums.sha256 stored beside them.
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
        "{}{}",
        String::from_utf8_lossy(&sums.stdout),
        String::from_utf8_lossy(&sums.stderr)
    );
    let listed = std::fs::read_to_string(target.join("checksums.sha256")).unwrap();
    for digest in &content {
        let name = digest["name"].as_str().unwrap();
        let sha256 = digest["sha256"].as_str().unwrap();
        let size = std::fs::metadata(target.join(name)).unwrap().len();
        assert_eq!(size, digest["size"].as_u64().unwrap(), "{name}");
        assert!(listed.contains(&format!("{sha256}  {name}\n")), "{listed}");
    }

    // The same backup again: every file (artifacts, checksums.sha256,
    // manifest.json) is taken from the first snapshot unread.
    let again = support::ok_json(
        &kastell(
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
        Some(content.len() as u64 + 2),
        "{again}"
    );
    let added = again["snapshot"]["added_bytes"].as_u64().unwrap();
    assert!(added < 4096, "an unchanged push added {added} bytes");
    let said = kastell(
        &sandbox,
        home.path(),
        &["repo", "push", "offsite", &server, "--backup", &backup_id],
    )
    .await;
    assert!(said.status.success());
    let line = String::from_utf8_lossy(&said.stdout).into_owned();
    assert!(
        line.contains(&format!(
            "{} unchanged file(s) taken from an earlier snapshot unread",
            content.len() + 2
        )),
        "{line}"
    );
    restic(&repo_dir, &["check", "--read-data"]);
    let latest = dir.path().join("latest");
    restic(
        &repo_dir,
        &["restore", "latest", "--target", latest.to_str().unwrap()],
    );
    for digest in &content {
        let name = digest["name"].as_str().unwrap();
        assert!(
            std::fs::read(latest.join(name)).unwrap() == std::fs::read(target.join(name)).unwrap(),
            "{name} differs between the first and the unread push"
        );
    }
}

/// The stored artifacts of backup `backup_id` of `server`, decompressed,
/// by name.
fn stored_artifacts(sandbox: &Sandbox, server: &str, backup_id: &str) -> Vec<(String, Vec<u8>)> {
    let dir = sandbox
        .store()
        .dir()
        .join("backups")
        .join(server)
        .join(backup_id);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|artifact| {
            let name = artifact["name"].as_str().unwrap().to_owned();
            let stored = dir.join(format!("{name}.zst"));
            let plain = if stored.exists() {
                zstd::stream::decode_all(std::fs::File::open(&stored).unwrap()).unwrap()
            } else {
                std::fs::read(dir.join(&name)).unwrap()
            };
            (name, plain)
        })
        .collect()
}

/// A backup of `server` taken without a repository: its id.
async fn local_backup(sandbox: &Sandbox, home: &Path, server: &str) -> String {
    let created = support::ok_json(
        &kastell(
            sandbox,
            home,
            &["--json", "backup", "create", server, "--force"],
        )
        .await,
    );
    created["backupId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_stored_backup_is_refused_and_once_mended_pushes_and_restores_with_restic() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();
    let repo_dir = dir.path().join("offsite");
    support::init_repo(&sandbox, home.path(), "offsite", &repo_dir, PASSWORD).await;

    // A backup taken without a repository, its biggest stored file then
    // damaged (same size, one byte changed): refused as it is read, no
    // snapshot written.
    let first = local_backup(&sandbox, home.path(), &server).await;
    let backup_dir = sandbox
        .store()
        .dir()
        .join("backups")
        .join(&server)
        .join(&first);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("manifest.json")).unwrap()).unwrap();
    let biggest = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|a| a["size"].as_u64().unwrap())
        .unwrap()
        .clone();
    let stored = std::fs::read_dir(&backup_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(biggest["name"].as_str().unwrap())
        })
        .unwrap();
    let good = std::fs::read(&stored).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x55;
    std::fs::write(&stored, &bad).unwrap();
    let out = kastell(
        &sandbox,
        home.path(),
        &["repo", "push", "offsite", &server, "--backup", &first],
    )
    .await;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said.contains("does not match its checksum"), "{said}");
    let listed = support::ok_json(
        &kastell(
            &sandbox,
            home.path(),
            &["--json", "repo", "snapshots", "offsite"],
        )
        .await,
    );
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");

    // The file mended, the same backup pushed: read from its stored files
    // through the streaming writer, restored byte for byte by restic.
    std::fs::write(&stored, &good).unwrap();
    let pushed = support::ok_json(
        &kastell(
            &sandbox,
            home.path(),
            &[
                "--json", "repo", "push", "offsite", &server, "--backup", &first,
            ],
        )
        .await,
    );
    assert_eq!(pushed["snapshot"]["unchanged_files"], 0, "{pushed}");
    let snapshot = pushed["snapshot"]["id"].as_str().unwrap().to_owned();
    restic(&repo_dir, &["check", "--read-data"]);
    let target = dir.path().join("pushed");
    restic(
        &repo_dir,
        &["restore", &snapshot, "--target", target.to_str().unwrap()],
    );
    let artifacts = stored_artifacts(&sandbox, &server, &first);
    assert!(!artifacts.is_empty());
    for (name, plain) in &artifacts {
        assert!(
            &std::fs::read(target.join(name)).unwrap() == plain,
            "{name} restored by restic differs from the stored artifact"
        );
    }
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
}
