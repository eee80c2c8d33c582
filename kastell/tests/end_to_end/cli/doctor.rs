//! `kastell doctor` through the real binary against a real sshd on loopback:
//! reachability, host-key trust on first use and pinning, strict mode, and
//! an unreachable server.

// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use kastell_testkit::sshd::SshdFixture;
use serde_json::Value;

use crate::support;

/// Runs `kastell` (clean environment, loopback addresses allowed) with
/// `extra_env` on top.
fn kastell(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = support::kastell(dir, args);
    cmd.env("KASTELL_ALLOW_PRIVATE_IPS", "true");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn add_sandbox(dir: &Path, f: &SshdFixture, name: &str, port: u16) {
    let port = port.to_string();
    let key = f.sshd.ed25519_key();
    let out = kastell(
        dir,
        &[
            "server",
            "add",
            "--name",
            name,
            "--ip",
            "127.0.0.1",
            "--platform",
            "bare",
            "--user",
            f.sshd.user(),
            "--port",
            &port,
            "--identity-file",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn doctor_reports_reachability_and_pins_the_host_key_on_first_use() {
    let f = SshdFixture::start();
    let tmp = tempfile::tempdir().unwrap();
    add_sandbox(tmp.path(), &f, "sandbox-1", f.sshd.port());

    let first = kastell(tmp.path(), &["--json", "doctor", "sandbox-1"], &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let report = json(&first);
    let server = &report["server"];
    assert_eq!(server["reachable"], true);
    assert_eq!(server["user"], f.sshd.user());
    assert_eq!(
        server["hostKey"]["fingerprint"],
        f.sshd.host_key_fingerprint()
    );
    assert_eq!(server["hostKey"]["trust"], "trusted_on_first_use");
    assert!(
        server["hostKey"]["warning"]
            .as_str()
            .unwrap()
            .contains("trusted on first use")
    );
    // Said on stderr too, at the default log level, as README promises.
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("trusted on first use and pinned"),
        "{stderr}"
    );
    assert!(server["latencyMs"].is_u64());
    assert_eq!(server["bootId"].as_str().unwrap().len(), 36);
    // The host's compressors (this machine's: .ci/setup installs zstd) and
    // the link's steady rate, from a sample of 2 MiB (and one of 32 MiB
    // when that passed too quickly to judge).
    assert_eq!(server["compressors"]["zstd"], true, "{server}");
    assert!(server["compressors"]["cores"].as_u64().unwrap() >= 1);
    // zstd's own benchmark ran on the host and said how fast it is.
    assert!(
        server["compressors"]["zstdBytesPerSec"].as_u64().unwrap() > 0,
        "{server}"
    );
    assert_eq!(server["compressors"]["zstdAdapt"], true, "{server}");
    let sampled = server["link"]["sampled"].as_u64().unwrap();
    assert!([2 << 20, 34 << 20].contains(&sampled), "{server}");
    assert!(
        server["link"]["bytes"].as_u64().unwrap() < sampled,
        "{server}"
    );
    assert!(server["linkMbPerSec"].as_f64().unwrap() > 0.0);
    assert!(
        server["compressionPlan"]
            .as_str()
            .unwrap()
            .contains("link measured"),
        "{server}"
    );
    assert_eq!(report["store"]["servers"], 1);
    let providers: Vec<&str> = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["digitalocean", "hetzner", "linode", "vultr"]);
    assert!(
        report["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["tokenSet"] == false)
    );

    let stored: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("state/servers.json")).unwrap())
            .unwrap();
    assert_eq!(stored[0]["ssh"]["hostKey"], f.sshd.host_key_fingerprint());

    let second = json(&kastell(
        tmp.path(),
        &["--json", "doctor", "sandbox-1"],
        &[],
    ));
    assert_eq!(second["server"]["hostKey"]["trust"], "pinned");
    assert!(
        second["server"]["hostKey"]
            .get("warning")
            .is_none_or(Value::is_null)
    );

    let human = kastell(tmp.path(), &["doctor", "127.0.0.1"], &[]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success());
    assert!(text.contains("sandbox-1"), "{text}");
    assert!(text.contains("reachable"), "{text}");
    assert!(text.contains(f.sshd.host_key_fingerprint()), "{text}");
    assert!(text.contains("matches the pinned key"), "{text}");
    assert!(text.contains("zstd present, "), "{text}");
    assert!(text.contains("MB/s at level 1 on every core"), "{text}");
    assert!(text.contains("link: "), "{text}");
}

#[test]
fn strict_host_keys_refuse_an_unpinned_server() {
    let f = SshdFixture::start();
    let tmp = tempfile::tempdir().unwrap();
    add_sandbox(tmp.path(), &f, "sandbox-1", f.sshd.port());
    let out = kastell(
        tmp.path(),
        &["--json", "doctor", "sandbox-1"],
        &[("KASTELL_STRICT_HOST_KEY", "true")],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["server"]["reachable"], false);
    assert_eq!(report["server"]["error"]["kind"], "permission_denied");
    let stored: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("state/servers.json")).unwrap())
            .unwrap();
    assert!(
        stored[0].get("ssh").unwrap().get("hostKey").is_none(),
        "nothing pinned"
    );
}

