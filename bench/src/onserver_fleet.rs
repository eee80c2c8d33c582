//! Benchmark 4c (`--only onserver-fleet`): `n` sandbox servers backing
//! themselves up at once into a SeaweedFS cluster (three volume servers),
//! each with its own append-only login (`schedule install --on-server`,
//! then every server's script started over SSH at the same moment, as
//! their timers would), against the same `n` backed up through this
//! machine into the same cluster (`backup create --all --repo`), with the
//! bytes the kastell processes read and wrote (`/proc/PID/io`): what
//! passed through the operator's machine.

use std::path::Path;
use std::time::Instant;

use kastell::surfaces::sandbox::{Sandbox, SandboxPlan};
use kastell_core::{Error, Result};
use kastell_testkit::s3_cluster::SeaweedCluster;

use crate::fleet::command;
use crate::measure::{ChildRun, check, mb_per_s, run_child, secs};
use crate::report::Section;

/// Where each server's data goes under its fake root (the bare platform
/// backs up `/etc/nginx`).
const DATA: &str = "etc/nginx/kastell-bench-data.txt";

/// Runs `kastell args` with the operator's S3 key; fails unless it
/// succeeded.
fn kastell(
    bin: &Path,
    sandbox: &Sandbox,
    dir: &Path,
    cluster: &SeaweedCluster,
    args: &[&str],
) -> Result<ChildRun> {
    let mut cmd = command(bin, sandbox, dir, args);
    cmd.env("AWS_ACCESS_KEY_ID", &cluster.admin.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &cluster.admin.secret_access_key);
    let run = run_child(cmd)?;
    check(&run, &format!("kastell {}", args.join(" ")))?;
    Ok(run)
}

fn io_error(what: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(what.to_owned(), e)
}

/// One row: the path, its wall time, the aggregate rate over `data`
/// bytes, and what the kastell processes moved.
fn row(what: &str, wall: std::time::Duration, data: u64, io: u64) -> Vec<String> {
    vec![
        what.to_owned(),
        secs(wall),
        format!("{:.1} MB/s", mb_per_s(data, wall)),
        format!("{:.1} MB", io as f64 / 1e6),
        format!("{:.3}×", io as f64 / data.max(1) as f64),
    ]
}

