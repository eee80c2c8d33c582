//! `kastell server checks set|show|clear`: the checks and rollback policy
//! maintenance reads from `checks.json`, set from the command line, shown
//! per server with where the policy comes from, a bad check refused before
//! anything is written, and a hand-broken file refused saying where.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support;

fn run(home: &Path, args: &[&str]) -> Output {
    support::kastell(home, args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn checks_are_set_per_tag_shown_per_server_refused_when_wrong_and_cleared() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for (name, ip) in [("web-1", "203.0.113.31"), ("db-1", "203.0.113.32")] {
        ok(&run(
            home,
            &[
                "server",
                "add",
                "--name",
                name,
                "--ip",
                ip,
                "--no-detect",
                "--platform",
                "bare",
            ],
        ));
    }
    ok(&run(
        home,
        &[
            "server",
            "checks",
            "set",
            "--fleet",
            "--http",
            "http://127.0.0.1:9/health",
            "--command",
            "systemctl is-active --quiet nginx",
            "--rollback",
            "auto",
        ],
    ));
    ok(&run(
        home,
        &[
            "server",
            "checks",
            "set",
            "--server",
            "db-1",
            "--rollback",
            "never",
            "--wait",
            "30",
        ],
    ));
    let shown: Value =
        serde_json::from_str(&ok(&run(home, &["--json", "server", "checks", "show"]))).unwrap();
    assert_eq!(shown["web-1"]["rollback"], "auto", "{shown}");
    assert_eq!(shown["web-1"]["rollbackFrom"], "fleet", "{shown}");
    assert_eq!(shown["web-1"]["http"][0]["status"], 200, "{shown}");
    assert_eq!(shown["db-1"]["rollback"], "never", "{shown}");
    assert_eq!(shown["db-1"]["rollbackFrom"], "server db-1", "{shown}");
    assert_eq!(shown["db-1"]["waitSecs"], 30, "{shown}");
    assert_eq!(
        shown["db-1"]["commands"][0], "systemctl is-active --quiet nginx",
        "the fleet's checks apply to every server: {shown}"
    );

    let file = home.join("state/checks.json");
    let before = std::fs::read(&file).unwrap();
    for (args, says) in [
        (
            &[
                "server", "checks", "set", "--tag", "prod", "--http", "ftp://x/",
            ][..],
            "not an http:// or https:// URL",
        ),
        (
            &[
                "server",
                "checks",
                "set",
                "--server",
                "nope-1",
                "--rollback",
                "auto",
            ][..],
            "nope-1",
        ),
        (
            &["server", "checks", "set", "--tag", "prod"][..],
            "nothing to set",
        ),
    ] {
        let out = run(home, args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing written");

    ok(&run(
        home,
        &["server", "checks", "clear", "--server", "db-1"],
    ));
    let shown: Value = serde_json::from_str(&ok(&run(
        home,
        &["--json", "server", "checks", "show", "db-1"],
    )))
    .unwrap();
    assert_eq!(shown["db-1"]["rollback"], "auto", "{shown}");

    std::fs::write(&file, r#"{"fleet":{"rollback":"sometimes"}}"#).unwrap();
    let out = run(home, &["server", "checks", "show"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("checks.json") && stderr.contains("sometimes"),
        "{stderr}"
    );
}
