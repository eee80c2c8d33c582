//! `kastell sandbox` for the command line: the `export` lines it prints
//! drive real `kastell` commands from another process until it is
//! stopped, after which nothing is left; `--shell` runs a command with that
//! environment and passes its exit status on, leaves Ctrl-C to it and
//! stops with it on SIGTERM; and as root under a private
//! `TMPDIR` (mode 0700) the sandbox's login user still reaches its hosts.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::signals::{Running, Scratch, running, stop_with};

const KASTELL: &str = env!("CARGO_BIN_EXE_kastell");

/// The server every check works on (the sandbox's showcase).
const SERVER: &str = "hetzner-web";

/// The variables of the `export NAME=VALUE` lines among `lines`, unquoted
/// as a shell would.
fn exports(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter(|line| line.starts_with("export "))
        .map(|line| {
            let words = shlex::split(line).unwrap_or_else(|| panic!("not shell: {line}"));
            assert_eq!(words.len(), 2, "{line}");
            let (name, value) = words[1].split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// `kastell --json args` with nothing but PATH, HOME and `env`.
fn kastell_with(home: &Path, env: &BTreeMap<String, String>, args: &[&str]) -> Value {
    let out = Command::new(KASTELL)
        .arg("--json")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    json_of(&out, args)
}

/// The JSON a successful run printed; panics with its output otherwise.
fn json_of(out: &Output, what: &[&str]) -> Value {
    assert!(
        out.status.success(),
        "kastell {what:?} failed: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kastell {what:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn the_exports_drive_the_cli_until_the_sandbox_stops_and_nothing_is_left() {
    let scratch = Scratch::new();
    let mut run = Running::spawn(scratch.command(KASTELL, &["sandbox"], &[]));
    let printed = run.lines_until("Ctrl-C here stops the sandbox");
    let env = exports(&printed);
    let seen = scratch.sandbox_processes();
    let text = printed.join("\n");
    assert!(text.contains("simulators' own tokens"), "{text}");
    assert!(
        text.contains(&format!("kastell backup create {SERVER}")),
        "{text}"
    );
    let dir = Path::new(&env["KASTELL_DIR"]);
    assert!(
        dir.starts_with(scratch.tmp()) && dir.is_dir(),
        "KASTELL_DIR {dir:?} is the sandbox's own, in TMPDIR"
    );
    assert_eq!(env["KASTELL_ALLOW_PRIVATE_IPS"], "true");
    for id in ["hetzner", "digitalocean", "linode", "vultr"] {
        if !kastell::build::feature_enabled(id) {
            continue;
        }
        let upper = id.to_ascii_uppercase();
        assert!(
            env[&format!("KASTELL_{upper}_ENDPOINT")].starts_with("http://127.0.0.1:"),
            "{env:?}"
        );
        assert!(!env[&format!("{upper}_TOKEN")].is_empty(), "{env:?}");
    }

    // Another process, with only those variables, works on the sandbox.
    let home = scratch.root();
    let listed = kastell_with(home, &env, &["server", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&SERVER) && names.contains(&"manual-web"),
        "{listed}"
    );
    let status = kastell_with(home, &env, &["status", SERVER]);
    assert_eq!(status["success"], true, "{status}");
    let created = kastell_with(home, &env, &["backup", "create", SERVER]);
    let backup = created["backupId"].as_str().unwrap_or_default().to_owned();
    assert!(!backup.is_empty(), "{created}");
    let backups = kastell_with(home, &env, &["backup", "list", SERVER]);
    assert!(
        backups.to_string().contains(&backup),
        "the new backup {backup} is listed: {backups}"
    );
    let snapshots = kastell_with(home, &env, &["snapshot", "list", SERVER]);
    assert_eq!(snapshots["success"], true, "{snapshots}");

    stop_with(
        run,
        rustix::process::Signal::INT,
        "SIGINT",
        "kastell sandbox",
    );
    assert!(!dir.exists(), "{dir:?} outlived the sandbox");
    scratch.assert_nothing_left(&seen);
}

/// A shell script run by `kastell sandbox --shell -- sh -c SCRIPT`, with
/// `K` the kastell binary and `OUT` a directory for what it finds.
const SCRIPT: &str = r#"
"$K" --json server list > "$OUT/list.json" &&
"$K" --json backup create manual-web > "$OUT/backup.json" &&
printf %s "$KASTELL_DIR" > "$OUT/dir" &&
exit 7
"#;

#[test]
fn shell_runs_the_command_after_the_dashes_with_the_sandbox_and_passes_its_status_on() {
    let scratch = Scratch::new();
    let out = scratch.root().join("out");
    std::fs::create_dir(&out).unwrap();
    let done = scratch
        .command(
            KASTELL,
            &["sandbox", "--shell", "--", "sh", "-c", SCRIPT],
            &[("K", KASTELL), ("OUT", out.to_str().unwrap())],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(
        done.status.code(),
        Some(7),
        "the command's status: {stderr}"
    );
    assert!(
        stderr.contains("the sandbox stops when it exits"),
        "{stderr}"
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let listed: Value = serde_json::from_str(&read("list.json")).unwrap();
    assert!(listed.to_string().contains(SERVER), "{listed}");
    let backup: Value = serde_json::from_str(&read("backup.json")).unwrap();
    assert_eq!(backup["success"], true, "{backup}");
    let dir = read("dir");
    assert!(
        Path::new(&dir).starts_with(scratch.tmp()),
        "KASTELL_DIR {dir} in the shell is the sandbox's"
    );
    assert!(!Path::new(&dir).exists(), "{dir} outlived the sandbox");
    scratch.assert_nothing_left(&Default::default());

    // Only with --shell; and a command that cannot start is said so.
    let refused = scratch
        .command(KASTELL, &["sandbox", "--", "true"], &[])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let missing = scratch
        .command(
            KASTELL,
            &["sandbox", "--shell", "--", "/nonexistent/kastell-shell"],
            &[],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot run /nonexistent/kastell-shell"),
        "{stderr}"
    );
    scratch.assert_nothing_left(&Default::default());
}

#[test]
fn with_a_shell_ctrl_c_is_the_programs_and_sigterm_stops_both() {
    let scratch = Scratch::new();
    let mut run = Running::spawn(scratch.command(
        KASTELL,
        &[
            "sandbox",
            "--shell",
            "--",
            "sh",
            "-c",
            "echo \"ready $$\"; exec sleep 600",
        ],
        &[],
    ));
    let ready = run.wait_for("ready");
    let program: u32 = ready.trim_start_matches("ready ").trim().parse().unwrap();
    let seen = scratch.sandbox_processes();
    // Ctrl-C in a terminal reaches the whole foreground group; kastell
    // leaves it to the program (whose own reaction is its business).
    run.signal(rustix::process::Signal::INT);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(run.is_running(), "SIGINT stopped kastell sandbox --shell");
    assert!(running(program), "the program is not signalled by kastell");
    stop_with(
        run,
        rustix::process::Signal::TERM,
        "SIGTERM",
        "kastell sandbox",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running(program) {
        assert!(
            std::time::Instant::now() < deadline,
            "the program {program} outlived kastell sandbox"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    scratch.assert_nothing_left(&seen);
}

/// The owner files (`.kastell-owner`) in `dir`'s `kastell-*` directories
/// that name process `pid`.
fn owned_by(dir: &Path, pid: u32) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("kastell-"))
        .filter(|e| {
            std::fs::read_to_string(e.path().join(".kastell-owner"))
                .is_ok_and(|owner| owner.split_whitespace().next() == Some(&pid.to_string()))
        })
        .map(|e| e.path().display().to_string())
        .collect()
}

#[test]
fn as_root_under_a_private_tmpdir_the_sandbox_still_reaches_its_hosts() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: the sandbox logs in another user only as root");
        return;
    }
    let scratch = Scratch::new();
    let private = scratch.root().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = scratch.root().join("out");
    std::fs::create_dir(&out).unwrap();
    let script = r#""$K" --json backup create hetzner-web > "$OUT/backup.json""#;
    let child = scratch
        .command(
            KASTELL,
            &["sandbox", "--shell", "--", "sh", "-c", script],
            &[
                ("K", KASTELL),
                ("OUT", out.to_str().unwrap()),
                ("TMPDIR", private.to_str().unwrap()),
            ],
        )
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = child.wait_with_output().unwrap();
    let backup = std::fs::read_to_string(out.join("backup.json")).unwrap_or_default();
    assert!(
        done.status.success(),
        "{:?}\n{backup}\n{}",
        done.status,
        String::from_utf8_lossy(&done.stderr)
    );
    let backup: Value = serde_json::from_str(&backup).unwrap();
    assert_eq!(backup["success"], true, "{backup}");
    let left: Vec<_> = std::fs::read_dir(&private).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in the private TMPDIR: {left:?}");
    let elsewhere = owned_by(Path::new(kastell_ssh::sandbox::owner::REACHABLE_TMP), pid);
    assert!(elsewhere.is_empty(), "left behind: {elsewhere:?}");
}
