//! `kastell audit verify|show` on a log written through the library: an
//! intact chain verifies and shows (filtered, newest first, terminal
//! escapes defused); a changed line and a cut tail fail with exit code 1,
//! naming the line and the anchor.

use std::path::Path;

use kastell::state::audit::{AuditEntry, AuditLog, AuditSurface, Outcome};
use serde_json::{Value, json};

use crate::support::{kastell, ok_json};

/// Five entries in `dir/state`: three about web-1, one refused over MCP
/// by a client whose name carries a terminal escape.
fn write_log(dir: &Path) -> AuditLog {
    let log = AuditLog::in_dir(&dir.join("state"));
    for n in 1..=5 {
        let (surface, outcome) = if n == 4 {
            (AuditSurface::Mcp, Outcome::Refused)
        } else {
            (AuditSurface::Cli, Outcome::Ok)
        };
        let mut entry = AuditEntry::new(surface, "backup-create", outcome)
            .with_server(if n % 2 == 1 { "web-1" } else { "db-1" })
            .with_args(json!({"server": "web-1", "password": "hunter2"}))
            .with_id("backup_id", format!("b-{n}"))
            .with_duration(std::time::Duration::from_millis(1500));
        if n == 4 {
            entry = entry
                .with_client("evil\u{1b}[2J 1.0")
                .with_error(&kastell_core::Error::invalid_state("SAFE_MODE is on"));
        }
        log.append(entry).unwrap();
    }
    log
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_intact_log_verifies_and_shows() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());

    let out = kastell(dir.path(), &["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("intact: 5 entries checked (seq 1 to 5)"),
        "{text}"
    );

    let report = ok_json(
        &kastell(dir.path(), &["--json", "audit", "verify"])
            .output()
            .unwrap(),
    );
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries_checked"], 5, "{report}");

    let page = ok_json(
        &kastell(
            dir.path(),
            &[
                "--json", "audit", "show", "--server", "web-1", "--limit", "2",
            ],
        )
        .output()
        .unwrap(),
    );
    let seqs: Vec<u64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![5, 3], "{page}");
    assert_eq!(page["entries"][0]["args"]["password"], "[redacted]");
    assert!(!page.to_string().contains("hunter2"), "{page}");

    let refused = ok_json(
        &kastell(
            dir.path(),
            &["--json", "audit", "show", "--outcome", "refused"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(refused["entries"].as_array().unwrap().len(), 1, "{refused}");
    assert_eq!(refused["entries"][0]["error"]["kind"], "invalid_state");

    let out = kastell(dir.path(), &["audit", "show"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let mut rows = table.lines();
    let header = rows.next().unwrap();
    for column in [
        "TIME", "SURFACE", "CLIENT", "OP", "SERVER", "OUTCOME", "DURATION", "IDS",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert_eq!(rows.count(), 5, "{table}");
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(table.contains("evil\\u{1b}[2J 1.0"), "{table}");
    assert!(
        table.contains("backup_id=b-4") && table.contains("1.5s"),
        "{table}"
    );
}

#[test]
fn an_empty_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = kastell(dir.path(), &["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty"));
    let out = kastell(dir.path(), &["audit", "show"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No audit entries"));
}

#[test]
fn a_changed_line_fails_verification_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path());
    let text = std::fs::read_to_string(log.path()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace("\"b-3\"", "\"b-9\"");
    std::fs::write(log.path(), lines.join("\n") + "\n").unwrap();

    let out = kastell(dir.path(), &["audit", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("audit.jsonl line 3 (seq 3)"), "{err}");
    assert!(err.contains("changed after it was written"), "{err}");
    assert!(err.contains("hint: The log was edited or cut"), "{err}");
    assert!(
        err.contains(&log.anchor_path().display().to_string()),
        "{err}"
    );

    let out = kastell(dir.path(), &["--json", "audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["kind"], "corrupt", "{body}");
    assert!(body["error"].as_str().unwrap().contains("line 3"), "{body}");

    // `show` still reads it: the change is only visible to verify.
    let page = ok_json(
        &kastell(dir.path(), &["--json", "audit", "show"])
            .output()
            .unwrap(),
    );
    assert_eq!(page["entries"].as_array().unwrap().len(), 5);
}

#[test]
fn a_cut_tail_fails_verification_through_the_anchor_outside_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let anchor = elsewhere.path().join("audit.head");
    let log = write_log(dir.path()).with_anchor(&anchor);
    log.append(AuditEntry::new(
        AuditSurface::Cli,
        "server-add",
        Outcome::Ok,
    ))
    .unwrap();
    let verify = |args: &[&str]| {
        kastell(dir.path(), args)
            .env("KASTELL_AUDIT_ANCHOR", &anchor)
            .output()
            .unwrap()
    };
    assert!(verify(&["audit", "verify"]).status.success());

    let text = std::fs::read_to_string(log.path()).unwrap();
    let kept: Vec<&str> = text.lines().take(4).collect();
    std::fs::write(log.path(), kept.join("\n") + "\n").unwrap();
    let out = verify(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("truncated: the anchor records entry 6, the log ends at entry 4"),
        "{err}"
    );
    assert!(err.contains(&anchor.display().to_string()), "{err}");
}

/// The case: the oldest entries cut off, down to the newest line
/// alone, with the anchor kept elsewhere. `audit verify` and `doctor` both
/// report the log as truncated (exit 1), where the chain only looked as if
/// it had been rotated.
#[test]
fn cutting_the_oldest_entries_fails_verification_and_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let anchor = elsewhere.path().join("audit.head");
    let log = AuditLog::in_dir(&dir.path().join("state")).with_anchor(&anchor);
    for n in 1..=5 {
        log.append(
            AuditEntry::new(AuditSurface::Cli, "restart", Outcome::Ok).with_id("n", n.to_string()),
        )
        .unwrap();
    }
    let run = |args: &[&str]| {
        kastell(dir.path(), args)
            .env("KASTELL_AUDIT_ANCHOR", &anchor)
            .output()
            .unwrap()
    };
    assert!(run(&["audit", "verify"]).status.success());
    let text = std::fs::read_to_string(log.path()).unwrap();
    let newest = text.lines().last().unwrap().to_owned();
    std::fs::write(log.path(), newest + "\n").unwrap();

    let out = run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("audit.jsonl line 1 (seq 5)"), "{err}");
    assert!(
        err.contains("truncated: the log starts at seq 5, but the anchor records that the kept log starts at seq 1; entries 1 to 4 were cut"),
        "{err}"
    );

    let out = run(&["--json", "doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["store"]["problems"].to_string();
    assert!(
        problems.contains("the audit log is not intact") && problems.contains("truncated"),
        "{report}"
    );
}

/// `audit show` tells a dry run, a declined confirmation, a refusal and
/// work that started from work that ran, in the table and in --json.
#[test]
fn show_marks_dry_runs_declines_refusals_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::in_dir(&dir.path().join("state"));
    for outcome in [
        Outcome::DryRun,
        Outcome::Declined,
        Outcome::Refused,
        Outcome::Started,
        Outcome::Ok,
    ] {
        log.append(
            AuditEntry::new(AuditSurface::Mcp, "backup-restore", outcome).with_server("web-1"),
        )
        .unwrap();
    }
    let page = ok_json(
        &kastell(dir.path(), &["--json", "audit", "show"])
            .output()
            .unwrap(),
    );
    let outcomes: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["ok", "started", "refused", "declined", "dry-run"]
    );

    let out = kastell(dir.path(), &["audit", "show"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let cells: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(5).unwrap_or(""))
        .collect();
    assert_eq!(
        cells,
        ["ok", "started", "refused", "declined", "dry-run"],
        "{table}"
    );

    let dry = ok_json(
        &kastell(
            dir.path(),
            &["--json", "audit", "show", "--outcome", "dry-run"],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(dry["entries"].as_array().unwrap().len(), 1, "{dry}");
}
