//! `kastell backup create|list|verify|restore` through the real binary
//! against a fake bare host behind a real sshd: list newest first, verify
//! and restore pick the newest (never the safety backup a restore took,
//! which is marked and restored only by its id), a restore needs confirmation (exit 1 and
//! nothing changed without `--force` off a terminal), `--dry-run` changes
//! nothing, and `--json` prints exactly the ops payload.
#![cfg(feature = "bare")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use kastell::ops::{self, Context};
use kastell::{Env, FleetStore, Surface};
use kastell_testkit::platform::BareHost;
use serde_json::{Value, json};

use super::output::{next_commands, parse_back};
use crate::support;

fn kastell(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = support::kastell(dir, args);
    cmd.env("KASTELL_ALLOW_PRIVATE_IPS", "true");
    cmd.output().unwrap()
}

fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare host with a few configuration files, registered as `bare-1`
/// with its fake root as `platformOptions`.
fn setup(dir: &Path) -> BareHost {
    let host = BareHost::start();
    host.write_sshd_config("");
    host.write("etc/crontab", "# first crontab\n");
    host.hand_over();
    let key = host.fixture.sshd.ed25519_key();
    let port = host.fixture.sshd.port().to_string();
    ok(&kastell(
        dir,
        &[
            "server",
            "add",
            "--name",
            "bare-1",
            "--ip",
            "127.0.0.1",
            "--platform",
            "bare",
            "--user",
            host.fixture.sshd.user(),
            "--port",
            &port,
            "--identity-file",
            key.to_str().unwrap(),
        ],
    ));
    let root = host.root().to_string_lossy().into_owned();
    FleetStore::open(dir.join("state"))
        .unwrap()
        .update("bare-1", |r| {
            r.extra.insert(
                "platformOptions".into(),
                json!({"root": root, "sudo": "never"}),
            );
        })
        .unwrap();
    host
}

fn crontab(host: &BareHost) -> String {
    std::fs::read_to_string(host.path("etc/crontab")).unwrap()
}

