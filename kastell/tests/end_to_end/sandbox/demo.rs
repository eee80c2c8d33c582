//! `kastell demo` beyond its text: with `--json` one JSON document on
//! stdout (every step and its outcome, a failure inside it rather than a
//! second document), and a platform the fake hosts cannot run (Coolify,
//! which needs Docker) refused at start with what to do, leaving nothing.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;

use serde_json::Value;

use super::signals::Scratch;

const KASTELL: &str = env!("CARGO_BIN_EXE_kastell");

/// Runs `kastell args` in `scratch`; returns exit code, stdout, stderr.
fn kastell(scratch: &Scratch, args: &[&str]) -> (Option<i32>, String, String) {
    let out = scratch
        .command(KASTELL, args, &[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `text` as the one JSON document it must be.
fn one_document(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{text}"))
}

#[test]
fn json_demo_prints_one_document_with_every_step_and_its_outcome() {
    let scratch = Scratch::new();
    let (code, stdout, stderr) = kastell(&scratch, &["--json", "demo"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report = one_document(&stdout);
    assert_eq!(report["success"], true, "{report}");
    assert!(report.get("error").is_none(), "{report}");
    let steps = report["steps"].as_array().unwrap();
    let numbers: Vec<u64> = steps.iter().map(|s| s["step"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=11).collect::<Vec<u64>>(), "{report}");
    for step in steps {
        assert_eq!(step["outcome"], "done", "{step}");
        assert!(!step["title"].as_str().unwrap().is_empty(), "{step}");
    }
    let details = |n: usize| steps[n - 1]["details"].to_string();
    assert!(
        details(4).contains("refused (host_key_mismatch)"),
        "{}",
        details(4)
    );
    assert!(
        details(6).contains("crontab after the restore: 0 3 * * * root"),
        "{}",
        details(6)
    );
    assert!(
        details(9).contains("Server rebooted via SSH (boot id"),
        "{}",
        details(9)
    );
    // Destroyed and recovered at another provider, its data there.
    assert!(
        details(10).contains("crontab on the new server: 0 3 * * * root"),
        "{}",
        details(10)
    );
    assert!(details(10).contains("recovered onto "), "{}", details(10));
    scratch.assert_nothing_left(&Default::default());
}

#[test]
#[cfg(feature = "coolify")]
fn a_platform_the_fake_hosts_cannot_run_is_refused_at_start_with_what_to_do() {
    let scratch = Scratch::new();
    let (code, stdout, stderr) = kastell(&scratch, &["demo", "--platform", "coolify"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("error: the coolify platform does not run on the sandbox's fake hosts"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: ") && stderr.contains("Leave out --platform"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("6. Backups"),
        "refused before any step runs:\n{stdout}"
    );
    scratch.assert_nothing_left(&Default::default());

    // With --json the refusal is the one document's error.
    let (code, stdout, _) = kastell(&scratch, &["--json", "demo", "--platform", "coolify"]);
    assert_eq!(code, Some(1), "{stdout}");
    let report = one_document(&stdout);
    assert_eq!(report["success"], false, "{report}");
    assert_eq!(report["error"]["kind"], "unsupported", "{report}");
    assert!(
        report["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("Leave out --platform"),
        "{report}"
    );
    scratch.assert_nothing_left(&Default::default());
}
