//! What the real `kastell` binary prints when operations fail: each error
//! once, as one block with its hint (one server, and a fleet of several
//! failures), and "next:" hints that are commands a shell user can type:
//! each parses back (`Cli::try_parse_from`) to the operation and server
//! the suggestion names. `--json` keeps the MCP form and adds the command.

// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use clap::Parser;
use kastell::surfaces::cli::{Cli, Command};
use serde_json::Value;

use crate::support;

fn run(dir: &Path, args: &[&str]) -> Output {
    support::kastell(dir, args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Manual servers (no provider id: no snapshots) named `names`.
fn add_manual(dir: &Path, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let ip = format!("203.0.113.{}", 10 + i);
        let out = run(
            dir,
            &[
                "server",
                "add",
                "--name",
                name,
                "--ip",
                &ip,
                "--platform",
                "coolify",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

/// The commands of the `next:` lines in `stdout`.
pub(crate) fn next_commands(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("next: "))
        .map(|rest| {
            let (command, reason) = rest.split_once("  (").unwrap_or((rest, ""));
            assert!(reason.ends_with(')') && reason.len() > 1, "{rest}");
            command.to_owned()
        })
        .collect()
}

/// Parses `command` as a shell would, then as kastell does; returns the
/// operation's id and the server it names.
pub(crate) fn parse_back(command: &str) -> (String, Option<String>) {
    let words = shlex::split(command).unwrap();
    assert_eq!(words[0], "kastell", "{command}");
    let cli = Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{command}: {e}"));
    let Command::Operation(call) = cli.command else {
        panic!("{command} is not an operation");
    };
    (call.op.0.id().as_str().to_owned(), call.target.server)
}

/// How often `needle` occurs in both streams of `out`.
fn occurrences(out: &Output, needle: &str) -> usize {
    let both = format!("{}{}", text(&out.stdout), text(&out.stderr));
    both.matches(needle).count()
}

#[test]
fn a_failure_is_said_once_and_its_next_step_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    add_manual(dir, &["web-1"]);
    let args = ["snapshot", "delete", "web-1", "--snapshot", "42", "--force"];

    let json_out = run(dir, &[&["--json"][..], &args[..]].concat());
    assert_eq!(json_out.status.code(), Some(1));
    let payload: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    let (error, hint) = (
        payload["error"].as_str().unwrap(),
        payload["hint"].as_str().unwrap(),
    );
    // MCP's form unchanged beside the command to type.
    let next = &payload["suggested_actions"][0];
    assert_eq!(
        next["command"],
        "server_backup { action: 'backup-create', server: 'web-1' }"
    );
    assert_eq!(next["cli"], "kastell backup create web-1");

    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(occurrences(&out, error), 1, "{stdout}{stderr}");
    assert_eq!(occurrences(&out, hint), 1, "{stdout}{stderr}");
    // One block on stderr: the error and its hint.
    assert_eq!(stderr, format!("error: {error}\nhint: {hint}\n"));
    // The report's heading and the next step, nothing else.
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.starts_with("snapshot delete on web-1 (203.0.113.10): FAILED"),
        "{stdout}"
    );
    let commands = next_commands(&stdout);
    assert_eq!(commands, ["kastell backup create web-1"], "{stdout}");
    for command in &commands {
        assert_eq!(
            parse_back(command),
            ("backup-create".to_owned(), Some("web-1".to_owned()))
        );
    }
}

#[test]
fn a_fleet_of_failures_says_each_once_and_every_next_step_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let names = ["web-1", "web-2", "web-3", "web-4", "web-5"];
    add_manual(dir, &names);

    let json_out = run(dir, &["--json", "snapshot", "list", "--all"]);
    assert_eq!(json_out.status.code(), Some(1));
    let entries: Vec<Value> = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(entries.len(), names.len());
    assert!(entries.iter().all(|e| e["success"] == false), "{entries:?}");

    let out = run(dir, &["snapshot", "list", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let shown = format!("{stdout}{stderr}");
    // Each error and each hint as often as servers have it: once each.
    for entry in &entries {
        for key in ["error", "hint"] {
            let said = entry[key].as_str().unwrap();
            let expected = entries.iter().filter(|e| e[key] == said).count();
            assert_eq!(occurrences(&out, said), expected, "{key}: {said}\n{shown}");
        }
    }
    assert_eq!(stderr.matches("error: ").count(), names.len(), "{stderr}");
    assert_eq!(stderr.lines().count(), 2 * names.len(), "{stderr}");

    // Every next step is a command naming backup-create on its server.
    let commands = next_commands(&stdout);
    assert_eq!(commands.len(), names.len(), "{stdout}");
    let mut servers: Vec<String> = commands
        .iter()
        .map(|c| {
            let (op, server) = parse_back(c);
            assert_eq!(op, "backup-create", "{c}");
            server.unwrap()
        })
        .collect();
    servers.sort();
    assert_eq!(servers, names);
}

/// `kastell args` in `dir` with `vars` set.
fn run_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    support::kastell(dir, args)
        .envs(vars.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn colour_only_where_asked_never_into_a_pipe_or_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    add_manual(dir, &["web-1", "web-2"]);
    let failing = ["snapshot", "delete", "web-1", "--snapshot", "42", "--force"];
    let escape = |out: &Output| {
        let both = format!("{}{}", text(&out.stdout), text(&out.stderr));
        both.contains('\u{1b}')
    };

    // CLICOLOR_FORCE: the status, the error block and the table's heading
    // and results in colour, on both streams.
    let forced = run_with(dir, &failing, &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(forced.status.code(), Some(1));
    let (stdout, stderr) = (text(&forced.stdout), text(&forced.stderr));
    assert!(
        stdout.contains("\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m"),
        "{stdout:?}"
    );
    assert!(
        stderr.starts_with("\u{1b}[1m\u{1b}[31merror\u{1b}[0m: "),
        "{stderr:?}"
    );
    let fleet = run_with(
        dir,
        &["snapshot", "list", "--all"],
        &[("CLICOLOR_FORCE", "1")],
    );
    let table = text(&fleet.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("\u{1b}[1mSERVER  RESULT")),
        "{table:?}"
    );
    assert!(
        table.contains("\u{1b}[1m\u{1b}[31mFAILED\u{1b}[0m"),
        "{table:?}"
    );
    // Without the escapes, every row's cells start under their heading:
    // colour never moves a column.
    let stripped = anstream::adapter::strip_str(&table).to_string();
    let header = stripped.lines().find(|l| l.starts_with("SERVER")).unwrap();
    let at = |heading: &str| header.find(heading).unwrap();
    let rows: Vec<&str> = stripped.lines().filter(|l| l.starts_with("web-")).collect();
    assert_eq!(rows.len(), 2, "{stripped}");
    for row in rows {
        assert_eq!(row.find("FAILED"), Some(at("RESULT")), "{stripped}");
        assert!(
            row[at("TIME")..].starts_with(|c: char| c.is_ascii_digit()),
            "{stripped}"
        );
        assert!(
            row[at("DETAIL")..].starts_with("invalid state"),
            "{stripped}"
        );
    }

    // NO_COLOR wins over CLICOLOR_FORCE; a pipe (these tests' stdout and
    // stderr) gets none; --json never does.
    let off = run_with(dir, &failing, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!escape(&off), "{off:?}");
    let piped = run(dir, &failing);
    assert!(!escape(&piped), "{piped:?}");
    let json = run_with(
        dir,
        &[&["--json"][..], &failing[..]].concat(),
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(!escape(&json), "{json:?}");
    serde_json::from_slice::<Value>(&json.stdout).unwrap();
}
