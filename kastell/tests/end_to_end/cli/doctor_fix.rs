//! `kastell doctor --check-tokens` against the Hetzner simulator (a valid,
//! a read-only and a refused token, none of them shown) and `doctor
//! --fix` repairing what doctor reports as a problem.
#![cfg(feature = "hetzner")]
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator};
use serde_json::Value;

use crate::support::kastell;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(dir: &Path, args: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Output {
    let mut cmd = kastell(dir, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(vars.iter().copied());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tokens_says_valid_read_only_and_refused_without_showing_them() {
    let sim = HetznerSim::start(SimOptions::default()).await.unwrap();
    let endpoint = sim.endpoint();
    let (good, read_only) = (sim.read_write_token(), sim.read_only_token());
    let stale = "hetzner-revoked-token-0000";
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_path_buf();
    let (good2, ro2) = (good.clone(), read_only.clone());
    let out = tokio::task::spawn_blocking(move || {
        let d = dir.as_path();
        assert!(
            run(d, &["auth", "set", "hetzner", "--account", "ro"], &ro2, &[])
                .status
                .success()
        );
        assert!(
            run(
                d,
                &["auth", "set", "hetzner", "--account", "old"],
                stale,
                &[]
            )
            .status
            .success()
        );
        let vars = [
            ("KASTELL_HETZNER_ENDPOINT", endpoint.as_str()),
            ("HETZNER_TOKEN", good2.as_str()),
        ];
        let json = run(d, &["--json", "doctor", "--check-tokens"], "", &vars);
        let human = run(d, &["doctor", "--check-tokens"], "", &vars);
        (json, human)
    })
    .await
    .unwrap();
    let (json, human) = out;
    for out in [&json, &human] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for token in [good.as_str(), read_only.as_str(), stale] {
            assert!(!all.contains(token), "a token was printed: {all}");
        }
        assert_eq!(
            out.status.code(),
            Some(1),
            "a refused token needs attention"
        );
    }
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let tokens = report["tokens"].as_array().unwrap();
    let by_account = |account: &str| {
        tokens
            .iter()
            .find(|t| t["provider"] == "hetzner" && t["account"] == account)
            .unwrap_or_else(|| panic!("no {account} in {report}"))
            .clone()
    };
    let default = by_account("default");
    assert_eq!(default["source"], "env:HETZNER_TOKEN");
    assert!(default["status"] == "valid", "{default}");
    let old = by_account("old");
    assert_eq!(old["source"], "stored");
    assert_eq!(old["status"], "refused", "{old}");
    let ro = by_account("ro");
    // Hetzner's API does not say whether a token may write: a read-only
    // token validates, and the report says writing is not known.
    assert!(
        ro["status"] == "valid" || ro["status"] == "read-only",
        "{ro}"
    );
    assert!(
        text(&human.stdout).contains("refused"),
        "{}",
        text(&human.stdout)
    );
}

#[test]
fn fix_repairs_a_file_other_users_could_read_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let out = run(dir, &["server", "list"], "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let state = dir.join("state");
    let servers = state.join("servers.json");
    std::fs::write(&servers, "[]").unwrap();
    std::fs::set_permissions(&servers, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = run(dir, &["doctor"], "", &[]);
    assert_eq!(out.status.code(), Some(1), "doctor reports it");
    assert!(
        text(&out.stdout).contains("chmod 600"),
        "{}",
        text(&out.stdout)
    );

    let out = run(dir, &["doctor", "--fix"], "", &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("fixed: {}: mode 644 -> 600", servers.display())),
        "{stdout}"
    );
    let mode = std::fs::metadata(&servers).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = run(dir, &["doctor", "--fix"], "", &[]);
    assert!(text(&out.stdout).contains("fix: nothing needed fixing"));
}
