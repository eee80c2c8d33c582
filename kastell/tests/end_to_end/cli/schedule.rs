//! `kastell schedule` and `kastell alert` through the real binary: the
//! units it writes pass `systemd-analyze verify`, a bad calendar and a
//! foreign unit stop it before anything is written, `remove` takes only
//! kastell's files, and an alert reaches a real HTTP listener on loopback
//! (Slack-style and ntfy bodies) while a refusing receiver gives an error
//! that never shows the URL's secret parts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::support::kastell;

/// The secret parts of the webhook URLs below: none may ever be printed.
const PATH_SECRET: &str = "T0K3N-path-secret";
const QUERY_SECRET: &str = "Q-secret-value";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn run(dir: &Path, args: &[&str]) -> Output {
    kastell(dir, args).output().unwrap()
}

fn ok(out: &Output) -> Value {
    assert!(out.status.success(), "{}", both(out));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn failed(out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{}", both(out));
}

/// A temporary home with one server, `web-1`.
fn fleet_of_one() -> tempfile::TempDir {
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

fn private_file(path: &Path, content: &str) {
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

fn lines_of(path: &Path) -> Vec<String> {
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

/// One request the listener received.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

/// A one-connection-at-a-time HTTP/1.1 listener on loopback that answers
/// every request with `status` and `answer` (where `{target}` is replaced
/// by the request target, as a careless receiver echoing the URL would),
/// and hands what it received to the test.
pub(crate) fn listener(status: u16, answer: &'static str) -> (u16, mpsc::Receiver<Received>) {
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in socket.incoming() {
            let Ok(mut stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "content-type" => content_type = value.trim().to_owned(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let reply = answer.replace("{target}", &target);
            let reason = if status == 200 { "OK" } else { "Refused" };
            write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
            stream.flush().unwrap();
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if tx
                .send(Received {
                    method,
                    target,
                    content_type,
                    body,
                })
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

fn alert(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = kastell(home, args);
    cmd.envs(vars.iter().copied());
    cmd.output().unwrap()
}

fn no_secret(out: &Output) {
    let all = both(out);
    assert!(!all.contains(PATH_SECRET), "{all}");
    assert!(!all.contains(QUERY_SECRET), "{all}");
}

#[test]
fn alerts_reach_a_real_listener_as_slack_and_ntfy_bodies() {
    let home = tempfile::tempdir().unwrap();
    let (port, received) = listener(200, "ok");
    let url = format!("http://127.0.0.1:{port}/hooks/{PATH_SECRET}?key={QUERY_SECRET}");
    let out = alert(
        home.path(),
        &[("KASTELL_ALERT_WEBHOOK", &url)],
        &[
            "--json",
            "alert",
            "send",
            "--unit",
            "kastell-backup-web-1.service",
        ],
    );
    let delivery = ok(&out);
    no_secret(&out);
    assert_eq!(delivery["status"], 200);
    assert_eq!(delivery["format"], "slack");
    assert_eq!(delivery["to"], format!("http://127.0.0.1:{port}/…"));
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.method, "POST");
    assert_eq!(
        got.target,
        format!("/hooks/{PATH_SECRET}?key={QUERY_SECRET}")
    );
    assert!(got.content_type.starts_with("application/json"), "{got:?}");
    let said = got.body["text"].as_str().unwrap();
    assert!(
        said.contains("kastell-backup-web-1.service failed"),
        "{said}"
    );
    assert!(said.contains("the backup of web-1"), "{said}");
    assert_eq!(got.body["unit"], "kastell-backup-web-1.service");
    assert_eq!(got.body["kind"], "failure");
    assert!(got.body["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(got.body["title"].as_str().unwrap().starts_with("kastell: "));
    assert!(got.body["message"].as_str().is_some());

    // ntfy: the topic URL is given, the JSON goes to the root with the topic.
    let topic = format!("kastell-{PATH_SECRET}");
    let url = format!("http://127.0.0.1:{port}/{topic}");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "ntfy"),
        ],
        &[
            "alert",
            "send",
            "--unit",
            "kastell-drill-web-1.service",
            "--message",
            "the drill found no backup",
            "--no-journal",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    no_secret(&out);
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.target, "/");
    assert_eq!(got.body["topic"], topic.as_str());
    assert_eq!(got.body["message"], "the drill found no backup");
    assert_eq!(got.body["priority"], 4);
    assert!(
        got.body["title"]
            .as_str()
            .unwrap()
            .contains("kastell-drill-web-1.service")
    );

    // `alert test`, plain JSON.
    let url = format!("http://127.0.0.1:{port}/in");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "json"),
        ],
        &["alert", "test"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stdout).contains("Sent a test alert"),
        "{}",
        both(&out)
    );
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.body["kind"], "test");
    assert!(got.body.get("text").is_none());
}

#[test]
fn the_alert_unit_command_runs_as_written() {
    // What systemd would run for a failed backup: the template's
    // ExecStart with %i filled in and the environment file's variables.
    let tmp = fleet_of_one();
    let home = tmp.path();
    let (port, received) = listener(200, "ok");
    let env_file = home.join("kastell.env");
    private_file(
        &env_file,
        &format!("KASTELL_ALERT_WEBHOOK=http://127.0.0.1:{port}/hooks/{PATH_SECRET}\n"),
    );
    let units = home.join("units");
    ok(&run(
        home,
        &[
            "schedule",
            "install",
            "--unit-dir",
            units.to_str().unwrap(),
            "--server",
            "web-1",
            "--env-file",
            env_file.to_str().unwrap(),
        ],
    ));
    let template = lines_of(&units.join("kastell-alert@.service"));
    let exec = template
        .iter()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.replace("%i", "kastell-backup-web-1.service"))
        .collect();
    let out = Command::new(&words[0])
        .args(&words[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KASTELL_DIR", home.join("state"))
        .env(
            "KASTELL_ALERT_WEBHOOK",
            format!("http://127.0.0.1:{port}/hooks/{PATH_SECRET}"),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    no_secret(&out);
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.body["unit"], "kastell-backup-web-1.service");
}

#[test]
fn a_refusing_or_unreachable_webhook_is_an_error_without_its_secret() {
    let home = tempfile::tempdir().unwrap();
    let (port, received) = listener(403, "forbidden: no hook at {target}");
    let url = format!("http://127.0.0.1:{port}/hooks/{PATH_SECRET}?key={QUERY_SECRET}");
    let vars = [("KASTELL_ALERT_WEBHOOK", url.as_str())];
    let out = alert(
        home.path(),
        &vars,
        &[
            "alert",
            "send",
            "--unit",
            "kastell-backup-web-1.service",
            "--no-journal",
        ],
    );
    failed(&out);
    no_secret(&out);
    let err = text(&out.stderr);
    assert!(err.contains("403"), "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{port}/…")), "{err}");
    assert!(err.contains("forbidden: no hook at …"), "{err}");
    received.recv_timeout(Duration::from_secs(10)).unwrap();

    let out = alert(home.path(), &vars, &["--json", "alert", "test"]);
    failed(&out);
    no_secret(&out);
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["kind"], "permission_denied");
    assert!(err["error"].as_str().unwrap().contains("403"));
    received.recv_timeout(Duration::from_secs(10)).unwrap();

    // Not http(s): refused before any request, the value never shown.
    for bad in [
        format!("ftp://127.0.0.1:{port}/{PATH_SECRET}"),
        format!("file:///{PATH_SECRET}"),
        format!("not a url {PATH_SECRET}"),
    ] {
        let out = alert(
            home.path(),
            &[("KASTELL_ALERT_WEBHOOK", bad.as_str())],
            &["alert", "test"],
        );
        failed(&out);
        no_secret(&out);
        assert!(
            text(&out.stderr).contains("KASTELL_ALERT_WEBHOOK"),
            "{}",
            both(&out)
        );
    }
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());

    // Nobody listening: a transport error, still without the secret.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{closed_port}/hooks/{PATH_SECRET}?key={QUERY_SECRET}");
    let out = alert(
        home.path(),
        &[("KASTELL_ALERT_WEBHOOK", url.as_str())],
        &["alert", "test"],
    );
    failed(&out);
    no_secret(&out);
    assert!(
        text(&out.stderr).contains("sending the alert"),
        "{}",
        both(&out)
    );

    // No webhook at all.
    let out = alert(home.path(), &[], &["alert", "send", "--unit", "x.service"]);
    failed(&out);
    assert!(text(&out.stderr).contains("KASTELL_ALERT_WEBHOOK is not set"));
}