fn backup_ids(dir: &Path) -> Vec<String> {
    let list = json_of(ok(&kastell(dir, &["--json", "backup", "list", "bare-1"])));
    list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backupId"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn backup_create_list_verify_and_restore_the_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = setup(dir);

    let first = json_of(ok(&kastell(dir, &["--json", "backup", "create", "bare-1"])));
    assert_eq!(first["success"], true, "{first}");
    assert_eq!(first["server"], "bare-1");
    let first_id = first["backupId"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(20));
    host.write("etc/crontab", "# second crontab\n");
    // Human output names the backup and its files.
    let second_out = stdout(ok(&kastell(dir, &["backup", "create", "bare-1"])));
    assert!(
        second_out.contains("backup create on bare-1 (127.0.0.1): OK"),
        "{second_out}"
    );
    let ids = backup_ids(dir);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[1], first_id, "newest first");
    let newest = ids[0].clone();
    assert!(
        second_out.contains(&format!("backup: {newest}")),
        "{second_out}"
    );

    // --json is exactly the ops payload.
    let cli_list = json_of(ok(&kastell(dir, &["--json", "backup", "list", "bare-1"])));
    let store = FleetStore::open(dir.join("state")).unwrap();
    let ctx = Context::new(
        Env::from_pairs([
            ("HOME", "/nonexistent"),
            ("KASTELL_ALLOW_PRIVATE_IPS", "true"),
        ]),
        store,
        Surface::Cli,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let direct = rt.block_on(ops::backup_list(&ctx, Some("bare-1"))).unwrap();
    assert_eq!(cli_list, serde_json::to_value(&direct).unwrap());

    let verified = json_of(ok(&kastell(dir, &["--json", "backup", "verify", "bare-1"])));
    assert_eq!(verified["backupId"], newest.as_str());
    assert_eq!(
        verified["message"],
        "Backup verified: every checksum matches"
    );

    // Change the host; a restore off a terminal without --force is refused
    // and changes nothing (no safety backup either).
    host.write("etc/crontab", "# changed since\n");
    let refused = kastell(dir, &["backup", "restore", "bare-1"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(crontab(&host), "# changed since\n");
    assert_eq!(backup_ids(dir).len(), 2);

    // A dry run names the newest backup and changes nothing.
    let plan = stdout(ok(&kastell(
        dir,
        &["backup", "restore", "bare-1", "--dry-run"],
    )));
    assert!(plan.contains(&format!("Verify backup {newest}")), "{plan}");
    assert_eq!(crontab(&host), "# changed since\n");
    assert_eq!(backup_ids(dir).len(), 2);

    // Without --backup the newest is restored.
    let restored = stdout(ok(&kastell(
        dir,
        &["backup", "restore", "bare-1", "--force"],
    )));
    assert!(
        restored.contains(&format!("backup: {newest}")),
        "{restored}"
    );
    // The steps' table: number, name, status, time.
    let row = |n: &str, name: &str| {
        restored.lines().any(|l| {
            let cells: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            cells.len() >= 4 && cells[0] == n && cells[1] == name && cells[2] == "success"
        })
    };
    assert!(row("1.", "Connect"), "{restored}");
    assert!(row("2.", "Verify backup"), "{restored}");
    assert!(restored.contains(" ms"), "{restored}");
    assert_eq!(crontab(&host), "# second crontab\n");
    assert_eq!(backup_ids(dir).len(), 3, "a safety backup was taken");

    // The safety backup (the state that restore replaced) is now the
    // newest, and the listing marks it, in JSON and in text.
    let safety = backup_ids(dir)[0].clone();
    let listed = json_of(ok(&kastell(dir, &["--json", "backup", "list", "bare-1"])));
    assert_eq!(listed["backups"][0]["backupId"], safety.as_str());
    assert_eq!(
        listed["backups"][0]["safetyFor"],
        newest.as_str(),
        "{listed}"
    );
    assert!(listed["backups"][1].get("safetyFor").is_none(), "{listed}");
    let text = stdout(ok(&kastell(dir, &["backup", "list", "bare-1"])));
    assert!(text.contains(&format!("{safety} *")), "{text}");
    assert!(
        text.contains(&format!(
            "* {safety}: safety backup taken before restoring {newest}"
        )),
        "{text}"
    );

    // A retried restore without --backup (a script run again) restores the
    // same backup again, never the safety copy of the broken state.
    host.write("etc/crontab", "# broken again\n");
    let plan = stdout(ok(&kastell(
        dir,
        &["backup", "restore", "bare-1", "--dry-run"],
    )));
    assert!(plan.contains(&format!("Verify backup {newest}")), "{plan}");
    let retried = stdout(ok(&kastell(
        dir,
        &["backup", "restore", "bare-1", "--force"],
    )));
    assert!(retried.contains(&format!("backup: {newest}")), "{retried}");
    assert_eq!(crontab(&host), "# second crontab\n");

    // By its id the safety backup restores as any backup, and says what
    // it is: the state before the first restore comes back.
    let back = json_of(ok(&kastell(
        dir,
        &[
            "--json", "backup", "restore", "bare-1", "--backup", &safety, "--force",
        ],
    )));
    assert_eq!(back["backupId"], safety.as_str());
    assert!(
        back["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains(&format!("safety backup taken before restoring {newest}"))),
        "{back}"
    );
    assert_eq!(crontab(&host), "# changed since\n");

    // An explicit older backup, in JSON: the ops payload with its steps.
    let older = json_of(ok(&kastell(
        dir,
        &[
            "--json", "backup", "restore", "bare-1", "--backup", &first_id, "--force",
        ],
    )));
    assert_eq!(older["backupId"], first_id.as_str());
    let steps = older["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "Connect", "{older}");
    assert_eq!(steps[1]["name"], "Verify backup", "{older}");
    assert!(steps.iter().all(|s| s["status"] != "failure"), "{older}");
    assert_eq!(crontab(&host), "# first crontab\n");
}

#[test]
fn failures_exit_1_with_the_ops_error_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _host = setup(dir);
    // No backups yet: verify fails with the ops error shape.
    let out = kastell(dir, &["--json", "backup", "verify", "bare-1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = json_of(&out);
    assert_eq!(err["kind"], "not_found", "{err}");
    assert_eq!(err["server"], "bare-1");
    assert!(err["hint"].is_string());
    assert!(err["suggested_actions"].is_array());
    // Unknown server.
    let out = kastell(dir, &["--json", "backup", "list", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(json_of(&out)["error"].is_string());
    // SAFE_MODE blocks a restore before any question, and says so.
    let mut cmd = support::kastell(dir, &["backup", "restore", "bare-1"]);
    let out = cmd.env("KASTELL_SAFE_MODE", "true").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SAFE_MODE"), "{stderr}");
}

/// The one `next:` command of `out`'s report, checked to parse back to
/// `op` on bare-1; its words after `kastell`, to run.
fn the_next_step(out: &Output, op: &str) -> Vec<String> {
    let commands = next_commands(&stdout(out));
    let [command] = commands.as_slice() else {
        panic!("one next step expected: {}", stdout(out));
    };
    assert_eq!(
        parse_back(command),
        (op.to_owned(), Some("bare-1".to_owned())),
        "{command}"
    );
    shlex::split(command).unwrap().split_off(1)
}

#[test]
fn each_next_step_is_a_command_that_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _host = setup(dir);
    let run = |words: &[String]| {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        kastell(dir, &words)
    };
    // No backups: create one. Created: list them. Listed: restore the newest.
    let listed = ok(&kastell(dir, &["backup", "list", "bare-1"])).clone();
    let create = the_next_step(&listed, "backup-create");
    let created = ok(&run(&create)).clone();
    let list = the_next_step(&created, "backup-list");
    let listed = ok(&run(&list)).clone();
    let mut restore = the_next_step(&listed, "backup-restore");
    let newest = backup_ids(dir).remove(0);
    assert_eq!(
        restore,
        ["backup", "restore", "bare-1", "--backup", newest.as_str()]
    );
    restore.push("--force".to_owned());
    let restored = ok(&run(&restore)).clone();
    assert!(
        stdout(&restored).contains(&format!("backup: {newest}")),
        "{}",
        stdout(&restored)
    );
}

/// A backup of the original tool (no checksums) is not reported verified:
/// `backup verify` says it could not be verified (exit 1, kind
/// `unsupported`, in text and `--json`) and nothing records it as proven.
#[test]
fn a_legacy_backup_without_checksums_could_not_be_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _host = setup(dir);
    let id = "2026-03-15_12-30-45-123";
    let backup = dir.join("state/backups/bare-1").join(id);
    std::fs::create_dir_all(&backup).unwrap();
    std::fs::write(
        backup.join("manifest.json"),
        r#"{"serverName":"bare-1","provider":"manual","timestamp":"2026-03-15_12-30-45-123","coolifyVersion":"4.0.0","files":["coolify-backup.sql.gz"],"platform":"coolify"}"#,
    )
    .unwrap();
    std::fs::write(backup.join("coolify-backup.sql.gz"), b"gz").unwrap();
    assert_eq!(backup_ids(dir), [id]);

    let text = kastell(dir, &["backup", "verify", "bare-1"]);
    assert_eq!(text.status.code(), Some(1), "{}", stdout(&text));
    assert!(!stdout(&text).contains("OK"), "{}", stdout(&text));
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains(&format!("backup {id} of bare-1 could not be verified"))
            && stderr.contains("no checksums"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint:") && stderr.contains("backup drill"),
        "{stderr}"
    );

    let json = kastell(
        dir,
        &["--json", "backup", "verify", "bare-1", "--backup", id],
    );
    assert_eq!(json.status.code(), Some(1));
    let failure = json_of(&json);
    assert_eq!(failure["kind"], "unsupported", "{failure}");
    assert_eq!(failure["server"], "bare-1", "{failure}");
    assert!(failure.get("success").is_none(), "{failure}");

    let proofs = std::fs::read_to_string(dir.join("state/verifications.json")).unwrap_or_default();
    assert!(!proofs.contains(id), "recorded as proven: {proofs}");
    let listed = json_of(ok(&kastell(dir, &["--json", "backup", "list", "bare-1"])));
    assert_eq!(listed["backups"][0]["status"], "unverified_legacy");
    assert!(
        listed["backups"][0].get("verification").is_none(),
        "{listed}"
    );
}

/// `812 ms` or `12.3 s` in milliseconds.
fn shown_ms(text: &str) -> f64 {
    if let Some(ms) = text.strip_suffix(" ms") {
        ms.parse().unwrap()
    } else {
        let s: f64 = text.strip_suffix(" s").unwrap().parse().unwrap();
        s * 1000.0
    }
}

#[test]
fn a_restores_steps_add_up_to_its_time_and_listings_show_size_and_age() {
    // (and --jobs on a bare server is not ignored without a word)
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let host = setup(dir);
    // --jobs on a bare server (no database dump to split) says so.
    let created = json_of(ok(&kastell(
        dir,
        &["--json", "backup", "create", "bare-1", "--jobs", "4"],
    )));
    let id = created["backupId"].as_str().unwrap().to_owned();
    assert!(
        created["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("--jobs 4 was not used: a Bare server backup")),
        "{created}"
    );

    // The listing: a row per backup with its size and age.
    let listed = json_of(ok(&kastell(dir, &["--json", "backup", "list", "bare-1"])));
    let size = listed["backups"][0]["sizeBytes"].as_u64().unwrap();
    assert!(size > 0, "{listed}");
    let text = stdout(ok(&kastell(dir, &["backup", "list", "bare-1"])));
    let header = text.lines().find(|l| l.contains("BACKUP")).unwrap();
    let cells: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "BACKUP", "STATUS", "PLATFORM", "VERSION", "SIZE", "AGE", "PROVEN"
        ],
        "{text}"
    );
    let row = text.lines().find(|l| l.contains(&id)).unwrap();
    assert!(
        row.contains(&format!("  {}  ", ops::human_bytes(size))),
        "{row}"
    );
    assert!(row.contains("just now") || row.contains(" s ago"), "{row}");

    // A restore: every phase that takes time is a step, so the steps add
    // up to the whole run (within 10%, or 50 ms of rounding and the audit
    // records around the operation).
    host.write("etc/crontab", "# changed\n");
    let run = kastell(
        dir,
        &["backup", "restore", "bare-1", "--backup", &id, "--force"],
    );
    let restored = stdout(ok(&run));
    let heading = restored.lines().next().unwrap();
    let whole = shown_ms(heading.rsplit_once(": OK in ").unwrap().1);
    let times: Vec<f64> = restored
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            let cells: Vec<&str> = l
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            shown_ms(cells[3])
        })
        .collect();
    assert!(times.len() >= 5, "{restored}");
    let sum: f64 = times.iter().sum();
    assert!(
        (whole - sum).abs() <= (whole * 0.1).max(50.0),
        "steps sum to {sum} ms of {whole} ms:\n{restored}"
    );
    assert_eq!(crontab(&host), "# first crontab\n");
}
