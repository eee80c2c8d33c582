//! On-server backups into an SFTP repository, through the `kastell`
//! binary: a sandbox server makes its own SSH key, and a real OpenSSH
//! server on loopback (the storage host) forces that key into real
//! `rclone serve restic --stdio --append-only` on the server's own
//! directory, which the server's real restic writes into over its
//! `rclone:` backend. The install's canary refuses a key that is not
//! forced, and one forced into a server that lets it delete; the backup
//! lands and stock `restic check --read-data` passes; the server's key
//! cannot delete a snapshot, nor overwrite or delete a data file, nor read
//! outside its directory; a server whose newest backup is too old raises
//! the freshness alert.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bytes::Bytes;
use kastell::surfaces::sandbox::Sandbox;
use serde_json::Value;
use sha2::Digest;

use super::alert::listener;
use super::repository_append_only::RepoServer;
use crate::support;

/// `kastell args` against the sandbox, logged in to the storage with the
/// operator's (unrestricted) key, and `extra` variables.
async fn kastell(
    sandbox: &Sandbox,
    home: &Path,
    repo: &RepoServer,
    extra: &[(&str, String)],
    args: &[&str],
) -> Output {
    let mut cmd = support::kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .envs(repo.env(&repo.fixture.sshd.ed25519_key(), true));
    for (name, value) in extra {
        cmd.env(name, value);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The error and hint a failed `--json` run printed (panics when it
/// succeeded).
fn failure(out: &Output) -> (String, String) {
    assert!(!out.status.success(), "{}", text(out));
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    (
        report["error"].as_str().unwrap_or_default().to_owned(),
        report["hint"].as_str().unwrap_or_default().to_owned(),
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Replaces every line of the storage's authorized_keys holding `key`
/// (the base64 part of the server's public key) with `line`.
fn authorize_only(repo: &RepoServer, key: &str, line: &str) {
    let file = repo.fixture.sshd.dir().join("authorized_keys");
    let kept: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(key))
        .map(str::to_owned)
        .collect();
    std::fs::write(&file, format!("{}\n{line}\n", kept.join("\n"))).unwrap();
}

/// The `ssh` command the test logs in to the storage with, as the server
/// does: the server's own key file, the storage's pinned host key.
fn server_ssh(repo: &RepoServer, key: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -F none -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile={} \
         -o StrictHostKeyChecking=yes -p {} -l {} 127.0.0.1",
        key.display(),
        known_hosts.display(),
        repo.fixture.sshd.port(),
        repo.fixture.sshd.user()
    )
}

/// Sends `requests` (method, path, body) over HTTP/2 through the storage
/// login `ssh` gives (what restic's rclone backend speaks) and returns
/// each answer's status.
async fn through_ssh(ssh: &str, requests: &[(&str, &str, Option<&'static [u8]>)]) -> Vec<u16> {
    let words: Vec<&str> = ssh.split_whitespace().collect();
    let mut child = tokio::process::Command::new(words[0])
        .args(&words[1..])
        .arg("ignored-by-the-forced-command")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let io = tokio::io::join(child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let (mut client, connection) = h2::client::handshake(io).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut statuses = Vec::new();
    for (method, path, body) in requests {
        client = client.ready().await.unwrap();
        let request = http::Request::builder()
            .method(*method)
            .uri(format!("http://localhost{path}"))
            .body(())
            .unwrap();
        let (answer, mut stream) = client.send_request(request, body.is_none()).unwrap();
        if let Some(body) = body {
            stream.send_data(Bytes::from_static(body), true).unwrap();
        }
        statuses.push(answer.await.unwrap().status().as_u16());
    }
    drop(client);
    let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    statuses
}

/// Stock restic on the server's directory with `program` as its rclone
/// program (the server's key), the server's repository password.
fn restic_as_server(program: &str, password: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .args(["--no-cache", "-r", "rclone:unused:", "-o"])
        .arg(format!("rclone.program={program}"))
        .args(args)
        .env("RESTIC_PASSWORD_FILE", password)
        .output()
        .expect("restic is installed (.ci/setup installs it)")
}

fn sha256(path: &Path) -> Vec<u8> {
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// The first data file (pack) under `repo`.
fn first_pack(repo: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .next()
        .expect("the backup wrote a pack")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_backs_itself_up_into_sftp_through_an_append_only_rclone_login() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].clone();
    let name = server.name.clone();
    let repo = RepoServer::start();
    let run = |args: Vec<String>, extra: Vec<(&'static str, String)>| {
        let (sandbox, home, repo) = (&sandbox, home.path(), &repo);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kastell(sandbox, home, repo, &extra, &args).await
        }
    };
    let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let password_file = dir.path().join("fleet.pw");
    std::fs::write(&password_file, "the shared passphrase\n").unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let init = run(
        owned(&[
            "repo",
            "init",
            "fleet",
            &repo.location(),
            "--password-file",
            password_file.to_str().unwrap(),
        ]),
        vec![],
    )
    .await;
    assert!(init.status.success(), "{}", text(&init));
    let server_dir = repo.store().join("repo/servers").join(&name);
    let install_args = owned(&[
        "--json",
        "schedule",
        "install",
        "--on-server",
        "--server",
        &name,
        "--repo",
        "fleet",
    ]);

    // A dry run makes no key and writes nothing.
    let root = sandbox.hosts().root(server.address).unwrap();
    let key = root.join("etc/kastell/onserver/id_ed25519");
    let script = root.join("usr/local/lib/kastell/onserver-backup");
    let mut dry_args = install_args.clone();
    dry_args.push("--dry-run".into());
    let dry = run(dry_args, vec![]).await;
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(!key.exists() && !script.exists(), "{}", text(&dry));

    // The first install makes the server's own key there and stops: the
    // storage does not let it in yet, and the error gives the line to add.
    let first = run(install_args.clone(), vec![]).await;
    let said = text(&first);
    let (_, hint) = failure(&first);
    let line = hint
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("restrict,command=\"rclone serve restic"))
        .unwrap_or_else(|| panic!("no authorized_keys line in: {hint}"))
        .to_owned();
    assert!(
        line.starts_with(&format!(
            "restrict,command=\"rclone serve restic --stdio --append-only {}\" ssh-ed25519 ",
            server_dir.display()
        )),
        "{line}"
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let key_b64 = public.split_whitespace().nth(1).unwrap().to_owned();
    assert!(line.contains(&key_b64), "the line is for the server's key");
    assert!(
        !said.contains("PRIVATE KEY"),
        "the private key left the server: {said}"
    );
    assert!(!script.exists(), "installed before the canary passed");

    // A key with no forced command (a full login) is refused: the storage
    // ran the command the server asked for.
    authorize_only(&repo, &key_b64, &format!("ssh-ed25519 {key_b64} full"));
    let full = run(install_args.clone(), vec![]).await;
    let (error, hint) = failure(&full);
    assert!(error.contains("not forced into"), "{error}");
    assert!(hint.contains(&line), "{hint}");
    assert!(!script.exists(), "installed despite a full login: {error}");

    // A key forced into rclone without --append-only: the canary's delete
    // and overwrite go through, so the install is refused.
    authorize_only(
        &repo,
        &key_b64,
        &format!(
            "restrict,command=\"rclone serve restic --stdio {}\" ssh-ed25519 {key_b64} open",
            server_dir.display()
        ),
    );
    let open = run(install_args.clone(), vec![]).await;
    let (error, hint) = failure(&open);
    assert!(
        error.contains("let this server's own login delete and overwrite"),
        "{error}"
    );
    assert!(
        hint.contains(&line),
        "the refusal gives the right line: {hint}"
    );
    assert!(!script.exists(), "installed despite the canary: {error}");

    // The line as printed: the canary is refused both, and the install
    // goes on.
    authorize_only(&repo, &key_b64, &line);
    let installed = run(install_args.clone(), vec![]).await;
    let report = support::ok_json(&installed);
    let entry = &report["servers"][0];
    assert_eq!(entry["canary"]["delete"], "refused", "{report}");
    assert_eq!(entry["canary"]["overwrite"], "refused", "{report}");
    assert_eq!(entry["authorizedKey"], line.as_str(), "{report}");
    assert!(script.exists(), "{report}");
    let known_hosts = root.join("etc/kastell/onserver/known_hosts");
    let pinned = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        pinned.contains(&format!(
            "[127.0.0.1]:{} ssh-ed25519 ",
            repo.fixture.sshd.port()
        )),
        "{pinned}"
    );
    let env = std::fs::read_to_string(root.join("etc/kastell/onserver/env")).unwrap();
    assert!(!env.contains("PRIVATE") && !env.contains("AWS_"), "{env}");

    // The server backs itself up over its own login; kastell lists and
    // checks the repository over the operator's SFTP login.
    let ran = run(
        owned(&["schedule", "run", "--on-server", "--server", &name]),
        vec![],
    )
    .await;
    assert!(ran.status.success(), "{}", text(&ran));
    let repository = format!("fleet-{name}");
    let listed =
        support::ok_json(&run(owned(&["--json", "repo", "snapshots", &repository]), vec![]).await);
    let snapshots = listed.as_array().unwrap();
    assert_eq!(
        snapshots.len(),
        2,
        "an artifact and the run's close: {listed}"
    );
    assert!(snapshots.iter().all(|s| s["host"] == name.as_str()));
    let checked = run(
        owned(&["--json", "repo", "check", &repository, "--read-data"]),
        vec![],
    )
    .await;
    assert!(checked.status.success(), "{}", text(&checked));

    // Stock restic checks every byte of the server's repository.
    let password = sandbox
        .store()
        .dir()
        .join("onserver")
        .join(format!("{name}.password"));
    let stock = Command::new("restic")
        .args(["--no-cache", "-r"])
        .arg(&server_dir)
        .args(["check", "--read-data"])
        .env("RESTIC_PASSWORD_FILE", &password)
        .output()
        .unwrap();
    assert!(stock.status.success(), "{}", text(&stock));

    // The server's own key, directly (stock restic reads with it; HTTP/2
    // through its own login, as restic speaks it): it cannot overwrite or
    // delete a data file, nor delete a snapshot, nor reach outside its
    // directory.
    let program = server_ssh(&repo, &key, &known_hosts);
    let read = restic_as_server(&program, &password, &["snapshots", "--json"]);
    assert!(read.status.success(), "{}", text(&read));
    let snapshot_path = format!("/snapshots/{}", snapshots[0]["id"].as_str().unwrap());
    let pack = first_pack(&server_dir);
    let before = sha256(&pack);
    let pack_path = format!("/data/{}", pack.file_name().unwrap().to_str().unwrap());
    let outside = repo.store().join("repo/config");
    assert!(
        outside.exists(),
        "the shared repository's config is beside it"
    );
    let statuses = through_ssh(
        &program,
        &[
            (
                "POST",
                &pack_path,
                Some(b"overwritten by a compromised server"),
            ),
            ("DELETE", &pack_path, None),
            ("DELETE", &snapshot_path, None),
            ("GET", "/../../config", None),
            ("GET", "/config", None),
        ],
    )
    .await;
    assert_eq!(statuses[..3], [403, 403, 403], "{statuses:?}");
    assert_ne!(statuses[3], 200, "read outside its directory: {statuses:?}");
    assert_eq!(
        statuses[4], 200,
        "its own repository is readable: {statuses:?}"
    );
    assert_eq!(sha256(&pack), before, "the data file changed");
    let after =
        support::ok_json(&run(owned(&["--json", "repo", "snapshots", &repository]), vec![]).await);
    assert_eq!(
        after.as_array().unwrap().len(),
        2,
        "a snapshot went: {after}"
    );

    // Freshness from the repository: fresh now; too old a moment later,
    // which exits 1 and raises the alert.
    let (hook_port, hooks) = listener(200, "ok");
    let hook = vec![
        (
            "KASTELL_ALERT_WEBHOOK",
            format!("http://127.0.0.1:{hook_port}/hook"),
        ),
        ("KASTELL_ALERT_FORMAT", "json".to_owned()),
    ];
    let fresh = support::ok_json(
        &run(
            owned(&["--json", "backup", "freshness", "--max-age", "1h"]),
            hook.clone(),
        )
        .await,
    );
    assert_eq!(fresh["servers"][0]["verdict"], "fresh", "{fresh}");
    assert!(hooks.try_recv().is_err(), "an alert for a fresh server");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stale = run(
        owned(&["--json", "backup", "freshness", "--max-age", "2s"]),
        hook,
    )
    .await;
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    let report: Value = serde_json::from_slice(&stale.stdout).unwrap();
    assert_eq!(report["servers"][0]["verdict"], "stale", "{report}");
    assert_eq!(report["alerted"], true, "{report}");
    let alert = hooks.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(alert.body.to_string().contains(&name), "{}", alert.body);
}
