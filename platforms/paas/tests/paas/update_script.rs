//! The update script run by a real POSIX shell with a fake `curl`: it
//! refuses downloads that are not scripts or have an odd size, and leaves
//! no temporary directory behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{COMPOSE, SWARM};
use kastell_paas::{PaasSpec, commands};

/// Runs the spec's update script with `body` as the downloaded file.
fn run(spec: &PaasSpec, body: &str) -> (i32, String, String, usize) {
    run_command(&commands::update(spec).unwrap(), body)
}

/// Runs `command` (an installer command) with `body` as the downloaded
/// file.
fn run_command(command: &kastell_core::RemoteCommand, body: &str) -> (i32, String, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let payload = dir.path().join("payload");
    std::fs::write(&payload, body).unwrap();
    let curl = bin.join("curl");
    std::fs::write(
        &curl,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then out=$2; fi; shift; done\ncp '{}' \"$out\"\n",
            payload.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&curl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(command.as_str())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let left = std::fs::read_dir(Path::new(&tmp)).unwrap().count();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        left,
    )
}

fn script(body: &str) -> String {
    format!("#!/bin/sh\n# {}\n{body}\n", "padding ".repeat(20))
}

#[test]
fn a_fresh_install_runs_the_same_script_without_the_update_argument() {
    let install = commands::install(&SWARM).unwrap();
    let (status, stdout, _, left) = run_command(&install, &script("echo \"ran with: [$*]\""));
    assert_eq!(status, 0);
    assert_eq!(stdout.trim(), "ran with: []");
    assert_eq!(left, 0);
    let (status, _, stderr, _) = run_command(&install, "<html>not found</html>");
    assert_ne!(status, 0);
    assert!(stderr.contains("not a script"), "{stderr}");
}

#[test]
fn a_good_script_runs_with_its_argument_and_is_removed() {
    let (status, stdout, _, left) = run(&SWARM, &script("echo \"ran with: $*\""));
    assert_eq!(status, 0);
    assert_eq!(stdout.trim(), "ran with: update");
    assert_eq!(left, 0);
    let (status, stdout, _, left) = run(&COMPOSE, &script("echo \"ran with: $*\"; exit 3"));
    assert_eq!(status, 3, "the installer's failure is the script's failure");
    assert_eq!(stdout.trim(), "ran with:");
    assert_eq!(left, 0);
}

#[test]
fn odd_downloads_are_refused() {
    let (status, _, stderr, left) = run(&COMPOSE, &format!("<html>{}</html>", "x".repeat(200)));
    assert_eq!(status, 1);
    assert!(stderr.contains("not a script"), "{stderr}");
    assert_eq!(left, 0);
    let (status, _, stderr, _) = run(&COMPOSE, "#!/bin/sh\necho hi\n");
    assert_eq!(status, 1);
    assert!(stderr.contains("unexpected size"), "{stderr}");
    let (status, _, stderr, _) = run(&COMPOSE, &script(&"#".repeat(1_100_000)));
    assert_eq!(status, 1);
    assert!(stderr.contains("unexpected size"), "{stderr}");
}
