//! Tests for [`Policy::check`]: the full matrix and the security log.

use super::*;
#[allow(unused_imports)]
use crate::ops::Operation as _;
use crate::ops::{
    BACKUP_PRUNE, BackupCreateOp, BackupDrillOp, BackupListOp, BackupRestoreOp, BackupVerifyOp,
    DOCTOR, HealthOp, LogsOp, MaintainOp, MonitorOp, RestartOp, SERVER_ADD, SERVER_REMOVE,
    ServerListOp, SnapshotCreateOp, SnapshotDeleteOp, SnapshotListOp, SnapshotRestoreOp,
    SnapshotRotateOp, StatusOp, UpdateOp,
};
use serde_json::Value;

/// The specification, written independently of [`RULES`]: the SAFE_MODE
/// refusal (error, hint), whether manual servers are refused, and the
/// token need on cloud servers.
type SpecRow = (OpId, Option<(&'static str, &'static str)>, bool, TokenNeed);

const SPEC: &[SpecRow] = &[
    (BackupCreateOp::ID, None, false, TokenNeed::None),
    (BackupListOp::ID, None, false, TokenNeed::None),
    (
        BackupRestoreOp::ID,
        Some((
            "Restore disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable restore operations",
        )),
        false,
        TokenNeed::None,
    ),
    (BackupVerifyOp::ID, None, false, TokenNeed::None),
    (BackupDrillOp::ID, None, false, TokenNeed::None),
    (
        crate::ops::RecoverOp::ID,
        Some((
            "Recovery onto a new server is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable recovery (it creates a billable server)",
        )),
        false,
        TokenNeed::None,
    ),
    (
        crate::ops::DrillScratchOp::ID,
        Some((
            "Scratch drills are disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable scratch drills (they create a billable server for a while)",
        )),
        false,
        TokenNeed::None,
    ),
    (
        BACKUP_PRUNE.id(),
        Some((
            "Backup pruning is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable deleting backups (run without --apply to see the plan)",
        )),
        false,
        TokenNeed::None,
    ),
    (
        SnapshotCreateOp::ID,
        Some((
            "Snapshot creation is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable snapshot creation (billable operation)",
        )),
        true,
        TokenNeed::Required,
    ),
    (SnapshotListOp::ID, None, true, TokenNeed::Required),
    (
        SnapshotDeleteOp::ID,
        Some((
            "Snapshot delete disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable snapshot deletion",
        )),
        true,
        TokenNeed::Required,
    ),
    (
        SnapshotRestoreOp::ID,
        Some((
            "Snapshot restore disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable snapshot restore (destructive operation)",
        )),
        true,
        TokenNeed::Required,
    ),
    (
        SnapshotRotateOp::ID,
        Some((
            "Snapshot rotation is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable snapshot rotation (it deletes snapshots)",
        )),
        true,
        TokenNeed::Required,
    ),
    (
        UpdateOp::ID,
        Some((
            "Update is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable platform updates",
        )),
        false,
        TokenNeed::Optional,
    ),
    (
        RestartOp::ID,
        Some((
            "Restart is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable server reboot",
        )),
        false,
        TokenNeed::Optional,
    ),
    (
        MaintainOp::ID,
        Some((
            "Maintenance is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable maintenance (includes reboot)",
        )),
        false,
        TokenNeed::Optional,
    ),
    (
        crate::ops::rollout::RolloutOp::ID,
        Some((
            "Rollouts are disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable fleet rollouts",
        )),
        false,
        TokenNeed::Optional,
    ),
    (SERVER_ADD.id(), None, false, TokenNeed::None),
    (ServerListOp::ID, None, false, TokenNeed::None),
    (
        SERVER_REMOVE.id(),
        Some((
            "Server removal is disabled in SAFE_MODE",
            "Set KASTELL_SAFE_MODE=false to enable removing servers",
        )),
        false,
        TokenNeed::None,
    ),
    (DOCTOR.id(), None, false, TokenNeed::None),
    (StatusOp::ID, None, false, TokenNeed::None),
    (HealthOp::ID, None, false, TokenNeed::None),
    (LogsOp::ID, None, false, TokenNeed::None),
    (MonitorOp::ID, None, false, TokenNeed::None),
];

fn cloud() -> ServerRecord {
    let mut r = ServerRecord::new("4242", "web-1", "203.0.113.10");
    r.provider = Some("hetzner".into());
    r
}

fn manual() -> ServerRecord {
    let mut r = ServerRecord::new("manual-1742050000000", "man-1", "203.0.113.11");
    r.provider = Some("hetzner".into());
    r
}

fn policy(dir: &Path, safe: &str) -> Policy {
    Policy::for_dir(Env::from_pairs([(SAFE_MODE_VAR, safe)]), dir)
}

