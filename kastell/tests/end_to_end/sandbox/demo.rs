//! `kastell demo` beyond its text: with `--json` one JSON document on
//! stdout (every step and its outcome, a failure inside it rather than a
//! second document), and a Coolify demo: an app's data restored in place
//! and the server recovered at another provider with its apps, leaving
//! nothing behind.
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
#[cfg(all(feature = "coolify", feature = "digitalocean"))]
fn a_coolify_demo_restores_an_app_in_place_and_recovers_the_server_with_its_apps_elsewhere() {
    let scratch = Scratch::new();
    let (code, stdout, stderr) = kastell(&scratch, &["--json", "demo", "--platform", "coolify"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report = one_document(&stdout);
    assert_eq!(report["success"], true, "{report}");
    let steps = report["steps"].as_array().unwrap();
    for step in steps {
        assert_eq!(step["outcome"], "done", "{step}");
    }
    let details = |n: usize| steps[n - 1]["details"].to_string();
    // The dropped table of an app is back after the restore in place.
    assert!(
        details(6).contains("app blog db after the restore: 250 tags"),
        "{}",
        details(6)
    );
    // Destroyed (platform, database and apps), recovered at another
    // provider with every app's data.
    let recovery = details(10);
    assert!(
        recovery.contains("its platform and its apps are gone"),
        "{recovery}"
    );
    assert!(recovery.contains("Install Coolify"), "{recovery}");
    assert!(
        recovery.contains("coolify running, app blog db with 3 posts and 250 tags, app site's volume with its 64 KiB photo"),
        "{recovery}"
    );
    for app in ["blog db", "shop db", "site"] {
        assert!(
            recovery.contains(&format!("Restore app {app} (")),
            "{app}: {recovery}"
        );
    }
    assert!(recovery.contains(" ms from backup "), "{recovery}");
    // Every host's database cluster stopped with the demo.
    scratch.assert_nothing_left(&Default::default());
}
