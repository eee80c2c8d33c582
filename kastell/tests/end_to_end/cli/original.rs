//! What a user of the original tool expects, through the real `kastell`
//! binary: its spellings (`kastell backup web-1`, `kastell restore web-1`,
//! `kastell snapshot web-1`) on a sandbox fleet, `backup list` of every
//! server, `backup cleanup` of orphaned directories, shell completions
//! that a shell accepts, manual pages `man` renders, and the server
//! picker in a real terminal (a pty from `script`).
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use serde_json::Value;

use crate::support;

fn both(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_ok(out: &Output) -> Value {
    assert!(out.status.success(), "{}", both(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(out)))
}

async fn two_server_sandbox(dir: &Path) -> Sandbox {
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: 2,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    Sandbox::start_with(&dir.join("state"), &plan)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_originals_spellings_list_and_cleanup_work_on_a_sandbox_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = two_server_sandbox(dir.path()).await;
    let [first, second] = sandbox.servers() else {
        panic!("two servers expected");
    };
    let (first, second) = (first.name.as_str(), second.name.as_str());
    let run = |args: Vec<&str>| {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let (sandbox, home) = (&sandbox, home.path());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            support::kastell_in(sandbox, home, &args).await
        }
    };

    // `kastell backup <server>`: a real backup of that server.
    let created = json_ok(&run(vec!["--json", "backup", second]).await);
    assert_eq!(created["success"], true, "{created}");
    assert_eq!(created["server"], second);
    let backup_id = created["backupId"].as_str().unwrap().to_owned();

    // `kastell backup list`, no server: every server's, in fleet order.
    let listed = json_ok(&run(vec!["--json", "backup", "list"]).await);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["server"], first);
    assert_eq!(listed[0]["backupCount"], 0);
    assert_eq!(listed[1]["server"], second);
    assert_eq!(listed[1]["backups"][0]["backupId"], backup_id.as_str());
    // In text, each server's listing under its own heading.
    let text = run(vec!["backup", "list"]).await;
    assert!(text.status.success(), "{}", both(&text));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    let (at_first, at_second) = (
        text.find(&format!("backup list on {first}")).unwrap(),
        text.find(&format!("backup list on {second}")).unwrap(),
    );
    assert!(at_first < at_second, "{text}");
    assert!(text[at_second..].contains(&backup_id), "{text}");

    // `status --all`: every server's status, concurrently, one table row
    // each saying whether SSH answered.
    let status = run(vec!["status", "--all"]).await;
    assert!(status.status.success(), "{}", both(&status));
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let rows: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with(first) || l.starts_with(second))
        .collect();
    assert_eq!(rows.len(), 2, "{status}");
    for row in rows {
        assert!(
            row.contains("ok") && row.contains("reachable over SSH"),
            "{status}"
        );
    }

    // `kastell restore <server> --backup <id>`: backup restore's plan.
    let plan = run(vec!["restore", second, "--backup", &backup_id, "--dry-run"]).await;
    assert!(plan.status.success(), "{}", both(&plan));
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("backup restore"), "{plan}");
    assert!(plan.contains(&backup_id), "{plan}");

    // `kastell snapshot <server>`: that server's snapshots.
    let snapshots = json_ok(&run(vec!["--json", "snapshot", first]).await);
    assert_eq!(snapshots["server"], first, "{snapshots}");
    assert!(snapshots["snapshots"].is_array(), "{snapshots}");

    // `backup cleanup`: a removed server's directory and a half-written
    // backup are listed with their sizes and left alone; with --force
    // they go, and the real backup stays and still verifies.
    let backups = sandbox.store().dir().join("backups");
    let ghost = backups.join("ghost-9/2025-01-01_00-00-00-000");
    std::fs::create_dir_all(&ghost).unwrap();
    std::fs::write(ghost.join("manifest.json"), "{}").unwrap();
    std::fs::write(ghost.join("db.dump.zst"), vec![0u8; 2048]).unwrap();
    let half = backups.join(second).join("2025-02-02_00-00-00-000");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("db.dump.zst"), vec![0u8; 512]).unwrap();

    let dry = json_ok(&run(vec!["--json", "backup", "cleanup"]).await);
    assert_eq!(dry["removed"], false);
    assert_eq!(dry["bytes"], 2048 + 2 + 512, "{dry}");
    let kinds: Vec<(&str, &str)> = dry["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["server"].as_str().unwrap(), o["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds.len(), 2, "{dry}");
    assert!(kinds.contains(&("ghost-9", "unknown_server")), "{dry}");
    assert!(kinds.contains(&(second, "half_written")), "{dry}");
    assert!(ghost.exists() && half.exists(), "a dry run removes nothing");

    let forced = json_ok(&run(vec!["--json", "backup", "cleanup", "--force"]).await);
    assert_eq!(forced["removed"], true);
    assert!(!backups.join("ghost-9").exists());
    assert!(!half.exists());
    let verified = run(vec!["--json", "backup", "verify", second]).await;
    assert!(verified.status.success(), "{}", both(&verified));
    let again = json_ok(&run(vec!["--json", "backup", "cleanup"]).await);
    assert_eq!(again["orphans"], serde_json::json!([]));
}

