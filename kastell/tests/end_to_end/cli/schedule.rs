//! `kastell schedule` through the real binary: the units it writes pass
//! `systemd-analyze verify`, a bad calendar and a foreign unit stop it
//! before anything is written, and `remove` takes only kastell's files.
//! `kastell alert` is `alert.rs`, which shares this file's helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::kastell;

/// The secret parts of the webhook URLs below: none may ever be printed.
pub(super) const PATH_SECRET: &str = "T0K3N-path-secret";
pub(super) const QUERY_SECRET: &str = "Q-secret-value";

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

pub(super) fn run(dir: &Path, args: &[&str]) -> Output {
    kastell(dir, args).output().unwrap()
}

pub(super) fn ok(out: &Output) -> Value {
    assert!(out.status.success(), "{}", both(out));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

pub(super) fn failed(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{}", both(out));
}

/// A temporary home with one server, `web-1`.
pub(super) fn fleet_of_one() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(
        tmp.path(),
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
    ));
    tmp
}

pub(super) fn private_file(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

pub(super) fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn has_line(path: &Path, line: &str) {
    let lines = lines_of(path);
    assert!(
        lines.iter().any(|l| l == line),
        "{} has no line {line:?}:\n{}",
        path.display(),
        lines.join("\n")
    );
}

/// `systemd-analyze verify` on `files`, run by the test itself.
fn systemd_verify(files: &[PathBuf]) -> Output {
    Command::new("systemd-analyze")
        .arg("verify")
        .args(files)
        .output()
        .expect("systemd-analyze is installed (.ci/setup installs the systemd package)")
}

#[test]
fn install_writes_units_systemd_accepts() {
    let tmp = fleet_of_one();
    let home = tmp.path();
    let password = home.join("offsite.pw");
    private_file(&password, "a long offsite passphrase\n");
    let repo_dir = home.join("offsite");
    ok(&run(
        home,
        &[
            "repo",
            "init",
            "offsite",
            repo_dir.to_str().unwrap(),
            "--password-file",
            password.to_str().unwrap(),
            "--keep-daily",
            "7",
        ],
    ));
    let env_file = home.join("kastell.env");
    private_file(
        &env_file,
        &format!(
            "KASTELL_ALERT_WEBHOOK=https://hooks.example/{PATH_SECRET}\nHETZNER_TOKEN={QUERY_SECRET}\n"
        ),
    );
    let units = home.join("units");
    let report = ok(&run(
        home,
        &[
            "--json",
            "schedule",
            "install",
            "--unit-dir",
            units.to_str().unwrap(),
            "--server",
            "web-1",
            "--repo",
            "offsite",
            "--env-file",
            env_file.to_str().unwrap(),
            "--backup-at",
            "*-*-* 02:15:00",
        ],
    ));
    assert_eq!(report["verified"], true, "{report:#}");
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["warnings"], Value::Array(Vec::new()), "{report:#}");
    let expected: BTreeSet<String> = [
        "kastell-alert@.service",
        "kastell-backup-web-1.service",
        "kastell-backup-web-1.timer",
        "kastell-drill-web-1.service",
        "kastell-drill-web-1.timer",
        "kastell-prune-offsite.service",
        "kastell-prune-offsite.timer",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(names_in(&units), expected);

    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_kastell")).unwrap();
    let exe = exe.to_str().unwrap();
    let state = home.join("state");
    let backup = units.join("kastell-backup-web-1.service");
    for line in [
        "Type=oneshot".to_owned(),
        "OnFailure=kastell-alert@%n.service".to_owned(),
        format!("Environment=\"KASTELL_DIR={}\"", state.display()),
        format!("EnvironmentFile={}", env_file.display()),
        format!("ExecStart={exe} backup create --force --repo=offsite -- web-1"),
    ] {
        has_line(&backup, &line);
    }
    assert_eq!(
        lines_of(&backup)[0],
        "# Written by kastell schedule install: kastell: back up web-1 into repository offsite."
    );
    let timer = units.join("kastell-backup-web-1.timer");
    for line in [
        "OnCalendar=*-*-* 02:15:00",
        "Persistent=true",
        "Unit=kastell-backup-web-1.service",
        "WantedBy=timers.target",
    ] {
        has_line(&timer, line);
    }
    assert!(
        lines_of(&timer)
            .iter()
            .any(|l| l.starts_with("RandomizedDelaySec="))
    );
    has_line(
        &units.join("kastell-prune-offsite.service"),
        &format!("ExecStart={exe} repo prune --apply --force -- offsite"),
    );
    has_line(
        &units.join("kastell-prune-offsite.timer"),
        "OnCalendar=*-*-* 04:30:00",
    );
    has_line(
        &units.join("kastell-drill-web-1.service"),
        &format!("ExecStart={exe} backup drill --repo=offsite -- web-1"),
    );
    has_line(
        &units.join("kastell-drill-web-1.timer"),
        "OnCalendar=Sun *-*-* 05:00:00",
    );
    has_line(
        &units.join("kastell-alert@.service"),
        &format!("ExecStart={exe} alert send --unit %i --user"),
    );

    // No secret and no other variable's value reaches a unit.
    let files: Vec<PathBuf> = expected.iter().map(|n| units.join(n)).collect();
    for file in &files {
        let content = std::fs::read_to_string(file).unwrap();
        assert!(!content.contains(PATH_SECRET) && !content.contains(QUERY_SECRET));
        assert!(!content.contains("PATH="), "{content}");
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", file.display());
    }

    // systemd itself accepts every file (the binary is real, so the
    // executable check runs too).
    let verified = systemd_verify(&files);
    assert!(verified.status.success(), "{}", both(&verified));
    assert!(
        !expected
            .iter()
            .any(|n| text(&verified.stderr).contains(n.as_str())),
        "{}",
        text(&verified.stderr)
    );

    let next = report["next"].as_str().unwrap();
    assert_eq!(
        next,
        "systemctl --user daemon-reload && systemctl --user enable --now \
         kastell-backup-web-1.timer kastell-prune-offsite.timer kastell-drill-web-1.timer"
    );
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(jobs[0]["normalized"], "*-*-* 02:15:00");
    assert!(
        jobs[0]["next_elapse"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let listed = ok(&run(
        home,
        &[
            "--json",
            "schedule",
            "list",
            "--unit-dir",
            units.to_str().unwrap(),
        ],
    ));
    let listed = listed["units"].as_array().unwrap();
    assert_eq!(listed.len(), 7);
    assert!(listed.iter().all(|u| u["written_by_kastell"] == true));
    let timer = listed
        .iter()
        .find(|u| u["name"] == "kastell-backup-web-1.timer")
        .unwrap();
    assert_eq!(timer["on_calendar"], "*-*-* 02:15:00");

    // Installing again replaces kastell's own files.
    ok(&run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            units.to_str().unwrap(),
            "--server",
            "web-1",
            "--no-drill",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
    ));
    has_line(
        &timer_path(&units, "kastell-backup-web-1"),
        "OnCalendar=*-*-* 03:00:00",
    );
}

/// Renames the store's only server (`web-1`) to `name` behind kastell's
/// back, as a hand edit of `servers.json` would.
fn rename_server_in_file(home: &Path, name: &str) {
    let path = home.join("state/servers.json");
    let mut records: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    records[0]["name"] = Value::from(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&records).unwrap()).unwrap();
}

#[test]
fn a_name_the_store_refuses_writes_no_unit_and_names_follow_a_double_dash() {
    let tmp = fleet_of_one();
    let home = tmp.path();
    let units = home.join("units");
    let dir = units.to_str().unwrap();

    // The units put the name after `--` (the CLI's parse of these commands
    // is checked in cli::schedule's unit tests), and systemd accepts them.
    ok(&run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            dir,
            "--server",
            "web-1",
        ],
    ));
    let service = units.join("kastell-backup-web-1.service");
    let exec = lines_of(&service)
        .into_iter()
        .find_map(|l| l.strip_prefix("ExecStart=").map(str::to_owned))
        .unwrap();
    assert!(exec.ends_with(" backup create --force -- web-1"), "{exec}");
    let drill = lines_of(&units.join("kastell-drill-web-1.service"));
    assert!(
        drill
            .iter()
            .any(|l| l.starts_with("ExecStart=") && l.ends_with(" backup drill -- web-1")),
        "{drill:?}"
    );
    let verified = systemd_verify(&[service.clone(), units.join("kastell-backup-web-1.timer")]);
    assert!(verified.status.success(), "{}", both(&verified));
    std::fs::remove_dir_all(&units).unwrap();

    // A hand-edited store naming the server `-web`: refused with the
    // store's own error, for one server and for the fleet, and nothing is
    // written.
    rename_server_in_file(home, "-web");
    for target in [&["--server=-web"][..], &["--all"]] {
        let out = run(
            home,
            &[&["schedule", "install", "--unit-dir", dir][..], target].concat(),
        );
        failed(&out);
        assert!(both(&out).contains("Invalid server name"), "{}", both(&out));
        assert!(
            both(&out).contains("starting with a letter"),
            "{}",
            both(&out)
        );
        assert!(names_in(&units).is_empty(), "{:?}", names_in(&units));
    }
}

