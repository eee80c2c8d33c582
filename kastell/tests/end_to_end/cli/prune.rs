//! `kastell backup prune` through the binary on a sandbox server: a dry
//! run by default that names why each backup stays or goes, the newest
//! drilled backup kept whatever the rules say, removal only with --apply
//! (and --force off a terminal), and a policy saved per server.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::process::Output;

use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

fn ok(out: &Output) -> Value {
    support::ok_json(out)
}

async fn kastell(sandbox: &Sandbox, home: &std::path::Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

fn decision<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan[0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {plan}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_keeps_the_newest_proven_backup_and_removes_only_when_applied() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let name = sandbox.servers()[0].name.clone();

    let mut ids = Vec::new();
    for _ in 0..3 {
        let created = ok(&kastell(
            &sandbox,
            home.path(),
            &["--json", "backup", "create", &name, "--force"],
        )
        .await);
        ids.push(created["backupId"].as_str().unwrap().to_owned());
    }
    let (oldest, middle, newest) = (&ids[0], &ids[1], &ids[2]);
    ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "drill", &name, "--backup", oldest],
    )
    .await);

    let dry = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "prune", &name, "--keep-last", "1"],
    )
    .await);
    assert_eq!(dry[0]["applied"], false, "{dry}");
    assert_eq!(decision(&dry, newest)["keep"], true);
    assert_eq!(
        decision(&dry, oldest)["keep"],
        true,
        "the drilled backup stays: {dry}"
    );
    assert!(
        decision(&dry, oldest)["reasons"]
            .to_string()
            .contains("newest verified backup")
    );
    assert_eq!(decision(&dry, middle)["keep"], false);
    assert_eq!(decision(&dry, middle)["reasons"][0], "no rule keeps it");
    let listed = ok(&kastell(&sandbox, home.path(), &["--json", "backup", "list", &name]).await);
    assert_eq!(listed["backupCount"], 3, "a dry run removes nothing");

    // No rules and none saved: refused, saying how to give some.
    let none = kastell(&sandbox, home.path(), &["backup", "prune", &name]).await;
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no retention policy"));

    // Off a terminal --apply needs --force; nothing goes without it.
    let unforced = kastell(
        &sandbox,
        home.path(),
        &["backup", "prune", &name, "--keep-last", "1", "--apply"],
    )
    .await;
    assert!(!unforced.status.success());
    assert!(String::from_utf8_lossy(&unforced.stderr).contains("--force"));
    assert_eq!(
        ok(&kastell(&sandbox, home.path(), &["--json", "backup", "list", &name]).await)["backupCount"],
        3
    );

    // Saved, then applied from the saved policy.
    ok(&kastell(
        &sandbox,
        home.path(),
        &[
            "--json",
            "backup",
            "prune",
            &name,
            "--keep-last",
            "1",
            "--save",
        ],
    )
    .await);
    let applied = ok(&kastell(
        &sandbox,
        home.path(),
        &["--json", "backup", "prune", &name, "--apply", "--force"],
    )
    .await);
    assert_eq!(applied[0]["applied"], true, "{applied}");
    assert_eq!(applied[0]["policy"]["keep-last"], 1, "{applied}");
    let left: Vec<String> =
        ok(&kastell(&sandbox, home.path(), &["--json", "backup", "list", &name]).await)["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["backupId"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(left, vec![newest.clone(), oldest.clone()]);
    let text = kastell(&sandbox, home.path(), &["backup", "prune", &name]).await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("Nothing to remove."), "{text}");
}
