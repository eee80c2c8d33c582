//! Backups read back out of a repository through the `kastell` binary on
//! a sandbox server: a server's default repository receives every backup,
//! `backup list|verify --repo` read it there, and when the local store has
//! lost the backup, `backup restore --repo` pulls it (checked against the
//! checksums recorded when it was stored) and restores the server's files;
//! the safety backup a restore took stays marked there and is never its
//! newest. The copy stock restic restores passes `sha256sum -c`.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use kastell_testkit::tmpfs::Tmpfs;
use std::path::Path;
use std::process::{Command, Output};

use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

const PASSWORD: &str = "the offsite passphrase, long enough";

async fn kastell(sandbox: &Sandbox, home: &Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

fn ok(out: &Output) -> Value {
    support::ok_json(out)
}

fn ids(list: &Value) -> Vec<String> {
    list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_lost_locally_comes_back_from_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.as_str();
    let root = sandbox.hosts().root(server.address).unwrap();
    let crontab = root.join("etc/crontab");
    let repo_dir = dir.path().join("offsite");
    support::init_repo(&sandbox, home.path(), "offsite", &repo_dir, PASSWORD).await;

    // The server's default repository takes its backups without --repo;
    // --local-only keeps one out of it.
    ok(&kastell(
        &sandbox,
        home.path(),
        &["repo", "default", "offsite", "--server", name],
    )
    .await);
    let defaults = ok(&kastell(&sandbox, home.path(), &["--json", "repo", "default"]).await);
    assert_eq!(defaults[name], "offsite", "{defaults}");
    sandbox
        .hosts()
        .write(server.address, "etc/crontab", "# pushed\n")
        .unwrap();
    let created = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "create", name, "--force"],
    )
    .await);
    assert_eq!(created["repository"]["repository"], "offsite", "{created}");
    let pushed_id = created["backupId"].as_str().unwrap().to_owned();
    let snapshot_id = created["repository"]["snapshotId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(snapshot_id.len(), 64, "{created}");
    let text = kastell(
        &sandbox,
        home.path(),
        &["backup", "create", name, "--force", "--local-only"],
    )
    .await;
    let text = String::from_utf8_lossy(&ok_text(&text)).into_owned();
    assert!(
        !text.contains("repository:"),
        "--local-only stored it: {text}"
    );

    // Listed and verified in the repository: only the pushed backup.
    let listed = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", name, "--repo", "offsite"],
    )
    .await);
    assert_eq!(ids(&listed), vec![pushed_id.clone()], "{listed}");
    assert_eq!(listed["repository"], "offsite");
    assert_eq!(listed["backups"][0]["snapshotId"], snapshot_id.as_str());
    let verified = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "verify", name, "--repo", "offsite"],
    )
    .await);
    assert_eq!(verified["backupId"], pushed_id.as_str(), "{verified}");
    assert_eq!(
        verified["message"], "Backup verified: every checksum matches",
        "{verified}"
    );
    assert_eq!(verified["warnings"], Value::Array(vec![]), "{verified}");

    // Stock restic restores a copy that sha256sum -c accepts.
    let target = dir.path().join("restic-restore");
    let restored = Command::new("restic")
        .args([
            "--repo",
            repo_dir.to_str().unwrap(),
            "--no-cache",
            "restore",
            "latest",
            "--target",
        ])
        .arg(&target)
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    // The snapshot's files sit at its root.
    let copy = target.clone();
    assert!(copy.join("checksums.sha256").is_file());
    let sums = Command::new("sha256sum")
        .args(["-c", "checksums.sha256"])
        .current_dir(&copy)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}{}",
        String::from_utf8_lossy(&sums.stdout),
        String::from_utf8_lossy(&sums.stderr)
    );

    // The laptop loses its copy; the server changes; the backup comes back
    // from the repository and restores the server's files.
    let local_dir = sandbox
        .store()
        .dir()
        .join("backups")
        .join(name)
        .join(&pushed_id);
    std::fs::remove_dir_all(&local_dir).unwrap();
    sandbox
        .hosts()
        .write(server.address, "etc/crontab", "# changed since\n")
        .unwrap();
    let plan = kastell(
        &sandbox,
        home.path(),
        &["backup", "restore", name, "--repo", "offsite", "--dry-run"],
    )
    .await;
    let plan = String::from_utf8_lossy(&ok_text(&plan)).into_owned();
    assert!(
        plan.contains("Pull backup (newest) from repository offsite"),
        "{plan}"
    );
    assert!(!local_dir.exists(), "a dry run pulls nothing");
    let restore = ok(&kastell(
        &sandbox,
        home.path(),
        &[
            "--json", "backup", "restore", name, "--repo", "offsite", "--force", "--safety",
            "local",
        ],
    )
    .await);
    assert_eq!(restore["backupId"], pushed_id.as_str(), "{restore}");
    assert_eq!(restore["repository"], "offsite", "{restore}");
    assert_eq!(std::fs::read_to_string(&crontab).unwrap(), "# pushed\n");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(local_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["pulledFrom"],
        format!("offsite snapshot {}", &snapshot_id[..8]).as_str()
    );
    let local = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "verify", name, "--backup", &pushed_id],
    )
    .await);
    assert_eq!(local["message"], "Backup verified: every checksum matches");

    // The safety backup that restore took, pushed too, stays one in the
    // repository: listed as such and never its newest.
    let safety = restore["safetyBackupId"].as_str().unwrap().to_owned();
    let pushed = ok(&kastell(
        &sandbox,
        home.path(),
        &[
            "--json", "repo", "push", "offsite", name, "--backup", &safety,
        ],
    )
    .await);
    assert_eq!(pushed["backup_id"], safety.as_str(), "{pushed}");
    let listed = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", name, "--repo", "offsite"],
    )
    .await);
    assert_eq!(ids(&listed), vec![safety.clone(), pushed_id.clone()]);
    assert_eq!(
        listed["backups"][0]["safetyFor"],
        pushed_id.as_str(),
        "{listed}"
    );
    let newest = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "verify", name, "--repo", "offsite"],
    )
    .await);
    assert_eq!(newest["backupId"], pushed_id.as_str(), "{newest}");

    // With the local copy back, a second restore from the repository uses
    // it and says so; a damaged local copy is refused, never overwritten.
    let again = ok(&kastell(
        &sandbox,
        home.path(),
        &[
            "--json", "backup", "restore", name, "--repo", "offsite", "--backup", &pushed_id,
            "--force",
        ],
    )
    .await);
    let warnings = again["warnings"].to_string();
    assert!(warnings.contains("restored from the local copy"), "{again}");
    let stored = std::fs::read_dir(&local_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "zst"))
        .unwrap();
    let mut bytes = std::fs::read(&stored).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    let refused = kastell(
        &sandbox,
        home.path(),
        &[
            "backup", "restore", name, "--repo", "offsite", "--backup", &pushed_id, "--force",
        ],
    )
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("move") && stderr.contains("aside"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        bytes,
        "the damaged copy is left as it was"
    );

    // An unknown backup id in the repository says what is there.
    let missing = kastell(
        &sandbox,
        home.path(),
        &[
            "backup",
            "verify",
            name,
            "--repo",
            "offsite",
            "--backup",
            "2020-01-01_00-00-00-000",
        ],
    )
    .await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no backup 2020-01-01_00-00-00-000"),
        "{stderr}"
    );
    assert!(stderr.contains(&pushed_id), "{stderr}");
}

