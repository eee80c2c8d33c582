//! `server_backup` with a repository, through each official TypeScript and
//! Python SDK client ([`Sdk::ALL`]) driving the real `kastell-mcp` over a sandbox
//! server: backup-create stores the backup in the repository (and the
//! SDK validates the result against the tool's output schema),
//! backup-list reads the repository, backup-restore restores a backup
//! pulled from it, an unknown repository is a clear tool error, and `repo`
//! on an action that has no use for it is refused.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use serde_json::{Value, json};

use crate::sdk::{self, Sdk};
use crate::support;

fn structured<'a>(report: &'a Value, index: usize, label: &str) -> &'a Value {
    let call = &report["calls"][index];
    assert!(
        call.get("error").is_none(),
        "{label}: call {index} raised: {call}"
    );
    &call["result"]["structuredContent"]
}

fn is_error(report: &Value, index: usize) -> bool {
    report["calls"][index]["result"]["isError"]
        .as_bool()
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_back_up_to_and_restore_from_a_repository_through_the_official_sdks() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.as_str();
    let repo_dir = dir.path().join("offsite");
    support::init_repo(
        &sandbox,
        home.path(),
        "offsite",
        &repo_dir,
        "an agent never sees this passphrase",
    )
    .await;

    let store_dir = sandbox.store().dir().display().to_string();
    let mut env: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    env.push(("KASTELL_DIR".into(), store_dir));
    env.push(("KASTELL_SAFE_MODE".into(), "false".into()));
    // This is about repositories; `mcp::confirm` covers the confirmation.
    env.push(("KASTELL_CONFIRM".into(), "off".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    for client in Sdk::ALL {
        let label = format!("{client:?}");
        let marker = format!("# before {label}\n");
        sandbox
            .hosts()
            .write(server.address, "etc/crontab", &marker)
            .unwrap();
        let mut first = sdk::stdio_plan(home.path(), &[], &env_refs);
        first["calls"] = json!([
            {"name": "server_backup", "arguments": {"action": "backup-create", "server": name, "repo": "offsite"}},
            {"name": "server_backup", "arguments": {"action": "backup-list", "server": name, "repo": "offsite"}},
            {"name": "server_backup", "arguments": {"action": "backup-create", "server": name, "repo": "nowhere"}},
            {"name": "server_backup", "arguments": {"action": "snapshot-list", "server": name, "repo": "offsite"}}
        ]);
        let (report, stderr) = sdk::run(client, &first);
        assert!(
            report.get("toolsError").is_none(),
            "{label}: {report}\n{stderr}"
        );

        assert!(!is_error(&report, 0), "{label}: {report}");
        let created = structured(&report, 0, &label);
        let backup_id = created["backupId"].as_str().unwrap().to_owned();
        assert_eq!(
            created["repository"]["repository"], "offsite",
            "{label}: {created}"
        );
        let snapshot_id = created["repository"]["snapshotId"].as_str().unwrap();

        assert!(!is_error(&report, 1), "{label}: {report}");
        let listed = structured(&report, 1, &label);
        assert_eq!(listed["repository"], "offsite", "{label}: {listed}");
        assert_eq!(
            listed["backups"][0]["backupId"],
            backup_id.as_str(),
            "{label}"
        );
        assert_eq!(listed["backups"][0]["snapshotId"], snapshot_id, "{label}");

        assert!(
            is_error(&report, 2),
            "{label}: an unknown repository was accepted"
        );
        let unknown = structured(&report, 2, &label);
        assert!(
            unknown["error"]
                .as_str()
                .unwrap()
                .contains("no repository called \"nowhere\""),
            "{label}: {unknown}"
        );
        assert!(
            unknown["hint"].as_str().unwrap().contains("offsite"),
            "{label}: {unknown}"
        );

        assert!(
            is_error(&report, 3),
            "{label}: repo on snapshot-list was accepted"
        );
        let strict = structured(&report, 3, &label);
        assert!(
            strict["error"].as_str().unwrap().contains("repo"),
            "{label}: {strict}"
        );

        // The local copy is lost and the server changes; the agent restores
        // the backup from the repository.
        std::fs::remove_dir_all(
            sandbox
                .store()
                .dir()
                .join("backups")
                .join(name)
                .join(&backup_id),
        )
        .unwrap();
        sandbox
            .hosts()
            .write(server.address, "etc/crontab", "# changed since\n")
            .unwrap();
        let mut second = sdk::stdio_plan(home.path(), &[], &env_refs);
        second["calls"] = json!([
            {"name": "server_backup", "arguments": {
                "action": "backup-restore", "server": name, "backupId": backup_id, "repo": "offsite"}}
        ]);
        let (report, stderr) = sdk::run(client, &second);
        assert!(!is_error(&report, 0), "{label}: {report}\n{stderr}");
        let restored = structured(&report, 0, &label);
        assert_eq!(
            restored["backupId"],
            backup_id.as_str(),
            "{label}: {restored}"
        );
        assert_eq!(restored["repository"], "offsite", "{label}: {restored}");
        let root = sandbox.hosts().root(server.address).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/crontab")).unwrap(),
            marker,
            "{label}"
        );
        assert!(
            !stderr.contains("an agent never sees"),
            "{label}: the passphrase leaked"
        );
    }
}

/// The MCP surface never prunes with the operator's key: with both keys in
/// `kastell-mcp`'s environment, every login its calls make to the SFTP
/// repository (backup-create pushing, backup-list reading) is the agent's
/// append-only key, as the server's own log shows, and nothing it offers
/// removes a snapshot from the repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_server_logs_in_with_the_agents_key_only_even_with_the_operators_at_hand() {
    use crate::cli::repository_append_only::{RepoServer, init_append_only};
    use kastell_testkit::sshd::fingerprint_of;

    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let name = sandbox.servers()[0].name.clone();
    let repo = RepoServer::start();
    init_append_only(
        &sandbox,
        home.path(),
        &repo,
        "offsite",
        &dir.path().join("offsite.pw"),
    )
    .await;
    let agent = fingerprint_of(&repo.agent_key.with_extension("pub")).unwrap();
    let operator = fingerprint_of(&repo.fixture.sshd.ed25519_key().with_extension("pub")).unwrap();
    let logins_before = repo.fixture.sshd.log().matches(&operator).count();

    let store_dir = sandbox.store().dir().display().to_string();
    let mut env: Vec<(String, String)> = sandbox.env_overlay().into_iter().collect();
    env.push(("KASTELL_DIR".into(), store_dir));
    env.push(("KASTELL_SAFE_MODE".into(), "false".into()));
    env.push(("KASTELL_CONFIRM".into(), "off".into()));
    env.extend(repo.env(&repo.agent_key, true));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut plan = sdk::stdio_plan(home.path(), &[], &env_refs);
    plan["calls"] = json!([
        {"name": "server_backup", "arguments": {"action": "backup-create", "server": name, "repo": "offsite"}},
        {"name": "server_backup", "arguments": {"action": "backup-create", "server": name, "repo": "offsite"}},
        {"name": "server_backup", "arguments": {"action": "backup-list", "server": name, "repo": "offsite"}}
    ]);
    let (report, stderr) = sdk::run(Sdk::Python("legacy"), &plan);
    assert!(report.get("toolsError").is_none(), "{report}\n{stderr}");
    for call in 0..3 {
        assert!(!is_error(&report, call), "{report}\n{stderr}");
    }
    let listed = structured(&report, 2, "python");
    assert_eq!(listed["backups"].as_array().unwrap().len(), 2, "{listed}");
    // No tool action removes snapshots from a repository.
    let actions: Vec<String> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["inputSchema"]["properties"]["action"]["enum"].as_array())
        .flatten()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"backup-create".to_owned()), "{actions:?}");
    assert!(
        !actions
            .iter()
            .any(|a| a.starts_with("repo") || a.contains("forget")),
        "{actions:?}"
    );

    let log = repo.fixture.sshd.log();
    assert!(
        log.contains(&format!("ED25519 {agent}")),
        "the agent's key never logged in:\n{log}"
    );
    assert_eq!(
        log.matches(&operator).count(),
        logins_before,
        "kastell-mcp logged in with the operator's key:\n{log}"
    );
}
