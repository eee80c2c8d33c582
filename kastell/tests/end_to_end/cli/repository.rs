//! `kastell repo` and `backup create --repo` through the `kastell` binary
//! on a sandbox server: the backup lands in a restic-format repository
//! that stock `restic` checks and restores from, a second unchanged backup
//! adds little, prune shows its plan before it removes anything, and a
//! wrong or exposed password is refused.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use kastell::surfaces::sandbox::Sandbox;
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
    // In text, newest first like `backup list`, times to the second (no
    // nanoseconds) with their age, sizes for people.
    let out = kastell(&sandbox, home.path(), &["repo", "snapshots", "offsite"]).await;
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "TIME", "AGE", "SERVER", "BACKUP", "SIZE", "ADDED"],
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    let id_of = |s: &Value| s["id"].as_str().unwrap()[..8].to_owned();
    assert!(
        rows[0].starts_with(&id_of(&snapshots[1])),
        "newest first: {text}"
    );
    assert!(rows[1].starts_with(&id_of(&snapshots[0])), "{text}");
    for row in &rows {
        let cells: Vec<&str> = row
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        // `2026-01-02 03:04:05`: no fraction, no offset.
        assert_eq!(cells[1].len(), 19, "{row}");
        assert!(!cells[1].contains('.') && !cells[1].contains('+'), "{row}");
        assert!(
            cells[2] == "just now" || cells[2].ends_with(" ago"),
            "{row}"
        );
        assert!(cells[5].ends_with('B'), "{row}");
    }

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
    // The removal was in the audit log before it ran, and how it ended
    // after.
    let log = ok(&kastell(&sandbox, home.path(), &["--json", "audit", "show"]).await);
    let prunes: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["op"] == "repo-prune")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(prunes, ["ok", "started"], "{log}");
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

/// The defect: a damaged pack printed rustic's 80-line report with
/// a backtrace and no kastell hint. Now a check and a read through the
/// repository (backup verify --repo) say in a line or two what is wrong
/// and where, with kastell's hint, even with RUST_BACKTRACE set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_pack_is_told_in_a_few_lines_with_kastells_hint_and_no_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();
    let repo_dir = dir.path().join("offsite");
    support::init_repo(&sandbox, home.path(), "offsite", &repo_dir, PASSWORD).await;
    ok(&kastell(
        &sandbox,
        home.path(),
        &[
            "--json", "backup", "create", &server, "--force", "--repo", "offsite",
        ],
    )
    .await);
    let mut packs: Vec<_> = std::fs::read_dir(repo_dir.join("data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    packs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let biggest = packs.pop().unwrap();
    let mut bytes = std::fs::read(&biggest).unwrap();
    for byte in &mut bytes[100..200] {
        *byte ^= 0xff;
    }
    let mut perms = std::fs::metadata(&biggest).unwrap().permissions();
    perms.set_mode(0o600);
    std::fs::set_permissions(&biggest, perms).unwrap();
    std::fs::write(&biggest, bytes).unwrap();
    let pack = biggest.file_name().unwrap().to_str().unwrap().to_owned();

    let run = |args: &[&str]| {
        let mut cmd = support::kastell(home.path(), args);
        cmd.env("KASTELL_DIR", sandbox.store().dir())
            .envs(sandbox.env_overlay())
            .env("RUST_BACKTRACE", "1");
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a damaged pack"
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let short = |text: &str| {
        assert!(text.lines().count() <= 6, "too long:\n{text}");
        let lower = text.to_lowercase();
        for noise in [
            "backtrace",
            "rustic_core`",
            "stack",
            " at /",
            "please report",
        ] {
            assert!(!lower.contains(noise), "{noise:?} in:\n{text}");
        }
    };
    let checked = run(&["repo", "check", "offsite", "--read-data"]);
    short(&checked);
    assert!(checked.contains(&pack[..8]), "which file: {checked}");
    assert!(checked.contains("restore from another"), "{checked}");
    let read = run(&["backup", "verify", &server, "--repo", "offsite"]);
    short(&read);
    assert!(read.contains(&pack[..8]), "which file: {read}");
    assert!(
        read.contains("hint:") && read.contains("kastell repo check offsite"),
        "{read}"
    );
}

/// `repo init` on a mistyped directory (its parent does not exist) is
/// refused and creates nothing; `--create-parents` creates it. A directory
/// on the kastell directory's filesystem is created with a warning that it
/// is not off-site.
#[test]
fn repo_init_refuses_a_missing_parent_and_warns_about_the_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("offsite.pw");
    write_password(&password_file, PASSWORD, 0o600);
    let pw = password_file.to_str().unwrap();
    let typo = dir.path().join("mnt/bakcups/offsite");
    let init = |name: &str, path: &Path, extra: &[&str]| {
        let mut args = vec![
            "repo",
            "init",
            name,
            path.to_str().unwrap(),
            "--password-file",
            pw,
        ];
        args.extend_from_slice(extra);
        support::kastell(dir.path(), &args).output().unwrap()
    };

    let out = init("offsite", &typo, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("--create-parents"), "{stderr}");
    assert!(!dir.path().join("mnt").exists(), "nothing was created");
    let listed = support::kastell(dir.path(), &["--json", "repo", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("offsite"),
        "nothing was registered"
    );

    let out = init("offsite", &typo, &["--create-parents"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(typo.join("config").is_file(), "a restic repository");
    assert!(
        stderr.contains("same filesystem as the kastell directory")
            && stderr.contains("not an off-site copy"),
        "{stderr}"
    );
}