fn ok_text(out: &Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_repository_disk_fails_the_push_and_keeps_the_local_backup() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("small-disk");
    let Some(_disk) = Tmpfs::mount(&repo_dir, "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.as_str();
    // More than the disk holds, and incompressible.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let blob: String = (0..400_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!("{state:016x}")
        })
        .collect();
    sandbox
        .hosts()
        .write(server.address, "etc/nginx/big.conf", &blob)
        .unwrap();
    support::init_repo(
        &sandbox,
        home.path(),
        "small",
        &repo_dir.join("repo"),
        PASSWORD,
    )
    .await;

    let out = kastell(
        &sandbox,
        home.path(),
        &[
            "--json", "backup", "create", name, "--force", "--repo", "small",
        ],
    )
    .await;
    assert!(!out.status.success());
    let failed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("is complete in the local store, but storing it in repository small failed"),
        "{failed}"
    );
    assert!(error.contains("No space left on device"), "{failed}");
    assert!(
        failed["hint"].as_str().unwrap().contains("disk is full"),
        "{failed}"
    );

    // The local backup is there and whole; the repository lists nothing.
    let local = ok(&kastell(&sandbox, home.path(), &["--json", "backup", "verify", name]).await);
    assert_eq!(local["message"], "Backup verified: every checksum matches");
    let listed = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", name, "--repo", "small"],
    )
    .await);
    assert_eq!(listed["backupCount"], 0, "{listed}");
}
