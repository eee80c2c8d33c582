//! The real `kastell` binary against a temporary KASTELL_DIR.

// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support;
use support::kastell;

fn run(dir: &Path, args: &[&str]) -> Output {
    kastell(dir, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn servers_file(dir: &Path) -> Value {
    let bytes = std::fs::read(dir.join("state/servers.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn two_concurrent_processes_lose_no_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let workers: Vec<_> = [("a", "198.51.100"), ("b", "203.0.113")]
        .into_iter()
        .map(|(tag, net)| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 1..=50 {
                    let name = format!("srv-{tag}-{i}");
                    let ip = format!("{net}.{i}");
                    let out = run(
                        &dir,
                        &[
                            "server",
                            "add",
                            "--name",
                            &name,
                            "--ip",
                            &ip,
                            "--platform",
                            "coolify",
                        ],
                    );
                    assert!(
                        out.status.success(),
                        "{name}: {}{}",
                        text(&out.stdout),
                        text(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let file = servers_file(&dir);
    let records = file.as_array().unwrap();
    assert_eq!(records.len(), 100);
    let mut names: Vec<&str> = records
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 100);
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "manual ids stay unique under contention");
    // No lock or temp file is left behind.
    // (The audit log of the 100 additions stays, and must be intact.)
    let mut left: Vec<String> = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("audit."))
        .collect();
    let audit = kastell::state::audit::AuditLog::in_dir(&dir.join("state"))
        .verify()
        .unwrap();
    assert!(audit.ok, "{audit:?}");
    assert_eq!(audit.entries_checked, 100);
    left.sort();
    assert_eq!(left, vec!["servers.json"]);

    let listed = run(&dir, &["server", "list", "--json"]);
    assert!(listed.status.success());
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 100);
}

#[test]
fn add_then_list_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run(
        dir,
        &[
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            "203.0.113.10",
            "--provider",
            "hetzner",
            "--platform",
            "dokploy",
            "--user",
            "deploy",
            "--port",
            "2222",
            "--backup-path",
            "/etc/nginx",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Added server web-1"));

    let out = run(dir, &["server", "list", "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rec = &list[0];
    assert_eq!(rec["name"], "web-1");
    assert_eq!(rec["ip"], "203.0.113.10");
    assert_eq!(rec["provider"], "hetzner");
    assert_eq!(rec["mode"], "coolify");
    assert_eq!(rec["platform"], "dokploy");
    assert_eq!(rec["region"], "unknown");
    assert_eq!(rec["ssh"]["user"], "deploy");
    assert_eq!(rec["ssh"]["port"], 2222);
    assert_eq!(rec["backupPaths"][0], "/etc/nginx");
    assert!(rec["id"].as_str().unwrap().starts_with("manual-"));
    let created = rec["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");

    let out = run(dir, &["server", "list"]);
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("web-1") && table.contains("dokploy"));
}

#[test]
fn duplicate_name_exits_1_with_the_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        run(
            dir,
            &[
                "server",
                "add",
                "--name",
                "web-1",
                "--ip",
                "203.0.113.10",
                "--platform",
                "coolify"
            ]
        )
        .status
        .success()
    );
    let out = run(
        dir,
        &[
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            "203.0.113.11",
            "--platform",
            "coolify",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: Server already exists: name \"web-1\""),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");

    let out = run(
        dir,
        &[
            "--json",
            "server",
            "add",
            "--name",
            "web-2",
            "--ip",
            "203.0.113.10",
            "--platform",
            "coolify",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"], "Server already exists: IP 203.0.113.10");
    assert_eq!(err["kind"], "already_exists");
    assert!(err["hint"].as_str().unwrap().contains("web-1"));
    assert_eq!(servers_file(dir).as_array().unwrap().len(), 1);
}

#[test]
fn remove_without_force_off_a_terminal_exits_1_and_removes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        run(
            dir,
            &[
                "server",
                "add",
                "--name",
                "web-1",
                "--ip",
                "203.0.113.10",
                "--platform",
                "coolify"
            ]
        )
        .status
        .success()
    );
    let before = std::fs::read(dir.join("state/servers.json")).unwrap();
    let out = run(dir, &["server", "remove", "web-1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.join("state/servers.json")).unwrap(),
        before
    );

    let out = run(
        dir,
        &["server", "remove", "203.0.113.10", "--force", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let removed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(removed["removed"]["name"], "web-1");
    assert_eq!(servers_file(dir), serde_json::json!([]));
}

#[test]
fn safe_mode_blocks_removal_and_logs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    assert!(
        run(
            dir,
            &[
                "server",
                "add",
                "--name",
                "web-1",
                "--ip",
                "203.0.113.10",
                "--platform",
                "coolify"
            ]
        )
        .status
        .success()
    );
    let out = kastell(dir, &["server", "remove", "web-1", "--force"])
        .env("KASTELL_SAFE_MODE", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Server removal is disabled in SAFE_MODE"));
    let log = std::fs::read_to_string(dir.join("state/security.log")).unwrap();
    let event: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(event["action"], "server-remove");
    assert_eq!(event["surface"], "cli");
    assert_eq!(servers_file(dir).as_array().unwrap().len(), 1);
}

#[test]
fn unknown_servers_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = run(dir, &["server", "remove", "ghost-1", "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Server not found: ghost-1"));
    let out = run(dir, &["server", "add", "--name", "web-1"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        dir,
        &[
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            "127.0.0.1",
            "--platform",
            "coolify",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let out = kastell(
        dir,
        &[
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            "127.0.0.1",
            "--platform",
            "coolify",
        ],
    )
    .env("KASTELL_ALLOW_PRIVATE_IPS", "true")
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A number of dump jobs out of range is a usage error that says what
    // is allowed, before anything connects.
    for bad in ["0", "17", "many"] {
        let out = run(dir, &["backup", "create", "web-1", "--jobs", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = text(&out.stderr);
        assert!(err.contains("--jobs"), "{err}");
        assert!(err.contains("from 1 (one stream) to 16"), "{err}");
    }
}

#[test]
fn a_corrupt_store_is_reported_not_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/servers.json"), "{not json").unwrap();
    let out = run(
        dir,
        &[
            "server",
            "add",
            "--name",
            "web-1",
            "--ip",
            "203.0.113.10",
            "--platform",
            "coolify",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("servers.json corrupt"), "{stderr}");
    assert!(stderr.contains("hint: Check"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("state/servers.json")).unwrap(),
        "{not json"
    );
}
