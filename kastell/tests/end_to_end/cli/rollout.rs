//! `maintain --all` as a rollout through the real `kastell` binary on a
//! sandbox fleet (the Hetzner simulator, each server its own fake host):
//! a failing canary touches no other server; the failure budget reached
//! mid-batch leaves the rest of that batch and the batches after it
//! untouched; a server outside its maintenance window is skipped, not
//! failed; a second process cannot drive a running rollout; and after a
//! SIGKILL mid-rollout, `rollout resume` finishes it without repeating a
//! server that finished, proven by every server's boot count at the
//! provider (one reboot each, never two).
//!
//! A server's failure is injected on its fake host: its package upgrade
//! fails as dpkg would (`run/kastell-fail-upgrade` in its root).
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Timelike;
use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;

use crate::support;

async fn sandbox(dir: &Path, servers: usize) -> Sandbox {
    support::hetzner_sandbox(dir, servers).await
}

async fn kastell(sandbox: &Sandbox, home: &Path, args: &[&str]) -> Output {
    support::kastell_in(sandbox, home, args).await
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The report of a rollout that `out` says stopped (exit 1), checking
/// that its stop reason says `why`.
fn stopped(out: &Output, why: &str) -> Value {
    assert_eq!(out.status.code(), Some(1));
    let report = json_of(out);
    let rollout = &report["rollout"];
    assert_eq!(rollout["state"], "stopped", "{report}");
    assert!(
        rollout["stopReason"].as_str().unwrap().contains(why),
        "{report}"
    );
    report
}

fn boots(sandbox: &Sandbox) -> Vec<u64> {
    sandbox
        .servers()
        .iter()
        .map(|s| sandbox.boots(s).unwrap())
        .collect()
}

fn break_upgrade(sandbox: &Sandbox, index: usize, broken: bool) {
    let server = &sandbox.servers()[index];
    let root = sandbox.hosts().root(server.address).unwrap();
    let flag = root.join("run/kastell-fail-upgrade");
    if broken {
        sandbox
            .hosts()
            .write(server.address, "run/kastell-fail-upgrade", "")
            .unwrap();
    } else {
        let _ = std::fs::remove_file(flag);
    }
}

/// Each server's status in the rollout's journal, in plan order.
fn statuses(rollout: &Value) -> Vec<(String, String)> {
    rollout["servers"]
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

fn names(sandbox: &Sandbox, range: std::ops::Range<usize>) -> Vec<String> {
    sandbox.servers()[range]
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_canary_touches_no_other_server_and_the_budget_stops_mid_batch() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = sandbox(dir.path(), 6).await;
    let all = names(&sandbox, 0..6);

    // The canary's upgrade fails: nothing else is touched.
    break_upgrade(&sandbox, 0, true);
    let before = boots(&sandbox);
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "maintain", "--all", "--force"],
    )
    .await;
    let report = stopped(&out, &format!("the canary {} failed", all[0]));
    let rollout = &report["rollout"];
    assert_eq!(rollout["untouched"], serde_json::json!(all[1..]));
    assert_eq!(report["results"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(boots(&sandbox), before, "no server rebooted");

    // Canary fine; the batch after it (4 servers, one at a time) has two
    // broken servers, and the budget is 2: the rest of the batch and the
    // last batch are never touched.
    break_upgrade(&sandbox, 0, false);
    break_upgrade(&sandbox, 2, true);
    break_upgrade(&sandbox, 3, true);
    let before = boots(&sandbox);
    let out = kastell(
        &sandbox,
        home.path(),
        &[
            "--json",
            "maintain",
            "--all",
            "--force",
            "--batch",
            "4",
            "--concurrency",
            "1",
            "--max-failures",
            "2",
        ],
    )
    .await;
    let report = stopped(&out, "reached the failure budget of 2");
    let rollout = &report["rollout"];
    let expected: Vec<(String, String)> = all
        .iter()
        .cloned()
        .zip(["done", "done", "failed", "failed", "untouched", "untouched"].map(String::from))
        .collect();
    assert_eq!(statuses(rollout), expected);
    let after = boots(&sandbox);
    for i in 0..6 {
        let rebooted = usize::from(i < 2);
        assert_eq!(after[i], before[i] + rebooted as u64, "{}", all[i]);
    }
    // The journal says the same after the process is gone.
    let id = rollout["id"].as_str().unwrap();
    let status =
        json_of(&kastell(&sandbox, home.path(), &["--json", "rollout", "status", id]).await);
    assert_eq!(statuses(&status["rollout"]), expected);
    let text = kastell(&sandbox, home.path(), &["rollout", "status", id]).await;
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("Not touched: {}, {}", all[4], all[5])),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outside_its_window_is_skipped_and_a_dry_run_prints_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = sandbox(dir.path(), 4).await;
    let all = names(&sandbox, 0..4);

    let out = kastell(
        &sandbox,
        home.path(),
        &["maintain", "--all", "--dry-run", "--batch", "50%"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        format!("  canary: {}", all[0]),
        format!("  batch 1/2: {}, {}", all[1], all[2]),
        format!("  batch 2/2: {}", all[3]),
    ] {
        assert!(text.contains(&line), "{line:?} in {text}");
    }

    // A window that opened twelve hours from now: closed.
    let hour = (chrono::Utc::now().hour() + 12) % 24;
    let safety = serde_json::json!({
        "servers": { all[2].clone(): { "windows": [format!("daily {hour:02}:00-{hour:02}:30")] } }
    });
    std::fs::write(
        sandbox.store().dir().join("safety.json"),
        serde_json::to_vec(&safety).unwrap(),
    )
    .unwrap();
    let before = boots(&sandbox);
    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "maintain", "--all", "--force", "--batch", "50%"],
    )
    .await;
    let report = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let rollout = &report["rollout"];
    assert_eq!(rollout["state"], "finished", "{report}");
    let skipped = &rollout["servers"][2];
    assert_eq!(skipped["status"], "skipped", "{report}");
    assert!(
        skipped["detail"]
            .as_str()
            .unwrap()
            .contains("outside its maintenance window"),
        "{report}"
    );
    let after = boots(&sandbox);
    for i in 0..4 {
        let rebooted = u64::from(i != 2);
        assert_eq!(after[i], before[i] + rebooted, "{}", all[i]);
    }
}