#[test]
fn every_shells_completion_is_generated_and_bashs_parses() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = support::kastell(home.path(), &["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", both(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("maintain"), "{shell}: {script}");
        assert!(script.contains("snapshot"), "{shell}");
    }
    let script = home.path().join("kastell.bash");
    let out = support::kastell(home.path(), &["completions", "bash"])
        .output()
        .unwrap();
    std::fs::write(&script, &out.stdout).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(checked.status.success(), "bash -n: {}", both(&checked));
    // An unknown shell is a usage error naming the shells.
    let out = support::kastell(home.path(), &["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn manual_pages_are_written_for_every_command_and_render() {
    let home = tempfile::tempdir().unwrap();
    let pages = home.path().join("man1");
    let out = support::kastell(
        home.path(),
        &["--json", "man", "--dir", pages.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let written = json_ok(&out);
    let names: Vec<String> = written["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            Path::new(p.as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "kastell.1",
        "kastell-backup-create.1",
        "kastell-backup-cleanup.1",
        "kastell-completions.1",
        "kastell-maintain.1",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    // The main page on stdout is the same roff.
    let main = support::kastell(home.path(), &["man"]).output().unwrap();
    assert!(main.status.success(), "{}", both(&main));
    assert_eq!(
        String::from_utf8_lossy(&main.stdout).trim_end(),
        std::fs::read_to_string(pages.join("kastell.1"))
            .unwrap()
            .trim_end()
    );
    // man renders it, when this machine has man.
    let Ok(rendered) = Command::new("man")
        .arg("-l")
        .arg(pages.join("kastell-backup-create.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    else {
        return;
    };
    assert!(rendered.status.success(), "{}", both(&rendered));
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("kastell-backup-create"), "{text}");
    assert!(text.contains("--dry-run"), "{text}");
}

/// Runs `kastell args` in a pseudo-terminal (`script`), with `home` as
/// its home and `KASTELL_DIR`; once the output shows `wait_for`, types
/// `keys`. Returns everything the terminal showed and the exit status.
fn in_terminal(home: &Path, args: &[&str], wait_for: &str, keys: &[u8]) -> (String, bool) {
    in_terminal_with(home, &[], args, wait_for, keys)
}

/// [`in_terminal`] with `env` added to the command's environment.
pub(crate) fn in_terminal_with(
    home: &Path,
    env: &[(String, String)],
    args: &[&str],
    wait_for: &str,
    keys: &[u8],
) -> (String, bool) {
    let line = std::iter::once(env!("CARGO_BIN_EXE_kastell"))
        .chain(args.iter().copied())
        .map(|a| shlex::try_quote(a).unwrap().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TERM", "xterm")
        .env("KASTELL_DIR", home.join("state"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen.lock().unwrap()).contains(wait_for) {
        assert!(
            Instant::now() < deadline,
            "no {wait_for:?} in: {}",
            String::from_utf8_lossy(&seen.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(keys).unwrap();
    stdin.flush().unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the command did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    (text, status.success())
}

#[test]
fn with_no_server_named_a_terminal_picks_one_and_a_pipe_is_refused() {
    let home = tempfile::tempdir().unwrap();
    for (name, ip) in [("alpha", "203.0.113.21"), ("beta", "203.0.113.22")] {
        // Offline: these addresses are documentation ones nobody answers.
        let args = [
            "server",
            "add",
            "--name",
            name,
            "--ip",
            ip,
            "--no-detect",
            "--platform",
            "bare",
        ];
        let out = support::kastell(home.path(), &args).output().unwrap();
        assert!(out.status.success(), "{}", both(&out));
    }
    // Down once, Enter: the second server. `backup verify` reads only the
    // local store: beta has no backups, and the error names it.
    let (shown, ok) = in_terminal(home.path(), &["backup", "verify"], "Which server?", b"j\r");
    assert!(!ok, "{shown}");
    assert!(shown.contains("alpha") && shown.contains("beta"), "{shown}");
    assert!(
        shown.contains("backups of server beta") || shown.contains("server beta"),
        "{shown}"
    );
    assert!(!shown.contains("server alpha"), "{shown}");
    // q cancels: nothing runs, exit 0.
    let (shown, ok) = in_terminal(home.path(), &["backup", "verify"], "Which server?", b"q");
    assert!(ok, "{shown}");
    assert!(shown.contains("Cancelled"), "{shown}");
    // Without a terminal nothing is asked: the error names the servers.
    let out = support::kastell(home.path(), &["backup", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Multiple servers found"), "{stderr}");
    assert!(!stderr.contains("Which server"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_new_lines_until_interrupted_and_docker_is_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = two_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();

    // --source docker: the Docker daemon's journal.
    let docker = json_ok(
        &support::kastell_in(
            &sandbox,
            home.path(),
            &[
                "--json", "logs", &server, "--source", "docker", "--lines", "3",
            ],
        )
        .await,
    );
    assert_eq!(docker["source"], "docker", "{docker}");
    assert_eq!(
        docker["command"], "journalctl -u docker -n '3' --no-pager 2>&1",
        "{docker}"
    );
    assert_eq!(docker["lines"].as_array().unwrap().len(), 3, "{docker}");

    // -f: the last lines, then new ones as they come, until Ctrl-C.
    let mut cmd = support::kastell(home.path(), &["logs", &server, "-f", "--lines", "2"]);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let mut buf = [0u8; 1024];
        while !text.contains("follow line 3") {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    });
    let text = tokio::time::timeout(Duration::from_secs(60), seen)
        .await
        .expect("followed lines arrive")
        .unwrap();
    assert!(text.contains("sandbox journal line 2"), "{text}");
    assert!(text.contains("follow line 1"), "{text}");
    assert!(text.contains("follow line 3"), "{text}");
    assert!(child.try_wait().unwrap().is_none(), "still following");
    let interrupted = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(!status.success(), "Ctrl-C ends it: {status:?}");

    // In a terminal: the lines and no spinner drawn over them; Ctrl-C
    // typed at the terminal ends it.
    let mut env: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    env.push((
        "KASTELL_DIR".to_owned(),
        sandbox.store().dir().display().to_string(),
    ));
    let (shown, ok) = tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        in_terminal_with(
            home.path(),
            &env,
            &["logs", &server, "-f", "--lines", "1"],
            "follow line 3",
            b"\x03",
        )
    })
    .await
    .unwrap();
    assert!(!ok, "{shown}");
    assert!(shown.contains("sandbox journal line 1"), "{shown}");
    assert!(!shown.contains("logs on "), "a spinner was drawn: {shown}");
}