fn timer_path(units: &Path, stem: &str) -> PathBuf {
    units.join(format!("{stem}.timer"))
}

#[test]
fn a_bad_calendar_is_refused_before_anything_is_written() {
    let tmp = fleet_of_one();
    let home = tmp.path();
    let units = home.join("units");
    let dir = units.to_str().unwrap();
    for (flag, spec) in [
        ("--drill-at", "Sunday at noon"),
        ("--backup-at", "daily\nExecStartPre=/bin/sh"),
        ("--backup-at", "2001-01-01"),
    ] {
        let out = run(
            home,
            &[
                "schedule",
                "install",
                "--unit-dir",
                dir,
                "--server",
                "web-1",
                flag,
                spec,
            ],
        );
        failed(&out);
        let err = text(&out.stderr);
        assert!(err.contains(flag), "{err}");
        assert!(err.contains("hint: "), "{err}");
        assert!(!units.exists(), "nothing may be written for {spec:?}");
    }
    let out = run(
        home,
        &[
            "--json",
            "schedule",
            "install",
            "--unit-dir",
            dir,
            "--server",
            "web-1",
            "--backup-at",
            "bogus",
        ],
    );
    failed(&out);
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["kind"], "invalid_input");
    assert!(err["hint"].as_str().unwrap().contains("systemd"));
    assert!(!units.exists());

    // A loose environment file is refused the same way.
    let env_file = home.join("loose.env");
    std::fs::write(&env_file, "KASTELL_ALERT_WEBHOOK=https://x.example/\n").unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            dir,
            "--server",
            "web-1",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
    );
    failed(&out);
    assert!(text(&out.stderr).contains("chmod 600"), "{}", both(&out));
    assert!(!units.exists());

    // A dry run prints the units and writes nothing.
    let out = run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            dir,
            "--server",
            "web-1",
            "--dry-run",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        stdout.contains("[Timer]") && stdout.contains("ExecStart="),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was written"), "{stdout}");
    assert!(!units.exists());
}