fn log_lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("security.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn spec_covers_every_operation() {
    let mut ops: Vec<&str> = SPEC.iter().map(|row| row.0.as_str()).collect();
    let mut all: Vec<&str> = crate::ops::catalog::ids().map(OpId::as_str).collect();
    ops.sort_unstable();
    all.sort_unstable();
    assert_eq!(ops, all);
}

#[test]
fn the_full_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let mut refusals = 0;
    for &(op, block, manual_refused, need) in SPEC {
        for surface in [Surface::Cli, Surface::Mcp] {
            for safe in [true, false] {
                let policy = policy(tmp.path(), if safe { "true" } else { "false" });
                for is_manual in [true, false] {
                    let server = if is_manual { manual() } else { cloud() };
                    for has_token in [true, false] {
                        let case = format!(
                            "{op} {surface:?} safe={safe} manual={is_manual} token={has_token}"
                        );
                        let got = policy.check(op, surface, Some(&server), |p| {
                            assert_eq!(p, "hetzner");
                            has_token
                        });
                        let last = || log_lines(tmp.path()).pop().unwrap();
                        if let (true, Some((error, hint))) = (safe, block) {
                            let err = got.unwrap_err();
                            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{case}");
                            assert_eq!(err.message(), error, "{case}");
                            assert_eq!(err.hint(), Some(hint), "{case}");
                            refusals += 1;
                            assert_eq!(last()["reason"], "KASTELL_SAFE_MODE=true", "{case}");
                        } else if is_manual && manual_refused {
                            let err = got.unwrap_err();
                            assert_eq!(err.kind(), ErrorKind::InvalidState, "{case}");
                            assert_eq!(
                                err.message(),
                                "Snapshots require cloud provider API. Manual servers don't have provider IDs."
                            );
                            assert_eq!(
                                err.hint(),
                                Some("Use backup-create for SSH-based backup instead.")
                            );
                            refusals += 1;
                        } else if !is_manual && !has_token && need == TokenNeed::Required {
                            let err = got.unwrap_err();
                            assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{case}");
                            assert_eq!(err.message(), "No API token found for hetzner");
                            assert_eq!(err.hint(), Some("Set HETZNER_TOKEN environment variable"));
                            refusals += 1;
                        } else {
                            let decision = got.unwrap_or_else(|e| panic!("{case}: {e}"));
                            assert_eq!(decision.safe_mode, safe, "{case}");
                            let expect_token = match (is_manual, need, has_token) {
                                (true, _, _) | (_, TokenNeed::None, _) => "not_needed",
                                (false, _, true) => "present",
                                (false, _, false) => "missing",
                            };
                            let token = serde_json::to_value(&decision.token).unwrap();
                            assert_eq!(token["status"], expect_token, "{case}");
                        }
                        assert_eq!(log_lines(tmp.path()).len(), refusals, "{case}");
                    }
                }
            }
        }
    }
    assert!(refusals > 0);
}

#[test]
fn the_mcp_default_is_safe_and_the_cli_default_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = Policy::for_dir(Env::from_pairs::<&str, &str>([]), tmp.path());
    let err = policy
        .check(RestartOp::ID, Surface::Mcp, Some(&manual()), |_| true)
        .unwrap_err();
    assert_eq!(err.message(), "Restart is disabled in SAFE_MODE");
    assert_eq!(log_lines(tmp.path())[0]["reason"], "default for mcp");
    // Restart is allowed on manual servers (it reboots over SSH).
    assert!(
        policy
            .check(RestartOp::ID, Surface::Cli, Some(&manual()), |_| false)
            .is_ok()
    );
}

#[test]
fn a_restart_is_logged_as_disruptive_work() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = Policy::for_dir(Env::from_pairs::<&str, &str>([]), tmp.path());
    let _ = policy.check(RestartOp::ID, Surface::Mcp, Some(&manual()), |_| true);
    let _ = policy.check(BackupRestoreOp::ID, Surface::Mcp, Some(&manual()), |_| true);
    let lines = log_lines(tmp.path());
    assert_eq!(lines[0]["action"], "restart");
    assert_eq!(lines[0]["category"], "disruptive");
    assert_eq!(lines[0]["category"], RestartOp::ID.rule().category.as_str());
    assert_eq!(lines[1]["category"], "destructive");
}

