//! Each safety copy a restore can take first (`--safety`), through the
//! `kastell` binary on a sandbox server at the Hetzner simulator: a
//! provider snapshot that exists afterwards and is named in the result,
//! a safety backup the repository gains as a snapshot, a local one, and
//! none (refused where safety levels are configured unless `safety.json`
//! allows it). A refused choice or a failed safety step leaves the server
//! as it was.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::path::Path;
use std::process::Output;

use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

const PASSWORD: &str = "the safety passphrase, long enough";

async fn kastell(sandbox: &Sandbox, home: &Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

fn ok(out: &Output) -> Value {
    support::ok_json(out)
}

/// The run failed; its stdout and stderr together.
fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "it succeeded");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn backup_ids(list: &Value) -> Vec<String> {
    list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_safety_choice_on_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.as_str();
    let crontab = sandbox
        .hosts()
        .root(server.address)
        .unwrap()
        .join("etc/crontab");
    let change = |text: &str| {
        sandbox
            .hosts()
            .write(server.address, "etc/crontab", text)
            .unwrap();
    };
    let read = || std::fs::read_to_string(&crontab).unwrap();
    change("# backed up\n");
    let created = ok(&kastell(&sandbox, home.path(), &["--json", "backup", "create", name]).await);
    let backup = created["backupId"].as_str().unwrap().to_owned();
    let restore = |safety: &'static str| {
        let backup = backup.clone();
        let home = home.path().to_owned();
        let sandbox = &sandbox;
        async move {
            kastell(
                sandbox,
                &home,
                &[
                    "--json", "backup", "restore", name, "--backup", &backup, "--force",
                    "--safety", safety,
                ],
            )
            .await
        }
    };
    let locals = || async {
        backup_ids(&ok(&kastell(
            &sandbox,
            home.path(),
            &["--json", "backup", "list", name],
        )
        .await))
    };

    // The plan names the copy and what it costs.
    let plan = kastell(
        &sandbox,
        home.path(),
        &[
            "backup",
            "restore",
            name,
            "--dry-run",
            "--safety",
            "snapshot",
        ],
    )
    .await;
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.contains("Safety copy: provider snapshot of") && plan.contains("billed monthly"),
        "{plan}"
    );

    // local: a full local safety backup of the changed state.
    change("# changed before local\n");
    let local = ok(&restore("local").await);
    assert_eq!(local["safety"]["kind"], "local", "{local}");
    let safety_id = local["safetyBackupId"].as_str().unwrap().to_owned();
    assert_eq!(local["safety"]["id"], safety_id.as_str());
    assert!(
        local["safety"]["restoreWith"]
            .as_str()
            .unwrap()
            .contains(&format!("--backup {safety_id}")),
        "{local}"
    );
    assert_eq!(read(), "# backed up\n");
    assert!(locals().await.contains(&safety_id));

    // snapshot: awaited at the provider, which has it afterwards.
    change("# changed before snapshot\n");
    let before = locals().await;
    let snap = ok(&restore("snapshot").await);
    assert_eq!(snap["safety"]["kind"], "snapshot", "{snap}");
    let snapshot_id = snap["safety"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        snap["safety"]["restoreWith"],
        format!("kastell snapshot restore {name} --snapshot {snapshot_id}").as_str()
    );
    assert!(snap.get("safetyBackupId").is_none(), "{snap}");
    assert_eq!(read(), "# backed up\n");
    assert_eq!(locals().await, before, "no local copy");
    let listed = ok(&kastell(&sandbox, home.path(), &["--json", "snapshot", "list", name]).await);
    let at_provider = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == snapshot_id.as_str())
        .unwrap_or_else(|| panic!("{snapshot_id} not listed: {listed}"));
    assert_eq!(at_provider["status"], "available", "{listed}");
    assert!(
        at_provider["name"]
            .as_str()
            .unwrap()
            .contains("kastell-safety-"),
        "{listed}"
    );

    // repo without a repository: refused before anything runs.
    change("# changed before repo\n");
    let text = failed(&restore("repo").await);
    assert!(text.contains("--safety repo needs a repository"), "{text}");
    assert_eq!(read(), "# changed before repo\n");

    // repo: the safety backup is pushed; the repository gains a snapshot
    // marked as the safety backup of this restore.
    let repo_dir = dir.path().join("offsite");
    support::init_repo(&sandbox, home.path(), "offsite", &repo_dir, PASSWORD).await;
    ok(&kastell(
        &sandbox,
        home.path(),
        &["repo", "default", "offsite", "--server", name],
    )
    .await);
    let repo = ok(&restore("repo").await);
    assert_eq!(repo["safety"]["kind"], "repo", "{repo}");
    assert_eq!(repo["safety"]["repository"], "offsite", "{repo}");
    let repo_snapshot = repo["safety"]["id"].as_str().unwrap().to_owned();
    assert_eq!(repo_snapshot.len(), 64, "{repo}");
    let pushed = repo["safetyBackupId"].as_str().unwrap().to_owned();
    assert_eq!(read(), "# backed up\n");
    let in_repo = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", name, "--repo", "offsite"],
    )
    .await);
    assert_eq!(backup_ids(&in_repo), vec![pushed.clone()], "{in_repo}");
    assert_eq!(in_repo["backups"][0]["snapshotId"], repo_snapshot.as_str());
    assert_eq!(in_repo["backups"][0]["safetyFor"], backup.as_str());

    // auto with a default repository: the same, incrementally.
    change("# changed before auto\n");
    let auto = ok(&restore("auto").await);
    assert_eq!(auto["safety"]["kind"], "repo", "{auto}");
    assert_eq!(read(), "# backed up\n");
    let in_repo = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "list", name, "--repo", "offsite"],
    )
    .await);
    assert_eq!(backup_ids(&in_repo).len(), 2, "{in_repo}");

    // A failed safety step stops the restore before anything changes: the
    // repository is gone, the local safety backup is kept and said so.
    std::fs::remove_dir_all(&repo_dir).unwrap();
    change("# changed before a failed push\n");
    let text = failed(&restore("repo").await);
    assert!(
        text.contains("storing it in repository offsite failed"),
        "{text}"
    );
    assert!(text.contains("Nothing was changed on the server"), "{text}");
    assert!(!text.contains("Send and restore"), "{text}");
    assert_eq!(read(), "# changed before a failed push\n");

    // none: no copy at all.
    let count = locals().await.len();
    let none = ok(&restore("none").await);
    assert_eq!(none["safety"]["kind"], "none", "{none}");
    assert!(none.get("safetyBackupId").is_none(), "{none}");
    assert_eq!(read(), "# backed up\n");
    assert_eq!(locals().await.len(), count, "no safety backup");

    // With safety levels configured, none is refused and nothing changes...
    let state = sandbox.store().dir().to_owned();
    support::write_safety(&state, &serde_json::json!({"level": "destructive"}));
    change("# changed before a refused none\n");
    let text = failed(&restore("none").await);
    assert!(text.contains("--safety none"), "{text}");
    assert_eq!(read(), "# changed before a refused none\n");

    // ... unless safety.json allows it.
    support::write_safety(
        &state,
        &serde_json::json!({"level": "destructive", "restore_without_safety_copy": true}),
    );
    let allowed = ok(&restore("none").await);
    assert_eq!(allowed["safety"]["kind"], "none", "{allowed}");
    assert_eq!(read(), "# backed up\n");
}