#[test]
fn foreign_units_are_never_overwritten_and_remove_takes_only_kastells() {
    let tmp = fleet_of_one();
    let home = tmp.path();
    let units = home.join("units");
    let dir = units.to_str().unwrap();
    std::fs::create_dir(&units).unwrap();
    let foreign_timer = units.join("kastell-backup-web-1.timer");
    std::fs::write(&foreign_timer, "[Timer]\nOnCalendar=hourly\n").unwrap();
    std::fs::write(
        units.join("other.service"),
        "[Service]\nExecStart=/bin/true\n",
    )
    .unwrap();
    let before = names_in(&units);

    let out = run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            dir,
            "--server",
            "web-1",
        ],
    );
    failed(&out);
    let err = text(&out.stderr);
    assert!(err.contains("not written by kastell"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    assert_eq!(names_in(&units), before, "nothing written beside it");
    assert_eq!(
        std::fs::read_to_string(&foreign_timer).unwrap(),
        "[Timer]\nOnCalendar=hourly\n"
    );

    std::fs::remove_file(&foreign_timer).unwrap();
    let out = run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            dir,
            "--server",
            "web-1",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("warning: no --env-file"),
        "{}",
        both(&out)
    );
    assert!(text(&out.stdout).contains("systemctl --user enable --now"));
    let foreign = units.join("kastell-custom.service");
    std::fs::write(&foreign, "[Service]\nExecStart=/bin/true\n").unwrap();

    let listed = ok(&run(
        home,
        &["--json", "schedule", "list", "--unit-dir", dir],
    ));
    let custom = listed["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "kastell-custom.service")
        .unwrap()
        .clone();
    assert_eq!(custom["written_by_kastell"], false);

    // Not in a terminal and no --force: refused, nothing removed.
    let out = run(home, &["schedule", "remove", "--unit-dir", dir]);
    failed(&out);
    assert!(units.join("kastell-backup-web-1.timer").exists());
    // A named foreign unit is refused.
    let out = run(
        home,
        &[
            "schedule",
            "remove",
            "kastell-custom",
            "--unit-dir",
            dir,
            "--force",
        ],
    );
    failed(&out);
    assert!(foreign.exists());

    let removed = ok(&run(
        home,
        &["--json", "schedule", "remove", "--unit-dir", dir, "--force"],
    ));
    assert_eq!(
        removed["removed"].as_array().unwrap().len(),
        5,
        "{removed:#}"
    );
    assert_eq!(
        removed["left_alone"],
        serde_json::json!([foreign.to_str().unwrap()])
    );
    assert!(
        removed["next"]
            .as_str()
            .unwrap()
            .starts_with("systemctl --user stop kastell-")
    );
    let left: BTreeSet<String> = ["kastell-custom.service", "other.service"]
        .map(str::to_owned)
        .into();
    assert_eq!(names_in(&units), left);
}

#[test]
fn without_systemd_analyze_install_warns_and_still_writes() {
    let tmp = fleet_of_one();
    let home = tmp.path();
    let units = home.join("units");
    let empty_bin = home.join("no-tools");
    std::fs::create_dir(&empty_bin).unwrap();
    let out = kastell(
        home,
        &[
            "--json",
            "schedule",
            "install",
            "--unit-dir",
            units.to_str().unwrap(),
            "--server",
            "web-1",
        ],
    )
    .env("PATH", &empty_bin)
    .output()
    .unwrap();
    let report = ok(&out);
    assert_eq!(report["verified"], false);
    assert!(
        text(&out.stderr).contains("systemd-analyze is not installed"),
        "{}",
        both(&out)
    );
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not verified"))
    );
    assert_eq!(names_in(&units).len(), 5);
    // What it wrote unverified is still what systemd accepts.
    let files: Vec<PathBuf> = names_in(&units).iter().map(|n| units.join(n)).collect();
    let verified = systemd_verify(&files);
    assert!(verified.status.success(), "{}", both(&verified));
}