/// The journal of the only rollout in `dir`, once there is one.
fn journal(dir: &Path) -> Option<Value> {
    let entries = std::fs::read_dir(dir.join("rollouts")).ok()?;
    let path: PathBuf = entries
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))?;
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn count(journal: &Value, status: &str) -> usize {
    journal["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == status)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_driver_is_refused_and_a_killed_rollout_resumes_without_repeating_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = sandbox(dir.path(), 4).await;
    let state = sandbox.store().dir().to_path_buf();
    // Each upgrade takes a second, so the rollout can be caught mid-way.
    sandbox.hosts().set_state("upgrade-delay", "1").unwrap();
    let before = boots(&sandbox);

    let mut cmd = support::kastell(
        home.path(),
        &[
            "maintain",
            "--all",
            "--force",
            "--batch",
            "1",
            "--concurrency",
            "1",
        ],
    );
    cmd.env("KASTELL_DIR", &state)
        .envs(sandbox.env_overlay())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();

    // Wait until one server finished after the canary and the next is in
    // flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    let id = loop {
        assert!(Instant::now() < deadline, "the rollout never got going");
        if let Some(j) = journal(&state)
            && count(&j, "done") >= 2
            && count(&j, "in-flight") == 1
        {
            break j["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // A second process cannot drive it, and says who does.
    let out = kastell(
        &sandbox,
        home.path(),
        &["rollout", "resume", &id, "--force"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("two processes cannot drive one rollout"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("maintain --all (pid {pid})")),
        "{stderr}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let killed = journal(&state).unwrap();
    let finished: Vec<String> = killed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "done")
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(finished.len() >= 2 && finished.len() < 4, "{killed}");

    let status =
        json_of(&kastell(&sandbox, home.path(), &["--json", "rollout", "status", &id]).await);
    let shown = status["rollout"]["shownState"].as_str().unwrap();
    assert!(
        shown == "interrupted (resumable)" || shown == "finished",
        "{status}"
    );

    let out = kastell(
        &sandbox,
        home.path(),
        &["--json", "rollout", "resume", &id, "--force"],
    )
    .await;
    let report = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["rollout"]["state"], "finished", "{report}");
    assert_eq!(count(&report["rollout"], "done"), 4, "{report}");
    // The servers that finished before the kill were not run again.
    let rerun: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["server"].as_str())
        .collect();
    for name in &finished {
        assert!(!rerun.contains(&name.as_str()), "{name} repeated: {report}");
    }
    // Every server rebooted exactly once over the whole rollout.
    let after = boots(&sandbox);
    for (i, server) in sandbox.servers().iter().enumerate() {
        assert_eq!(after[i], before[i] + 1, "{} rebooted once", server.name);
    }
}
