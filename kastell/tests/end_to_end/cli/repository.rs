//! `kastell repo` and `backup create --repo` through the `kastell` binary
//! on a sandbox server: the backup lands in a restic-format repository
//! that stock `restic` checks and restores from, a second unchanged backup
//! adds little, prune shows its plan before it removes anything, and a
//! wrong or exposed password is refused.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use kastell::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

const PASSWORD: &str = "a long offsite passphrase";

async fn kastell(sandbox: &Sandbox, home: &std::path::Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

fn ok(out: &Output) -> Value {
    support::ok_json(out)
}

fn restic(repo: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .expect("restic is installed (.ci/setup installs it)")
}

fn write_password(path: &Path, password: &str, mode: u32) {
    std::fs::write(path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_go_to_a_repository_stock_restic_restores_from() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();
    let password_file = dir.path().join("offsite.pw");
    write_password(&password_file, PASSWORD, 0o600);
    let repo_dir = dir.path().join("offsite");
    let pw = password_file.to_str().unwrap();
    let repo_arg = repo_dir.to_str().unwrap();

    ok(&kastell(
        &sandbox,
        home.path(),
        &[
            "repo",
            "init",
            "offsite",
            repo_arg,
            "--password-file",
            pw,
            "--keep-last",
            "1",
        ],
    )
    .await);
    let listed = ok(&kastell(&sandbox, home.path(), &["--json", "repo", "list"]).await);
    assert_eq!(listed[0]["name"], "offsite");
    let config = std::fs::read_to_string(sandbox.store().dir().join("repositories.json")).unwrap();
    assert!(!config.contains(PASSWORD), "the password is never stored");

    for _ in 0..2 {
        let out = kastell(
            &sandbox,
            home.path(),
            &[
                "--json", "backup", "create", &server, "--force", "--repo", "offsite",
            ],
        )
        .await;
        let results = ok(&out);
        assert_eq!(results["success"], true, "{results}");
        assert_eq!(results["repository"]["repository"], "offsite", "{results}");
    }

    let snapshots = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "repo", "snapshots", "offsite"],
    )
    .await);
    let snapshots = snapshots.as_array().unwrap();
    assert_eq!(snapshots.len(), 2);
    let local = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", &server],
    )
    .await);
    let local_ids: Vec<&str> = local["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap())
        .collect();
    assert_eq!(local_ids.len(), 2, "{local}");
    for snapshot in snapshots {
        assert_eq!(snapshot["host"], server.as_str());
        let tags: Vec<&str> = snapshot["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let backup = tags.iter().find_map(|t| t.strip_prefix("backup:")).unwrap();
        assert!(local_ids.contains(&backup), "{backup} not in {local_ids:?}");
        assert!(tags.contains(&"platform:bare"), "{tags:?}");
    }
    let first_added = snapshots[0]["added_bytes"].as_u64().unwrap();
    let second_added = snapshots[1]["added_bytes"].as_u64().unwrap();
    assert!(
        second_added < first_added,
        "an unchanged second backup added {second_added} (first {first_added})"
    );

    // Stock restic: the repository is intact, and an artifact restores to
    // the very bytes of the local backup's (decompressed) copy.
    let check = restic(&repo_dir, &["check", "--read-data"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let manifest_out = restic(&repo_dir, &["dump", "latest", "/manifest.json"]);
    assert!(manifest_out.status.success());
    let manifest: Value = serde_json::from_slice(&manifest_out.stdout).unwrap();
    let artifact = manifest["artifacts"][0].clone();
    let name = artifact["name"].as_str().unwrap();
    let restored = restic(&repo_dir, &["dump", "latest", &format!("/{name}")]);
    assert!(restored.status.success());
    let backup_id = manifest["timestamp"].as_str().unwrap();
    let local_dir = sandbox
        .store()
        .dir()
        .join("backups")
        .join(&server)
        .join(backup_id);
    let stored: Vec<_> = std::fs::read_dir(&local_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(name))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let local_bytes = if stored[0].extension().is_some_and(|e| e == "zst") {
        Command::new("zstd")
            .arg("-dc")
            .arg(&stored[0])
            .output()
            .unwrap()
            .stdout
    } else {
        std::fs::read(&stored[0]).unwrap()
    };
    assert!(!local_bytes.is_empty());
    assert!(
        restored.stdout == local_bytes,
        "restic's {name} differs from the local backup's"
    );

    // Prune: a dry run by default, naming why each snapshot stays or goes.
    let plan = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "repo", "prune", "offsite"],
    )
    .await);
    assert_eq!(plan["applied"], false);
    let decisions = plan["decisions"].as_array().unwrap();
    assert_eq!(
        decisions.iter().filter(|d| d["keep"] == false).count(),
        1,
        "{plan}"
    );
    assert!(
        decisions
            .iter()
            .all(|d| !d["reasons"].as_array().unwrap().is_empty()),
        "{plan}"
    );
    let still = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "repo", "snapshots", "offsite"],
    )
    .await);
    assert_eq!(
        still.as_array().unwrap().len(),
        2,
        "a dry run removes nothing"
    );

    let applied = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "repo", "prune", "offsite", "--apply", "--force"],
    )
    .await);
    assert_eq!(applied["applied"], true);
    let left = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "repo", "snapshots", "offsite"],
    )
    .await);
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["id"], snapshots[1]["id"], "the newest stays");
    let check = restic(&repo_dir, &["check", "--read-data"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "repo", "check", "offsite", "--read-data"],
    )
    .await;
    assert_eq!(ok(&out)["errors"], Value::Array(Vec::new()));

    // A wrong password and a password file others can read are refused,
    // and neither password shows up in what kastell prints.
    let wrong = dir.path().join("wrong.pw");
    write_password(&wrong, "not the passphrase", 0o600);
    let out = kastell(
        &sandbox,
        home.path(),
        &[
            "--json",
            "repo",
            "add",
            "again",
            repo_arg,
            "--password-file",
            wrong.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("password is wrong"), "{text}");
    assert!(!text.contains("not the passphrase"), "{text}");

    write_password(&password_file, PASSWORD, 0o644);
    let out = kastell(&sandbox, home.path(), &["repo", "snapshots", "offsite"]).await;
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("chmod 600"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    // An unknown repository fails before anything is backed up.
    let before = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", &server],
    )
    .await);
    let out = kastell(
        &sandbox,
        home.path(),
        &["backup", "create", &server, "--force", "--repo", "nowhere"],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no repository called"));
    let after = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", &server],
    )
    .await);
    assert_eq!(before, after);
}