/// Runs the benchmark with `n` servers holding `mib` MiB of text each,
/// using the `kastell` binary at `bin`.
pub(crate) async fn run(bin: &Path, n: usize, mib: u64) -> Result<Section> {
    let dir = tempfile::tempdir().map_err(io_error("creating a directory"))?;
    let plan = SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: n,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    let sandbox = Sandbox::start_with(dir.path(), &plan).await?;
    let servers: Vec<_> = sandbox.servers().to_vec();
    // The same application-like text on every server.
    let seed = dir.path().join("seed.txt");
    let per_server = crate::textdump::write(&seed, mib << 20)?;
    for server in &servers {
        let root = sandbox.hosts().root(server.address)?;
        let target = root.join(DATA);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_error("creating a data directory"))?;
        }
        std::fs::copy(&seed, &target).map_err(io_error("seeding a server"))?;
    }
    let data = per_server * servers.len() as u64;
    let logins: Vec<(String, String)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("s{i}"), format!("fleet/servers/{}", s.name)))
        .collect();
    let cluster = tokio::task::spawn_blocking(move || {
        let refs: Vec<(&str, &str)> = logins
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        SeaweedCluster::start(3, &refs)
    })
    .await
    .map_err(|e| Error::unexpected(format!("starting the cluster: {e}")))?;
    let bin = bin.to_path_buf();
    let path = dir.path().to_path_buf();
    let sandbox = std::sync::Arc::new(sandbox);
    let shared = sandbox.clone();
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<String>>> {
        let (sandbox, cluster) = (&*shared, &cluster);
        let run = |args: &[&str]| kastell(&bin, sandbox, &path, cluster, args);
        let password = path.join("fleet.pw");
        std::fs::write(&password, "the benchmark's shared passphrase\n")
            .map_err(io_error("writing the password"))?;
        let keys = path.join("keys");
        std::fs::create_dir_all(&keys).map_err(io_error("creating the key directory"))?;
        for (i, server) in servers.iter().enumerate() {
            let login = &cluster.login(&format!("s{i}")).keys;
            let file = keys.join(format!("{}.env", server.name));
            std::fs::write(
                &file,
                format!(
                    "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
                    login.access_key_id, login.secret_access_key
                ),
            )
            .map_err(io_error("writing a key file"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error("securing a key file"))?;
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600))
                .map_err(io_error("securing the password"))?;
        }
        let shared_repo = format!("s3:{}/kastell/fleet", cluster.endpoint);
        let password_arg = password.to_string_lossy().into_owned();
        run(&[
            "repo",
            "init",
            "fleet",
            &shared_repo,
            "--password-file",
            &password_arg,
        ])?;
        let keys_arg = keys.to_string_lossy().into_owned();
        run(&[
            "schedule",
            "install",
            "--on-server",
            "--all",
            "--repo",
            "fleet",
            "--keys-dir",
            &keys_arg,
        ])?;

        // Every server's script at once, each started by its own kastell
        // process over SSH (as the timers would start them, but now).
        let started = Instant::now();
        let runs: Vec<Result<ChildRun>> = std::thread::scope(|scope| {
            let handles: Vec<_> = servers
                .iter()
                .map(|s| {
                    let run = &run;
                    scope.spawn(move || {
                        run(&["schedule", "run", "--on-server", "--server", &s.name])
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::unexpected("a run thread panicked")))
                })
                .collect()
        });
        let on_server_wall = started.elapsed();
        let mut on_server_io = 0;
        for run in runs {
            on_server_io += run?.io_bytes;
        }
        // Every server's newest run is in the repository.
        run(&["backup", "freshness", "--max-age", "1h"])?;

        // The same servers through this machine into the same cluster.
        let through = run(&[
            "backup", "create", "--all", "--repo", "fleet", "--force", "--json",
        ])?;
        Ok(vec![
            row(
                &format!("on-server: {n} servers at once, each into its own repository"),
                on_server_wall,
                data,
                on_server_io,
            ),
            row(
                &format!("through this machine: backup create --all --repo, {n} servers"),
                through.wall,
                data,
                through.io_bytes,
            ),
        ])
    })
    .await
    .map_err(|e| Error::unexpected(format!("on-server fleet runs: {e}")))??;
    let mut section = Section::new(format!(
        "4c. On-server backups of {n} servers against backups through this machine"
    ));
    section.para(format!(
        "{n} sandbox servers (bare, each a fake host behind real sshd daemons on loopback) hold \
         {:.1} MiB of application-like text each ({:.1} MiB in all) beside their configuration. \
         On-server: `schedule install --on-server` (not timed), then every server's installed \
         script started at once over SSH (`schedule run --on-server`, one kastell process per \
         server); each runs restic on the server into its own repository in a SeaweedFS \
         cluster (three volume servers) with its own append-only login. Through this machine: \
         `backup create --all --repo` into the same cluster. The rate is the servers' data over \
         the wall time; the last columns are what the kastell processes read and wrote \
         (`rchar` + `wchar` of `/proc/PID/io`: SSH, files and S3 alike, sampled, summed over \
         processes) and that over the data. Every server, restic, sshd and the cluster run on \
         this machine's cores too, so both paths compete with the fleet here; on a real fleet \
         the on-server path uses the servers' cores and links.",
        per_server as f64 / f64::from(1 << 20),
        data as f64 / f64::from(1 << 20)
    ));
    section.table(
        &[
            "path",
            "wall time",
            "aggregate",
            "read+written by kastell",
            "× the data",
        ],
        rows,
    );
    drop(sandbox);
    Ok(section)
}