#[test]
fn an_unreachable_server_exits_1_with_kind_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let f = SshdFixture::start();
    let closed = kastell_testkit::sshd::closed_port();
    add_sandbox(tmp.path(), &f, "gone-1", closed);
    let out = kastell(tmp.path(), &["doctor", "gone-1"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT REACHABLE"), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[test]
fn doctor_without_a_server_checks_the_build_and_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let out = kastell(tmp.path(), &["doctor"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ["digitalocean", "hetzner", "linode", "vultr"] {
        assert!(text.contains(id), "{text}");
    }
    assert!(text.contains("HETZNER_TOKEN"), "{text}");

    // A set token is reported as set; its value is never printed.
    let with_token = kastell(
        tmp.path(),
        &["--json", "doctor"],
        &[("HETZNER_TOKEN", "hcloud-secret-value-123")],
    );
    let shown = String::from_utf8_lossy(&with_token.stdout);
    assert!(!shown.contains("hcloud-secret-value-123"), "{shown}");
    let report = json(&with_token);
    let hetzner = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "hetzner")
        .unwrap();
    assert_eq!(hetzner["tokenSet"], true);
    assert!(text.contains("not created yet"), "{text}");

    // A servers.json that other users can read is a problem to fix.
    let f = SshdFixture::start();
    add_sandbox(tmp.path(), &f, "sandbox-1", f.sshd.port());
    let file = tmp.path().join("state/servers.json");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = kastell(tmp.path(), &["--json", "doctor"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let problems = report["store"]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains("chmod 600")),
        "{problems:?}"
    );

    let unknown = kastell(tmp.path(), &["doctor", "nope-1"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("Server not found"), "{err}");
    assert!(err.contains("sandbox-1"), "{err}");
}

#[test]
fn the_demo_runs_end_to_end_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("demo");
    let out = kastell(tmp.path(), &["demo", "--dir", keep.to_str().unwrap()], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "refused (host_key_mismatch)",
        "backup-restore    refused: Restore disabled in SAFE_MODE",
        "crontab after the restore: 0 3 * * * root /usr/local/bin/nightly-report",
        "Server rebooted via provider API (boot id",
        "Server rebooted via SSH (boot id",
        "snapshot(s) of this server listed",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    let maintained = text.matches("Maintenance completed").count();
    let clouds = ["digitalocean", "hetzner", "linode", "vultr"]
        .into_iter()
        .filter(|id| kastell::build::feature_enabled(id))
        .count();
    assert_eq!(maintained, clouds, "{text}");
    let log = std::fs::read_to_string(keep.join("security.log")).unwrap();
    assert_eq!(
        log.lines().count(),
        6,
        "one line per SAFE_MODE refusal: {log}"
    );
    let stored: Value =
        serde_json::from_slice(&std::fs::read(keep.join("servers.json")).unwrap()).unwrap();
    let servers = stored.as_array().unwrap();
    // The showcase server, destroyed, came back at another provider.
    let recovered = usize::from(text.contains("crontab on the new server: 0 3 * * * root"));
    assert_eq!(recovered, usize::from(clouds > 0), "{text}");
    assert_eq!(servers.len(), clouds + 1 + recovered, "{stored}");
    for server in servers {
        assert!(
            server["ssh"]["hostKey"]
                .as_str()
                .unwrap()
                .starts_with("SHA256:"),
            "{server}"
        );
    }
}

/// A hand-edited store: a record aimed at a host name, a broken
/// safety.json and an edited audit log are each a problem doctor names
/// (exit 1); once fixed, it notes the levels and the intact chain.
#[test]
fn doctor_names_invalid_records_broken_levels_and_a_damaged_audit_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = kastell(
        dir,
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
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = dir.join("state");
    let servers = state.join("servers.json");
    let text = std::fs::read_to_string(&servers).unwrap();
    std::fs::write(&servers, text.replace("203.0.113.10", "evil.example.com")).unwrap();
    std::fs::write(state.join("safety.json"), "{\"level\": \"everything\"}").unwrap();
    let audit = state.join("audit.jsonl");
    let line = std::fs::read_to_string(&audit).unwrap();
    std::fs::write(&audit, line.replace("server-add", "server-del")).unwrap();

    let out = kastell(dir, &["--json", "doctor"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report = json(&out);
    let problems: Vec<&str> = report["store"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(
        has("Server web-1 in servers.json is not valid: Invalid IP address format"),
        "{problems:?}"
    );
    assert!(has("safety.json is not valid"), "{problems:?}");
    assert!(has("the audit log is not intact"), "{problems:?}");

    std::fs::write(&servers, text).unwrap();
    std::fs::write(state.join("safety.json"), "{\"level\": \"safe-writes\"}").unwrap();
    std::fs::write(&audit, line).unwrap();
    let out = kastell(dir, &["--json", "doctor"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let notes = report_notes(&json(&out));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("safety levels are configured (safety.json)")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("audit log intact")),
        "{notes:?}"
    );
}

fn report_notes(report: &Value) -> Vec<String> {
    report["store"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}
