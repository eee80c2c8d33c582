//! A server whose host key is not pinned yet: the first backup trusts and
//! pins it, and says so in its result (what an MCP client shows the user)
//! and on stderr; the next backup, now pinned, says nothing.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use serde_json::Value;

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_backup_of_an_unpinned_server_says_it_pinned_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let name = sandbox.servers()[0].name.clone();
    let file = sandbox.store().path().to_owned();
    let mut servers: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for record in servers.as_array_mut().unwrap() {
        if let Some(ssh) = record.get_mut("ssh").and_then(Value::as_object_mut) {
            ssh.remove("hostKey");
        }
    }
    std::fs::write(&file, servers.to_string()).unwrap();

    let first = support::kastell_in(
        &sandbox,
        home.path(),
        &["--json", "backup", "create", &name, "--force"],
    )
    .await;
    let result = support::ok_json(&first);
    let warnings = result["warnings"].to_string();
    assert!(
        warnings.contains("trusted on first use and pinned"),
        "{result}"
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("trusted on first use and pinned"),
        "{stderr}"
    );

    let second = support::kastell_in(
        &sandbox,
        home.path(),
        &["--json", "backup", "create", &name, "--force"],
    )
    .await;
    let result = support::ok_json(&second);
    assert!(
        !result["warnings"].to_string().contains("first use"),
        "{result}"
    );
    assert!(!String::from_utf8_lossy(&second.stderr).contains("first use"));
}
