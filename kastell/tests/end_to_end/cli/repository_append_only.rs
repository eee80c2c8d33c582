//! An append-only SFTP repository through the `kastell` binary, on a real
//! OpenSSH server (the testkit's sshd, its non-root login user): `repo
//! init --append-only-key` prints the `authorized_keys` line, which is
//! installed as printed; `doctor` proves the agent's key append-only and
//! calls a full-access key what it is; backups go in with the agent's key;
//! `repo prune` says when it falls back to the agent's key (and the server
//! refuses it), and prunes with the operator's.
#![cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kastell::surfaces::sandbox::Sandbox;
use kastell_testkit::sshd::{self, SshdFixture};
use serde_json::Value;

use crate::support;

const PASSWORD: &str = "an offsite passphrase the agent cannot delete";

/// The repository server: a private sshd, a directory its login user
/// owns, a known_hosts file pinning it, and the agent's new key.
pub(crate) struct RepoServer {
    pub(crate) fixture: SshdFixture,
    dir: tempfile::TempDir,
    known_hosts: PathBuf,
    pub(crate) agent_key: PathBuf,
}

impl RepoServer {
    pub(crate) fn start() -> Self {
        let fixture = SshdFixture::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        let chown = Command::new("chown")
            .arg(format!("{}:", fixture.sshd.user()))
            .arg(&store)
            .status()
            .unwrap();
        assert!(chown.success());
        let known_hosts = dir.path().join("known_hosts");
        let host_key =
            std::fs::read_to_string(fixture.sshd.dir().join("host_ed25519.pub")).unwrap();
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{} {}", fixture.sshd.port(), host_key.trim()),
        )
        .unwrap();
        let agent_key = sshd::new_key(&fixture.sshd, "agent_ed25519");
        Self {
            fixture,
            dir,
            known_hosts,
            agent_key,
        }
    }

    pub(crate) fn location(&self) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}/{}/repo",
            self.fixture.sshd.user(),
            self.fixture.sshd.port(),
            self.dir.path().join("store").display()
        )
    }

    /// The directory the repositories are made in (the login user's).
    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The SFTP variables: the agent's key as `identity`, and the
    /// operator's (the daemon's unrestricted key) when `operator`.
    pub(crate) fn env(&self, identity: &Path, operator: bool) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "KASTELL_SFTP_KNOWN_HOSTS".to_owned(),
                self.known_hosts.display().to_string(),
            ),
            (
                "KASTELL_SFTP_IDENTITY".to_owned(),
                identity.display().to_string(),
            ),
        ];
        if operator {
            env.push((
                "KASTELL_SFTP_PRUNE_IDENTITY".to_owned(),
                self.fixture.sshd.ed25519_key().display().to_string(),
            ));
        }
        env
    }
}

