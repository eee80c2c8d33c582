//! `kastell backup drill` through the binary on a sandbox bare server: the
//! backup's configuration archive is unpacked here and its sshd_config
//! validated with the real `sshd -t`; a passed drill is recorded and shown
//! by `backup list`, a skipped check (nginx is not installed) counted and
//! named as skipped, never as passed; a backup whose sshd_config sshd refuses fails its
//! drill, naming the check, and is not recorded as proven.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::process::Output;

use serde_json::Value;

use crate::support;

fn ok(out: &Output) -> Value {
    support::ok_json(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_proves_a_bare_backup_and_catches_a_broken_sshd_config() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.as_str();
    let run = |args: Vec<&str>| {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let sandbox = &sandbox;
        let home = home.path().to_owned();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            support::kastell_in(sandbox, &home, &refs).await
        }
    };

    sandbox
        .hosts()
        .write(
            server.address,
            "etc/ssh/sshd_config",
            "Port 22\nPermitRootLogin prohibit-password\n",
        )
        .unwrap();
    let good = ok(&run(vec!["--json", "backup", "create", name, "--force"]).await);
    let good_id = good["backupId"].as_str().unwrap().to_owned();

    let unproven = ok(&run(vec!["--json", "backup", "list", name]).await);
    assert!(
        unproven["backups"][0].get("verification").is_none(),
        "{unproven}"
    );
    let status = ok(&run(vec!["--json", "status", name]).await);
    assert!(
        status["warnings"][0]
            .as_str()
            .unwrap()
            .contains("has been verified or drilled"),
        "{status}"
    );

    let drilled = ok(&run(vec!["--json", "backup", "drill", name]).await);
    assert_eq!(drilled["backupId"], good_id.as_str(), "{drilled}");
    let checks = drilled["artifacts"][0]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["unpack", "sshd -t", "nginx -t"], "{drilled}");
    let outcomes: Vec<&str> = checks
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    // nginx is not installed here: skipped, and said so, never passed.
    assert_eq!(outcomes, ["passed", "passed", "skipped"], "{drilled}");
    assert_eq!(checks[1]["detail"], "etc/ssh/sshd_config is valid");
    assert_eq!(checks[2]["detail"], "nginx is not installed here");
    // A skipped check is not a passed one: the drill passed in part.
    assert_eq!(drilled["checksPassed"], 2, "{drilled}");
    assert_eq!(drilled["checksSkipped"], 1, "{drilled}");
    let message = drilled["message"].as_str().unwrap();
    assert!(
        message.contains("passed with 1 check(s) skipped")
            && message.contains("nginx -t: nginx is not installed here")
            && message.contains("2 checks on 1 artifact(s) passed"),
        "{message}"
    );

    let listed = ok(&run(vec!["--json", "backup", "list", name]).await);
    let proof = &listed["backups"][0]["verification"];
    assert_eq!(proof["proof"], "drill", "{listed}");
    assert_eq!(proof["verifiedAt"], drilled["verifiedAt"]);
    assert_eq!(proof["checksSkipped"], 1, "{listed}");
    let text = run(vec!["backup", "list", name]).await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    // The proof and how long ago it was made.
    assert!(
        text.contains("PROVEN")
            && (text.contains("drill just now (1 skipped)") || text.contains(" s ago (1 skipped)")),
        "{text}"
    );
    let status = ok(&run(vec!["--json", "status", name]).await);
    assert_eq!(
        status["lastVerifiedBackup"]["backupId"],
        good_id.as_str(),
        "{status}"
    );
    assert_eq!(status["warnings"], Value::Array(vec![]), "{status}");

    // A proof older than the policy (8 days by default) is a warning.
    let record = sandbox.store().dir().join("verifications.json");
    let aged = std::fs::read_to_string(&record).unwrap().replace(
        drilled["verifiedAt"].as_str().unwrap(),
        "2026-01-01T00:00:00Z",
    );
    std::fs::write(&record, aged).unwrap();
    let status = ok(&run(vec!["--json", "status", name]).await);
    let warning = status["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("older than the 192 h the policy allows"),
        "{warning}"
    );
    let text = run(vec!["status", name]).await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("warning: The newest proven backup"), "{text}");
    assert!(
        text.contains(&format!(
            "last proven backup: {good_id} (drill at 2026-01-01"
        )),
        "{text}"
    );

    // A broken sshd_config: the drill fails on sshd -t and says so.
    sandbox
        .hosts()
        .write(
            server.address,
            "etc/ssh/sshd_config",
            "Port 22\nNoSuchOption yes\n",
        )
        .unwrap();
    let bad = ok(&run(vec!["--json", "backup", "create", name, "--force"]).await);
    let bad_id = bad["backupId"].as_str().unwrap().to_owned();
    let failed = run(vec!["backup", "drill", name, "--backup", &bad_id]).await;
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("did not pass its restore drill"),
        "{stderr}"
    );
    assert!(
        stderr.contains("sshd -t") && stderr.contains("NoSuchOption"),
        "{stderr}"
    );
    let listed = ok(&run(vec!["--json", "backup", "list", name]).await);
    let bad_entry = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backupId"] == bad_id.as_str())
        .unwrap();
    assert!(bad_entry.get("verification").is_none(), "{listed}");
}
