//! Safety levels on the command line, through the real `kastell` binary
//! on a sandbox server tagged `prod`: the level x operation matrix (what
//! `--dry-run` says the policy allows; a read, which has no plan, runs),
//! maintenance windows, the `KASTELL_SAFETY_LEVEL` ceiling, SAFE_MODE
//! keeping its meaning beside them, and every run landing in an intact
//! audit log.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use chrono::Datelike;
use kastell::surfaces::sandbox::Sandbox;
use serde_json::{Value, json};

use crate::support;

async fn kastell(sandbox: &Sandbox, home: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut cmd = support::kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Whether `--dry-run` says `command` may run on the server, and why not.
async fn dry_run(
    sandbox: &Sandbox,
    home: &Path,
    env: &[(&str, &str)],
    command: &[&str],
) -> (bool, String) {
    let name = sandbox.servers()[0].name.clone();
    let mut args: Vec<&str> = command.to_vec();
    args.extend([name.as_str(), "--dry-run", "--json"]);
    let plan = kastell(sandbox, home, env, &args).await;
    let server = &plan["servers"][0];
    (
        server["allowed"].as_bool().unwrap(),
        server["refused"].as_str().unwrap_or("").to_owned(),
    )
}

/// What the read `command` gives on the server, run for real (a read has
/// nothing to plan: no `--dry-run`).
async fn read(sandbox: &Sandbox, home: &Path, command: &[&str]) -> Value {
    let name = sandbox.servers()[0].name.clone();
    let mut args: Vec<&str> = command.to_vec();
    args.extend([name.as_str(), "--json"]);
    kastell(sandbox, home, &[], &args).await
}

fn write_safety(sandbox: &Sandbox, value: &Value) {
    support::write_safety(sandbox.store().dir(), value);
}

const OPERATIONS: [(&[&str], usize); 4] = [
    (&["status"], 0),
    (&["backup", "create"], 1),
    (&["update"], 2),
    (&["backup", "restore"], 3),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_allows_exactly_its_operations_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (sandbox, name) = support::prod_sandbox(dir.path()).await;
    let no_env: &[(&str, &str)] = &[];

    let levels = ["read-only", "safe-writes", "disruptive", "destructive"];
    for (rank, level) in levels.iter().enumerate() {
        write_safety(&sandbox, &json!({"tags": {"prod": {"level": level}}}));
        for (command, needs) in OPERATIONS {
            if needs == 0 {
                // A read has no --dry-run: it runs, at every level.
                let read = read(&sandbox, home.path(), command).await;
                assert_eq!(read["success"], true, "{level} {command:?}: {read}");
                continue;
            }
            let (allowed, why) = dry_run(&sandbox, home.path(), no_env, command).await;
            assert_eq!(allowed, needs <= rank, "{level} {command:?}: {why}");
            if !allowed {
                assert!(
                    why.contains(&format!("needs safety level {}", levels[needs]))
                        && why.contains(&format!(
                            "the level on {name} is {level} (tag prod in safety.json)"
                        )),
                    "{level} {command:?}: {why}"
                );
            }
        }
    }

    // The variable caps the file; SAFE_MODE=true keeps its own refusals.
    let (allowed, why) = dry_run(
        &sandbox,
        home.path(),
        &[("KASTELL_SAFETY_LEVEL", "read-only")],
        &["backup", "create"],
    )
    .await;
    assert!(!allowed && why.contains("(KASTELL_SAFETY_LEVEL)"), "{why}");
    let (allowed, why) = dry_run(
        &sandbox,
        home.path(),
        &[("KASTELL_SAFE_MODE", "true")],
        &["update"],
    )
    .await;
    assert!(!allowed, "{why}");
    assert!(why.starts_with("Update is disabled in SAFE_MODE"), "{why}");

    // Windows: disruptive work only inside one.
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let today = chrono::Utc::now().weekday().num_days_from_monday() as usize;
    let others: Vec<&str> = (1..7).map(|d| days[(today + d) % 7]).collect();
    let closed = format!("{} 00:00-24:00", others.join(","));
    write_safety(
        &sandbox,
        &json!({"level": "destructive", "tags": {"prod": {"windows": [closed]}}}),
    );
    let (allowed, why) = dry_run(&sandbox, home.path(), no_env, &["update"]).await;
    assert!(
        !allowed && why.contains("only inside its maintenance window"),
        "{why}"
    );
    assert!(why.contains("the next opens at"), "{why}");
    let (allowed, why) = dry_run(&sandbox, home.path(), no_env, &["backup", "create"]).await;
    assert!(allowed, "a backup is not gated by windows: {why}");
    let open = format!("{} 00:00-24:00", days[today]);
    write_safety(
        &sandbox,
        &json!({"level": "destructive", "tags": {"prod": {"windows": [open]}}}),
    );
    let (allowed, why) = dry_run(&sandbox, home.path(), no_env, &["update"]).await;
    assert!(allowed, "{why}");

    // A broken file refuses everything but reads, saying where.
    std::fs::write(sandbox.store().dir().join("safety.json"), "{\"level\": ").unwrap();
    let (allowed, why) = dry_run(&sandbox, home.path(), no_env, &["backup", "create"]).await;
    assert!(
        !allowed && why.contains("safety.json is not valid"),
        "{why}"
    );
    let status = read(&sandbox, home.path(), &["status"]).await;
    assert_eq!(status["success"], true, "{status}");

    // Real runs are audited, refusals naming the server.
    write_safety(&sandbox, &json!({"tags": {"prod": {"level": "read-only"}}}));
    let refused = support::kastell_in(
        &sandbox,
        home.path(),
        &["backup", "create", &name, "--json"],
    )
    .await;
    assert!(!refused.status.success());
    let shown = kastell(
        &sandbox,
        home.path(),
        no_env,
        &["audit", "show", "--json", "--limit", "1"],
    )
    .await;
    let entry = &shown["entries"][0];
    assert_eq!(entry["op"], "backup-create", "{shown}");
    assert_eq!(entry["outcome"], "refused", "{shown}");
    assert_eq!(entry["surface"], "cli", "{shown}");
    assert_eq!(entry["server"], name.as_str(), "{shown}");
    assert!(
        entry["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs safety level safe-writes"),
        "{shown}"
    );
    // Pruning deletes backups: destructive, refused at this level too.
    let pruned = support::kastell_in(
        &sandbox,
        home.path(),
        &[
            "backup",
            "prune",
            &name,
            "--keep-last",
            "1",
            "--apply",
            "--force",
        ],
    )
    .await;
    assert!(!pruned.status.success());
    let said = String::from_utf8_lossy(&pruned.stderr);
    assert!(
        said.contains("backup-prune is destructive work and needs safety level destructive"),
        "{said}"
    );
    let verified = kastell(
        &sandbox,
        home.path(),
        no_env,
        &["audit", "verify", "--json"],
    )
    .await;
    assert_eq!(verified["ok"], true, "{verified}");
}