#[test]
fn a_malformed_safety_file_is_refused_with_its_own_error_not_safe_modes() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(SAFETY_FILE), "{\"level\": ").unwrap();
    // Neither SAFE_MODE variable set: over MCP it would default to on.
    let policy = Policy::for_dir(Env::from_pairs::<&str, &str>([]), tmp.path());
    for (surface, op) in [
        (Surface::Mcp, RestartOp::ID),
        (Surface::Mcp, BackupRestoreOp::ID),
        (Surface::Cli, UpdateOp::ID),
    ] {
        let err = policy
            .check(op, surface, Some(&manual()), |_| true)
            .unwrap_err();
        assert!(err.message().contains("safety.json is not valid"), "{err}");
        assert!(err.message().contains("(line 1, column 10)"), "{err}");
        assert!(!err.message().contains("SAFE_MODE"), "{err}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("at line 1, column 10") && !hint.contains("SAFE_MODE"),
            "{hint}"
        );
        let err = policy.check_safe_mode(op, surface, None).unwrap_err();
        assert!(err.message().contains("safety.json is not valid"), "{err}");
    }
    // Reads still go on.
    assert!(
        policy
            .check(StatusOp::ID, Surface::Mcp, Some(&manual()), |_| true)
            .is_ok()
    );
    assert_eq!(
        log_lines(tmp.path())[0]["reason"],
        "safety configuration unreadable"
    );
}

#[test]
fn refusals_are_logged_with_all_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = policy(tmp.path(), "on");
    let _ = policy.check(SERVER_REMOVE.id(), Surface::Cli, Some(&cloud()), |_| true);
    let _ = policy.check(SnapshotCreateOp::ID, Surface::Mcp, None, |_| true);
    let lines = log_lines(tmp.path());
    assert_eq!(lines.len(), 2);
    let first = lines[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    for key in [
        "ts", "level", "action", "category", "result", "reason", "surface", "server",
    ] {
        assert!(keys.contains(&key), "{key}");
    }
    assert_eq!(first["action"], "server-remove");
    assert_eq!(first["category"], "destructive");
    assert_eq!(first["result"], "block");
    assert_eq!(first["level"], "warn");
    assert_eq!(first["surface"], "cli");
    assert_eq!(first["server"], "web-1");
    assert_eq!(first["reason"], "KASTELL_SAFE_MODE=on");
    assert_eq!(lines[1]["action"], "snapshot-create");
    assert_eq!(lines[1]["category"], "safe-write");
    assert_eq!(lines[1]["billable"], true);
    assert_eq!(lines[1]["server"], Value::Null);
}

#[test]
fn a_broken_log_does_not_hide_the_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("security.log")).unwrap();
    let err = policy(tmp.path(), "true")
        .check(BackupRestoreOp::ID, Surface::Mcp, Some(&cloud()), |_| true)
        .unwrap_err();
    assert_eq!(err.message(), "Restore disabled in SAFE_MODE");
}

#[test]
fn optional_tokens_and_uncompiled_providers_leave_notes() {
    let tmp = tempfile::tempdir().unwrap();
    let decision = policy(tmp.path(), "false")
        .check(MaintainOp::ID, Surface::Cli, Some(&cloud()), |_| false)
        .unwrap();
    // The note about an uncompiled provider appears exactly when this
    // build lacks the hetzner feature.
    assert_eq!(
        decision
            .notes
            .iter()
            .any(|n| n.contains("not compiled into this build")),
        !crate::build::feature_enabled("hetzner")
    );
    assert!(
        decision
            .notes
            .iter()
            .any(|n| n.contains("HETZNER_TOKEN not set"))
    );
    assert_eq!(
        TokenEnv::for_provider("digitalocean").var,
        "DIGITALOCEAN_TOKEN"
    );
    assert_eq!(TokenEnv::for_provider("my cloud;x").var, "MY_CLOUD_X_TOKEN");
}

#[test]
fn env_tokens_are_looked_up_by_provider() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = Policy::for_dir(
        Env::from_pairs([("VULTR_TOKEN", "abc"), ("LINODE_TOKEN", "  ")]),
        tmp.path(),
    );
    assert!(policy.env_token_present("vultr"));
    assert!(!policy.env_token_present("linode"));
    assert!(!policy.env_token_present("hetzner"));
}

#[test]
fn cloud_servers_without_provider_and_unknown_platforms_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = policy(tmp.path(), "false");
    let mut no_provider = cloud();
    no_provider.provider = None;
    let err = policy
        .check(SnapshotListOp::ID, Surface::Mcp, Some(&no_provider), |_| {
            true
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);

    let mut bare = cloud();
    bare.mode = "bare".into();
    assert!(
        policy
            .check(BackupRestoreOp::ID, Surface::Mcp, Some(&bare), |_| { true })
            .is_ok()
    );
    let mut odd = cloud();
    odd.platform = Some("plesk".into());
    let err = policy
        .check(BackupRestoreOp::ID, Surface::Mcp, Some(&odd), |_| true)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    assert!(err.message().contains("plesk"));
    assert!(
        policy
            .check(BackupCreateOp::ID, Surface::Mcp, Some(&odd), |_| true)
            .is_ok()
    );
    assert_eq!(log_lines(tmp.path()).len(), 2);
}

#[test]
fn without_a_server_only_safe_mode_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let decision = policy(tmp.path(), "false")
        .check(SnapshotCreateOp::ID, Surface::Mcp, None, |_| false)
        .unwrap();
    assert_eq!(decision.token, TokenStatus::NotNeeded);
}