/// Creates the repository `name` at `repo` with `kastell repo init
/// --append-only-key` (the operator's key logging in), its password in
/// `password_file`, installs the printed `authorized_keys` line for the
/// agent's key, and returns what init printed.
pub(crate) async fn init_append_only(
    sandbox: &Sandbox,
    home: &Path,
    repo: &RepoServer,
    name: &str,
    password_file: &Path,
) -> String {
    std::fs::write(password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = repo.agent_key.with_extension("pub");
    let out = kastell(
        sandbox,
        home,
        repo.env(&repo.agent_key, true),
        &[
            "repo",
            "init",
            name,
            &repo.location(),
            "--password-file",
            password_file.to_str().unwrap(),
            "--keep-last",
            "1",
            "--append-only-key",
            public.to_str().unwrap(),
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("restrict,command="))
        .unwrap_or_else(|| panic!("no authorized_keys line in: {stdout}"));
    sshd::authorize(&repo.fixture.sshd, line);
    stdout
}

async fn kastell(
    sandbox: &Sandbox,
    home: &Path,
    env: Vec<(String, String)>,
    args: &[&str],
) -> Output {
    let mut cmd = support::kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .envs(env);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_only_sftp_login_backs_up_and_only_the_operator_key_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let server = sandbox.servers()[0].name.clone();
    let repo = RepoServer::start();
    let agent = repo.agent_key.clone();
    let operator = repo.fixture.sshd.ed25519_key();
    let password_file = dir.path().join("offsite.pw");

    // init with the operator's key prints the line for the agent's key,
    // installed as printed.
    let stdout = init_append_only(&sandbox, home.path(), &repo, "offsite", &password_file).await;
    let line = stdout
        .lines()
        .find(|l| l.starts_with("restrict,command="))
        .unwrap();
    assert!(
        line.starts_with("restrict,command=\"/usr/lib/openssh/sftp-server -u 0222 -p open,"),
        "{line}"
    );
    let agent_public = std::fs::read_to_string(agent.with_extension("pub")).unwrap();
    let key_part: Vec<&str> = agent_public.split_whitespace().take(2).collect();
    assert!(line.contains(&key_part.join(" ")), "{line}");
    assert!(
        stdout.contains("ForceCommand internal-sftp -u 0222"),
        "{stdout}"
    );

    // doctor proves the agent's key append-only...
    let out = kastell(
        &sandbox,
        home.path(),
        repo.env(&agent, false),
        &["doctor", "--repo", "offsite"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("append-only (delete and overwrite refused by the server)"),
        "{stdout}\n{stderr}"
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let out = kastell(
        &sandbox,
        home.path(),
        repo.env(&agent, false),
        &["--json", "doctor"],
    )
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["repositories"][0]["status"], "append-only",
        "{report}"
    );
    // ...and a full-access key not.
    let out = kastell(
        &sandbox,
        home.path(),
        repo.env(&operator, false),
        &["doctor", "--repo", "offsite"],
    )
    .await;
    let (stdout, _) = text(&out);
    assert!(
        stdout
            .contains("WARNING not append-only: this credential can delete and overwrite backups"),
        "{stdout}"
    );
    assert!(stdout.contains("Append-only repositories"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}");

    // Backups go in through the append-only login.
    for _ in 0..2 {
        let out = kastell(
            &sandbox,
            home.path(),
            repo.env(&agent, false),
            &[
                "--json", "backup", "create", &server, "--force", "--repo", "offsite",
            ],
        )
        .await;
        let results = support::ok_json(&out);
        assert_eq!(results["success"], true, "{results}");
        assert_eq!(results["repository"]["repository"], "offsite", "{results}");
    }
    let count = |out: &Output| support::ok_json(out).as_array().unwrap().len();
    let listed = kastell(
        &sandbox,
        home.path(),
        repo.env(&agent, false),
        &["--json", "repo", "snapshots", "offsite"],
    )
    .await;
    assert_eq!(count(&listed), 2);

    // Without the operator's key, prune says it falls back, and the
    // server refuses the agent's key.
    let prune = ["repo", "prune", "offsite", "--apply", "--force"];
    let out = kastell(&sandbox, home.path(), repo.env(&agent, false), &prune).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("note: KASTELL_SFTP_PRUNE_IDENTITY is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("append-only"), "{stderr}");
    let listed = kastell(
        &sandbox,
        home.path(),
        repo.env(&agent, false),
        &["--json", "repo", "snapshots", "offsite"],
    )
    .await;
    assert_eq!(count(&listed), 2, "nothing was removed");

    // With it, prune removes the older snapshot.
    let out = kastell(&sandbox, home.path(), repo.env(&agent, true), &prune).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Removed 1 snapshot(s)."), "{stdout}");
    assert!(!stderr.contains("note:"), "{stderr}");
    let listed = kastell(
        &sandbox,
        home.path(),
        repo.env(&agent, false),
        &["--json", "repo", "snapshots", "offsite"],
    )
    .await;
    assert_eq!(count(&listed), 1);
}

/// On S3 the bucket is the protection; SeaweedFS's full-access key can
/// delete, and `doctor` says so (a valid test: SeaweedFS enforces nothing,
/// so the only honest verdict is "not append-only").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_calls_a_full_access_s3_key_not_append_only() {
    use kastell_testkit::s3::{BUCKET, SeaweedS3};

    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let sandbox = support::one_server_sandbox(dir.path()).await;
    let s3 = tokio::task::spawn_blocking(SeaweedS3::start).await.unwrap();
    let keys = vec![
        (
            "AWS_ACCESS_KEY_ID".to_owned(),
            s3.credentials.access_key_id.clone(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            s3.credentials.secret_access_key.clone(),
        ),
    ];
    let password_file = dir.path().join("s3.pw");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let location = format!("s3:{}/{BUCKET}/kastell", s3.endpoint);
    let out = kastell(
        &sandbox,
        home.path(),
        keys.clone(),
        &[
            "repo",
            "init",
            "bucket",
            &location,
            "--password-file",
            password_file.to_str().unwrap(),
        ],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("note: KASTELL_PRUNE_AWS_ACCESS_KEY_ID is not set"),
        "{stderr}"
    );

    let out = kastell(
        &sandbox,
        home.path(),
        keys,
        &["--json", "doctor", "--repo", "bucket"],
    )
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = &report["repositories"][0];
    assert_eq!(check["status"], "not-append-only", "{report}");
    assert_eq!(
        check["canary"]["canary"], "kastell/kastell-canary",
        "{check}"
    );
    assert_eq!(check["canary"]["delete"], "allowed", "{check}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&s3.credentials.secret_access_key),
        "the secret leaked"
    );
}
