//! Maintenance backs the platform up before its update, through the real
//! `kastell` binary on the sandbox (a real sshd and fake host, the Hetzner
//! simulator): the backup is taken under the server lock maintain holds,
//! shown in the plan, named in the result and listed afterwards; a backup
//! that fails stops the run before the snapshot and the update (nothing
//! upgraded, rebooted or listed); `--no-backup` skips it.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

async fn kastell(sandbox: &Sandbox, home: &Path, args: &[&str]) -> std::process::Output {
    support::kastell_in(sandbox, home, args).await
}

/// The JSON of a run that exited with `code`.
fn json_with(out: &std::process::Output, code: i32) -> Value {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Each step's name and status.
fn steps(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn detail<'a>(report: &'a Value, step: &str) -> &'a str {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .and_then(|s| s["detail"].as_str().or(s["error"].as_str()))
        .unwrap_or_else(|| panic!("no {step} in {report}"))
}

/// The ids of the server's listed backups.
async fn listed(sandbox: &Sandbox, home: &Path, name: &str) -> Vec<String> {
    let out = kastell(sandbox, home, &["--json", "backup", "list", name]).await;
    support::ok_json(&out)["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap().to_owned())
        .collect()
}

/// How many package upgrade commands (simulated or real) the fake hosts
/// ran.
fn upgrades(sandbox: &Sandbox) -> usize {
    sandbox
        .hosts()
        .log()
        .iter()
        .filter(|l| l.starts_with("apt-get") && l.contains(" upgrade"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_backs_up_first_a_failed_backup_stops_before_the_update_and_no_backup_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.clone();

    // The plan says so.
    let out = kastell(&sandbox, home.path(), &["maintain", "--dry-run", &name]).await;
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("Backup: ") && plan.contains("a failure stops here, before the update"),
        "{plan}"
    );

    // By default: the backup first, named in the result and listed after.
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "maintain", "--force", &name],
    )
    .await;
    let report = json_with(&out, 0);
    let id = report["backupId"].as_str().unwrap().to_owned();
    let names: Vec<String> = steps(&report).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names[..3],
        ["Backup", "Snapshot", "Status Check"],
        "{report}"
    );
    assert_eq!(steps(&report)[0].1, "success", "{report}");
    assert!(detail(&report, "Backup").contains(&id), "{report}");
    assert_eq!(
        listed(&sandbox, home.path(), &name).await,
        std::slice::from_ref(&id)
    );
    let upgraded = upgrades(&sandbox);
    assert!(upgraded > 0, "{:?}", sandbox.hosts().log());

    // A backup that cannot be taken (none of the backup paths is left on
    // the server) stops the run before the snapshot and the update.
    let root = sandbox.hosts().root(server.address).unwrap();
    std::fs::remove_dir_all(root.join("etc")).unwrap();
    let boots = sandbox.boots(&server).unwrap();
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "maintain", "--force", &name],
    )
    .await;
    let report = json_with(&out, 1);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .starts_with("Maintenance failed at Backup"),
        "{report}"
    );
    assert!(
        detail(&report, "Backup").contains("none of the backup paths exist"),
        "{report}"
    );
    for (step, status) in &steps(&report)[1..] {
        assert_eq!(status, "skipped", "{step} in {report}");
    }
    assert_eq!(
        upgrades(&sandbox),
        upgraded,
        "no upgrade after the failed backup"
    );
    assert_eq!(sandbox.boots(&server).unwrap(), boots, "no reboot");
    assert_eq!(
        listed(&sandbox, home.path(), &name).await,
        std::slice::from_ref(&id),
        "nothing half-written is listed"
    );

    // --no-backup: skipped, saying so, and the update runs.
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "maintain", "--force", "--no-backup", &name],
    )
    .await;
    let report = json_with(&out, 0);
    assert_eq!(steps(&report)[0], ("Backup".into(), "skipped".into()));
    assert!(
        detail(&report, "Backup").contains("--no-backup"),
        "{report}"
    );
    assert!(report.get("backupId").is_none(), "{report}");
    assert!(upgrades(&sandbox) > upgraded, "the update ran");
}