#[test]
fn alerts_reach_a_real_listener_as_discord_and_telegram_bodies() {
    let home = tempfile::tempdir().unwrap();
    let (port, received) = listener(200, "{\"ok\":true}");

    // Discord: the webhook URL as Discord gives it, `content` in the body.
    let url = format!("http://127.0.0.1:{port}/api/webhooks/42/{PATH_SECRET}");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "discord"),
        ],
        &[
            "--json",
            "alert",
            "send",
            "--unit",
            "kastell-backup-web-1.service",
            "--no-journal",
        ],
    );
    let delivery = ok(&out);
    no_secret(&out);
    assert_eq!(delivery["format"], "discord");
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.target, format!("/api/webhooks/42/{PATH_SECRET}"));
    let content = got.body["content"].as_str().unwrap();
    assert!(
        content.starts_with("**kastell: kastell-backup-web-1.service failed on "),
        "{content}"
    );
    assert!(content.contains("the backup of web-1"), "{content}");
    assert_eq!(got.body["allowed_mentions"]["parse"], serde_json::json!([]));

    // Telegram: the bot's URL (token in the path), the chat from its
    // variable, POSTed to sendMessage.
    let url = format!("http://127.0.0.1:{port}/bot12345:{PATH_SECRET}");
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "telegram"),
            ("KASTELL_ALERT_TELEGRAM_CHAT", "-1001234567890"),
        ],
        &["alert", "test", "--message", "hello from the test"],
    );
    assert!(out.status.success(), "{}", both(&out));
    no_secret(&out);
    let got = received.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.target, format!("/bot12345:{PATH_SECRET}/sendMessage"));
    assert_eq!(got.body["chat_id"], "-1001234567890");
    let said = got.body["text"].as_str().unwrap();
    assert!(said.starts_with("kastell: test alert from "), "{said}");
    assert!(said.ends_with("hello from the test"), "{said}");

    // Without the chat: refused before anything is sent.
    let out = alert(
        home.path(),
        &[
            ("KASTELL_ALERT_WEBHOOK", &url),
            ("KASTELL_ALERT_FORMAT", "telegram"),
        ],
        &["alert", "test"],
    );
    failed(&out);
    no_secret(&out);
    assert!(
        text(&out.stderr).contains("KASTELL_ALERT_TELEGRAM_CHAT"),
        "{}",
        both(&out)
    );
    assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
}
